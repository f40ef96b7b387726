//! What happened. Events are facts, appended once and never changed: `apply` folds
//! them into the state and cannot fail. Their byte encoding is the store's concern
//! (bincode, pinned by golden files); the core only promises that variants and their
//! fields are never reordered, retyped or removed. A change of meaning is a new
//! variant at the end of the enum. Decimals go through serde as strings: their
//! own `Deserialize` needs a self-describing format, which bincode is not.

use crate::time::Timestamp;
use crate::vouchers::VoucherStatement;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One event as the core sees it: what changed and whom it names. The store wraps
/// it with its sequence number, id, recorded time, actor and hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub program: String,
    /// Empty for events that name no member (program definitions).
    pub member: String,
    /// The business time the client gave, if any.
    pub occurred_at: Option<Timestamp>,
    pub body: EventBody,
}

/// Where an event sits in the log: given to `apply` by the store, which assigns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The event's sequence number, which is also its transaction id.
    pub sequence: u64,
    pub recorded_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventBody {
    ProgramCreated {
        name: String,
    },
    FormulaDefined {
        formula_id: String,
        name: String,
        #[serde(with = "rust_decimal::serde::str")]
        multiplier: Decimal,
    },
    RewardDefined {
        reward_id: String,
        name: String,
        points: u64,
        expires_at: Option<Timestamp>,
    },
    PointsAdded(PointsAdded),
    PointsUsed(PointsUsed),
    /// Undoes an earlier add, for `replace_duplicate`.
    PointsAddReversed(PointsReversal),
    /// Undoes an earlier use, for `replace_duplicate`.
    PointsUseReversed(PointsReversal),
    /// The expiry sweep took what was left of a lot whose time had come.
    PointsExpired {
        lot: u64,
        points: u64,
    },
    CreditDefined {
        credit_id: String,
        name: String,
        unit: String,
    },
    CreditsAdded(CreditsChange),
    CreditsUsed(CreditsChange),
    /// Coupons added to a member's count of `coupon_id`.
    CouponsGranted {
        coupon_id: String,
        name: String,
        count: u32,
        reference: String,
    },
    /// One coupon taken from a member's count.
    CouponUsed {
        coupon_id: String,
        remark: String,
        reference: String,
    },
    /// Names an Echoss `brand_manager_id`; a later definition renames it.
    ShopDefined {
        shop_id: i64,
        name: String,
    },
    /// One version of a voucher statement; the member is its `line_id`.
    VoucherRecorded {
        statement: VoucherStatement,
        /// 1 for the first import of the triple, +1 for each replacement.
        version: u32,
    },
    PointStatementApplied(PointStatementApplied),
    MemberCardCreated(MemberCardFields),
    /// The card's fields after the update, whole.
    MemberCardUpdated(MemberCardFields),
    /// The card above (if any) takes its `lowest_amount` and every card above moves down.
    MemberCardDeleted {
        card_id: String,
    },
    /// A manual level (0: unpinned, the tier follows amounts again).
    MemberLevelSet {
        level: u32,
        /// The card pinned, empty at level 0: the pin follows the card when levels move.
        card_id: String,
    },
    /// Points set aside for a later capture or void (SPEC §14); the event's
    /// transaction id is the hold's id.
    PointsHeld(PointsHold),
    /// Credits set aside for a later capture or void; the event's transaction id
    /// is the hold's id.
    CreditsHeld(CreditsHold),
    /// A pending hold spent, whole or in part; the rest went back.
    HoldCaptured(HoldSettled),
    /// A pending hold given back whole at the caller's request.
    HoldVoided(HoldSettled),
    /// A pending hold given back whole because its time came.
    HoldExpired(HoldSettled),
    /// ReverseTransaction (SPEC §15): undoes exactly the change of one earlier
    /// transaction of the same member, once.
    TransactionReversed(TransactionReversal),
}

/// Points held: taken from the lots as a use takes them, kept apart until settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsHold {
    pub points: u64,
    pub remark: String,
    pub reference: String,
    /// Always set: a hold without an expiry would hold points for ever.
    pub expires_at: Timestamp,
    /// The lots that paid, soonest-expiring first, so that a release gives each
    /// its points back with its expiry.
    pub taken: Vec<LotTake>,
}

/// Credits held from one credit type's wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditsHold {
    pub credit_id: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub remark: String,
    pub reference: String,
    pub expires_at: Timestamp,
}

