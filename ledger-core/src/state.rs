//! The projections: what the log says now. Built only by `apply`, so that replaying
//! the same events always gives an equal `State` (ordered maps, no hash order).

use crate::event::{Event, EventBody, LotTake, Stamp};
use crate::lots::{LotChange, Lots, POOL_LOT, lot_for_add};
use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub programs: BTreeMap<String, Program>,
    /// Lots with an expiry, by expiry: what the sweep looks at, so that it never
    /// scans every member.
    pub expiries: BTreeSet<ExpiryKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiryKey {
    pub expires_at: Timestamp,
    pub program: String,
    pub member: String,
    pub lot: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub name: String,
    pub created_at: Timestamp,
    pub formulas: BTreeMap<String, Formula>,
    pub rewards: BTreeMap<String, Reward>,
    pub members: BTreeMap<String, Member>,
    /// The client's idempotency keys, each naming the transaction it applied.
    pub references: BTreeMap<String, ReferenceEntry>,
    /// The reference of each add that had one, by its lot, so that an expiry can
    /// tell the reference what a later reversal no longer needs to take back.
    pub lot_references: BTreeMap<u64, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formula {
    pub name: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub multiplier: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    pub name: String,
    pub points: u64,
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Sum of the lots' remainders, expired-but-unswept lots included; what a read
    /// shows is `live_points`.
    pub points: u64,
    pub lots: Lots,
    /// Lifetime earned points net of reversals; spending never lowers it (SPEC §2).
    pub qualifying_amount: u64,
    pub first_seen_at: Timestamp,
    pub last_activity_at: Timestamp,
}

/// What a reference applied, so that a repeat can be answered with the original
/// result and a replacement can undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceEntry {
    pub transaction_id: u64,
    pub member: String,
    pub kind: ReferenceKind,
    pub points: u64,
    /// The member's live points right after the transaction.
    pub balance_after: u64,
    /// Whether the transaction replaced an earlier one (`replace_duplicate`).
    pub replaced: bool,
    /// For a use: the lots it took from, to give back on replacement.
    pub taken: Vec<LotTake>,
    /// For an add: points of its lot that the sweep expired, which a reversal no
    /// longer needs to take back.
    pub expired: u64,
    /// For an add: the lot its points went to, which its reversal takes from first.
    pub lot: u64,
}

