//! SPEC §6 and the ListVoucherStatements report, as a user of the book relies on it:
//! upsert by key, state, every filter, every order both ways, paging that neither
//! skips nor repeats (also while statements arrive), shop renames, bad tokens, local
//! days, and checkpoints. `check` renders every page of a query as
//! `total: rows | rows …` (rows as `promotion/identifier`) and also compares it with
//! a naive model that filters and sorts the whole book; a property test does the
//! same over random books and queries. Refresh snapshots with `UPDATE_EXPECT=1`.

use expect_test::{Expect, expect};
use ledger_core::vouchers::{
    ReportOrder, ReportPage, ReportQuery, VoucherBook, VoucherRecord, VoucherState, VoucherStatement, day_range,
};
use ledger_core::{Rejection, Timestamp};
use proptest::prelude::*;
use std::cmp::Ordering;

// Harness.

fn at(text: &str) -> Timestamp {
    let time = chrono::DateTime::parse_from_rfc3339(text).expect("test times are RFC 3339");
    Timestamp::from_chrono(time.to_utc())
}

fn maybe_at(text: &str) -> Option<Timestamp> {
    (!text.is_empty()).then(|| at(text))
}

/// (promotion, identifier, name, sent, used, cancelled, shop); "" = no time.
type Row<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str, i64);

fn statement(row: Row<'_>) -> VoucherStatement {
    let (promotion_id, identifier, name, sent, used, cancelled, shop_id) = row;
    VoucherStatement {
        promotion_id,
        voucher_identifier: identifier.to_owned(),
        voucher_number: format!("N-{identifier}"),
        voucher_name: name.to_owned(),
        line_id: format!("U{identifier}"),
        sent_at: at(sent),
        used_at: maybe_at(used),
        cancelled_at: maybe_at(cancelled),
        brand_manager_id: shop_id,
    }
}

/// Six statements in slots 0..=5 (a..f), with ties on sent (e, f) and used (c, d),
/// shops defined (1..=3), undefined (4) and none (0). Local days are at +08:00.
fn fixture() -> VoucherBook {
    let mut book = VoucherBook::default();
    book.define_shop(1, "Taipei 101".to_owned());
    book.define_shop(2, "Banqiao".to_owned());
    book.define_shop(3, "Zhongshan".to_owned());
    let rows: [Row<'_>; 6] = [
        // sent 02-16 23:30 local, used 02-17 10:00 local.
        (1, "a", "瓦城 288元 平日好運金", "2021-02-16T15:30:00Z", "2021-02-17T02:00:00Z", "", 1),
        // sent 02-17 00:00 local: the first instant of the day.
        (1, "b", "瓦城 288元 平日好運金", "2021-02-16T16:00:00Z", "", "", 0),
        // sent 02-17 23:59:59 local: the last second of the day.
        (1, "c", "非常泰 100元", "2021-02-17T15:59:59Z", "2021-02-18T01:00:00Z", "2021-02-18T02:00:00Z", 2),
        // sent 02-18 00:00 local: the next day.
        (2, "d", "非常泰 100元", "2021-02-17T16:00:00Z", "2021-02-18T01:00:00Z", "", 3),
        (2, "e", "瓦城 500元 Lucky", "2021-02-15T00:00:00Z", "", "2021-02-16T00:00:00Z", 4),
        (2, "f", "瓦城 500元", "2021-02-15T00:00:00Z", "2021-02-15T10:00:00Z", "", 1),
    ];
    for row in rows {
        book.upsert(statement(row), at("2021-03-01T00:00:00Z"));
    }
    book
}

fn query() -> ReportQuery {
    ReportQuery { page_size: 20, ..ReportQuery::default() }
}

fn local_day(field: &str, day: &str) -> Option<(Timestamp, Timestamp)> {
    Some(day_range(field, day, "+08:00").expect("test days are valid"))
}

fn render_ids(records: &[&VoucherRecord]) -> String {
    let ids = records
        .iter()
        .map(|record| format!("{}/{}", record.statement.promotion_id, record.statement.voucher_identifier));
    ids.collect::<Vec<_>>().join(" ")
}

/// Every page of the query, first to last; panics on a token loop.
fn all_pages<'b>(book: &'b VoucherBook, query: &ReportQuery) -> Vec<ReportPage<'b>> {
    let mut query = query.clone();
    let mut pages = Vec::new();
    loop {
        let page = book.report(&query).expect("the report accepts its own tokens");
        let token = page.next_page_token.clone();
        assert!(page.records.len() <= query.page_size, "a page holds at most page_size rows");
        assert!(token.is_empty() || page.records.len() == query.page_size, "only the last page is short");
        pages.push(page);
        assert!(pages.len() <= book.len() + 1, "paging does not end");
        if token.is_empty() {
            return pages;
        }
        query.page_token = token;
    }
}

