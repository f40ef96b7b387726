//! PointsService over gRPC, rule by rule (SPEC §3, §10): what a client sends, what it
//! gets back, and what GetMember shows afterwards. Every refusal leaves the member as
//! it was.

mod support;

use ledger_grpc::pb;
use support::{Clients, Patience, Server, assert_invalid_field, get_member, refused, seconds_from_now, started};
use tonic::Code;

const PROGRAM: &str = "cafe";

fn add(member: &str, points: i64) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "latte".into(),
        ..Default::default()
    }
}

fn spend(member: &str, points: i64) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "cookie".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_takes_1_to_1_000_000_points_and_a_remark_of_at_most_1024_bytes() {
    let (_server, mut client) = started("points-add-bounds", &[PROGRAM]).await;
    let rejected = [
        ("points", add("alice", 0)),
        ("points", add("alice", -5)),
        ("points", add("alice", 1_000_001)),
        ("remark", pb::AddPointsRequest { remark: String::new(), ..add("alice", 10) }),
        ("remark", pb::AddPointsRequest { remark: "  ".into(), ..add("alice", 10) }),
        ("remark", pb::AddPointsRequest { remark: "r".repeat(1_025), ..add("alice", 10) }),
        ("private_remark", pb::AddPointsRequest { private_remark: "p".repeat(1_025), ..add("alice", 10) }),
        ("member_id", add(&"m".repeat(129), 10)),
        ("member_id", add("", 10)),
        ("reference", pb::AddPointsRequest { reference: "r".repeat(129), ..add("alice", 10) }),
        ("expires_at", pb::AddPointsRequest { expires_at: Some(seconds_from_now(-60)), ..add("alice", 10) }),
    ];
    for (field, request) in rejected {
        let status = refused(client.points.add_points(request).await, Code::InvalidArgument);
        assert_invalid_field(&status, field);
    }
    refused(client.members.get_member(get_member(PROGRAM, "alice")).await, Code::NotFound);

    let accepted = [
        add("alice", 1),
        add("alice", 1_000_000),
        pb::AddPointsRequest { remark: "r".repeat(1_024), private_remark: "p".repeat(1_024), ..add("alice", 10) },
    ];
    let mut balance = 0;
    for request in accepted {
        let points = request.points;
        let receipt = client.points.add_points(request).await.expect("add").into_inner();
        balance += points;
        assert_eq!((receipt.points, receipt.balance, receipt.duplicate), (points, balance, false));
    }
    let long_id = "m".repeat(128);
    assert_eq!(client.points.add_points(add(&long_id, 7)).await.expect("add").into_inner().balance, 7);
    assert_eq!(client.member(PROGRAM, "alice").await.points, 1_000_011);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_earns_the_floor_of_cost_times_multiplier_in_exact_decimals() {
    let (_server, mut client) = started("points-formula", &[PROGRAM]).await;
    let formulas =
        [("half-again", "One and a half", "1.5"), ("per-cent", "A point a cent", "100"), ("tenth", "A tenth", "0.1")];
    for (formula_id, name, multiplier) in formulas {
        let request = pb::DefineFormulaRequest {
            program_id: PROGRAM.into(),
            formula_id: formula_id.into(),
            name: name.into(),
            multiplier: multiplier.into(),
        };
        let defined = client.points.define_formula(request).await.expect("define formula").into_inner();
        assert_eq!((defined.formula_id.as_str(), defined.multiplier.as_str()), (formula_id, multiplier));
    }
    let listed = client
        .points
        .list_formulas(pb::ListFormulasRequest { program_id: PROGRAM.into() })
        .await
        .expect("list formulas")
        .into_inner();
    let mut listed: Vec<(String, String, String, String)> =
        listed.formulas.into_iter().map(|f| (f.program_id, f.formula_id, f.name, f.multiplier)).collect();
    listed.sort();
    let expected: Vec<_> = formulas
        .iter()
        .map(|(id, name, m)| (PROGRAM.to_owned(), (*id).to_owned(), (*name).to_owned(), (*m).to_owned()))
        .collect();
    assert_eq!(listed, expected);

    // (formula, cost, points): binary floats would give 28 and 56 for the middle two.
    let earnings =
        [("half-again", "12.50", 18), ("per-cent", "0.29", 29), ("per-cent", "0.57", 57), ("tenth", "19.99", 1)];
    let mut balance = 0;
    for (formula_id, cost, points) in earnings {
        // The points given are ignored when a formula decides them.
        let request =
            pb::AddPointsRequest { cost: cost.into(), formula_id: formula_id.into(), ..add("alice", 999_999) };
        let receipt = client.points.add_points(request).await.expect("add by formula").into_inner();
        balance += points;
        assert_eq!((receipt.points, receipt.balance), (points, balance), "{cost} by {formula_id}");
    }

    let before = client.member(PROGRAM, "alice").await;
    assert_eq!(before.points, balance);
    let unknown = pb::AddPointsRequest { cost: "10".into(), formula_id: "nope".into(), ..add("alice", 0) };
    let status = refused(client.points.add_points(unknown).await, Code::NotFound);
    assert!(status.message().contains("nope"), "{status:?}");
    let rejected = [
        ("cost", pb::AddPointsRequest { cost: "0.5".into(), formula_id: "tenth".into(), ..add("alice", 0) }),
        ("cost", pb::AddPointsRequest { cost: "ten".into(), formula_id: "tenth".into(), ..add("alice", 0) }),
        ("cost", pb::AddPointsRequest { formula_id: "tenth".into(), ..add("alice", 0) }),
        ("formula_id", pb::AddPointsRequest { cost: "10".into(), ..add("alice", 0) }),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.points.add_points(request).await, Code::InvalidArgument), field);
    }
    assert_eq!(client.member(PROGRAM, "alice").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_may_not_take_the_balance_below_zero() {
    let (_server, mut client) = started("points-use", &[PROGRAM]).await;
    client.add(PROGRAM, "alice", 100).await;
    let receipt = client.points.use_points(spend("alice", 30)).await.expect("use").into_inner();
    assert_eq!((receipt.points, receipt.balance), (30, 70));

    let before = client.member(PROGRAM, "alice").await;
    let status = refused(client.points.use_points(spend("alice", 71)).await, Code::FailedPrecondition);
    assert!(status.message().contains("70"), "the message gives the balance: {status:?}");
    let rejected = [
        ("points", spend("alice", 0)),
        ("points", spend("alice", -1)),
        ("remark", pb::UsePointsRequest { remark: " ".into(), ..spend("alice", 1) }),
        ("remark", pb::UsePointsRequest { remark: "r".repeat(1_025), ..spend("alice", 1) }),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.points.use_points(request).await, Code::InvalidArgument), field);
    }
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a refused use changes nothing");

    let receipt = client.points.use_points(spend("alice", 70)).await.expect("use all").into_inner();
    assert_eq!(receipt.balance, 0);
    refused(client.points.use_points(spend("alice", 1)).await, Code::FailedPrecondition);
    assert_eq!(client.member(PROGRAM, "alice").await.points, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_naming_a_reward_takes_its_cost_unless_the_reward_expired() {
    let (_server, mut client) = started("points-rewards", &[PROGRAM]).await;
    let reward = |reward_id: &str, points: i64, expires_at: Option<prost_types::Timestamp>| pb::DefineRewardRequest {
        program_id: PROGRAM.into(),
        reward_id: reward_id.into(),
        name: format!("The {reward_id}"),
        points,
        expires_at,
    };
    // The server accepts a reward whose time is already over; using it is refused.
    let rewards = [
        reward("coffee", 50, None),
        reward("summer", 20, Some(seconds_from_now(-3_600))),
        reward("winter", 15, Some(seconds_from_now(3_600))),
    ];
    for request in rewards.clone() {
        let defined = client.points.define_reward(request.clone()).await.expect("define reward").into_inner();
        assert_eq!(
            (defined.reward_id, defined.points, defined.expires_at),
            (request.reward_id, request.points, request.expires_at)
        );
    }
    let listed = client
        .points
        .list_rewards(pb::ListRewardsRequest { program_id: PROGRAM.into() })
        .await
        .expect("list rewards")
        .into_inner();
    let mut listed: Vec<_> =
        listed.rewards.into_iter().map(|r| (r.program_id, r.reward_id, r.name, r.points, r.expires_at)).collect();
    listed.sort_by(|a, b| a.1.cmp(&b.1));
    let expected: Vec<_> =
        rewards.into_iter().map(|r| (r.program_id, r.reward_id, r.name, r.points, r.expires_at)).collect();
    assert_eq!(listed, expected);
    assert_invalid_field(
        &refused(client.points.define_reward(reward("free", 0, None)).await, Code::InvalidArgument),
        "points",
    );

    client.add(PROGRAM, "alice", 100).await;
    let by_reward = |reward_id: &str| pb::UsePointsRequest {
        reward_id: reward_id.into(),
        remark: String::new(),
        ..spend("alice", 0)
    };
    let receipt = client.points.use_points(by_reward("coffee")).await.expect("use a reward").into_inner();
    assert_eq!((receipt.points, receipt.balance), (50, 50), "the reward's cost, no remark needed");
    let receipt = client.points.use_points(by_reward("winter")).await.expect("use a reward").into_inner();
    assert_eq!((receipt.points, receipt.balance), (15, 35));

    let before = client.member(PROGRAM, "alice").await;
    let status = refused(client.points.use_points(by_reward("summer")).await, Code::FailedPrecondition);
    assert!(status.message().contains("summer"), "{status:?}");
    refused(client.points.use_points(by_reward("nope")).await, Code::NotFound);
    assert_eq!(client.member(PROGRAM, "alice").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_spend_the_soonest_expiring_lots_first_and_reads_never_count_an_expired_lot() {
    let (_server, mut client) = started("points-expiry", &[PROGRAM]).await;
    let (sooner, later) = (seconds_from_now(1_800), seconds_from_now(3_600));
    let lot =
        |points: i64, expires_at: Option<&prost_types::Timestamp>| pb::Lot { points, expires_at: expires_at.cloned() };
    let adds = [(10, Some(&later)), (20, None), (5, Some(&sooner))];
    for (points, expires_at) in adds {
        let request = pb::AddPointsRequest { expires_at: expires_at.cloned(), ..add("alice", points) };
        client.points.add_points(request).await.expect("add a lot");
    }
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!(alice.points, 35);
    assert_eq!(alice.lots, [lot(5, Some(&sooner)), lot(10, Some(&later)), lot(20, None)]);

    let receipt = client.points.use_points(spend("alice", 8)).await.expect("use").into_inner();
    assert_eq!(receipt.balance, 27);
    assert_eq!(client.member(PROGRAM, "alice").await.lots, [lot(7, Some(&later)), lot(20, None)]);

    // A lot two or three seconds from its end: counted now, never once its time is up,
    // whether or not the sweep (every 60 s) has recorded its expiry yet.
    let soon = seconds_from_now(3);
    let request = pb::AddPointsRequest { expires_at: Some(soon), ..add("alice", 4) };
    assert_eq!(client.points.add_points(request).await.expect("add").into_inner().balance, 31);
    let patience = Patience::new("the 4-point lot to expire");
    let alice = loop {
        let alice = client.member(PROGRAM, "alice").await;
        if alice.points != 31 {
            break alice;
        }
        patience.next().await;
    };
    assert_eq!(alice.points, 27);
    assert_eq!(alice.lots, [lot(7, Some(&later)), lot(20, None)]);
    refused(client.points.use_points(spend("alice", 28)).await, Code::FailedPrecondition);
    assert_eq!(client.points.use_points(spend("alice", 27)).await.expect("use").into_inner().balance, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_reference_answers_the_original_result_and_changes_nothing() {
    let (_server, mut client) = started("points-references", &[PROGRAM]).await;
    client.create_program("bakery").await;
    let referenced =
        |reference: &str, points: i64| pb::AddPointsRequest { reference: reference.into(), ..add("alice", points) };
    let first = client.points.add_points(referenced("order-1", 100)).await.expect("add").into_inner();
    client.add(PROGRAM, "alice", 30).await;
    let before = client.member(PROGRAM, "alice").await;
    assert_eq!(before.points, 130);

    let repeat = client.points.add_points(referenced("order-1", 999)).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::PointsReceipt { duplicate: true, ..first });
    // A reference is unique in its program, whatever used it first: a use reusing an
    // add's reference is refused, never answered with the add's receipt.
    let use_again = pb::UsePointsRequest { reference: "order-1".into(), ..spend("alice", 10) };
    let status = refused(client.points.use_points(use_again).await, Code::AlreadyExists);
    assert!(status.message().contains("order-1") && status.message().contains("a points add"), "{status:?}");
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a duplicate changes nothing");

    let redeem = pb::UsePointsRequest { reference: "redeem-1".into(), ..spend("alice", 40) };
    let used = client.points.use_points(redeem.clone()).await.expect("use").into_inner();
    assert_eq!(used.balance, 90);
    let repeat =
        client.points.use_points(pb::UsePointsRequest { points: 1, ..redeem }).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::PointsReceipt { duplicate: true, ..used });
    assert_eq!(client.member(PROGRAM, "alice").await.points, 90);

    let elsewhere = pb::AddPointsRequest { program_id: "bakery".into(), ..referenced("order-1", 5) };
    let receipt = client.points.add_points(elsewhere).await.expect("same reference, other program").into_inner();
    assert_eq!((receipt.duplicate, receipt.balance), (false, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_duplicate_replaces_the_earlier_transaction_unless_the_balance_would_go_below_zero() {
    let (_server, mut client) = started("points-replace", &[PROGRAM]).await;
    let add_ref = |member: &str, reference: &str, points: i64, replace: bool| pb::AddPointsRequest {
        reference: reference.into(),
        replace_duplicate: replace,
        ..add(member, points)
    };
    let use_ref = |member: &str, reference: &str, points: i64, replace: bool| pb::UsePointsRequest {
        reference: reference.into(),
        replace_duplicate: replace,
        ..spend(member, points)
    };

    let first = client.points.add_points(add_ref("alice", "order-7", 100, false)).await.expect("add").into_inner();
    let replaced = client.points.add_points(add_ref("alice", "order-7", 60, true)).await.expect("replace").into_inner();
    assert_eq!((replaced.points, replaced.balance, replaced.duplicate, replaced.replaced), (60, 60, false, true));
    assert!(replaced.transaction_id > first.transaction_id);
    let repeat = client.points.add_points(add_ref("alice", "order-7", 1, false)).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::PointsReceipt { duplicate: true, ..replaced }, "the reference now names the replacement");

    client.points.use_points(use_ref("alice", "redeem-7", 20, false)).await.expect("use");
    let replaced =
        client.points.use_points(use_ref("alice", "redeem-7", 35, true)).await.expect("replace").into_inner();
    assert_eq!((replaced.points, replaced.balance, replaced.replaced), (35, 25, true));
    assert_eq!(client.member(PROGRAM, "alice").await.points, 25, "the balances net out");

    // bob: +100 (gift), -80; replacing the gift by 10 would leave 20 - 100 + 10 < 0.
    let gift = client.points.add_points(add_ref("bob", "gift", 100, false)).await.expect("add").into_inner();
    client.points.use_points(spend("bob", 80)).await.expect("use");
    // carol: +50, -10 (snack); replacing the snack by 100 would leave 50 - 100 < 0.
    client.add(PROGRAM, "carol", 50).await;
    let snack = client.points.use_points(use_ref("carol", "snack", 10, false)).await.expect("use").into_inner();
    let (bob, carol) = (client.member(PROGRAM, "bob").await, client.member(PROGRAM, "carol").await);

    let status = refused(client.points.add_points(add_ref("bob", "gift", 10, true)).await, Code::FailedPrecondition);
    assert!(status.message().contains("below zero"), "{status:?}");
    refused(client.points.use_points(use_ref("carol", "snack", 100, true)).await, Code::FailedPrecondition);
    assert_eq!(client.member(PROGRAM, "bob").await, bob, "a refused replacement changes nothing");
    assert_eq!(client.member(PROGRAM, "carol").await, carol, "a refused replacement changes nothing");
    let repeat = client.points.add_points(add_ref("bob", "gift", 10, false)).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::PointsReceipt { duplicate: true, ..gift }, "the reference still names the original");
    let repeat = client.points.use_points(use_ref("carol", "snack", 1, false)).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::PointsReceipt { duplicate: true, ..snack });
}

/// One bulk case, in its own program: adds made before it, the bulk, what it
/// answers and the balances GetMember shows afterwards (`None`: no such member).
struct BulkCase {
    given: &'static [(&'static str, i64, &'static str)],
    bulk: Bulk,
    atomic: bool,
    answer: &'static str,
    after: &'static [(&'static str, Option<i64>)],
}

enum Bulk {
    Add(Vec<pb::BulkAddItem>),
    Use(Vec<pb::BulkUseItem>),
}

fn add_item(member: &str, points: i64) -> pb::BulkAddItem {
    pb::BulkAddItem { member_id: member.into(), points, remark: "bulk".into(), ..Default::default() }
}

fn use_item(member: &str, points: i64) -> pb::BulkUseItem {
    pb::BulkUseItem { member_id: member.into(), points, remark: "bulk".into(), ..Default::default() }
}

/// The result as one line: what was applied, where and why it stopped, the
/// duplicates skipped and the balances reported.
fn summary(result: &pb::BulkPointsResult) -> String {
    let mut line = format!("applied {}", result.applied_count);
    if let Some(fail_at) = result.fail_at {
        let failure = result.failure.clone().unwrap_or_default();
        line += &format!(", fail_at {fail_at} {} {}", failure.field, failure.code);
    }
    if !result.duplicates.is_empty() {
        line += &format!(", duplicates {:?}", result.duplicates);
    }
    let mut balances: Vec<String> = result.balances.iter().map(|b| format!("{}={}", b.member_id, b.points)).collect();
    balances.sort();
    if !balances.is_empty() {
        line += &format!(", balances {}", balances.join(" "));
    }
    line
}

async fn check_bulk(client: &mut Clients, program: &str, case: BulkCase) {
    client.create_program(program).await;
    for (member, points, reference) in case.given {
        let request =
            pb::AddPointsRequest { program_id: program.into(), reference: (*reference).into(), ..add(member, *points) };
        client.points.add_points(request).await.expect("given add");
    }
    let result = match case.bulk {
        Bulk::Add(items) => {
            let request = pb::BulkAddPointsRequest { program_id: program.into(), items, atomic: case.atomic };
            client.points.bulk_add_points(request).await
        }
        Bulk::Use(items) => {
            let request = pb::BulkUsePointsRequest { program_id: program.into(), items, atomic: case.atomic };
            client.points.bulk_use_points(request).await
        }
    };
    let result = result.expect("a bulk answers even when an item fails").into_inner();
    assert_eq!(summary(&result), case.answer, "{program}");
    if let Some(failure) = &result.failure {
        assert!(failure.message.contains(&failure.field), "{program}: the message names the field: {failure:?}");
    }
    if result.applied_count == 0 {
        assert_eq!((result.first_transaction_id, result.last_transaction_id), (0, 0), "{program}");
    } else {
        let span = result.last_transaction_id - result.first_transaction_id + 1;
        assert!(result.first_transaction_id > 0, "{program}");
        assert_eq!(span, u64::from(result.applied_count), "{program}: applied items have consecutive ids");
    }
    for (member, points) in case.after {
        let found = client.members.get_member(get_member(program, member)).await;
        let found = match found {
            Ok(member) => Some(member.into_inner().points),
            Err(status) if status.code() == Code::NotFound => None,
            Err(status) => panic!("{program}: get {member}: {status:?}"),
        };
        assert_eq!(found, *points, "{program}: {member}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_add_applies_items_in_order_up_to_the_first_that_fails() {
    let server = Server::start("points-bulk-add");
    let mut client = server.admin().await;
    let failing = || {
        vec![
            add_item("alice", 10),
            add_item("bob", 20),
            pb::BulkAddItem { remark: String::new(), ..add_item("carol", 5) },
            add_item("dave", 5),
        ]
    };
    let cases = [
        BulkCase {
            given: &[],
            bulk: Bulk::Add(vec![add_item("alice", 10), add_item("bob", 20), add_item("alice", 5)]),
            atomic: false,
            answer: "applied 3, balances alice=15 bob=20",
            after: &[("alice", Some(15)), ("bob", Some(20))],
        },
        BulkCase {
            given: &[],
            bulk: Bulk::Add(failing()),
            atomic: false,
            answer: "applied 2, fail_at 2 items[2].remark INVALID_FIELD, balances alice=10 bob=20",
            after: &[("alice", Some(10)), ("bob", Some(20)), ("carol", None), ("dave", None)],
        },
        BulkCase {
            given: &[],
            bulk: Bulk::Add(failing()),
            atomic: true,
            answer: "applied 0, fail_at 2 items[2].remark INVALID_FIELD",
            after: &[("alice", None), ("bob", None), ("carol", None)],
        },
        BulkCase {
            given: &[("alice", 7, "pos-1")],
            bulk: Bulk::Add(vec![
                pb::BulkAddItem { reference: "pos-1".into(), ..add_item("alice", 70) },
                pb::BulkAddItem { reference: "pos-2".into(), ..add_item("bob", 20) },
                pb::BulkAddItem { reference: "pos-2".into(), ..add_item("bob", 200) },
                add_item("alice", 3),
            ]),
            atomic: false,
            answer: "applied 2, duplicates [0, 2], balances alice=10 bob=20",
            after: &[("alice", Some(10)), ("bob", Some(20))],
        },
        BulkCase {
            given: &[("alice", 7, "")],
            bulk: Bulk::Add(vec![add_item("alice", 0), add_item("bob", 1)]),
            atomic: false,
            answer: "applied 0, fail_at 0 items[0].points INVALID_FIELD",
            after: &[("alice", Some(7)), ("bob", None)],
        },
        BulkCase {
            given: &[],
            bulk: Bulk::Add(vec![add_item("alice", 1), add_item(&"m".repeat(129), 1), add_item("bob", 1)]),
            atomic: false,
            answer: "applied 1, fail_at 1 items[1].member_id INVALID_FIELD, balances alice=1",
            after: &[("alice", Some(1)), ("bob", None)],
        },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        check_bulk(&mut client, &format!("bulk-{index}"), case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_use_applies_items_in_order_each_against_what_the_ones_before_it_left() {
    let server = Server::start("points-bulk-use");
    let mut client = server.admin().await;
    let given: &[(&str, i64, &str)] = &[("alice", 50, ""), ("bob", 10, "")];
    let cases = [
        BulkCase {
            given,
            bulk: Bulk::Use(vec![use_item("alice", 20), use_item("bob", 5)]),
            atomic: false,
            answer: "applied 2, balances alice=30 bob=5",
            after: &[("alice", Some(30)), ("bob", Some(5))],
        },
        BulkCase {
            given,
            bulk: Bulk::Use(vec![use_item("alice", 20), use_item("bob", 11), use_item("alice", 1)]),
            atomic: false,
            answer: "applied 1, fail_at 1 items[1].points INSUFFICIENT_POINTS, balances alice=30",
            after: &[("alice", Some(30)), ("bob", Some(10))],
        },
        BulkCase {
            given,
            bulk: Bulk::Use(vec![use_item("alice", 20), use_item("bob", 11), use_item("alice", 1)]),
            atomic: true,
            answer: "applied 0, fail_at 1 items[1].points INSUFFICIENT_POINTS",
            after: &[("alice", Some(50)), ("bob", Some(10))],
        },
        BulkCase {
            given,
            bulk: Bulk::Use(vec![use_item("alice", 40), use_item("alice", 20)]),
            atomic: false,
            answer: "applied 1, fail_at 1 items[1].points INSUFFICIENT_POINTS, balances alice=10",
            after: &[("alice", Some(10))],
        },
        BulkCase {
            given,
            bulk: Bulk::Use(vec![
                use_item("bob", 1),
                use_item("alice", 1),
                pb::BulkUseItem { remark: String::new(), ..use_item("alice", 1) },
            ]),
            atomic: false,
            answer: "applied 2, fail_at 2 items[2].remark INVALID_FIELD, balances alice=49 bob=9",
            after: &[("alice", Some(49)), ("bob", Some(9))],
        },
        BulkCase {
            given: &[("alice", 50, ""), ("bob", 10, "bought")],
            // A repeat of a use is skipped; a use reusing an add's reference fails.
            bulk: Bulk::Use(vec![
                pb::BulkUseItem { reference: "spent".into(), ..use_item("alice", 5) },
                pb::BulkUseItem { reference: "spent".into(), ..use_item("alice", 5) },
                pb::BulkUseItem { reference: "bought".into(), ..use_item("bob", 10) },
            ]),
            atomic: false,
            answer: "applied 1, fail_at 2 items[2].reference REFERENCE_IN_USE, duplicates [1], balances alice=45",
            after: &[("alice", Some(45)), ("bob", Some(10))],
        },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        check_bulk(&mut client, &format!("bulk-{index}"), case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_takes_1_to_1000_items_and_rejects_none_or_more_whole() {
    let (_server, mut client) = started("points-bulk-limits", &[PROGRAM]).await;
    client.add(PROGRAM, "alice", 5_000).await;
    let adds = |count: usize| (0..count).map(|index| add_item(&format!("m{index:04}"), 1)).collect::<Vec<_>>();
    let uses = |count: usize| (0..count).map(|_| use_item("alice", 1)).collect::<Vec<_>>();
    for count in [0, 1_001] {
        let request = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items: adds(count), atomic: false };
        assert_invalid_field(&refused(client.points.bulk_add_points(request).await, Code::InvalidArgument), "items");
        let request = pb::BulkUsePointsRequest { program_id: PROGRAM.into(), items: uses(count), atomic: false };
        assert_invalid_field(&refused(client.points.bulk_use_points(request).await, Code::InvalidArgument), "items");
    }
    let list = pb::ListMembersRequest { program_id: PROGRAM.into(), ..Default::default() };
    let listed = client.members.list_members(list.clone()).await.expect("list members").into_inner();
    assert_eq!(listed.total_size, 1, "nothing of a rejected bulk applied");
    assert_eq!(client.member(PROGRAM, "alice").await.points, 5_000);

    // 1,000 items is the most a bulk takes; they get 1,000 consecutive transaction ids.
    let request = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items: adds(1_000), atomic: false };
    let added = client.points.bulk_add_points(request).await.expect("bulk of 1,000").into_inner();
    assert_eq!((added.applied_count, added.fail_at, added.balances.len()), (1_000, None, 1_000));
    assert_eq!(added.last_transaction_id - added.first_transaction_id, 999);
    let request = pb::BulkUsePointsRequest { program_id: PROGRAM.into(), items: uses(1_000), atomic: true };
    let used = client.points.bulk_use_points(request).await.expect("bulk of 1,000").into_inner();
    assert_eq!((used.applied_count, used.last_transaction_id - used.first_transaction_id), (1_000, 999));
    assert_eq!(used.last_transaction_id, added.last_transaction_id + 1_000);
    assert_eq!(client.member(PROGRAM, "alice").await.points, 4_000);
    let listed = client.members.list_members(list).await.expect("list members").into_inner();
    assert_eq!(listed.total_size, 1_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_must_exist_and_be_created_once_with_an_id_of_at_most_128_bytes() {
    let (_server, mut client) = started("points-programs", &[PROGRAM]).await;
    let create =
        |program_id: &str, name: &str| pb::CreateProgramRequest { program_id: program_id.into(), name: name.into() };
    let status = refused(client.admin.create_program(create(PROGRAM, "Again")).await, Code::AlreadyExists);
    assert!(status.message().contains(PROGRAM), "{status:?}");
    let rejected = [
        ("program_id", create(&"p".repeat(129), "Long")),
        ("program_id", create("", "Blank")),
        ("name", create("named", &"n".repeat(256))),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.admin.create_program(request).await, Code::InvalidArgument), field);
    }
    let long = "p".repeat(128);
    let created = client.admin.create_program(create(&long, &"n".repeat(255))).await.expect("create").into_inner();
    assert_eq!(created.program_id, long);
    let programs = client.admin.list_programs(pb::ListProgramsRequest {}).await.expect("list").into_inner();
    let mut ids: Vec<String> = programs.programs.into_iter().map(|program| program.program_id).collect();
    ids.sort();
    assert_eq!(ids, [PROGRAM.to_owned(), long]);

    // Every call naming a program that does not exist: NOT_FOUND, and nothing made.
    let nowhere = "nowhere".to_owned();
    let points = &mut client.points;
    let calls = [
        points.add_points(pb::AddPointsRequest { program_id: nowhere.clone(), ..add("alice", 1) }).await.map(|_| ()),
        points.use_points(pb::UsePointsRequest { program_id: nowhere.clone(), ..spend("alice", 1) }).await.map(|_| ()),
        points
            .bulk_add_points(pb::BulkAddPointsRequest {
                program_id: nowhere.clone(),
                items: vec![add_item("alice", 1)],
                atomic: false,
            })
            .await
            .map(|_| ()),
        points
            .bulk_use_points(pb::BulkUsePointsRequest {
                program_id: nowhere.clone(),
                items: vec![use_item("alice", 1)],
                atomic: false,
            })
            .await
            .map(|_| ()),
        points
            .define_formula(pb::DefineFormulaRequest {
                program_id: nowhere.clone(),
                formula_id: "f".into(),
                name: "F".into(),
                multiplier: "1".into(),
            })
            .await
            .map(|_| ()),
        points
            .define_reward(pb::DefineRewardRequest {
                program_id: nowhere.clone(),
                reward_id: "r".into(),
                name: "R".into(),
                points: 1,
                expires_at: None,
            })
            .await
            .map(|_| ()),
        points.list_formulas(pb::ListFormulasRequest { program_id: nowhere.clone() }).await.map(|_| ()),
        points.list_rewards(pb::ListRewardsRequest { program_id: nowhere.clone() }).await.map(|_| ()),
        client.members.get_member(get_member(&nowhere, "alice")).await.map(|_| ()),
        client
            .members
            .list_members(pb::ListMembersRequest { program_id: nowhere.clone(), ..Default::default() })
            .await
            .map(|_| ()),
    ];
    for (index, call) in calls.into_iter().enumerate() {
        let status = call.expect_err("a call naming an unknown program fails");
        assert_eq!(status.code(), Code::NotFound, "call {index}: {status:?}");
        assert!(status.message().contains("nowhere"), "call {index}: {status:?}");
    }
    let programs = client.admin.list_programs(pb::ListProgramsRequest {}).await.expect("list").into_inner();
    assert_eq!(programs.programs.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_members_pages_by_token_or_by_offset() {
    let (_server, mut client) = started("points-members", &[PROGRAM]).await;
    let ids: Vec<String> = (0..120).map(|index| format!("m{index:03}")).collect();
    let items = ids.iter().zip(1..).map(|(id, points)| add_item(id, points)).collect();
    let request = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items, atomic: true };
    assert_eq!(client.points.bulk_add_points(request).await.expect("bulk").into_inner().applied_count, 120);
    let page = |page_size: u32, page_token: &str, offset: u32| pb::ListMembersRequest {
        program_id: PROGRAM.into(),
        page_size,
        page_token: page_token.into(),
        offset,
    };

    // Default pages of 10, following the tokens to the end.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let listed = client.members.list_members(page(0, &token, 0)).await.expect("list").into_inner();
        assert_eq!(listed.total_size, 120);
        assert_eq!(listed.members.len(), 10);
        pages += 1;
        seen.extend(listed.members.into_iter().map(|member| (member.member_id, member.points)));
        token = listed.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages < 12, "the last page has no next_page_token");
    }
    let expected: Vec<(String, i64)> = ids.iter().cloned().zip(1..).collect();
    assert_eq!(seen, expected);

    // (page_size, offset) → (first member, count, more pages?)
    let cases = [
        (1_000, 0, "m000", 100, true),
        (100, 100, "m100", 20, false),
        (3, 5, "m005", 3, true),
        (0, 115, "m115", 5, false),
    ];
    for (page_size, offset, first, count, more) in cases {
        let listed = client.members.list_members(page(page_size, "", offset)).await.expect("list").into_inner();
        let got = (
            listed.members.first().map(|member| member.member_id.as_str()),
            listed.members.len(),
            !listed.next_page_token.is_empty(),
        );
        assert_eq!(got, (Some(first), count, more), "page_size {page_size}, offset {offset}");
    }
    let listed = client.members.list_members(page(10, "", 200)).await.expect("list").into_inner();
    assert_eq!((listed.members.len(), listed.next_page_token.as_str(), listed.total_size), (0, "", 120));
    // A page token wins over an offset.
    let first = client.members.list_members(page(2, "", 0)).await.expect("list").into_inner();
    let second = client.members.list_members(page(2, &first.next_page_token, 50)).await.expect("list").into_inner();
    let second: Vec<&str> = second.members.iter().map(|member| member.member_id.as_str()).collect();
    assert_eq!(second, ["m002", "m003"]);
    assert_invalid_field(
        &refused(client.members.list_members(page(10, "zz", 0)).await, Code::InvalidArgument),
        "page_token",
    );

    let status = refused(client.members.get_member(get_member(PROGRAM, "stranger")).await, Code::NotFound);
    assert!(status.message().contains("stranger"), "{status:?}");
}

/// Runs `ledger bench --program cafe FLAGS` against the server with its admin token and
/// returns the JSON line it prints.
fn ledger_bench(server: &Server, flags: &str) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--addr")
        .arg(&server.address)
        .arg("--token-file")
        .arg(server.data_dir.join("admin.token"))
        .args(["bench", "--program", PROGRAM])
        .args(flags.split_whitespace())
        .output()
        .expect("run ledger bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ledger bench {flags}: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("ledger bench {flags} prints one JSON line ({error}); stderr: {stderr}"))
}

/// `items`, `errors`, `duplicates` and `next_start` of a bench run.
fn counts(report: &serde_json::Value) -> [Option<u64>; 4] {
    ["items", "errors", "duplicates", "next_start"].map(|key| report[key].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_bench_distinct_writes_exactly_members_new_members_each_with_its_own_reference() {
    // The bench creates the program.
    let (server, mut client) = started("points-bench", &[]).await;
    let import = "--op bulk-add --distinct --members 3000 --items 1000 --clients 2 --references";

    // No --seconds: the run ends when the 3,000 new members were written.
    let first = ledger_bench(&server, import);
    assert_eq!(counts(&first), [Some(3000), Some(0), Some(0), Some(3000)], "{first}");
    for member in ["member-000000000", "member-000002999"] {
        assert_eq!(client.member(PROGRAM, member).await.points, 10, "{member}");
    }
    refused(client.members.get_member(get_member(PROGRAM, "member-000003000")).await, Code::NotFound);
    let request = pb::GetActivityRequest {
        program_id: PROGRAM.into(),
        reference: "ref-000000002999".into(),
        ..Default::default()
    };
    let activity = client.audit.get_activity(request).await.expect("the last reference").into_inner();
    assert_eq!((activity.member_id.as_str(), activity.remark.as_str()), ("member-000002999", "welcome"));
    // The server runs on this machine: the bench finds it by its listening socket.
    assert_eq!(first["server_pid"].as_u64(), Some(u64::from(server.child.id())), "{first}");
    let peak = first["server_rss_peak_mib"].as_f64().unwrap_or_default();
    assert!(peak > 0.0, "a resident memory peak: {first}");
    assert!(first["server_rss_end_mib"].as_f64().is_some_and(|end| end > 0.0 && end <= peak), "{first}");
    assert!(first["data_dir_bytes"].is_null(), "no --data-dir, no size: {first}");

    // A second run continuing at 3,000 writes 3,000 more, reusing no member or reference.
    let data_dir = server.data_dir.display();
    let second = ledger_bench(&server, &format!("{import} --start 3000 --data-dir {data_dir}"));
    assert_eq!(counts(&second), [Some(3000), Some(0), Some(0), Some(6000)], "{second}");
    assert_eq!(client.member(PROGRAM, "member-000005999").await.points, 10);
    let request = pb::ListMembersRequest { program_id: PROGRAM.into(), page_size: 1, ..Default::default() };
    assert_eq!(client.members.list_members(request).await.expect("list").into_inner().total_size, 6000);
    assert!(second["data_dir_bytes"].as_u64().is_some_and(|bytes| bytes > 0), "{second}");
    // sled grows its files in steps and frees space too: the growth is any number, per event.
    let grown = second["data_dir_grown_bytes"].as_i64().expect("data_dir_grown_bytes") as f64;
    let per_event = second["data_dir_bytes_per_event"].as_f64().expect("data_dir_bytes_per_event");
    assert!((per_event - grown / 3000.0).abs() < 0.1, "{second}");

    // Starting at 0 again, every reference is the first run's: nothing written, each item a
    // duplicate, none an error.
    let again = ledger_bench(&server, "--op bulk-add --distinct --members 1000 --clients 1 --references");
    assert_eq!(counts(&again), [Some(0), Some(0), Some(1000), Some(1000)], "{again}");
    assert_eq!(client.member(PROGRAM, "member-000000000").await.points, 10);
}
