//! One page of the voucher report, served from the book's indexes in one of two ways.
//!
//! - Walk: when the total is known without a pass (no filter, or only one promotion,
//!   one shop or a name filter, whose totals the indexes count), and matches are
//!   dense enough, walk the index of the requested order from the cursor and keep
//!   the rows that pass. A page costs about page_size index steps. Matches bunched
//!   far from the cursor could make the walk long, so it gives up after
//!   `REPORT_WALK_STEPS_MAX` steps and the page is scanned instead.
//! - Scan: any other filter must be counted anyway, so one pass over the smallest set
//!   of candidates the filters allow (one promotion, one shop, one day of an ordered
//!   time, or else the whole row column) both counts the matches and keeps the
//!   page_size + 1 first after the cursor in a bounded heap.
//!
//! Both place rows by the same total order (`Position`), so a walk and a scan give
//! the same page, and a page's token resumes exactly after its last row.

use super::index::{Index, Row, TimeIndex, name_index, sort_name};
use super::token::{self, Cursor};
use super::{ReportOrder, ReportQuery};
use crate::limits::{REPORT_PAGE_SIZE_MAX, REPORT_WALK_STEPS_MAX};
use crate::rejection::Rejection;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::ops::Bound::{Excluded, Unbounded};

pub(super) struct Page {
    pub slots: Vec<u32>,
    pub next_page_token: String,
    pub total_size: u64,
}

type Slots<'i> = Box<dyn Iterator<Item = u32> + 'i>;

pub(super) fn page(index: &Index, shops: &BTreeMap<i64, String>, query: &ReportQuery) -> Result<Page, Rejection> {
    let cursor = token::parse(&query.page_token, query.order_by, query.ascending)?;
    let page_size = query.page_size.clamp(1, REPORT_PAGE_SIZE_MAX);
    let filter = Filter::new(index, query);
    let walked = filter.known_total(index).and_then(|total| {
        if total == 0 {
            return Some((Vec::new(), 0));
        }
        if !worth_walking(index, total, page_size + 1) {
            return None;
        }
        walk(index, &filter, query, cursor.as_ref(), page_size + 1).map(|slots| (slots, total))
    });
    let (mut slots, total_size) =
        walked.unwrap_or_else(|| scan(index, shops, &filter, query, cursor.as_ref(), page_size + 1));
    let mut next_page_token = String::new();
    if slots.len() > page_size {
        slots.truncate(page_size);
        let last = *slots.last().expect("page_size is at least 1");
        next_page_token = token::encode(query.order_by, query.ascending, &cursor_of(index, shops, query, last));
    }
    Ok(Page { slots, next_page_token, total_size })
}

/// The query's filters, in the form a row is tested against.
struct Filter {
    promotion_id: Option<i64>,
    shop_id: Option<i64>,
    /// By name id: whether the name contains the wanted substring. `None` = any name.
    names: Option<Vec<bool>>,
    /// Statements whose name matches, when `names` is set.
    named_total: u64,
    sent_on: Option<(i64, i64)>,
    used_on: Option<(i64, i64)>,
    cancelled_on: Option<(i64, i64)>,
}

impl Filter {
    fn new(index: &Index, query: &ReportQuery) -> Filter {
        let mut names = None;
        let mut named_total = 0;
        if !query.voucher_name.is_empty() {
            let mut matched = vec![false; index.names.id_bound()];
            for (id, text, count) in index.names.live() {
                if text.contains(query.voucher_name.as_str()) {
                    matched[name_index(id)] = true;
                    named_total += count;
                }
            }
            names = Some(matched);
        }
        let micros = |range: Option<(Timestamp, Timestamp)>| range.map(|(start, end)| (start.micros(), end.micros()));
        Filter {
            promotion_id: query.promotion_id,
            shop_id: query.shop_id,
            names,
            named_total,
            sent_on: micros(query.sent_on),
            used_on: micros(query.used_on),
            cancelled_on: micros(query.cancelled_on),
        }
    }

    /// The total without a pass, when at most one of promotion, shop and name filters
    /// (each keeps its count) and no day does.
    fn known_total(&self, index: &Index) -> Option<u64> {
        if self.sent_on.is_some() || self.used_on.is_some() || self.cancelled_on.is_some() {
            return None;
        }
        let count = |len: usize| u64::try_from(len).expect("u64 holds usize");
        match (self.promotion_id, self.shop_id, &self.names) {
            (None, None, None) => Some(count(index.len())),
            (Some(promotion_id), None, None) => Some(count(index.promotion(promotion_id).map_or(0, BTreeMap::len))),
            (None, Some(shop_id), None) => Some(count(index.by_shop.get(&shop_id).map_or(0, BTreeSet::len))),
            (None, None, Some(_)) => Some(self.named_total),
            _ => None,
        }
    }

