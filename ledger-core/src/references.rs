//! References (the client's idempotency keys) and every rule about them, for each
//! kind of transaction that takes one: points adds and uses, credits adds and uses,
//! coupon grants and uses, point statements, reversals.
//!
//! - A reference is unique per program across every kind, for ever: an entry is
//!   never removed, only replaced (a store may drop a resident entry from memory,
//!   never its row).
//! - A repeat of the same kind is answered with the original result, marked
//!   duplicate (`ReferenceEntry::points_receipt` and its siblings), before the
//!   state or the clock is looked at: a client retrying after a lost reply must
//!   learn what happened, even once the reward or the expiry it named has passed.
//! - A reference that another kind of transaction used is refused
//!   (REFERENCE_IN_USE, `earlier`): answering a coupon use with a points receipt
//!   would tell the caller nothing true.
//! - With `replace_duplicate`, a points add or use replaces an earlier add or use
//!   of the reference (`points_earlier`): the command records the new transaction
//!   and the reversal of the old one (`points::reverse`), and the reference names
//!   the new one from then on.
//! - The reference of each add with an expiring lot is indexed by its lot
//!   (`Program::lot_references`), so that an expiry can note on the reference what
//!   a later reversal of the add no longer has to take back.
//!
//! A new kind is a `ReferenceRecord` variant (what a repeat answers, and what
//! undoing the transaction needs), its `ReferenceKind`, the event that records it
//! (`entry_of`) and the answer of its repeat.

use crate::command::{CreditsReceipt, PointsReceipt, Reversal};
use crate::credits;
use crate::event::{ActivityKind, Event, EventBody, LotTake, ReversedChange, Stamp};
use crate::field::FieldPath;
use crate::lots::{POOL_LOT, lot_for_add};
use crate::overlay::Overlay;
use crate::rejection::Rejection;
use crate::time::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The transaction a reference names, and what it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceEntry {
    pub transaction_id: u64,
    pub member: String,
    /// Whether the transaction replaced an earlier one (`replace_duplicate`).
    pub replaced: bool,
    pub record: ReferenceRecord,
}

/// What a referenced transaction did, by kind: what a repeat answers, and what
/// a replacement needs to undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferenceRecord {
    PointsAdd {
        points: u64,
        /// The member's live points right after it.
        balance_after: u64,
        /// The lot its points went to, which its reversal takes from first.
        lot: u64,
        /// Points of its lot that the sweep expired, which a reversal no longer
        /// needs to take back.
        expired: u64,
    },
    PointsUse {
        points: u64,
        /// The member's live points right after it.
        balance_after: u64,
        /// The lots it took from, to give back on replacement.
        taken: Vec<LotTake>,
    },
    CreditsAdd {
        /// Normalized, as the receipt shows it.
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
        /// The credit type's balance right after it.
        #[serde(with = "rust_decimal::serde::str")]
        balance_after: Decimal,
    },
    CreditsUse {
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
        #[serde(with = "rust_decimal::serde::str")]
        balance_after: Decimal,
    },
    CouponsGrant {
        count: u32,
        /// The member's count of the coupon right after it.
        count_after: u32,
    },
    CouponUse {
        /// The member's count of the coupon right after it.
        remaining: u32,
        /// When it was recorded: a repeat answers with it.
        recorded_at: Timestamp,
    },
    PointStatement {
        /// The signed change it made to the member's points.
        points: i64,
    },
    /// A hold of points or credits: its id is the entry's transaction id, and a
    /// repeat answers the hold as it stands then (`holds`).
    Hold,
    /// A capture of hold `hold`; a repeat answers that hold as it stands then.
    HoldCapture { hold: u64 },
    /// A ReverseTransaction (SPEC §15): what its repeat answers.
    Reversal {
        reversed_transaction_id: u64,
        kind: ActivityKind,
        /// The signed change the reversal made, normalized.
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
        /// The balance of what it moved right after it.
        #[serde(with = "rust_decimal::serde::str")]
        balance_after: Decimal,
    },
}

