//! The indexes a voucher book keeps beside its records, so that a report page costs
//! a walk of a few index entries rather than a sort of every statement.
//!
//! Each is keyed by slot, which never changes for a statement's life, so an upsert
//! removes the old version's keys and inserts the new ones without touching any
//! other statement. Every key ends in the slot, so no two statements tie.

use super::VoucherStatement;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

const LIVE: u8 = 1;
const HAS_USED: u8 = 2;
const HAS_CANCELLED: u8 = 4;

/// What the report's filters test, per slot, in 48 bytes: a count over 100,000
/// statements reads 5 MB of plain integers instead of chasing each record's strings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Row {
    pub promotion_id: i64,
    pub shop_id: i64,
    pub sent_at: i64,
    used_at: i64,
    cancelled_at: i64,
    pub name_id: u32,
    flags: u8,
}

/// The order of one time a statement may lack (used, cancelled). Those lacking it
/// come last in either direction, by sent time, so they are kept apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct TimeIndex {
    /// (time, sent_at, slot): ties on the time go by sent time, as the report orders.
    pub present: BTreeSet<(Timestamp, Timestamp, u32)>,
    /// (sent_at, slot).
    pub missing: BTreeSet<(Timestamp, u32)>,
}

/// Voucher names interned: a brand has few distinct names (a few dozen) on many
/// statements, so a substring filter tests each name once, and a name-only filter's
/// total is a sum of counts.
#[derive(Clone, Debug, Default)]
pub(super) struct Names {
    ids: BTreeMap<String, u32>,
    /// By id. An id is never reused, even when its count drops to 0.
    texts: Vec<String>,
    /// Live statements by id.
    counts: Vec<u64>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Index {
    count: usize,
    /// promotion_id → voucher_identifier → slot: the upsert key, and the statements of
    /// one promotion for a promotion filter.
    keys: BTreeMap<i64, BTreeMap<String, u32>>,
    /// By slot; a free slot's row is not live.
    rows: Vec<Row>,
    pub names: Names,
    /// (sent_at, slot).
    pub sent: BTreeSet<(Timestamp, u32)>,
    pub used: TimeIndex,
    pub cancelled: TimeIndex,
    /// shop_id → (sent_at, slot), shop 0 included: the shop-name order walks shop by
    /// shop, and a shop filter reads one set.
    pub by_shop: BTreeMap<i64, BTreeSet<(Timestamp, u32)>>,
    /// (name the report sorts by, shop_id) of every key of `by_shop`. A rename moves
    /// one entry here; no statement is reindexed.
    pub shop_order: BTreeSet<(String, i64)>,
}

impl Row {
    fn new(statement: &VoucherStatement, name_id: u32) -> Row {
        let mut flags = LIVE;
        if statement.used_at.is_some() {
            flags |= HAS_USED;
        }
        if statement.cancelled_at.is_some() {
            flags |= HAS_CANCELLED;
        }
        Row {
            promotion_id: statement.promotion_id,
            shop_id: statement.brand_manager_id,
            sent_at: statement.sent_at.micros(),
            used_at: statement.used_at.map_or(0, Timestamp::micros),
            cancelled_at: statement.cancelled_at.map_or(0, Timestamp::micros),
            name_id,
            flags,
        }
    }

    pub fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }

    pub fn used_at(&self) -> Option<i64> {
        self.has_used().then_some(self.used_at)
    }

    pub fn cancelled_at(&self) -> Option<i64> {
        self.has_cancelled().then_some(self.cancelled_at)
    }

    pub fn has_used(&self) -> bool {
        self.flags & HAS_USED != 0
    }

    pub fn has_cancelled(&self) -> bool {
        self.flags & HAS_CANCELLED != 0
    }

    /// The used time, or 0 when there is none; for tests that check `has_used` too.
    pub fn used_at_or_zero(&self) -> i64 {
        self.used_at
    }

    pub fn cancelled_at_or_zero(&self) -> i64 {
        self.cancelled_at
    }
}

impl TimeIndex {
    fn insert(&mut self, time: Option<Timestamp>, sent_at: Timestamp, slot: u32) {
        let inserted = match time {
            Some(time) => self.present.insert((time, sent_at, slot)),
            None => self.missing.insert((sent_at, slot)),
        };
        assert!(inserted, "slot {slot} indexed twice");
    }

    fn remove(&mut self, time: Option<Timestamp>, sent_at: Timestamp, slot: u32) {
        let removed = match time {
            Some(time) => self.present.remove(&(time, sent_at, slot)),
            None => self.missing.remove(&(sent_at, slot)),
        };
        assert!(removed, "slot {slot} was not indexed");
    }
}

impl Names {
    fn add(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            self.counts[name_index(id)] += 1;
            return id;
        }
        let id = u32::try_from(self.texts.len()).expect("fewer than u32::MAX distinct voucher names");
        self.ids.insert(text.to_owned(), id);
        self.texts.push(text.to_owned());
        self.counts.push(1);
        id
    }

    fn remove(&mut self, id: u32) {
        let count = &mut self.counts[name_index(id)];
        *count = count.checked_sub(1).expect("a removed name was counted");
    }

    /// (id, name, live statements) of every name some statement carries.
    pub fn live(&self) -> impl Iterator<Item = (u32, &str, u64)> {
        let ids = 0..u32::try_from(self.texts.len()).expect("ids are u32");
        ids.zip(&self.texts)
            .zip(&self.counts)
            .filter(|(_, count)| **count > 0)
            .map(|((id, text), count)| (id, text.as_str(), *count))
    }

    pub fn id_bound(&self) -> usize {
        self.texts.len()
    }

    fn text(&self, id: u32) -> &str {
        &self.texts[name_index(id)]
    }
}

