//! Reading the log back: folding it into a state (recovery, audits) and checking
//! its hash chain. One loop serves both, so what an auditor verifies is exactly
//! what start-up trusts.

use crate::envelope::{self, Envelope, GENESIS_HASH, Hash, StoredEvent};
use crate::error::StoreError;
use crate::fold::{Activities, fold};
use crate::log::Log;
use ledger_core::{Stamp, State, Timestamp};

/// Where a replay stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    End,
    /// Up to and including this sequence.
    Sequence(u64),
    /// Every event recorded at or before this time.
    Time(Timestamp),
}

/// The last event folded so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub sequence: u64,
    pub hash: Hash,
    pub recorded_at: Timestamp,
}

impl Head {
    pub const GENESIS: Head = Head { sequence: 0, hash: GENESIS_HASH, recorded_at: Timestamp(0) };
}

/// Walks the log after `head`, checking each event's hash, sequence and link to the
/// one before, and hands each to `visit` until `until`. Returns the new head.
pub fn walk(
    log: &Log,
    mut head: Head,
    until: Until,
    mut visit: impl FnMut(Stamp, ledger_core::Event),
) -> Result<Head, StoreError> {
    for record in log.records_from(head.sequence + 1) {
        let (first, events) = record?;
        for (sequence, stored) in (first..).zip(events) {
            if sequence <= head.sequence {
                continue;
            }
            if let Until::Sequence(last) = until
                && sequence > last
            {
                return Ok(head);
            }
            let envelope = check(&head, sequence, &stored)?;
            if let Until::Time(time) = until
                && envelope.recorded_at > time
            {
                return Ok(head);
            }
            head = Head { sequence, hash: stored.hash, recorded_at: envelope.recorded_at };
            visit(Stamp { sequence, recorded_at: envelope.recorded_at }, envelope.event);
        }
    }
    Ok(head)
}

/// Checks one stored event as the event after `head`: its sequence, its hash,
/// its encoding and its link to `head`. Walks and salvage share it, so what
/// salvage keeps is exactly what a walk accepts.
pub fn check(head: &Head, sequence: u64, stored: &StoredEvent) -> Result<Envelope, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { sequence, reason };
    if sequence != head.sequence + 1 {
        return Err(corrupt(format!("expected sequence {}, the log jumps to {sequence}", head.sequence + 1)));
    }
    if !stored.hash_matches() {
        return Err(corrupt("the stored hash is not the hash of the stored event".to_owned()));
    }
    let envelope = envelope::decode(&stored.bytes).map_err(|error| corrupt(error.to_string()))?;
    if envelope.sequence != sequence {
        return Err(corrupt(format!("the event says it is sequence {}", envelope.sequence)));
    }
    if envelope.prev_hash != head.hash {
        return Err(corrupt(format!(
            "previous hash {} does not match the hash of event {}, {}",
            envelope::hex(&envelope.prev_hash),
            head.sequence,
            envelope::hex(&head.hash)
        )));
    }
    Ok(envelope)
}

/// Folds the log after `head` into `state` (and its activity entries into
/// `activities`) through the one fold the writer and recovery use.
pub fn replay_into(
    log: &Log,
    state: &mut State,
    activities: &mut impl Activities,
    head: Head,
    until: Until,
    mut progress: impl FnMut(u64),
) -> Result<Head, StoreError> {
    walk(log, head, until, |stamp, event| {
        fold(state, stamp, &event, None, activities);
        progress(stamp.sequence);
    })
}
