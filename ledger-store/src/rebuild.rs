//! Rebuild: write a ledger's log into a data directory from its events as
//! another ledger exported them (the NATS JetStream feed, `ledger import-nats`),
//! one event at a time, checking each before anything is written. The directory
//! is a fresh one (`Rebuild::create`), or one that holds a ledger already, an
//! earlier rebuild's or a stopped `ledgerd`'s (`Rebuild::append`): then the log
//! goes on from its head, so a standby follows the feed instead of starting over.
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
//! - **Another ledger's events appended to a directory.** Appending starts from
//!   the directory's head (its last event, whose hash is checked against its
//!   bytes): the first event must be the head's sequence + 1 and name the head's
//!   hash as its previous hash, the same link check as every other event; the
//!   importer also compares the feed's event at the head's sequence with the
//!   head before it appends anything.
//! - **A directory two writers append to.** sled locks its directory: a running
//!   `ledgerd` (or another import) makes the open fail with `StoreError::Locked`.
//! - **A written log mistaken for a good one.** The written log is verified (from
//!   its first event when the directory was new, from the head it started at when
//!   appending) before the report says it is done.
//! - **Progress reported that a power loss takes back.** `sync` makes what was
//!   written durable the way the ledger does (`disk`), and a follower reports a
//!   head only after it; whatever was not synced is fetched again next time, since
//!   an append always starts from the head on disk.
//!
//! Projections are not written: `Ledger::open` rebuilds them by replaying the log
//! once, as after a salvage; in a directory a `ledgerd` checkpointed, it replays
//! only the log after the checkpoint (`#meta`'s applied sequence), appended
//! records included. Tokens are not events and do not travel with them: `ledgerd`
//! issues a new admin token on its first start on a new directory, and keeps the
//! tokens of one it opened before.

use crate::audit;
use crate::disk::Disk;
use crate::envelope::{self, Hash, StoredEvent};
use crate::error::StoreError;
use crate::log::{self, Log};
use crate::replay::{self, Head, Until};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    #[error("{} holds files but no ledger (no sled database): give a new directory, or a ledger's", path.display())]
    NotALedger { path: PathBuf },
    #[error("the rebuilt directory does not verify as written: {0}")]
    Unverified(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a finished rebuild wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuildReport {
    /// The directory's log now holds sequences 1 through `events`.
    pub events: u64,
    /// The head the directory had before: 0 for a new directory; events
    /// `started_at + 1 ..= events` were appended and verified.
    pub started_at: u64,
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
    disk: Arc<Disk>,
    log: Log,
    /// The directory's head when the rebuild opened it (genesis for a new one).
    started: Head,
    head: Head,
    /// Events of the record not complete yet, checked, in order.
    pending: Vec<StoredEvent>,
    /// The head after the last pending event.
    pending_head: Head,
    /// The pending record's (first, last) sequence.
    record: Option<(u64, u64)>,
}

impl Rebuild {
    /// Starts a rebuild into `path`, which must not exist or be empty.
    pub fn create(path: &Path) -> Result<Rebuild, RebuildError> {
        if path.exists() && std::fs::read_dir(path).map_err(StoreError::Io)?.next().is_some() {
            return Err(RebuildError::NotEmpty { path: path.to_owned() });
        }
        std::fs::create_dir_all(path).map_err(StoreError::Io)?;
        Rebuild::open_at(path, false)
    }

    /// Goes on with the ledger in `path` (an earlier rebuild's, or a stopped
    /// `ledgerd`'s): the next event must follow its log's head.
    pub fn append(path: &Path) -> Result<Rebuild, RebuildError> {
        if !holds_ledger(path) {
            return Err(RebuildError::NotALedger { path: path.to_owned() });
        }
        Rebuild::open_at(path, true)
    }

    /// `create` for a missing or empty directory, `append` for one that holds a
    /// ledger; anything else is refused.
    pub fn open(path: &Path) -> Result<Rebuild, RebuildError> {
        if holds_ledger(path) {
            return Rebuild::append(path);
        }
        if path.exists() && std::fs::read_dir(path).map_err(StoreError::Io)?.next().is_some() {
            return Err(RebuildError::NotALedger { path: path.to_owned() });
        }
        Rebuild::create(path)
    }

    fn open_at(path: &Path, existing: bool) -> Result<Rebuild, RebuildError> {
        // No background flush: `sync` and `finish` flush, and sled's lock keeps a
        // running `ledgerd` (or another import) out while this writes.
        let db = crate::error::open_sled(&sled::Config::new().path(path).flush_every_ms(None), path)?;
        let log = Log::open(&db)?;
        let disk = Arc::new(Disk::open(db, path).map_err(StoreError::Io)?);
        let head = if existing { stored_head(&log)? } else { Head::GENESIS };
        Ok(Rebuild {
            path: path.to_owned(),
            disk,
            log,
            started: head,
            head,
            pending: Vec::new(),
            pending_head: head,
            record: None,
        })
    }

    /// The head the directory had when the rebuild opened it: (0, genesis hash)
    /// for a new one.
    pub fn started_at(&self) -> (u64, Hash) {
        (self.started.sequence, self.started.hash)
    }

    /// The hex hash of the last event written (whole records only).
    pub fn written_hash(&self) -> String {
        envelope::hex(&self.head.hash)
    }

    /// What makes the records written so far durable, to run off an async
    /// runtime's threads: `Syncer::sync` covers every record written before it.
    pub fn syncer(&self) -> Syncer {
        Syncer(Arc::clone(&self.disk))
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
            self.log.tree().insert(log::key(first), log::encode_record(&self.pending)).map_err(StoreError::Sled)?;
            self.pending.clear();
            self.record = None;
            self.head = self.pending_head;
        }
        Ok(())
    }

    /// Makes what was written durable, then verifies it, from the first event of
    /// a new directory or from the head an append started at (whose own chain
    /// was checked as it was written, and is verified whole by `ledgerd` at every
    /// open), and reports the head. Events of a record the feed ended inside are
    /// dropped.
    pub fn finish(self) -> Result<RebuildReport, RebuildError> {
        let dropped_events = self.pending_head.sequence - self.head.sequence;
        self.syncer().sync()?;
        let Rebuild { path, disk, log, started, head, .. } = self;
        // sled releases its lock only when the last handle to a database is gone.
        drop((log, disk));
        let db = audit::open_released(&path).map_err(|error| StoreError::from_open(&path, error))?;
        let log = Log::open(&db)?;
        let verified = if started.sequence == 0 {
            let report = audit::verify_log(&log, Until::End, |_| {})?;
            (report.ok && report.events == head.sequence && report.head_hash == envelope::hex(&head.hash))
                .then_some(())
                .ok_or_else(|| {
                    format!("events {}, head {}: {}", report.events, report.head_hash, report.first_mismatch)
                })
        } else {
            match replay::walk(&log, started, Until::End, |_, _| {}) {
                Ok(walked) if walked.sequence == head.sequence && walked.hash == head.hash => Ok(()),
                Ok(walked) => Err(format!(
                    "appended after sequence {}: the log ends at {} with {}",
                    started.sequence,
                    walked.sequence,
                    envelope::hex(&walked.hash)
                )),
                Err(error) => Err(format!("appended after sequence {}: {error}", started.sequence)),
            }
        };
        verified.map_err(RebuildError::Unverified)?;
        Ok(RebuildReport {
            events: head.sequence,
            started_at: started.sequence,
            head_hash: envelope::hex(&head.hash),
            dropped_events,
        })
    }
}

