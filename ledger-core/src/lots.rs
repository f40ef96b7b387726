//! A member's points live in lots: one per add, each with its own expiry. Uses take
//! from the soonest-expiring lot first and from never-expiring lots last, so points
//! about to lapse are spent before they are lost.

use crate::event::LotTake;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The transaction id of the add that made it; `POOL_LOT` for never-expiring points.
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

/// The order in which lots are spent, and kept: soonest expiry first,
/// never-expiring last, older lots first among equals.
fn spend_order(a: &Lot, b: &Lot) -> Ordering {
    match (a.expires_at, b.expires_at) {
        (Some(x), Some(y)) => x.cmp(&y).then(a.lot.cmp(&b.lot)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.lot.cmp(&b.lot),
    }
}

/// The lot holding every never-expiring point. Such points are all alike, so one
/// lot holds them and a member's lots stay few however many adds it gets; only
/// adds with an expiry make lots of their own.
pub const POOL_LOT: u64 = 0;

/// The lot an add's points go to: its own when it expires, else the pool.
pub fn lot_for_add(transaction_id: u64, expires_at: Option<Timestamp>) -> u64 {
    if expires_at.is_some() { transaction_id } else { POOL_LOT }
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

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|lot| lot.remaining).sum()
    }

    /// What the lots whose time has come at `at` still hold. They sort first, so
    /// this reads only them, however many lots a member has.
    pub fn expired_total(&self, at: Timestamp) -> u64 {
        self.0.iter().take_while(|lot| !is_live(lot, at)).map(|lot| lot.remaining).sum()
    }

    pub fn get(&self, lot: u64) -> Option<&Lot> {
        self.0.iter().find(|candidate| candidate.lot == lot)
    }

    /// Where lot `lot` with that expiry sits (`Ok`), or would sit (`Err`).
    fn position(&self, lot: u64, expires_at: Option<Timestamp>) -> Result<usize, usize> {
        let probe = Lot { lot, remaining: 0, expires_at };
        self.0.binary_search_by(|existing| spend_order(existing, &probe))
    }

    /// Gives `points` to lot `lot`, creating it where it is gone.
    pub fn credit(&mut self, lot: u64, points: u64, expires_at: Option<Timestamp>, changes: &mut Vec<LotChange>) {
        if points == 0 {
            return;
        }
        match self.position(lot, expires_at) {
            Ok(index) => {
                let existing = &mut self.0[index];
                existing.remaining = existing.remaining.checked_add(points).expect("lot overflow");
            }
            Err(index) => {
                self.0.insert(index, Lot { lot, remaining: points, expires_at });
                if let Some(expires_at) = expires_at {
                    changes.push(LotChange::Created { lot, expires_at });
                }
            }
        }
    }

    /// Takes `points` from lot `lot`; the caller has checked that it holds them.
    pub fn debit(&mut self, lot: u64, points: u64, expires_at: Option<Timestamp>, changes: &mut Vec<LotChange>) {
        let index = self.position(lot, expires_at).expect("debit of a missing lot");
        let existing = &mut self.0[index];
        existing.remaining = existing.remaining.checked_sub(points).expect("lot underflow");
        if existing.remaining == 0 {
            self.0.remove(index);
            if let Some(expires_at) = expires_at {
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