/// How a pending hold ended: captured (in part), voided or expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldSettled {
    /// The hold's transaction id.
    pub hold: u64,
    /// The hold's credit type; empty for a points hold. Kept here so that the
    /// event alone says what it moved (activities, feeds).
    pub credit_id: String,
    /// What was spent: 0 for a void or an expiry.
    #[serde(with = "rust_decimal::serde::str")]
    pub captured: Decimal,
    /// What went back: the lots given points (points), or the credits (credits).
    #[serde(with = "rust_decimal::serde::str")]
    pub released: Decimal,
    /// For points: the lots given back, with their expiry.
    pub released_lots: Vec<LotTake>,
    pub remark: String,
    /// A capture's reference; empty otherwise.
    pub reference: String,
}

/// The reversal of one transaction by its id (SPEC §15).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionReversal {
    /// The transaction undone.
    pub transaction_id: u64,
    pub remark: String,
    /// The reversal's own reference (empty when the client gave none).
    pub reference: String,
    pub change: ReversedChange,
}

/// What a reversal undoes, by the kind of the transaction it reverses: each
/// variant carries exactly what the fold needs to undo it, so that a replay never
/// has to look at the reversed event again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReversedChange {
    /// Takes the add's points back from its lot and lowers the qualifying
    /// amount by them (`earned`).
    PointsAdd {
        points: u64,
        lots: Vec<LotTake>,
        earned: u64,
    },
    /// Gives the use's points back to the lots they came from, with their expiry.
    PointsUse {
        points: u64,
        lots: Vec<LotTake>,
    },
    CreditsAdd {
        credit_id: String,
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
    },
    CreditsUse {
        credit_id: String,
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
    },
    CouponsGrant {
        coupon_id: String,
        count: u32,
    },
    CouponUse {
        coupon_id: String,
    },
}

impl ReversedChange {
    pub fn activity_kind(&self) -> ActivityKind {
        match self {
            ReversedChange::PointsAdd { .. } | ReversedChange::PointsUse { .. } => ActivityKind::Points,
            ReversedChange::CreditsAdd { .. } | ReversedChange::CreditsUse { .. } => ActivityKind::Credits,
            ReversedChange::CouponsGrant { .. } | ReversedChange::CouponUse { .. } => ActivityKind::Coupons,
        }
    }

    /// The signed change the reversal makes, in the unit of what it moves.
    pub fn amount(&self) -> Decimal {
        match self {
            ReversedChange::PointsAdd { points, .. } => -Decimal::from(*points),
            ReversedChange::PointsUse { points, .. } => Decimal::from(*points),
            ReversedChange::CreditsAdd { amount, .. } => -amount.normalize(),
            ReversedChange::CreditsUse { amount, .. } => amount.normalize(),
            ReversedChange::CouponsGrant { count, .. } => -Decimal::from(*count),
            ReversedChange::CouponUse { .. } => Decimal::ONE,
        }
    }
}

/// Credits added to or used from a member's wallet of one credit type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditsChange {
    pub credit_id: String,
    /// Positive, at most `CREDIT_SCALE` decimal places.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    pub remark: String,
    pub reference: String,
}

/// Why an Echoss point statement changed a member's points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeReason {
    /// 集點: moves the qualifying amount too.
    Collect,
    /// 兌換: spending; the qualifying amount stays.
    Redeem,
    /// 取消: undoes a collect, so it moves the qualifying amount too.
    Cancel,
}

impl ChangeReason {
    /// The seed's Chinese words, or their English names in any case.
    pub fn parse(text: &str) -> Option<ChangeReason> {
        match text {
            "集點" => Some(ChangeReason::Collect),
            "兌換" => Some(ChangeReason::Redeem),
            "取消" => Some(ChangeReason::Cancel),
            _ if text.eq_ignore_ascii_case("COLLECT") => Some(ChangeReason::Collect),
            _ if text.eq_ignore_ascii_case("REDEEM") => Some(ChangeReason::Redeem),
            _ if text.eq_ignore_ascii_case("CANCEL") => Some(ChangeReason::Cancel),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeReason::Collect => "COLLECT",
            ChangeReason::Redeem => "REDEEM",
            ChangeReason::Cancel => "CANCEL",
        }
    }

    pub fn moves_qualifying_amount(self) -> bool {
        matches!(self, ChangeReason::Collect | ChangeReason::Cancel)
    }
}

/// An external point change (Echoss `point_statements`); the event's
/// `occurred_at` is its `changed_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointStatementApplied {
    pub promotion_id: i64,
    pub change_reason: ChangeReason,
    /// Signed, non-zero.
    pub points: i64,
    pub brand_manager_id: i64,
    pub reference: String,
    /// For a negative change: the lots that paid, soonest-expiring first. A
    /// positive change goes to the never-expiring pool lot.
    pub taken: Vec<LotTake>,
}

