//! Proto messages to domain commands and back, by hand: the domain types know
//! nothing of protobuf (STYLE.md). Conversions that can fail name the field.

mod holds;
mod requests;
mod tiers;
mod vouchers;
mod wallets;

pub use holds::{capture_hold, hold, hold_credits, hold_points, holds_page_token, holds_query, void_hold};
pub use requests::*;
pub use tiers::card;
pub use vouchers::{point_statements, report_query, state as voucher_state, voucher_statement, voucher_statements};
pub use wallets::{credits_change, credits_receipt, member_coupon};

use crate::pb;
use crate::status::from_rejection;
use ledger_core::command::{AddPoints, BulkResult, MalformedItem, PointsReceipt, UsePoints};
use ledger_core::validate::Problems;
use ledger_core::{Command, FieldPath, Rejection, Timestamp, field_problems};
use rust_decimal::Decimal;
use std::str::FromStr;
use tonic::Status;

/// A request being read into a command: the problems of its wire values (a time
/// outside Timestamp's range, a decimal that is not one) are collected, not
/// returned at the first, and `finish_command` adds the core's checks of the
/// command's own fields, so that a refused request names every problem at once
/// (SPEC §13). An unreadable value is left out of the command (`None`, or zero
/// where the command needs one); the core's complaint about the same field is
/// then dropped, the caller hears the first.
#[derive(Debug, Default)]
pub struct Reading {
    problems: Problems,
}

impl Reading {
    pub fn new() -> Reading {
        Reading::default()
    }

    pub fn time(&mut self, field: &str, value: Option<prost_types::Timestamp>) -> Option<Timestamp> {
        self.problems.check(timestamp(field, value)).flatten()
    }

    /// An optional decimal: `None` when blank, or when it is not one (noted).
    pub fn decimal(&mut self, field: &str, text: &str) -> Option<Decimal> {
        self.problems.check(decimal(field, text)).flatten()
    }

    /// A required decimal; zero (which no amount may be) when missing or not one.
    pub fn required_decimal(&mut self, field: &str, text: &str) -> Decimal {
        match self.problems.check(decimal(field, text)) {
            Some(Some(value)) => value,
            Some(None) => {
                self.problems.push(Rejection::Required { field: FieldPath::new(field) });
                Decimal::ZERO
            }
            None => Decimal::ZERO,
        }
    }

    pub fn check<T>(&mut self, result: Result<T, Rejection>) -> Option<T> {
        self.problems.check(result)
    }

    pub fn push(&mut self, rejection: Rejection) {
        self.problems.push(rejection);
    }

    /// Every problem found, as INVALID_ARGUMENT listing them, or `Ok`.
    pub fn finish(self) -> Result<(), Status> {
        self.problems.finish().map_err(from_rejection)
    }

    /// `command` when the request read cleanly; otherwise every problem: the
    /// reading's and the core's own checks of the command (`wrap` makes it one).
    pub fn finish_command<C>(self, command: C, wrap: impl FnOnce(C) -> Command) -> Result<C, Status> {
        self.into_rejection(command, wrap).map_err(from_rejection)
    }

    fn into_rejection<C>(mut self, command: C, wrap: impl FnOnce(C) -> Command) -> Result<C, Rejection> {
        if self.problems.is_empty() {
            return Ok(command);
        }
        self.problems.extend_new(field_problems(&wrap(command)));
        Err(self.problems.finish().expect_err("problems were found"))
    }
}

/// A request's time: INVALID_ARGUMENT naming `field` when it is outside
/// google.protobuf.Timestamp's range (the rule is the core's, shared with the
/// `ledger` client's flags and files).
pub fn timestamp(field: &str, value: Option<prost_types::Timestamp>) -> Result<Option<Timestamp>, Rejection> {
    let Some(value) = value else { return Ok(None) };
    match Timestamp::from_unix(value.seconds, i64::from(value.nanos)) {
        Ok(time) => Ok(Some(time)),
        Err(error) => Err(Rejection::Invalid { field: FieldPath::new(field), rule: error.to_string() }),
    }
}

pub fn to_timestamp(time: Timestamp) -> prost_types::Timestamp {
    let micros = time.micros();
    let nanos = i32::try_from(micros.rem_euclid(1_000_000) * 1_000).expect("below a second");
    prost_types::Timestamp { seconds: micros.div_euclid(1_000_000), nanos }
}

