//! Programs and what an operator defines in them: formulas, rewards, credit types
//! and shops (cards are in `tiers`); `Program` holds them beside the program's
//! members and references.

use crate::command::{CreateProgram, DefineFormula, DefineReward, DefineShop, Outcome};
use crate::event::{Event, EventBody, MemberCardFields, Stamp};
use crate::field::FieldPath;
use crate::limits::POINTS_PER_ADD_MAX;
use crate::members::Member;
use crate::references::ReferenceEntry;
use crate::rejection::Rejection;
use crate::state::State;
use crate::time::Timestamp;
use crate::validate::{self, Problems};
use crate::vouchers::VoucherBook;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// The client's idempotency keys, each naming the transaction it applied
    /// (`references`); resident ones only, like `members`.
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

impl Program {
    pub(crate) fn new(name: String, created_at: Timestamp) -> Program {
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

    /// Applies the program-level part of an event: its definitions, member cards
    /// and voucher statements. A member's part is `Member::fold`, a reference's
    /// `references::apply`.
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
            | EventBody::MemberLevelSet { .. }
            | EventBody::PointsHeld(_)
            | EventBody::CreditsHeld(_)
            | EventBody::HoldCaptured(_)
            | EventBody::HoldVoided(_)
            | EventBody::HoldExpired(_)
            | EventBody::TransactionReversed(_) => {}
        }
    }
}

pub fn create(state: &State, command: &CreateProgram, at: Timestamp) -> Result<(Vec<Event>, Outcome), Rejection> {
    create_fields(command).finish()?;
    if state.program(&command.program).is_some() {
        return Err(Rejection::ProgramExists { field: FieldPath::new("program_id"), program: command.program.clone() });
    }
    let event = definition(&command.program, EventBody::ProgramCreated { name: command.name.clone() });
    let outcome =
        Outcome::ProgramCreated { program: command.program.clone(), name: command.name.clone(), created_at: at };
    Ok((vec![event], outcome))
}

pub fn define_formula(state: &State, command: &DefineFormula) -> Result<Vec<Event>, Rejection> {
    existing(state, &command.program)?;
    formula_fields(command).finish()?;
    let multiplier = command.multiplier.normalize();
    let body =
        EventBody::FormulaDefined { formula_id: command.formula_id.clone(), name: command.name.clone(), multiplier };
    Ok(vec![definition(&command.program, body)])
}

pub fn define_reward(state: &State, command: &DefineReward) -> Result<Vec<Event>, Rejection> {
    existing(state, &command.program)?;
    reward_fields(command).finish()?;
    let points = validate::amount("points", command.points, 1, POINTS_PER_ADD_MAX)?;
    let body = EventBody::RewardDefined {
        reward_id: command.reward_id.clone(),
        name: command.name.clone(),
        points,
        expires_at: command.expires_at,
    };
    Ok(vec![definition(&command.program, body)])
}

pub fn define_shop(state: &State, command: &DefineShop) -> Result<Vec<Event>, Rejection> {
    existing(state, &command.program)?;
    shop_fields(command).finish()?;
    let body = EventBody::ShopDefined { shop_id: command.shop_id, name: command.name.clone() };
    Ok(vec![definition(&command.program, body)])
}

pub fn create_fields(command: &CreateProgram) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("program_id", &command.program));
    problems.check(validate::name("name", &command.name));
    problems
}

pub fn formula_fields(command: &DefineFormula) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("formula_id", &command.formula_id));
    problems.check(validate::name("name", &command.name));
    problems.check(validate::positive_decimal("multiplier", command.multiplier));
    problems
}

pub fn reward_fields(command: &DefineReward) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("reward_id", &command.reward_id));
    problems.check(validate::name("name", &command.name));
    problems.check(validate::amount("points", command.points, 1, POINTS_PER_ADD_MAX));
    problems
}

pub fn shop_fields(command: &DefineShop) -> Problems {
    let mut problems = Problems::new();
    if command.shop_id <= 0 {
        problems.push(Rejection::OutOfRange {
            field: FieldPath::new("shop_id"),
            got: i128::from(command.shop_id),
            min: 1,
            max: i128::from(i64::MAX),
        });
    }
    problems.check(validate::name("name", &command.name));
    problems
}

/// The program a command names, which must exist (SPEC §2).
pub fn existing<'s>(state: &'s State, program: &str) -> Result<&'s Program, Rejection> {
    validate::id("program_id", program)?;
    state
        .program(program)
        .ok_or_else(|| Rejection::UnknownProgram { field: FieldPath::new("program_id"), program: program.to_owned() })
}

pub fn definition(program: &str, body: EventBody) -> Event {
    Event { program: program.to_owned(), member: String::new(), occurred_at: None, body }
}