/// What the report must give, computed the slow, obvious way.
fn model<'b>(book: &'b VoucherBook, query: &ReportQuery) -> Vec<&'b VoucherRecord> {
    let mut rows: Vec<&VoucherRecord> = book.records().filter(|record| model_matches(query, record)).collect();
    rows.sort_by(|left, right| model_order(book, query, left, right));
    rows
}

fn model_matches(query: &ReportQuery, record: &VoucherRecord) -> bool {
    let statement = &record.statement;
    let within = |time: Option<Timestamp>, range: Option<(Timestamp, Timestamp)>| match range {
        None => true,
        Some((start, end)) => time.is_some_and(|time| start <= time && time < end),
    };
    query.promotion_id.is_none_or(|id| statement.promotion_id == id)
        && query.shop_id.is_none_or(|id| statement.brand_manager_id == id)
        && statement.voucher_name.contains(&query.voucher_name)
        && within(Some(statement.sent_at), query.sent_on)
        && within(statement.used_at, query.used_on)
        && within(statement.cancelled_at, query.cancelled_on)
}

fn model_order(book: &VoucherBook, query: &ReportQuery, left: &VoucherRecord, right: &VoucherRecord) -> Ordering {
    let directed = |ordering: Ordering| if query.ascending { ordering } else { ordering.reverse() };
    let (a, b) = (&left.statement, &right.statement);
    let by_sent = directed((a.sent_at, left.slot).cmp(&(b.sent_at, right.slot)));
    let timed = |x: Option<Timestamp>, y: Option<Timestamp>| match (x, y) {
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (x, y) => directed(x.cmp(&y)).then(by_sent),
    };
    let shop = |statement: &VoucherStatement| {
        let name = book.shop_name(statement.brand_manager_id).filter(|_| statement.brand_manager_id != 0);
        (name.unwrap_or(""), statement.brand_manager_id)
    };
    match query.order_by {
        ReportOrder::SentAt => by_sent,
        ReportOrder::UsedAt => timed(a.used_at, b.used_at),
        ReportOrder::CancelledAt => timed(a.cancelled_at, b.cancelled_at),
        ReportOrder::ShopName => directed(shop(a).cmp(&shop(b))).then(by_sent),
    }
}

/// Pages through the query, checks the rows against the model and that every page
/// reports the same total, and renders `total: page | page …`.
fn pages_of(book: &VoucherBook, query: &ReportQuery) -> String {
    let pages = all_pages(book, query);
    let expected = model(book, query);
    let rows: Vec<&VoucherRecord> = pages.iter().flat_map(|page| page.records.iter().copied()).collect();
    assert_eq!(render_ids(&rows), render_ids(&expected), "report and model disagree on {query:?}");
    let total = u64::try_from(expected.len()).expect("u64 holds usize");
    assert!(pages.iter().all(|page| page.total_size == total), "every page counts all {total} matches");
    let rendered = pages.iter().map(|page| render_ids(&page.records)).collect::<Vec<_>>().join(" | ");
    format!("{total}: {rendered}")
}

fn check(book: &VoucherBook, query: ReportQuery, expect: Expect) {
    expect.assert_eq(&pages_of(book, &query));
}

/// The first page's rows and token, owned, so that the book can change before the next.
fn first_page(book: &VoucherBook, query: &ReportQuery) -> (String, String) {
    let page = book.report(query).expect("valid");
    (render_ids(&page.records), page.next_page_token)
}

fn page_token_rule(result: Result<ReportPage<'_>, Rejection>) -> String {
    match result {
        Err(Rejection::Invalid { field, rule }) => format!("{field}: {rule}"),
        other => panic!("expected Invalid on page_token, got {other:?}"),
    }
}

// Storage.

