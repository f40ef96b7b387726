//! A member: its points and their lots, its credits and coupons, its pinned card,
//! and `Member::fold`, the one fold of its events.

use crate::credits;
use crate::event::{EventBody, HoldSettled, LotTake, PointStatementApplied, ReversedChange, Stamp};
use crate::holds::{Hold, HoldState};
use crate::lots::{LotChange, Lots, lot_for_add};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Balances by credit type, in units of 10^-`CREDIT_SCALE`: exact, and never below zero.
    pub credits: BTreeMap<String, u64>,
    pub coupons: BTreeMap<String, MemberCoupons>,
    /// The card a manual level pinned (SetMemberLevels), possibly since retired.
    pub pinned_card: Option<String>,
    /// Every hold of the member by its transaction id, pending or settled
    /// (`holds`): what a hold took is out of `points`/`credits` until it is
    /// captured or given back.
    pub holds: BTreeMap<u64, Hold>,
    /// Each of its transactions that was reversed (by ReverseTransaction, or by a
    /// `replace_duplicate` replacement), with the transaction that reversed it.
    /// Kept on the member, whose row a reversal loads anyway, so that "reversed
    /// once" costs no index of every transaction and stays bounded by the cache.
    pub reversed: BTreeMap<u64, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCoupons {
    /// The name the latest grant gave.
    pub name: String,
    pub count: u32,
}

impl Member {
    /// The points a member can spend at `at`: expired lots never count.
    /// Points that a hold past its time gives back count as they will once the
    /// expiry is recorded.
    pub fn live_points(&self, at: Timestamp) -> u64 {
        self.points - self.lots.expired_total(at) + self.lapsed_points(at)
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

    /// Folds one event into the member and returns the balance of what it moved
    /// right after it (`balance_after`). The one fold of a member: the state, a
    /// command's overlay and every replay call it, so live, recovered and replayed
    /// history cannot differ. Never fails: `decide` checked it.
    pub fn fold(&mut self, stamp: Stamp, body: &EventBody, changes: &mut Vec<LotChange>) -> u64 {
        self.apply(stamp, body, changes);
        self.balance_after(body, stamp.recorded_at)
    }

    fn apply(&mut self, stamp: Stamp, body: &EventBody, changes: &mut Vec<LotChange>) {
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
                self.note_reversed(reversal.transaction_id, stamp.sequence);
                self.take_back(&reversal.lots, reversal.earned, changes);
            }
            EventBody::PointsUseReversed(reversal) => {
                self.note_reversed(reversal.transaction_id, stamp.sequence);
                self.give(&reversal.lots, changes);
            }
            EventBody::TransactionReversed(reversal) => {
                self.note_reversed(reversal.transaction_id, stamp.sequence);
                self.undo(&reversal.change, changes);
            }
            EventBody::PointsExpired { lot, points } => {
                let expires_at = self.lots.get(*lot).expect("expiry of a missing lot").expires_at;
                self.take(&[LotTake { lot: *lot, points: *points, expires_at }], changes);
            }
            EventBody::PointStatementApplied(statement) => self.apply_statement(stamp, statement, changes),
            EventBody::CreditsAdded(change) => self.add_credits(&change.credit_id, change.amount),
            EventBody::CreditsUsed(change) => self.use_credits(&change.credit_id, change.amount),
            EventBody::CouponsGranted { coupon_id, name, count, .. } => {
                let coupons = self
                    .coupons
                    .entry(coupon_id.clone())
                    .or_insert_with(|| MemberCoupons { name: String::new(), count: 0 });
                coupons.name.clone_from(name);
                coupons.count = coupons.count.checked_add(*count).expect("coupons overflow");
            }
            EventBody::CouponUsed { coupon_id, .. } => self.take_coupons(coupon_id, 1),
            EventBody::MemberLevelSet { card_id, .. } => {
                self.pinned_card = (!card_id.is_empty()).then(|| card_id.clone());
            }
            EventBody::PointsHeld(held) => {
                let taken = self.take(&held.taken, changes);
                assert_eq!(taken, held.points, "a hold takes exactly its points from lots");
                let hold = Hold {
                    credit_id: String::new(),
                    amount: held.points,
                    taken: held.taken.clone(),
                    remark: held.remark.clone(),
                    reference: held.reference.clone(),
                    created_at: stamp.recorded_at,
                    expires_at: held.expires_at,
                    state: HoldState::Pending,
                    captured: 0,
                    settled_transaction_id: 0,
                };
                self.add_hold(stamp.sequence, hold, changes);
            }
            EventBody::CreditsHeld(held) => {
                let balance = self.credits.get_mut(&held.credit_id).expect("credits held from a wallet");
                let units = credits::units(held.amount);
                *balance = balance.checked_sub(units).expect("credits below zero");
                let hold = Hold {
                    credit_id: held.credit_id.clone(),
                    amount: units,
                    taken: Vec::new(),
                    remark: held.remark.clone(),
                    reference: held.reference.clone(),
                    created_at: stamp.recorded_at,
                    expires_at: held.expires_at,
                    state: HoldState::Pending,
                    captured: 0,
                    settled_transaction_id: 0,
                };
                self.add_hold(stamp.sequence, hold, changes);
            }
            EventBody::HoldCaptured(settled) => self.settle(stamp, settled, HoldState::Captured, changes),
            EventBody::HoldVoided(settled) => self.settle(stamp, settled, HoldState::Voided, changes),
            EventBody::HoldExpired(settled) => self.settle(stamp, settled, HoldState::Expired, changes),
            EventBody::ProgramCreated { .. }
            | EventBody::FormulaDefined { .. }
            | EventBody::RewardDefined { .. }
            | EventBody::CreditDefined { .. }
            | EventBody::ShopDefined { .. }
            | EventBody::VoucherRecorded { .. }
            | EventBody::MemberCardCreated(_)
            | EventBody::MemberCardUpdated(_)
            | EventBody::MemberCardDeleted { .. } => {}
        }
        debug_assert_eq!(self.points, self.lots.total(), "points equal the lots' remainders");
    }
}

