//! Salvage: copy the longest good prefix of a damaged ledger's hash chain into a
//! fresh data directory that `ledgerd` opens.
//!
//! Losses this module prevents, and how each could happen:
//!
//! - **A salvaged event that differs from the one acknowledged.** Records are
//!   copied as stored, byte for byte under the same key (same sequences, event
//!   ids, times, actors and hashes), after the same check a replay makes
//!   (`replay::check`), and the new directory is verified before salvage reports
//!   success.
//! - **Half a command.** A record is one command (a bulk, an import, a
//!   SetMemberLevels batch). When a record's third event is bad, its first two
//!   verify, but keeping them would record part of a command that was decided,
//!   and acknowledged, as one unit: an atomic bulk or an import would be applied
//!   half, and a bulk retried with its references would find some of them taken.
//!   The cut is therefore at the record boundary, and the report counts the good
//!   events dropped with the bad record.
//! - **The damaged directory made worse.** sled rewrites its own recovery state
//!   when it opens a directory, so salvage opens a copy (next to the output, where
//!   the operator made room) and leaves the damaged directory as it was.
//! - **Operators locked out.** The token store (hashes of secrets) and
//!   `admin.token` are carried over when they can be read.
//!
//! Projections are not copied: the new directory has none, so `Ledger::open`
//! rebuilds them by replaying the salvaged log once.

use crate::audit::{self, Scratch};
use crate::envelope;
use crate::error::StoreError;
use crate::log::{self, Log};
use crate::projections::Projections;
use crate::replay::{self, Head, Until};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalvageReport {
    /// Events copied: sequences 1 through `kept_events`.
    pub kept_events: u64,
    /// The hash of the last event copied, the new directory's head.
    pub head_hash: String,
    /// The first event that does not verify; `None` when the whole log did.
    pub first_bad_sequence: Option<u64>,
    /// Why it does not verify; empty when the whole log did.
    pub reason: String,
    /// Events of the damaged log after the kept prefix; `None` when its end could
    /// not be read.
    pub dropped_events: Option<u64>,
    /// Of those, the good events before the bad one in the bad one's record, dropped
    /// because a command is kept whole or not at all.
    pub dropped_before_bad: u64,
    /// API tokens carried into the new directory.
    pub tokens_carried: u64,
    /// Whether `admin.token` was copied.
    pub admin_token_copied: bool,
    /// What salvage did that the operator should know.
    pub notes: Vec<String>,
}

/// Where the walk over the damaged log stopped.
struct Stop {
    sequence: u64,
    reason: String,
    /// The first sequence of the record the bad event is in.
    record_first: u64,
}

