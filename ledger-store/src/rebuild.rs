//! Rebuild: write a ledger's log into a fresh data directory from its events as
//! another ledger exported them (the NATS JetStream feed, `ledger import-nats`),
//! one event at a time, checking each before anything is written.
//!
//! Losses this module prevents, and how each could happen:
//!
//! - **An event that differs from the one the first ledger recorded.** Each event
//!   comes with the exact bytes its hash covers: the hash must be BLAKE3 of those
//!   bytes, the bytes must decode to an envelope of the expected sequence, and its
//!   previous hash must be the hash of the event before (`replay::check`, the walk
//!   recovery and audits share). The log is written from those bytes, so the new
//!   directory's hash chain is the first ledger's, byte for byte, and its head hash
//!   can be compared with the first ledger's.
//! - **A gap or a reordering.** Events must come in sequence order from 1 with none
//!   missing; anything else is `RebuildError::Gap` naming the sequence expected.
//! - **Half a command.** Each event says which record (command) it belongs to, by
//!   the record's first and last sequence. Events are held until their record is
//!   complete and written as one log value, as the writer wrote it; a record the
//!   feed ends inside of is not written (the report counts its events), so the new
//!   ledger never holds part of a bulk that was decided and acknowledged whole.
//! - **A new directory mistaken for a good one.** The written log is made durable
//!   (`Disk::flush`: sled's flush, then a sync of its main file and of the blob
//!   files it created, which sled's flush alone does not sync) and verified from
//!   its first event before the report says it is done. A rebuild dropped before
//!   `finish` succeeds (an import that stopped at a gap, a bad hash, a lost
//!   connection) removes what it wrote, so no half-rebuilt directory is left for
//!   `ledgerd` to open as a shorter ledger, and the same directory can be used
//!   again.
//!
//! Projections are not written: `Ledger::open` rebuilds them by replaying the log
//! once, as after a salvage. Tokens are not events and do not travel with them:
//! `ledgerd` issues a new admin token on its first start on the new directory.

use crate::audit;
use crate::disk::Disk;
use crate::envelope::{self, Hash, StoredEvent};
use crate::error::StoreError;
use crate::log::{self, Log};
use crate::replay::{self, Head, Until};
use std::path::{Path, PathBuf};

