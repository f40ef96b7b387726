//! Points (SPEC §3): add, use, references and their replacement. Every decision
//! runs on an `Overlay`, so that a replacement's reversal and new transaction, or a
//! bulk's items, each see what the ones before them left.

use crate::command::{AddPoints, PointsReceipt, UsePoints};
use crate::event::{Event, EventBody, PointsAdded, PointsReversal, PointsUsed};
use crate::field::FieldPath;
use crate::limits::{POINTS_BALANCE_MAX, POINTS_PER_ADD_MAX, USE_POINTS_MAX};
use crate::overlay::Overlay;
use crate::references::{Earlier, ReferenceEntry, ReferenceKind, ReferenceRecord, points_earlier};
use crate::rejection::Rejection;
use crate::validate::{self, Problems};
use rust_decimal::prelude::ToPrimitive;

/// Decides one add on the overlay and applies it there.
pub fn add(view: &mut Overlay<'_>, command: &AddPoints) -> Result<PointsReceipt, Rejection> {
    let amounts = add_key_fields(command).then_after_reference(add_amount_fields(command))?;
    // A repeat is answered before any check of the state or the clock: a retry after
    // the expiry it names has passed, or a formula changed, still gets the original.
    let kind = ReferenceKind::PointsAdd;
    let previous = match points_earlier(view, &command.program, &command.reference, kind, command.replace_duplicate)? {
        Earlier::None => None,
        Earlier::Duplicate(receipt) => return Ok(receipt),
        Earlier::Replace(entry) => Some(entry),
    };
    amounts.finish()?;
    let points = add_amount(view, command)?;
    room_for(view, &command.program, &command.member, points, "points")?;
    if let Some(expires_at) = command.expires_at
        && expires_at <= view.at()
    {
        return Err(Rejection::Invalid {
            field: FieldPath::new("expires_at"),
            rule: format!("must be later than now ({}), got {expires_at}", view.at()),
        });
    }
    let body = EventBody::PointsAdded(PointsAdded {
        points,
        remark: command.remark.clone(),
        private_remark: command.private_remark.clone(),
        reference: command.reference.clone(),
        branch_code: command.branch_code.clone(),
        expires_at: command.expires_at,
        cost: command.cost.filter(|_| !command.formula_id.is_empty()),
        formula_id: command.formula_id.clone(),
    });
    let event = Event {
        program: command.program.clone(),
        member: command.member.clone(),
        occurred_at: command.occurred_at,
        body,
    };
    // An add can only raise the balance, so it goes first: the reversal of an
    // earlier add then checks the net change, as SPEC §3 asks.
    let transaction_id = view.apply(event);
    if let Some(entry) = &previous {
        reverse(view, &command.program, &command.reference, entry)?;
    }
    Ok(PointsReceipt {
        transaction_id,
        points,
        balance: view.live_points(&command.program, &command.member),
        duplicate: false,
        replaced: previous.is_some(),
    })
}

/// Decides one use on the overlay and applies it there: a bulk's item. The bulk
/// recorded the expiry of its members' holds past their time before its first
/// item (`bulk::spend`), so that its applied items keep consecutive transaction
/// ids (SPEC §3).
pub fn spend(view: &mut Overlay<'_>, command: &UsePoints) -> Result<PointsReceipt, Rejection> {
    spend_with(view, command, false)
}

/// A single use (UsePoints): it may also spend what the member's holds past
/// their time give back, whose expiry it records first (`holds::release_lapsed`).
pub fn spend_single(view: &mut Overlay<'_>, command: &UsePoints) -> Result<PointsReceipt, Rejection> {
    spend_with(view, command, true)
}

fn spend_with(view: &mut Overlay<'_>, command: &UsePoints, release_lapsed: bool) -> Result<PointsReceipt, Rejection> {
    let amounts = spend_key_fields(command).then_after_reference(spend_amount_fields(command))?;
    // A repeat is answered before the reward is looked at: a retry after the reward
    // expired still gets the original.
    let kind = ReferenceKind::PointsUse;
    let previous = match points_earlier(view, &command.program, &command.reference, kind, command.replace_duplicate)? {
        Earlier::None => None,
        Earlier::Duplicate(receipt) => return Ok(receipt),
        Earlier::Replace(entry) => Some(entry),
    };
    amounts.finish()?;
    let points = use_amount(view, command)?;
    // Giving an earlier use back can only raise the balance, so it goes first.
    if let Some(entry) = previous.as_ref().filter(|entry| entry.kind() == ReferenceKind::PointsUse) {
        reverse(view, &command.program, &command.reference, entry)?;
    }
    // A hold past its time counts as given back for every read; a single use may
    // spend it, so its expiry is recorded first.
    if release_lapsed {
        crate::holds::release_lapsed(view, &command.program, &command.member);
    }
    let member = view.member(&command.program, &command.member);
    // What the lots can give: the live points, but for what a hold past its time
    // gives back before its expiry is recorded.
    let live = member.map_or(0, |member| member.points - member.lots.expired_total(view.at()));
    let taken = member.map(|member| member.lots.plan_take(points, view.at(), None));
    let Some(Ok(taken)) = taken else {
        return Err(Rejection::InsufficientPoints {
            field: FieldPath::new("points"),
            member: command.member.clone(),
            balance: live,
            wanted: points,
        });
    };
    let body = EventBody::PointsUsed(PointsUsed {
        points,
        remark: command.remark.clone(),
        private_remark: command.private_remark.clone(),
        reference: command.reference.clone(),
        branch_code: command.branch_code.clone(),
        reward_id: command.reward_id.clone(),
        taken,
    });
    let event = Event {
        program: command.program.clone(),
        member: command.member.clone(),
        occurred_at: command.occurred_at,
        body,
    };
    let transaction_id = view.apply(event);
    if let Some(entry) = previous.as_ref().filter(|entry| entry.kind() == ReferenceKind::PointsAdd) {
        reverse(view, &command.program, &command.reference, entry)?;
    }
    Ok(PointsReceipt {
        transaction_id,
        points,
        balance: view.live_points(&command.program, &command.member),
        duplicate: false,
        replaced: previous.is_some(),
    })
}

