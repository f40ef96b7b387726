//! `ledger bulk add|use FILE`: up to 1,000 items in one request. The server
//! applies them in order and stops at the first failing item; this command then
//! prints what applied and where it stopped, and exits with
//! [`EXIT_BULK_FAILED`](super::EXIT_BULK_FAILED) so that scripts notice.

use super::bulk_file::{self, Item, Kind};
use super::connect::Server;
use super::output::{Failure, Reply, fields, or_dash};
use crate::pb;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum BulkCommand {
    /// Adds points for each item (fields: member_id, points, remark, reference, branch_code,
    /// occurred_at, expires_at).
    Add(BulkArgs),
    /// Uses points for each item (fields: member_id, points, remark, reward_id, reference,
    /// branch_code, occurred_at).
    Use(BulkArgs),
}

#[derive(Args, Debug)]
pub struct BulkArgs {
    /// A .json file (an array of items) or a .csv file (a header row of field names). Times are
    /// RFC 3339 or Unix seconds.
    pub file: PathBuf,
    #[arg(long, value_name = "ID")]
    pub program: String,
    /// All-or-nothing: a failing item applies nothing of the batch.
    #[arg(long)]
    pub atomic: bool,
}

/// A bulk request built from its file: read before connecting, so that a bad
/// file is reported without a server.
pub enum Prepared {
    Add(pb::BulkAddPointsRequest),
    Use(pb::BulkUsePointsRequest),
}

pub fn prepare(command: BulkCommand) -> Result<Prepared, Failure> {
    match command {
        BulkCommand::Add(args) => {
            let items = bulk_file::read(&args.file, Kind::Add)?.into_iter().map(add_item).collect();
            Ok(Prepared::Add(pb::BulkAddPointsRequest { program_id: args.program, items, atomic: args.atomic }))
        }
        BulkCommand::Use(args) => {
            let items = bulk_file::read(&args.file, Kind::Use)?.into_iter().map(use_item).collect();
            Ok(Prepared::Use(pb::BulkUsePointsRequest { program_id: args.program, items, atomic: args.atomic }))
        }
    }
}

pub async fn run(server: &Server, prepared: Prepared) -> Result<Reply, Failure> {
    let result = match prepared {
        Prepared::Add(request) => server.points().bulk_add_points(request).await?,
        Prepared::Use(request) => server.points().bulk_use_points(request).await?,
    };
    Ok(result_reply(&result.into_inner()))
}

fn add_item(item: Item) -> pb::BulkAddItem {
    pb::BulkAddItem {
        member_id: item.member_id,
        points: item.points,
        remark: item.remark,
        reference: item.reference,
        branch_code: item.branch_code,
        occurred_at: item.occurred_at,
        expires_at: item.expires_at,
    }
}

fn use_item(item: Item) -> pb::BulkUseItem {
    pb::BulkUseItem {
        member_id: item.member_id,
        points: item.points,
        remark: item.remark,
        reward_id: item.reward_id,
        reference: item.reference,
        branch_code: item.branch_code,
        occurred_at: item.occurred_at,
    }
}

fn result_reply(result: &pb::BulkPointsResult) -> Reply {
    let duplicates: Vec<String> = result.duplicates.iter().map(u32::to_string).collect();
    let mut text = fields(&[
        ("applied_count", result.applied_count.to_string()),
        ("first_transaction_id", result.first_transaction_id.to_string()),
        ("last_transaction_id", result.last_transaction_id.to_string()),
        ("duplicates", if duplicates.is_empty() { "none".to_owned() } else { duplicates.join(", ") }),
    ]);
    text.push_str("balances:\n");
    for balance in &result.balances {
        text.push_str(&format!("  {}: {}\n", balance.member_id, balance.points));
    }
    let failure = result.failure.clone().unwrap_or_default();
    if let Some(fail_at) = result.fail_at {
        text.push_str(&fields(&[
            ("fail_at", fail_at.to_string()),
            ("failure_code", failure.code.clone()),
            ("failure_field", or_dash(&failure.field)),
            ("failure_message", failure.message.clone()),
        ]));
    }
    let json = json!({
        "applied_count": result.applied_count,
        "fail_at": result.fail_at,
        "failure": result.fail_at.map(|_| json!({
            "code": failure.code,
            "message": failure.message,
            "field": failure.field,
        })),
        "balances": result.balances.iter().map(|balance| json!({
            "member_id": balance.member_id,
            "points": balance.points,
        })).collect::<Vec<_>>(),
        "first_transaction_id": result.first_transaction_id,
        "last_transaction_id": result.last_transaction_id,
        "duplicates": result.duplicates,
    });
    let reply = Reply::new(text, json);
    if result.fail_at.is_some() { reply.with_exit(super::EXIT_BULK_FAILED) } else { reply }
}
