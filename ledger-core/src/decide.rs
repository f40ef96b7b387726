//! The one entry point that turns a command into events: `decide` checks, `apply`
//! (in `state`) folds. Pure: the same state, command and context always give the
//! same decision.

use crate::bulk;
use crate::command::{Command, Context, Decision, Outcome};
use crate::coupons;
use crate::credits;
use crate::expiry;
use crate::overlay::Overlay;
use crate::points;
use crate::programs;
use crate::rejection::Rejection;
use crate::state::State;
use crate::statements;
use crate::tiers;

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
        Command::DefineCredit(define) => {
            Ok(Decision { events: credits::define(state, define)?, outcome: Outcome::CreditDefined })
        }
        Command::AddCredits(change) | Command::UseCredits(change) => {
            programs::existing(state, &change.program)?;
            let mut view = Overlay::new(state, context);
            let receipt = credits::change(&mut view, change, matches!(command, Command::AddCredits(_)))?;
            Ok(view.finish(Outcome::Credits(receipt)))
        }
        Command::GrantCoupons(grant) => {
            programs::existing(state, &grant.program)?;
            let mut view = Overlay::new(state, context);
            let (transaction_id, count) = coupons::grant(&mut view, grant)?;
            Ok(view.finish(Outcome::CouponsGranted { transaction_id, count }))
        }
        Command::UseCoupon(spend) => {
            programs::existing(state, &spend.program)?;
            let mut view = Overlay::new(state, context);
            let (transaction_id, remaining, used_at) = coupons::use_one(&mut view, spend)?;
            Ok(view.finish(Outcome::CouponUsed { transaction_id, remaining, used_at }))
        }
        Command::DefineShop(define) => {
            Ok(Decision { events: programs::define_shop(state, define)?, outcome: Outcome::ShopDefined })
        }
        Command::ImportVoucherStatements(import) => {
            let (events, created, updated) = statements::import_vouchers(state, import)?;
            Ok(Decision { events, outcome: Outcome::VouchersImported { created, updated } })
        }
        Command::ImportPointStatements(import) => {
            let mut view = Overlay::new(state, context);
            let applied = statements::import_points(&mut view, import)?;
            Ok(view.finish(Outcome::PointStatementsImported { applied }))
        }
        Command::CreateMemberCard(create) => {
            let (events, card) = tiers::create(state, create, context.next_sequence.to_string())?;
            Ok(Decision { events, outcome: Outcome::MemberCard(card) })
        }
        Command::UpdateMemberCard(update) => {
            let (events, card) = tiers::update(state, update)?;
            Ok(Decision { events, outcome: Outcome::MemberCard(card) })
        }
        Command::DeleteMemberCard(delete) => {
            Ok(Decision { events: tiers::delete(state, delete)?, outcome: Outcome::MemberCardDeleted })
        }
        Command::SetMemberLevels(set) => {
            let events = tiers::set_levels(state, set)?;
            let updated = u32::try_from(events.len()).expect("levels are limited");
            Ok(Decision { events, outcome: Outcome::LevelsSet { updated } })
        }
    }
}
