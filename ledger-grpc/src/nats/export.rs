//! `ledgerd --export-nats URL`: a task that publishes every durable event, in
//! sequence order, to the JetStream stream (the message format is in `nats`).
//!
//! Losses and duplicates this prevents, and how each could happen:
//!
//! - **An event published twice.** The exporter keeps no position of its own: at
//!   the start of every session (the first, and each after an error) it reads the
//!   stream's last message and goes on after the sequence its `Nats-Msg-Id` names.
//!   A publish whose ack was lost is then found there, not sent again; and were it
//!   sent again, JetStream drops a second `Nats-Msg-Id` within its duplicate window.
//! - **An event skipped.** Up to `EXPORT_ACKS_IN_FLIGHT_MAX` publishes are in flight,
//!   and a later one could be stored after an earlier one failed. Each carries the
//!   sequence before it (`Nats-Expected-Last-Msg-Id`; a session's first, the
//!   stream's last message sequence as read, `Nats-Expected-Last-Sequence`), so
//!   JetStream refuses it; acks are awaited in order, the first failure ends the
//!   session, and the next one resumes from the stream's real end.
//! - **An event that is not durable.** Only events the durable watermark covers are
//!   read; a crash of `ledgerd` never takes back one that was published.
//! - **Another ledger's feed continued.** At resume the last message's hash must be
//!   the hash of that sequence in this ledger's log; a stream ahead of the log, or
//!   holding other events, stops the export (logged as a warning, retried slowly)
//!   instead of mixing two ledgers in one stream.
//! - **A feed stuck on a deleted message.** The stream keeps its last sequence
//!   when that message is deleted: resume reads back to the last message still
//!   there, and the session's first publish names the stream's last sequence.
//! - **The ledger held up by NATS.** The task only reads the log: a NATS outage
//!   delays the feed (it backs off and reconnects), never a write.

use super::{Body, STREAM_SUBJECTS, message_sequence, subject};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use ledger_core::limits::{EXPORT_ACKS_IN_FLIGHT_MAX, EXPORT_BATCH_EVENTS_MAX};
use ledger_store::{Ledger, LedgerError, StoreError};
use std::collections::VecDeque;
use std::time::Duration;

/// The first pause after a failed session; it doubles up to `RETRY_MAX` and falls
/// back once a publish is acknowledged.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long one JetStream request (a publish's ack, stream info) may take before
/// the session counts it as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to publish.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// The NATS server(s): `nats://host:4222`, several separated by commas.
    pub url: String,
    /// The JetStream stream, created (subjects `ledger.>`, file storage) if missing.
    pub stream: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("NATS {what}: {reason}")]
    Nats { what: &'static str, reason: String },
    #[error("stream {stream}: its last message (stream sequence {at}) has no decimal Nats-Msg-Id: not this feed's")]
    Foreign { stream: String, at: u64 },
    #[error(
        "stream {stream} holds events through sequence {published}, the durable log only through {durable}: \
         another ledger's feed, or this ledger was restored from an older copy"
    )]
    Ahead { stream: String, published: u64, durable: u64 },
    #[error(
        "stream {stream}: its sequence {sequence} has hash {found}, this ledger's log {expected}: another ledger's feed"
    )]
    OtherLedger { stream: String, sequence: u64, found: String, expected: String },
    #[error("JetStream stored sequence {sequence} as a duplicate: the stream does not end where the exporter read it")]
    Duplicate { sequence: u64 },
    #[error("reading the log: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

fn nats(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ExportError {
    move |error| ExportError::Nats { what, reason: error.to_string() }
}

/// Starts the exporter on the current runtime; abort the handle to stop it.
pub fn spawn(ledger: Ledger, config: ExportConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(ledger, config))
}

