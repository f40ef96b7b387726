//! Holds (SPEC §14): points or credits set aside now, captured (spent) or voided
//! later, as a card terminal authorizes and settles.
//!
//! - A hold takes from the available balance as a use does (soonest-expiring lots
//!   first), so the member cannot spend the same points twice while it waits.
//! - A capture never fails for lack of balance: what is held is spent. It counts
//!   as a use (the qualifying amount stays); a partial capture gives the rest back.
//! - A void, an expiry and the rest of a partial capture give points back to the
//!   lots they came from, with their expiry: a lot that expired meanwhile comes
//!   back expired, and the sweep takes it again.
//! - A hold's id is its transaction id. Every hold expires (15 minutes by
//!   default, 30 days at most); a pending hold past its time is never counted as
//!   held by a read (`Member::held_points`), even before the sweep (or the next
//!   single use, hold or bulk use naming the member) records `HoldExpired`. A
//!   bulk use records those expiries before its first item, so that its applied
//!   items keep consecutive transaction ids (`bulk`).
//! - A hold and a capture are idempotent by reference (`references`).

use crate::command::{CaptureHold, HoldCredits, HoldPoints, VoidHold};
use crate::credits;
use crate::event::{CreditsHold, Event, EventBody, HoldSettled, LotTake, PointsHold};
use crate::field::FieldPath;
use crate::limits::{HOLD_EXPIRY_DEFAULT_MICROS, HOLD_EXPIRY_MAX_MICROS, USE_POINTS_MAX};
use crate::members::Member;
use crate::overlay::Overlay;
use crate::reason;
use crate::references::{self, ReferenceKind, ReferenceRecord};
use crate::rejection::{Definition, Rejection};
use crate::time::Timestamp;
use crate::validate::{self, Problems};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

/// A hold as the member keeps it, pending or settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The credit type held; empty for points.
    pub credit_id: String,
    /// What was held: points, or credit units (10^-`CREDIT_SCALE`).
    pub amount: u64,
    /// For points: the lots that paid, soonest-expiring first.
    pub taken: Vec<LotTake>,
    pub remark: String,
    pub reference: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// As recorded; a read asks `state_at`, which knows that time passes.
    pub state: HoldState,
    /// What the capture spent, in the unit of `amount`; 0 otherwise.
    pub captured: u64,
    /// The capture's, void's or expiry's transaction id; 0 while pending.
    pub settled_transaction_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldState {
    Pending,
    Captured,
    Voided,
    Expired,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "PENDING",
            HoldState::Captured => "CAPTURED",
            HoldState::Voided => "VOIDED",
            HoldState::Expired => "EXPIRED",
        }
    }
}

impl Hold {
    pub fn is_points(&self) -> bool {
        self.credit_id.is_empty()
    }

    /// The state a read shows at `at`: a pending hold whose time came is expired,
    /// swept or not.
    pub fn state_at(&self, at: Timestamp) -> HoldState {
        if self.state == HoldState::Pending && self.expires_at <= at { HoldState::Expired } else { self.state }
    }

    /// Whether it still holds its amount at `at`.
    pub fn is_held(&self, at: Timestamp) -> bool {
        self.state_at(at) == HoldState::Pending
    }

    /// Recorded pending but past its time at `at`: released for every read.
    pub fn is_lapsed(&self, at: Timestamp) -> bool {
        self.state == HoldState::Pending && self.expires_at <= at
    }

    /// The amount as the wire shows it: points whole, credits as a decimal.
    pub fn decimal(&self, units: u64) -> Decimal {
        if self.is_points() { Decimal::from(units) } else { credits::decimal(units) }
    }
}

/// A hold with its member and id, as commands and reads answer it; `hold.state`
/// is already the state at the time of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldView {
    pub program: String,
    pub member: String,
    pub hold_id: u64,
    pub hold: Hold,
    /// The reference was used before: nothing changed, this is the hold now.
    pub duplicate: bool,
}

impl HoldView {
    pub fn of(program: &str, member: &str, hold_id: u64, hold: &Hold, at: Timestamp) -> HoldView {
        let mut hold = hold.clone();
        hold.state = hold.state_at(at);
        HoldView { program: program.to_owned(), member: member.to_owned(), hold_id, hold, duplicate: false }
    }
}