    /// Evaluates every test and combines them with `&`, without short cuts: whether a
    /// row passes is as good as random, and a branch per test mispredicted on a scan of
    /// every row costs more than doing all the tests.
    #[inline(always)]
    fn matches(&self, row: &Row) -> bool {
        let promotion = self.promotion_id.is_none_or(|promotion_id| row.promotion_id == promotion_id);
        let shop = self.shop_id.is_none_or(|shop_id| row.shop_id == shop_id);
        let name = self.names.as_ref().is_none_or(|names| names.get(name_index(row.name_id)) == Some(&true));
        let sent = within(self.sent_on, true, row.sent_at);
        let used = within(self.used_on, row.has_used(), row.used_at_or_zero());
        let cancelled = within(self.cancelled_on, row.has_cancelled(), row.cancelled_at_or_zero());
        row.is_live() & promotion & shop & name & sent & used & cancelled
    }
}

/// A statement lacking the time never falls within a day of it. The range is the
/// query's, so testing it first is a branch predicted right on every row.
#[inline(always)]
fn within(range: Option<(i64, i64)>, has: bool, time: i64) -> bool {
    range.is_none_or(|(start, end)| has & (start <= time) & (time < end))
}

/// Whether `want` rows are likely found within half the step budget, were matches
/// spread evenly over the index: a sparse filter goes straight to a scan of its own
/// (small) set instead of walking first and scanning after.
fn worth_walking(index: &Index, total: u64, want: usize) -> bool {
    let total = usize::try_from(total).expect("usize holds a count of slots");
    want.saturating_mul(index.len()) <= total.saturating_mul(REPORT_WALK_STEPS_MAX / 2)
}

/// `None` when the walk ran out of steps before it found `want` rows or the end.
fn walk(index: &Index, filter: &Filter, query: &ReportQuery, cursor: Option<&Cursor>, want: usize) -> Option<Vec<u32>> {
    let mut slots = Vec::with_capacity(want);
    for (step, slot) in ordered(index, query, cursor).enumerate() {
        if step == REPORT_WALK_STEPS_MAX {
            return None;
        }
        if filter.matches(index.row(slot)) {
            slots.push(slot);
            if slots.len() == want {
                break;
            }
        }
    }
    Some(slots)
}

/// Every slot in report order, from just after the cursor.
fn ordered<'i>(index: &'i Index, query: &ReportQuery, cursor: Option<&Cursor>) -> Slots<'i> {
    let ascending = query.ascending;
    match query.order_by {
        ReportOrder::SentAt => {
            let from = cursor.map(|cursor| (Timestamp(cursor.sent_at), cursor.slot));
            Box::new(from_key(&index.sent, from.as_ref(), ascending).map(|&(_, slot)| slot))
        }
        ReportOrder::UsedAt => by_time(&index.used, cursor, ascending),
        ReportOrder::CancelledAt => by_time(&index.cancelled, cursor, ascending),
        ReportOrder::ShopName => by_shop(index, cursor, ascending),
    }
}

/// Statements with the time first, then those without, in either direction.
fn by_time<'i>(times: &'i TimeIndex, cursor: Option<&Cursor>, ascending: bool) -> Slots<'i> {
    let missing = |from: Option<&(Timestamp, u32)>| from_key(&times.missing, from, ascending).map(|&(_, slot)| slot);
    let Some(cursor) = cursor else {
        let present = from_key(&times.present, None, ascending).map(|&(_, _, slot)| slot);
        return Box::new(present.chain(missing(None)));
    };
    let sent_at = Timestamp(cursor.sent_at);
    match cursor.time {
        Some(time) => {
            let from = (Timestamp(time), sent_at, cursor.slot);
            let present = from_key(&times.present, Some(&from), ascending).map(|&(_, _, slot)| slot);
            Box::new(present.chain(missing(None)))
        }
        None => Box::new(missing(Some(&(sent_at, cursor.slot)))),
    }
}

/// Shop by shop in (name, id) order. A cursor whose shop has since been renamed
/// resumes at the shops that sort after its old (name, id), as a scan would.
fn by_shop<'i>(index: &'i Index, cursor: Option<&Cursor>, ascending: bool) -> Slots<'i> {
    let sets = &index.by_shop;
    let shop_slots =
        move |(_, shop_id): &(String, i64)| from_key(&sets[shop_id], None, ascending).map(|&(_, slot)| slot);
    let Some(cursor) = cursor else {
        return Box::new(from_key(&index.shop_order, None, ascending).flat_map(shop_slots));
    };
    let rest = from_key(&index.shop_order, Some(&cursor.shop), ascending).flat_map(shop_slots);
    if !index.shop_order.contains(&cursor.shop) {
        return Box::new(rest);
    }
    let from = (Timestamp(cursor.sent_at), cursor.slot);
    let head = from_key(&sets[&cursor.shop.1], Some(&from), ascending).map(|&(_, slot)| slot);
    Box::new(head.chain(rest))
}

