//! Programs and what an operator defines in them: formulas and rewards.

use crate::command::{CreateProgram, DefineFormula, DefineReward, DefineShop, Outcome};
use crate::event::{Event, EventBody};
use crate::field::FieldPath;
use crate::limits::POINTS_PER_ADD_MAX;
use crate::rejection::Rejection;
use crate::state::{Program, State};
use crate::time::Timestamp;
use crate::validate::{self, Problems};

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
