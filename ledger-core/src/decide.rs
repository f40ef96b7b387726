//! The one entry point that turns a command into events: `decide` checks, `apply`
//! (in `state`) folds. Pure: the same state, command and context always give the
//! same decision.

use crate::bulk;
use crate::command::{Command, Context, Decision, Outcome};
use crate::expiry;
use crate::overlay::Overlay;
use crate::points;
use crate::programs;
use crate::rejection::Rejection;
use crate::state::State;

pub fn decide(state: &State, command: &Command, context: Context) -> Result<Decision, Rejection> {
    match command {
        Command::CreateProgram(create) => {
            let (events, outcome) = programs::create(state, create, context.at)?;
            Ok(Decision { events, outcome })
        }
        Command::DefineFormula(define) => {
            let events = programs::define_formula(state, define)?;
            Ok(Decision { events, outcome: Outcome::FormulaDefined })
        }
        Command::DefineReward(define) => {
            let events = programs::define_reward(state, define)?;
            Ok(Decision { events, outcome: Outcome::RewardDefined })
        }
        Command::AddPoints(add) => {
            programs::existing(state, &add.program)?;
            let mut view = Overlay::new(state, context);
            let receipt = points::add(&mut view, add)?;
            Ok(view.finish(Outcome::Points(receipt)))
        }
        Command::UsePoints(spend) => {
            programs::existing(state, &spend.program)?;
            let mut view = Overlay::new(state, context);
            let receipt = points::spend(&mut view, spend)?;
            Ok(view.finish(Outcome::Points(receipt)))
        }
        Command::BulkAddPoints(bulk) => bulk::add(state, &bulk.program, &bulk.items, bulk.atomic, context),
        Command::BulkUsePoints(bulk) => bulk::spend(state, &bulk.program, &bulk.items, bulk.atomic, context),
        Command::ExpirePoints(sweep) => Ok(expiry::sweep(state, *sweep, context)),
    }
}
