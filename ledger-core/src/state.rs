//! The projections: what the log says now. Built only by `apply`, so that replaying
//! the same events always gives an equal `State` (ordered maps, no hash order).

use crate::credits;
use crate::event::{Event, EventBody, LotTake, MemberCardFields, PointStatementApplied, Stamp};
use crate::lots::{LotChange, Lots, POOL_LOT, lot_for_add};
use crate::time::Timestamp;
use crate::vouchers::VoucherBook;
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub name: String,
    pub created_at: Timestamp,
    pub formulas: BTreeMap<String, Formula>,
    pub rewards: BTreeMap<String, Reward>,
    /// The members in memory. A store may keep only some of them here (a cache
    /// over its rows); it then makes resident, before `decide` or `apply`, every
    /// member a command or event names (`footprint`), so that a member absent
    /// here is one no event has named.
    pub members: BTreeMap<String, Member>,
    /// Members that any event ever named, resident or not.
    pub member_count: u64,
    /// The client's idempotency keys, each naming the transaction it applied;
    /// resident ones only, like `members`.
    pub references: BTreeMap<String, ReferenceEntry>,
    /// The reference of each add that had one, by its lot, so that an expiry can
    /// tell the reference what a later reversal no longer needs to take back;
    /// resident ones only, like `members`.
    pub lot_references: BTreeMap<u64, String>,
    pub credits: BTreeMap<String, CreditType>,
    /// Member cards by level: `cards[0]` is level 1.
    pub cards: Vec<MemberCardFields>,
    /// Deleted cards and the card that took each one's place, so that a member
    /// pinned to a deleted card follows it without the delete touching members.
    pub retired_cards: BTreeMap<String, String>,
    pub vouchers: VoucherBook,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditType {
    pub name: String,
    pub unit: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCoupons {
    /// The name the latest grant gave.
    pub name: String,
    pub count: u32,
}

/// A member's tier as a read shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// 0: below level 1's threshold, or no cards.
    pub level: u32,
    pub card: Option<MemberCardFields>,
    pub pinned: bool,
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
    /// Balances by credit type, in units of 10^-`CREDIT_SCALE`: exact, and never below zero.
    pub credits: BTreeMap<String, u64>,
    pub coupons: BTreeMap<String, MemberCoupons>,
    /// The card a manual level pinned (SetMemberLevels), possibly since retired.
    pub pinned_card: Option<String>,
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
    /// When the transaction was recorded (a coupon use answers with it).
    pub recorded_at: Timestamp,
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
    /// `points` and `balance_after` are in credit units.
    CreditsAdd,
    CreditsUse,
    /// `points` is the count granted, `balance_after` the count after.
    CouponsGrant,
    CouponUse,
    /// `points` is the change's magnitude.
    PointStatement,
}

