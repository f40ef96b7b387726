//! HoldsService (SPEC §14): requests to hold commands and reads, holds back.

use super::{Reading, decimal_text, page_size, page_token, to_timestamp};
use crate::pb;
use ledger_core::command::{CaptureHold, HoldCredits, HoldPoints, VoidHold};
use ledger_core::holds::{HoldState, HoldView};
use ledger_core::limits::{HOLDS_PAGE_SIZE_DEFAULT, HOLDS_PAGE_SIZE_MAX};
use ledger_core::{Command, FieldPath, Rejection};
use ledger_store::views::HoldQuery;
use tonic::Status;

pub fn hold_points(request: pb::HoldPointsRequest) -> Result<HoldPoints, Status> {
    let mut reading = Reading::new();
    let command = HoldPoints {
        expires_at: reading.time("expires_at", request.expires_at),
        program: request.program_id,
        member: request.member_id,
        points: request.points,
        remark: request.remark,
        reference: request.reference,
    };
    reading.finish_command(command, Command::HoldPoints)
}

pub fn hold_credits(request: pb::HoldCreditsRequest) -> Result<HoldCredits, Status> {
    let mut reading = Reading::new();
    let command = HoldCredits {
        expires_at: reading.time("expires_at", request.expires_at),
        amount: reading.required_decimal("amount", &request.amount),
        program: request.program_id,
        member: request.member_id,
        credit_id: request.credit_id,
        remark: request.remark,
        reference: request.reference,
    };
    reading.finish_command(command, Command::HoldCredits)
}

pub fn capture_hold(request: pb::CaptureHoldRequest) -> Result<CaptureHold, Status> {
    let mut reading = Reading::new();
    let command = CaptureHold {
        amount: reading.decimal("amount", &request.amount),
        program: request.program_id,
        hold_id: request.hold_id,
        member: String::new(),
        remark: request.remark,
        reference: request.reference,
    };
    reading.finish_command(command, Command::CaptureHold)
}

pub fn void_hold(request: pb::VoidHoldRequest) -> VoidHold {
    VoidHold { program: request.program_id, hold_id: request.hold_id, member: String::new(), remark: request.remark }
}

pub fn holds_query(request: pb::ListHoldsRequest) -> Result<HoldQuery, Status> {
    let mut reading = Reading::new();
    let after = reading.check(page_token(&request.page_token)).flatten();
    let state = match request.state.map(pb::HoldState::try_from) {
        None | Some(Ok(pb::HoldState::Unspecified)) => None,
        Some(Ok(state)) => Some(domain_state(state)),
        Some(Err(_)) => {
            reading.push(Rejection::Invalid {
                field: FieldPath::new("state"),
                rule: "must be one of HOLD_STATE_PENDING, _CAPTURED, _VOIDED, _EXPIRED".to_owned(),
            });
            None
        }
    };
    if !request.member_id.is_empty() {
        reading.check(ledger_core::validate::id("member_id", &request.member_id));
    }
    reading.finish()?;
    Ok(HoldQuery {
        program: request.program_id,
        member: request.member_id,
        state,
        page_size: page_size(request.page_size, HOLDS_PAGE_SIZE_DEFAULT, HOLDS_PAGE_SIZE_MAX),
        after,
    })
}

/// A page token is the last hold id of the page before; `0` is none of ours.
pub fn holds_page_token(after: Option<u64>) -> String {
    after.map(|after| after.to_string()).unwrap_or_default()
}

pub fn hold(view: HoldView) -> pb::Hold {
    let hold = &view.hold;
    pb::Hold {
        hold_id: view.hold_id.to_string(),
        program_id: view.program.clone(),
        member_id: view.member.clone(),
        kind: if hold.is_points() { "POINTS" } else { "CREDITS" }.to_owned(),
        credit_id: hold.credit_id.clone(),
        amount: decimal_text(hold.decimal(hold.amount)),
        captured: decimal_text(hold.decimal(hold.captured)),
        state: wire_state(hold.state).into(),
        remark: hold.remark.clone(),
        reference: hold.reference.clone(),
        created_at: Some(to_timestamp(hold.created_at)),
        expires_at: Some(to_timestamp(hold.expires_at)),
        transaction_id: view.hold_id,
        settled_transaction_id: hold.settled_transaction_id,
        duplicate: view.duplicate,
    }
}

fn wire_state(state: HoldState) -> pb::HoldState {
    match state {
        HoldState::Pending => pb::HoldState::Pending,
        HoldState::Captured => pb::HoldState::Captured,
        HoldState::Voided => pb::HoldState::Voided,
        HoldState::Expired => pb::HoldState::Expired,
    }
}

fn domain_state(state: pb::HoldState) -> HoldState {
    match state {
        pb::HoldState::Pending | pb::HoldState::Unspecified => HoldState::Pending,
        pb::HoldState::Captured => HoldState::Captured,
        pb::HoldState::Voided => HoldState::Voided,
        pb::HoldState::Expired => HoldState::Expired,
    }
}
