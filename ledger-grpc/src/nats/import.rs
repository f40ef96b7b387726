//! `ledger import-nats`: rebuilds a ledger's data directory from the event feed in
//! JetStream, or brings one up to date with it. A new (or empty) directory is read
//! from the stream's first message; one that holds a ledger already (an earlier
//! import's, or a stopped `ledgerd`'s) goes on from its log's head, once the
//! stream's event at that sequence is found to have the head's hash. It reads to
//! the last message the stream held when the import started (or `--until-seq`),
//! or with `--follow` keeps reading as messages come until told to stop. Each
//! event is checked (sequence, BLAKE3 of its envelope bytes, link to the one
//! before) and written, whole records only, by `ledger_store::rebuild`, which
//! syncs and verifies the result.
//!
//! Where a sequence is in the stream: the exporter publishes sequences in order,
//! each message expecting the one before it, so `Nats-Msg-Id` grows by one with
//! the stream sequence, but the two are equal only when the stream's sequences
//! started at 1 with the exporter's first message (a stream created empty, not
//! purged) and nothing was removed from its front. The head's message is where
//! the offset between the first message's stream sequence and `Nats-Msg-Id` puts
//! it, and must carry the head's sequence there.

use super::{Body, BodyError, message_sequence};
use async_nats::jetstream::{self, consumer, stream::Stream};
use ledger_core::limits::IMPORT_SYNC_EVENTS_MAX;
use ledger_store::envelope;
use ledger_store::rebuild::{ExportedEvent, Rebuild, RebuildError, RebuildReport};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio_stream::StreamExt as _;

/// How long one JetStream request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ImportConfig {
    pub url: String,
    pub stream: String,
    /// A new (or empty) directory, or one that holds a ledger to bring up to date.
    pub data_dir: PathBuf,
    /// Stop after this sequence (cut back to the last whole command at or before it).
    pub until_sequence: Option<u64>,
    /// Keep reading new messages after the stream's end, until stopped.
    pub follow: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("NATS {what}: {reason}")]
    Nats { what: &'static str, reason: String },
    #[error("stream {stream} holds no messages")]
    Empty { stream: String },
    #[error("stream message {stream_sequence}: {source}")]
    Body { stream_sequence: u64, source: BodyError },
    #[error(
        "stream message {stream_sequence}: its Nats-Msg-Id does not name sequence {sequence}, which its body holds"
    )]
    MessageId { stream_sequence: u64, sequence: u64 },
    #[error(
        "the data directory's head is sequence {sequence} with hash {directory}, the stream's sequence {sequence} \
         has hash {stream}: the directory holds another ledger's events, or writes of its own the stream does not \
         (a ledgerd took writes on it); nothing was written. Import into a new directory"
    )]
    Diverged { sequence: u64, directory: String, stream: String },
    #[error(
        "the data directory's head is sequence {sequence}, the stream {stream} ends at sequence {stream_last}: \
         the directory holds events the stream does not (writes of its own, or another ledger's); nothing was written"
    )]
    Ahead { stream: String, sequence: u64, stream_last: u64 },
    #[error(
        "the stream {stream} holds no message for sequence {sequence}, the data directory's head \
         (its first message is sequence {stream_first}): its start was removed (retention) or it is another \
         ledger's feed, so the directory cannot be checked against it; nothing was written"
    )]
    Missing { stream: String, sequence: u64, stream_first: u64 },
    #[error(
        "the stream {stream} does not hold sequence {sequence} at stream sequence {stream_sequence}, where its \
         first message puts it: its messages are not one ledger's feed in order"
    )]
    OutOfOrder { stream: String, sequence: u64, stream_sequence: u64 },
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
}

fn nats(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ImportError {
    move |error| ImportError::Nats { what, reason: error.to_string() }
}

/// The head a follower made durable: its sequence and hex hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced {
    pub sequence: u64,
    pub hash: String,
}

/// Rebuilds `config.data_dir` from the stream, or brings it up to date. With
/// `config.follow`, `synced` gets each head made durable while it follows; the
/// import ends (syncing and verifying what it wrote) when `stop` resolves, at the
/// stream's end without `follow`, or at an error.
pub async fn import(
    config: &ImportConfig,
    stop: impl Future<Output = ()>,
    synced: impl FnMut(&Synced),
) -> Result<RebuildReport, ImportError> {
    let client = async_nats::ConnectOptions::new()
        .name("ledger import-nats")
        .connection_timeout(REQUEST_TIMEOUT)
        .connect(super::servers(&config.url))
        .await
        .map_err(|error| nats("connect")(&error))?;
    let context = jetstream::ContextBuilder::new().timeout(REQUEST_TIMEOUT).build(client);
    let stream = context.get_stream(&config.stream).await.map_err(|error| nats("find the stream")(&error))?;
    let info = stream.get_info().await.map_err(|error| nats("stream info")(&error))?;
    if info.state.messages == 0 && !config.follow {
        return Err(ImportError::Empty { stream: config.stream.clone() });
    }
    // The end as of now: the exporter may go on publishing while this reads.
    let end = info.state.last_sequence;
    let data_dir = config.data_dir.clone();
    let rebuild = tokio::task::spawn_blocking(move || Rebuild::open(&data_dir))
        .await
        .expect("opening a data directory does not panic")?;
    let (head, head_hash) = rebuild.started_at();
    // Where reading starts: after the head's message, which must be the head.
    let start = match head {
        0 => None,
        _ => {
            let (at, event) = locate(&stream, &config.stream, head).await?;
            if event.hash != head_hash {
                return Err(ImportError::Diverged {
                    sequence: head,
                    directory: envelope::hex(&head_hash),
                    stream: envelope::hex(&event.hash),
                });
            }
            Some(at + 1)
        }
    };
    let mut reading = Reading { rebuild, synced_through: head, synced };
    // Nothing to read: without --follow, a directory at the stream's end (or past
    // --until-seq) is up to date as it is.
    let up_to_date = !config.follow
        && (start.is_some_and(|start| start > end) || config.until_sequence.is_some_and(|until| until <= head));
    let read = if up_to_date { Ok(()) } else { reading.read(&stream, config, start, end, stop).await };
    // What was written is whole records that checked: keep it, whatever stopped
    // the reading, so that the next import goes on from there.
    let finished = tokio::task::spawn_blocking(move || reading.rebuild.finish())
        .await
        .expect("finishing a rebuild does not panic");
    read?;
    Ok(finished?)
}