pub(super) fn name_index(id: u32) -> usize {
    usize::try_from(id).expect("usize is at least 32 bits")
}

/// The name a shop sorts by: statements that name no shop (0) or a shop never
/// defined sort as the empty name.
pub(super) fn sort_name(shops: &BTreeMap<i64, String>, shop_id: i64) -> &str {
    if shop_id == 0 {
        return "";
    }
    shops.get(&shop_id).map_or("", String::as_str)
}

impl Index {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn slot_of(&self, promotion_id: i64, voucher_identifier: &str) -> Option<u32> {
        self.keys.get(&promotion_id)?.get(voucher_identifier).copied()
    }

    pub fn slots_by_key(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.values().flat_map(|identifiers| identifiers.values().copied())
    }

    /// The slots of one promotion; `None` when it has no statements.
    pub fn promotion(&self, promotion_id: i64) -> Option<&BTreeMap<String, u32>> {
        self.keys.get(&promotion_id)
    }

    /// Every slot ever given out, live or not.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn row(&self, slot: u32) -> &Row {
        &self.rows[super::slot_index(slot)]
    }

    pub fn insert(&mut self, shops: &BTreeMap<i64, String>, slot: u32, statement: &VoucherStatement) {
        let identifiers = self.keys.entry(statement.promotion_id).or_default();
        let previous = identifiers.insert(statement.voucher_identifier.clone(), slot);
        assert!(previous.is_none(), "two slots for one statement key");
        let name_id = self.names.add(&statement.voucher_name);
        let at = super::slot_index(slot);
        if self.rows.len() <= at {
            self.rows.resize(at + 1, Row::default());
        }
        self.rows[at] = Row::new(statement, name_id);
        let sent_at = statement.sent_at;
        assert!(self.sent.insert((sent_at, slot)), "slot {slot} indexed twice");
        self.used.insert(statement.used_at, sent_at, slot);
        self.cancelled.insert(statement.cancelled_at, sent_at, slot);
        let shop_id = statement.brand_manager_id;
        let shop = self.by_shop.entry(shop_id).or_default();
        if shop.is_empty() {
            self.shop_order.insert((sort_name(shops, shop_id).to_owned(), shop_id));
        }
        shop.insert((sent_at, slot));
        self.count += 1;
    }

    pub fn remove(&mut self, shops: &BTreeMap<i64, String>, slot: u32, statement: &VoucherStatement) {
        let identifiers = self.keys.get_mut(&statement.promotion_id).expect("a removed statement was keyed");
        assert_eq!(identifiers.remove(&statement.voucher_identifier), Some(slot), "key and slot disagree");
        if identifiers.is_empty() {
            self.keys.remove(&statement.promotion_id);
        }
        let row = std::mem::take(&mut self.rows[super::slot_index(slot)]);
        self.names.remove(row.name_id);
        let sent_at = statement.sent_at;
        assert!(self.sent.remove(&(sent_at, slot)), "slot {slot} was not indexed");
        self.used.remove(statement.used_at, sent_at, slot);
        self.cancelled.remove(statement.cancelled_at, sent_at, slot);
        let shop_id = statement.brand_manager_id;
        let shop = self.by_shop.get_mut(&shop_id).expect("a removed statement's shop was indexed");
        assert!(shop.remove(&(sent_at, slot)), "slot {slot} was not indexed by shop");
        if shop.is_empty() {
            self.by_shop.remove(&shop_id);
            assert!(self.shop_order.remove(&(sort_name(shops, shop_id).to_owned(), shop_id)), "shop order drifted");
        }
        self.count -= 1;
    }

    /// Called before `shops` takes the new name, so the old entry can be found.
    pub fn rename_shop(&mut self, shops: &BTreeMap<i64, String>, shop_id: i64, name: &str) {
        if shop_id == 0 || !self.by_shop.contains_key(&shop_id) {
            return;
        }
        let old = sort_name(shops, shop_id);
        assert!(self.shop_order.remove(&(old.to_owned(), shop_id)), "shop order drifted");
        self.shop_order.insert((name.to_owned(), shop_id));
    }

    /// Panics where `self` and `other` index different statements; name ids may differ,
    /// as they are given in arrival order.
    pub fn assert_same(&self, other: &Index) {
        assert_eq!(self.count, other.count, "count");
        assert_eq!(self.keys, other.keys, "keys");
        assert_eq!(self.sent, other.sent, "sent index");
        assert_eq!(self.used, other.used, "used index");
        assert_eq!(self.cancelled, other.cancelled, "cancelled index");
        assert_eq!(self.by_shop, other.by_shop, "shop index");
        assert_eq!(self.shop_order, other.shop_order, "shop order");
        let names = |index: &Index| -> BTreeMap<String, u64> {
            index.names.live().map(|(_, text, count)| (text.to_owned(), count)).collect()
        };
        assert_eq!(names(self), names(other), "name counts");
        let live = |index: &Index| -> Vec<(usize, Row, String)> {
            let rows = index.rows.iter().enumerate().filter(|(_, row)| row.is_live());
            rows.map(|(at, row)| (at, Row { name_id: 0, ..*row }, index.names.text(row.name_id).to_owned())).collect()
        };
        assert_eq!(live(self), live(other), "rows");
    }
}
