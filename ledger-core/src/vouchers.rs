//! Echoss voucher statements of one program (brand): the latest version of each
//! statement, upserted by (promotion_id, voucher_identifier), the shops that name
//! the redeeming `brand_manager_id`, and the indexes the report reads.
//!
//! SKELETON: the bodies are being written; the types and signatures are the
//! interface the rest of the ledger uses.

use crate::rejection::Rejection;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One statement as imported (one version); also the payload of the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherStatement {
    pub promotion_id: i64,
    pub voucher_identifier: String,
    pub voucher_number: String,
    pub voucher_name: String,
    /// The member id.
    pub line_id: String,
    pub sent_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
    /// The shop that redeemed it; 0 = none.
    pub brand_manager_id: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoucherState {
    Issued,
    Used,
    Cancelled,
}

/// The latest version of a statement, as the projection holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoucherRecord {
    pub statement: VoucherStatement,
    /// 1 for the first import, +1 for each replacement.
    pub version: u32,
    /// When this version was recorded.
    pub updated_at: Timestamp,
    /// Where the record sits in the book; stable for its life, kept in checkpoint rows.
    pub slot: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VoucherBook {
    shops: BTreeMap<i64, String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReportOrder {
    #[default]
    SentAt,
    UsedAt,
    CancelledAt,
    ShopName,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportQuery {
    pub promotion_id: Option<i64>,
    pub shop_id: Option<i64>,
    /// Substring of voucher_name; empty = any.
    pub voucher_name: String,
    /// [start, end) of the calendar day, from `day_range`.
    pub sent_on: Option<(Timestamp, Timestamp)>,
    pub used_on: Option<(Timestamp, Timestamp)>,
    pub cancelled_on: Option<(Timestamp, Timestamp)>,
    pub order_by: ReportOrder,
    pub ascending: bool,
    /// 1..=REPORT_PAGE_SIZE_MAX, already clamped by the caller.
    pub page_size: usize,
    /// Opaque; empty = first page.
    pub page_token: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportPage<'b> {
    pub records: Vec<&'b VoucherRecord>,
    /// Empty on the last page.
    pub next_page_token: String,
    pub total_size: u64,
}

impl VoucherStatement {
    pub fn state(&self) -> VoucherState {
        if self.cancelled_at.is_some() {
            VoucherState::Cancelled
        } else if self.used_at.is_some() {
            VoucherState::Used
        } else {
            VoucherState::Issued
        }
    }
}

impl VoucherBook {
    pub fn get(&self, _promotion_id: i64, _voucher_identifier: &str) -> Option<&VoucherRecord> {
        unimplemented!("skeleton")
    }

    /// Inserts or replaces whole; returns the new version.
    pub fn upsert(&mut self, _statement: VoucherStatement, _updated_at: Timestamp) -> u32 {
        unimplemented!("skeleton")
    }

    /// Puts back a record read from a checkpoint row, slot and version as they were.
    pub fn restore(&mut self, _record: VoucherRecord) {
        unimplemented!("skeleton")
    }

    pub fn define_shop(&mut self, shop_id: i64, name: String) {
        self.shops.insert(shop_id, name);
    }

    pub fn shop_name(&self, shop_id: i64) -> Option<&str> {
        self.shops.get(&shop_id).map(String::as_str)
    }

    pub fn shops(&self) -> &BTreeMap<i64, String> {
        &self.shops
    }

    pub fn len(&self) -> usize {
        unimplemented!("skeleton")
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record, in (promotion_id, voucher_identifier) order.
    pub fn records(&self) -> impl Iterator<Item = &VoucherRecord> {
        std::iter::empty()
    }

    /// One page of the report; a bad page token is `Rejection::Invalid` on `page_token`.
    pub fn report(&self, _query: &ReportQuery) -> Result<ReportPage<'_>, Rejection> {
        unimplemented!("skeleton")
    }
}

/// The [start, end) of calendar day `day` (`YYYY-MM-DD`) at UTC offset `utc_offset`
/// (`+08:00`, `-05:30`; empty = `+00:00`); rejections name `field` (or `utc_offset`).
pub fn day_range(_field: &str, _day: &str, _utc_offset: &str) -> Result<(Timestamp, Timestamp), Rejection> {
    unimplemented!("skeleton")
}