/// A member card as created or updated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCardFields {
    /// Assigned by the ledger: the transaction id of the card's creation.
    pub card_id: String,
    pub name: String,
    pub benefit: String,
    pub lowest_amount: u64,
    pub image_url: String,
}

/// Points added to a member; the event's own transaction id names the lot it makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsAdded {
    pub points: u64,
    pub remark: String,
    pub private_remark: String,
    /// Empty when the client gave none.
    pub reference: String,
    pub branch_code: String,
    pub expires_at: Option<Timestamp>,
    /// With a formula: what the customer spent, and the formula that turned it into
    /// points, kept so that an auditor can recompute `points`.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub cost: Option<Decimal>,
    pub formula_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsUsed {
    pub points: u64,
    pub remark: String,
    pub private_remark: String,
    pub reference: String,
    pub branch_code: String,
    pub reward_id: String,
    /// Which lots paid, soonest-expiring first: recorded so that a reversal can give
    /// each lot back what it took, and so the log explains every lot's remainder.
    pub taken: Vec<LotTake>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotTake {
    /// The transaction id of the add that made the lot.
    pub lot: u64,
    pub points: u64,
    /// The lot's expiry, so that giving points back can remake a lot that emptied.
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsReversal {
    /// The transaction being undone.
    pub transaction_id: u64,
    pub points: u64,
    /// For an add's reversal, the lots points were taken from; for a use's, the lots
    /// given back.
    pub lots: Vec<LotTake>,
    pub reference: String,
    /// For an add's reversal: what the add had earned, which leaves the qualifying
    /// amount even where part of it expired and so is not taken back (`points`).
    pub earned: u64,
}

/// The areas of activity a caller can filter on (SPEC §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ActivityKind {
    Points,
    Credits,
    Coupons,
    Vouchers,
    Tiers,
    /// Definitions and programs: not a member's activity.
    Admin,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Points => "POINTS",
            ActivityKind::Credits => "CREDITS",
            ActivityKind::Coupons => "COUPONS",
            ActivityKind::Vouchers => "VOUCHERS",
            ActivityKind::Tiers => "TIERS",
            ActivityKind::Admin => "ADMIN",
        }
    }

    pub fn parse(text: &str) -> Option<ActivityKind> {
        [
            ActivityKind::Points,
            ActivityKind::Credits,
            ActivityKind::Coupons,
            ActivityKind::Vouchers,
            ActivityKind::Tiers,
            ActivityKind::Admin,
        ]
        .into_iter()
        .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
    }
}

impl EventBody {
    /// How many kinds of event there are: `index` is below it.
    pub const KINDS_COUNT: usize = 26;

    /// The stable names of the kinds, by `index`.
    pub const NAMES: [&'static str; EventBody::KINDS_COUNT] = [
        "ProgramCreated",
        "FormulaDefined",
        "RewardDefined",
        "PointsAdded",
        "PointsUsed",
        "PointsAddReversed",
        "PointsUseReversed",
        "PointsExpired",
        "CreditDefined",
        "CreditsAdded",
        "CreditsUsed",
        "CouponsGranted",
        "CouponUsed",
        "ShopDefined",
        "VoucherRecorded",
        "PointStatementApplied",
        "MemberCardCreated",
        "MemberCardUpdated",
        "MemberCardDeleted",
        "MemberLevelSet",
        "PointsHeld",
        "CreditsHeld",
        "HoldCaptured",
        "HoldVoided",
        "HoldExpired",
        "TransactionReversed",
    ];

    /// The kind's place in 0..`KINDS_COUNT`, in the order the variants were added.
    /// Tests that must cover every kind (golden files, corruption) count on it, so
    /// a new variant fails them until they do.
    pub fn index(&self) -> usize {
        match self {
            EventBody::ProgramCreated { .. } => 0,
            EventBody::FormulaDefined { .. } => 1,
            EventBody::RewardDefined { .. } => 2,
            EventBody::PointsAdded(_) => 3,
            EventBody::PointsUsed(_) => 4,
            EventBody::PointsAddReversed(_) => 5,
            EventBody::PointsUseReversed(_) => 6,
            EventBody::PointsExpired { .. } => 7,
            EventBody::CreditDefined { .. } => 8,
            EventBody::CreditsAdded(_) => 9,
            EventBody::CreditsUsed(_) => 10,
            EventBody::CouponsGranted { .. } => 11,
            EventBody::CouponUsed { .. } => 12,
            EventBody::ShopDefined { .. } => 13,
            EventBody::VoucherRecorded { .. } => 14,
            EventBody::PointStatementApplied(_) => 15,
            EventBody::MemberCardCreated(_) => 16,
            EventBody::MemberCardUpdated(_) => 17,
            EventBody::MemberCardDeleted { .. } => 18,
            EventBody::MemberLevelSet { .. } => 19,
            EventBody::PointsHeld(_) => 20,
            EventBody::CreditsHeld(_) => 21,
            EventBody::HoldCaptured(_) => 22,
            EventBody::HoldVoided(_) => 23,
            EventBody::HoldExpired(_) => 24,
            EventBody::TransactionReversed(_) => 25,
        }
    }