/// A reference's kind, for the rule that one kind never answers another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferenceKind {
    PointsAdd,
    PointsUse,
    CreditsAdd,
    CreditsUse,
    CouponsGrant,
    CouponUse,
    PointStatement,
    Hold,
    HoldCapture,
    Reversal,
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
            ReferenceKind::Hold => "a hold",
            ReferenceKind::HoldCapture => "a hold capture",
            ReferenceKind::Reversal => "a reversal",
        }
    }
}

impl ReferenceRecord {
    pub fn kind(&self) -> ReferenceKind {
        match self {
            ReferenceRecord::PointsAdd { .. } => ReferenceKind::PointsAdd,
            ReferenceRecord::PointsUse { .. } => ReferenceKind::PointsUse,
            ReferenceRecord::CreditsAdd { .. } => ReferenceKind::CreditsAdd,
            ReferenceRecord::CreditsUse { .. } => ReferenceKind::CreditsUse,
            ReferenceRecord::CouponsGrant { .. } => ReferenceKind::CouponsGrant,
            ReferenceRecord::CouponUse { .. } => ReferenceKind::CouponUse,
            ReferenceRecord::PointStatement { .. } => ReferenceKind::PointStatement,
            ReferenceRecord::Hold => ReferenceKind::Hold,
            ReferenceRecord::HoldCapture { .. } => ReferenceKind::HoldCapture,
            ReferenceRecord::Reversal { .. } => ReferenceKind::Reversal,
        }
    }
}

impl ReferenceEntry {
    pub fn kind(&self) -> ReferenceKind {
        self.record.kind()
    }

    /// The add's own expiring lot, which the sweep may expire.
    pub fn expiring_lot(&self) -> Option<u64> {
        match self.record {
            ReferenceRecord::PointsAdd { lot, .. } => (lot != POOL_LOT).then_some(lot),
            _ => None,
        }
    }

    /// The original receipt of a points add or use, as its repeat answers it.
    pub fn points_receipt(&self) -> PointsReceipt {
        let (ReferenceRecord::PointsAdd { points, balance_after, .. }
        | ReferenceRecord::PointsUse { points, balance_after, .. }) = self.record
        else {
            unreachable!("{} has no points receipt", self.kind().describe());
        };
        PointsReceipt {
            transaction_id: self.transaction_id,
            points,
            balance: balance_after,
            duplicate: true,
            replaced: self.replaced,
        }
    }

    /// The original receipt of a credits add or use, as its repeat answers it.
    pub fn credits_receipt(&self) -> CreditsReceipt {
        let (ReferenceRecord::CreditsAdd { amount, balance_after }
        | ReferenceRecord::CreditsUse { amount, balance_after }) = self.record
        else {
            unreachable!("{} has no credits receipt", self.kind().describe());
        };
        CreditsReceipt { transaction_id: self.transaction_id, amount, balance: balance_after, duplicate: true }
    }

    /// A coupon grant's (transaction id, count after it), as its repeat answers it.
    pub fn coupons_granted(&self) -> (u64, u32) {
        let ReferenceRecord::CouponsGrant { count_after, .. } = self.record else {
            unreachable!("{} is not a coupon grant", self.kind().describe());
        };
        (self.transaction_id, count_after)
    }

    /// A coupon use's (transaction id, coupons left, when it was used), as its
    /// repeat answers it.
    pub fn coupon_used(&self) -> (u64, u32, Timestamp) {
        let ReferenceRecord::CouponUse { remaining, recorded_at } = self.record else {
            unreachable!("{} is not a coupon use", self.kind().describe());
        };
        (self.transaction_id, remaining, recorded_at)
    }
}

