//! TransactionsService.ReverseTransaction over gRPC (SPEC §15, §13, §11): what each
//! kind's reversal undoes, once; the reasons ALREADY_REVERSED, NOT_REVERSIBLE and
//! TRANSACTION_NOT_FOUND with their metadata; OPERATOR to reverse, program
//! scoping; `reversed_by` on GetActivity and ListActivities; idempotency by
//! reference. Every refusal leaves the member as it was.

mod support;

use ledger_grpc::pb;
use support::{Server, refused, seconds_from_now, started};
use tonic::Code;
use tonic_types::StatusExt;

type Transactions = pb::transactions_service_client::TransactionsServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, support::Bearer>,
>;

const PROGRAM: &str = "cafe";
const OTHER: &str = "bakery";

async fn transactions(server: &Server, token: &str) -> Transactions {
    server.clients(token).await.transactions
}

fn reverse(transaction_id: u64) -> pb::ReverseTransactionRequest {
    pb::ReverseTransactionRequest {
        program_id: PROGRAM.into(),
        transaction_id,
        remark: "cashier mistake".into(),
        reference: String::new(),
    }
}

fn add(member: &str, points: i64, expires_at: Option<prost_types::Timestamp>) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "visit".into(),
        expires_at,
        ..Default::default()
    }
}

fn spend(member: &str, points: i64) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "treat".into(),
        ..Default::default()
    }
}

/// Asserts the code, the reason and the metadata of a refusal.
#[track_caller]
fn reason<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    reason: &str,
    metadata: &[(&str, &str)],
) -> tonic::Status {
    let status = refused(result, code);
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!((info.domain.as_str(), info.reason.as_str()), ("ledger.v1", reason), "{status:?}");
    for (key, value) in metadata {
        assert_eq!(info.metadata.get(*key).map(String::as_str), Some(*value), "metadata {key} of {info:?}");
    }
    status
}

