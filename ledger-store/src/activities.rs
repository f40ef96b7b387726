//! Activities (Loga `get_activities`, `get_activity_detail`): a member's or a
//! program's transactions, newest first, read from the log through the activity
//! index.

use crate::activity::ActivityIndex;
use crate::error::{LedgerError, StoreError};
use crate::log::{Log, LoggedEvent};
use ledger_core::credits;
use ledger_core::event::{ActivityKind, EventBody};
use ledger_core::references;
use ledger_core::{Event, FieldPath, Rejection, Timestamp};
use rust_decimal::Decimal;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    pub program: String,
    /// Empty: every member of the program.
    pub member: String,
    /// Inclusive, on the activity's time (business time, else recorded time).
    pub from: Option<Timestamp>,
    /// Exclusive.
    pub to: Option<Timestamp>,
    /// Empty: every kind.
    pub kinds: Vec<ActivityKind>,
    pub page_size: usize,
    /// Continue below this transaction id (the page token).
    pub before: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub transaction_id: u64,
    pub kind: ActivityKind,
    /// The event's name, e.g. `PointsAdded`.
    pub event: &'static str,
    pub member: String,
    /// Signed: negative for what left the balance.
    pub amount: Decimal,
    pub balance_after: Decimal,
    pub remark: String,
    pub private_remark: String,
    pub reference: String,
    /// The reward, formula, lot or reversed transaction the activity came from.
    pub source_id: String,
    pub actor: String,
    pub occurred_at: Timestamp,
    pub recorded_at: Timestamp,
    /// The transaction that reversed this one (SPEC §15), if any.
    pub reversed_by: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityPage {
    pub activities: Vec<Activity>,
    /// The page token of the next page; `None` on the last.
    pub next_before: Option<u64>,
}

/// An activity built from its logged event and the balance after it (in the
/// units of what the event moved: see `Member::balance_after`).
pub fn activity(logged: LoggedEvent, balance_after: u64) -> Activity {
    let envelope = logged.envelope;
    let Event { member, occurred_at, body, .. } = envelope.event;
    let kind = body.activity_kind();
    let event = body.name();
    let (amount, balance_after) = amounts(&body, balance_after);
    let (remark, private_remark, reference, source_id) = texts(body);
    Activity {
        transaction_id: envelope.sequence,
        kind,
        event,
        member,
        amount,
        balance_after,
        remark,
        private_remark,
        reference,
        source_id,
        actor: envelope.actor,
        occurred_at: occurred_at.unwrap_or(envelope.recorded_at),
        recorded_at: envelope.recorded_at,
        // Known only to the member's state, not to the event: `Ledger` fills it in.
        reversed_by: None,
    }
}

/// The signed amount an event moved and the balance after it, as decimals.
fn amounts(body: &EventBody, balance_after: u64) -> (Decimal, Decimal) {
    match body {
        EventBody::CreditsAdded(change) => (change.amount, credits::decimal(balance_after)),
        EventBody::CreditsUsed(change) => (-change.amount, credits::decimal(balance_after)),
        EventBody::CouponsGranted { count, .. } => (Decimal::from(*count), Decimal::from(balance_after)),
        EventBody::CouponUsed { .. } => (Decimal::NEGATIVE_ONE, Decimal::from(balance_after)),
        EventBody::VoucherRecorded { .. } => (Decimal::ZERO, Decimal::from(balance_after)),
        EventBody::MemberLevelSet { level, .. } => (Decimal::from(*level), Decimal::from(balance_after)),
        EventBody::CreditsHeld(hold) => (-hold.amount, credits::decimal(balance_after)),
        EventBody::HoldCaptured(settled) | EventBody::HoldVoided(settled) | EventBody::HoldExpired(settled)
            if !settled.credit_id.is_empty() =>
        {
            (settled.released, credits::decimal(balance_after))
        }
        EventBody::TransactionReversed(reversal) => {
            (reversal.change.amount(), references::reversed_balance(&reversal.change, balance_after))
        }
        _ => (Decimal::from_i128_with_scale(body.points_delta(), 0), Decimal::from(balance_after)),
    }
}

