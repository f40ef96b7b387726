//! The one entry point that turns a command into events: `decide` checks, `apply`
//! (in `state`) folds. Pure: the same state, command and context always give the
//! same decision.

use crate::bulk;
use crate::command::{Command, Context, Decision, Outcome};
use crate::coupons;
use crate::credits;
use crate::expiry;
use crate::holds;
use crate::overlay::Overlay;
use crate::points;
use crate::programs;
use crate::rejection::Rejection;
use crate::reversals;
use crate::state::State;
use crate::statements;
use crate::tiers;

/// Every problem of a command's own fields, whatever the state: the first checks
/// `decide` makes. The edge adds them to the problems it found reading the
/// request (a time out of range, a decimal it could not parse), so that a
/// rejected request names every problem at once, not only the first (SPEC §13).
pub fn field_problems(command: &Command) -> Vec<Rejection> {
    match command {
        Command::CreateProgram(create) => programs::create_fields(create).into_vec(),
        Command::DefineFormula(define) => programs::formula_fields(define).into_vec(),
        Command::DefineReward(define) => programs::reward_fields(define).into_vec(),
        Command::DefineShop(define) => programs::shop_fields(define).into_vec(),
        Command::AddPoints(add) => points::add_fields(add).into_vec(),
        Command::UsePoints(spend) => points::spend_fields(spend).into_vec(),
        Command::DefineCredit(define) => credits::define_fields(define).into_vec(),
        Command::AddCredits(change) | Command::UseCredits(change) => credits::change_fields(change).into_vec(),
        Command::GrantCoupons(grant) => coupons::grant_fields(grant).into_vec(),
        Command::UseCoupon(spend) => coupons::use_fields(spend).into_vec(),
        Command::ImportVoucherStatements(import) => statements::voucher_fields(import),
        Command::ImportPointStatements(import) => statements::point_fields(import),
        Command::CreateMemberCard(create) => tiers::create_fields(create).into_vec(),
        Command::UpdateMemberCard(update) => tiers::update_fields(update).into_vec(),
        Command::SetMemberLevels(set) => tiers::levels_fields(set).into_vec(),
        Command::HoldPoints(hold) => holds::hold_points_fields(hold).into_vec(),
        Command::HoldCredits(hold) => holds::hold_credits_fields(hold).into_vec(),
        Command::CaptureHold(capture) => holds::capture_fields(capture).into_vec(),
        Command::VoidHold(void) => holds::void_fields(void).into_vec(),
        Command::ReverseTransaction(reverse) => reversals::fields(reverse).into_vec(),
        // A bulk's items are decided one by one, each stopping the bulk with
        // `fail_at`; a deletion and the sweep have no fields of their own.
        Command::BulkAddPoints(_)
        | Command::BulkUsePoints(_)
        | Command::DeleteMemberCard(_)
        | Command::ExpirePoints(_) => Vec::new(),
    }
}

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
            let receipt = points::spend_single(&mut view, spend)?;
            Ok(view.finish(Outcome::Points(receipt)))
        }
        Command::BulkAddPoints(bulk) => bulk::add(state, bulk, context),
        Command::BulkUsePoints(bulk) => bulk::spend(state, bulk, context),
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
        Command::HoldPoints(hold) => {
            programs::existing(state, &hold.program)?;
            let mut view = Overlay::new(state, context);
            let hold = holds::hold_points(&mut view, hold)?;
            Ok(view.finish(Outcome::Hold(hold)))
        }
        Command::HoldCredits(hold) => {
            programs::existing(state, &hold.program)?;
            let mut view = Overlay::new(state, context);
            let hold = holds::hold_credits(&mut view, hold)?;
            Ok(view.finish(Outcome::Hold(hold)))
        }
        Command::CaptureHold(capture) => {
            programs::existing(state, &capture.program)?;
            let mut view = Overlay::new(state, context);
            let hold = holds::capture(&mut view, capture)?;
            Ok(view.finish(Outcome::Hold(hold)))
        }
        Command::VoidHold(void) => {
            programs::existing(state, &void.program)?;
            let mut view = Overlay::new(state, context);
            let hold = holds::void(&mut view, void)?;
            Ok(view.finish(Outcome::Hold(hold)))
        }
        Command::ReverseTransaction(reverse) => {
            programs::existing(state, &reverse.program)?;
            let mut view = Overlay::new(state, context);
            let reversal = reversals::reverse(&mut view, reverse)?;
            Ok(view.finish(Outcome::Reversal(reversal)))
        }
    }
}
