//! What callers ask for. Commands carry raw input (signed integers, optional
//! strings as empty): `decide` validates it and names the field when it is wrong,
//! so the library and every gRPC client get the same checks and messages.

use crate::event::{ActivityKind, Event};
use crate::rejection::Rejection;
use crate::tiers::CardView;
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
    DefineCredit(DefineCredit),
    AddCredits(CreditsChangeCommand),
    UseCredits(CreditsChangeCommand),
    GrantCoupons(GrantCoupons),
    UseCoupon(UseCoupon),
    DefineShop(DefineShop),
    ImportVoucherStatements(ImportVoucherStatements),
    ImportPointStatements(ImportPointStatements),
    CreateMemberCard(CreateMemberCard),
    UpdateMemberCard(UpdateMemberCard),
    DeleteMemberCard(DeleteMemberCard),
    SetMemberLevels(SetMemberLevels),
    HoldPoints(HoldPoints),
    HoldCredits(HoldCredits),
    CaptureHold(CaptureHold),
    VoidHold(VoidHold),
    ReverseTransaction(ReverseTransaction),
}

/// An Echoss `brand_id` is the program id written as a decimal string.
pub fn brand_program(brand_id: i64) -> String {
    brand_id.to_string()
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
    /// The first item the edge could not read, if any.
    pub malformed: Option<MalformedItem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkUsePoints {
    pub program: String,
    pub items: Vec<UsePoints>,
    pub atomic: bool,
    /// The first item the edge could not read, if any.
    pub malformed: Option<MalformedItem>,
}

/// A bulk item the edge could not read into a command (a time outside
/// google.protobuf.Timestamp's range): the bulk stops at it with `fail_at` as if
/// deciding it had failed, and the items before it apply (SPEC §3), rather than
/// the whole request failing. Its place in `items` holds the item with the
/// unreadable value left out; it is never decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedItem {
    pub index: usize,
    /// The item's problems, named as in a single request (`occurred_at`); the
    /// bulk moves them under `items[index]`.
    pub rejection: Rejection,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpirePoints {
    pub lots_max: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefineCredit {
    pub program: String,
    pub credit_id: String,
    pub name: String,
    pub unit: String,
}

/// An add or a use of credits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreditsChangeCommand {
    pub program: String,
    pub member: String,
    pub credit_id: String,
    pub amount: Decimal,
    pub remark: String,
    pub reference: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantCoupons {
    pub program: String,
    pub member: String,
    pub coupon_id: String,
    pub name: String,
    pub count: u32,
    pub reference: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UseCoupon {
    pub program: String,
    pub member: String,
    pub coupon_id: String,
    pub remark: String,
    pub reference: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefineShop {
    pub program: String,
    pub shop_id: i64,
    pub name: String,
}

/// One voucher statement of an import, as the caller sent it: `sent_at` is
/// optional here only so that its absence is reported by field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoucherImportItem {
    pub brand_id: i64,
    pub promotion_id: i64,
    pub voucher_identifier: String,
    pub voucher_number: String,
    pub voucher_name: String,
    pub line_id: String,
    pub sent_at: Option<Timestamp>,
    pub used_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    pub brand_manager_id: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportVoucherStatements {
    pub items: Vec<VoucherImportItem>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PointStatementItem {
    pub brand_id: i64,
    pub promotion_id: i64,
    pub line_id: String,
    /// 集點 / 兌換 / 取消, or COLLECT / REDEEM / CANCEL.
    pub change_reason: String,
    pub point_change_record: i64,
    pub changed_at: Option<Timestamp>,
    pub brand_manager_id: i64,
    pub reference: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportPointStatements {
    pub items: Vec<PointStatementItem>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateMemberCard {
    pub program: String,
    pub name: String,
    pub benefit: String,
    pub lowest_amount: i64,
    pub image_url: String,
}

/// `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateMemberCard {
    pub program: String,
    pub card_id: String,
    pub name: Option<String>,
    pub benefit: Option<String>,
    pub lowest_amount: Option<i64>,
    pub image_url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteMemberCard {
    pub program: String,
    pub card_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetMemberLevels {
    pub program: String,
    /// (member, level); level 0 unpins.
    pub levels: Vec<(String, u32)>,
}

/// Points set aside for a later capture or void (SPEC §14).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldPoints {
    pub program: String,
    pub member: String,
    pub points: i64,
    pub remark: String,
    pub reference: String,
    /// `None`: `HOLD_EXPIRY_DEFAULT_MICROS` after the hold.
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldCredits {
    pub program: String,
    pub member: String,
    pub credit_id: String,
    pub amount: Decimal,
    pub remark: String,
    pub reference: String,
    pub expires_at: Option<Timestamp>,
}

/// Spends a pending hold, whole (`amount` `None`) or in part; the rest goes back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureHold {
    pub program: String,
    /// The hold's transaction id as the caller wrote it; one that is no number
    /// names no hold.
    pub hold_id: String,
    /// The hold's member. Callers do not know it: the store reads it from the
    /// hold's event before deciding (the core reads no log), empty when the
    /// transaction is no hold of the program.
    pub member: String,
    pub amount: Option<Decimal>,
    pub remark: String,
    pub reference: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoidHold {
    pub program: String,
    pub hold_id: String,
    /// Filled by the store, as for `CaptureHold`.
    pub member: String,
    pub remark: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditsReceipt {
    pub transaction_id: u64,
    /// Normalized: no trailing zeros.
    pub amount: Decimal,
    pub balance: Decimal,
    pub duplicate: bool,
}

/// What a command answers, beside the events it recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    ProgramCreated {
        program: String,
        name: String,
        created_at: Timestamp,
    },
    FormulaDefined,
    RewardDefined,
    Points(PointsReceipt),
    Bulk(BulkResult),
    PointsExpired {
        lots: usize,
    },
    CreditDefined,
    Credits(CreditsReceipt),
    CouponsGranted {
        transaction_id: u64,
        count: u32,
    },
    CouponUsed {
        transaction_id: u64,
        remaining: u32,
        used_at: Timestamp,
    },
    ShopDefined,
    VouchersImported {
        created: u32,
        updated: u32,
    },
    PointStatementsImported {
        applied: u32,
    },
    /// The card after the change, at its level.
    MemberCard(CardView),
    MemberCardDeleted,
    LevelsSet {
        updated: u32,
    },
    /// A hold as it stands after the command (or, for a repeat, now).
    Hold(crate::holds::HoldView),
    Reversal(Reversal),
}

/// ReverseTransaction (SPEC §15): undo one earlier transaction by its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReverseTransaction {
    pub program: String,
    pub transaction_id: u64,
    pub remark: String,
    pub reference: String,
    /// The event the transaction id names, as the store read it from its log
    /// (`None` when no event has that sequence): the core does no I/O, and a
    /// transaction id names an event of the log, not a row of the state. Callers
    /// leave it `None`; the store fills it in before `decide`.
    pub target: Option<Event>,
}

/// What a reversal did (SPEC §15 `Reversal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reversal {
    /// The reversal's own transaction id.
    pub transaction_id: u64,
    pub reversed_transaction_id: u64,
    pub kind: ActivityKind,
    pub member: String,
    /// Signed: the change the reversal made, in the unit of what it moved.
    pub amount: Decimal,
    /// The balance of what it moved right after it.
    pub balance_after: Decimal,
    /// The reference was used before: nothing changed, this is the original result.
    pub duplicate: bool,
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
