//! Audits of a data directory: verify the hash chain, replay the log and compare
//! with the projections the server would serve. Offline tools open the directory
//! themselves, so the server must be stopped (sled locks its directory).

use crate::activity::{self, ActivityIndex, Generation};
use crate::envelope;
use crate::error::StoreError;
use crate::fold::NoActivities;
use crate::log::Log;
use crate::projections::Projections;
use crate::replay::{self, Head, Until};
use ledger_core::State;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub head_hash: String,
    pub ok: bool,
    /// Empty when ok; otherwise the first broken link, by sequence.
    pub first_mismatch: String,
}

pub fn verify_log(log: &Log, until: Until, mut progress: impl FnMut(u64)) -> Result<VerifyReport, StoreError> {
    let mut last = Head::GENESIS;
    let walked = replay::walk(log, Head::GENESIS, until, |stamp, _| {
        progress(stamp.sequence);
        last.sequence = stamp.sequence;
    });
    match walked {
        Ok(head) => Ok(VerifyReport {
            events: head.sequence,
            head_hash: envelope::hex(&head.hash),
            ok: true,
            first_mismatch: String::new(),
        }),
        Err(StoreError::Corrupt { sequence, reason }) => Ok(VerifyReport {
            events: last.sequence,
            head_hash: String::new(),
            ok: false,
            first_mismatch: format!("sequence {sequence}: {reason}"),
        }),
        Err(other) => Err(other),
    }
}

/// What `ledger replay` reports.
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
    if !path.join("conf").exists() && !path.join("db").exists() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} holds no ledger", path.display()),
        )));
    }
    sled::Config::new().path(path).open().map_err(|error| StoreError::from_open(path, error))
}

/// Verifies the hash chain of the ledger in `path`.
pub fn verify_dir(path: &Path, progress: impl FnMut(u64)) -> Result<VerifyReport, StoreError> {
    let db = open_offline(path)?;
    verify_log(&Log::open(&db)?, Until::End, progress)
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
    let difference = ledger_core::diff::first_difference(&live.state, &state)
        .or_else(|| activity::first_difference(&live_activities, &activities.entries()));
    Ok(ReplayReport { events: head.sequence, head_hash: envelope::hex(&head.hash), state, difference })
}