/// Every problem of an add's own fields, whatever the state: checked before the
/// reference, since a retry of a valid add is valid (the rules of the state and
/// the clock come after it).
pub fn add_fields(command: &AddPoints) -> Problems {
    let mut problems = add_key_fields(command);
    problems.append(add_amount_fields(command));
    problems
}

fn add_key_fields(command: &AddPoints) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("member_id", &command.member));
    problems.check(validate::required_remark("remark", &command.remark));
    problems.check(validate::remark("private_remark", &command.private_remark));
    problems.check(validate::optional_id("reference", &command.reference));
    problems.check(validate::optional_id("branch_code", &command.branch_code));
    problems
}

fn add_amount_fields(command: &AddPoints) -> Problems {
    let mut problems = Problems::new();
    match (command.cost, command.formula_id.is_empty()) {
        (None, true) => {
            problems.check(validate::amount("points", command.points, 1, POINTS_PER_ADD_MAX));
        }
        (Some(_), true) => problems.push(Rejection::Required { field: FieldPath::new("formula_id") }),
        (None, false) => problems.push(Rejection::Required { field: FieldPath::new("cost") }),
        (Some(cost), false) => {
            problems.check(validate::id("formula_id", &command.formula_id));
            problems.check(validate::positive_decimal("cost", cost));
        }
    }
    problems
}

/// Every problem of a use's own fields, whatever the state.
pub fn spend_fields(command: &UsePoints) -> Problems {
    let mut problems = spend_key_fields(command);
    problems.append(spend_amount_fields(command));
    problems
}

fn spend_key_fields(command: &UsePoints) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("member_id", &command.member));
    problems.check(validate::optional_id("reward_id", &command.reward_id));
    problems.check(validate::remark("remark", &command.remark));
    problems.check(validate::remark("private_remark", &command.private_remark));
    problems.check(validate::optional_id("reference", &command.reference));
    problems.check(validate::optional_id("branch_code", &command.branch_code));
    problems
}

/// A use's amount, and its remark when no reward names it.
fn spend_amount_fields(command: &UsePoints) -> Problems {
    let mut problems = Problems::new();
    if command.reward_id.is_empty() {
        if command.remark.trim().is_empty() {
            problems.push(Rejection::Required { field: FieldPath::new("remark") });
        }
        problems.check(validate::amount("points", command.points, 1, USE_POINTS_MAX));
    } else if command.points != 0 {
        problems.check(validate::amount("points", command.points, 1, USE_POINTS_MAX));
    }
    problems
}

/// The points an add carries: given, or computed from a cost by a formula.
fn add_amount(view: &Overlay<'_>, command: &AddPoints) -> Result<u64, Rejection> {
    match (command.cost, command.formula_id.is_empty()) {
        (None, true) => validate::amount("points", command.points, 1, POINTS_PER_ADD_MAX),
        (Some(_), true) => Err(Rejection::Required { field: FieldPath::new("formula_id") }),
        (None, false) => Err(Rejection::Required { field: FieldPath::new("cost") }),
        (Some(cost), false) => {
            validate::id("formula_id", &command.formula_id)?;
            let cost = validate::positive_decimal("cost", cost)?;
            let formula = view
                .program(&command.program)
                .and_then(|program| program.formulas.get(&command.formula_id))
                .ok_or_else(|| Rejection::UnknownFormula {
                    field: FieldPath::new("formula_id"),
                    program: command.program.clone(),
                    formula_id: command.formula_id.clone(),
                })?;
            let points = cost.checked_mul(formula.multiplier).map(|product| product.floor());
            match points.and_then(|points| points.to_u64()) {
                Some(points) if (1..=POINTS_PER_ADD_MAX).contains(&points) => Ok(points),
                _ => Err(Rejection::Invalid {
                    field: FieldPath::new("cost"),
                    rule: format!(
                        "cost {cost} × multiplier {} of formula {:?} must give 1..={POINTS_PER_ADD_MAX} points, got {}",
                        formula.multiplier,
                        command.formula_id,
                        points.map_or_else(|| "more than a decimal holds".to_owned(), |points| points.to_string())
                    ),
                }),
            }
        }
    }
}

