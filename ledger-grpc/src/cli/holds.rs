//! `ledger hold points|credits|capture|void|show|list`: holds (SPEC §14), set
//! aside now and captured or voided later. Amounts pass as the text given, so
//! that the server alone decides what a valid amount is.

use super::connect::Server;
use super::output::{Failure, Reply, fields, table};
use super::time;
use crate::pb;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum HoldCommand {
    /// Holds points of a member (soonest-expiring lots first); fails if they are not there.
    Points(HoldPointsArgs),
    /// Holds credits of a member's wallet; fails if they are not there.
    Credits(HoldCreditsArgs),
    /// Spends a pending hold, all of it or --amount of it (the rest goes back).
    Capture(CaptureArgs),
    /// Gives a pending hold back whole.
    Void(VoidArgs),
    /// One hold.
    Show {
        #[arg(long, value_name = "ID")]
        program: String,
        /// The hold id (its transaction id).
        hold: String,
    },
    /// Holds in hold id order, of one member or of every member.
    List {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(long, value_name = "ID", default_value = "", hide_default_value = true)]
        member: String,
        /// Only holds in this state: pending, captured, voided or expired.
        #[arg(long, value_parser = parse_state)]
        state: Option<pb::HoldState>,
        /// Default 10, at most 100.
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        page_size: u32,
        /// The next_page_token of the page before.
        #[arg(long, default_value = "", hide_default_value = true)]
        page_token: String,
    },
}

#[derive(Args, Debug)]
pub struct HoldPointsArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    #[arg(long, value_name = "ID")]
    pub member: String,
    #[arg(long)]
    pub points: i64,
    /// Required, non-blank.
    #[arg(long)]
    pub remark: String,
    /// Idempotency key, unique per program: a repeat answers the hold as it stands.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reference: String,
    /// When the hold lapses (default 15 minutes from now, at most 30 days ahead).
    #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
    pub expires_at: Option<prost_types::Timestamp>,
}

#[derive(Args, Debug)]
pub struct HoldCreditsArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    #[arg(long, value_name = "ID")]
    pub member: String,
    #[arg(long, value_name = "ID")]
    pub credit: String,
    /// A decimal such as 12.50.
    #[arg(long, value_name = "DECIMAL")]
    pub amount: String,
    #[arg(long)]
    pub remark: String,
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reference: String,
    #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
    pub expires_at: Option<prost_types::Timestamp>,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    /// The hold id (its transaction id).
    pub hold: String,
    /// Part of the hold to capture; all of it when absent.
    #[arg(long, value_name = "DECIMAL", default_value = "", hide_default_value = true)]
    pub amount: String,
    #[arg(long, default_value = "", hide_default_value = true)]
    pub remark: String,
    #[arg(long, default_value = "", hide_default_value = true)]
    pub reference: String,
}

#[derive(Args, Debug)]
pub struct VoidArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    /// The hold id (its transaction id).
    pub hold: String,
    #[arg(long, default_value = "", hide_default_value = true)]
    pub remark: String,
}

pub async fn run(server: &Server, command: HoldCommand) -> Result<Reply, Failure> {
    let mut holds = server.holds();
    let hold = match command {
        HoldCommand::Points(args) => {
            let request = pb::HoldPointsRequest {
                program_id: args.program,
                member_id: args.member,
                points: args.points,
                remark: args.remark,
                reference: args.reference,
                expires_at: args.expires_at,
            };
            holds.hold_points(request).await?
        }
        HoldCommand::Credits(args) => {
            let request = pb::HoldCreditsRequest {
                program_id: args.program,
                member_id: args.member,
                credit_id: args.credit,
                amount: args.amount,
                remark: args.remark,
                reference: args.reference,
                expires_at: args.expires_at,
            };
            holds.hold_credits(request).await?
        }
        HoldCommand::Capture(args) => {
            let request = pb::CaptureHoldRequest {
                program_id: args.program,
                hold_id: args.hold,
                amount: args.amount,
                remark: args.remark,
                reference: args.reference,
            };
            holds.capture_hold(request).await?
        }
        HoldCommand::Void(args) => {
            let request = pb::VoidHoldRequest { program_id: args.program, hold_id: args.hold, remark: args.remark };
            holds.void_hold(request).await?
        }
        HoldCommand::Show { program, hold } => {
            holds.get_hold(pb::GetHoldRequest { program_id: program, hold_id: hold }).await?
        }
        HoldCommand::List { program, member, state, page_size, page_token } => {
            let request = pb::ListHoldsRequest {
                program_id: program,
                member_id: member,
                state: state.map(Into::into),
                page_size,
                page_token,
            };
            return Ok(list_reply(&holds.list_holds(request).await?.into_inner()));
        }
    };
    Ok(hold_reply(&hold.into_inner()))
}