#[test]
fn upsert_keeps_one_record_per_key_and_counts_versions() {
    let mut book = VoucherBook::default();
    let first = statement((1, "v1", "瓦城 288元", "2021-02-16T00:00:00Z", "", "", 0));
    assert_eq!(book.upsert(first.clone(), at("2021-03-01T00:00:00Z")), 1);
    let used = statement((1, "v1", "瓦城 288元 (改)", "2021-02-16T00:00:00Z", "2021-02-17T00:00:00Z", "", 7));
    assert_eq!(book.upsert(used.clone(), at("2021-03-02T00:00:00Z")), 2);
    assert_eq!(book.upsert(used.clone(), at("2021-03-03T00:00:00Z")), 3);
    let elsewhere = statement((2, "v1", "瓦城 288元", "2021-02-16T00:00:00Z", "", "", 0));
    assert_eq!(book.upsert(elsewhere.clone(), at("2021-03-04T00:00:00Z")), 1);

    assert_eq!(book.len(), 2);
    let record = book.get(1, "v1").expect("upserted");
    let expected = VoucherRecord { statement: used, version: 3, updated_at: at("2021-03-03T00:00:00Z"), slot: 0 };
    assert_eq!(record, &expected, "the latest version replaces the statement whole and keeps its slot");
    assert_eq!(book.get(2, "v1").map(|record| (record.version, record.slot)), Some((1, 1)));
    assert_eq!(book.get(3, "v1"), None);
    let keys: Vec<_> = book.records().map(|record| record.statement.promotion_id).collect();
    assert_eq!(keys, [1, 2]);
    book.check_indexes();

    let report = book.report(&ReportQuery { voucher_name: "改".to_owned(), ..query() }).expect("valid");
    assert_eq!(report.total_size, 1, "the report sees only the latest version");
    let old_name = book.report(&ReportQuery { promotion_id: Some(1), shop_id: Some(0), ..query() }).expect("valid");
    assert_eq!(old_name.total_size, 0, "the old version's shop is forgotten");
}

#[test]
fn records_come_in_key_order_whatever_the_arrival() {
    let mut book = VoucherBook::default();
    for (promotion_id, identifier) in [(2, "b"), (1, "z"), (2, "a"), (1, "a")] {
        book.upsert(
            statement((promotion_id, identifier, "x", "2021-02-16T00:00:00Z", "", "", 0)),
            at("2021-03-01T00:00:00Z"),
        );
    }
    let keys: Vec<_> = book
        .records()
        .map(|record| (record.statement.promotion_id, record.statement.voucher_identifier.as_str(), record.slot))
        .collect();
    assert_eq!(keys, [(1, "a", 3), (1, "z", 1), (2, "a", 2), (2, "b", 0)]);
}

#[test]
fn state_is_cancelled_then_used_then_issued() {
    let book = fixture();
    let state = |identifier: &str| {
        let promotion_id = if identifier < "d" { 1 } else { 2 };
        book.get(promotion_id, identifier).expect("in the fixture").statement.state()
    };
    assert_eq!(state("a"), VoucherState::Used);
    assert_eq!(state("b"), VoucherState::Issued);
    assert_eq!(state("c"), VoucherState::Cancelled, "cancelled after use is cancelled");
    assert_eq!(state("e"), VoucherState::Cancelled);
}

#[test]
fn restored_in_any_order_equals_the_live_book() {
    let mut live = fixture();
    live.upsert(statement((1, "a", "瓦城 288元", "2021-02-16T15:30:00Z", "", "", 2)), at("2021-03-02T00:00:00Z"));
    let mut rows: Vec<VoucherRecord> = live.records().cloned().collect();
    rows.reverse();
    rows.swap(0, 3);
    let mut restored = VoucherBook::default();
    for (shop_id, name) in live.shops() {
        restored.define_shop(*shop_id, name.clone());
    }
    for row in rows {
        restored.restore(row);
    }
    assert_eq!(restored, live);
    restored.check_indexes();

    let next = statement((3, "g", "新", "2021-02-20T00:00:00Z", "", "", 1));
    live.upsert(next.clone(), at("2021-03-03T00:00:00Z"));
    restored.upsert(next, at("2021-03-03T00:00:00Z"));
    assert_eq!(restored, live, "a later upsert takes the slot it would have taken live");
    assert_eq!(restored.get(3, "g").map(|record| record.slot), Some(6));
    for order_by in [ReportOrder::SentAt, ReportOrder::UsedAt, ReportOrder::CancelledAt, ReportOrder::ShopName] {
        let query = ReportQuery { order_by, page_size: 2, ..query() };
        assert_eq!(pages_of(&restored, &query), pages_of(&live, &query));
    }
}

// Filters. Default order: sent_at descending; e and f tie on sent, so slot decides.

