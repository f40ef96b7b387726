//! AdminService.Backup: a consistent backup (`ledger_store::backup`) streamed to
//! the caller as it is taken, in chunks of at most `BACKUP_CHUNK_BYTES`.
//!
//! The store writes the file on a blocking thread (it reads sled) into a bounded
//! channel of chunks that the response stream drains as the client reads. So a
//! backup holds at most `BACKUP_CHUNKS_QUEUED` chunks in memory, and a slow
//! client slows the copy down rather than filling memory. While the copy of the
//! checkpoint runs, checkpoints wait (`Shared::checkpoint_gate`), so a client
//! that stops reading then delays checkpoints, never writes; one that goes away
//! ends the copy and lets them go on, and so does one that takes no chunk for
//! `BACKUP_CHUNK_WAIT` (a client still connected but stuck, as `ledger backup`
//! on a hung disk: HTTP/2 keepalive does not notice it, and checkpoints, a
//! storage fault's recovery and a stop would wait for it without end). A backup
//! counts as one of the token's and the server's streams (`limits::StreamCaps`).

use super::Api;
use crate::auth::{self, Access};
use crate::limits::StreamPermit;
use crate::pb;
use crate::status::from_ledger;
use ledger_core::limits::BACKUP_CHUNK_BYTES;
use ledger_store::LedgerError;
use ledger_store::backup::BackupHeader;
use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Chunks produced and not yet sent: a few, so that reading sled and sending
/// overlap without the backup piling up in memory.
const BACKUP_CHUNKS_QUEUED: usize = 4;

/// How long the client may take to read one chunk (1 MiB) before the backup
/// gives up: a client slower than that is stuck, not slow.
const BACKUP_CHUNK_WAIT: Duration = Duration::from_secs(60);

pub type BackupStream = Pin<Box<dyn Stream<Item = Result<pb::BackupChunk, Status>> + Send>>;

impl Api {
    pub(super) fn backup_stream(&self, request: &Request<pb::BackupRequest>) -> Result<Response<BackupStream>, Status> {
        let caller = auth::check(&self.ledger, request, Access::Admin)?;
        let permit = self.streams.acquire(&caller.token_id)?;
        let (chunks, received) = mpsc::channel(BACKUP_CHUNKS_QUEUED);
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let header = Cell::new(None);
            let mut out = Chunks {
                chunks: &chunks,
                data: Vec::with_capacity(BACKUP_CHUNK_BYTES),
                header: &header,
                wait: BACKUP_CHUNK_WAIT,
            };
            let taken = ledger.backup_to(&mut out, |started: &BackupHeader| header.set(Some(*started)));
            match taken {
                Ok(summary) => {
                    tracing::info!(
                        sequence = summary.header.sequence,
                        checkpoint = summary.header.checkpoint_sequence,
                        bytes = summary.bytes,
                        rows = summary.projection_rows,
                        records = summary.log_records,
                        checkpoint_wait_ms = summary.checkpoint_wait.as_millis(),
                        "backup sent"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "backup not completed");
                    // The client may be gone already, or stuck; then nobody needs the answer.
                    let status = from_ledger(LedgerError::Unavailable(error.to_string()));
                    let _ = send_within(&chunks, Err(status), BACKUP_CHUNK_WAIT);
                }
            }
        });
        Ok(Response::new(Box::pin(BackupChunks { received, _permit: permit })))
    }
}

/// The backup file as a `Write`: each `BACKUP_CHUNK_BYTES` become a message; the
/// first also carries the header's sequence and hashes.
struct Chunks<'a> {
    chunks: &'a mpsc::Sender<Result<pb::BackupChunk, Status>>,
    data: Vec<u8>,
    header: &'a Cell<Option<BackupHeader>>,
    /// How long one chunk may wait for room in the channel.
    wait: Duration,
}

impl Chunks<'_> {
    fn send(&mut self) -> std::io::Result<()> {
        let data = std::mem::replace(&mut self.data, Vec::with_capacity(BACKUP_CHUNK_BYTES));
        let mut chunk = pb::BackupChunk { data, ..pb::BackupChunk::default() };
        if let Some(header) = self.header.take() {
            chunk.sequence = header.sequence;
            chunk.head_hash = header.head_hash_hex();
            chunk.checkpoint_sequence = header.checkpoint_sequence;
        }
        send_within(self.chunks, Ok(chunk), self.wait)
    }
}

/// Sends on the channel from a blocking thread, giving up once `wait` passed
/// without room. It looks every millisecond rather than waiting on a runtime's
/// timer, which a stopping server may already have shut down.
fn send_within(
    chunks: &mpsc::Sender<Result<pb::BackupChunk, Status>>,
    mut message: Result<pb::BackupChunk, Status>,
    wait: Duration,
) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match chunks.try_send(message) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => {
                return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"));
            }
            Err(TrySendError::Full(back)) if started.elapsed() < wait => {
                message = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(TrySendError::Full(_)) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the client read no backup data for {wait:?}"),
                ));
            }
        }
    }
}

impl std::io::Write for Chunks<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = BACKUP_CHUNK_BYTES - self.data.len();
        let taken = bytes.len().min(room);
        self.data.extend_from_slice(&bytes[..taken]);
        if self.data.len() == BACKUP_CHUNK_BYTES {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.data.is_empty() && self.header.get().is_none() {
            return Ok(());
        }
        self.send()
    }
}

/// The response stream: the chunks as they come, holding the stream permit.
struct BackupChunks {
    received: mpsc::Receiver<Result<pb::BackupChunk, Status>>,
    _permit: StreamPermit,
}

impl Stream for BackupChunks {
    type Item = Result<pb::BackupChunk, Status>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.received.poll_recv(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// A client that stays connected and reads nothing: the backup's write fails
    /// once a chunk waited `wait`, so the checkpoint gate is let go.
    #[test]
    fn a_client_that_stops_reading_ends_the_backup() {
        let (chunks, _never_read) = mpsc::channel(1);
        let header = Cell::new(None);
        let wait = Duration::from_millis(50);
        let mut out = Chunks { chunks: &chunks, data: Vec::new(), header: &header, wait };
        let error = out.write_all(&vec![0; 3 * BACKUP_CHUNK_BYTES]).expect_err("a stuck client fails the backup");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
    }
}