fn hold_reply(hold: &pb::Hold) -> Reply {
    let mut pairs = vec![
        ("hold_id", hold.hold_id.clone()),
        ("member_id", hold.member_id.clone()),
        ("kind", hold.kind.clone()),
        ("state", state_name(hold.state()).to_owned()),
        ("amount", hold.amount.clone()),
        ("captured", hold.captured.clone()),
        ("expires_at", time::show(hold.expires_at)),
    ];
    if !hold.credit_id.is_empty() {
        pairs.push(("credit_id", hold.credit_id.clone()));
    }
    if hold.settled_transaction_id != 0 {
        pairs.push(("settled_transaction_id", hold.settled_transaction_id.to_string()));
    }
    if hold.duplicate {
        pairs.push(("duplicate", "true (the reference was used before; nothing changed)".to_owned()));
    }
    Reply::new(fields(&pairs), hold_json(hold))
}

fn list_reply(page: &pb::ListHoldsResponse) -> Reply {
    let rows: Vec<Vec<String>> = page
        .holds
        .iter()
        .map(|hold| {
            vec![
                hold.hold_id.clone(),
                hold.member_id.clone(),
                hold.kind.clone(),
                state_name(hold.state()).to_owned(),
                hold.amount.clone(),
                hold.captured.clone(),
                time::show(hold.expires_at),
            ]
        })
        .collect();
    let mut text = table(&["HOLD", "MEMBER", "KIND", "STATE", "AMOUNT", "CAPTURED", "EXPIRES_AT"], &rows, "no holds");
    if !page.next_page_token.is_empty() {
        text.push_str(&format!("\nnext page: --page-token {}", page.next_page_token));
    }
    let json = json!({
        "holds": page.holds.iter().map(hold_json).collect::<Vec<Value>>(),
        "next_page_token": page.next_page_token,
    });
    Reply::new(text, json)
}

fn hold_json(hold: &pb::Hold) -> Value {
    json!({
        "hold_id": hold.hold_id,
        "program_id": hold.program_id,
        "member_id": hold.member_id,
        "kind": hold.kind,
        "credit_id": hold.credit_id,
        "amount": hold.amount,
        "captured": hold.captured,
        "state": state_name(hold.state()),
        "remark": hold.remark,
        "reference": hold.reference,
        "created_at": time::json(hold.created_at),
        "expires_at": time::json(hold.expires_at),
        "transaction_id": hold.transaction_id,
        "settled_transaction_id": hold.settled_transaction_id,
        "duplicate": hold.duplicate,
    })
}

fn state_name(state: pb::HoldState) -> &'static str {
    match state {
        pb::HoldState::Unspecified => "UNSPECIFIED",
        pb::HoldState::Pending => "PENDING",
        pb::HoldState::Captured => "CAPTURED",
        pb::HoldState::Voided => "VOIDED",
        pb::HoldState::Expired => "EXPIRED",
    }
}

fn parse_state(text: &str) -> Result<pb::HoldState, String> {
    match text.to_ascii_lowercase().as_str() {
        "pending" => Ok(pb::HoldState::Pending),
        "captured" => Ok(pb::HoldState::Captured),
        "voided" => Ok(pb::HoldState::Voided),
        "expired" => Ok(pb::HoldState::Expired),
        _ => Err(format!("{text:?} is not one of pending, captured, voided, expired")),
    }
}
