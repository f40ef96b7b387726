//! Proto messages to domain commands and back, by hand: the domain types know
//! nothing of protobuf (STYLE.md). Conversions that can fail name the field.

mod requests;
mod tiers;
mod vouchers;
mod wallets;

pub use requests::*;
pub use tiers::card;
pub use vouchers::{point_statements, report_query, state as voucher_state, voucher_statement, voucher_statements};
pub use wallets::{credits_change, credits_receipt, member_coupon};

use crate::pb;
use crate::status::bad_request;
use ledger_core::Timestamp;
use ledger_core::command::{AddPoints, BulkResult, PointsReceipt, UsePoints};
use rust_decimal::Decimal;
use std::str::FromStr;
use tonic::Status;

/// A request's time: INVALID_ARGUMENT naming `field` when it is outside
/// google.protobuf.Timestamp's range (the rule is the core's, shared with the
/// `ledger` client's flags and files).
pub fn timestamp(field: &str, value: Option<prost_types::Timestamp>) -> Result<Option<Timestamp>, Status> {
    let Some(value) = value else { return Ok(None) };
    match Timestamp::from_unix(value.seconds, i64::from(value.nanos)) {
        Ok(time) => Ok(Some(time)),
        Err(error) => Err(bad_request(field, &format!("{field}: {error}"))),
    }
}

/// A bulk item's timestamp; the field path is only built when there is a value
/// to check, not twice for every item of a thousand.
fn item_timestamp(
    index: usize,
    name: &str,
    value: Option<prost_types::Timestamp>,
) -> Result<Option<Timestamp>, Status> {
    match value {
        None => Ok(None),
        Some(value) => timestamp(&format!("items[{index}].{name}"), Some(value)),
    }
}

pub fn to_timestamp(time: Timestamp) -> prost_types::Timestamp {
    let micros = time.micros();
    let nanos = i32::try_from(micros.rem_euclid(1_000_000) * 1_000).expect("below a second");
    prost_types::Timestamp { seconds: micros.div_euclid(1_000_000), nanos }
}

/// A decimal string: empty means none.
pub fn decimal(field: &str, text: &str) -> Result<Option<Decimal>, Status> {
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
    parsed
        .map(Some)
        .ok_or_else(|| bad_request(field, &format!("{field}: {text:?} is not a decimal number such as \"12.50\"")))
}

/// Decimals print normalized: `"7.25"`, `"10"`.
pub fn decimal_text(value: Decimal) -> String {
    value.normalize().to_string()
}

pub fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub fn add_points(request: pb::AddPointsRequest) -> Result<AddPoints, Status> {
    Ok(AddPoints {
        cost: decimal("cost", &request.cost)?,
        expires_at: timestamp("expires_at", request.expires_at)?,
        occurred_at: timestamp("occurred_at", request.occurred_at)?,
        program: request.program_id,
        member: request.member_id,
        points: request.points,
        formula_id: request.formula_id,
        remark: request.remark,
        private_remark: request.private_remark,
        reference: request.reference,
        branch_code: request.branch_code,
        replace_duplicate: request.replace_duplicate,
    })
}

pub fn use_points(request: pb::UsePointsRequest) -> Result<UsePoints, Status> {
    Ok(UsePoints {
        occurred_at: timestamp("occurred_at", request.occurred_at)?,
        program: request.program_id,
        member: request.member_id,
        points: request.points,
        reward_id: request.reward_id,
        remark: request.remark,
        private_remark: request.private_remark,
        reference: request.reference,
        branch_code: request.branch_code,
        replace_duplicate: request.replace_duplicate,
    })
}

pub fn bulk_add_items(program: &str, items: Vec<pb::BulkAddItem>) -> Result<Vec<AddPoints>, Status> {
    let mut converted = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        converted.push(AddPoints {
            expires_at: item_timestamp(index, "expires_at", item.expires_at)?,
            occurred_at: item_timestamp(index, "occurred_at", item.occurred_at)?,
            program: program.to_owned(),
            member: item.member_id,
            points: item.points,
            remark: item.remark,
            reference: item.reference,
            branch_code: item.branch_code,
            ..AddPoints::default()
        });
    }
    Ok(converted)
}

pub fn bulk_use_items(program: &str, items: Vec<pb::BulkUseItem>) -> Result<Vec<UsePoints>, Status> {
    let mut converted = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        converted.push(UsePoints {
            occurred_at: item_timestamp(index, "occurred_at", item.occurred_at)?,
            program: program.to_owned(),
            member: item.member_id,
            points: item.points,
            reward_id: item.reward_id,
            remark: item.remark,
            reference: item.reference,
            branch_code: item.branch_code,
            ..UsePoints::default()
        });
    }
    Ok(converted)
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
            code: rejection.code().to_owned(),
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
pub fn page_token(text: &str) -> Result<Option<u64>, Status> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| bad_request("page_token", "page_token: not a token this server issued"))
}

/// `page_size` 0 means the default; above the maximum it is treated as the maximum.
pub fn page_size(requested: u32, default: usize, max: usize) -> usize {
    match usize::try_from(requested) {
        Ok(0) => default,
        Ok(size) => size.min(max),
        Err(_) => max,
    }
}