/// The keys after `from` (not including it) in the direction asked.
fn from_key<'s, K: Ord>(
    set: &'s BTreeSet<K>,
    from: Option<&K>,
    ascending: bool,
) -> Box<dyn Iterator<Item = &'s K> + 's> {
    match (from, ascending) {
        (None, true) => Box::new(set.iter()),
        (None, false) => Box::new(set.iter().rev()),
        (Some(from), true) => Box::new(set.range((Excluded(from), Unbounded))),
        (Some(from), false) => Box::new(set.range((Unbounded, Excluded(from))).rev()),
    }
}

/// Counts every match among the candidates and keeps the `want` first after the
/// cursor; a bounded max-heap holds them, so a pass costs one comparison per match.
fn scan(
    index: &Index,
    shops: &BTreeMap<i64, String>,
    filter: &Filter,
    query: &ReportQuery,
    cursor: Option<&Cursor>,
    want: usize,
) -> (Vec<u32>, u64) {
    let placer = Placer::new(index, shops, query);
    let after = cursor.map(|cursor| placer.of_cursor(index, cursor));
    let mut pass = Pass { filter, placer, after, want, heap: BinaryHeap::with_capacity(want + 1), total: 0 };
    match candidates(index, filter) {
        // Monomorphic, so that the pass over every row compiles to a tight loop.
        Candidates::All => (0_u32..).zip(index.rows()).for_each(|(slot, row)| pass.visit(row, slot)),
        Candidates::Slots(slots) => slots.for_each(|slot| pass.visit(index.row(slot), slot)),
    }
    (pass.heap.into_sorted_vec().into_iter().map(|position| position.slot).collect(), pass.total)
}

struct Pass<'f> {
    filter: &'f Filter,
    placer: Placer,
    after: Option<Position>,
    want: usize,
    heap: BinaryHeap<Position>,
    total: u64,
}

impl Pass<'_> {
    /// Inlined into the loop over rows: most rows fail the filter or place after the
    /// page, and those should cost a few compares, not a call.
    #[inline(always)]
    fn visit(&mut self, row: &Row, slot: u32) {
        if !self.filter.matches(row) {
            return;
        }
        self.total += 1;
        let position = self.placer.of_row(row, slot);
        let after_cursor = self.after.is_none_or(|after| position > after);
        let before_last = self.heap.len() < self.want || self.heap.peek().is_some_and(|last| position < *last);
        if after_cursor & before_last {
            self.keep(position);
        }
    }

    #[inline(never)]
    fn keep(&mut self, position: Position) {
        if self.heap.len() == self.want {
            self.heap.pop();
        }
        self.heap.push(position);
    }
}

enum Candidates<'i> {
    /// Every row, free slots included (the filter skips them).
    All,
    Slots(Slots<'i>),
}

/// The smallest set of slots that holds every match. A set's candidate costs a
/// B-tree step and a row read from wherever it sits in memory, measured at 3 to 6
/// times a row of a sequential pass over the row column, so a set must be smaller
/// than an eighth of the rows to win. A day's range is counted only up to the best
/// size so far.
fn candidates<'i>(index: &'i Index, filter: &Filter) -> Candidates<'i> {
    let mut best: (usize, Option<Slots<'i>>) = (index.rows().len() / 8, None);
    if let Some(promotion_id) = filter.promotion_id {
        let Some(identifiers) = index.promotion(promotion_id) else {
            return Candidates::Slots(Box::new(None.into_iter()));
        };
        if identifiers.len() < best.0 {
            best = (identifiers.len(), Some(Box::new(identifiers.values().copied())));
        }
    }
    if let Some(shop_id) = filter.shop_id {
        let Some(shop) = index.by_shop.get(&shop_id) else { return Candidates::Slots(Box::new(None.into_iter())) };
        if shop.len() < best.0 {
            best = (shop.len(), Some(Box::new(shop.iter().map(|&(_, slot)| slot))));
        }
    }
    if let Some((start, end)) = filter.sent_on {
        let range = index.sent.range((Timestamp(start), 0)..(Timestamp(end), 0)).map(|&(_, slot)| slot);
        best = smaller(best, range);
    }
    for (times, on) in [(&index.used, filter.used_on), (&index.cancelled, filter.cancelled_on)] {
        if let Some((start, end)) = on {
            let lowest = |time: i64| (Timestamp(time), Timestamp(i64::MIN), 0);
            let range = times.present.range(lowest(start)..lowest(end)).map(|&(_, _, slot)| slot);
            best = smaller(best, range);
        }
    }
    best.1.map_or(Candidates::All, Candidates::Slots)
}