#[test]
fn filters_by_promotion_and_shop() {
    let book = fixture();
    check(&book, query(), expect!["6: 2/d 1/c 1/b 1/a 2/f 2/e"]);
    check(&book, ReportQuery { promotion_id: Some(2), ..query() }, expect!["3: 2/d 2/f 2/e"]);
    check(&book, ReportQuery { promotion_id: Some(9), ..query() }, expect!["0: "]);
    check(&book, ReportQuery { shop_id: Some(1), ..query() }, expect!["2: 1/a 2/f"]);
    check(&book, ReportQuery { shop_id: Some(0), ..query() }, expect!["1: 1/b"]);
    check(&book, ReportQuery { shop_id: Some(4), ..query() }, expect!["1: 2/e"]);
    check(&book, ReportQuery { promotion_id: Some(1), shop_id: Some(1), ..query() }, expect!["1: 1/a"]);
}

#[test]
fn filters_by_voucher_name_substring_case_sensitively() {
    let book = fixture();
    let named = |name: &str| ReportQuery { voucher_name: name.to_owned(), ..query() };
    check(&book, named("瓦城"), expect!["4: 1/b 1/a 2/f 2/e"]);
    check(&book, named("288元"), expect!["2: 1/b 1/a"]);
    check(&book, named("泰 1"), expect!["2: 2/d 1/c"]);
    check(&book, named("Lucky"), expect!["1: 2/e"]);
    check(&book, named("lucky"), expect!["0: "]);
    check(&book, named("瓦城 288元 平日好運金!"), expect!["0: "]);
    check(
        &book,
        ReportQuery { voucher_name: "瓦城".to_owned(), promotion_id: Some(2), ..query() },
        expect!["2: 2/f 2/e"],
    );
}

#[test]
fn filters_by_local_day_of_each_time() {
    let book = fixture();
    let sent = |day: &str| ReportQuery { sent_on: local_day("sent_on", day), ..query() };
    check(&book, sent("2021-02-17"), expect!["2: 1/c 1/b"]);
    check(&book, sent("2021-02-16"), expect!["1: 1/a"]);
    check(&book, sent("2021-02-18"), expect!["1: 2/d"]);
    let used = |day: &str| ReportQuery { used_on: local_day("used_on", day), ..query() };
    check(&book, used("2021-02-17"), expect!["1: 1/a"]);
    check(&book, used("2021-02-18"), expect!["2: 2/d 1/c"]);
    let cancelled = |day: &str| ReportQuery { cancelled_on: local_day("cancelled_on", day), ..query() };
    check(&book, cancelled("2021-02-16"), expect!["1: 2/e"]);
    check(&book, cancelled("2021-02-18"), expect!["1: 1/c"]);
    check(&book, cancelled("2021-02-17"), expect!["0: "]);
    let both = ReportQuery { used_on: local_day("used_on", "2021-02-18"), ..cancelled("2021-02-18") };
    check(&book, both, expect!["1: 1/c"]);
    let named = ReportQuery { voucher_name: "瓦城".to_owned(), ..sent("2021-02-17") };
    check(&book, named, expect!["1: 1/b"]);
}

// Orders.

#[test]
fn orders_by_sent_at_both_ways() {
    let book = fixture();
    check(&book, query(), expect!["6: 2/d 1/c 1/b 1/a 2/f 2/e"]);
    check(&book, ReportQuery { ascending: true, ..query() }, expect!["6: 2/e 2/f 1/a 1/b 1/c 2/d"]);
}

#[test]
fn orders_by_used_at_with_unused_last_either_way() {
    let book = fixture();
    let used = ReportQuery { order_by: ReportOrder::UsedAt, ..query() };
    // c and d tie on used; d was sent later.
    check(&book, used.clone(), expect!["6: 2/d 1/c 1/a 2/f 1/b 2/e"]);
    check(&book, ReportQuery { ascending: true, ..used }, expect!["6: 2/f 1/a 1/c 2/d 2/e 1/b"]);
}

#[test]
fn orders_by_cancelled_at_with_uncancelled_last_either_way() {
    let book = fixture();
    let cancelled = ReportQuery { order_by: ReportOrder::CancelledAt, ..query() };
    check(&book, cancelled.clone(), expect!["6: 1/c 2/e 2/d 1/b 1/a 2/f"]);
    check(&book, ReportQuery { ascending: true, ..cancelled }, expect!["6: 2/e 1/c 2/f 1/a 1/b 2/d"]);
}