impl ReferenceKind {
    pub fn describe(self) -> &'static str {
        match self {
            ReferenceKind::PointsAdd => "a points add",
            ReferenceKind::PointsUse => "a points use",
            ReferenceKind::CreditsAdd => "a credits add",
            ReferenceKind::CreditsUse => "a credits use",
            ReferenceKind::CouponsGrant => "a coupon grant",
            ReferenceKind::CouponUse => "a coupon use",
            ReferenceKind::PointStatement => "a point statement",
        }
    }
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
                self.take(&reversal.lots, changes);
                self.qualifying_amount = self.qualifying_amount.saturating_sub(reversal.earned);
            }
            EventBody::PointsUseReversed(reversal) => self.give(&reversal.lots, changes),
            EventBody::PointsExpired { lot, points } => {
                let expires_at = self.lots.get(*lot).expect("expiry of a missing lot").expires_at;
                self.take(&[LotTake { lot: *lot, points: *points, expires_at }], changes);
            }
            EventBody::PointStatementApplied(statement) => self.apply_statement(stamp, statement, changes),
            EventBody::CreditsAdded(change) => {
                let balance = self.credits.entry(change.credit_id.clone()).or_default();
                *balance = balance.checked_add(credits::units(change.amount)).expect("credits overflow");
            }
            EventBody::CreditsUsed(change) => {
                let balance = self.credits.get_mut(&change.credit_id).expect("credits used from a wallet");
                *balance = balance.checked_sub(credits::units(change.amount)).expect("credits below zero");
            }
            EventBody::CouponsGranted { coupon_id, name, count, .. } => {
                let coupons = self
                    .coupons
                    .entry(coupon_id.clone())
                    .or_insert_with(|| MemberCoupons { name: String::new(), count: 0 });
                coupons.name.clone_from(name);
                coupons.count = coupons.count.checked_add(*count).expect("coupons overflow");
            }
            EventBody::CouponUsed { coupon_id, .. } => {
                let coupons = self.coupons.get_mut(coupon_id).expect("a used coupon was granted");
                coupons.count = coupons.count.checked_sub(1).expect("coupon count below zero");
            }
            EventBody::MemberLevelSet { card_id, .. } => {
                self.pinned_card = (!card_id.is_empty()).then(|| card_id.clone());
            }
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
    fn balance_after(&self, body: &EventBody, at: Timestamp) -> u64 {
        match body {
            EventBody::CreditsAdded(change) | EventBody::CreditsUsed(change) => {
                self.credits.get(&change.credit_id).copied().unwrap_or(0)
            }
            EventBody::CouponsGranted { coupon_id, .. } | EventBody::CouponUsed { coupon_id, .. } => {
                self.coupons.get(coupon_id).map_or(0, |coupons| u64::from(coupons.count))
            }
            EventBody::VoucherRecorded { version, .. } => u64::from(*version),
            EventBody::MemberLevelSet { level, .. } => u64::from(*level),
            _ => self.live_points(at),
        }
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
            member_count: 0,
            references: BTreeMap::new(),
            lot_references: BTreeMap::new(),
            credits: BTreeMap::new(),
            cards: Vec::new(),
            retired_cards: BTreeMap::new(),
            vouchers: VoucherBook::default(),
        }
    }

    /// The level (1-based) of a card, if it exists.
    pub fn card_level(&self, card_id: &str) -> Option<u32> {
        let index = self.cards.iter().position(|card| card.card_id == card_id)?;
        Some(u32::try_from(index + 1).expect("at most 5 cards"))
    }

    /// A pinned card, following retirements to the card that took its place.
    fn resolve_card(&self, card_id: &str) -> Option<u32> {
        let mut current = card_id;
        for _ in 0..=self.retired_cards.len() {
            if let Some(level) = self.card_level(current) {
                return Some(level);
            }
            current = self.retired_cards.get(current)?;
        }
        None
    }

    /// The tier of a member (SPEC §8): the pinned card if any, else the highest card
    /// whose `lowest_amount` is at most the qualifying amount.
    pub fn tier(&self, member: &Member) -> Tier {
        let pinned = member.pinned_card.as_deref().and_then(|card_id| self.resolve_card(card_id));
        let level = pinned.unwrap_or_else(|| {
            let reached = self.cards.iter().take_while(|card| card.lowest_amount <= member.qualifying_amount).count();
            u32::try_from(reached).expect("at most 5 cards")
        });
        let card = level.checked_sub(1).and_then(|index| self.cards.get(usize::try_from(index).ok()?)).cloned();
        Tier { level, card, pinned: pinned.is_some() }
    }

    fn delete_card(&mut self, card_id: &str) {
        let index = self.cards.iter().position(|card| card.card_id == card_id).expect("deleted card exists");
        assert!(index > 0, "level 1 is never deleted");
        let removed = self.cards.remove(index);
        let successor = match self.cards.get_mut(index) {
            Some(above) => {
                above.lowest_amount = removed.lowest_amount;
                above.card_id.clone()
            }
            None => self.cards[index - 1].card_id.clone(),
        };
        self.retired_cards.insert(removed.card_id, successor);
    }

    /// Applies the program-level part of an event: definitions and references.
    pub fn apply_definitions(&mut self, stamp: Stamp, body: &EventBody) {
        match body {
            EventBody::CreditDefined { credit_id, name, unit } => {
                self.credits.insert(credit_id.clone(), CreditType { name: name.clone(), unit: unit.clone() });
            }
            EventBody::ShopDefined { shop_id, name } => self.vouchers.define_shop(*shop_id, name.clone()),
            EventBody::VoucherRecorded { statement, version } => {
                let applied = self.vouchers.upsert(statement.clone(), stamp.recorded_at);
                assert_eq!(applied, *version, "a voucher version counts its upserts");
            }
            EventBody::MemberCardCreated(card) => self.cards.push(card.clone()),
            EventBody::MemberCardUpdated(card) => {
                let index = self.cards.iter().position(|c| c.card_id == card.card_id).expect("updated card exists");
                self.cards[index] = card.clone();
            }
            EventBody::MemberCardDeleted { card_id } => self.delete_card(card_id),
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
            | EventBody::PointsExpired { .. }
            | EventBody::CreditsAdded(_)
            | EventBody::CreditsUsed(_)
            | EventBody::CouponsGranted { .. }
            | EventBody::CouponUsed { .. }
            | EventBody::PointStatementApplied(_)
            | EventBody::MemberLevelSet { .. } => {}
        }
    }
}