fn smaller<'i>(
    best: (usize, Option<Slots<'i>>),
    range: impl Iterator<Item = u32> + Clone + 'i,
) -> (usize, Option<Slots<'i>>) {
    let size = range.clone().take(best.0).count();
    if size < best.0 { (size, Some(Box::new(range))) } else { best }
}

/// A row's place in the report order as one value that sorts ascending: descending
/// orders flip each component (`!x` reverses an integer's order without overflow),
/// except `group`, which keeps rows lacking the ordered time last either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    group: u8,
    first: i64,
    second: i64,
    tie: u32,
    /// Not part of the order (`tie` is already unique); the row it places.
    slot: u32,
}

impl Position {
    fn new(ascending: bool, group: u8, first: i64, second: i64, slot: u32) -> Position {
        if ascending {
            Position { group, first, second, tie: slot, slot }
        } else {
            Position { group, first: !first, second: !second, tie: !slot, slot }
        }
    }

    fn timed(ascending: bool, time: Option<i64>, sent_at: i64, slot: u32) -> Position {
        match time {
            Some(time) => Position::new(ascending, 0, time, sent_at, slot),
            None => Position::new(ascending, 1, 0, sent_at, slot),
        }
    }
}

/// Places rows and cursors by one order. For the shop-name order, shops are ranked
/// by their current (name, id) at even ranks, so that a cursor whose shop was
/// renamed since can sit at the odd rank between its neighbours.
struct Placer {
    order: ReportOrder,
    ascending: bool,
    shop_ranks: BTreeMap<i64, i64>,
}

impl Placer {
    fn new(index: &Index, shops: &BTreeMap<i64, String>, query: &ReportQuery) -> Placer {
        let mut shop_ranks = BTreeMap::new();
        if query.order_by == ReportOrder::ShopName {
            for (rank, (name, shop_id)) in (0_i64..).step_by(2).zip(&index.shop_order) {
                debug_assert_eq!(sort_name(shops, *shop_id), name);
                shop_ranks.insert(*shop_id, rank);
            }
        }
        Placer { order: query.order_by, ascending: query.ascending, shop_ranks }
    }

    #[inline(always)]
    fn of_row(&self, row: &Row, slot: u32) -> Position {
        match self.order {
            ReportOrder::SentAt => Position::new(self.ascending, 0, row.sent_at, 0, slot),
            ReportOrder::UsedAt => Position::timed(self.ascending, row.used_at(), row.sent_at, slot),
            ReportOrder::CancelledAt => Position::timed(self.ascending, row.cancelled_at(), row.sent_at, slot),
            ReportOrder::ShopName => {
                let rank = self.shop_ranks[&row.shop_id];
                Position::new(self.ascending, 0, rank, row.sent_at, slot)
            }
        }
    }

    fn of_cursor(&self, index: &Index, cursor: &Cursor) -> Position {
        match self.order {
            ReportOrder::SentAt => Position::new(self.ascending, 0, cursor.sent_at, 0, cursor.slot),
            ReportOrder::UsedAt | ReportOrder::CancelledAt => {
                Position::timed(self.ascending, cursor.time, cursor.sent_at, cursor.slot)
            }
            ReportOrder::ShopName => {
                let below = index.shop_order.range(..&cursor.shop).count();
                let rank = i64::try_from(below).expect("i64 holds a shop count") * 2;
                let rank = if index.shop_order.contains(&cursor.shop) { rank } else { rank - 1 };
                Position::new(self.ascending, 0, rank, cursor.sent_at, cursor.slot)
            }
        }
    }
}

fn cursor_of(index: &Index, shops: &BTreeMap<i64, String>, query: &ReportQuery, slot: u32) -> Cursor {
    let row = index.row(slot);
    let mut cursor = Cursor { sent_at: row.sent_at, slot, ..Cursor::default() };
    match query.order_by {
        ReportOrder::SentAt => {}
        ReportOrder::UsedAt => cursor.time = row.used_at(),
        ReportOrder::CancelledAt => cursor.time = row.cancelled_at(),
        ReportOrder::ShopName => cursor.shop = (sort_name(shops, row.shop_id).to_owned(), row.shop_id),
    }
    cursor
}