/// Decides a points hold on the overlay and applies it there.
pub fn hold_points(view: &mut Overlay<'_>, command: &HoldPoints) -> Result<HoldView, Rejection> {
    let amounts = hold_key_fields(&command.member, &command.remark, &command.reference)
        .then_after_reference(points_amount_fields(command))?;
    if let Some(view) = repeated_hold(view, &command.program, &command.reference)? {
        return Ok(view);
    }
    amounts.finish()?;
    let points = validate::amount("points", command.points, 1, USE_POINTS_MAX)?;
    let expires_at = expiry(view.at(), command.expires_at)?;
    release_lapsed(view, &command.program, &command.member);
    let live = view.live_points(&command.program, &command.member);
    let member = view.member(&command.program, &command.member);
    let Some(Ok(taken)) = member.map(|member| member.lots.plan_take(points, view.at(), None)) else {
        return Err(Rejection::InsufficientPoints {
            field: FieldPath::new("points"),
            member: command.member.clone(),
            balance: live,
            wanted: points,
        });
    };
    let body = EventBody::PointsHeld(PointsHold {
        points,
        remark: command.remark.clone(),
        reference: command.reference.clone(),
        expires_at,
        taken,
    });
    Ok(record_hold(view, &command.program, &command.member, body))
}

/// Decides a credits hold on the overlay and applies it there.
pub fn hold_credits(view: &mut Overlay<'_>, command: &HoldCredits) -> Result<HoldView, Rejection> {
    let mut key = hold_key_fields(&command.member, &command.remark, &command.reference);
    key.check(validate::id("credit_id", &command.credit_id));
    let amounts = key.then_after_reference(credits_amount_fields(command))?;
    if let Some(view) = repeated_hold(view, &command.program, &command.reference)? {
        return Ok(view);
    }
    amounts.finish()?;
    let amount = credits::amount("amount", command.amount)?;
    let expires_at = expiry(view.at(), command.expires_at)?;
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
    release_lapsed(view, &command.program, &command.member);
    let balance = view
        .member(&command.program, &command.member)
        .and_then(|member| member.credits.get(&command.credit_id).copied())
        .unwrap_or(0);
    if balance < credits::units(amount) {
        return Err(Rejection::InsufficientCredits {
            field: FieldPath::new("amount"),
            member: command.member.clone(),
            credit_id: command.credit_id.clone(),
            balance: credits::decimal(balance),
            wanted: amount,
        });
    }
    let body = EventBody::CreditsHeld(CreditsHold {
        credit_id: command.credit_id.clone(),
        amount,
        remark: command.remark.clone(),
        reference: command.reference.clone(),
        expires_at,
    });
    Ok(record_hold(view, &command.program, &command.member, body))
}

/// Decides a capture, whole or in part, on the overlay and applies it there.
pub fn capture(view: &mut Overlay<'_>, command: &CaptureHold) -> Result<HoldView, Rejection> {
    let amounts = settle_key_fields(&command.hold_id, &command.remark, &command.reference)
        .then_after_reference(capture_amount_fields(command))?;
    if let Some(entry) = references::earlier(view, &command.program, &command.reference, ReferenceKind::HoldCapture)? {
        let ReferenceRecord::HoldCapture { hold } = entry.record else { unreachable!("a capture's record") };
        let member = entry.member.clone();
        return Ok(duplicate(existing_view(view, &command.program, &member, hold)));
    }
    amounts.finish()?;
    let (hold_id, hold) = pending(view, &command.program, &command.member, &command.hold_id)?;
    let captured = match command.amount {
        None => hold.amount,
        Some(amount) => capture_units(&hold, amount)?,
    };
    let released = hold.amount - captured;
    let body =
        EventBody::HoldCaptured(settled(hold_id, &hold, captured, released, &command.remark, &command.reference));
    Ok(record_settle(view, &command.program, &command.member, hold_id, body))
}

/// Decides a void on the overlay and applies it there.
pub fn void(view: &mut Overlay<'_>, command: &VoidHold) -> Result<HoldView, Rejection> {
    settle_key_fields(&command.hold_id, &command.remark, "").finish()?;
    let (hold_id, hold) = pending(view, &command.program, &command.member, &command.hold_id)?;
    let body = EventBody::HoldVoided(settled(hold_id, &hold, 0, hold.amount, &command.remark, ""));
    Ok(record_settle(view, &command.program, &command.member, hold_id, body))
}

/// Records `HoldExpired` for each of the member's holds whose time came, before a
/// command spends from the member: a read already counts their amount as
/// available, so the command must be able to spend it too.
pub fn release_lapsed(view: &mut Overlay<'_>, program: &str, member: &str) {
    let at = view.at();
    let lapsed: Vec<(u64, Hold)> = view
        .member(program, member)
        .map(|found| found.holds.iter().filter(|(_, hold)| hold.is_lapsed(at)).map(|(id, h)| (*id, h.clone())))
        .into_iter()
        .flatten()
        .collect();
    for (hold_id, hold) in lapsed {
        view.apply(expired_event(program, member, hold_id, &hold));
    }
}

