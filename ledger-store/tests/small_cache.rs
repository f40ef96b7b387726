//! A ledger whose cache holds far fewer members than it has (1,000 members and
//! 100 brand lines, with room for 10 rows in memory): every write, read, reference
//! check, bulk, import, report and replay comparison answers as if everything were
//! in memory, and a reopened ledger starts with none of them resident.

use ledger_core::State;
use ledger_core::command::{
    AddPoints, BulkAddPoints, CreditsChangeCommand, DefineCredit, DefineShop, GrantCoupons, ImportPointStatements,
    ImportVoucherStatements, PointStatementItem, ReverseTransaction, UseCoupon, UsePoints, VoucherImportItem,
};
use ledger_core::vouchers::ReportQuery;
use ledger_core::{Command, Outcome, Rejection, Timestamp};
use ledger_store::activities::ActivityQuery;
use ledger_store::projections::{Dirty, Meta, Projections};
use ledger_store::views::PageRequest;
use ledger_store::{Ledger, LedgerError, Options};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ACTOR: &str = "test";
const MEMBERS: usize = 1_000;
const LINES: usize = 100;
const ROOM: usize = 10;

fn options() -> Options {
    Options {
        // Checkpoints often, so that rows leave memory and come back from disk.
        checkpoint_events: 64,
        checkpoint_interval: Duration::from_secs(3_600),
        expiry_sweep_interval: None,
        cache_capacity_bytes: 4 * 1024 * 1024,
        resident_rows_max: ROOM,
        ..Options::default()
    }
}