/// Copies the longest good prefix of the log in `bad`, whole records only, into a
/// new data directory `out` (which must not exist or be empty), with the token
/// store and `admin.token`; then verifies `out`. `progress` gets each copied sequence.
pub fn salvage(bad: &Path, out: &Path, mut progress: impl FnMut(u64)) -> Result<SalvageReport, StoreError> {
    prepare_out(out)?;
    let parent = out.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let scratch = Scratch::copy_of(bad, parent, "salvage")?;
    let mut notes = vec![format!(
        "read a copy of {} in {} (sled rewrites its recovery state when it opens a directory): {} is unchanged",
        bad.display(),
        scratch.path().display(),
        bad.display()
    )];
    let (source, sled_problem) = open_source(bad, &scratch, &mut notes)?;
    let source_log = Log::open(&source)?;
    let target = sled::Config::new().path(out).flush_every_ms(None).open().map_err(StoreError::Sled)?;
    // Opened before anything is written, so that its sync covers every blob file
    // sled creates: sled's flush alone syncs neither those nor its main file's data.
    let target_disk = crate::disk::Disk::open(target.clone(), out)?;
    let target_log = Log::open(&target)?;

    let mut head = Head::GENESIS;
    let mut stop = None;
    for entry in source_log.tree().iter() {
        let checked = entry.map_err(|error| Stop {
            sequence: head.sequence + 1,
            reason: audit::sled_problem(&error, Some(bad)),
            record_first: head.sequence + 1,
        });
        match checked.and_then(|(key, value)| check_record(&head, &key, &value).map(|next| (key, value, next))) {
            Ok((key, value, next)) => {
                target_log.tree().insert(key, value)?;
                head = next;
                progress(head.sequence);
            }
            Err(found) => {
                stop = Some(found);
                break;
            }
        }
    }

    let covered = Projections::open(&source).and_then(|projections| projections.meta()).ok().flatten();
    let covered = covered.map_or(0, |meta| meta.applied_sequence);
    if stop.is_none() {
        stop = unseen_end(&head, sled_problem.as_deref(), covered);
    }
    // Without its snapshot sled drops what follows a damaged message: the log's
    // last sequence then says nothing about how much is gone.
    let dropped_events = match (&sled_problem, source_log.head()) {
        (Some(_), _) => None,
        (None, Ok((last, _))) => Some(last.max(covered).saturating_sub(head.sequence)),
        (None, Err(error)) => {
            notes.push(format!("the damaged log's last sequence could not be read: {error}"));
            None
        }
    };
    if covered > head.sequence {
        notes.push(format!(
            "the damaged directory's checkpoint covered events through {covered}: at least {} events are lost",
            covered - head.sequence
        ));
    }
    let tokens_carried = carry_tokens(&source, &target, &mut notes)?;
    target_disk.flush().map_err(|reason| StoreError::Io(std::io::Error::other(reason)))?;
    // sled releases its lock only when the last handle to a database is gone.
    drop((target_log, target_disk, target, source_log, source, scratch));
    // Without the tokens the copied admin.token would name no token; ledgerd
    // writes a new one on first start when it finds none.
    let admin_token_copied = tokens_carried > 0 && carry_admin_token(bad, out, &mut notes);
    confirm(out, &head)?;

    let (first_bad_sequence, reason, dropped_before_bad) = match stop {
        Some(stop) => (Some(stop.sequence), stop.reason, stop.sequence - stop.record_first),
        None => (None, String::new(), 0),
    };
    Ok(SalvageReport {
        kept_events: head.sequence,
        head_hash: envelope::hex(&head.hash),
        first_bad_sequence,
        reason,
        dropped_events,
        dropped_before_bad,
        tokens_carried,
        admin_token_copied,
        notes,
    })
}

/// `out` must be new or empty: salvage never mixes its output with other data.
fn prepare_out(out: &Path) -> Result<(), StoreError> {
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} is not empty: salvage writes a fresh data directory", out.display()),
        )));
    }
    std::fs::create_dir_all(out)?;
    Ok(())
}

/// Opens the copy of the damaged directory. When sled cannot open it, the copy's
/// snapshot files are removed and sled tried again: without them it rebuilds its
/// state from its log and stops at the first damaged message, a prefix of it.
/// Returns sled's problem too when it had to be opened without its snapshot.
fn open_source(
    bad: &Path,
    scratch: &Scratch,
    notes: &mut Vec<String>,
) -> Result<(sled::Db, Option<String>), StoreError> {
    match sled::Config::new().path(scratch.path()).open() {
        Ok(db) => Ok((db, None)),
        Err(error) => {
            let problem = format!("sled cannot open {}: {}", bad.display(), audit::sled_problem(&error, Some(bad)));
            let removed = audit::remove_snapshots(scratch.path())?;
            notes.push(format!(
                "{problem}; read it without sled's snapshot files ({removed} removed), so sled kept what its log \
                 holds up to the first damaged message"
            ));
            let db = audit::open_released(scratch.path()).map_err(StoreError::Sled)?;
            Ok((db, Some(problem)))
        }
    }
}

