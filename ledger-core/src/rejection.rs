//! Why the core refused a command: the caller's fault, never the store's. Each
//! rejection names the field and the rule, so that a caller can act on it.

use crate::field::FieldPath;
use crate::time::Timestamp;

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
        }
    }

    /// Moves the rejection of one item under its list: `points` → `items[3].points`.
    pub fn under(mut self, list: &str, index: usize) -> Rejection {
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
        }
    }

    pub fn class(&self) -> RejectionClass {
        match self {
            Rejection::Required { .. }
            | Rejection::OutOfRange { .. }
            | Rejection::TooLong { .. }
            | Rejection::Invalid { .. } => RejectionClass::InvalidArgument,
            Rejection::UnknownProgram { .. }
            | Rejection::UnknownMember { .. }
            | Rejection::UnknownFormula { .. }
            | Rejection::UnknownReward { .. }
            | Rejection::UnknownTransaction { .. }
            | Rejection::UnknownReference { .. } => RejectionClass::NotFound,
            Rejection::RewardExpired { .. }
            | Rejection::InsufficientPoints { .. }
            | Rejection::ReplacementInsufficient { .. } => RejectionClass::FailedPrecondition,
            Rejection::ProgramExists { .. } => RejectionClass::AlreadyExists,
        }
    }
}
