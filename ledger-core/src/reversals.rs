//! Reversals (SPEC §15): undo one earlier transaction by its transaction id,
//! exactly and once.
//!
//! - Reversible: a points add or use (a bulk's item included: each has its own
//!   transaction id), a credits add or use, a coupon grant or use. Anything else
//!   (a reversal, an expiry, a definition, a statement) is NOT_REVERSIBLE.
//! - Once: a member keeps each of its reversed transactions with the reversal
//!   (`Member::reversed`, also set by a `replace_duplicate` replacement), and a
//!   second reversal is ALREADY_REVERSED.
//! - An add's reversal takes its points back from the lot the add made and lowers
//!   the qualifying amount by them; if some were spent (or the lot expired) it is
//!   NOT_REVERSIBLE with what is left, since taking points from other lots would
//!   undo a different transaction. A use's reversal gives the points back to the
//!   lots they came from, with their expiry (a lot expired meanwhile stays
//!   expired), and leaves the qualifying amount alone. The fold of both is the
//!   one a replacement's reversal uses (`Member::take_back`, `Member::give`).
//! - A hold of the member past its time counts as given back, as for every read:
//!   its expiry is recorded before the reversal (`holds::release_lapsed`).
//! - The transaction is the event its id names in the log: the store reads it
//!   (`ReverseTransaction::target`) and makes its member resident before `decide`.
//! - Idempotent by the reversal's own reference (`ReferenceKind::Reversal`).

use crate::command::{Reversal, ReverseTransaction};
use crate::credits;
use crate::event::{Event, EventBody, LotTake, ReversedChange, TransactionReversal};
use crate::field::FieldPath;
use crate::holds;
use crate::limits::CREDIT_BALANCE_UNITS_MAX;
use crate::lots::{is_live, lot_for_add};
use crate::overlay::Overlay;
use crate::points::room_for;
use crate::reason;
use crate::references::{self, ReferenceKind};
use crate::rejection::Rejection;
use crate::validate::{self, Problems};

/// Decides one reversal on the overlay and applies it there.
pub fn reverse(view: &mut Overlay<'_>, command: &ReverseTransaction) -> Result<Reversal, Rejection> {
    fields(command).finish()?;
    if let Some(entry) = references::earlier(view, &command.program, &command.reference, ReferenceKind::Reversal)? {
        return Ok(entry.reversal());
    }
    // A transaction of another program is as unknown as one that never was: its
    // kind or member must not leak across programs.
    let target = command.target.as_ref().filter(|event| event.program == command.program).ok_or_else(|| {
        Rejection::UnknownTransaction {
            field: FieldPath::new("transaction_id"),
            program: command.program.clone(),
            transaction_id: command.transaction_id,
        }
    })?;
    // A hold past its time has given its points (or credits) back for every read
    // (SPEC §14): what the reversal finds left must count them too, so their
    // expiry is recorded first, as a single use does.
    holds::release_lapsed(view, &command.program, &target.member);
    let change = change_of(view, command.transaction_id, target)?;
    let kind = change.activity_kind();
    let amount = change.amount();
    let body = EventBody::TransactionReversed(TransactionReversal {
        transaction_id: command.transaction_id,
        remark: command.remark.clone(),
        reference: command.reference.clone(),
        change: change.clone(),
    });
    let event = Event {
        program: command.program.clone(),
        member: target.member.clone(),
        occurred_at: None,
        body: body.clone(),
    };
    let transaction_id = view.apply(event);
    let member = view.member(&command.program, &target.member).expect("the reversal names its member");
    let balance_after = references::reversed_balance(&change, member.balance_after(&body, view.at()));
    Ok(Reversal {
        transaction_id,
        reversed_transaction_id: command.transaction_id,
        kind,
        member: target.member.clone(),
        amount,
        balance_after,
        duplicate: false,
    })
}

/// Every problem of a reversal's own fields, whatever the state.
pub fn fields(command: &ReverseTransaction) -> Problems {
    let mut problems = Problems::new();
    if command.transaction_id == 0 {
        problems.push(Rejection::Required { field: FieldPath::new("transaction_id") });
    }
    problems.check(validate::remark("remark", &command.remark));
    problems.check(validate::optional_id("reference", &command.reference));
    problems
}

