//! Why the core refused a command: the caller's fault, never the store's. Each
//! rejection names the field and the rule, so that a caller can act on it.

use crate::field::FieldPath;
use crate::time::Timestamp;
use rust_decimal::Decimal;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("{field}: is required and may not be blank")]
    Required { field: FieldPath },
    #[error("{field}: must be {min}..={max}, got {got}")]
    OutOfRange { field: FieldPath, got: i128, min: i128, max: i128 },
    #[error("{field}: must be at most {max} bytes, got {got}")]
    TooLong { field: FieldPath, got: usize, max: usize },
    #[error("{field}: {rule}")]
    Invalid { field: FieldPath, rule: String },
    #[error("{field}: program {program:?} does not exist")]
    UnknownProgram { field: FieldPath, program: String },
    #[error("{field}: member {member:?} has no events in program {program:?}")]
    UnknownMember { field: FieldPath, program: String, member: String },
    #[error("{field}: formula {formula_id:?} is not defined in program {program:?}")]
    UnknownFormula { field: FieldPath, program: String, formula_id: String },
    #[error("{field}: reward {reward_id:?} is not defined in program {program:?}")]
    UnknownReward { field: FieldPath, program: String, reward_id: String },
    #[error("{field}: transaction {transaction_id} does not exist")]
    UnknownTransaction { field: FieldPath, transaction_id: u64 },
    #[error("{field}: no transaction has reference {reference:?} in program {program:?}")]
    UnknownReference { field: FieldPath, program: String, reference: String },
    #[error("{field}: reward {reward_id:?} expired at {expired_at}")]
    RewardExpired { field: FieldPath, reward_id: String, expired_at: Timestamp },
    #[error("{field}: balance {balance} is less than {wanted}")]
    InsufficientPoints { field: FieldPath, balance: u64, wanted: u64 },
    #[error(
        "{field}: replacing transaction {transaction_id} would leave member {member:?} \
         {shortfall} points below zero; nothing was changed"
    )]
    ReplacementInsufficient { field: FieldPath, transaction_id: u64, member: String, shortfall: u64 },
    #[error("{field}: program {program:?} already exists")]
    ProgramExists { field: FieldPath, program: String },
    #[error("{field}: {what} {id:?} is not defined in program {program:?}")]
    NotDefined { field: FieldPath, what: &'static str, id: String, program: String },
    #[error("{field}: balance {balance} is less than {wanted}")]
    InsufficientCredits { field: FieldPath, balance: Decimal, wanted: Decimal },
    #[error("{field}: member {member:?} has no coupon {coupon_id:?} left")]
    NoCoupon { field: FieldPath, member: String, coupon_id: String },
    /// A rule of state other than a balance: a sixth card, deleting level 1.
    #[error("{field}: {rule}")]
    Conflict { field: FieldPath, code: &'static str, rule: String },
    /// A name or key that must be unique is taken.
    #[error("{field}: {rule}")]
    Duplicate { field: FieldPath, rule: String },
    /// Every problem of a batch that is validated whole before anything is written
    /// (Echoss imports); never empty.
    #[error("{} problems: {}", problems.len(), join(problems))]
    Many { problems: Vec<Rejection> },
}

fn join(problems: &[Rejection]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// How a caller should read a rejection; the gRPC layer maps each to one status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectionClass {
    /// Wrong whatever the state: fix the request.
    InvalidArgument,
    /// Names something that does not exist.
    NotFound,
    /// Valid, but the state says no (insufficient points, an expired reward).
    FailedPrecondition,
    /// Creates something that exists already.
    AlreadyExists,
}

impl Rejection {
    pub fn field(&self) -> &FieldPath {
        match self {
            Rejection::Required { field }
            | Rejection::OutOfRange { field, .. }
            | Rejection::TooLong { field, .. }
            | Rejection::Invalid { field, .. }
            | Rejection::UnknownProgram { field, .. }
            | Rejection::UnknownMember { field, .. }
            | Rejection::UnknownFormula { field, .. }
            | Rejection::UnknownReward { field, .. }
            | Rejection::UnknownTransaction { field, .. }
            | Rejection::UnknownReference { field, .. }
            | Rejection::RewardExpired { field, .. }
            | Rejection::InsufficientPoints { field, .. }
            | Rejection::ReplacementInsufficient { field, .. }
            | Rejection::ProgramExists { field, .. } => field,
            Rejection::NotDefined { field, .. }
            | Rejection::InsufficientCredits { field, .. }
            | Rejection::NoCoupon { field, .. }
            | Rejection::Conflict { field, .. }
            | Rejection::Duplicate { field, .. } => field,
            Rejection::Many { problems } => problems[0].field(),
        }
    }

    fn field_mut(&mut self) -> &mut FieldPath {
        match self {
            Rejection::Required { field }
            | Rejection::OutOfRange { field, .. }
            | Rejection::TooLong { field, .. }
            | Rejection::Invalid { field, .. }
            | Rejection::UnknownProgram { field, .. }
            | Rejection::UnknownMember { field, .. }
            | Rejection::UnknownFormula { field, .. }
            | Rejection::UnknownReward { field, .. }
            | Rejection::UnknownTransaction { field, .. }
            | Rejection::UnknownReference { field, .. }
            | Rejection::RewardExpired { field, .. }
            | Rejection::InsufficientPoints { field, .. }
            | Rejection::ReplacementInsufficient { field, .. }
            | Rejection::ProgramExists { field, .. } => field,
            Rejection::NotDefined { field, .. }
            | Rejection::InsufficientCredits { field, .. }
            | Rejection::NoCoupon { field, .. }
            | Rejection::Conflict { field, .. }
            | Rejection::Duplicate { field, .. } => field,
            Rejection::Many { problems } => problems[0].field_mut(),
        }
    }

    /// Moves the rejection of one item under its list: `points` → `items[3].points`.
    pub fn under(mut self, list: &str, index: usize) -> Rejection {
        if let Rejection::Many { problems } = self {
            return Rejection::Many { problems: problems.into_iter().map(|p| p.under(list, index)).collect() };
        }
        let field = self.field_mut();
        *field = field.clone().under(list, index);
        self
    }

    /// A stable code for machines, as Loga's result codes are: it is what a bulk
    /// failure reports beside its message.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Required { .. } => "REQUIRED",
            Rejection::OutOfRange { .. } => "OUT_OF_RANGE",
            Rejection::TooLong { .. } => "TOO_LONG",
            Rejection::Invalid { .. } => "INVALID",
            Rejection::UnknownProgram { .. } => "PROGRAM_NOT_FOUND",
            Rejection::UnknownMember { .. } => "MEMBER_NOT_FOUND",
            Rejection::UnknownFormula { .. } => "FORMULA_NOT_FOUND",
            Rejection::UnknownReward { .. } => "REWARD_NOT_FOUND",
            Rejection::UnknownTransaction { .. } => "TRANSACTION_NOT_FOUND",
            Rejection::UnknownReference { .. } => "REFERENCE_NOT_FOUND",
            Rejection::RewardExpired { .. } => "REWARD_EXPIRED",
            Rejection::InsufficientPoints { .. } => "INSUFFICIENT_POINTS",
            Rejection::ReplacementInsufficient { .. } => "INSUFFICIENT_POINTS",
            Rejection::ProgramExists { .. } => "PROGRAM_EXISTS",
            Rejection::NotDefined { .. } => "NOT_FOUND",
            Rejection::InsufficientCredits { .. } => "INSUFFICIENT_CREDITS",
            Rejection::NoCoupon { .. } => "NO_COUPON",
            Rejection::Conflict { code, .. } => code,
            Rejection::Duplicate { .. } => "ALREADY_EXISTS",
            Rejection::Many { .. } => "INVALID",
        }
    }

    /// The single problems, for field violations: a batch's every problem, or this one.
    pub fn problems(&self) -> Vec<&Rejection> {
        match self {
            Rejection::Many { problems } => problems.iter().collect(),
            single => vec![single],
        }
    }

    pub fn class(&self) -> RejectionClass {
        match self {
            Rejection::Required { .. }
            | Rejection::OutOfRange { .. }
            | Rejection::TooLong { .. }
            | Rejection::Invalid { .. }
            | Rejection::Many { .. } => RejectionClass::InvalidArgument,
            Rejection::UnknownProgram { .. }
            | Rejection::UnknownMember { .. }
            | Rejection::UnknownFormula { .. }
            | Rejection::UnknownReward { .. }
            | Rejection::UnknownTransaction { .. }
            | Rejection::UnknownReference { .. }
            | Rejection::NotDefined { .. } => RejectionClass::NotFound,
            Rejection::RewardExpired { .. }
            | Rejection::InsufficientPoints { .. }
            | Rejection::ReplacementInsufficient { .. }
            | Rejection::InsufficientCredits { .. }
            | Rejection::NoCoupon { .. }
            | Rejection::Conflict { .. } => RejectionClass::FailedPrecondition,
            Rejection::ProgramExists { .. } | Rejection::Duplicate { .. } => RejectionClass::AlreadyExists,
        }
    }
}