impl ReferenceEntry {
    /// The add's own expiring lot, which the sweep may expire.
    pub fn expiring_lot(&self) -> Option<u64> {
        (self.kind == ReferenceKind::PointsAdd && self.lot != POOL_LOT).then_some(self.lot)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferenceKind {
    PointsAdd,
    PointsUse,
}

impl Member {
    /// The points a member can spend at `at`: expired lots never count.
    pub fn live_points(&self, at: Timestamp) -> u64 {
        self.points - self.lots.expired_total(at)
    }

    /// A member exists from the first event that names it.
    pub fn new(first_seen_at: Timestamp) -> Member {
        Member { first_seen_at, last_activity_at: first_seen_at, ..Member::default() }
    }

    fn take(&mut self, takes: &[LotTake], changes: &mut Vec<LotChange>) -> u64 {
        let mut total = 0u64;
        for take in takes {
            self.lots.debit(take.lot, take.points, take.expires_at, changes);
            total = total.checked_add(take.points).expect("take overflow");
        }
        self.points = self.points.checked_sub(total).expect("points below zero");
        total
    }

    fn give(&mut self, takes: &[LotTake], changes: &mut Vec<LotChange>) {
        for take in takes {
            self.lots.credit(take.lot, take.points, take.expires_at, changes);
            self.points = self.points.checked_add(take.points).expect("points overflow");
        }
    }

    /// Folds one points event into the member. Never fails: `decide` checked it.
    pub fn apply(&mut self, stamp: Stamp, body: &EventBody, changes: &mut Vec<LotChange>) {
        self.last_activity_at = stamp.recorded_at;
        match body {
            EventBody::PointsAdded(added) => {
                let lot = lot_for_add(stamp.sequence, added.expires_at);
                self.lots.credit(lot, added.points, added.expires_at, changes);
                self.points = self.points.checked_add(added.points).expect("points overflow");
                self.qualifying_amount = self.qualifying_amount.saturating_add(added.points);
            }
            EventBody::PointsUsed(used) => {
                let taken = self.take(&used.taken, changes);
                assert_eq!(taken, used.points, "a use takes exactly its points from lots");
            }
            EventBody::PointsAddReversed(reversal) => {
                self.take(&reversal.lots, changes);
                self.qualifying_amount = self.qualifying_amount.saturating_sub(reversal.earned);
            }
            EventBody::PointsUseReversed(reversal) => self.give(&reversal.lots, changes),
            EventBody::PointsExpired { lot, points } => {
                let expires_at = self.lots.get(*lot).expect("expiry of a missing lot").expires_at;
                self.take(&[LotTake { lot: *lot, points: *points, expires_at }], changes);
            }
            EventBody::ProgramCreated { .. } | EventBody::FormulaDefined { .. } | EventBody::RewardDefined { .. } => {}
        }
        debug_assert_eq!(self.points, self.lots.total(), "points equal the lots' remainders");
    }
}

impl Program {
    fn new(name: String, created_at: Timestamp) -> Program {
        Program {
            name,
            created_at,
            formulas: BTreeMap::new(),
            rewards: BTreeMap::new(),
            members: BTreeMap::new(),
            references: BTreeMap::new(),
            lot_references: BTreeMap::new(),
        }
    }

    /// Applies the program-level part of an event: definitions and references.
    pub fn apply_definitions(&mut self, body: &EventBody) {
        match body {
            EventBody::FormulaDefined { formula_id, name, multiplier } => {
                self.formulas.insert(formula_id.clone(), Formula { name: name.clone(), multiplier: *multiplier });
            }
            EventBody::RewardDefined { reward_id, name, points, expires_at } => {
                let reward = Reward { name: name.clone(), points: *points, expires_at: *expires_at };
                self.rewards.insert(reward_id.clone(), reward);
            }
            EventBody::ProgramCreated { .. }
            | EventBody::PointsAdded(_)
            | EventBody::PointsUsed(_)
            | EventBody::PointsAddReversed(_)
            | EventBody::PointsUseReversed(_)
            | EventBody::PointsExpired { .. } => {}
        }
    }
}

/// The reference entry an event makes, given the member's live points after it.
pub fn reference_entry(stamp: Stamp, event: &Event, balance_after: u64) -> Option<(String, ReferenceEntry)> {
    let (reference, kind, points, taken, lot) = match &event.body {
        EventBody::PointsAdded(added) => {
            let lot = lot_for_add(stamp.sequence, added.expires_at);
            (&added.reference, ReferenceKind::PointsAdd, added.points, Vec::new(), lot)
        }
        EventBody::PointsUsed(used) => {
            (&used.reference, ReferenceKind::PointsUse, used.points, used.taken.clone(), POOL_LOT)
        }
        _ => return None,
    };
    if reference.is_empty() {
        return None;
    }
    let entry = ReferenceEntry {
        transaction_id: stamp.sequence,
        member: event.member.clone(),
        kind,
        points,
        balance_after,
        replaced: false,
        taken,
        expired: 0,
        lot,
    };
    Some((reference.clone(), entry))
}

impl State {
    pub fn program(&self, program: &str) -> Option<&Program> {
        self.programs.get(program)
    }

    pub fn member(&self, program: &str, member: &str) -> Option<&Member> {
        self.programs.get(program)?.members.get(member)
    }

    /// Folds one event into the state. Never fails: `decide` checked it, and a
    /// replay of the log meets only events that were once decided.
    ///
    /// Returns the member's live points right after a member event (what the
    /// activity index records), `None` for program events.
    pub fn apply(&mut self, stamp: Stamp, event: &Event) -> Option<u64> {
        if let EventBody::ProgramCreated { name } = &event.body {
            let program = Program::new(name.clone(), stamp.recorded_at);
            let previous = self.programs.insert(event.program.clone(), program);
            assert!(previous.is_none(), "program {} created twice", event.program);
            return None;
        }
        let program = self.programs.get_mut(&event.program).expect("event of an unknown program");
        program.apply_definitions(&event.body);
        if event.member.is_empty() {
            return None;
        }
        let mut changes = Vec::new();
        // Looked up before inserting, so that a known member costs no key copy.
        if !program.members.contains_key(&event.member) {
            program.members.insert(event.member.clone(), Member::new(stamp.recorded_at));
        }
        let member = program.members.get_mut(&event.member).expect("inserted above");
        member.apply(stamp, &event.body, &mut changes);
        let balance_after = member.live_points(stamp.recorded_at);
        apply_to_references(&mut program.references, &mut program.lot_references, stamp, event, balance_after);
        for change in changes {
            let (lot, expires_at, created) = match change {
                LotChange::Created { lot, expires_at } => (lot, expires_at, true),
                LotChange::Removed { lot, expires_at } => (lot, expires_at, false),
            };
            let key = ExpiryKey { expires_at, program: event.program.clone(), member: event.member.clone(), lot };
            if created {
                self.expiries.insert(key);
            } else {
                self.expiries.remove(&key);
            }
        }
        Some(balance_after)
    }
}

/// Keeps the reference map in step: a new reference names its transaction, an
/// expiry notes what a later reversal of the add no longer has to take back.
pub fn apply_to_references(
    references: &mut BTreeMap<String, ReferenceEntry>,
    lot_references: &mut BTreeMap<u64, String>,
    stamp: Stamp,
    event: &Event,
    balance_after: u64,
) {
    if let EventBody::PointsExpired { lot, points } = &event.body {
        let entry = lot_references.get(lot).and_then(|reference| references.get_mut(reference));
        if let Some(entry) = entry
            && entry.transaction_id == *lot
        {
            entry.expired = entry.expired.checked_add(*points).expect("expired overflow");
        }
        return;
    }
    if let EventBody::PointsAddReversed(reversal) | EventBody::PointsUseReversed(reversal) = &event.body {
        // The replacing transaction, recorded in the same command, takes the reference
        // over. When it was recorded before this reversal of the same member, the
        // balance it answered with is the one after the reversal, so that a repeat
        // answers what the replacement did.
        if let Some(entry) = references.get_mut(&reversal.reference)
            && entry.transaction_id != reversal.transaction_id
            && entry.member == event.member
        {
            entry.balance_after = balance_after;
        }
        return;
    }
    if let Some((reference, mut entry)) = reference_entry(stamp, event, balance_after) {
        // `decide` records a used reference again only when replacing; the
        // replaced add's lot no longer answers to it.
        let replaced = references.get(&reference);
        entry.replaced = replaced.is_some();
        if let Some(lot) = replaced.and_then(ReferenceEntry::expiring_lot) {
            lot_references.remove(&lot);
        }
        if let Some(lot) = entry.expiring_lot() {
            lot_references.insert(lot, reference.clone());
        }
        references.insert(reference, entry);
    }
}