    /// A short stable name for feeds and audits.
    pub fn name(&self) -> &'static str {
        EventBody::NAMES[self.index()]
    }

    pub fn activity_kind(&self) -> ActivityKind {
        match self {
            EventBody::ProgramCreated { .. }
            | EventBody::FormulaDefined { .. }
            | EventBody::RewardDefined { .. }
            | EventBody::CreditDefined { .. }
            | EventBody::ShopDefined { .. }
            | EventBody::MemberCardCreated(_)
            | EventBody::MemberCardUpdated(_)
            | EventBody::MemberCardDeleted { .. } => ActivityKind::Admin,
            EventBody::PointsAdded(_)
            | EventBody::PointsUsed(_)
            | EventBody::PointsAddReversed(_)
            | EventBody::PointsUseReversed(_)
            | EventBody::PointsExpired { .. }
            | EventBody::PointStatementApplied(_) => ActivityKind::Points,
            EventBody::CreditsAdded(_) | EventBody::CreditsUsed(_) => ActivityKind::Credits,
            EventBody::CouponsGranted { .. } | EventBody::CouponUsed { .. } => ActivityKind::Coupons,
            EventBody::VoucherRecorded { .. } => ActivityKind::Vouchers,
            EventBody::MemberLevelSet { .. } => ActivityKind::Tiers,
            EventBody::PointsHeld(_) => ActivityKind::Points,
            EventBody::CreditsHeld(_) => ActivityKind::Credits,
            EventBody::HoldCaptured(settled) | EventBody::HoldVoided(settled) | EventBody::HoldExpired(settled) => {
                if settled.credit_id.is_empty() {
                    ActivityKind::Points
                } else {
                    ActivityKind::Credits
                }
            }
            EventBody::TransactionReversed(reversal) => reversal.change.activity_kind(),
        }
    }

    /// The client's idempotency key the event carries, if any.
    pub fn reference(&self) -> &str {
        match self {
            EventBody::PointsAdded(added) => &added.reference,
            EventBody::PointsUsed(used) => &used.reference,
            EventBody::CreditsAdded(change) | EventBody::CreditsUsed(change) => &change.reference,
            EventBody::CouponsGranted { reference, .. } | EventBody::CouponUsed { reference, .. } => reference,
            EventBody::PointStatementApplied(statement) => &statement.reference,
            EventBody::PointsHeld(hold) => &hold.reference,
            EventBody::CreditsHeld(hold) => &hold.reference,
            EventBody::HoldCaptured(settled) => &settled.reference,
            EventBody::HoldVoided(_) | EventBody::HoldExpired(_) => "",
            EventBody::TransactionReversed(reversal) => &reversal.reference,
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
            | EventBody::MemberLevelSet { .. } => "",
        }
    }

    /// The signed change the event made to a member's points.
    pub fn points_delta(&self) -> i128 {
        match self {
            EventBody::PointsAdded(added) => i128::from(added.points),
            EventBody::PointsUsed(used) => -i128::from(used.points),
            EventBody::PointsAddReversed(reversal) => -i128::from(reversal.points),
            EventBody::PointsUseReversed(reversal) => i128::from(reversal.points),
            EventBody::PointsExpired { points, .. } => -i128::from(*points),
            EventBody::PointStatementApplied(statement) => i128::from(statement.points),
            EventBody::PointsHeld(hold) => -i128::from(hold.points),
            EventBody::HoldCaptured(settled) | EventBody::HoldVoided(settled) | EventBody::HoldExpired(settled) => {
                settled.released_lots.iter().map(|take| i128::from(take.points)).sum()
            }
            EventBody::TransactionReversed(reversal) => match &reversal.change {
                ReversedChange::PointsAdd { points, .. } => -i128::from(*points),
                ReversedChange::PointsUse { points, .. } => i128::from(*points),
                _ => 0,
            },
            _ => 0,
        }
    }
}
