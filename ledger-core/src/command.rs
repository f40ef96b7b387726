//! What callers ask for. Commands carry raw input (signed integers, optional
//! strings as empty): `decide` validates it and names the field when it is wrong,
//! so the library and every gRPC client get the same checks and messages.

use crate::rejection::Rejection;
use crate::time::Timestamp;
use rust_decimal::Decimal;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    CreateProgram(CreateProgram),
    DefineFormula(DefineFormula),
    DefineReward(DefineReward),
    AddPoints(AddPoints),
    UsePoints(UsePoints),
    BulkAddPoints(BulkAddPoints),
    BulkUsePoints(BulkUsePoints),
    /// The background sweep: record `PointsExpired` for lots whose time has come.
    ExpirePoints(ExpirePoints),
}

/// What `decide` needs from the store besides the state: when the command is
/// recorded and which sequence number its first event will get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    pub at: Timestamp,
    pub next_sequence: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateProgram {
    pub program: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefineFormula {
    pub program: String,
    pub formula_id: String,
    pub name: String,
    pub multiplier: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefineReward {
    pub program: String,
    pub reward_id: String,
    pub name: String,
    pub points: i64,
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddPoints {
    pub program: String,
    pub member: String,
    pub points: i64,
    /// With `formula_id`, the points are `floor(cost × multiplier)`.
    pub cost: Option<Decimal>,
    pub formula_id: String,
    pub remark: String,
    pub private_remark: String,
    pub reference: String,
    pub branch_code: String,
    pub replace_duplicate: bool,
    pub expires_at: Option<Timestamp>,
    pub occurred_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsePoints {
    pub program: String,
    pub member: String,
    /// 0 with a `reward_id` means the reward's cost.
    pub points: i64,
    pub reward_id: String,
    pub remark: String,
    pub private_remark: String,
    pub reference: String,
    pub branch_code: String,
    pub replace_duplicate: bool,
    pub occurred_at: Option<Timestamp>,
}

/// Items are `AddPoints` of the same program; `cost`, `formula_id` and
/// `replace_duplicate` are not bulk fields and must stay unset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkAddPoints {
    pub program: String,
    pub items: Vec<AddPoints>,
    pub atomic: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkUsePoints {
    pub program: String,
    pub items: Vec<UsePoints>,
    pub atomic: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpirePoints {
    pub lots_max: usize,
}

/// What a command answers, beside the events it recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    ProgramCreated { program: String, name: String, created_at: Timestamp },
    FormulaDefined,
    RewardDefined,
    Points(PointsReceipt),
    Bulk(BulkResult),
    PointsExpired { lots: usize },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointsReceipt {
    pub transaction_id: u64,
    /// The amount applied.
    pub points: u64,
    /// Live points after it.
    pub balance: u64,
    /// The reference was used before: nothing changed, this is the original result.
    pub duplicate: bool,
    /// The transaction replaced an earlier one with the same reference.
    pub replaced: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkResult {
    /// Items that recorded a transaction (duplicates not counted).
    pub applied_count: u32,
    /// The index of the item that failed; items after it were not looked at.
    pub fail_at: Option<u32>,
    pub failure: Option<Rejection>,
    /// Live points of every member an applied item touched, in first-touch order.
    pub balances: Vec<(String, u64)>,
    /// 0 when nothing was applied.
    pub first_transaction_id: u64,
    pub last_transaction_id: u64,
    /// Indexes of items skipped because their reference was used before.
    pub duplicates: Vec<u32>,
}

/// A decided command: the events to append, in order, and the answer to give once
/// they are durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub events: Vec<crate::event::Event>,
    pub outcome: Outcome,
}