/// The event that records a pending hold's expiry (the sweep's, or a command's).
pub fn expired_event(program: &str, member: &str, hold_id: u64, hold: &Hold) -> Event {
    let body = EventBody::HoldExpired(settled(hold_id, hold, 0, hold.amount, "", ""));
    Event { program: program.to_owned(), member: member.to_owned(), occurred_at: None, body }
}

/// Every problem of a hold's or a settlement's own fields, whatever the state.
pub fn hold_points_fields(command: &HoldPoints) -> Problems {
    let mut problems = hold_key_fields(&command.member, &command.remark, &command.reference);
    problems.append(points_amount_fields(command));
    problems
}

pub fn hold_credits_fields(command: &HoldCredits) -> Problems {
    let mut problems = hold_key_fields(&command.member, &command.remark, &command.reference);
    problems.check(validate::id("credit_id", &command.credit_id));
    problems.append(credits_amount_fields(command));
    problems
}

pub fn capture_fields(command: &CaptureHold) -> Problems {
    let mut problems = settle_key_fields(&command.hold_id, &command.remark, &command.reference);
    problems.append(capture_amount_fields(command));
    problems
}

pub fn void_fields(command: &VoidHold) -> Problems {
    settle_key_fields(&command.hold_id, &command.remark, "")
}

/// A hold's transaction id as the caller wrote it; `None` when it is no number,
/// which names no hold.
pub fn parse_hold_id(text: &str) -> Option<u64> {
    text.parse().ok().filter(|id| *id > 0)
}

fn hold_key_fields(member: &str, remark: &str, reference: &str) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("member_id", member));
    problems.check(validate::required_remark("remark", remark));
    problems.check(validate::optional_id("reference", reference));
    problems
}

fn settle_key_fields(hold_id: &str, remark: &str, reference: &str) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::id("hold_id", hold_id));
    problems.check(validate::remark("remark", remark));
    problems.check(validate::optional_id("reference", reference));
    problems
}

fn points_amount_fields(command: &HoldPoints) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::amount("points", command.points, 1, USE_POINTS_MAX));
    problems
}

fn credits_amount_fields(command: &HoldCredits) -> Problems {
    let mut problems = Problems::new();
    problems.check(credits::amount("amount", command.amount));
    problems
}

fn capture_amount_fields(command: &CaptureHold) -> Problems {
    let mut problems = Problems::new();
    if let Some(amount) = command.amount {
        problems.check(validate::positive_decimal("amount", amount));
    }
    problems
}

/// When a hold expires: the caller's time, later than now and at most
/// `HOLD_EXPIRY_MAX_MICROS` ahead, or `HOLD_EXPIRY_DEFAULT_MICROS` from now.
fn expiry(at: Timestamp, expires_at: Option<Timestamp>) -> Result<Timestamp, Rejection> {
    let latest = Timestamp::from_micros(at.micros().saturating_add(HOLD_EXPIRY_MAX_MICROS));
    let Some(expires_at) = expires_at else {
        return Ok(Timestamp::from_micros(at.micros().saturating_add(HOLD_EXPIRY_DEFAULT_MICROS)));
    };
    if expires_at <= at || expires_at > latest {
        return Err(Rejection::Invalid {
            field: FieldPath::new("expires_at"),
            rule: format!("must be later than now ({at}) and at most 30 days ahead ({latest}), got {expires_at}"),
        });
    }
    Ok(expires_at)
}

/// The hold a repeated hold reference made, as it stands now.
fn repeated_hold(view: &Overlay<'_>, program: &str, reference: &str) -> Result<Option<HoldView>, Rejection> {
    let Some(entry) = references::earlier(view, program, reference, ReferenceKind::Hold)? else {
        return Ok(None);
    };
    let (member, hold_id) = (entry.member.clone(), entry.transaction_id);
    Ok(Some(duplicate(existing_view(view, program, &member, hold_id))))
}

fn duplicate(mut view: HoldView) -> HoldView {
    view.duplicate = true;
    view
}

fn existing_view(view: &Overlay<'_>, program: &str, member: &str, hold_id: u64) -> HoldView {
    let hold = view.member(program, member).and_then(|found| found.holds.get(&hold_id));
    let hold = hold.expect("a reference names a hold its member keeps");
    HoldView::of(program, member, hold_id, hold, view.at())
}

