//! `ledger import-nats`: rebuilds a ledger's data directory from the event feed in
//! JetStream, reading the stream from its first message to the last one it held
//! when the import started (or `--until-seq`). Each event is checked (sequence,
//! BLAKE3 of its envelope bytes, link to the one before) and written, whole
//! records only, by `ledger_store::rebuild`, which syncs and verifies the result.
//! An import that stops on an error leaves nothing in the directory (the rebuild
//! removes what it wrote when it is dropped unfinished).

use super::{Body, BodyError, message_sequence};
use async_nats::jetstream::{self, consumer};
use ledger_store::rebuild::{Rebuild, RebuildError, RebuildReport};
use std::path::PathBuf;
use std::time::Duration;
use tokio_stream::StreamExt as _;

/// How long one JetStream request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ImportConfig {
    pub url: String,
    pub stream: String,
    /// A new (or empty) directory for the rebuilt ledger.
    pub data_dir: PathBuf,
    /// Stop after this sequence (cut back to the last whole command at or before it).
    pub until_sequence: Option<u64>,
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
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
}

fn nats(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ImportError {
    move |error| ImportError::Nats { what, reason: error.to_string() }
}

/// Rebuilds `config.data_dir` from the stream; `progress` gets each sequence received.
pub async fn import(config: &ImportConfig, mut progress: impl FnMut(u64)) -> Result<RebuildReport, ImportError> {
    let client = async_nats::ConnectOptions::new()
        .name("ledger import-nats")
        .connection_timeout(REQUEST_TIMEOUT)
        .connect(super::servers(&config.url))
        .await
        .map_err(|error| nats("connect")(&error))?;
    let context = jetstream::ContextBuilder::new().timeout(REQUEST_TIMEOUT).build(client);
    let stream = context.get_stream(&config.stream).await.map_err(|error| nats("find the stream")(&error))?;
    let info = stream.get_info().await.map_err(|error| nats("stream info")(&error))?;
    if info.state.messages == 0 {
        return Err(ImportError::Empty { stream: config.stream.clone() });
    }
    // The end as of now: the exporter may go on publishing while this reads.
    let end = info.state.last_sequence;
    let mut rebuild = Rebuild::create(&config.data_dir)?;
    // An ordered consumer: ephemeral, no acks, recreated by the client from where
    // it stopped if a message goes missing on the way.
    let reader = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|error| nats("create a consumer")(&error))?;
    let mut messages = reader.messages().await.map_err(|error| nats("read the stream")(&error))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| nats("read the stream")(&error))?;
        let info = message.info().map_err(|error| nats("message info")(&error))?;
        let stream_sequence = info.stream_sequence;
        // Nothing after this one yet: the messages up to `end` were deleted, and
        // waiting for `end` itself would wait for ever.
        let last_held = info.pending == 0;
        let event = Body::exported(&message.payload).map_err(|source| ImportError::Body { stream_sequence, source })?;
        let sequence = event.sequence;
        if message_sequence(message.headers.as_ref()) != Some(sequence) {
            return Err(ImportError::MessageId { stream_sequence, sequence });
        }
        if config.until_sequence.is_some_and(|until| sequence > until) {
            break;
        }
        rebuild.push(event)?;
        progress(sequence);
        if stream_sequence >= end || last_held || config.until_sequence == Some(sequence) {
            break;
        }
    }
    Ok(tokio::task::spawn_blocking(move || rebuild.finish()).await.expect("finishing a rebuild does not panic")?)
}