/// A rebuild being fed from the stream.
struct Reading<F> {
    rebuild: Rebuild,
    /// The last sequence made durable (and reported to `synced`).
    synced_through: u64,
    synced: F,
}

impl<F: FnMut(&Synced)> Reading<F> {
    /// Reads from stream sequence `start` (the first message when `None`) until
    /// `stop`, or `end` without `follow`.
    async fn read(
        &mut self,
        stream: &Stream,
        config: &ImportConfig,
        start: Option<u64>,
        end: u64,
        stop: impl Future<Output = ()>,
    ) -> Result<(), ImportError> {
        let deliver_policy = match start {
            None => consumer::DeliverPolicy::All,
            Some(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
        };
        // An ordered consumer: ephemeral, no acks, recreated by the client from
        // where it stopped if a message goes missing on the way.
        let reader = stream
            .create_consumer(consumer::pull::OrderedConfig { deliver_policy, ..Default::default() })
            .await
            .map_err(|error| nats("create a consumer")(&error))?;
        let mut messages = reader.messages().await.map_err(|error| nats("read the stream")(&error))?;
        tokio::pin!(stop);
        loop {
            let message = tokio::select! {
                () = &mut stop => return Ok(()),
                message = messages.next() => message,
            };
            let Some(message) = message else { return Ok(()) };
            let message = message.map_err(|error| nats("read the stream")(&error))?;
            let info = message.info().map_err(|error| nats("message info")(&error))?;
            let (stream_sequence, pending) = (info.stream_sequence, info.pending);
            let event = exported(stream_sequence, &message.payload, message.headers.as_ref())?;
            let sequence = event.sequence;
            if config.until_sequence.is_some_and(|until| sequence > until) {
                return Ok(());
            }
            self.rebuild.push(event)?;
            // `pending == 0` too: when the messages up to `end` were deleted, waiting
            // for `end` itself would wait for ever.
            if config.until_sequence == Some(sequence) || (!config.follow && (stream_sequence >= end || pending == 0)) {
                return Ok(());
            }
            // A follower syncs whenever it has caught up, and at least every
            // IMPORT_SYNC_EVENTS_MAX events while the stream keeps it busy.
            let unsynced = self.rebuild.written() - self.synced_through;
            if config.follow && unsynced > 0 && (pending == 0 || unsynced >= IMPORT_SYNC_EVENTS_MAX) {
                self.sync().await?;
            }
        }
    }

    /// Makes what was written durable, then reports it.
    async fn sync(&mut self) -> Result<(), ImportError> {
        let head = Synced { sequence: self.rebuild.written(), hash: self.rebuild.written_hash() };
        let syncer = self.rebuild.syncer();
        tokio::task::spawn_blocking(move || syncer.sync()).await.expect("a sync does not panic")?;
        self.synced_through = head.sequence;
        (self.synced)(&head);
        Ok(())
    }
}

/// The event a message carries, its `Nats-Msg-Id` checked against its body.
fn exported(
    stream_sequence: u64,
    payload: &[u8],
    headers: Option<&async_nats::HeaderMap>,
) -> Result<ExportedEvent, ImportError> {
    let event = Body::exported(payload).map_err(|source| ImportError::Body { stream_sequence, source })?;
    if message_sequence(headers) != Some(event.sequence) {
        return Err(ImportError::MessageId { stream_sequence, sequence: event.sequence });
    }
    Ok(event)
}

/// The stream sequence of the message carrying ledger sequence `sequence`, and its event.
async fn locate(stream: &Stream, name: &str, sequence: u64) -> Result<(u64, ExportedEvent), ImportError> {
    let info = stream.get_info().await.map_err(|error| nats("stream info")(&error))?;
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if info.state.messages == 0 {
        return Err(ImportError::Ahead { stream: name.to_owned(), sequence, stream_last: 0 });
    }
    let first_event = event_at(stream, first).await?;
    if sequence < first_event.sequence {
        return Err(ImportError::Missing { stream: name.to_owned(), sequence, stream_first: first_event.sequence });
    }
    let last_event = event_at(stream, last).await?;
    if sequence > last_event.sequence {
        return Err(ImportError::Ahead { stream: name.to_owned(), sequence, stream_last: last_event.sequence });
    }
    // The feed's sequences follow its stream sequences one for one (see the
    // module docs): the offset of the first message places every other one.
    let at = first + (sequence - first_event.sequence);
    let event = if at <= last { Some(event_at(stream, at).await?) } else { None };
    match event {
        Some(event) if event.sequence == sequence => Ok((at, event)),
        _ => Err(ImportError::OutOfOrder { stream: name.to_owned(), sequence, stream_sequence: at }),
    }
}

/// The event in the message at `stream_sequence`.
async fn event_at(stream: &Stream, stream_sequence: u64) -> Result<ExportedEvent, ImportError> {
    let message =
        stream.get_raw_message(stream_sequence).await.map_err(|error| nats("read a message by sequence")(&error))?;
    exported(stream_sequence, &message.payload, Some(&message.headers))
}