fn dir() -> PathBuf {
    let path = std::env::temp_dir().join(format!("ledger-small-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

fn member(index: usize) -> String {
    format!("m{index:04}")
}

fn add(index: usize, points: i64, reference: String) -> AddPoints {
    AddPoints {
        program: "cafe".into(),
        member: member(index),
        points,
        remark: "visit".into(),
        reference,
        ..AddPoints::default()
    }
}

async fn setup(ledger: &Ledger) {
    ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
    let credit =
        DefineCredit { program: "cafe".into(), credit_id: "wallet".into(), name: "Wallet".into(), unit: "TWD".into() };
    ledger.execute(Command::DefineCredit(credit), ACTOR).await.expect("credit");
    ledger.create_program("7", "Brand 7", ACTOR).await.expect("brand");
    let shop = DefineShop { program: "7".into(), shop_id: 3, name: "Shop 3".into() };
    ledger.execute(Command::DefineShop(shop), ACTOR).await.expect("shop");
}

/// Points by member, as the test's own model keeps them.
type Model = BTreeMap<String, u64>;

async fn write(ledger: &Ledger, model: &mut Model) -> BTreeMap<usize, u64> {
    let mut transactions = BTreeMap::new();
    for index in 0..MEMBERS {
        let points = i64::try_from(index % 50 + 1).expect("small");
        let receipt = ledger.add_points(add(index, points, format!("a{index}")), ACTOR).await.expect("add");
        *model.entry(member(index)).or_default() += receipt.points;
        assert_eq!(receipt.balance, model[&member(index)], "{}: balance after the add", member(index));
        transactions.insert(index, receipt.transaction_id);
    }
    // Bulks over every member, which by now are mostly on disk only.
    for chunk in (0..MEMBERS).collect::<Vec<_>>().chunks(100) {
        let items = chunk.iter().map(|&index| add(index, 5, format!("b{index}"))).collect();
        let bulk = BulkAddPoints { program: "cafe".into(), items, atomic: false, malformed: None };
        let result = ledger.bulk_add_points(bulk, ACTOR).await.expect("bulk");
        assert_eq!(result.fail_at, None);
        for &index in chunk {
            *model.get_mut(&member(index)).expect("added before") += 5;
        }
        for (id, balance) in &result.balances {
            assert_eq!(*balance, model[id], "{id}: balance after the bulk");
        }
    }
    for index in (0..MEMBERS).step_by(7) {
        let spend = UsePoints {
            program: "cafe".into(),
            member: member(index),
            points: 3,
            remark: "latte".into(),
            reference: format!("u{index}"),
            ..UsePoints::default()
        };
        let receipt = ledger.use_points(spend, ACTOR).await.expect("use");
        *model.get_mut(&member(index)).expect("added before") -= 3;
        assert_eq!(receipt.balance, model[&member(index)], "{}: balance after the use", member(index));
    }
    transactions
}

async fn references_apply_once(ledger: &Ledger, model: &mut Model, transactions: &BTreeMap<usize, u64>) {
    // A repeat of an evicted reference answers the original transaction.
    for index in (0..MEMBERS).step_by(97) {
        let points = i64::try_from(index % 50 + 1).expect("small");
        let receipt = ledger.add_points(add(index, points, format!("a{index}")), ACTOR).await.expect("repeat");
        assert!(receipt.duplicate, "a{index} was used before");
        assert_eq!(receipt.transaction_id, transactions[&index], "a{index} answers its original transaction");
    }
    // Another kind with an evicted reference is refused.
    let spend = UsePoints {
        program: "cafe".into(),
        member: member(5),
        points: 1,
        remark: "latte".into(),
        reference: "a5".into(),
        ..UsePoints::default()
    };
    match ledger.use_points(spend, ACTOR).await {
        Err(LedgerError::Rejected(Rejection::ReferenceInUse { .. })) => {}
        other => panic!("a use with an add's reference is refused, got {other:?}"),
    }
    // Replacing an evicted add: its member (also evicted) loses the old points.
    let replacement = AddPoints { replace_duplicate: true, ..add(8, 100, "a8".into()) };
    let receipt = ledger.add_points(replacement, ACTOR).await.expect("replace");
    assert!(receipt.replaced);
    let entry = model.get_mut(&member(8)).expect("added before");
    *entry = *entry - 9 + 100;
    assert_eq!(receipt.balance, *entry, "m0008 after replacing its add of 9 by 100");
}

/// A reversal finds its transaction by id, and the transaction's member, though
/// neither is in memory: the writer reads the event from the log and the member
/// from its row before deciding.
async fn reversals_find_evicted_members(ledger: &Ledger, model: &mut Model, transactions: &BTreeMap<usize, u64>) {
    for index in (1..MEMBERS).step_by(101) {
        let command = ReverseTransaction {
            program: "cafe".into(),
            transaction_id: transactions[&index],
            remark: "mistake".into(),
            reference: format!("x{index}"),
            target: None,
        };
        let reversal = ledger.reverse_transaction(command.clone(), ACTOR).await.expect("reverse");
        let points = u64::try_from(index % 50 + 1).expect("small");
        let entry = model.get_mut(&member(index)).expect("added before");
        *entry -= points;
        assert_eq!(reversal.member, member(index));
        assert_eq!(reversal.balance_after, Decimal::from(*entry), "{}: balance after the reversal", member(index));
        let again = ReverseTransaction { reference: String::new(), ..command };
        match ledger.reverse_transaction(again, ACTOR).await {
            Err(LedgerError::Rejected(Rejection::AlreadyReversed { .. })) => {}
            other => panic!("a second reversal is refused, got {other:?}"),
        }
    }
}

async fn wallets_and_imports(ledger: &Ledger) {
    for index in 0..50 {
        let change = CreditsChangeCommand {
            program: "cafe".into(),
            member: member(index),
            credit_id: "wallet".into(),
            amount: "12.5".parse().expect("decimal"),
            remark: "top-up".into(),
            reference: format!("c{index}"),
        };
        ledger.execute(Command::AddCredits(change), ACTOR).await.expect("credits");
        let grant = GrantCoupons {
            program: "cafe".into(),
            member: member(index),
            coupon_id: "latte".into(),
            name: "Latte".into(),
            count: 3,
            reference: format!("g{index}"),
        };
        ledger.execute(Command::GrantCoupons(grant), ACTOR).await.expect("coupons");
    }
    for index in 0..50 {
        let spend = UseCoupon {
            program: "cafe".into(),
            member: member(index),
            coupon_id: "latte".into(),
            remark: "used".into(),
            ..UseCoupon::default()
        };
        match ledger.execute(Command::UseCoupon(spend), ACTOR).await.expect("use coupon") {
            Outcome::CouponUsed { remaining, .. } => assert_eq!(remaining, 2, "{}: coupons left", member(index)),
            other => panic!("a coupon use answers CouponUsed, got {other:?}"),
        }
    }
    let at = Timestamp(1_614_528_000_000_000);
    for round in 0..2 {
        let items = (0..LINES)
            .map(|line| PointStatementItem {
                brand_id: 7,
                promotion_id: 1,
                line_id: format!("L{line:03}"),
                change_reason: "集點".into(),
                point_change_record: 10,
                changed_at: Some(at),
                brand_manager_id: 3,
                reference: format!("s{round}-{line}"),
            })
            .collect();
        ledger.execute(Command::ImportPointStatements(ImportPointStatements { items }), ACTOR).await.expect("points");
        let items = (0..LINES)
            .map(|line| VoucherImportItem {
                brand_id: 7,
                promotion_id: 1,
                voucher_identifier: format!("V{line:03}"),
                voucher_number: format!("N{line}"),
                voucher_name: "Coffee".into(),
                line_id: format!("L{line:03}"),
                sent_at: Some(at),
                brand_manager_id: 3,
                ..VoucherImportItem::default()
            })
            .collect();
        ledger
            .execute(Command::ImportVoucherStatements(ImportVoucherStatements { items }), ACTOR)
            .await
            .expect("vouchers");
    }
}

/// Repeats of credits adds and coupon grants answer their original results: with
/// nothing resident, from the reference rows alone.
async fn wallet_repeats_answer_the_originals(ledger: &Ledger) {
    for index in (0..50).step_by(7) {
        let change = CreditsChangeCommand {
            program: "cafe".into(),
            member: member(index),
            credit_id: "wallet".into(),
            amount: "99".parse().expect("decimal"),
            remark: "again".into(),
            reference: format!("c{index}"),
        };
        match ledger.execute(Command::AddCredits(change), ACTOR).await.expect("repeat credits") {
            Outcome::Credits(receipt) => {
                let answered = (receipt.amount.to_string(), receipt.balance.to_string(), receipt.duplicate);
                assert_eq!(answered, ("12.5".to_owned(), "12.5".to_owned(), true), "c{index}");
            }
            other => panic!("a credits add answers a credits receipt, got {other:?}"),
        }
        let grant = GrantCoupons {
            program: "cafe".into(),
            member: member(index),
            coupon_id: "latte".into(),
            name: "Latte".into(),
            count: 9,
            reference: format!("g{index}"),
        };
        match ledger.execute(Command::GrantCoupons(grant), ACTOR).await.expect("repeat grant") {
            Outcome::CouponsGranted { count, .. } => assert_eq!(count, 3, "g{index}: the count right after it"),
            other => panic!("a grant answers CouponsGranted, got {other:?}"),
        }
    }
}

/// Makes the closed ledger in `path` look as if an older build had written its
/// projection rows: the meta names format `format`.
fn mark_rows_as_format(path: &Path, format: u16) {
    let db = ledger_store::audit::open_offline(path).expect("open offline");
    let projections = Projections::open(&db).expect("projections");
    let meta = projections.meta().expect("meta").expect("a checkpoint was written");
    let batch = Projections::batch(&State::default(), &Dirty::default(), Meta { format, ..meta });
    projections.apply(batch).expect("write the meta");
    db.flush().expect("flush");
}

/// Every read answers what the model says, whatever is resident.
async fn reads_are_right(ledger: &Ledger, model: &Model) {
    for (id, points) in model {
        assert_eq!(ledger.member("cafe", id).await.expect("member").points, *points, "{id}: points");
    }
    for index in 0..50 {
        let view = ledger.member("cafe", &member(index)).await.expect("member");
        assert_eq!(view.credits.len(), 1, "{}: one wallet", member(index));
        assert_eq!(view.credits[0].amount, "12.5".parse().expect("decimal"));
        let coupons = ledger.member_coupons("cafe", &member(index)).await.expect("coupons");
        assert_eq!(coupons.len(), 1);
        assert_eq!(coupons[0].count, 2);
    }
    for line in 0..LINES {
        let view = ledger.member("7", &format!("L{line:03}")).await.expect("line");
        assert_eq!(view.points, 20, "L{line:03}: two statements of 10");
    }
    // Pages of members in id order, resident or not, with the count of all.
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = PageRequest { page_size: 37, after: after.clone(), offset: 0 };
        let page = ledger.members("cafe", page).await.expect("page");
        assert_eq!(page.total, u64::try_from(MEMBERS).expect("fits"), "every member counted");
        listed.extend(page.members.iter().map(|view| (view.member.clone(), view.points)));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<(String, u64)> = model.iter().map(|(id, points)| (id.clone(), *points)).collect();
    assert_eq!(listed, expected, "paging lists every member once, in order, with its points");
    let page = ledger.members("cafe", PageRequest { page_size: 5, after: None, offset: 500 }).await.expect("offset");
    let ids: Vec<&str> = page.members.iter().map(|view| view.member.as_str()).collect();
    assert_eq!(ids, ["m0500", "m0501", "m0502", "m0503", "m0504"], "an offset page");

    // Activities of m0007, newest first, each with the balance after it in its
    // own unit: a coupon use (2 left), the grant (3), credits (12.5), then the
    // points use, the bulk item and the add.
    let query = ActivityQuery { program: "cafe".into(), member: member(7), page_size: 10, ..ActivityQuery::default() };
    let page = ledger.activities(query).await.expect("activities");
    let balances: Vec<String> = page.activities.iter().map(|activity| activity.balance_after.to_string()).collect();
    assert_eq!(balances, ["2", "3", "12.5", "10", "13", "8"], "m0007's activities and the balance after each");
    let found = ledger.activity("cafe", 0, "a500").await.expect("activity by an evicted reference");
    assert_eq!(found.member, member(500));

    let report = ledger.voucher_report(7, ReportQuery::default()).await.expect("report");
    assert_eq!(report.total_size, u64::try_from(LINES).expect("fits"), "one statement per voucher");
    let statement = ledger.voucher_statement(7, 1, "V042").await.expect("statement");
    assert_eq!(statement.record.version, 2, "imported twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_far_smaller_than_the_members_answers_as_if_all_were_in_memory() {
    let path = dir();
    let ledger = Ledger::open_with(&path, options()).expect("open");
    setup(&ledger).await;
    let mut model = Model::new();
    let transactions = write(&ledger, &mut model).await;
    references_apply_once(&ledger, &mut model, &transactions).await;
    reversals_find_evicted_members(&ledger, &mut model, &transactions).await;
    wallets_and_imports(&ledger).await;
    reads_are_right(&ledger, &model).await;
    assert_eq!(ledger.compare_with_replay().expect("replay"), None, "live equals a replay, activities included");
    let whole = ledger.whole_state().await.expect("whole state");
    assert_eq!(whole.programs["cafe"].members.len(), MEMBERS);
    // Past the room, the writer checkpoints and then evicts, also when idle.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ledger.resident_rows() > ROOM {
        assert!(std::time::Instant::now() < deadline, "{} rows stay resident, room for {ROOM}", ledger.resident_rows());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ledger.close().expect("close");
    drop(ledger);

    // Reopened: nothing is resident and nothing is replayed, and every answer holds.
    let ledger = Ledger::open_with(&path, options()).expect("reopen");
    assert_eq!(ledger.replayed_at_open(), 0, "a clean close leaves no tail");
    assert_eq!(ledger.resident_rows(), 0, "start-up reads no member or reference");
    reads_are_right(&ledger, &model).await;
    wallet_repeats_answer_the_originals(&ledger).await;
    assert_eq!(ledger.whole_state().await.expect("whole state"), whole, "the state after reopening");
    assert_eq!(ledger.compare_with_replay().expect("replay"), None);
    ledger.close().expect("close");
    drop(ledger);

    // Rows of format 3 (one reference struct for every kind) are not read but
    // rebuilt from the log, once.
    mark_rows_as_format(&path, 3);
    let ledger = Ledger::open_with(&path, options()).expect("reopen over older rows");
    assert!(ledger.replayed_at_open() > 0, "older rows are rebuilt from the whole log");
    reads_are_right(&ledger, &model).await;
    wallet_repeats_answer_the_originals(&ledger).await;
    assert_eq!(ledger.whole_state().await.expect("whole state"), whole, "the state rebuilt from the log");
    assert_eq!(ledger.compare_with_replay().expect("replay"), None);
    ledger.close().expect("close");
    let _ = std::fs::remove_dir_all(&path);
}