/// Makes the records a `Rebuild` wrote durable (see `Rebuild::syncer`).
pub struct Syncer(Arc<Disk>);

impl Syncer {
    /// When this returns `Ok`, every record written before the call survives a
    /// power loss: sled's flush, then a sync of exactly what it wrote.
    pub fn sync(&self) -> Result<(), RebuildError> {
        self.0.flush().map_err(|reason| RebuildError::Store(StoreError::Io(std::io::Error::other(reason))))
    }
}

/// Whether `path` holds a sled database (a ledger's data directory, or a
/// rebuild's).
fn holds_ledger(path: &Path) -> bool {
    path.join("db").is_file() && path.join("conf").is_file()
}

/// The log's last event as a head, checked: its hash must be the BLAKE3 of its
/// bytes and its envelope must say it is that sequence, so that a rebuild never
/// links onto an event the directory does not really hold.
fn stored_head(log: &Log) -> Result<Head, StoreError> {
    let Some((key, value)) = log.tree().last()? else { return Ok(Head::GENESIS) };
    let first = log::sequence_of(&key)?;
    let events = log::decode_record(first, &value)?;
    let count = u64::try_from(events.len()).expect("a record's length fits u64");
    let sequence = first + count - 1;
    let stored = events.last().expect("records are never empty");
    let corrupt = |reason: String| StoreError::Corrupt { sequence, reason };
    if !stored.hash_matches() {
        return Err(corrupt("the stored hash is not the hash of the stored event".to_owned()));
    }
    let envelope = envelope::decode(&stored.bytes).map_err(|error| corrupt(error.to_string()))?;
    if envelope.sequence != sequence {
        return Err(corrupt(format!("the event says it is sequence {}", envelope.sequence)));
    }
    Ok(Head { sequence, hash: stored.hash, recorded_at: envelope.recorded_at })
}