impl ReferenceEntry {
    /// A reversal's original answer, as its repeat answers it.
    pub fn reversal(&self) -> Reversal {
        let ReferenceRecord::Reversal { reversed_transaction_id, kind, amount, balance_after } = self.record else {
            unreachable!("{} is not a reversal", self.kind().describe());
        };
        Reversal {
            transaction_id: self.transaction_id,
            reversed_transaction_id,
            kind,
            member: self.member.clone(),
            amount,
            balance_after,
            duplicate: true,
        }
    }
}

/// The entry of an earlier transaction of `kind` with this reference, if any; a
/// reference another kind used is REFERENCE_IN_USE.
pub fn earlier<'v>(
    view: &'v Overlay<'_>,
    program: &str,
    reference: &str,
    kind: ReferenceKind,
) -> Result<Option<&'v ReferenceEntry>, Rejection> {
    if reference.is_empty() {
        return Ok(None);
    }
    match view.reference(program, reference) {
        None => Ok(None),
        Some(entry) if entry.kind() == kind => Ok(Some(entry)),
        Some(entry) => Err(Rejection::ReferenceInUse {
            field: FieldPath::new("reference"),
            reference: reference.to_owned(),
            transaction_id: entry.transaction_id,
            rule: format!(
                "reference {reference:?} was used by transaction {}, {}, so it cannot name {}",
                entry.transaction_id,
                entry.kind().describe(),
                kind.describe()
            ),
        }),
    }
}

/// What an earlier use of a reference means for a points add or use.
pub enum Earlier {
    None,
    Duplicate(PointsReceipt),
    /// `replace_duplicate`: the earlier add or use to reverse.
    Replace(ReferenceEntry),
}

/// What an earlier use of the reference means for a points command of `kind`.
/// With `replace_duplicate` an add and a use may replace each other; otherwise the
/// rule every kind shares applies (`earlier`): a repeat of the same kind is
/// answered with the original receipt, and a reference another kind used is
/// refused. Answering a use with the receipt of an add would tell a retrying
/// client that points were taken when none were.
pub fn points_earlier(
    view: &Overlay<'_>,
    program: &str,
    reference: &str,
    kind: ReferenceKind,
    replace: bool,
) -> Result<Earlier, Rejection> {
    if replace
        && !reference.is_empty()
        && let Some(entry) = view.reference(program, reference)
        && matches!(entry.kind(), ReferenceKind::PointsAdd | ReferenceKind::PointsUse)
    {
        return Ok(Earlier::Replace(entry.clone()));
    }
    Ok(match earlier(view, program, reference, kind)? {
        None => Earlier::None,
        Some(entry) => Earlier::Duplicate(entry.points_receipt()),
    })
}