/// One event as an export carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedEvent {
    pub sequence: u64,
    /// The first and last sequence of the record (command) the event belongs to.
    pub record_first: u64,
    pub record_last: u64,
    /// The envelope's encoding, whose BLAKE3 is `hash`.
    pub bytes: Vec<u8>,
    pub hash: Hash,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("sequence {expected} is missing: the feed goes on with sequence {found}")]
    Gap { expected: u64, found: u64 },
    #[error("sequence {sequence}: the hash it came with is not the BLAKE3 of its envelope bytes")]
    Hash { sequence: u64 },
    #[error("sequence {sequence}: its previous hash {found} is not the hash of sequence {}, {expected}", sequence - 1)]
    Link { sequence: u64, found: String, expected: String },
    #[error("sequence {sequence}: {reason}")]
    Envelope { sequence: u64, reason: String },
    #[error("sequence {sequence}: record {record_first}..={record_last} {reason}")]
    Record { sequence: u64, record_first: u64, record_last: u64, reason: &'static str },
    #[error("{} is not empty: a rebuild writes a fresh data directory", path.display())]
    NotEmpty { path: PathBuf },
    #[error("the rebuilt directory does not verify as written: {0}")]
    Unverified(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a finished rebuild wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    /// Events written: sequences 1 through `events`.
    pub events: u64,
    /// The hex hash of the last event written: the new directory's head.
    pub head_hash: String,
    /// Events received after the last whole record, not written: the feed ended
    /// inside a command.
    pub dropped_events: u64,
}

/// A rebuild in progress: the new directory's log, the head of what it holds, and
/// the events of the record being received.
pub struct Rebuild {
    path: PathBuf,
    /// Whether `path` existed (empty) before: then only its contents are removed
    /// when the rebuild is abandoned.
    existed: bool,
    /// The open database; taken by `finish`.
    open: Option<Open>,
    head: Head,
    /// Events of the record not complete yet, checked, in order.
    pending: Vec<StoredEvent>,
    /// The head after the last pending event.
    pending_head: Head,
    /// The pending record's (first, last) sequence.
    record: Option<(u64, u64)>,
    /// Set once `finish` verified the directory: it is kept.
    finished: bool,
}

/// The new directory's database, its log, and what makes its flush durable.
struct Open {
    log: Log,
    /// Holds the database too.
    disk: Disk,
}

impl Rebuild {
    /// Starts a rebuild into `path`, which must not exist or be empty.
    pub fn create(path: &Path) -> Result<Rebuild, RebuildError> {
        let existed = path.exists();
        if existed && std::fs::read_dir(path).map_err(StoreError::Io)?.next().is_some() {
            return Err(RebuildError::NotEmpty { path: path.to_owned() });
        }
        std::fs::create_dir_all(path).map_err(StoreError::Io)?;
        // From here on, a failure drops the rebuild, which removes what it made.
        let mut rebuild = Rebuild {
            path: path.to_owned(),
            existed,
            open: None,
            head: Head::GENESIS,
            pending: Vec::new(),
            pending_head: Head::GENESIS,
            record: None,
            finished: false,
        };
        // No background flush: `finish` flushes once, and an unfinished rebuild is
        // thrown away, not resumed.
        let db = crate::error::open_sled(&sled::Config::new().path(path).flush_every_ms(None), path)?;
        // Opened before anything is written, so that its sync covers every blob file sled creates.
        let disk = Disk::open(db.clone(), path).map_err(StoreError::Io)?;
        let log = Log::open(&db)?;
        rebuild.open = Some(Open { log, disk });
        Ok(rebuild)
    }

    /// The last sequence written (whole records only).
    pub fn written(&self) -> u64 {
        self.head.sequence
    }

    /// The last sequence received and checked, written or pending.
    pub fn received(&self) -> u64 {
        self.pending_head.sequence
    }

    /// Checks `event` as the one after the last received, and writes its record
    /// once it is the record's last event.
    pub fn push(&mut self, event: ExportedEvent) -> Result<(), RebuildError> {
        let sequence = event.sequence;
        let expected = self.pending_head.sequence + 1;
        if sequence != expected {
            return Err(RebuildError::Gap { expected, found: sequence });
        }
        let (first, last) = self.record.unwrap_or((event.record_first, event.record_last));
        let record_error = |reason| RebuildError::Record { sequence, record_first: first, record_last: last, reason };
        if (event.record_first, event.record_last) != (first, last) {
            return Err(record_error("changes its bounds inside the record"));
        }
        if !(first <= sequence && sequence <= last) {
            return Err(record_error("does not hold the event"));
        }
        if self.record.is_none() && first != sequence {
            return Err(record_error("starts before the feed's next event"));
        }
        let stored = StoredEvent { bytes: event.bytes, hash: event.hash };
        if !stored.hash_matches() {
            return Err(RebuildError::Hash { sequence });
        }
        let envelope = envelope::decode(&stored.bytes)
            .map_err(|error| RebuildError::Envelope { sequence, reason: error.to_string() })?;
        if envelope.prev_hash != self.pending_head.hash {
            return Err(RebuildError::Link {
                sequence,
                found: envelope::hex(&envelope.prev_hash),
                expected: envelope::hex(&self.pending_head.hash),
            });
        }
        // The walk's own check too, so that what is written is exactly what
        // recovery will accept.
        let envelope = replay::check(&self.pending_head, sequence, &stored).map_err(|error| match error {
            StoreError::Corrupt { sequence, reason } => RebuildError::Envelope { sequence, reason },
            other => RebuildError::Store(other),
        })?;
        self.pending_head = Head { sequence, hash: stored.hash, recorded_at: envelope.recorded_at };
        self.pending.push(stored);
        self.record = Some((first, last));
        if sequence == last {
            let open = self.open.as_ref().expect("open until finished");
            open.log.tree().insert(log::key(first), log::encode_record(&self.pending)).map_err(StoreError::Sled)?;
            self.pending.clear();
            self.record = None;
            self.head = self.pending_head;
        }
        Ok(())
    }

    /// Makes what was written durable, verifies the new directory from its first
    /// event and reports its head. Events of a record the feed ended inside are
    /// dropped. On an error the directory's contents are removed.
    pub fn finish(mut self) -> Result<RebuildReport, RebuildError> {
        let dropped_events = self.pending_head.sequence - self.head.sequence;
        let open = self.open.take().expect("open until finished");
        open.disk.flush().map_err(|reason| StoreError::Io(std::io::Error::other(reason)))?;
        // sled releases its lock only when the last handle to a database is gone.
        drop(open);
        let db = audit::open_released(&self.path).map_err(|error| StoreError::from_open(&self.path, error))?;
        let report = audit::verify_log(&Log::open(&db)?, Until::End, |_| {})?;
        drop(db);
        let head_hash = envelope::hex(&self.head.hash);
        if !report.ok || report.events != self.head.sequence || report.head_hash != head_hash {
            return Err(RebuildError::Unverified(format!(
                "events {}, head {}: {}",
                report.events, report.head_hash, report.first_mismatch
            )));
        }
        self.finished = true;
        Ok(RebuildReport { events: self.head.sequence, head_hash, dropped_events })
    }
}

impl Drop for Rebuild {
    /// An unfinished rebuild is thrown away: a directory holding part of a log
    /// would open as a shorter ledger.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        drop(self.open.take());
        if !self.existed {
            let _ = std::fs::remove_dir_all(&self.path);
            return;
        }
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            }
        }
    }
}