/// The pending hold `hold_id` names: HOLD_NOT_FOUND when no hold of the program
/// has it, HOLD_NOT_PENDING once settled or past its time.
fn pending(view: &Overlay<'_>, program: &str, member: &str, hold_id: &str) -> Result<(u64, Hold), Rejection> {
    let found = parse_hold_id(hold_id)
        .and_then(|id| Some((id, view.member(program, member)?.holds.get(&id)?)))
        .filter(|_| !member.is_empty());
    let Some((id, hold)) = found else {
        return Err(Rejection::UnknownHold {
            field: FieldPath::new("hold_id"),
            program: program.to_owned(),
            hold_id: hold_id.to_owned(),
        });
    };
    let state = hold.state_at(view.at());
    if state != HoldState::Pending {
        return Err(Rejection::Conflict {
            field: FieldPath::new("hold_id"),
            reason: reason::HOLD_NOT_PENDING,
            rule: format!("hold {id} is {}, not pending: only a pending hold is captured or voided", state.as_str()),
        });
    }
    Ok((id, hold.clone()))
}

/// A part of a hold to capture, in its unit: whole points for points, at most
/// `CREDIT_SCALE` places for credits, never more than is held.
fn capture_units(hold: &Hold, amount: Decimal) -> Result<u64, Rejection> {
    let amount = amount.normalize();
    let units = if hold.is_points() {
        amount.is_integer().then(|| amount.to_u64()).flatten()
    } else {
        credits::amount("amount", amount).ok().map(credits::units)
    };
    match units {
        Some(units) if units >= 1 && units <= hold.amount => Ok(units),
        _ => Err(Rejection::Invalid {
            field: FieldPath::new("amount"),
            rule: format!(
                "must be more than 0 and at most the {} held{}, got {amount}",
                hold.decimal(hold.amount),
                if hold.is_points() { " (whole points)" } else { "" }
            ),
        }),
    }
}

/// A settlement spending `captured` and giving `released` back; for points, the
/// captured part is the soonest-expiring part of what was taken, as a use would
/// have spent it, and the rest goes back to its lots.
fn settled(hold_id: u64, hold: &Hold, captured: u64, released: u64, remark: &str, reference: &str) -> HoldSettled {
    let released_lots = if hold.is_points() { tail(&hold.taken, released) } else { Vec::new() };
    HoldSettled {
        hold: hold_id,
        credit_id: hold.credit_id.clone(),
        captured: hold.decimal(captured),
        released: hold.decimal(released),
        released_lots,
        remark: remark.to_owned(),
        reference: reference.to_owned(),
    }
}

/// The last `points` of `taken`, in the same order.
fn tail(taken: &[LotTake], points: u64) -> Vec<LotTake> {
    let mut left = points;
    let mut released = Vec::new();
    for take in taken.iter().rev() {
        if left == 0 {
            break;
        }
        let given = left.min(take.points);
        released.push(LotTake { points: given, ..*take });
        left -= given;
    }
    assert_eq!(left, 0, "a release gives back at most what was taken");
    released.reverse();
    released
}

fn record_hold(view: &mut Overlay<'_>, program: &str, member: &str, body: EventBody) -> HoldView {
    let event = Event { program: program.to_owned(), member: member.to_owned(), occurred_at: None, body };
    let hold_id = view.apply(event);
    existing_view(view, program, member, hold_id)
}

fn record_settle(view: &mut Overlay<'_>, program: &str, member: &str, hold_id: u64, body: EventBody) -> HoldView {
    let event = Event { program: program.to_owned(), member: member.to_owned(), occurred_at: None, body };
    view.apply(event);
    existing_view(view, program, member, hold_id)
}

impl Member {
    /// Points held by pending holds at `at`: a hold past its time holds nothing.
    pub fn held_points(&self, at: Timestamp) -> u64 {
        self.holds.values().filter(|hold| hold.is_points() && hold.is_held(at)).map(|hold| hold.amount).sum()
    }

    /// Credit units of `credit_id` held by pending holds at `at`.
    pub fn held_credits(&self, credit_id: &str, at: Timestamp) -> u64 {
        self.holds.values().filter(|hold| hold.credit_id == credit_id && hold.is_held(at)).map(|hold| hold.amount).sum()
    }

    /// Points that holds past their time (not yet recorded as expired) give back
    /// at `at`: only to lots still live then, as the release will.
    pub(crate) fn lapsed_points(&self, at: Timestamp) -> u64 {
        let lapsed = self.holds.values().filter(|hold| hold.is_points() && hold.is_lapsed(at));
        let takes = lapsed.flat_map(|hold| hold.taken.iter());
        takes.filter(|take| take.expires_at.is_none_or(|expires_at| at < expires_at)).map(|take| take.points).sum()
    }

    /// The credit units of `credit_id` a member can spend at `at`: its wallet and
    /// what holds past their time give back.
    pub fn available_credits(&self, credit_id: &str, at: Timestamp) -> u64 {
        let lapsed: u64 = self
            .holds
            .values()
            .filter(|hold| hold.credit_id == credit_id && hold.is_lapsed(at))
            .map(|hold| hold.amount)
            .sum();
        self.credits.get(credit_id).copied().unwrap_or(0) + lapsed
    }
}
