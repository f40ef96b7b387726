//! One page of the voucher report (SPEC §10 ListVoucherStatements) for a brand of
//! 100,000 statements, in each order and with the filters users reach for. The bar
//! is well under 2 ms a page: back offices page through reports interactively, and
//! a report holds the state against the writer while it runs.
//!
//! The book is realistic in shape: ~50 promotions, 20 distinct voucher names, 200
//! named shops, ~60% used, ~10% cancelled, sent times spread over a year.

use criterion::{Criterion, criterion_group, criterion_main};
use ledger_core::Timestamp;
use ledger_core::vouchers::{ReportOrder, ReportQuery, VoucherBook, VoucherStatement, day_range};
use std::hint::black_box;

const STATEMENTS: u64 = 100_000;
const PROMOTIONS: u64 = 50;
const SHOPS: u64 = 200;
const YEAR_MICROS: u64 = 365 * 86_400_000_000;
const HOUR_MICROS: u64 = 3_600_000_000;
/// 2021-01-01T00:00:00Z.
const START_MICROS: u64 = 1_609_459_200_000_000;

const NAMES: [&str; 20] = [
    "瓦城 288元 平日好運金",
    "瓦城 500元 假日好運金",
    "非常泰 100元 折價券",
    "大心 新泰式麵食 50元",
    "時時香 200元 餐券",
    "1010湘 300元 好運金",
    "YABI KITCHEN 150元",
    "瓦城 生日禮 288元",
    "非常泰 生日禮 100元",
    "大心 生日禮 50元",
    "月月好運金 100元",
    "新會員 見面禮 50元",
    "集點兌換 瓦城 100元",
    "集點兌換 非常泰 100元",
    "母親節 好運金 500元",
    "父親節 好運金 300元",
    "週年慶 好運金 888元",
    "中秋 好運金 168元",
    "春節 紅包 666元",
    "VIP 專屬 1000元",
];

/// splitmix64: a fixed sequence, so every run benches the same book.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn micros(value: u64) -> Timestamp {
    Timestamp::from_micros(i64::try_from(value).expect("bench times fit i64"))
}

fn id(value: u64) -> i64 {
    i64::try_from(value).expect("bench ids fit i64")
}

fn statement(sequence: &mut Sequence, index: u64) -> VoucherStatement {
    let sent = START_MICROS + sequence.below(YEAR_MICROS);
    let used = sequence.below(10) < 6;
    let cancelled = sequence.below(10) == 0;
    let shop = if used { 1 + sequence.below(SHOPS) } else { 0 };
    let name = NAMES[usize::try_from(sequence.below(20)).expect("small")];
    VoucherStatement {
        promotion_id: id(1_000 + sequence.below(PROMOTIONS)),
        voucher_identifier: format!("VI{index:08}"),
        voucher_number: format!("VN{:012}", sequence.next() % 1_000_000_000_000),
        voucher_name: name.to_owned(),
        line_id: format!("U{:032x}", sequence.next()),
        sent_at: micros(sent),
        used_at: used.then(|| micros(sent + sequence.below(30 * 24 * HOUR_MICROS))),
        cancelled_at: cancelled.then(|| micros(sent + sequence.below(60 * 24 * HOUR_MICROS))),
        brand_manager_id: id(shop),
    }
}

fn brand() -> VoucherBook {
    let mut book = VoucherBook::default();
    let mut sequence = Sequence(42);
    for shop in 1..=SHOPS {
        let city = ["台北", "新北", "台中", "台南", "高雄"][usize::try_from(shop % 5).expect("small")];
        book.define_shop(id(shop), format!("{city} {shop:03} 門市"));
    }
    for index in 0..STATEMENTS {
        let statement = statement(&mut sequence, index);
        let at = statement.sent_at;
        book.upsert(statement, at);
    }
    book
}

fn first_page(order_by: ReportOrder) -> ReportQuery {
    ReportQuery { order_by, page_size: 20, ..ReportQuery::default() }
}

fn report_page(c: &mut Criterion) {
    let book = brand();
    assert_eq!(book.len(), 100_000);
    let mut group = c.benchmark_group("voucher_report_100k");
    let orders = [
        ("sent_at_desc", ReportOrder::SentAt),
        ("used_at_desc", ReportOrder::UsedAt),
        ("cancelled_at_desc", ReportOrder::CancelledAt),
        ("shop_name_desc", ReportOrder::ShopName),
    ];
    let mut queries: Vec<(String, ReportQuery)> =
        orders.iter().map(|(name, order_by)| ((*name).to_owned(), first_page(*order_by))).collect();
    let named = ReportQuery { voucher_name: "瓦城 288元".to_owned(), ..first_page(ReportOrder::SentAt) };
    queries.push(("sent_at_desc_name_filter".to_owned(), named));
    let named = ReportQuery { voucher_name: "瓦城".to_owned(), ..first_page(ReportOrder::ShopName) };
    queries.push(("shop_name_desc_name_filter".to_owned(), named));
    let first = book.report(&first_page(ReportOrder::SentAt)).expect("valid");
    let second = ReportQuery { page_token: first.next_page_token.clone(), ..first_page(ReportOrder::SentAt) };
    queries.push(("sent_at_desc_second_page".to_owned(), second));
    let first = book.report(&first_page(ReportOrder::ShopName)).expect("valid");
    let second = ReportQuery { page_token: first.next_page_token.clone(), ..first_page(ReportOrder::ShopName) };
    queries.push(("shop_name_desc_second_page".to_owned(), second));
    let promotion = ReportQuery { promotion_id: Some(1_007), ..first_page(ReportOrder::UsedAt) };
    queries.push(("used_at_desc_promotion_filter".to_owned(), promotion));
    let day = day_range("used_on", "2021-06-15", "+08:00").expect("valid day");
    let used_on = ReportQuery { used_on: Some(day), ..first_page(ReportOrder::SentAt) };
    queries.push(("sent_at_desc_used_on_filter".to_owned(), used_on));
    let shop =
        ReportQuery { shop_id: Some(17), voucher_name: "好運金".to_owned(), ..first_page(ReportOrder::SentAt) };
    queries.push(("sent_at_desc_shop_and_name_filter".to_owned(), shop));
    // Shop 0 holds the 40% never used: dense, so a walk of the sent index serves it.
    let unused = ReportQuery { shop_id: Some(0), ..first_page(ReportOrder::SentAt) };
    queries.push(("sent_at_desc_dense_shop_filter".to_owned(), unused.clone()));
    // The worst case: two filters, neither narrow (40% and 8 names of 20), so the
    // count reads every row.
    let unused = ReportQuery { voucher_name: "好運金".to_owned(), ..unused };
    queries.push(("sent_at_desc_full_scan_filter".to_owned(), unused.clone()));
    let unused = ReportQuery { order_by: ReportOrder::ShopName, ..unused };
    queries.push(("shop_name_desc_full_scan_filter".to_owned(), unused));
    for (name, query) in &queries {
        let page = book.report(query).expect("valid");
        assert_eq!(page.records.len(), 20, "{name} fills a page");
        group.bench_function(name.as_str(), |b| b.iter(|| black_box(book.report(black_box(query)).expect("valid"))));
    }
    group.finish();
}

criterion_group!(benches, report_page);
criterion_main!(benches);
