//! Echoss voucher statements of one program (brand): the latest version of each
//! statement, upserted by (promotion_id, voucher_identifier), the shops that name
//! the redeeming `brand_manager_id`, and the indexes the report reads.
//!
//! A brand imports hundreds of thousands of statements and pages through them in
//! any of four orders with any mix of filters, so the book keeps, beside the
//! records, ordered indexes kept in step on every upsert (`index`): a page walks
//! an index from its cursor instead of sorting the book (`report`). The indexes
//! are derived data: two books are equal when their records and shops are.

mod day;
mod index;
mod report;
mod token;

pub use day::day_range;

use crate::rejection::Rejection;
use crate::time::Timestamp;
use index::Index;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

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

/// Equality and `Debug` look at the records and shops only: the indexes follow from
/// them, but not identically (names are interned in the order they first arrive, which
/// differs between a live book and one restored in another order).
#[derive(Clone, Default)]
pub struct VoucherBook {
    shops: BTreeMap<i64, String>,
    /// By slot. `None` only while a checkpoint is being restored out of order.
    records: Vec<Option<VoucherRecord>>,
    index: Index,
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
    pub fn get(&self, promotion_id: i64, voucher_identifier: &str) -> Option<&VoucherRecord> {
        let slot = self.index.slot_of(promotion_id, voucher_identifier)?;
        Some(self.record(slot))
    }

    /// Inserts or replaces whole; returns the new version.
    pub fn upsert(&mut self, statement: VoucherStatement, updated_at: Timestamp) -> u32 {
        let existing = self.index.slot_of(statement.promotion_id, &statement.voucher_identifier);
        let Some(slot) = existing else {
            let slot = self.next_slot();
            self.place(VoucherRecord { statement, version: 1, updated_at, slot });
            return 1;
        };
        let old = self.take(slot);
        let version = old.version.checked_add(1).expect("a statement has fewer than u32::MAX versions");
        self.place(VoucherRecord { statement, version, updated_at, slot });
        version
    }

    /// Puts back a record read from a checkpoint row, slot and version as they were.
    ///
    /// Rows arrive in key order, not slot order, so the slab may have holes until the
    /// last row is in. A checkpoint holding two rows for one key or one slot is corrupt:
    /// the book would no longer equal the log, so that stops the process.
    pub fn restore(&mut self, record: VoucherRecord) {
        let statement = &record.statement;
        let existing = self.index.slot_of(statement.promotion_id, &statement.voucher_identifier);
        assert!(existing.is_none(), "checkpoint holds two rows for voucher statement {statement:?}");
        let taken = self.records.get(slot_index(record.slot)).is_some_and(Option::is_some);
        assert!(!taken, "checkpoint holds two rows for voucher slot {}", record.slot);
        self.place(record);
    }

    /// Renaming takes effect in the report at once: the shop-name order reads the
    /// current names.
    pub fn define_shop(&mut self, shop_id: i64, name: String) {
        self.index.rename_shop(&self.shops, shop_id, &name);
        self.shops.insert(shop_id, name);
    }

    pub fn shop_name(&self, shop_id: i64) -> Option<&str> {
        self.shops.get(&shop_id).map(String::as_str)
    }

    pub fn shops(&self) -> &BTreeMap<i64, String> {
        &self.shops
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record, in (promotion_id, voucher_identifier) order.
    pub fn records(&self) -> impl Iterator<Item = &VoucherRecord> {
        self.index.slots_by_key().map(|slot| self.record(slot))
    }

    /// One page of the report; a bad page token is `Rejection::Invalid` on `page_token`.
    pub fn report(&self, query: &ReportQuery) -> Result<ReportPage<'_>, Rejection> {
        let page = report::page(&self.index, &self.shops, query)?;
        let records = page.slots.into_iter().map(|slot| self.record(slot)).collect();
        Ok(ReportPage { records, next_page_token: page.next_page_token, total_size: page.total_size })
    }

    /// Panics unless every index agrees with the records: for tests, which build books
    /// both live and from checkpoints and must catch an index that drifted.
    pub fn check_indexes(&self) {
        let mut rebuilt = Index::default();
        for record in self.records.iter().flatten() {
            rebuilt.insert(&self.shops, record.slot, &record.statement);
        }
        self.index.assert_same(&rebuilt);
    }

    /// Slots are never reused, so a new record goes after every slot taken, holes
    /// included; once a checkpoint is fully restored that is the number of records, as
    /// it was live.
    fn next_slot(&self) -> u32 {
        u32::try_from(self.records.len()).expect("a brand holds fewer than u32::MAX voucher statements")
    }

    fn place(&mut self, record: VoucherRecord) {
        let at = slot_index(record.slot);
        if self.records.len() <= at {
            self.records.resize(at + 1, None);
        }
        self.index.insert(&self.shops, record.slot, &record.statement);
        self.records[at] = Some(record);
    }

    fn take(&mut self, slot: u32) -> VoucherRecord {
        let record = self.records[slot_index(slot)].take().expect("an indexed slot holds a record");
        self.index.remove(&self.shops, slot, &record.statement);
        record
    }

    fn record(&self, slot: u32) -> &VoucherRecord {
        self.records[slot_index(slot)].as_ref().expect("an indexed slot holds a record")
    }
}

impl PartialEq for VoucherBook {
    fn eq(&self, other: &VoucherBook) -> bool {
        self.shops == other.shops && self.records == other.records
    }
}

impl Eq for VoucherBook {}

impl fmt::Debug for VoucherBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VoucherBook").field("shops", &self.shops).field("records", &self.records).finish()
    }
}

/// Slots are u32 in records and checkpoints; every target we build for has a wider usize.
fn slot_index(slot: u32) -> usize {
    usize::try_from(slot).expect("usize is at least 32 bits")
}
