//! A member's points live in lots: one per add, each with its own expiry. Uses take
//! from the soonest-expiring lot first and from never-expiring lots last, so points
//! about to lapse are spent before they are lost.

use crate::event::LotTake;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The transaction id of the add that made it.
    pub lot: u64,
    pub remaining: u64,
    pub expires_at: Option<Timestamp>,
}

/// A lot appeared or disappeared: the state keeps its expiry index in step with these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LotChange {
    Created { lot: u64, expires_at: Timestamp },
    Removed { lot: u64, expires_at: Timestamp },
}

/// The order in which lots are spent: soonest expiry first, never-expiring last,
/// older lots first among equals.
fn spend_order(a: &Lot, b: &Lot) -> Ordering {
    match (a.expires_at, b.expires_at) {
        (Some(x), Some(y)) => x.cmp(&y).then(a.lot.cmp(&b.lot)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.lot.cmp(&b.lot),
    }
}

/// Whether a lot counts at `at`: an expired lot never does, swept or not.
pub fn is_live(lot: &Lot, at: Timestamp) -> bool {
    lot.expires_at.is_none_or(|expires_at| at < expires_at)
}

/// The lots of one member, kept in spend order, none empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lots(Vec<Lot>);

impl Lots {
    pub fn iter(&self) -> impl Iterator<Item = &Lot> {
        self.0.iter()
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|lot| lot.remaining).sum()
    }

    /// What can be spent at `at`.
    pub fn live(&self, at: Timestamp) -> u64 {
        self.0.iter().filter(|lot| is_live(lot, at)).map(|lot| lot.remaining).sum()
    }

    pub fn get(&self, lot: u64) -> Option<&Lot> {
        self.0.iter().find(|candidate| candidate.lot == lot)
    }

    /// Gives `points` to lot `lot`, creating it where it is gone.
    pub fn credit(&mut self, lot: u64, points: u64, expires_at: Option<Timestamp>, changes: &mut Vec<LotChange>) {
        if points == 0 {
            return;
        }
        if let Some(existing) = self.0.iter_mut().find(|candidate| candidate.lot == lot) {
            existing.remaining = existing.remaining.checked_add(points).expect("lot overflow");
            return;
        }
        let new = Lot { lot, remaining: points, expires_at };
        let at = self.0.partition_point(|existing| spend_order(existing, &new) == Ordering::Less);
        self.0.insert(at, new);
        if let Some(expires_at) = expires_at {
            changes.push(LotChange::Created { lot, expires_at });
        }
    }

    /// Takes `points` from lot `lot`; the caller has checked that it holds them.
    pub fn debit(&mut self, lot: u64, points: u64, changes: &mut Vec<LotChange>) {
        let index = self.0.iter().position(|candidate| candidate.lot == lot).expect("debit of a missing lot");
        let existing = &mut self.0[index];
        existing.remaining = existing.remaining.checked_sub(points).expect("lot underflow");
        if existing.remaining == 0 {
            let removed = self.0.remove(index);
            if let Some(expires_at) = removed.expires_at {
                changes.push(LotChange::Removed { lot, expires_at });
            }
        }
    }

    /// Plans taking `points` from the live lots at `at` in spend order, skipping
    /// `first` if given (it is taken from before the others). The error is the
    /// shortfall when the lots hold too little.
    pub fn plan_take(&self, points: u64, at: Timestamp, first: Option<u64>) -> Result<Vec<LotTake>, u64> {
        let mut takes = Vec::new();
        let mut left = points;
        if let Some(first) = first
            && let Some(lot) = self.get(first)
        {
            let take = left.min(lot.remaining);
            if take > 0 {
                takes.push(LotTake { lot: first, points: take, expires_at: lot.expires_at });
                left -= take;
            }
        }
        for lot in self.0.iter().filter(|lot| is_live(lot, at) && Some(lot.lot) != first) {
            if left == 0 {
                break;
            }
            let take = left.min(lot.remaining);
            takes.push(LotTake { lot: lot.lot, points: take, expires_at: lot.expires_at });
            left -= take;
        }
        if left > 0 { Err(left) } else { Ok(takes) }
    }

    /// Lots whose time has come at `at` and still hold points.
    pub fn expired(&self, at: Timestamp) -> impl Iterator<Item = &Lot> {
        self.0.iter().filter(move |lot| !is_live(lot, at))
    }
}