impl Member {
    /// A pending hold joins the expiry index under its transaction id, beside the
    /// lots (a transaction id is either an add's lot or a hold, never both), so
    /// that the sweep finds it without scanning members.
    fn add_hold(&mut self, hold_id: u64, hold: Hold, changes: &mut Vec<LotChange>) {
        changes.push(LotChange::Created { lot: hold_id, expires_at: hold.expires_at });
        let previous = self.holds.insert(hold_id, hold);
        assert!(previous.is_none(), "hold {hold_id} recorded twice");
    }

    fn settle(&mut self, stamp: Stamp, settled: &HoldSettled, state: HoldState, changes: &mut Vec<LotChange>) {
        let hold = self.holds.get_mut(&settled.hold).expect("a settled hold exists");
        assert_eq!(hold.state, HoldState::Pending, "only a pending hold is settled");
        hold.state = state;
        hold.settled_transaction_id = stamp.sequence;
        let expires_at = hold.expires_at;
        if settled.credit_id.is_empty() {
            hold.captured = settled.captured.try_into().expect("captured points fit u64");
            self.give(&settled.released_lots, changes);
        } else {
            hold.captured = credits::units(settled.captured);
            let balance = self.credits.entry(settled.credit_id.clone()).or_default();
            *balance = balance.checked_add(credits::units(settled.released)).expect("credits overflow");
        }
        changes.push(LotChange::Removed { lot: settled.hold, expires_at });
    }

    fn note_reversed(&mut self, transaction_id: u64, reversal: u64) {
        let previous = self.reversed.insert(transaction_id, reversal);
        assert!(previous.is_none(), "transaction {transaction_id} reversed twice");
    }

    /// An add's reversal: its points leave the lots, and what it earned leaves the
    /// qualifying amount.
    fn take_back(&mut self, takes: &[LotTake], earned: u64, changes: &mut Vec<LotChange>) {
        self.take(takes, changes);
        self.qualifying_amount = self.qualifying_amount.saturating_sub(earned);
    }

    fn add_credits(&mut self, credit_id: &str, amount: rust_decimal::Decimal) {
        let balance = self.credits.entry(credit_id.to_owned()).or_default();
        *balance = balance.checked_add(credits::units(amount)).expect("credits overflow");
    }