/// (remark, private remark, reference, source id) of an event.
fn texts(body: EventBody) -> (String, String, String, String) {
    let none = String::new;
    match body {
        EventBody::PointsAdded(added) => (added.remark, added.private_remark, added.reference, added.formula_id),
        EventBody::PointsUsed(used) => (used.remark, used.private_remark, used.reference, used.reward_id),
        EventBody::PointsAddReversed(reversal) | EventBody::PointsUseReversed(reversal) => {
            let remark = format!("reversal of transaction {}", reversal.transaction_id);
            (remark, none(), reversal.reference, reversal.transaction_id.to_string())
        }
        EventBody::PointsExpired { lot, .. } => (format!("lot {lot} expired"), none(), none(), lot.to_string()),
        EventBody::CreditsAdded(change) | EventBody::CreditsUsed(change) => {
            (change.remark, none(), change.reference, change.credit_id)
        }
        EventBody::CouponsGranted { coupon_id, name, reference, .. } => (name, none(), reference, coupon_id),
        EventBody::CouponUsed { coupon_id, remark, reference } => (remark, none(), reference, coupon_id),
        EventBody::VoucherRecorded { statement, version } => {
            let remark = format!("{} ({:?}, version {version})", statement.voucher_name, statement.state());
            let source = format!("{}/{}", statement.promotion_id, statement.voucher_identifier);
            (remark, none(), none(), source)
        }
        EventBody::PointStatementApplied(statement) => {
            let remark = format!("point statement: {}", statement.change_reason.as_str());
            (remark, none(), statement.reference, statement.promotion_id.to_string())
        }
        EventBody::TransactionReversed(reversal) => {
            let remark = if reversal.remark.is_empty() {
                format!("reversal of transaction {}", reversal.transaction_id)
            } else {
                reversal.remark
            };
            (remark, none(), reversal.reference, reversal.transaction_id.to_string())
        }
        EventBody::MemberLevelSet { level: 0, .. } => ("level unpinned".to_owned(), none(), none(), none()),
        EventBody::MemberLevelSet { level, card_id } => (format!("level pinned at {level}"), none(), none(), card_id),
        EventBody::PointsHeld(hold) => (hold.remark, none(), hold.reference, none()),
        EventBody::CreditsHeld(hold) => (hold.remark, none(), hold.reference, hold.credit_id),
        // The source of a settlement is the hold it settled.
        EventBody::HoldCaptured(settled) | EventBody::HoldVoided(settled) | EventBody::HoldExpired(settled) => {
            (settled.remark, none(), settled.reference, settled.hold.to_string())
        }
        EventBody::ProgramCreated { .. }
        | EventBody::FormulaDefined { .. }
        | EventBody::RewardDefined { .. }
        | EventBody::CreditDefined { .. }
        | EventBody::ShopDefined { .. }
        | EventBody::MemberCardCreated(_)
        | EventBody::MemberCardUpdated(_)
        | EventBody::MemberCardDeleted { .. } => (none(), none(), none(), none()),
    }
}

/// A page of activities, newest first; only durable events (`durable`) show.
pub fn list(log: &Log, index: &ActivityIndex, query: &ActivityQuery, durable: u64) -> Result<ActivityPage, StoreError> {
    let mut activities = Vec::new();
    let mut below = query.before.unwrap_or(u64::MAX).min(durable.saturating_add(1));
    let batch = query.page_size.clamp(16, 256);
    let mut records = RecordCache::default();
    loop {
        let entries = index.newest(&query.program, &query.member, below, batch)?;
        let Some(last) = entries.last() else { break };
        below = last.0;
        for (sequence, balance_after) in entries {
            let logged = records.event(log, sequence)?;
            let candidate = activity(logged, balance_after);
            if !matches(query, &candidate) {
                continue;
            }
            if activities.len() == query.page_size {
                let next_before = activities.last().map(|last: &Activity| last.transaction_id);
                return Ok(ActivityPage { activities, next_before });
            }
            activities.push(candidate);
        }
    }
    Ok(ActivityPage { activities, next_before: None })
}

fn matches(query: &ActivityQuery, activity: &Activity) -> bool {
    let kind = query.kinds.is_empty() || query.kinds.contains(&activity.kind);
    let from = query.from.is_none_or(|from| activity.occurred_at >= from);
    let to = query.to.is_none_or(|to| activity.occurred_at < to);
    kind && from && to
}

/// One activity by transaction id, in `program`; NOT_FOUND unless it is a durable
/// member event of that program.
pub fn get(
    log: &Log,
    index: &ActivityIndex,
    program: &str,
    sequence: u64,
    durable: u64,
) -> Result<Activity, LedgerError> {
    let missing = || {
        LedgerError::Rejected(Rejection::UnknownTransaction {
            field: FieldPath::new("transaction_id"),
            program: program.to_owned(),
            transaction_id: sequence,
        })
    };
    if sequence == 0 || sequence > durable {
        return Err(missing());
    }
    let logged = log.event(sequence)?.ok_or_else(missing)?;
    if logged.envelope.event.program != program || logged.envelope.event.member.is_empty() {
        return Err(missing());
    }
    let member = logged.envelope.event.member.clone();
    let balance_after = index.balance_after(program, &member, sequence)?.ok_or_else(missing)?;
    Ok(activity(logged, balance_after))
}

/// Decodes each log record once while a page walks through its events: a bulk's
/// thousand events share one record.
#[derive(Default)]
struct RecordCache {
    first: u64,
    events: Vec<LoggedEvent>,
}

impl RecordCache {
    fn event(&mut self, log: &Log, sequence: u64) -> Result<LoggedEvent, StoreError> {
        let index = sequence.checked_sub(self.first).and_then(|offset| usize::try_from(offset).ok());
        if let Some(found) = index.and_then(|index| self.events.get(index)).filter(|_| self.first > 0) {
            return Ok(found.clone());
        }
        let (first, events) = log.record(sequence)?.ok_or_else(|| StoreError::Corrupt {
            sequence,
            reason: "the activity index names an event the log does not hold".to_owned(),
        })?;
        self.first = first;
        self.events = events;
        let offset = usize::try_from(sequence - first).expect("offset fits usize");
        Ok(self.events[offset].clone())
    }
}
