//! Audits of a data directory: verify the hash chain, replay the log and compare
//! with the projections the server would serve. Offline tools open the directory
//! themselves, so the server must be stopped (sled locks its directory).
//!
//! Losses these tools must not cause or hide, and how each could happen:
//!
//! - **A damaged backup made worse.** sled takes a lock file and may rewrite its own
//!   recovery state (a new snapshot, zeroed bytes after the last message it could
//!   read) whenever it opens a directory. A directory the tool cannot write to (a
//!   mounted backup) is therefore copied to a scratch directory first, and sled opens
//!   the copy ([`open_audited`]); `salvage` always works on a copy. A writable
//!   directory is opened in place, as a healthy one should be: sled may then zero
//!   what follows a damaged message, bytes it could not read anyway; to keep a
//!   damaged directory exactly as found, verify a copy of it, or salvage it.
//! - **A break reported without a place.** Every failure names the first sequence that
//!   does not verify and how many before it do; when sled itself cannot read its files,
//!   the report names sled's error with the file (and the offset when sled gives one),
//!   then opens a copy without sled's snapshot files, which makes sled rebuild its page
//!   table from its log and stop at the first message whose checksum fails, to say how
//!   much of the log is still readable.
//! - **A silently shortened log.** sled recovers a prefix of its log and drops what
//!   follows a damaged message without an error. A checkpoint records the sequence it
//!   covers, so a log that ends before it has lost its end: `verify_dir` reports it.

use crate::activity::{self, ActivityIndex, Generation};
use crate::envelope;
use crate::error::StoreError;
use crate::fold::NoActivities;
use crate::log::Log;
use crate::projections::Projections;
use crate::replay::{self, Head, Until};
use ledger_core::State;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events that verify, from sequence 1 on.
    pub events: u64,
    /// The hash of the last event that verifies (of the genesis when none does).
    pub head_hash: String,
    pub ok: bool,
    /// Empty when ok; otherwise the first broken link, by sequence.
    pub first_mismatch: String,
    /// The first sequence that does not verify; `None` when ok, or when sled cannot
    /// read the directory at all.
    pub first_bad_sequence: Option<u64>,
    /// What the tool did that the operator should know (it verified a copy, say).
    pub notes: Vec<String>,
}

impl VerifyReport {
    fn broken(events: u64, head_hash: String, sequence: Option<u64>, reason: &str) -> VerifyReport {
        let first_mismatch = match sequence {
            Some(sequence) => format!("sequence {sequence}: {reason}"),
            None => reason.to_owned(),
        };
        VerifyReport { events, head_hash, ok: false, first_mismatch, first_bad_sequence: sequence, notes: Vec::new() }
    }
}

pub fn verify_log(log: &Log, until: Until, progress: impl FnMut(u64)) -> Result<VerifyReport, StoreError> {
    verify_log_in(log, until, None, progress)
}

/// Verifies the chain; `dir`, when known, names sled's files in its errors.
fn verify_log_in(
    log: &Log,
    until: Until,
    dir: Option<&Path>,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, StoreError> {
    let mut last = 0u64;
    let walked = replay::walk(log, Head::GENESIS, until, |stamp, _| {
        progress(stamp.sequence);
        last = stamp.sequence;
    });
    let (sequence, reason) = match walked {
        Ok(head) => {
            return Ok(VerifyReport {
                events: head.sequence,
                head_hash: envelope::hex(&head.hash),
                ok: true,
                first_mismatch: String::new(),
                first_bad_sequence: None,
                notes: Vec::new(),
            });
        }
        Err(StoreError::Corrupt { sequence, reason }) => (sequence, reason),
        // Whatever stops the walk (sled cannot read a page, a record of an unknown
        // format) stops it right after the last event that verified.
        Err(StoreError::Sled(error)) => (last + 1, sled_problem(&error, dir)),
        Err(other) => (last + 1, other.to_string()),
    };
    let head_hash = match last {
        0 => envelope::hex(&envelope::GENESIS_HASH),
        _ => log.event(last)?.map(|event| envelope::hex(&event.hash)).unwrap_or_default(),
    };
    Ok(VerifyReport::broken(last, head_hash, Some(sequence), &reason))
}

/// What a replay reports.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    pub events: u64,
    pub head_hash: String,
    /// The replayed state.
    pub state: State,
    /// With a replay to the end: the first difference from the projections the
    /// server would serve (checkpoint plus tail), `None` when equal.
    pub difference: Option<String>,
}

pub fn open_offline(path: &Path) -> Result<sled::Db, StoreError> {
    ensure_ledger(path)?;
    crate::error::open_sled(&sled::Config::new().path(path), path)
}

fn ensure_ledger(path: &Path) -> Result<(), StoreError> {
    if !path.join("conf").exists() && !path.join("db").exists() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} holds no ledger", path.display()),
        )));
    }
    Ok(())
}

/// A data directory as an offline tool opened it: in place, or as a scratch copy.
pub struct Opened {
    /// Declared before `scratch`, so sled closes before its copy is removed.
    pub db: sled::Db,
    /// What the tool did that the operator should know.
    pub notes: Vec<String>,
    scratch: Option<Scratch>,
}

