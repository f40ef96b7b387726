//! SPEC §13 over gRPC: every error carries a `google.rpc.ErrorInfo` (domain
//! `ledger.v1`, a reason, metadata naming what it is about), INVALID_ARGUMENT lists
//! every problem of the request as field violations, and a bulk's bad item stops
//! it with `fail_at` and the same reason names. One request per reason the
//! current RPCs can produce, against the real `ledgerd` over TCP.
//!
//! Not here: HOLD_NOT_FOUND, ALREADY_REVERSED, NOT_REVERSIBLE and HOLD_NOT_PENDING
//! (no RPC makes them yet); SHUTTING_DOWN, which a client cannot see over the
//! wire today (the server drains its calls before the ledger closes; its mapping
//! is tested in `ledger-grpc`'s `status`); TOO_MANY_REQUESTS and TOO_MANY_STREAMS
//! (`grpc_limits`).

mod support;

use ledger_grpc::pb;
use support::{Clients, Patience, Server, get_member, seconds_from_now, started, violations};
use tonic::Code;
use tonic_types::StatusExt;

const PROGRAM: &str = "cafe";
const OTHER: &str = "bakery";
/// A program named as Echoss names a brand (`brand_id` 7).
const BRAND: &str = "7";

/// Asserts the code, the domain, the reason and each of `metadata` of a refusal.
#[track_caller]
fn assert_reason<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    reason: &str,
    metadata: &[(&str, &str)],
) -> tonic::Status {
    let status = match result {
        Ok(response) => panic!("expected {code:?} {reason}, got {:?}", response.into_inner()),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, "ledger.v1", "{status:?}");
    assert_eq!(info.reason, reason, "{status:?}");
    for (key, value) in metadata {
        assert_eq!(info.metadata.get(*key).map(String::as_str), Some(*value), "metadata {key} of {info:?}");
    }
    status
}

fn add(member: &str, points: i64, remark: &str) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: remark.into(),
        ..Default::default()
    }
}

fn spend(member: &str, points: i64) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "coffee".into(),
        ..Default::default()
    }
}

fn card(name: &str, lowest_amount: i64) -> pb::CreateMemberCardRequest {
    pb::CreateMemberCardRequest { program_id: PROGRAM.into(), name: name.into(), lowest_amount, ..Default::default() }
}

