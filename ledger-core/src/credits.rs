//! Stored-value credits (SPEC §4, Loga credits): definitions, add and use.
//!
//! Amounts are decimals with at most `CREDIT_SCALE` places, so a balance is kept
//! as a whole number of 10^-`CREDIT_SCALE` units: exact, cheap to add, and never a
//! float. Events carry the decimal as the client wrote it (normalized), so that the
//! log reads as money.

use crate::command::{CreditsChangeCommand, CreditsReceipt, DefineCredit};
use crate::event::{CreditsChange, Event, EventBody};
use crate::field::FieldPath;
use crate::limits::{CREDIT_BALANCE_UNITS_MAX, CREDIT_SCALE, CREDITS_PER_CHANGE_MAX};
use crate::overlay::Overlay;
use crate::programs::{definition, existing};
use crate::references::{self, ReferenceKind};
use crate::rejection::{Definition, Rejection};
use crate::state::State;
use crate::validate::{self, Problems};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The units of a validated amount (at most `CREDIT_SCALE` places, positive).
pub fn units(amount: Decimal) -> u64 {
    let scaled = amount * Decimal::from(10u64.pow(CREDIT_SCALE));
    assert!(scaled.fract().is_zero(), "credit amounts have at most {CREDIT_SCALE} places");
    scaled.to_u64().expect("credit amounts fit u64 units")
}

/// A balance in units, as the decimal callers see, without trailing zeros.
pub fn decimal(units: u64) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(units), CREDIT_SCALE).normalize()
}

pub fn define(state: &State, command: &DefineCredit) -> Result<Vec<Event>, Rejection> {
    existing(state, &command.program)?;
    define_fields(command).finish()?;
    let body = EventBody::CreditDefined {
        credit_id: command.credit_id.clone(),
        name: command.name.clone(),
        unit: command.unit.clone(),
    };
    Ok(vec![definition(&command.program, body)])
}

/// Decides an add (`adding`) or a use of credits on the overlay and applies it.
pub fn change(
    view: &mut Overlay<'_>,
    command: &CreditsChangeCommand,
    adding: bool,
) -> Result<CreditsReceipt, Rejection> {
    let amounts = change_key_fields(command).then_after_reference(change_amount_fields(command))?;
    let kind = if adding { ReferenceKind::CreditsAdd } else { ReferenceKind::CreditsUse };
    if let Some(entry) = references::earlier(view, &command.program, &command.reference, kind)? {
        return Ok(entry.credits_receipt());
    }
    amounts.finish()?;
    let amount = amount("amount", command.amount)?;
    let defined =
        view.program(&command.program).is_some_and(|program| program.credits.contains_key(&command.credit_id));
    if !defined {
        return Err(Rejection::NotDefined {
            field: FieldPath::new("credit_id"),
            what: Definition::CreditType,
            id: command.credit_id.clone(),
            program: command.program.clone(),
        });
    }
    if !adding {
        // As for points: what a hold past its time gives back may be spent.
        crate::holds::release_lapsed(view, &command.program, &command.member);
    }
    let balance = view
        .member(&command.program, &command.member)
        .and_then(|member| member.credits.get(&command.credit_id).copied())
        .unwrap_or(0);
    let wanted = units(amount);
    if adding && balance.checked_add(wanted).is_none_or(|after| after > CREDIT_BALANCE_UNITS_MAX) {
        return Err(Rejection::Invalid {
            field: FieldPath::new("amount"),
            rule: format!("would take the balance {} beyond what a wallet holds", decimal(balance)),
        });
    }
    if !adding && balance < wanted {
        return Err(Rejection::InsufficientCredits {
            field: FieldPath::new("amount"),
            member: command.member.clone(),
            credit_id: command.credit_id.clone(),
            balance: decimal(balance),
            wanted: amount,
        });
    }
    let change = CreditsChange {
        credit_id: command.credit_id.clone(),
        amount,
        remark: command.remark.clone(),
        reference: command.reference.clone(),
    };
    let body = if adding { EventBody::CreditsAdded(change) } else { EventBody::CreditsUsed(change) };
    let event = Event { program: command.program.clone(), member: command.member.clone(), occurred_at: None, body };
    let transaction_id = view.apply(event);
    let after = view
        .member(&command.program, &command.member)
        .map_or(0, |member| member.available_credits(&command.credit_id, view.at()));
    Ok(CreditsReceipt { transaction_id, amount, balance: decimal(after), duplicate: false })
}

/// Every problem of a credit type's own fields.
pub fn define_fields(command: &DefineCredit) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("credit_id", &command.credit_id));
    problems.check(validate::name("name", &command.name));
    problems.check(validate::name("unit", &command.unit));
    problems
}

/// Every problem of an add's or a use's own fields, whatever the state.
pub fn change_fields(command: &CreditsChangeCommand) -> Problems {
    let mut problems = change_key_fields(command);
    problems.append(change_amount_fields(command));
    problems
}

fn change_key_fields(command: &CreditsChangeCommand) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("member_id", &command.member));
    problems.check(validate::id("credit_id", &command.credit_id));
    problems.check(validate::required_remark("remark", &command.remark));
    problems.check(validate::optional_id("reference", &command.reference));
    problems
}

fn change_amount_fields(command: &CreditsChangeCommand) -> Problems {
    let mut problems = Problems::new();
    problems.check(amount("amount", command.amount));
    problems
}

/// An amount of credits: more than 0, at most `CREDITS_PER_CHANGE_MAX`, at most
/// `CREDIT_SCALE` places; normalized.
pub fn amount(field: &str, value: Decimal) -> Result<Decimal, Rejection> {
    let normalized = validate::positive_decimal(field, value)?;
    if normalized > Decimal::from(CREDITS_PER_CHANGE_MAX) {
        return Err(Rejection::Invalid {
            field: FieldPath::new(field),
            rule: format!("may be at most {CREDITS_PER_CHANGE_MAX}, got {value}"),
        });
    }
    Ok(normalized)
}
