//! What happened. Events are facts, appended once and never changed: `apply` folds
//! them into the state and cannot fail. Their byte encoding is the store's concern
//! (bincode, pinned by golden files); the core only promises that variants and their
//! fields are never reordered, retyped or removed. A change of meaning is a new
//! variant at the end of the enum. Decimals go through serde as strings: their
//! own `Deserialize` needs a self-describing format, which bincode is not.

use crate::time::Timestamp;
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// A short stable name for feeds and audits.
    pub fn name(&self) -> &'static str {
        match self {
            EventBody::ProgramCreated { .. } => "ProgramCreated",
            EventBody::FormulaDefined { .. } => "FormulaDefined",
            EventBody::RewardDefined { .. } => "RewardDefined",
            EventBody::PointsAdded(_) => "PointsAdded",
            EventBody::PointsUsed(_) => "PointsUsed",
            EventBody::PointsAddReversed(_) => "PointsAddReversed",
            EventBody::PointsUseReversed(_) => "PointsUseReversed",
            EventBody::PointsExpired { .. } => "PointsExpired",
        }
    }

    pub fn activity_kind(&self) -> ActivityKind {
        match self {
            EventBody::ProgramCreated { .. } | EventBody::FormulaDefined { .. } | EventBody::RewardDefined { .. } => {
                ActivityKind::Admin
            }
            EventBody::PointsAdded(_)
            | EventBody::PointsUsed(_)
            | EventBody::PointsAddReversed(_)
            | EventBody::PointsUseReversed(_)
            | EventBody::PointsExpired { .. } => ActivityKind::Points,
        }
    }

    /// The client's idempotency key the event carries, if any.
    pub fn reference(&self) -> &str {
        match self {
            EventBody::PointsAdded(added) => &added.reference,
            EventBody::PointsUsed(used) => &used.reference,
            EventBody::ProgramCreated { .. }
            | EventBody::FormulaDefined { .. }
            | EventBody::RewardDefined { .. }
            | EventBody::PointsAddReversed(_)
            | EventBody::PointsUseReversed(_)
            | EventBody::PointsExpired { .. } => "",
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
            EventBody::ProgramCreated { .. } | EventBody::FormulaDefined { .. } | EventBody::RewardDefined { .. } => 0,
        }
    }
}
