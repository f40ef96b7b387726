//! The one fold of the log. Every consumer of events (the writer after deciding,
//! recovery of the tail after a checkpoint, offline replay, audits and the tests)
//! folds them through `fold`, so that live, recovered and replayed projections,
//! activities included, cannot differ.
//!
//! The loss this prevents: recovery once computed "the balance after" on its own
//! (the member's live points) while the writer recorded what `State::apply`
//! returned (credit units, a coupon count, a voucher version); after a crash the
//! activity history of credits and coupons showed points.

use crate::activity::{CurrentGeneration, Generation};
use crate::projections::Dirty;
use ledger_core::{Event, Stamp, State};

/// Where the activity entries of a fold go.
pub trait Activities {
    fn record(&mut self, program: &str, member: &str, sequence: u64, balance_after: u64);
}

impl Activities for Generation {
    fn record(&mut self, program: &str, member: &str, sequence: u64, balance_after: u64) {
        Generation::record(self, program, member, sequence, balance_after);
    }
}

impl Activities for CurrentGeneration<'_> {
    fn record(&mut self, program: &str, member: &str, sequence: u64, balance_after: u64) {
        CurrentGeneration::record(self, program, member, sequence, balance_after);
    }
}

/// A fold that keeps no activity entries (an offline replay of balances only).
pub struct NoActivities;

impl Activities for NoActivities {
    fn record(&mut self, _: &str, _: &str, _: u64, _: u64) {}
}

/// Folds one event into `state`, notes the rows it changed in `dirty` (when the
/// caller checkpoints) and records its activity entry: the balance of what it
/// moved right after it, in its kind's unit, as `State::apply` returns it.
pub fn fold(
    state: &mut State,
    stamp: Stamp,
    event: &Event,
    dirty: Option<&mut Dirty>,
    activities: &mut impl Activities,
) {
    let balance_after = match dirty {
        Some(dirty) => {
            let balance_after = state.apply_noting(stamp, event, &mut |key, created| dirty.note_expiry(key, created));
            dirty.note(state, event);
            balance_after
        }
        None => state.apply(stamp, event),
    };
    if let Some(balance_after) = balance_after {
        activities.record(&event.program, &event.member, stamp.sequence, balance_after);
    }
}