/// Sessions, one after another, until the ledger closes.
pub async fn run(ledger: Ledger, config: ExportConfig) {
    let published = metrics::gauge!("ledger_export_nats_sequence");
    let mut retry = RETRY_MIN;
    loop {
        match session(&ledger, &config, &published, &mut retry).await {
            Ok(()) => {
                tracing::info!(stream = %config.stream, "event export stopped: the ledger is closed");
                return;
            }
            Err(error) => {
                tracing::warn!(url = %config.url, stream = %config.stream, %error, retry_ms = retry.as_millis(), "event export: retrying");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// One connection: resume after the stream's last message, then publish until an
/// error. `Ok` only when the ledger closed.
async fn session(
    ledger: &Ledger,
    config: &ExportConfig,
    published: &metrics::Gauge,
    retry: &mut Duration,
) -> Result<(), ExportError> {
    let client = async_nats::ConnectOptions::new()
        .name("ledgerd event export")
        .connection_timeout(REQUEST_TIMEOUT)
        .connect(super::servers(&config.url))
        .await
        .map_err(|error| nats("connect")(&error))?;
    let context = jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .max_ack_inflight(EXPORT_ACKS_IN_FLIGHT_MAX)
        .build(client);
    let stream = ensure_stream(&context, &config.stream).await?;
    let resume = resume(ledger, &stream, &config.stream).await?;
    published.set(u64_to_gauge(resume.sequence));
    tracing::info!(stream = %config.stream, after = resume.sequence, "event export: resuming");

    let mut next = resume.sequence + 1;
    let mut expect = Expect::StreamSequence(resume.stream_sequence);
    let mut in_flight: VecDeque<(u64, PublishAckFuture)> = VecDeque::new();
    loop {
        let batch = read_batch(ledger, next).await?;
        if batch.is_empty() {
            // Caught up: settle what is in flight, then sleep until the log grows.
            while let Some((sequence, ack)) = in_flight.pop_front() {
                acknowledged(sequence, ack, published, retry).await?;
            }
            match ledger.wait_beyond(next - 1).await {
                Ok(_) => continue,
                Err(LedgerError::Closed(_)) => return Ok(()),
                Err(error) => return Err(error.into()),
            }
        }
        for (sequence, subject, body) in batch {
            while in_flight.len() >= EXPORT_ACKS_IN_FLIGHT_MAX {
                let (sequence, ack) = in_flight.pop_front().expect("the window is not empty");
                acknowledged(sequence, ack, published, retry).await?;
            }
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, sequence.to_string().as_str());
            match expect {
                Expect::StreamSequence(last) => {
                    headers.insert(async_nats::header::NATS_EXPECTED_LAST_SEQUENCE, last.to_string().as_str());
                }
                Expect::MessageId(last) => {
                    headers.insert(async_nats::header::NATS_EXPECTED_LAST_MESSAGE_ID, last.to_string().as_str());
                }
            }
            let ack = context
                .publish_with_headers(subject, headers, body.into())
                .await
                .map_err(|error| nats("publish")(&error))?;
            in_flight.push_back((sequence, ack));
            expect = Expect::MessageId(sequence);
            next = sequence + 1;
        }
    }
}

/// What JetStream must find at the stream's end for the next publish to be stored.
#[derive(Clone, Copy)]
enum Expect {
    /// The session's first publish: the stream's last message sequence as read
    /// at resume. A message id would do only while the server remembers the last
    /// one, which a restarted server may not.
    StreamSequence(u64),
    /// The sequence published just before, in this session.
    MessageId(u64),
}

/// Where the stream ends: the ledger sequence of its last message and that
/// message's stream sequence.
struct Resume {
    sequence: u64,
    stream_sequence: u64,
}

async fn ensure_stream(context: &jetstream::Context, name: &str) -> Result<stream::Stream, ExportError> {
    let config = stream::Config {
        name: name.to_owned(),
        subjects: vec![STREAM_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        ..Default::default()
    };
    context.get_or_create_stream(config).await.map_err(|error| nats("create or find the stream")(&error))
}

async fn resume(ledger: &Ledger, stream: &stream::Stream, name: &str) -> Result<Resume, ExportError> {
    let info = stream.get_info().await.map_err(|error| nats("stream info")(&error))?;
    // What the next publish must name as the stream's last sequence: the last one
    // the stream assigned, even when that message has since been deleted.
    let stream_sequence = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok(Resume { sequence: 0, stream_sequence });
    }
    let (at, last) = last_message(stream, info.state.first_sequence, stream_sequence).await?;
    let sequence =
        message_sequence(Some(&last.headers)).ok_or_else(|| ExportError::Foreign { stream: name.to_owned(), at })?;
    let durable = ledger.durable_sequence();
    if sequence > durable {
        return Err(ExportError::Ahead { stream: name.to_owned(), published: sequence, durable });
    }
    let body: Body =
        serde_json::from_slice(&last.payload).map_err(|_| ExportError::Foreign { stream: name.to_owned(), at })?;
    let ours = ledger.event(sequence)?.map(|event| ledger_store::envelope::hex(&event.hash)).unwrap_or_default();
    if body.hash != ours {
        return Err(ExportError::OtherLedger { stream: name.to_owned(), sequence, found: body.hash, expected: ours });
    }
    Ok(Resume { sequence, stream_sequence })
}

/// The stream's last message that is still there, and its stream sequence. The
/// message at the stream's last sequence may be gone (`nats stream rmm`): the
/// stream keeps its last sequence, and the feed goes on after the last message
/// it still holds. The stream holds at least one message between `first` and `last`.
async fn last_message(
    stream: &stream::Stream,
    first: u64,
    last: u64,
) -> Result<(u64, async_nats::jetstream::message::StreamMessage), ExportError> {
    let mut at = last;
    loop {
        match stream.get_raw_message(at).await {
            Ok(message) => return Ok((at, message)),
            Err(error) if error.kind() == stream::RawMessageErrorKind::NoMessageFound && at > first => at -= 1,
            Err(error) => return Err(nats("read the last message")(&error)),
        }
    }
}

/// Durable events from `next` on, whole records, about `EXPORT_BATCH_EVENTS_MAX`
/// of them, as (sequence, subject, body): read and encoded off the runtime's
/// threads, as the log is read on disk.
async fn read_batch(ledger: &Ledger, next: u64) -> Result<Vec<(u64, String, Vec<u8>)>, ExportError> {
    let ledger = ledger.clone();
    let read = tokio::task::spawn_blocking(move || -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let mut batch = Vec::new();
        for record in ledger.durable_records(next) {
            let (first, events) = record?;
            let count = u64::try_from(events.len()).expect("a record's length fits u64");
            let last = first + count - 1;
            for (sequence, stored) in (first..).zip(&events) {
                if sequence < next {
                    continue;
                }
                let body = Body::of(sequence, stored, first, last)
                    .map_err(|error| StoreError::Corrupt { sequence, reason: error.to_string() })?;
                let bytes = serde_json::to_vec(&body).expect("a body serializes to JSON");
                batch.push((sequence, subject(&body.program_id), bytes));
            }
            if batch.len() >= EXPORT_BATCH_EVENTS_MAX {
                break;
            }
        }
        Ok(batch)
    });
    Ok(read.await.expect("reading a batch does not panic")?)
}

/// Awaits one publish's ack: stored, as the next message of the stream.
async fn acknowledged(
    sequence: u64,
    ack: PublishAckFuture,
    published: &metrics::Gauge,
    retry: &mut Duration,
) -> Result<(), ExportError> {
    let ack = ack.await.map_err(|error| nats("publish ack")(&error))?;
    if ack.duplicate {
        return Err(ExportError::Duplicate { sequence });
    }
    published.set(u64_to_gauge(sequence));
    *retry = RETRY_MIN;
    tracing::trace!(sequence, stream_sequence = ack.sequence, "event export: stored");
    Ok(())
}

/// A sequence as a gauge's value: exact below 2^53, which a log never reaches.
#[allow(clippy::cast_precision_loss)]
fn u64_to_gauge(sequence: u64) -> f64 {
    sequence as f64
}