/// What reversing `target` (transaction `transaction_id`) undoes, or why it cannot.
fn change_of(view: &Overlay<'_>, transaction_id: u64, target: &Event) -> Result<ReversedChange, Rejection> {
    let not_reversible = |rule: String, left: Option<String>| Rejection::NotReversible {
        field: FieldPath::new("transaction_id"),
        transaction_id,
        rule,
        left,
    };
    if !reversible(&target.body) {
        let rule = format!(
            "transaction {transaction_id} is a {}, which cannot be reversed: only points adds and uses, credits \
             adds and uses, coupon grants and coupon uses can",
            target.body.name()
        );
        return Err(not_reversible(rule, None));
    }
    let member = view.member(&target.program, &target.member).expect("the store makes the target's member resident");
    if let Some(reversed_by) = member.reversed.get(&transaction_id) {
        return Err(Rejection::AlreadyReversed {
            field: FieldPath::new("transaction_id"),
            transaction_id,
            reversed_by: *reversed_by,
        });
    }
    let at = view.at();
    let change = match &target.body {
        EventBody::PointsAdded(added) => {
            let lot = lot_for_add(transaction_id, added.expires_at);
            let left = member.lots.get(lot).filter(|found| is_live(found, at)).map_or(0, |found| found.remaining);
            if left < added.points {
                let rule = format!(
                    "transaction {transaction_id} added {} points, but only {left} of them are left in its lot \
                     (the rest were spent or expired), so it cannot be undone",
                    added.points
                );
                return Err(not_reversible(rule, Some(left.to_string())));
            }
            let lots = vec![LotTake { lot, points: added.points, expires_at: added.expires_at }];
            ReversedChange::PointsAdd { points: added.points, lots, earned: added.points }
        }
        EventBody::PointsUsed(used) => {
            room_for(view, &target.program, &target.member, used.points, "transaction_id")?;
            ReversedChange::PointsUse { points: used.points, lots: used.taken.clone() }
        }
        EventBody::CreditsAdded(change) => {
            let balance = member.credits.get(&change.credit_id).copied().unwrap_or(0);
            if balance < credits::units(change.amount) {
                let rule = format!(
                    "transaction {transaction_id} added {} credits {:?}, but the balance is {}, so it cannot be undone",
                    change.amount.normalize(),
                    change.credit_id,
                    credits::decimal(balance)
                );
                return Err(not_reversible(rule, Some(credits::decimal(balance).to_string())));
            }
            ReversedChange::CreditsAdd { credit_id: change.credit_id.clone(), amount: change.amount }
        }
        EventBody::CreditsUsed(change) => {
            let balance = member.credits.get(&change.credit_id).copied().unwrap_or(0);
            let after = balance.checked_add(credits::units(change.amount));
            if after.is_none_or(|after| after > CREDIT_BALANCE_UNITS_MAX) {
                return Err(beyond_limit(format!(
                    "giving back {} credits would take the balance {} beyond what a wallet holds",
                    change.amount.normalize(),
                    credits::decimal(balance)
                )));
            }
            ReversedChange::CreditsUse { credit_id: change.credit_id.clone(), amount: change.amount }
        }
        EventBody::CouponsGranted { coupon_id, count, .. } => {
            let held = member.coupons.get(coupon_id).map_or(0, |coupons| coupons.count);
            if held < *count {
                let rule = format!(
                    "transaction {transaction_id} granted {count} coupons {coupon_id:?}, but only {held} are left, \
                     so it cannot be undone"
                );
                return Err(not_reversible(rule, Some(held.to_string())));
            }
            ReversedChange::CouponsGrant { coupon_id: coupon_id.clone(), count: *count }
        }
        EventBody::CouponUsed { coupon_id, .. } => {
            let held = member.coupons.get(coupon_id).map_or(0, |coupons| coupons.count);
            if held.checked_add(1).is_none() {
                return Err(beyond_limit(format!("giving back a coupon would take the count beyond {}", u32::MAX)));
            }
            ReversedChange::CouponUse { coupon_id: coupon_id.clone() }
        }
        _ => unreachable!("checked reversible above"),
    };
    Ok(change)
}

/// The kinds SPEC §15 lets a reversal undo.
fn reversible(body: &EventBody) -> bool {
    match body {
        EventBody::PointsAdded(_)
        | EventBody::PointsUsed(_)
        | EventBody::CreditsAdded(_)
        | EventBody::CreditsUsed(_)
        | EventBody::CouponsGranted { .. }
        | EventBody::CouponUsed { .. } => true,
        EventBody::ProgramCreated { .. }
        | EventBody::FormulaDefined { .. }
        | EventBody::RewardDefined { .. }
        | EventBody::PointsAddReversed(_)
        | EventBody::PointsUseReversed(_)
        | EventBody::PointsExpired { .. }
        | EventBody::CreditDefined { .. }
        | EventBody::ShopDefined { .. }
        | EventBody::VoucherRecorded { .. }
        | EventBody::PointStatementApplied(_)
        | EventBody::MemberCardCreated(_)
        | EventBody::MemberCardUpdated(_)
        | EventBody::MemberCardDeleted { .. }
        | EventBody::MemberLevelSet { .. }
        // A hold step settles through the hold itself (capture, void, expiry).
        | EventBody::PointsHeld(_)
        | EventBody::CreditsHeld(_)
        | EventBody::HoldCaptured(_)
        | EventBody::HoldVoided(_)
        | EventBody::HoldExpired(_)
        | EventBody::TransactionReversed(_) => false,
    }
}

fn beyond_limit(rule: String) -> Rejection {
    Rejection::Conflict { field: FieldPath::new("transaction_id"), reason: reason::BALANCE_LIMIT, rule }
}