impl Opened {
    /// Where sled opened the ledger: the directory itself or its copy.
    pub fn scratch_path(&self) -> Option<&Path> {
        self.scratch.as_ref().map(Scratch::path)
    }
}

/// Opens `dir` for an audit. When `dir` cannot be written to (a mounted backup),
/// sled could take neither its lock file nor its recovery writes, so the directory
/// is copied under the system's temporary directory (`TMPDIR`) and sled opens the
/// copy, which is removed when the result drops.
pub fn open_audited(dir: &Path) -> Result<Opened, StoreError> {
    ensure_ledger(dir)?;
    if writable(dir) {
        let db = sled::Config::new().path(dir).open().map_err(|error| StoreError::from_open(dir, error))?;
        return Ok(Opened { db, notes: Vec::new(), scratch: None });
    }
    let scratch = Scratch::copy_of(dir, &std::env::temp_dir(), "verify")?;
    let note = format!(
        "{} is read-only (sled must take a lock file and may rewrite its recovery state): audited a copy in {}",
        dir.display(),
        scratch.path().display()
    );
    let db = sled::Config::new().path(scratch.path()).open().map_err(StoreError::Sled)?;
    Ok(Opened { db, notes: vec![note], scratch: Some(scratch) })
}

/// Whether a file can be created in `dir`. Checked by trying, not from the mode
/// bits: root ignores those, and a read-only mount refuses even root.
pub fn writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".ledger-write-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// Verifies the hash chain of the ledger in `path`; `progress` gets each verified sequence.
pub fn verify_dir(path: &Path, mut progress: impl FnMut(u64)) -> Result<VerifyReport, StoreError> {
    verify_dir_sized(path, |sequence, _| progress(sequence))
}

/// [`verify_dir`], whose `progress` also gets the log's last sequence (0 when that
/// cannot be read), for a progress bar: the directory is opened once, and may
/// have to be copied first.
pub fn verify_dir_sized(path: &Path, mut progress: impl FnMut(u64, u64)) -> Result<VerifyReport, StoreError> {
    let opened = match open_audited(path) {
        Ok(opened) => opened,
        Err(StoreError::Sled(error)) => return verify_unopenable(path, &error, progress),
        Err(other) => return Err(other),
    };
    let log = Log::open(&opened.db)?;
    let head = log.head().map_or(0, |(sequence, _)| sequence);
    let mut report = verify_log_in(&log, Until::End, Some(path), |sequence| progress(sequence, head))?;
    if report.ok {
        check_checkpoint(&opened.db, &mut report);
    }
    report.notes.splice(0..0, opened.notes);
    Ok(report)
}

/// A log that verifies but ends before the sequence its checkpoint covers lost its
/// end: sled dropped what followed a damaged message.
fn check_checkpoint(db: &sled::Db, report: &mut VerifyReport) {
    let meta = Projections::open(db).and_then(|projections| projections.meta());
    match meta {
        Ok(Some(meta)) if meta.applied_sequence > report.events => {
            let reason = format!(
                "the log ends at sequence {}, but the checkpoint covers events through {}: the log lost its end \
                 (sled keeps what it can read up to the first damaged message)",
                report.events, meta.applied_sequence
            );
            let notes = std::mem::take(&mut report.notes);
            *report = VerifyReport::broken(report.events, report.head_hash.clone(), Some(report.events + 1), &reason);
            report.notes = notes;
        }
        Ok(_) => {}
        Err(error) => report.notes.push(format!("the checkpoint's sequence could not be read: {error}")),
    }
}

/// sled cannot open `path`: name its problem, then find how much of the log a copy
/// without sled's snapshot files still reads.
fn verify_unopenable(
    path: &Path,
    error: &sled::Error,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, StoreError> {
    let problem = format!("sled cannot open {}: {}", path.display(), sled_problem(error, Some(path)));
    let scratch = Scratch::copy_of(path, &std::env::temp_dir(), "verify")?;
    let removed = remove_snapshots(scratch.path())?;
    let note = format!(
        "read a copy in {} without sled's snapshot files ({removed} removed), so that sled rebuilds its state \
         from its log and stops at the first damaged message",
        scratch.path().display()
    );
    let db = match sled::Config::new().path(scratch.path()).open() {
        Ok(db) => db,
        Err(again) => {
            let reason = format!("{problem}; without its snapshot files too: {}", sled_problem(&again, Some(path)));
            let mut report = VerifyReport::broken(0, envelope::hex(&envelope::GENESIS_HASH), None, &reason);
            report.notes.push(note);
            return Ok(report);
        }
    };
    let log = Log::open(&db)?;
    let head = log.head().map_or(0, |(sequence, _)| sequence);
    let readable = verify_log_in(&log, Until::End, Some(path), |sequence| progress(sequence, head))?;
    drop(db);
    let mut report = match readable.first_bad_sequence {
        Some(sequence) => {
            let reason = format!("{problem}; and in what sled still reads: {}", readable.first_mismatch);
            VerifyReport::broken(readable.events, readable.head_hash, Some(sequence), &reason)
        }
        None => {
            let reason = format!(
                "{problem}; without its snapshot files sled reads the log through sequence {}",
                readable.events
            );
            VerifyReport::broken(readable.events, readable.head_hash, Some(readable.events + 1), &reason)
        }
    };
    report.notes.push(note);
    Ok(report)
}

/// How long an offline tool waits for sled to release a directory this process
/// opened a moment before.
const RELEASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens `path` with sled, waiting while it is still locked by a database this
/// process dropped: sled frees its file, and with it the lock, through
/// crossbeam's epoch garbage collection, some time after the last handle drops.
pub(crate) fn open_released(path: &Path) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + RELEASE_PATIENCE;
    loop {
        match sled::Config::new().path(path).flush_every_ms(None).open() {
            Err(error) if error.to_string().contains("lock") && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => return opened,
        }
    }
}

