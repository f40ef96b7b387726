//! `ledger activities`, `ledger activity` and `ledger verify-log`: the audit
//! trail as the server serves it.

use super::connect::Server;
use super::output::{Failure, Reply, fields, or_dash, table};
use super::time;
use crate::pb;
use clap::{ArgGroup, Args};
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct ActivitiesArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    /// Only this member's activities.
    #[arg(long, value_name = "ID", default_value = "", hide_default_value = true)]
    pub member: String,
    /// Occurred at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
    pub from: Option<prost_types::Timestamp>,
    /// Occurred before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
    pub to: Option<prost_types::Timestamp>,
    /// POINTS, CREDITS, COUPONS, VOUCHERS or TIERS; repeat or separate with commas. Default all.
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Default 10, at most 100.
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub page_size: u32,
    /// The next_page_token of the previous page.
    #[arg(long, value_name = "TOKEN", default_value = "", hide_default_value = true)]
    pub page_token: String,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["transaction_id", "reference"])))]
pub struct ActivityArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    #[arg(long, value_name = "N")]
    pub transaction_id: Option<u64>,
    /// The client's idempotency key the transaction was made with.
    #[arg(long)]
    pub reference: Option<String>,
}

pub async fn list(server: &Server, args: ActivitiesArgs) -> Result<Reply, Failure> {
    let request = pb::ListActivitiesRequest {
        program_id: args.program,
        member_id: args.member,
        from: args.from,
        to: args.to,
        // The server's kinds are upper case; `--kind points` means the same.
        kinds: args.kinds.iter().map(|kind| kind.trim().to_ascii_uppercase()).collect(),
        page_size: args.page_size,
        page_token: args.page_token,
    };
    let page = server.audit().list_activities(request).await?.into_inner();
    let rows: Vec<Vec<String>> = page
        .activities
        .iter()
        .map(|activity| {
            vec![
                activity.transaction_id.to_string(),
                time::show(activity.occurred_at),
                activity.kind.clone(),
                activity.member_id.clone(),
                activity.amount.clone(),
                activity.balance_after.clone(),
                or_dash(&activity.reference),
                or_dash(&activity.remark),
            ]
        })
        .collect();
    let header = ["TXN", "OCCURRED_AT", "KIND", "MEMBER", "AMOUNT", "BALANCE", "REFERENCE", "REMARK"];
    let mut text = table(&header, &rows, "no activities");
    if !page.next_page_token.is_empty() {
        text.push_str(&format!("next_page_token: {}\n", page.next_page_token));
    }
    let json = json!({
        "activities": page.activities.iter().map(activity_json).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    });
    Ok(Reply::new(text, json))
}

pub async fn show(server: &Server, args: ActivityArgs) -> Result<Reply, Failure> {
    let request = pb::GetActivityRequest {
        program_id: args.program,
        transaction_id: args.transaction_id.unwrap_or(0),
        reference: args.reference.unwrap_or_default(),
    };
    let activity = server.audit().get_activity(request).await?.into_inner();
    let text = fields(&[
        ("transaction_id", activity.transaction_id.to_string()),
        ("kind", activity.kind.clone()),
        ("member_id", activity.member_id.clone()),
        ("amount", activity.amount.clone()),
        ("balance_after", activity.balance_after.clone()),
        ("remark", or_dash(&activity.remark)),
        ("private_remark", or_dash(&activity.private_remark)),
        ("reference", or_dash(&activity.reference)),
        ("source_id", or_dash(&activity.source_id)),
        ("actor", activity.actor.clone()),
        ("occurred_at", time::show(activity.occurred_at)),
        ("recorded_at", time::show(activity.recorded_at)),
        ("reversed_by", activity.reversed_by.map_or_else(|| "-".to_owned(), |by| by.to_string())),
    ]);
    Ok(Reply::new(text, activity_json(&activity)))
}

pub async fn verify_log(server: &Server) -> Result<Reply, Failure> {
    let report = server.audit().verify_log(pb::VerifyLogRequest {}).await?.into_inner();
    Ok(verify_reply(report.events, &report.head_hash, report.ok, &report.first_mismatch))
}

/// The reply of a verification, online (VerifyLog) or offline (`ledger verify`):
/// the same words and exit code either way.
pub fn verify_reply(events: u64, head_hash: &str, ok: bool, first_mismatch: &str) -> Reply {
    let verdict = if ok { "ok".to_owned() } else { format!("MISMATCH: {first_mismatch}") };
    let text = fields(&[("events", events.to_string()), ("head_hash", head_hash.to_owned()), ("result", verdict)]);
    let json = json!({ "events": events, "head_hash": head_hash, "ok": ok, "first_mismatch": first_mismatch });
    Reply::new(text, json).with_exit(u8::from(!ok))
}

fn activity_json(activity: &pb::Activity) -> Value {
    json!({
        "transaction_id": activity.transaction_id,
        "kind": activity.kind,
        "member_id": activity.member_id,
        "amount": activity.amount,
        "balance_after": activity.balance_after,
        "remark": activity.remark,
        "private_remark": activity.private_remark,
        "reference": activity.reference,
        "source_id": activity.source_id,
        "actor": activity.actor,
        "occurred_at": time::json(activity.occurred_at),
        "recorded_at": time::json(activity.recorded_at),
        "reversed_by": activity.reversed_by,
    })
}