/// Where a log whose every readable record verified still ends too early: sled
/// could not read on (it was opened without its snapshot), or the checkpoint
/// covered more than the log holds.
fn unseen_end(head: &Head, sled_problem: Option<&str>, covered: u64) -> Option<Stop> {
    let next = head.sequence + 1;
    let reason = match sled_problem {
        Some(problem) => format!("sled reads its log only through sequence {}: {problem}", head.sequence),
        None if covered > head.sequence => format!(
            "the log ends at sequence {}, but the checkpoint covered events through {covered}: the log lost its end",
            head.sequence
        ),
        None => return None,
    };
    Some(Stop { sequence: next, reason, record_first: next })
}

/// Checks every event of one record as the continuation of `head`; returns the
/// head after the record, or where it stops.
fn check_record(head: &Head, key: &[u8], value: &[u8]) -> Result<Head, Stop> {
    let at_head = |reason: String| Stop { sequence: head.sequence + 1, reason, record_first: head.sequence + 1 };
    let first = log::sequence_of(key).map_err(|error| at_head(error.to_string()))?;
    let events = log::decode_record(first, value).map_err(|error| match error {
        StoreError::Corrupt { sequence, reason } => Stop { sequence, reason, record_first: sequence },
        other => at_head(other.to_string()),
    })?;
    let mut next = *head;
    for (sequence, stored) in (first..).zip(&events) {
        let envelope = replay::check(&next, sequence, stored).map_err(|error| match error {
            StoreError::Corrupt { sequence, reason } => Stop { sequence, reason, record_first: first },
            other => Stop { sequence, reason: other.to_string(), record_first: first },
        })?;
        next = Head { sequence, hash: stored.hash, recorded_at: envelope.recorded_at };
    }
    Ok(next)
}

/// Copies every readable token record; a token store that cannot be read whole is
/// carried as far as it reads, and said so.
fn carry_tokens(source: &sled::Db, target: &sled::Db, notes: &mut Vec<String>) -> Result<u64, StoreError> {
    let from = match source.open_tree(crate::tokens::TREE_NAME) {
        Ok(tree) => tree,
        Err(error) => {
            notes.push(format!("no tokens carried: the token store cannot be read: {error}"));
            return Ok(0);
        }
    };
    let to = target.open_tree(crate::tokens::TREE_NAME)?;
    let mut carried = 0u64;
    for entry in from.iter() {
        match entry {
            Ok((key, value)) => {
                to.insert(key, value)?;
                carried += 1;
            }
            Err(error) => {
                notes.push(format!("tokens carried only up to a damaged part of the token store: {error}"));
                break;
            }
        }
    }
    Ok(carried)
}

/// Copies `admin.token`, still readable only by its owner.
fn carry_admin_token(bad: &Path, out: &Path, notes: &mut Vec<String>) -> bool {
    let source = bad.join("admin.token");
    let Ok(secret) = std::fs::read(&source) else { return false };
    let target: PathBuf = out.join("admin.token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&target).and_then(|mut file| {
        std::io::Write::write_all(&mut file, &secret)?;
        file.sync_all()
    });
    match written {
        Ok(()) => true,
        Err(error) => {
            notes.push(format!("admin.token not copied to {}: {error}", target.display()));
            false
        }
    }
}

/// The new directory must verify, through exactly the kept head.
fn confirm(out: &Path, head: &Head) -> Result<(), StoreError> {
    let db = audit::open_released(out).map_err(|error| StoreError::from_open(out, error))?;
    let report = audit::verify_log(&Log::open(&db)?, Until::End, |_| {})?;
    let expected = envelope::hex(&head.hash);
    if !report.ok || report.events != head.sequence || report.head_hash != expected {
        return Err(StoreError::Corrupt {
            sequence: report.first_bad_sequence.unwrap_or(report.events),
            reason: format!(
                "the salvaged directory {} does not verify as written (events {}, head {}): {}",
                out.display(),
                report.events,
                report.head_hash,
                report.first_mismatch
            ),
        });
    }
    Ok(())
}