#[test]
fn orders_by_shop_name_then_shop_then_sent() {
    let book = fixture();
    let shop = ReportQuery { order_by: ReportOrder::ShopName, ..query() };
    // "" (shop 0: b, undefined 4: e), Banqiao (c), Taipei 101 (f, a), Zhongshan (d).
    check(&book, ReportQuery { ascending: true, ..shop.clone() }, expect!["6: 1/b 2/e 1/c 2/f 1/a 2/d"]);
    check(&book, shop, expect!["6: 2/d 1/a 2/f 1/c 2/e 1/b"]);
}

#[test]
fn renaming_a_shop_resorts_at_once() {
    let mut book = fixture();
    let shop = ReportQuery { order_by: ReportOrder::ShopName, ascending: true, ..query() };
    book.define_shop(2, "Zuoying".to_owned());
    check(&book, shop.clone(), expect!["6: 1/b 2/e 2/f 1/a 2/d 1/c"]);
    book.define_shop(4, "Zz last".to_owned());
    check(&book, shop.clone(), expect!["6: 1/b 2/f 1/a 2/d 1/c 2/e"]);
    book.define_shop(0, "No shop".to_owned());
    check(&book, shop.clone(), expect!["6: 1/b 2/f 1/a 2/d 1/c 2/e"]);
    book.define_shop(9, "Unused".to_owned());
    check(&book, shop, expect!["6: 1/b 2/f 1/a 2/d 1/c 2/e"]);
    book.check_indexes();
}

// Paging.

