//! Echoss statements and the voucher report between proto and domain. A bad
//! field of an import item is not answered alone: every item's conversion
//! problems are collected, so that the caller sees them all at once, as the core
//! does for the rules it checks.

use super::{Reading, foreign_page_token, page_size, to_timestamp};
use crate::pb;
use ledger_core::command::{ImportPointStatements, ImportVoucherStatements, PointStatementItem, VoucherImportItem};
use ledger_core::limits::{NAME_BYTES_MAX, PAGE_TOKEN_BYTES_MAX, REPORT_PAGE_SIZE_DEFAULT, REPORT_PAGE_SIZE_MAX};
use ledger_core::validate;
use ledger_core::vouchers::{ReportOrder, ReportQuery, VoucherState, day_range};
use ledger_core::{Command, FieldPath, Rejection, Timestamp};
use ledger_store::views::VoucherView;
use tonic::Status;

/// Converts one timestamp of item `index`, noting a problem instead of failing;
/// the item's path is only built for a time that does not read.
fn item_time(
    reading: &mut Reading,
    index: usize,
    name: &str,
    value: Option<prost_types::Timestamp>,
) -> Option<Timestamp> {
    match super::timestamp(name, value) {
        Ok(time) => time,
        Err(rejection) => {
            reading.push(rejection.under("data", index));
            None
        }
    }
}

pub fn voucher_statements(data: Vec<pb::VoucherStatementData>) -> Result<ImportVoucherStatements, Status> {
    let mut reading = Reading::new();
    let mut items = Vec::with_capacity(data.len());
    for (index, item) in data.into_iter().enumerate() {
        items.push(VoucherImportItem {
            sent_at: item_time(&mut reading, index, "sent_at", item.sent_at),
            used_at: item_time(&mut reading, index, "used_at", item.used_at),
            cancelled_at: item_time(&mut reading, index, "cancelled_at", item.cancelled_at),
            brand_id: item.brand_id,
            promotion_id: item.promotion_id,
            voucher_identifier: item.voucher_identifier,
            voucher_number: item.voucher_number,
            voucher_name: item.voucher_name,
            line_id: item.line_id,
            brand_manager_id: item.brand_manager_id,
        });
    }
    reading.finish_command(ImportVoucherStatements { items }, Command::ImportVoucherStatements)
}

pub fn point_statements(data: Vec<pb::PointStatementData>) -> Result<ImportPointStatements, Status> {
    let mut reading = Reading::new();
    let mut items = Vec::with_capacity(data.len());
    for (index, item) in data.into_iter().enumerate() {
        items.push(PointStatementItem {
            changed_at: item_time(&mut reading, index, "changed_at", item.changed_at),
            brand_id: item.brand_id,
            promotion_id: item.promotion_id,
            line_id: item.line_id,
            change_reason: item.change_reason,
            point_change_record: item.point_change_record,
            brand_manager_id: item.brand_manager_id,
            reference: item.reference,
        });
    }
    reading.finish_command(ImportPointStatements { items }, Command::ImportPointStatements)
}

pub fn report_query(request: &pb::ListVoucherStatementsRequest) -> Result<ReportQuery, Status> {
    let mut reading = Reading::new();
    reading.check(validate::max_bytes("voucher_name", &request.voucher_name, NAME_BYTES_MAX));
    if request.page_token.len() > PAGE_TOKEN_BYTES_MAX {
        reading.push(foreign_page_token());
    }
    let mut day = |field: &str, text: &str| -> Option<(Timestamp, Timestamp)> {
        if text.trim().is_empty() {
            return None;
        }
        reading.check(day_range(field, text.trim(), request.utc_offset.trim()))
    };
    let (sent_on, used_on, cancelled_on) = (
        day("sent_on", &request.sent_on),
        day("used_on", &request.used_on),
        day("cancelled_on", &request.cancelled_on),
    );
    let order_by = match request.order_by.trim() {
        "" | "sent_at" => ReportOrder::SentAt,
        "used_at" => ReportOrder::UsedAt,
        "cancelled_at" => ReportOrder::CancelledAt,
        "shop_name" => ReportOrder::ShopName,
        other => {
            reading.push(Rejection::Invalid {
                field: FieldPath::new("order_by"),
                rule: format!("must be sent_at, used_at, cancelled_at or shop_name, got {other:?}"),
            });
            ReportOrder::SentAt
        }
    };
    reading.finish()?;
    Ok(ReportQuery {
        promotion_id: request.promotion_id,
        shop_id: request.shop_id,
        voucher_name: request.voucher_name.clone(),
        sent_on,
        used_on,
        cancelled_on,
        order_by,
        ascending: request.ascending,
        page_size: page_size(request.page_size, REPORT_PAGE_SIZE_DEFAULT, REPORT_PAGE_SIZE_MAX),
        page_token: request.page_token.clone(),
    })
}

pub fn state(state: VoucherState) -> pb::VoucherState {
    match state {
        VoucherState::Issued => pb::VoucherState::Issued,
        VoucherState::Used => pb::VoucherState::Used,
        VoucherState::Cancelled => pb::VoucherState::Cancelled,
    }
}

pub fn voucher_statement(view: VoucherView) -> pb::VoucherStatement {
    let statement = view.record.statement;
    pb::VoucherStatement {
        brand_id: view.brand_id,
        promotion_id: statement.promotion_id,
        voucher_identifier: statement.voucher_identifier,
        voucher_number: statement.voucher_number,
        voucher_name: statement.voucher_name,
        line_id: statement.line_id,
        sent_at: Some(to_timestamp(statement.sent_at)),
        used_at: statement.used_at.map(to_timestamp),
        cancelled_at: statement.cancelled_at.map(to_timestamp),
        brand_manager_id: statement.brand_manager_id,
        shop_name: view.shop_name,
        state: state(view.state).into(),
        version: view.record.version,
        updated_at: Some(to_timestamp(view.record.updated_at)),
    }
}