/// The reference entry an event makes, given the balance of what it moved after it.
pub fn reference_entry(stamp: Stamp, event: &Event, balance_after: u64) -> Option<(String, ReferenceEntry)> {
    let reference = event.body.reference();
    if reference.is_empty() {
        return None;
    }
    let (kind, points, taken, lot) = match &event.body {
        EventBody::PointsAdded(added) => {
            (ReferenceKind::PointsAdd, added.points, Vec::new(), lot_for_add(stamp.sequence, added.expires_at))
        }
        EventBody::PointsUsed(used) => (ReferenceKind::PointsUse, used.points, used.taken.clone(), POOL_LOT),
        EventBody::CreditsAdded(change) => (ReferenceKind::CreditsAdd, credits::units(change.amount), Vec::new(), 0),
        EventBody::CreditsUsed(change) => (ReferenceKind::CreditsUse, credits::units(change.amount), Vec::new(), 0),
        EventBody::CouponsGranted { count, .. } => (ReferenceKind::CouponsGrant, u64::from(*count), Vec::new(), 0),
        EventBody::CouponUsed { .. } => (ReferenceKind::CouponUse, 1, Vec::new(), 0),
        EventBody::PointStatementApplied(statement) => {
            (ReferenceKind::PointStatement, statement.points.unsigned_abs(), statement.taken.clone(), 0)
        }
        _ => return None,
    };
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
        recorded_at: stamp.recorded_at,
    };
    Some((reference.to_owned(), entry))
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
    /// Returns, for a member event, the balance of what it moved right after it
    /// (`Member::fold`: what the activity index records); `None` for
    /// program events.
    pub fn apply(&mut self, stamp: Stamp, event: &Event) -> Option<u64> {
        self.apply_noting(stamp, event, &mut |_, _| {})
    }

    /// `apply`, telling `expiry` of each key the expiry index gains (`true`) or
    /// loses (`false`): what a store that keeps the index on disk must write.
    pub fn apply_noting(
        &mut self,
        stamp: Stamp,
        event: &Event,
        expiry: &mut impl FnMut(&ExpiryKey, bool),
    ) -> Option<u64> {
        if let EventBody::ProgramCreated { name } = &event.body {
            let program = Program::new(name.clone(), stamp.recorded_at);
            let previous = self.programs.insert(event.program.clone(), program);
            assert!(previous.is_none(), "program {} created twice", event.program);
            return None;
        }
        let program = self.programs.get_mut(&event.program).expect("event of an unknown program");
        program.apply_definitions(stamp, &event.body);
        if event.member.is_empty() {
            return None;
        }
        let mut changes = Vec::new();
        // Looked up before inserting, so that a known member costs no key copy.
        if !program.members.contains_key(&event.member) {
            program.members.insert(event.member.clone(), Member::new(stamp.recorded_at));
            program.member_count += 1;
        }
        let member = program.members.get_mut(&event.member).expect("inserted above");
        let balance_after = member.fold(stamp, &event.body, &mut changes);
        apply_to_references(&mut program.references, &mut program.lot_references, stamp, event, balance_after);
        for change in changes {
            let (lot, expires_at, created) = match change {
                LotChange::Created { lot, expires_at } => (lot, expires_at, true),
                LotChange::Removed { lot, expires_at } => (lot, expires_at, false),
            };
            let key = ExpiryKey { expires_at, program: event.program.clone(), member: event.member.clone(), lot };
            expiry(&key, created);
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