fn activity(transaction_id: u64) -> pb::GetActivityRequest {
    pb::GetActivityRequest { program_id: PROGRAM.into(), transaction_id, reference: String::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversing_points_undoes_exactly_the_add_or_use_once() {
    let (server, mut client) = started("reversals-points", &[PROGRAM]).await;
    let mut reversals = transactions(&server, &server.admin_token).await;
    let expiring = client.points.add_points(add("alice", 30, Some(seconds_from_now(3_600)))).await.expect("add");
    let expiring = expiring.into_inner();
    let pool = client.points.add_points(add("alice", 100, None)).await.expect("add").into_inner();
    let used = client.points.use_points(spend("alice", 40)).await.expect("use").into_inner();
    let before = client.member(PROGRAM, "alice").await;
    assert_eq!((before.points, before.qualifying_amount), (90, 130));

    // The use's points go back to the lots they came from: the expiring lot first.
    let reversal = reversals.reverse_transaction(reverse(used.transaction_id)).await.expect("reverse").into_inner();
    let expected = pb::Reversal {
        transaction_id: used.transaction_id + 1,
        reversed_transaction_id: used.transaction_id,
        kind: "POINTS".into(),
        member_id: "alice".into(),
        amount: "40".into(),
        balance_after: "130".into(),
        duplicate: false,
    };
    assert_eq!(reversal, expected);
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!((alice.points, alice.qualifying_amount), (130, 130), "a use's reversal leaves the qualifying amount");
    let lots: Vec<(i64, bool)> = alice.lots.iter().map(|lot| (lot.points, lot.expires_at.is_some())).collect();
    assert_eq!(lots, [(30, true), (100, false)], "each lot has its points back, with its expiry");

    // Once.
    let status = reason(
        reversals.reverse_transaction(reverse(used.transaction_id)).await,
        Code::FailedPrecondition,
        "ALREADY_REVERSED",
        &[("transaction_id", &used.transaction_id.to_string()), ("reversed_by", &reversal.transaction_id.to_string())],
    );
    assert!(status.message().contains("already reversed"), "{status:?}");

    // An add's reversal takes its lot back and lowers the qualifying amount.
    let reversal = reversals.reverse_transaction(reverse(expiring.transaction_id)).await.expect("reverse");
    let reversal = reversal.into_inner();
    assert_eq!((reversal.amount.as_str(), reversal.balance_after.as_str()), ("-30", "100"));
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!((alice.points, alice.qualifying_amount, alice.lots.len()), (100, 100, 1));

    // An add some of whose points were spent: NOT_REVERSIBLE, with what is left.
    client.points.use_points(spend("alice", 10)).await.expect("use");
    let before = client.member(PROGRAM, "alice").await;
    reason(
        reversals.reverse_transaction(reverse(pool.transaction_id)).await,
        Code::FailedPrecondition,
        "NOT_REVERSIBLE",
        &[("transaction_id", &pool.transaction_id.to_string()), ("left", "90")],
    );
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a refusal changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_item_credits_and_coupons_are_reversed_by_their_own_ids() {
    let (server, mut client) = started("reversals-kinds", &[PROGRAM]).await;
    let mut reversals = transactions(&server, &server.admin_token).await;
    client.add(PROGRAM, "alice", 50).await;
    client.add(PROGRAM, "bob", 50).await;
    let item = |member: &str, points| pb::BulkUseItem {
        member_id: member.into(),
        points,
        remark: "lunch".into(),
        ..Default::default()
    };
    let bulk = pb::BulkUsePointsRequest {
        program_id: PROGRAM.into(),
        items: vec![item("alice", 5), item("bob", 7)],
        atomic: false,
    };
    let bulk = client.points.bulk_use_points(bulk).await.expect("bulk").into_inner();
    let reversal = reversals.reverse_transaction(reverse(bulk.last_transaction_id)).await.expect("reverse");
    let reversal = reversal.into_inner();
    assert_eq!((reversal.member_id.as_str(), reversal.amount.as_str()), ("bob", "7"));
    assert_eq!((client.member(PROGRAM, "alice").await.points, client.member(PROGRAM, "bob").await.points), (45, 50));

    let define = pb::DefineCreditRequest {
        program_id: PROGRAM.into(),
        credit_id: "gift".into(),
        name: "Gift card".into(),
        unit: "TWD".into(),
    };
    client.credits.define_credit(define).await.expect("define");
    let change = |amount: &str| pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        credit_id: "gift".into(),
        amount: amount.into(),
        remark: "top-up".into(),
        reference: String::new(),
    };
    let added = client.credits.add_credits(change("10.5")).await.expect("add").into_inner();
    let used = pb::UseCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        credit_id: "gift".into(),
        amount: "2.25".into(),
        remark: "coffee".into(),
        reference: String::new(),
    };
    let used = client.credits.use_credits(used).await.expect("use").into_inner();
    reason(
        reversals.reverse_transaction(reverse(added.transaction_id)).await,
        Code::FailedPrecondition,
        "NOT_REVERSIBLE",
        &[("left", "8.25")],
    );
    let reversal = reversals.reverse_transaction(reverse(used.transaction_id)).await.expect("reverse").into_inner();
    assert_eq!(
        (reversal.kind.as_str(), reversal.amount.as_str(), reversal.balance_after.as_str()),
        ("CREDITS", "2.25", "10.5")
    );
    let reversal = reversals.reverse_transaction(reverse(added.transaction_id)).await.expect("reverse").into_inner();
    assert_eq!((reversal.amount.as_str(), reversal.balance_after.as_str()), ("-10.5", "0"));

    let grant = pb::GrantCouponsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        coupon_id: "coffee".into(),
        name: "Coffee".into(),
        count: 3,
        reference: String::new(),
    };
    let granted = client.coupons.grant_coupons(grant).await.expect("grant").into_inner();
    let redeem = pb::UseCouponRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        coupon_id: "coffee".into(),
        remark: String::new(),
        reference: String::new(),
    };
    let redeemed = client.coupons.use_coupon(redeem).await.expect("use").into_inner();
    let reversal = reversals.reverse_transaction(reverse(redeemed.transaction_id)).await.expect("reverse");
    let reversal = reversal.into_inner();
    assert_eq!(
        (reversal.kind.as_str(), reversal.amount.as_str(), reversal.balance_after.as_str()),
        ("COUPONS", "1", "3")
    );
    let reversal = reversals.reverse_transaction(reverse(granted.transaction_id)).await.expect("reverse");
    assert_eq!(reversal.into_inner().balance_after, "0");
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!(alice.coupons.iter().map(|coupon| coupon.count).sum::<u32>(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_reversed_and_what_does_not_exist() {
    let (server, mut client) = started("reversals-reasons", &[PROGRAM, OTHER]).await;
    let mut reversals = transactions(&server, &server.admin_token).await;
    let added = client.add(PROGRAM, "alice", 50).await;
    let reversal = reversals.reverse_transaction(reverse(added.transaction_id)).await.expect("reverse").into_inner();
    // A reversal, a program's creation and a definition are not reversible.
    let formula = pb::DefineFormulaRequest {
        program_id: PROGRAM.into(),
        formula_id: "f".into(),
        name: "Weekday".into(),
        multiplier: "1.5".into(),
    };
    client.points.define_formula(formula).await.expect("define");
    let head = client.add(PROGRAM, "alice", 1).await.transaction_id;
    for transaction_id in [reversal.transaction_id, 1, head - 1] {
        let status = reason(
            reversals.reverse_transaction(reverse(transaction_id)).await,
            Code::FailedPrecondition,
            "NOT_REVERSIBLE",
            &[("transaction_id", &transaction_id.to_string())],
        );
        assert!(status.message().contains("cannot be reversed"), "{status:?}");
    }
    // Unknown, and another program's: the same NOT_FOUND, telling nothing of it.
    let theirs = client.add(OTHER, "bob", 5).await.transaction_id;
    for transaction_id in [theirs, theirs + 100] {
        reason(
            reversals.reverse_transaction(reverse(transaction_id)).await,
            Code::NotFound,
            "TRANSACTION_NOT_FOUND",
            &[("transaction_id", &transaction_id.to_string())],
        );
    }
    assert_eq!(client.member(OTHER, "bob").await.points, 5);
    let status = refused(reversals.reverse_transaction(reverse(0)).await, Code::InvalidArgument);
    support::assert_invalid_field(&status, "transaction_id");
    let nowhere = pb::ReverseTransactionRequest { program_id: "nowhere".into(), ..reverse(head) };
    reason(reversals.reverse_transaction(nowhere).await, Code::NotFound, "PROGRAM_NOT_FOUND", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_of_the_program_reverses_and_a_viewer_may_not() {
    let (server, mut client) = started("reversals-roles", &[PROGRAM, OTHER]).await;
    let added = client.add(PROGRAM, "alice", 50).await.transaction_id;
    let viewer = client.token(pb::Role::Viewer, PROGRAM).await;
    let stranger = client.token(pb::Role::Operator, OTHER).await;
    let operator = client.token(pb::Role::Operator, PROGRAM).await;
    let mut as_viewer = transactions(&server, &viewer).await;
    reason(as_viewer.reverse_transaction(reverse(added)).await, Code::PermissionDenied, "ROLE_TOO_LOW", &[]);
    let mut as_stranger = transactions(&server, &stranger).await;
    reason(as_stranger.reverse_transaction(reverse(added)).await, Code::PermissionDenied, "WRONG_PROGRAM", &[]);
    let mut anonymous = transactions(&server, "not-a-token").await;
    refused(anonymous.reverse_transaction(reverse(added)).await, Code::Unauthenticated);
    assert_eq!(client.member(PROGRAM, "alice").await.points, 50, "refused callers change nothing");
    let mut as_operator = transactions(&server, &operator).await;
    as_operator.reverse_transaction(reverse(added)).await.expect("an operator reverses");
    assert_eq!(client.member(PROGRAM, "alice").await.points, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversed_activity_shows_reversed_by_and_a_reference_applies_once() {
    let (server, mut client) = started("reversals-activity", &[PROGRAM]).await;
    let mut reversals = transactions(&server, &server.admin_token).await;
    let added = client.add(PROGRAM, "alice", 50).await.transaction_id;
    let kept = client.add(PROGRAM, "alice", 20).await.transaction_id;
    let referenced = pb::ReverseTransactionRequest { reference: "undo-1".into(), ..reverse(added) };
    let first = reversals.reverse_transaction(referenced.clone()).await.expect("reverse").into_inner();
    let again = reversals.reverse_transaction(referenced).await.expect("a repeat").into_inner();
    assert_eq!(again, pb::Reversal { duplicate: true, ..first.clone() }, "a repeat answers the original");
    assert_eq!(client.member(PROGRAM, "alice").await.points, 20, "a repeat changes nothing");
    // As every reference (SPEC §3): a repeat is answered with the original, whatever
    // else it names, and changes nothing.
    let reused = pb::ReverseTransactionRequest { reference: "undo-1".into(), ..reverse(kept) };
    let answered = reversals.reverse_transaction(reused).await.expect("a repeat").into_inner();
    assert_eq!(answered, pb::Reversal { duplicate: true, ..first.clone() });
    assert_eq!(client.member(PROGRAM, "alice").await.points, 20);

    let reversed = client.audit.get_activity(activity(added)).await.expect("activity").into_inner();
    assert_eq!(reversed.reversed_by, Some(first.transaction_id));
    let untouched = client.audit.get_activity(activity(kept)).await.expect("activity").into_inner();
    assert_eq!(untouched.reversed_by, None);
    let reversal = client.audit.get_activity(activity(first.transaction_id)).await.expect("activity").into_inner();
    assert_eq!(
        (reversal.kind.as_str(), reversal.amount.as_str(), reversal.balance_after.as_str(), reversal.remark.as_str()),
        ("POINTS", "-50", "20", "cashier mistake")
    );
    assert_eq!((reversal.source_id.as_str(), reversal.reference.as_str()), (added.to_string().as_str(), "undo-1"));
    let list =
        pb::ListActivitiesRequest { program_id: PROGRAM.into(), member_id: "alice".into(), ..Default::default() };
    let page = client.audit.list_activities(list).await.expect("list").into_inner();
    let shown: Vec<(u64, Option<u64>)> =
        page.activities.iter().map(|activity| (activity.transaction_id, activity.reversed_by)).collect();
    assert_eq!(shown, [(first.transaction_id, None), (kept, None), (added, Some(first.transaction_id))]);
}

/// Runs `ledger` against the server with its admin token.
fn ledger(server: &Server, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--addr")
        .arg(&server.address)
        .arg("--token-file")
        .arg(server.data_dir.join("admin.token"))
        .args(args)
        .output()
        .expect("run ledger")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_reverse_tx_undoes_a_transaction_from_the_command_line() {
    let (server, mut client) = started("reversals-cli", &[PROGRAM]).await;
    let added = client.add(PROGRAM, "alice", 50).await.transaction_id.to_string();
    let output = ledger(&server, &["--json", "reverse", &added, "--program", PROGRAM, "--remark", "returned"]);
    assert!(output.status.success(), "{output:?}");
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(reply["reversed_transaction_id"].to_string(), added);
    assert_eq!((reply["amount"].as_str(), reply["balance_after"].as_str()), (Some("-50"), Some("0")));
    let again = ledger(&server, &["reverse", &added, "--program", PROGRAM]);
    assert!(!again.status.success(), "a second reversal fails");
    let words = format!("{}{}", String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&again.stderr));
    assert!(words.contains("ALREADY_REVERSED") || words.contains("already reversed"), "{words}");
    let shown = ledger(&server, &["--json", "activity", "--program", PROGRAM, "--transaction-id", &added]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(shown["reversed_by"], reply["transaction_id"]);
}
