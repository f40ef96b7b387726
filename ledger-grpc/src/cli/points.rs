//! `ledger points add|use`: one member's points, one transaction each.

use super::connect::Server;
use super::output::{Failure, Reply, fields};
use super::time;
use crate::pb;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum PointsCommand {
    /// Adds points (or cost x a formula's multiplier) as one lot.
    Add(AddArgs),
    /// Uses points, or a reward's cost; fails if the balance would go below zero.
    Use(UseArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    #[arg(long, value_name = "ID")]
    pub member: String,
    /// 1 to 1,000,000.
    #[arg(long, value_name = "N", required_unless_present = "cost", conflicts_with = "cost")]
    pub points: Option<i64>,
    /// A decimal amount such as 12.50; the points are floor(cost x the formula's multiplier).
    #[arg(long, value_name = "DECIMAL", requires = "formula")]
    pub cost: Option<String>,
    /// The formula to apply to --cost.
    #[arg(long, value_name = "ID", requires = "cost")]
    pub formula: Option<String>,
    /// Required, non-blank.
    #[arg(long)]
    pub remark: String,
    #[command(flatten)]
    pub common: Common,
    /// When this lot expires (RFC 3339 or Unix seconds); default never.
    #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
    pub expires_at: Option<prost_types::Timestamp>,
}

#[derive(Args, Debug)]
pub struct UseArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    #[arg(long, value_name = "ID")]
    pub member: String,
    /// At least 1; may be left out with --reward to take the reward's cost.
    #[arg(long, value_name = "N", required_unless_present = "reward")]
    pub points: Option<i64>,
    /// A reward the use pays for.
    #[arg(long, value_name = "ID")]
    pub reward: Option<String>,
    /// Required unless --reward is given.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub remark: String,
    #[command(flatten)]
    pub common: Common,
}

/// Flags an add and a use share.
#[derive(Args, Debug)]
pub struct Common {
    /// A remark the member is not shown.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub private_remark: String,
    /// Idempotency key, unique per program: a repeat is answered with the original result.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reference: String,
    #[arg(long, value_name = "CODE", default_value = "", hide_default_value = true)]
    pub branch: String,
    /// Replace the transaction that holds --reference instead of ignoring the repeat.
    #[arg(long, requires = "reference")]
    pub replace_duplicate: bool,
    /// The business time of the change (RFC 3339 or Unix seconds); default when recorded.
    #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
    pub occurred_at: Option<prost_types::Timestamp>,
}

pub async fn run(server: &Server, command: PointsCommand) -> Result<Reply, Failure> {
    let receipt = match command {
        PointsCommand::Add(args) => server.points().add_points(add_request(args)).await?,
        PointsCommand::Use(args) => server.points().use_points(use_request(args)).await?,
    };
    Ok(receipt_reply(&receipt.into_inner()))
}

fn add_request(args: AddArgs) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: args.program,
        member_id: args.member,
        points: args.points.unwrap_or(0),
        cost: args.cost.unwrap_or_default(),
        formula_id: args.formula.unwrap_or_default(),
        remark: args.remark,
        private_remark: args.common.private_remark,
        reference: args.common.reference,
        branch_code: args.common.branch,
        replace_duplicate: args.common.replace_duplicate,
        expires_at: args.expires_at,
        occurred_at: args.common.occurred_at,
    }
}

fn use_request(args: UseArgs) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: args.program,
        member_id: args.member,
        points: args.points.unwrap_or(0),
        reward_id: args.reward.unwrap_or_default(),
        remark: args.remark,
        private_remark: args.common.private_remark,
        reference: args.common.reference,
        branch_code: args.common.branch,
        replace_duplicate: args.common.replace_duplicate,
        occurred_at: args.common.occurred_at,
    }
}

fn receipt_reply(receipt: &pb::PointsReceipt) -> Reply {
    let mut pairs = vec![
        ("transaction_id", receipt.transaction_id.to_string()),
        ("points", receipt.points.to_string()),
        ("balance", receipt.balance.to_string()),
    ];
    // Said only when true: the common case stays three lines.
    if receipt.duplicate {
        pairs.push(("duplicate", "true (the reference was used before; nothing changed)".to_owned()));
    }
    if receipt.replaced {
        pairs.push(("replaced", "true (the earlier transaction was reversed)".to_owned()));
    }
    let json = json!({
        "transaction_id": receipt.transaction_id,
        "points": receipt.points,
        "balance": receipt.balance,
        "duplicate": receipt.duplicate,
        "replaced": receipt.replaced,
    });
    Reply::new(fields(&pairs), json)
}