fn token_request(role: pb::Role, program: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest { role: role.into(), program_id: program.into(), name: "test".into(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_argument_lists_every_problem_of_the_request() {
    let (_server, mut admin) = started("reasons-invalid", &[PROGRAM]).await;
    let long_member = "m".repeat(200);
    let status = assert_reason(
        admin.points.add_points(add(&long_member, 0, " ")).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
        &[("field", "member_id"), ("violations", "3")],
    );
    let mut fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    fields.sort();
    assert_eq!(fields, ["member_id", "points", "remark"], "{status:?}");
    for (field, description) in violations(&status) {
        assert!(!description.starts_with(&field), "a description is the rule alone: {description:?}");
    }

    // A value the edge cannot read (a decimal that is none) with the core's own
    // checks of the rest of the request.
    let bad_cost = pb::AddPointsRequest { cost: "12,50".into(), formula_id: "f".into(), ..add("alice", 0, "") };
    let status = assert_reason(
        admin.points.add_points(bad_cost).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
        &[("field", "cost")],
    );
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["cost", "remark"], "{status:?}");

    let credits = pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: String::new(),
        credit_id: "wallet".into(),
        amount: "1.23456".into(),
        remark: String::new(),
        reference: String::new(),
    };
    let status = assert_reason(admin.credits.add_credits(credits).await, Code::InvalidArgument, "INVALID_FIELD", &[]);
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["member_id", "remark", "amount"], "{status:?}");

    let kinds = pb::ListActivitiesRequest {
        program_id: PROGRAM.into(),
        kinds: vec!["POINTS".into(), "HOLIDAYS".into()],
        page_token: "zz".into(),
        ..Default::default()
    };
    let status = assert_reason(admin.audit.list_activities(kinds).await, Code::InvalidArgument, "INVALID_FIELD", &[]);
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["kinds[1]", "page_token"], "{status:?}");

    let statement = |line_id: &str, used_at: i64| pb::VoucherStatementData {
        brand_id: 7,
        promotion_id: 1,
        voucher_identifier: format!("V-{line_id}"),
        voucher_number: "N-1".into(),
        voucher_name: "Free coffee".into(),
        line_id: line_id.into(),
        sent_at: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
        used_at: Some(prost_types::Timestamp { seconds: used_at, nanos: 0 }),
        ..Default::default()
    };
    let import = pb::ImportVoucherStatementsRequest {
        data: vec![statement("U1", 253_402_300_800), statement(" ", 1_700_000_100)],
    };
    let status = admin.vouchers.import_voucher_statements(import).await;
    let status = assert_reason(status, Code::InvalidArgument, "INVALID_FIELD", &[("field", "data[0].used_at")]);
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["data[0].used_at", "data[1].line_id"], "{status:?}");

    let token = pb::IssueTokenRequest { max_requests: Some(0), ..token_request(pb::Role::Unspecified, PROGRAM) };
    let status = assert_reason(admin.admin.issue_token(token).await, Code::InvalidArgument, "INVALID_FIELD", &[]);
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["role", "max_requests"], "{status:?}");

    let nobody = admin.members.get_member(get_member(PROGRAM, "alice")).await;
    assert_reason(nobody, Code::NotFound, "MEMBER_NOT_FOUND", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_not_found_names_what_is_missing() {
    let (_server, mut admin) = started("reasons-not-found", &[PROGRAM, BRAND]).await;
    admin.add(PROGRAM, "alice", 10).await;

    let nowhere = pb::AddPointsRequest { program_id: "nowhere".into(), ..add("alice", 1, "visit") };
    assert_reason(
        admin.points.add_points(nowhere).await,
        Code::NotFound,
        "PROGRAM_NOT_FOUND",
        &[("field", "program_id"), ("program_id", "nowhere")],
    );
    assert_reason(
        admin.members.get_member(get_member(PROGRAM, "nobody")).await,
        Code::NotFound,
        "MEMBER_NOT_FOUND",
        &[("member_id", "nobody"), ("program_id", PROGRAM)],
    );
    let formula = pb::AddPointsRequest { cost: "10".into(), formula_id: "double".into(), ..add("alice", 0, "meal") };
    assert_reason(
        admin.points.add_points(formula).await,
        Code::NotFound,
        "FORMULA_NOT_FOUND",
        &[("field", "formula_id"), ("formula_id", "double")],
    );
    let reward = pb::UsePointsRequest { reward_id: "mug".into(), ..spend("alice", 0) };
    assert_reason(
        admin.points.use_points(reward).await,
        Code::NotFound,
        "REWARD_NOT_FOUND",
        &[("field", "reward_id"), ("reward_id", "mug")],
    );
    let credits = pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        credit_id: "wallet".into(),
        amount: "5".into(),
        remark: "top up".into(),
        reference: String::new(),
    };
    assert_reason(
        admin.credits.add_credits(credits).await,
        Code::NotFound,
        "CREDIT_NOT_FOUND",
        &[("field", "credit_id"), ("credit_id", "wallet")],
    );
    let update = pb::UpdateMemberCardRequest {
        program_id: PROGRAM.into(),
        card_id: "404".into(),
        name: Some("Gold".into()),
        ..Default::default()
    };
    assert_reason(
        admin.tiers.update_member_card(update).await,
        Code::NotFound,
        "CARD_NOT_FOUND",
        &[("field", "card_id"), ("card_id", "404")],
    );
    let levels = pb::SetMemberLevelsRequest {
        program_id: PROGRAM.into(),
        levels: vec![pb::MemberLevel { member_id: "alice".into(), level: 3 }],
    };
    assert_reason(
        admin.members.set_member_levels(levels).await,
        Code::NotFound,
        "CARD_NOT_FOUND",
        &[("field", "levels[0].level"), ("level", "3")],
    );
    let voucher = pb::GetVoucherStatementRequest { brand_id: 7, promotion_id: 3, voucher_identifier: "V-1".into() };
    assert_reason(
        admin.vouchers.get_voucher_statement(voucher).await,
        Code::NotFound,
        "VOUCHER_NOT_FOUND",
        &[("brand_id", "7"), ("promotion_id", "3"), ("voucher_identifier", "V-1")],
    );
    let activity =
        pb::GetActivityRequest { program_id: PROGRAM.into(), transaction_id: 9_999, reference: String::new() };
    assert_reason(
        admin.audit.get_activity(activity).await,
        Code::NotFound,
        "TRANSACTION_NOT_FOUND",
        &[("field", "transaction_id"), ("transaction_id", "9999")],
    );
    let by_reference =
        pb::GetActivityRequest { program_id: PROGRAM.into(), transaction_id: 0, reference: "r-9".into() };
    assert_reason(
        admin.audit.get_activity(by_reference).await,
        Code::NotFound,
        "TRANSACTION_NOT_FOUND",
        &[("field", "reference"), ("reference", "r-9")],
    );
    let revoke = pb::RevokeTokenRequest { token_id: "tok-404".into() };
    assert_reason(
        admin.admin.revoke_token(revoke).await,
        Code::NotFound,
        "TOKEN_NOT_FOUND",
        &[("token_id", "tok-404")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_of_state_names_its_reason() {
    let (_server, mut admin) = started("reasons-state", &[PROGRAM]).await;
    admin.add(PROGRAM, "alice", 50).await;
    assert_reason(
        admin.points.use_points(spend("alice", 5_000)).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_POINTS",
        &[("field", "points"), ("member_id", "alice"), ("available", "50"), ("requested", "5000")],
    );

    let define = pb::DefineCreditRequest {
        program_id: PROGRAM.into(),
        credit_id: "wallet".into(),
        name: "Wallet".into(),
        unit: "TWD".into(),
    };
    admin.credits.define_credit(define).await.expect("define a credit type");
    let use_credits = pb::UseCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        credit_id: "wallet".into(),
        amount: "7.50".into(),
        remark: "lunch".into(),
        reference: String::new(),
    };
    assert_reason(
        admin.credits.use_credits(use_credits).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
        &[("member_id", "alice"), ("credit_id", "wallet"), ("available", "0"), ("requested", "7.5")],
    );

    let coupon = pb::UseCouponRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        coupon_id: "free-tea".into(),
        remark: String::new(),
        reference: String::new(),
    };
    assert_reason(
        admin.coupons.use_coupon(coupon).await,
        Code::FailedPrecondition,
        "NO_COUPON",
        &[("member_id", "alice"), ("coupon_id", "free-tea")],
    );

    // A reward that expires a second from now: bob, with no points, is short of
    // it until it expires, then told it expired.
    let reward = pb::DefineRewardRequest {
        program_id: PROGRAM.into(),
        reward_id: "mug".into(),
        name: "Mug".into(),
        points: 10,
        expires_at: Some(seconds_from_now(1)),
    };
    admin.points.define_reward(reward).await.expect("define a reward");
    let patience = Patience::new("the reward to expire");
    let expired = loop {
        let redeem = pb::UsePointsRequest { reward_id: "mug".into(), ..spend("bob", 0) };
        match admin.points.use_points(redeem).await {
            Err(status) if status.get_details_error_info().is_some_and(|info| info.reason == "INSUFFICIENT_POINTS") => {
                patience.next().await;
            }
            other => break other,
        }
    };
    assert_reason(expired, Code::FailedPrecondition, "REWARD_EXPIRED", &[("field", "reward_id"), ("reward_id", "mug")]);

    let first = admin.tiers.create_member_card(card("Green", 0)).await.expect("level 1").into_inner();
    assert_reason(
        admin.tiers.create_member_card(card("Green", 100)).await,
        Code::AlreadyExists,
        "NAME_TAKEN",
        &[("field", "name"), ("name", "Green")],
    );
    for (name, lowest) in [("Silver", 100), ("Gold", 200), ("Platinum", 300), ("Diamond", 400)] {
        admin.tiers.create_member_card(card(name, lowest)).await.expect("levels 2 to 5");
    }
    assert_reason(
        admin.tiers.create_member_card(card("Obsidian", 500)).await,
        Code::FailedPrecondition,
        "TOO_MANY_CARDS",
        &[("field", "program_id")],
    );
    let delete = pb::DeleteMemberCardRequest { program_id: PROGRAM.into(), card_id: first.card_id.clone() };
    assert_reason(
        admin.tiers.delete_member_card(delete).await,
        Code::FailedPrecondition,
        "LEVEL_ONE_CARD",
        &[("field", "card_id")],
    );

    assert_reason(
        admin.admin.create_program(pb::CreateProgramRequest { program_id: PROGRAM.into(), name: "Again".into() }).await,
        Code::AlreadyExists,
        "PROGRAM_EXISTS",
        &[("program_id", PROGRAM)],
    );
    let earned = admin.points.add_points(pb::AddPointsRequest { reference: "r-1".into(), ..add("alice", 5, "visit") });
    let earned = earned.await.expect("an add with a reference").into_inner();
    let reused = pb::UsePointsRequest { reference: "r-1".into(), ..spend("alice", 1) };
    let transaction_id = earned.transaction_id.to_string();
    assert_reason(
        admin.points.use_points(reused).await,
        Code::AlreadyExists,
        "REFERENCE_IN_USE",
        &[("field", "reference"), ("reference", "r-1"), ("transaction_id", transaction_id.as_str())],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_name_why_a_call_is_refused() {
    let (server, mut admin) = started("reasons-auth", &[PROGRAM, OTHER]).await;
    let channel = server.channel().await;

    let mut bare = pb::members_service_client::MembersServiceClient::new(channel.clone());
    assert_reason(bare.get_member(get_member(PROGRAM, "alice")).await, Code::Unauthenticated, "TOKEN_MISSING", &[]);
    let mut basic = Clients::with_authorization(channel.clone(), "Basic YWxpY2U6c2VjcmV0");
    let basic_call = basic.members.get_member(get_member(PROGRAM, "alice")).await;
    assert_reason(basic_call, Code::Unauthenticated, "TOKEN_MISSING", &[]);
    let mut unknown = Clients::new(channel.clone(), "ldg_00000000000000000000000000000000");
    let unknown_call = unknown.members.get_member(get_member(PROGRAM, "alice")).await;
    assert_reason(unknown_call, Code::Unauthenticated, "TOKEN_UNKNOWN", &[]);

    let revoked = admin.admin.issue_token(token_request(pb::Role::Viewer, PROGRAM)).await.expect("issue").into_inner();
    admin.admin.revoke_token(pb::RevokeTokenRequest { token_id: revoked.token_id }).await.expect("revoke");
    let mut revoked = Clients::new(channel.clone(), &revoked.token);
    let revoked_call = revoked.members.get_member(get_member(PROGRAM, "alice")).await;
    assert_reason(revoked_call, Code::Unauthenticated, "TOKEN_REVOKED", &[]);

    let once = pb::IssueTokenRequest { max_requests: Some(1), ..token_request(pb::Role::Viewer, PROGRAM) };
    let once = admin.admin.issue_token(once).await.expect("issue").into_inner();
    let mut once = Clients::new(channel.clone(), &once.token);
    let _first = once.members.get_member(get_member(PROGRAM, "alice")).await;
    let second = once.members.get_member(get_member(PROGRAM, "alice")).await;
    assert_reason(second, Code::Unauthenticated, "TOKEN_EXHAUSTED", &[]);

    let viewer = admin.token(pb::Role::Viewer, PROGRAM).await;
    let mut viewer = Clients::new(channel.clone(), &viewer);
    assert_reason(
        viewer.points.add_points(add("alice", 1, "visit")).await,
        Code::PermissionDenied,
        "ROLE_TOO_LOW",
        &[("role", "VIEWER"), ("required_role", "OPERATOR")],
    );
    let operator = admin.token(pb::Role::Operator, OTHER).await;
    let mut operator = Clients::new(channel.clone(), &operator);
    assert_reason(
        operator.admin.list_programs(pb::ListProgramsRequest {}).await,
        Code::PermissionDenied,
        "ROLE_TOO_LOW",
        &[("role", "OPERATOR"), ("required_role", "ADMIN")],
    );
    assert_reason(
        operator.points.add_points(add("alice", 1, "visit")).await,
        Code::PermissionDenied,
        "WRONG_PROGRAM",
        &[("program_id", PROGRAM), ("token_program_id", OTHER)],
    );

    let soon =
        pb::IssueTokenRequest { expires_at: Some(seconds_from_now(1)), ..token_request(pb::Role::Viewer, PROGRAM) };
    let soon = admin.admin.issue_token(soon).await.expect("issue").into_inner();
    let mut soon = Clients::new(channel, &soon.token);
    let patience = Patience::new("the token to expire");
    let expired = loop {
        match soon
            .members
            .list_members(pb::ListMembersRequest { program_id: PROGRAM.into(), ..Default::default() })
            .await
        {
            Ok(_) => patience.next().await,
            Err(status) => break status,
        }
    };
    assert_reason(Err::<tonic::Response<()>, _>(expired), Code::Unauthenticated, "TOKEN_EXPIRED", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_is_storage_unavailable() {
    let dir = support::fresh_dir("reasons-storage");
    let fault = dir.with_extension("fault");
    let fault_flag = fault.to_str().expect("utf-8 path").to_owned();
    let server = Server::start_in(dir, &["--fault-file", fault_flag.as_str(), "--fault-probe-ms", "20"]);
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    std::fs::write(&fault, "EIO").expect("break the disk");
    assert_reason(
        admin.points.add_points(add("alice", 1, "visit")).await,
        Code::Unavailable,
        "STORAGE_UNAVAILABLE",
        &[],
    );
    std::fs::remove_file(&fault).expect("mend the disk");
}

/// What breaks item 2 of a bulk.
type Breakage = Box<dyn Fn(&mut pb::BulkAddItem)>;

/// The bulk's items: four adds, with `broken` applied to item 2.
fn bulk(broken: impl FnOnce(&mut pb::BulkAddItem), atomic: bool) -> pb::BulkAddPointsRequest {
    let mut items: Vec<pb::BulkAddItem> = (0..4)
        .map(|index| pb::BulkAddItem {
            member_id: format!("m{index}"),
            points: 10,
            remark: "visit".into(),
            ..Default::default()
        })
        .collect();
    broken(&mut items[2]);
    pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items, atomic }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_bulk_item_stops_the_bulk_at_its_index_with_the_items_before_applied() {
    let (_server, mut admin) = started("reasons-bulk", &[PROGRAM]).await;
    // google.protobuf.Timestamp ends at 9999-12-31T23:59:59Z.
    let beyond = prost_types::Timestamp { seconds: 253_402_300_800, nanos: 0 };
    let cases: [(&str, Breakage, &str); 2] = [
        ("a time out of range", Box::new(move |item| item.occurred_at = Some(beyond)), "items[2].occurred_at"),
        ("points out of range", Box::new(|item| item.points = 0), "items[2].points"),
    ];
    for (round, (what, broken, field)) in cases.into_iter().enumerate() {
        let program = format!("bulk-{round}");
        admin.create_program(&program).await;
        let mut request = bulk(&broken, false);
        request.program_id.clone_from(&program);
        let result = admin.points.bulk_add_points(request).await.expect("a bulk with a bad item answers").into_inner();
        assert_eq!(result.fail_at, Some(2), "{what}: {result:?}");
        assert_eq!(result.applied_count, 2, "{what}: {result:?}");
        let failure = result.failure.clone().expect("a failure");
        assert_eq!((failure.code.as_str(), failure.field.as_str()), ("INVALID_FIELD", field), "{what}: {failure:?}");
        assert!(failure.message.contains(field), "{what}: {failure:?}");
        let balances: Vec<(String, i64)> = result.balances.iter().map(|b| (b.member_id.clone(), b.points)).collect();
        assert_eq!(balances, [("m0".to_owned(), 10), ("m1".to_owned(), 10)], "{what}");
        assert_eq!(admin.member(&program, "m1").await.points, 10, "{what}: item 1 applied");
        let missing = admin.members.get_member(get_member(&program, "m2")).await;
        assert_reason(missing, Code::NotFound, "MEMBER_NOT_FOUND", &[("member_id", "m2")]);

        let mut atomic = bulk(&broken, true);
        atomic.program_id.clone_from(&program);
        let result = admin.points.bulk_add_points(atomic).await.expect("an atomic bulk answers").into_inner();
        assert_eq!((result.fail_at, result.applied_count), (Some(2), 0), "{what}: {result:?}");
        assert_eq!(admin.member(&program, "m0").await.points, 10, "{what}: the atomic bulk applied nothing");
    }

    // A bulk use: the same reason names as a single use.
    let spend = |member: &str, points: i64| pb::BulkUseItem {
        member_id: member.into(),
        points,
        remark: "coffee".into(),
        ..Default::default()
    };
    let uses = pb::BulkUsePointsRequest {
        program_id: "bulk-0".into(),
        items: vec![spend("m0", 5), spend("m1", 50)],
        atomic: false,
    };
    let result = admin.points.bulk_use_points(uses).await.expect("a bulk use answers").into_inner();
    let failure = result.failure.expect("item 1 is short");
    assert_eq!(
        (result.fail_at, failure.code.as_str(), failure.field.as_str()),
        (Some(1), "INSUFFICIENT_POINTS", "items[1].points")
    );

    // Only the item count (or the program) refuses the whole request.
    let empty = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items: Vec::new(), atomic: false };
    assert_reason(
        admin.points.bulk_add_points(empty).await,
        Code::InvalidArgument,
        "INVALID_FIELD",
        &[("field", "items")],
    );
    let nowhere = pb::BulkAddPointsRequest { program_id: "nowhere".into(), ..bulk(|_| {}, false) };
    assert_reason(admin.points.bulk_add_points(nowhere).await, Code::NotFound, "PROGRAM_NOT_FOUND", &[]);
}