/// The entry an event makes for its reference, given the balance of what it moved
/// right after it (`Member::fold`); `None` for an event with no reference.
pub fn entry_of(stamp: Stamp, event: &Event, balance_after: u64) -> Option<ReferenceEntry> {
    if event.body.reference().is_empty() {
        return None;
    }
    let coupon_count = |count: u64| u32::try_from(count).expect("coupon counts fit u32");
    let record = match &event.body {
        EventBody::PointsAdded(added) => ReferenceRecord::PointsAdd {
            points: added.points,
            balance_after,
            lot: lot_for_add(stamp.sequence, added.expires_at),
            expired: 0,
        },
        EventBody::PointsUsed(used) => {
            ReferenceRecord::PointsUse { points: used.points, balance_after, taken: used.taken.clone() }
        }
        EventBody::CreditsAdded(change) => ReferenceRecord::CreditsAdd {
            amount: change.amount.normalize(),
            balance_after: credits::decimal(balance_after),
        },
        EventBody::CreditsUsed(change) => ReferenceRecord::CreditsUse {
            amount: change.amount.normalize(),
            balance_after: credits::decimal(balance_after),
        },
        EventBody::CouponsGranted { count, .. } => {
            ReferenceRecord::CouponsGrant { count: *count, count_after: coupon_count(balance_after) }
        }
        EventBody::CouponUsed { .. } => {
            ReferenceRecord::CouponUse { remaining: coupon_count(balance_after), recorded_at: stamp.recorded_at }
        }
        EventBody::PointStatementApplied(statement) => ReferenceRecord::PointStatement { points: statement.points },
        EventBody::PointsHeld(_) | EventBody::CreditsHeld(_) => ReferenceRecord::Hold,
        EventBody::HoldCaptured(settled) => ReferenceRecord::HoldCapture { hold: settled.hold },
        EventBody::TransactionReversed(reversal) => ReferenceRecord::Reversal {
            reversed_transaction_id: reversal.transaction_id,
            kind: reversal.change.activity_kind(),
            amount: reversal.change.amount(),
            balance_after: reversed_balance(&reversal.change, balance_after),
        },
        EventBody::ProgramCreated { .. }
        | EventBody::FormulaDefined { .. }
        | EventBody::RewardDefined { .. }
        | EventBody::PointsAddReversed(_)
        | EventBody::PointsUseReversed(_)
        | EventBody::PointsExpired { .. }
        | EventBody::CreditDefined { .. }
        | EventBody::ShopDefined { .. }
        | EventBody::VoucherRecorded { .. }
        | EventBody::MemberCardCreated(_)
        | EventBody::MemberCardUpdated(_)
        | EventBody::MemberCardDeleted { .. }
        | EventBody::MemberLevelSet { .. }
        | EventBody::HoldVoided(_)
        | EventBody::HoldExpired(_) => return None,
    };
    Some(ReferenceEntry { transaction_id: stamp.sequence, member: event.member.clone(), replaced: false, record })
}

/// A reversal's balance after, as a decimal in the unit of what it moved.
pub fn reversed_balance(change: &ReversedChange, balance_after: u64) -> Decimal {
    match change {
        ReversedChange::CreditsAdd { .. } | ReversedChange::CreditsUse { .. } => credits::decimal(balance_after),
        ReversedChange::PointsAdd { .. }
        | ReversedChange::PointsUse { .. }
        | ReversedChange::CouponsGrant { .. }
        | ReversedChange::CouponUse { .. } => Decimal::from(balance_after),
    }
}

/// Keeps a program's references in step with one event: a new reference names its
/// transaction, a replacement's reversal sets the balance the replacing
/// transaction answers with, an expiry notes what a later reversal of the add no
/// longer has to take back.
pub fn apply(
    references: &mut BTreeMap<String, ReferenceEntry>,
    lot_references: &mut BTreeMap<u64, String>,
    stamp: Stamp,
    event: &Event,
    balance_after: u64,
) {
    if let EventBody::PointsExpired { lot, points } = &event.body {
        let entry = lot_references.get(lot).and_then(|reference| references.get_mut(reference));
        // A lot is named by its add's transaction id; a reference that names
        // another transaction was replaced, and the lot no longer answers to it.
        if let Some(entry) = entry
            && entry.transaction_id == *lot
        {
            let ReferenceRecord::PointsAdd { expired, .. } = &mut entry.record else {
                unreachable!("lot {lot} is the lot of points add {lot}");
            };
            *expired = expired.checked_add(*points).expect("expired overflow");
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
            && let ReferenceRecord::PointsAdd { balance_after: after, .. }
            | ReferenceRecord::PointsUse { balance_after: after, .. } = &mut entry.record
        {
            *after = balance_after;
        }
        return;
    }
    let Some(mut entry) = entry_of(stamp, event, balance_after) else { return };
    let reference = event.body.reference();
    // `decide` records a used reference again only when replacing; the replaced
    // add's lot no longer answers to it.
    let replaced = references.get(reference);
    entry.replaced = replaced.is_some();
    if let Some(lot) = replaced.and_then(ReferenceEntry::expiring_lot) {
        lot_references.remove(&lot);
    }
    if let Some(lot) = entry.expiring_lot() {
        lot_references.insert(lot, reference.to_owned());
    }
    references.insert(reference.to_owned(), entry);
}