#[test]
fn small_pages_walk_every_order_exactly_once() {
    let book = fixture();
    let orders = [ReportOrder::SentAt, ReportOrder::UsedAt, ReportOrder::CancelledAt, ReportOrder::ShopName];
    let mut rendered = Vec::new();
    for order_by in orders {
        for ascending in [false, true] {
            for page_size in [1, 4] {
                let query = ReportQuery { order_by, ascending, page_size, ..query() };
                rendered.push(format!("{order_by:?} {ascending} {page_size}: {}", pages_of(&book, &query)));
            }
        }
    }
    expect![[r#"
        SentAt false 1: 6: 2/d | 1/c | 1/b | 1/a | 2/f | 2/e
        SentAt false 4: 6: 2/d 1/c 1/b 1/a | 2/f 2/e
        SentAt true 1: 6: 2/e | 2/f | 1/a | 1/b | 1/c | 2/d
        SentAt true 4: 6: 2/e 2/f 1/a 1/b | 1/c 2/d
        UsedAt false 1: 6: 2/d | 1/c | 1/a | 2/f | 1/b | 2/e
        UsedAt false 4: 6: 2/d 1/c 1/a 2/f | 1/b 2/e
        UsedAt true 1: 6: 2/f | 1/a | 1/c | 2/d | 2/e | 1/b
        UsedAt true 4: 6: 2/f 1/a 1/c 2/d | 2/e 1/b
        CancelledAt false 1: 6: 1/c | 2/e | 2/d | 1/b | 1/a | 2/f
        CancelledAt false 4: 6: 1/c 2/e 2/d 1/b | 1/a 2/f
        CancelledAt true 1: 6: 2/e | 1/c | 2/f | 1/a | 1/b | 2/d
        CancelledAt true 4: 6: 2/e 1/c 2/f 1/a | 1/b 2/d
        ShopName false 1: 6: 2/d | 1/a | 2/f | 1/c | 2/e | 1/b
        ShopName false 4: 6: 2/d 1/a 2/f 1/c | 2/e 1/b
        ShopName true 1: 6: 1/b | 2/e | 1/c | 2/f | 1/a | 2/d
        ShopName true 4: 6: 1/b 2/e 1/c 2/f | 1/a 2/d"#]]
    .assert_eq(&rendered.join("\n"));
}

#[test]
fn a_full_last_page_has_no_token() {
    let book = fixture();
    let page = book.report(&ReportQuery { page_size: 6, ..query() }).expect("valid");
    assert_eq!((page.records.len(), page.next_page_token.as_str()), (6, ""));
    let page = book.report(&ReportQuery { page_size: 3, ..query() }).expect("valid");
    assert_eq!(page.records.len(), 3);
    assert_ne!(page.next_page_token, "");
}

#[test]
fn paging_stays_consistent_while_statements_arrive() {
    let mut book = fixture();
    let (rows, token) = first_page(&book, &ReportQuery { page_size: 2, ..query() });
    assert_eq!(rows, "2/d 1/c");
    // Newer than the cursor: belongs to a page already read, so later pages skip it.
    book.upsert(statement((1, "g", "新", "2021-02-20T00:00:00Z", "", "", 0)), at("2021-03-02T00:00:00Z"));
    // Between b and a: after the cursor, so a later page shows it.
    book.upsert(statement((1, "h", "新", "2021-02-16T15:45:00Z", "", "", 0)), at("2021-03-02T00:00:00Z"));
    // A new version of a row not yet shown, same sent time: still shown once.
    book.upsert(statement((1, "a", "改", "2021-02-16T15:30:00Z", "", "", 2)), at("2021-03-02T00:00:00Z"));
    let rest = all_pages(&book, &ReportQuery { page_size: 2, page_token: token, ..query() });
    let rendered: Vec<_> =
        rest.iter().map(|page| format!("{} of {}", render_ids(&page.records), page.total_size)).collect();
    expect!["1/b 1/h of 8 | 1/a 2/f of 8 | 2/e of 8"].assert_eq(&rendered.join(" | "));
}

#[test]
fn paging_survives_the_cursor_row_changing_or_its_shop_renamed() {
    let mut book = fixture();
    let shop = ReportQuery { order_by: ReportOrder::ShopName, ascending: true, page_size: 3, ..query() };
    let (rows, token) = first_page(&book, &shop);
    assert_eq!(rows, "1/b 2/e 1/c");
    // The cursor sits after (Banqiao, 2, c); Banqiao now sorts last, after Zhongshan,
    // so the rest starts at the shops sorting after "Banqiao": Taipei 101, then Zhongshan
    // and Zuoying, where c shows again because it moved past the cursor.
    book.define_shop(2, "Zuoying".to_owned());
    let rest = all_pages(&book, &ReportQuery { page_token: token, ..shop });
    let rendered: Vec<_> = rest.iter().map(|page| render_ids(&page.records)).collect();
    expect!["2/f 1/a 2/d | 1/c"].assert_eq(&rendered.join(" | "));

    let used = ReportQuery { order_by: ReportOrder::UsedAt, page_size: 2, ..query() };
    let (rows, token) = first_page(&book, &used);
    assert_eq!(rows, "2/d 1/c");
    book.upsert(statement((1, "c", "非常泰 100元", "2021-02-17T15:59:59Z", "", "", 2)), at("2021-03-02T00:00:00Z"));
    let rest = all_pages(&book, &ReportQuery { page_token: token, ..used });
    let rendered: Vec<_> = rest.iter().map(|page| render_ids(&page.records)).collect();
    expect!["1/a 2/f | 1/c 1/b | 2/e"].assert_eq(&rendered.join(" | "));
}

#[test]
fn a_token_of_another_query_shape_or_garbage_is_rejected() {
    let book = fixture();
    let first = book.report(&ReportQuery { page_size: 2, ..query() }).expect("valid");
    let token = first.next_page_token;
    let ascending = ReportQuery { ascending: true, page_token: token.clone(), ..query() };
    expect!["page_token: was made for order_by sent_at descending, but this query asks for sent_at ascending; repeat the query that returned it, or pass an empty page_token to start again"]
        .assert_eq(&page_token_rule(book.report(&ascending)));
    let shop = ReportQuery { order_by: ReportOrder::ShopName, page_token: token.clone(), ..query() };
    expect!["page_token: was made for order_by sent_at descending, but this query asks for shop_name descending; repeat the query that returned it, or pass an empty page_token to start again"]
        .assert_eq(&page_token_rule(book.report(&shop)));
    // Each garbage token is tried under the order its tag names, so that only its
    // shape is wrong.
    let garbage = [
        (ReportOrder::SentAt, "garbage"),
        (ReportOrder::SentAt, "v1"),
        (ReportOrder::SentAt, "v1.sd"),
        (ReportOrder::SentAt, "v1.sd.1"),
        (ReportOrder::SentAt, "v1.sd.x.1"),
        (ReportOrder::SentAt, "v1.sd.1.2.3"),
        (ReportOrder::SentAt, "v1.sd.1.-2"),
        (ReportOrder::SentAt, "v2.sd.1.2"),
        (ReportOrder::SentAt, "v1.zz.1.2"),
        (ReportOrder::ShopName, "v1.nd.e.1.2.3"),
        (ReportOrder::ShopName, "v1.nd.ff.1.2.3"),
        (ReportOrder::UsedAt, "v1.ud..1.2"),
    ];
    for (order_by, token) in garbage {
        let bad = ReportQuery { order_by, page_token: token.to_owned(), ..query() };
        expect!["page_token: is not a token this report gave out; pass the next_page_token of the previous page, or an empty page_token for the first page"]
            .assert_eq(&page_token_rule(book.report(&bad)));
    }
    let filtered = ReportQuery { promotion_id: Some(2), page_token: token, ..query() };
    assert!(book.report(&filtered).is_ok(), "a token marks a place in the order, whatever the filters");
}

#[test]
fn a_name_matching_only_far_rows_still_pages_right() {
    // 6,000 statements, the 30 oldest named "rare": walking the sent index from the
    // newest would pass thousands of rows, so the report scans instead.
    let mut book = VoucherBook::default();
    for index in 0..6_000_i64 {
        let name = if index < 30 { "rare 限定" } else { "瓦城 288元 平日好運金" };
        let sent = Timestamp::from_micros(1_600_000_000_000_000 + index * 60_000_000);
        let statement = VoucherStatement {
            sent_at: sent,
            used_at: (index % 3 == 0).then_some(sent),
            ..statement((index % 7, &format!("v{index}"), name, "2021-02-16T00:00:00Z", "", "", index % 5))
        };
        book.upsert(statement, sent);
    }
    for order_by in [ReportOrder::SentAt, ReportOrder::UsedAt, ReportOrder::ShopName] {
        let query = ReportQuery { voucher_name: "rare".to_owned(), order_by, page_size: 7, ..query() };
        assert!(pages_of(&book, &query).starts_with("30: "));
    }
    let unfiltered = ReportQuery { page_size: 100, ..query() };
    let pages = all_pages(&book, &unfiltered);
    assert_eq!(pages.len(), 60);
    assert!(pages.iter().all(|page| page.total_size == 6_000));
}

// Days.

#[test]
fn day_range_is_the_local_day_in_utc() {
    let render = |field: &str, day: &str, offset: &str| match day_range(field, day, offset) {
        Ok((start, end)) => format!("[{start}, {end})"),
        Err(rejection) => rejection.to_string(),
    };
    expect!["[2021-02-16T16:00:00Z, 2021-02-17T16:00:00Z)"].assert_eq(&render("sent_on", "2021-02-17", "+08:00"));
    expect!["[2021-02-17T00:00:00Z, 2021-02-18T00:00:00Z)"].assert_eq(&render("sent_on", "2021-02-17", ""));
    expect!["[2021-02-17T05:30:00Z, 2021-02-18T05:30:00Z)"].assert_eq(&render("used_on", "2021-02-17", "-05:30"));
    expect!["[2020-02-29T00:00:00Z, 2020-03-01T00:00:00Z)"].assert_eq(&render("used_on", "2020-02-29", "Z"));
    expect!["used_on: must be a calendar day written YYYY-MM-DD, such as 2021-02-17, got \"2021-2-17\""]
        .assert_eq(&render("used_on", "2021-2-17", "+08:00"));
    expect!["cancelled_on: must be a calendar day written YYYY-MM-DD, such as 2021-02-17, got \"2021-02-30\""]
        .assert_eq(&render("cancelled_on", "2021-02-30", "+08:00"));
    expect!["sent_on: must be a calendar day written YYYY-MM-DD, such as 2021-02-17, got \"17/02/2021\""]
        .assert_eq(&render("sent_on", "17/02/2021", "+08:00"));
    for offset in ["+8", "08:00", "+24:00", "+08:60", "+08-00", "UTC", "＋08:00", "é08:00"] {
        let rejection = day_range("sent_on", "2021-02-17", offset).expect_err(offset);
        assert_eq!(rejection.field().as_str(), "utc_offset", "{offset}");
    }
    expect!["utc_offset: must be +HH:MM or -HH:MM (hours 00-23, minutes 00-59), such as +08:00, got \"+8\""]
        .assert_eq(&render("sent_on", "2021-02-17", "+8"));
}

// Random books against the model.

const NAMES: [&str; 4] = ["瓦城 288元 平日好運金", "瓦城 500元", "非常泰 100元", "Lucky Bag"];
const NEEDLES: [&str; 6] = ["", "瓦城", "元", "100", "Lucky", "lucky"];
const OFFSETS: [&str; 3] = ["", "+08:00", "-05:30"];
const HOUR_MICROS: i64 = 3_600_000_000;

/// A statement drawn from small domains so that keys repeat (replacements) and
/// times tie: promotions 1..=3, 12 identifiers, hours within 4 days, shops 0..=4.
fn random_statement() -> impl Strategy<Value = VoucherStatement> {
    let times = (0..96_i64, proptest::option::of(0..96_i64), proptest::option::weighted(0.3, 0..96_i64));
    (1..=3_i64, 0..12_usize, 0..NAMES.len(), times, 0..=4_i64).prop_map(
        |(promotion_id, identifier, name, (sent, used, cancelled), shop_id)| VoucherStatement {
            promotion_id,
            voucher_identifier: format!("v{identifier}"),
            voucher_number: format!("N{identifier}"),
            voucher_name: NAMES[name].to_owned(),
            line_id: "U1".to_owned(),
            sent_at: Timestamp::from_micros(sent * HOUR_MICROS),
            used_at: used.map(|hour| Timestamp::from_micros(hour * HOUR_MICROS)),
            cancelled_at: cancelled.map(|hour| Timestamp::from_micros(hour * HOUR_MICROS)),
            brand_manager_id: shop_id,
        },
    )
}

#[derive(Clone, Debug)]
enum Step {
    Upsert(VoucherStatement),
    /// Shop 1..=4 named from a pool that makes ties of name across shops.
    Name(i64, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => random_statement().prop_map(Step::Upsert),
        1 => (1..=4_i64, 0..3_usize).prop_map(|(shop_id, name)| Step::Name(shop_id, name)),
    ]
}

fn build(steps: &[Step]) -> VoucherBook {
    let mut book = VoucherBook::default();
    for (index, step) in (0_i64..).zip(steps) {
        match step {
            Step::Upsert(statement) => {
                book.upsert(statement.clone(), Timestamp::from_micros(index));
            }
            Step::Name(shop_id, name) => book.define_shop(*shop_id, ["甲店", "Shop", "乙店"][*name].to_owned()),
        }
    }
    book
}

fn random_query() -> impl Strategy<Value = ReportQuery> {
    let day = || proptest::option::weighted(0.2, (0..5_u32, 0..OFFSETS.len()));
    let filters = (proptest::option::of(1..=4_i64), proptest::option::of(0..=5_i64), 0..NEEDLES.len());
    let orders = prop_oneof![
        Just(ReportOrder::SentAt),
        Just(ReportOrder::UsedAt),
        Just(ReportOrder::CancelledAt),
        Just(ReportOrder::ShopName)
    ];
    (filters, (day(), day(), day()), orders, any::<bool>(), 1..=5_usize).prop_map(
        |((promotion_id, shop_id, needle), (sent, used, cancelled), order_by, ascending, page_size)| {
            let on = |field: &str, day: Option<(u32, usize)>| {
                day.map(|(day, offset)| {
                    day_range(field, &format!("1970-01-{:02}", day + 1), OFFSETS[offset]).expect("valid day")
                })
            };
            ReportQuery {
                promotion_id,
                shop_id,
                voucher_name: NEEDLES[needle].to_owned(),
                sent_on: on("sent_on", sent),
                used_on: on("used_on", used),
                cancelled_on: on("cancelled_on", cancelled),
                order_by,
                ascending,
                page_size,
                page_token: String::new(),
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn report_pages_equal_the_model(steps in proptest::collection::vec(step(), 0..60), queries in proptest::collection::vec(random_query(), 1..6)) {
        let book = build(&steps);
        book.check_indexes();
        for query in &queries {
            pages_of(&book, query);
        }
    }

    #[test]
    fn a_restored_book_equals_the_live_one(
        steps in proptest::collection::vec(step(), 0..60),
        shuffle in proptest::collection::vec(any::<u32>(), 60),
        shops_first in any::<bool>(),
        query in random_query(),
    ) {
        let live = build(&steps);
        let mut rows: Vec<(u32, VoucherRecord)> = shuffle.into_iter().zip(live.records().cloned()).collect();
        rows.sort_by_key(|(key, _)| *key);
        let mut restored = VoucherBook::default();
        let define_shops = |book: &mut VoucherBook| {
            for (shop_id, name) in live.shops() {
                book.define_shop(*shop_id, name.clone());
            }
        };
        if shops_first {
            define_shops(&mut restored);
        }
        for (_, row) in rows {
            restored.restore(row);
        }
        if !shops_first {
            define_shops(&mut restored);
        }
        prop_assert_eq!(&restored, &live);
        restored.check_indexes();
        prop_assert_eq!(pages_of(&restored, &query), pages_of(&live, &query));
        let mut live = live;
        let next = statement((1, "new", "x", "2021-02-16T00:00:00Z", "", "", 0));
        live.upsert(next.clone(), Timestamp::from_micros(0));
        restored.upsert(next, Timestamp::from_micros(0));
        prop_assert_eq!(&restored, &live);
    }
}