/// Removes sled's snapshot files from a copy; returns how many there were.
pub(crate) fn remove_snapshots(dir: &Path) -> Result<usize, StoreError> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("snap.") {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// sled's error in words an operator can act on: which of its files, and where
/// when sled says.
pub fn sled_problem(error: &sled::Error, dir: Option<&Path>) -> String {
    let file = |name: &str| dir.map_or_else(|| name.to_owned(), |dir| dir.join(name).display().to_string());
    match error {
        sled::Error::Corruption { at: Some(sled::DiskPtr::Inline(offset)), .. } => {
            format!("corrupt data (a checksum failed) in {} at offset {offset}", file("db"))
        }
        sled::Error::Corruption { at: Some(sled::DiskPtr::Blob(offset, blob)), .. } => format!(
            "corrupt data (a checksum failed) in the blob file {}, referenced from {} at offset {offset}",
            file(&format!("blobs/{blob}")),
            file("db")
        ),
        sled::Error::Corruption { at: None, .. } => format!(
            "corrupt data (a checksum failed) in its log {} or its snapshot {}; sled names no offset",
            file("db"),
            file("snap.*")
        ),
        sled::Error::Unsupported(why) if why.contains("sled version") => {
            format!("its configuration {} is unreadable or damaged: {why}", file("conf"))
        }
        other => other.to_string(),
    }
}

/// A scratch copy of a data directory, removed when dropped.
pub(crate) struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Copies `source` into a new directory under `parent`.
    pub(crate) fn copy_of(source: &Path, parent: &Path, purpose: &str) -> Result<Scratch, StoreError> {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |time| time.as_nanos());
        let path = parent.join(format!(".ledger-{purpose}-copy-{}-{nanos}", std::process::id()));
        let scratch = Scratch { path };
        copy_dir(source, &scratch.path)?;
        Ok(scratch)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "could not remove a scratch copy");
        }
    }
}

/// Copies the files and directories under `from` into `to` (created), with no
/// loop: a stack of directories still to copy.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut pending = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((source, target)) = pending.pop() {
        std::fs::create_dir_all(&target)?;
        for entry in std::fs::read_dir(&source)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let destination = target.join(entry.file_name());
            if kind.is_dir() {
                pending.push((entry.path(), destination));
            } else if kind.is_file() {
                std::fs::copy(entry.path(), destination)?;
            }
        }
    }
    Ok(())
}

/// The number of events in the ledger in `path`, for progress bars.
pub fn head_sequence(path: &Path) -> Result<u64, StoreError> {
    let db = open_offline(path)?;
    Ok(Log::open(&db)?.head()?.0)
}

/// Replays the log of the ledger in `path` from scratch up to `until`; replayed to
/// the end, compares with the projections the server would load.
pub fn replay_dir(path: &Path, until: Until, mut progress: impl FnMut(u64)) -> Result<ReplayReport, StoreError> {
    let db = open_offline(path)?;
    let log = Log::open(&db)?;
    let mut state = State::default();
    if until != Until::End {
        let head = replay::replay_into(&log, &mut state, &mut NoActivities, Head::GENESIS, until, &mut progress)?;
        return Ok(ReplayReport {
            events: head.sequence,
            head_hash: envelope::hex(&head.hash),
            state,
            difference: None,
        });
    }
    // Compared with what the server would serve, activities included.
    let mut activities = Generation::default();
    let head = replay::replay_into(&log, &mut state, &mut activities, Head::GENESIS, until, &mut progress)?;
    let projections = Projections::open(&db)?;
    let live = crate::ledger::recover(&log, &projections)?;
    let live_activities = ActivityIndex::new(projections.tree().clone(), live.activity).entries()?;
    let live_state = projections.materialize(&live.state)?;
    let difference = ledger_core::diff::first_difference(&live_state, &state)
        .or_else(|| activity::first_difference(&live_activities, &activities.entries()));
    Ok(ReplayReport { events: head.sequence, head_hash: envelope::hex(&head.hash), state, difference })
}