/// A decimal string: empty means none.
pub fn decimal(field: &str, text: &str) -> Result<Option<Decimal>, Rejection> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // Plain digits with an optional sign and fraction: `Decimal::from_str` also takes
    // `1e2`, `1_000` and `.5`, which no money field should.
    let (whole, fraction) =
        text.trim_start_matches(['+', '-']).split_once('.').unwrap_or((text.trim_start_matches(['+', '-']), "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    let parsed = if digits(whole) && digits(fraction) { Decimal::from_str(text).ok() } else { None };
    parsed.map(Some).ok_or_else(|| Rejection::Invalid {
        field: FieldPath::new(field),
        rule: format!("{text:?} is not a decimal number such as \"12.50\""),
    })
}

/// Decimals print normalized: `"7.25"`, `"10"`.
pub fn decimal_text(value: Decimal) -> String {
    value.normalize().to_string()
}

pub fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub fn add_points(request: pb::AddPointsRequest) -> Result<AddPoints, Status> {
    let mut reading = Reading::new();
    let command = AddPoints {
        cost: reading.decimal("cost", &request.cost),
        expires_at: reading.time("expires_at", request.expires_at),
        occurred_at: reading.time("occurred_at", request.occurred_at),
        program: request.program_id,
        member: request.member_id,
        points: request.points,
        formula_id: request.formula_id,
        remark: request.remark,
        private_remark: request.private_remark,
        reference: request.reference,
        branch_code: request.branch_code,
        replace_duplicate: request.replace_duplicate,
    };
    reading.finish_command(command, Command::AddPoints)
}

pub fn use_points(request: pb::UsePointsRequest) -> Result<UsePoints, Status> {
    let mut reading = Reading::new();
    let command = UsePoints {
        occurred_at: reading.time("occurred_at", request.occurred_at),
        program: request.program_id,
        member: request.member_id,
        points: request.points,
        reward_id: request.reward_id,
        remark: request.remark,
        private_remark: request.private_remark,
        reference: request.reference,
        branch_code: request.branch_code,
        replace_duplicate: request.replace_duplicate,
    };
    reading.finish_command(command, Command::UsePoints)
}

/// A bulk's items, and the first the edge could not read (its problems named as
/// in a single request, with the core's checks of the rest of the item): the
/// bulk stops there with `fail_at` (SPEC §3), the items before it apply.
pub fn bulk_add_items(program: &str, items: Vec<pb::BulkAddItem>) -> (Vec<AddPoints>, Option<MalformedItem>) {
    let mut converted = Vec::with_capacity(items.len());
    let mut malformed = None;
    for (index, item) in items.into_iter().enumerate() {
        let mut reading = Reading::new();
        let command = AddPoints {
            expires_at: reading.time("expires_at", item.expires_at),
            occurred_at: reading.time("occurred_at", item.occurred_at),
            program: program.to_owned(),
            member: item.member_id,
            points: item.points,
            remark: item.remark,
            reference: item.reference,
            branch_code: item.branch_code,
            ..AddPoints::default()
        };
        converted.push(bulk_item(reading, command, Command::AddPoints, index, &mut malformed));
    }
    (converted, malformed)
}

pub fn bulk_use_items(program: &str, items: Vec<pb::BulkUseItem>) -> (Vec<UsePoints>, Option<MalformedItem>) {
    let mut converted = Vec::with_capacity(items.len());
    let mut malformed = None;
    for (index, item) in items.into_iter().enumerate() {
        let mut reading = Reading::new();
        let command = UsePoints {
            occurred_at: reading.time("occurred_at", item.occurred_at),
            program: program.to_owned(),
            member: item.member_id,
            points: item.points,
            reward_id: item.reward_id,
            remark: item.remark,
            reference: item.reference,
            branch_code: item.branch_code,
            ..UsePoints::default()
        };
        converted.push(bulk_item(reading, command, Command::UsePoints, index, &mut malformed));
    }
    (converted, malformed)
}

/// One bulk item: noted as `malformed` when it is the first that did not read.
fn bulk_item<C: Clone>(
    reading: Reading,
    item: C,
    wrap: impl FnOnce(C) -> Command,
    index: usize,
    malformed: &mut Option<MalformedItem>,
) -> C {
    if reading.problems.is_empty() || malformed.is_some() {
        return item;
    }
    if let Err(rejection) = reading.into_rejection(item.clone(), wrap) {
        *malformed = Some(MalformedItem { index, rejection });
    }
    item
}

pub fn receipt(receipt: PointsReceipt) -> pb::PointsReceipt {
    pb::PointsReceipt {
        transaction_id: receipt.transaction_id,
        points: signed(receipt.points),
        balance: signed(receipt.balance),
        duplicate: receipt.duplicate,
        replaced: receipt.replaced,
    }
}

pub fn bulk_result(result: BulkResult) -> pb::BulkPointsResult {
    pb::BulkPointsResult {
        applied_count: result.applied_count,
        fail_at: result.fail_at,
        failure: result.failure.map(|rejection| pb::BulkFailure {
            code: rejection.reason().to_owned(),
            message: rejection.to_string(),
            field: rejection.field().to_string(),
        }),
        balances: result
            .balances
            .into_iter()
            .map(|(member_id, points)| pb::MemberBalance { member_id, points: signed(points) })
            .collect(),
        first_transaction_id: result.first_transaction_id,
        last_transaction_id: result.last_transaction_id,
        duplicates: result.duplicates,
    }
}

pub fn member(view: ledger_store::views::MemberView) -> pb::Member {
    pb::Member {
        program_id: view.program,
        member_id: view.member,
        points: signed(view.points),
        lots: view
            .lots
            .into_iter()
            .map(|lot| pb::Lot { points: signed(lot.points), expires_at: lot.expires_at.map(to_timestamp) })
            .collect(),
        qualifying_amount: signed(view.qualifying_amount),
        level: view.level,
        level_name: view.level_name,
        level_pinned: view.level_pinned,
        credits: view.credits.into_iter().map(wallets::member_credit).collect(),
        coupons: view.coupons.into_iter().map(member_coupon).collect(),
        first_seen_at: Some(to_timestamp(view.first_seen_at)),
        last_activity_at: Some(to_timestamp(view.last_activity_at)),
        held_points: signed(view.held_points),
    }
}

pub fn expiring_lot(lot: ledger_store::history::ExpiringLot) -> pb::ExpiringLot {
    pb::ExpiringLot {
        member_id: lot.member,
        points: signed(lot.points),
        expires_at: Some(to_timestamp(lot.expires_at)),
    }
}

pub fn activity(activity: ledger_store::activities::Activity) -> pb::Activity {
    pb::Activity {
        transaction_id: activity.transaction_id,
        kind: activity.kind.as_str().to_owned(),
        member_id: activity.member,
        amount: decimal_text(activity.amount),
        balance_after: decimal_text(activity.balance_after),
        remark: activity.remark,
        private_remark: activity.private_remark,
        reference: activity.reference,
        source_id: activity.source_id,
        actor: activity.actor,
        occurred_at: Some(to_timestamp(activity.occurred_at)),
        recorded_at: Some(to_timestamp(activity.recorded_at)),
        reversed_by: activity.reversed_by,
    }
}

pub fn reversal(reversal: ledger_core::command::Reversal) -> pb::Reversal {
    pb::Reversal {
        transaction_id: reversal.transaction_id,
        reversed_transaction_id: reversal.reversed_transaction_id,
        kind: reversal.kind.as_str().to_owned(),
        member_id: reversal.member,
        amount: decimal_text(reversal.amount),
        balance_after: decimal_text(reversal.balance_after),
        duplicate: reversal.duplicate,
    }
}

pub fn event(logged: &ledger_store::log::LoggedEvent) -> pb::Event {
    let envelope = &logged.envelope;
    pb::Event {
        sequence: envelope.sequence,
        event_id: envelope.event_id.to_string(),
        recorded_at: Some(to_timestamp(envelope.recorded_at)),
        program_id: envelope.event.program.clone(),
        member_id: envelope.event.member.clone(),
        kind: envelope.event.body.name().to_owned(),
        prev_hash: ledger_store::envelope::hex(&envelope.prev_hash),
        hash: ledger_store::envelope::hex(&logged.hash),
        payload_json: serde_json::to_string(&envelope.event).expect("events serialize to JSON"),
    }
}

/// Page tokens are the decimal key to continue after; anything else is bad input.
pub fn page_token(text: &str) -> Result<Option<u64>, Rejection> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| foreign_page_token())
}

/// A page token this server did not make.
pub fn foreign_page_token() -> Rejection {
    Rejection::Invalid { field: FieldPath::new("page_token"), rule: "not a token this server issued".to_owned() }
}

/// `page_size` 0 means the default; above the maximum it is treated as the maximum.
pub fn page_size(requested: u32, default: usize, max: usize) -> usize {
    match usize::try_from(requested) {
        Ok(0) => default,
        Ok(size) => size.min(max),
        Err(_) => max,
    }
}