    fn use_credits(&mut self, credit_id: &str, amount: rust_decimal::Decimal) {
        let balance = self.credits.get_mut(credit_id).expect("credits used from a wallet");
        *balance = balance.checked_sub(credits::units(amount)).expect("credits below zero");
    }

    fn take_coupons(&mut self, coupon_id: &str, count: u32) {
        let coupons = self.coupons.get_mut(coupon_id).expect("a used coupon was granted");
        coupons.count = coupons.count.checked_sub(count).expect("coupon count below zero");
    }

    /// Undoes exactly the change a reversal names (SPEC §15), with the same steps
    /// as the events it undoes.
    fn undo(&mut self, change: &ReversedChange, changes: &mut Vec<LotChange>) {
        match change {
            ReversedChange::PointsAdd { lots, earned, .. } => self.take_back(lots, *earned, changes),
            ReversedChange::PointsUse { lots, .. } => self.give(lots, changes),
            ReversedChange::CreditsAdd { credit_id, amount } => self.use_credits(credit_id, *amount),
            ReversedChange::CreditsUse { credit_id, amount } => self.add_credits(credit_id, *amount),
            ReversedChange::CouponsGrant { coupon_id, count } => self.take_coupons(coupon_id, *count),
            ReversedChange::CouponUse { coupon_id } => {
                let coupons = self.coupons.get_mut(coupon_id).expect("a used coupon was granted");
                coupons.count = coupons.count.checked_add(1).expect("coupons overflow");
            }
        }
    }

    fn apply_statement(&mut self, stamp: Stamp, statement: &PointStatementApplied, changes: &mut Vec<LotChange>) {
        let magnitude = statement.points.unsigned_abs();
        if statement.points > 0 {
            let lot = lot_for_add(stamp.sequence, None);
            self.lots.credit(lot, magnitude, None, changes);
            self.points = self.points.checked_add(magnitude).expect("points overflow");
        } else {
            let taken = self.take(&statement.taken, changes);
            assert_eq!(taken, magnitude, "a statement takes exactly its points from lots");
        }
        if statement.change_reason.moves_qualifying_amount() {
            self.qualifying_amount = if statement.points > 0 {
                self.qualifying_amount.saturating_add(magnitude)
            } else {
                self.qualifying_amount.saturating_sub(magnitude)
            };
        }
    }

    /// The balance of what `body` moved, right after it: live points, the credit
    /// type's units, the coupon's count, the voucher's version or the pinned level.
    /// The activity index records it beside the transaction.
    pub(crate) fn balance_after(&self, body: &EventBody, at: Timestamp) -> u64 {
        match body {
            EventBody::CreditsAdded(change) | EventBody::CreditsUsed(change) => {
                self.available_credits(&change.credit_id, at)
            }
            EventBody::CreditsHeld(held) => self.available_credits(&held.credit_id, at),
            EventBody::HoldCaptured(settled) | EventBody::HoldVoided(settled) | EventBody::HoldExpired(settled)
                if !settled.credit_id.is_empty() =>
            {
                self.available_credits(&settled.credit_id, at)
            }
            EventBody::CouponsGranted { coupon_id, .. } | EventBody::CouponUsed { coupon_id, .. } => {
                self.coupons.get(coupon_id).map_or(0, |coupons| u64::from(coupons.count))
            }
            EventBody::TransactionReversed(reversal) => match &reversal.change {
                ReversedChange::CreditsAdd { credit_id, .. } | ReversedChange::CreditsUse { credit_id, .. } => {
                    self.credits.get(credit_id).copied().unwrap_or(0)
                }
                ReversedChange::CouponsGrant { coupon_id, .. } | ReversedChange::CouponUse { coupon_id } => {
                    self.coupons.get(coupon_id).map_or(0, |coupons| u64::from(coupons.count))
                }
                ReversedChange::PointsAdd { .. } | ReversedChange::PointsUse { .. } => self.live_points(at),
            },
            EventBody::VoucherRecorded { version, .. } => u64::from(*version),
            EventBody::MemberLevelSet { level, .. } => u64::from(*level),
            _ => self.live_points(at),
        }
    }
}
