//! Why the core refused a command: the caller's fault, never the store's. Each
//! rejection names the field and the rule, so that a caller can act on it, and a
//! reason (SPEC §13, `reason`) with metadata, so that a program can branch on it
//! without reading the words.

use crate::field::FieldPath;
use crate::reason;
use crate::time::Timestamp;
use rust_decimal::Decimal;
use std::fmt;

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
    #[error("{field}: transaction {transaction_id} does not exist in program {program:?}")]
    UnknownTransaction { field: FieldPath, program: String, transaction_id: u64 },
    /// No transaction has the reference: there is no transaction to show
    /// (TRANSACTION_NOT_FOUND, as for an unknown transaction id).
    #[error("{field}: no transaction has reference {reference:?} in program {program:?}")]
    UnknownReference { field: FieldPath, program: String, reference: String },
    #[error("{field}: brand {brand_id} has no voucher statement {voucher_identifier:?} in promotion {promotion_id}")]
    UnknownVoucher { field: FieldPath, brand_id: i64, promotion_id: i64, voucher_identifier: String },
    #[error("{field}: reward {reward_id:?} expired at {expired_at}")]
    RewardExpired { field: FieldPath, reward_id: String, expired_at: Timestamp },
    #[error("{field}: balance {balance} is less than {wanted}")]
    InsufficientPoints { field: FieldPath, member: String, balance: u64, wanted: u64 },
    #[error(
        "{field}: replacing transaction {transaction_id} would leave member {member:?} \
         {shortfall} points below zero; nothing was changed"
    )]
    ReplacementInsufficient { field: FieldPath, transaction_id: u64, member: String, shortfall: u64 },
    #[error("{field}: program {program:?} already exists")]
    ProgramExists { field: FieldPath, program: String },
    #[error("{field}: {what} {id:?} is not defined in program {program:?}")]
    NotDefined { field: FieldPath, what: Definition, id: String, program: String },
    #[error("{field}: balance {balance} is less than {wanted}")]
    InsufficientCredits { field: FieldPath, member: String, credit_id: String, balance: Decimal, wanted: Decimal },
    #[error("{field}: member {member:?} has no coupon {coupon_id:?} left")]
    NoCoupon { field: FieldPath, member: String, coupon_id: String },
    /// A rule of state other than a balance: a sixth card, deleting level 1, a
    /// balance past its limit. `reason` is one of `crate::reason`'s.
    #[error("{field}: {rule}")]
    Conflict { field: FieldPath, reason: &'static str, rule: String },
    /// A name that must be unique in its program is taken.
    #[error("{field}: {rule}")]
    NameTaken { field: FieldPath, name: String, rule: String },
    /// A reference (unique per program across kinds) names a transaction of
    /// another kind.
    #[error("{field}: {rule}")]
    ReferenceInUse { field: FieldPath, reference: String, transaction_id: u64, rule: String },
    /// Every problem of a request, when it has more than one (and every problem
    /// of an Echoss import, validated whole); never empty.
    #[error("{} problems: {}", problems.len(), join(problems))]
    Many { problems: Vec<Rejection> },
    #[error("{field}: hold {hold_id:?} does not exist in program {program:?}")]
    UnknownHold { field: FieldPath, program: String, hold_id: String },
    /// A transaction that was reversed already (SPEC §15), by `reversed_by`.
    #[error("{field}: transaction {transaction_id} was already reversed by transaction {reversed_by}")]
    AlreadyReversed { field: FieldPath, transaction_id: u64, reversed_by: u64 },
    /// A transaction that no reversal can undo (SPEC §15): its kind, or what is
    /// left of its change (`left`, when some of it was spent).
    #[error("{field}: {rule}")]
    NotReversible { field: FieldPath, transaction_id: u64, rule: String, left: Option<String> },
}

/// What a `NotDefined` names; each kind has its own NOT_FOUND reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Definition {
    CreditType,
    MemberCard,
    /// A level of SetMemberLevels with no card at it.
    CardLevel,
}

