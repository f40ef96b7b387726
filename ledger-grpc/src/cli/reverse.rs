//! `ledger reverse TX`: undoes one transaction by its id (SPEC §15).

use super::connect::Server;
use super::output::{Failure, Reply, fields};
use crate::pb;
use clap::Args;
use serde_json::json;

#[derive(Args, Debug)]
pub struct ReverseArgs {
    /// The transaction id to undo: a points add or use (a bulk's item by its own
    /// id), a credits add or use, a coupon grant or use.
    #[arg(value_name = "TX")]
    pub transaction_id: u64,
    #[arg(long, value_name = "ID")]
    pub program: String,
    /// Why; shown on the reversal's activity.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub remark: String,
    /// Idempotency key, unique per program: a repeat is answered with the original result.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reference: String,
}

pub async fn run(server: &Server, args: ReverseArgs) -> Result<Reply, Failure> {
    let request = pb::ReverseTransactionRequest {
        program_id: args.program,
        transaction_id: args.transaction_id,
        remark: args.remark,
        reference: args.reference,
    };
    let reversal = server.transactions().reverse_transaction(request).await?.into_inner();
    let text = fields(&[
        ("transaction_id", reversal.transaction_id.to_string()),
        ("reversed_transaction_id", reversal.reversed_transaction_id.to_string()),
        ("kind", reversal.kind.clone()),
        ("member_id", reversal.member_id.clone()),
        ("amount", reversal.amount.clone()),
        ("balance_after", reversal.balance_after.clone()),
        ("duplicate", reversal.duplicate.to_string()),
    ]);
    let json = json!({
        "transaction_id": reversal.transaction_id,
        "reversed_transaction_id": reversal.reversed_transaction_id,
        "kind": reversal.kind,
        "member_id": reversal.member_id,
        "amount": reversal.amount,
        "balance_after": reversal.balance_after,
        "duplicate": reversal.duplicate,
    });
    Ok(Reply::new(text, json))
}