/// The points a use takes: given, or the reward's cost.
fn use_amount(view: &Overlay<'_>, command: &UsePoints) -> Result<u64, Rejection> {
    if command.reward_id.is_empty() {
        validate::required_remark("remark", &command.remark)?;
        return validate::amount("points", command.points, 1, USE_POINTS_MAX);
    }
    let reward = view
        .program(&command.program)
        .and_then(|program| program.rewards.get(&command.reward_id))
        .ok_or_else(|| Rejection::UnknownReward {
            field: FieldPath::new("reward_id"),
            program: command.program.clone(),
            reward_id: command.reward_id.clone(),
        })?;
    if let Some(expired_at) = reward.expires_at
        && expired_at <= view.at()
    {
        return Err(Rejection::RewardExpired {
            field: FieldPath::new("reward_id"),
            reward_id: command.reward_id.clone(),
            expired_at,
        });
    }
    if command.points == 0 {
        return Ok(reward.points);
    }
    validate::amount("points", command.points, 1, USE_POINTS_MAX)
}

/// Refuses a change that would raise a member's balance or qualifying amount
/// past `POINTS_BALANCE_MAX`: `State::apply` trusts `decide` and would stop the
/// server on an overflow, and a reply could only show such a balance wrapped.
pub fn room_for(view: &Overlay<'_>, program: &str, member: &str, points: u64, field: &str) -> Result<(), Rejection> {
    let (balance, qualifying) =
        view.member(program, member).map_or((0, 0), |member| (member.points, member.qualifying_amount));
    let fits = |held: u64| held.checked_add(points).is_some_and(|after| after <= POINTS_BALANCE_MAX);
    if fits(balance) && fits(qualifying) {
        return Ok(());
    }
    Err(Rejection::Conflict {
        field: FieldPath::new(field),
        reason: crate::reason::BALANCE_LIMIT,
        rule: format!(
            "adding {points} points would take member {member:?} (balance {balance}, qualifying amount \
             {qualifying}) beyond {POINTS_BALANCE_MAX}, the most a balance may hold"
        ),
    })
}

/// Records the reversal of the points add or use a reference named, which
/// `replace_duplicate` replaces (`references::points_earlier`).
fn reverse(view: &mut Overlay<'_>, program: &str, reference: &str, entry: &ReferenceEntry) -> Result<(), Rejection> {
    // A transaction ReverseTransaction undid already has nothing left to undo: the
    // replacement only records the new transaction.
    if view.member(program, &entry.member).is_some_and(|member| member.reversed.contains_key(&entry.transaction_id)) {
        return Ok(());
    }
    let body = match &entry.record {
        ReferenceRecord::CreditsAdd { .. }
        | ReferenceRecord::CreditsUse { .. }
        | ReferenceRecord::CouponsGrant { .. }
        | ReferenceRecord::CouponUse { .. }
        | ReferenceRecord::PointStatement { .. }
        | ReferenceRecord::Hold
        | ReferenceRecord::HoldCapture { .. }
        | ReferenceRecord::Reversal { .. } => unreachable!("only a points add or use is replaced"),
        ReferenceRecord::PointsUse { points, taken, .. } => {
            room_for(view, program, &entry.member, *points, "replace_duplicate")?;
            EventBody::PointsUseReversed(PointsReversal {
                transaction_id: entry.transaction_id,
                points: *points,
                lots: taken.clone(),
                reference: reference.to_owned(),
                earned: 0,
            })
        }
        ReferenceRecord::PointsAdd { points: added, lot, expired, .. } => {
            // What expired from the lot is gone already; the rest comes back, from
            // the add's own lot first.
            let points = added.checked_sub(*expired).expect("expired more than added");
            let member = view.member(program, &entry.member);
            let planned = member.map_or(Err(points), |member| member.lots.plan_take(points, view.at(), Some(*lot)));
            let lots = planned.map_err(|shortfall| Rejection::ReplacementInsufficient {
                field: FieldPath::new("replace_duplicate"),
                transaction_id: entry.transaction_id,
                member: entry.member.clone(),
                shortfall,
            })?;
            EventBody::PointsAddReversed(PointsReversal {
                transaction_id: entry.transaction_id,
                points,
                lots,
                reference: reference.to_owned(),
                earned: *added,
            })
        }
    };
    let event = Event { program: program.to_owned(), member: entry.member.clone(), occurred_at: None, body };
    view.apply(event);
    Ok(())
}