impl Definition {
    pub fn reason(self) -> &'static str {
        match self {
            Definition::CreditType => reason::CREDIT_NOT_FOUND,
            Definition::MemberCard | Definition::CardLevel => reason::CARD_NOT_FOUND,
        }
    }

    /// The metadata key the id goes under.
    pub fn key(self) -> &'static str {
        match self {
            Definition::CreditType => "credit_id",
            Definition::MemberCard => "card_id",
            Definition::CardLevel => "level",
        }
    }
}

impl fmt::Display for Definition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Definition::CreditType => "credit type",
            Definition::MemberCard => "member card",
            Definition::CardLevel => "member card level",
        })
    }
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
    /// Every problem found, as one rejection: none is `Ok`, one is itself, more
    /// are `Many` (flattened, so that a problem is never nested in another).
    pub fn every(problems: Vec<Rejection>) -> Result<(), Rejection> {
        let mut flat = Vec::with_capacity(problems.len());
        for problem in problems {
            match problem {
                Rejection::Many { problems } => flat.extend(problems),
                single => flat.push(single),
            }
        }
        match flat.len() {
            0 => Ok(()),
            1 => Err(flat.pop().expect("one problem")),
            _ => Err(Rejection::Many { problems: flat }),
        }
    }

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
            | Rejection::UnknownHold { field, .. }
            | Rejection::UnknownReference { field, .. }
            | Rejection::UnknownVoucher { field, .. }
            | Rejection::RewardExpired { field, .. }
            | Rejection::InsufficientPoints { field, .. }
            | Rejection::ReplacementInsufficient { field, .. }
            | Rejection::ProgramExists { field, .. } => field,
            Rejection::NotDefined { field, .. }
            | Rejection::InsufficientCredits { field, .. }
            | Rejection::NoCoupon { field, .. }
            | Rejection::Conflict { field, .. }
            | Rejection::NameTaken { field, .. }
            | Rejection::ReferenceInUse { field, .. }
            | Rejection::AlreadyReversed { field, .. }
            | Rejection::NotReversible { field, .. } => field,
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
            | Rejection::UnknownHold { field, .. }
            | Rejection::UnknownReference { field, .. }
            | Rejection::UnknownVoucher { field, .. }
            | Rejection::RewardExpired { field, .. }
            | Rejection::InsufficientPoints { field, .. }
            | Rejection::ReplacementInsufficient { field, .. }
            | Rejection::ProgramExists { field, .. } => field,
            Rejection::NotDefined { field, .. }
            | Rejection::InsufficientCredits { field, .. }
            | Rejection::NoCoupon { field, .. }
            | Rejection::Conflict { field, .. }
            | Rejection::NameTaken { field, .. }
            | Rejection::ReferenceInUse { field, .. }
            | Rejection::AlreadyReversed { field, .. }
            | Rejection::NotReversible { field, .. } => field,
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

    /// The reason of SPEC §13 (`crate::reason`): what gRPC's `ErrorInfo` carries
    /// and what a bulk failure reports as its `code`, one vocabulary for both.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Required { .. }
            | Rejection::OutOfRange { .. }
            | Rejection::TooLong { .. }
            | Rejection::Invalid { .. }
            | Rejection::Many { .. } => reason::INVALID_FIELD,
            Rejection::UnknownProgram { .. } => reason::PROGRAM_NOT_FOUND,
            Rejection::UnknownMember { .. } => reason::MEMBER_NOT_FOUND,
            Rejection::UnknownFormula { .. } => reason::FORMULA_NOT_FOUND,
            Rejection::UnknownReward { .. } => reason::REWARD_NOT_FOUND,
            Rejection::UnknownTransaction { .. } | Rejection::UnknownReference { .. } => reason::TRANSACTION_NOT_FOUND,
            Rejection::UnknownVoucher { .. } => reason::VOUCHER_NOT_FOUND,
            Rejection::UnknownHold { .. } => reason::HOLD_NOT_FOUND,
            Rejection::RewardExpired { .. } => reason::REWARD_EXPIRED,
            Rejection::InsufficientPoints { .. } | Rejection::ReplacementInsufficient { .. } => {
                reason::INSUFFICIENT_POINTS
            }
            Rejection::ProgramExists { .. } => reason::PROGRAM_EXISTS,
            Rejection::NotDefined { what, .. } => what.reason(),
            Rejection::InsufficientCredits { .. } => reason::INSUFFICIENT_CREDITS,
            Rejection::NoCoupon { .. } => reason::NO_COUPON,
            Rejection::Conflict { reason, .. } => reason,
            Rejection::NameTaken { .. } => reason::NAME_TAKEN,
            Rejection::ReferenceInUse { .. } => reason::REFERENCE_IN_USE,
            Rejection::AlreadyReversed { .. } => reason::ALREADY_REVERSED,
            Rejection::NotReversible { .. } => reason::NOT_REVERSIBLE,
        }
    }

    /// What the rejection is about, for `ErrorInfo.metadata`: always the `field`,
    /// then the ids and amounts a caller needs to act (`member_id`, `available`
    /// and `requested` of an insufficient balance, ...).
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        let mut metadata = vec![("field", self.field().to_string())];
        let mut add = |key: &'static str, value: String| metadata.push((key, value));
        match self {
            Rejection::Required { .. } | Rejection::Invalid { .. } | Rejection::Conflict { .. } => {}
            Rejection::OutOfRange { got, min, max, .. } => {
                add("got", got.to_string());
                add("min", min.to_string());
                add("max", max.to_string());
            }
            Rejection::TooLong { got, max, .. } => {
                add("got_bytes", got.to_string());
                add("max_bytes", max.to_string());
            }
            Rejection::UnknownProgram { program, .. } | Rejection::ProgramExists { program, .. } => {
                add("program_id", program.clone());
            }
            Rejection::UnknownMember { program, member, .. } => {
                add("program_id", program.clone());
                add("member_id", member.clone());
            }
            Rejection::UnknownFormula { program, formula_id, .. } => {
                add("program_id", program.clone());
                add("formula_id", formula_id.clone());
            }
            Rejection::UnknownReward { program, reward_id, .. } => {
                add("program_id", program.clone());
                add("reward_id", reward_id.clone());
            }
            Rejection::UnknownTransaction { program, transaction_id, .. } => {
                add("program_id", program.clone());
                add("transaction_id", transaction_id.to_string());
            }
            Rejection::UnknownHold { program, hold_id, .. } => {
                add("program_id", program.clone());
                add("hold_id", hold_id.clone());
            }
            Rejection::UnknownReference { program, reference, .. } => {
                add("program_id", program.clone());
                add("reference", reference.clone());
            }
            Rejection::UnknownVoucher { brand_id, promotion_id, voucher_identifier, .. } => {
                add("brand_id", brand_id.to_string());
                add("promotion_id", promotion_id.to_string());
                add("voucher_identifier", voucher_identifier.clone());
            }
            Rejection::RewardExpired { reward_id, expired_at, .. } => {
                add("reward_id", reward_id.clone());
                add("expired_at", expired_at.to_string());
            }
            Rejection::InsufficientPoints { member, balance, wanted, .. } => {
                add("member_id", member.clone());
                add("available", balance.to_string());
                add("requested", wanted.to_string());
            }
            Rejection::ReplacementInsufficient { transaction_id, member, shortfall, .. } => {
                add("member_id", member.clone());
                add("transaction_id", transaction_id.to_string());
                add("shortfall", shortfall.to_string());
            }
            Rejection::NotDefined { what, id, program, .. } => {
                add("program_id", program.clone());
                add(what.key(), id.clone());
            }
            Rejection::InsufficientCredits { member, credit_id, balance, wanted, .. } => {
                add("member_id", member.clone());
                add("credit_id", credit_id.clone());
                add("available", balance.normalize().to_string());
                add("requested", wanted.normalize().to_string());
            }
            Rejection::NoCoupon { member, coupon_id, .. } => {
                add("member_id", member.clone());
                add("coupon_id", coupon_id.clone());
            }
            Rejection::NameTaken { name, .. } => add("name", name.clone()),
            Rejection::ReferenceInUse { reference, transaction_id, .. } => {
                add("reference", reference.clone());
                add("transaction_id", transaction_id.to_string());
            }
            Rejection::Many { problems } => add("violations", problems.len().to_string()),
            Rejection::AlreadyReversed { transaction_id, reversed_by, .. } => {
                add("transaction_id", transaction_id.to_string());
                add("reversed_by", reversed_by.to_string());
            }
            Rejection::NotReversible { transaction_id, left, .. } => {
                add("transaction_id", transaction_id.to_string());
                if let Some(left) = left {
                    add("left", left.clone());
                }
            }
        }
        metadata
    }

    /// The rule alone, without the field in front: a field violation's
    /// description, whose field is given beside it.
    pub fn rule(&self) -> String {
        let text = self.to_string();
        let prefix = format!("{}: ", self.field());
        match text.strip_prefix(&prefix) {
            Some(rule) => rule.to_owned(),
            None => text,
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
            | Rejection::UnknownVoucher { .. }
            | Rejection::UnknownHold { .. }
            | Rejection::NotDefined { .. } => RejectionClass::NotFound,
            Rejection::RewardExpired { .. }
            | Rejection::InsufficientPoints { .. }
            | Rejection::ReplacementInsufficient { .. }
            | Rejection::InsufficientCredits { .. }
            | Rejection::NoCoupon { .. }
            | Rejection::Conflict { .. }
            | Rejection::AlreadyReversed { .. }
            | Rejection::NotReversible { .. } => RejectionClass::FailedPrecondition,
            Rejection::ProgramExists { .. } | Rejection::NameTaken { .. } | Rejection::ReferenceInUse { .. } => {
                RejectionClass::AlreadyExists
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Definition, Rejection};
    use crate::field::FieldPath;

    fn check(rejection: Rejection, reason: &str, metadata: &[(&str, &str)]) {
        assert_eq!(rejection.reason(), reason, "{rejection}");
        let got = rejection.metadata();
        for (key, value) in metadata {
            assert!(got.iter().any(|(k, v)| k == key && v == value), "{key}={value} in {got:?}");
        }
    }

    #[test]
    fn each_rejection_names_its_reason_and_what_it_is_about() {
        let field = || FieldPath::new("points");
        let short = Rejection::InsufficientPoints { field: field(), member: "m1".into(), balance: 5, wanted: 10 };
        check(
            short,
            "INSUFFICIENT_POINTS",
            &[("field", "points"), ("member_id", "m1"), ("available", "5"), ("requested", "10")],
        );
        let undefined = |what| Rejection::NotDefined { field: field(), what, id: "x".into(), program: "p".into() };
        check(undefined(Definition::CreditType), "CREDIT_NOT_FOUND", &[("credit_id", "x"), ("program_id", "p")]);
        check(undefined(Definition::MemberCard), "CARD_NOT_FOUND", &[("card_id", "x")]);
        check(undefined(Definition::CardLevel), "CARD_NOT_FOUND", &[("level", "x")]);
        let taken = Rejection::NameTaken { field: FieldPath::new("name"), name: "Gold".into(), rule: "taken".into() };
        check(taken, "NAME_TAKEN", &[("name", "Gold")]);
        let many = Rejection::every(vec![
            Rejection::Required { field: FieldPath::new("remark") },
            Rejection::TooLong { field: FieldPath::new("member_id"), got: 200, max: 128 },
        ]);
        check(many.expect_err("two problems"), "INVALID_FIELD", &[("field", "remark"), ("violations", "2")]);
        let one = Rejection::every(vec![Rejection::Required { field: FieldPath::new("remark") }]);
        assert_eq!(one, Err(Rejection::Required { field: FieldPath::new("remark") }), "one problem is itself");
        assert_eq!(Rejection::every(Vec::new()), Ok(()));
    }

    #[test]
    fn a_rule_is_the_message_without_its_field() {
        let rejection = Rejection::Required { field: FieldPath::new("items[2].remark") };
        assert_eq!(rejection.rule(), "is required and may not be blank");
    }
}
