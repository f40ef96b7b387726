//! `ledger credit define` and `ledger credits add|use`: stored-value wallets,
//! exact decimals per member and credit type. Amounts pass as the text given,
//! so that the server alone decides what a valid decimal is.

use super::connect::Server;
use super::output::{Failure, Reply, fields};
use crate::pb;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum CreditCommand {
    /// Defines (or redefines) a credit type of a program.
    Define {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(long, value_name = "ID")]
        credit: String,
        #[arg(long)]
        name: String,
        /// What amounts are counted in, shown beside them, e.g. TWD.
        #[arg(long)]
        unit: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CreditsCommand {
    /// Adds credits to a member's wallet.
    Add(ChangeArgs),
    /// Uses credits; fails if the balance would go below zero.
    Use(ChangeArgs),
}

#[derive(Args, Debug)]
pub struct ChangeArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    #[arg(long, value_name = "ID")]
    pub member: String,
    /// The credit type.
    #[arg(long, value_name = "ID")]
    pub credit: String,
    /// A decimal such as 12.50: more than 0, at most 1,000,000, at most 4 decimal places.
    #[arg(long, value_name = "DECIMAL")]
    pub amount: String,
    /// Required, non-blank.
    #[arg(long)]
    pub remark: String,
    /// Idempotency key, unique per program: a repeat is answered with the original result.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reference: String,
}

pub async fn run_define(server: &Server, command: CreditCommand) -> Result<Reply, Failure> {
    match command {
        CreditCommand::Define { program, credit, name, unit } => {
            let request = pb::DefineCreditRequest { program_id: program, credit_id: credit, name, unit };
            let credit = server.credits().define_credit(request).await?.into_inner();
            let text = fields(&[
                ("credit_id", credit.credit_id.clone()),
                ("name", credit.name.clone()),
                ("unit", credit.unit.clone()),
            ]);
            let json = json!({
                "program_id": credit.program_id,
                "credit_id": credit.credit_id,
                "name": credit.name,
                "unit": credit.unit,
            });
            Ok(Reply::new(text, json))
        }
    }
}

pub async fn run(server: &Server, command: CreditsCommand) -> Result<Reply, Failure> {
    let receipt = match command {
        CreditsCommand::Add(args) => {
            let request = pb::AddCreditsRequest {
                program_id: args.program,
                member_id: args.member,
                credit_id: args.credit,
                amount: args.amount,
                remark: args.remark,
                reference: args.reference,
            };
            server.credits().add_credits(request).await?
        }
        CreditsCommand::Use(args) => {
            let request = pb::UseCreditsRequest {
                program_id: args.program,
                member_id: args.member,
                credit_id: args.credit,
                amount: args.amount,
                remark: args.remark,
                reference: args.reference,
            };
            server.credits().use_credits(request).await?
        }
    };
    Ok(receipt_reply(&receipt.into_inner()))
}

fn receipt_reply(receipt: &pb::CreditsReceipt) -> Reply {
    let mut pairs = vec![
        ("transaction_id", receipt.transaction_id.to_string()),
        ("amount", receipt.amount.clone()),
        ("balance", receipt.balance.clone()),
    ];
    // Said only when true, as for points.
    if receipt.duplicate {
        pairs.push(("duplicate", "true (the reference was used before; nothing changed)".to_owned()));
    }
    let json = json!({
        "transaction_id": receipt.transaction_id,
        "amount": receipt.amount,
        "balance": receipt.balance,
        "duplicate": receipt.duplicate,
    });
    Reply::new(fields(&pairs), json)
}
