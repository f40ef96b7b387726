//! HoldsService over TCP against the real `ledgerd` (SPEC §14): every RPC, their
//! reasons (HOLD_NOT_FOUND, HOLD_NOT_PENDING, INSUFFICIENT_*), roles, program
//! scoping, `held_points` / `held` on the member, activities and the feed.

mod support;

use ledger_grpc::pb;
use support::{Patience, refused, seconds_from_now, started};
use tonic::Code;
use tonic_types::StatusExt;

const PROGRAM: &str = "cafe";
const OTHER: &str = "bakery";

/// Asserts a refusal with `code` and `reason` and returns its status.
#[track_caller]
fn refused_for<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    reason: &str,
) -> tonic::Status {
    let status = refused(result, code);
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!((info.domain.as_str(), info.reason.as_str()), ("ledger.v1", reason), "{status:?}");
    status
}

fn hold_points(member: &str, points: i64, reference: &str) -> pb::HoldPointsRequest {
    pb::HoldPointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "ticket".into(),
        reference: reference.into(),
        expires_at: None,
    }
}

fn hold_credits(member: &str, amount: &str) -> pb::HoldCreditsRequest {
    pb::HoldCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        credit_id: "twd".into(),
        amount: amount.into(),
        remark: "remote QR".into(),
        reference: String::new(),
        expires_at: None,
    }
}

fn capture(hold_id: &str, amount: &str, reference: &str) -> pb::CaptureHoldRequest {
    pb::CaptureHoldRequest {
        program_id: PROGRAM.into(),
        hold_id: hold_id.into(),
        amount: amount.into(),
        remark: String::new(),
        reference: reference.into(),
    }
}

fn void(hold_id: &str) -> pb::VoidHoldRequest {
    pb::VoidHoldRequest { program_id: PROGRAM.into(), hold_id: hold_id.into(), remark: "cancelled".into() }
}

fn get(hold_id: &str) -> pb::GetHoldRequest {
    pb::GetHoldRequest { program_id: PROGRAM.into(), hold_id: hold_id.into() }
}

fn list(member: &str, state: Option<pb::HoldState>, page_size: u32, page_token: &str) -> pb::ListHoldsRequest {
    pb::ListHoldsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        state: state.map(Into::into),
        page_size,
        page_token: page_token.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_points_hold_is_set_apart_then_captured_in_part_and_the_rest_comes_back() {
    let (_server, mut client) = started("holds-points", &[PROGRAM]).await;
    client.add(PROGRAM, "alice", 100).await;
    let held = client.holds.hold_points(hold_points("alice", 60, "h1")).await.expect("hold").into_inner();
    assert_eq!(held.state(), pb::HoldState::Pending);
    assert_eq!((held.kind.as_str(), held.amount.as_str(), held.captured.as_str()), ("POINTS", "60", "0"));
    assert_eq!(held.hold_id, held.transaction_id.to_string(), "a hold's id is its transaction id");
    assert_eq!(held.settled_transaction_id, 0);
    let created = held.created_at.expect("created_at").seconds;
    assert_eq!(held.expires_at.expect("expires_at").seconds - created, 15 * 60, "15 minutes by default");

    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!((alice.points, alice.held_points), (40, 60), "the available balance drops at once");
    refused_for(client.points.use_points(spend("alice", 41)).await, Code::FailedPrecondition, "INSUFFICIENT_POINTS");
    refused_for(
        client.holds.hold_points(hold_points("alice", 41, "")).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_POINTS",
    );

    // A repeat of the reference answers the hold, and holds nothing more.
    let again = client.holds.hold_points(hold_points("alice", 60, "h1")).await.expect("repeat").into_inner();
    assert!(again.duplicate);
    assert_eq!(again.hold_id, held.hold_id);
    assert_eq!(client.member(PROGRAM, "alice").await.held_points, 60);

    let captured = client.holds.capture_hold(capture(&held.hold_id, "25", "c1")).await.expect("capture").into_inner();
    assert_eq!(captured.state(), pb::HoldState::Captured);
    assert_eq!((captured.amount.as_str(), captured.captured.as_str()), ("60", "25"));
    assert!(captured.settled_transaction_id > held.transaction_id);
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!((alice.points, alice.held_points), (75, 0), "the 35 not captured came back");
    assert_eq!(alice.qualifying_amount, 100, "a capture counts as a use");
    let repeat = client.holds.capture_hold(capture(&held.hold_id, "", "c1")).await.expect("repeat").into_inner();
    assert!(repeat.duplicate);
    assert_eq!(repeat.captured, "25");

    refused_for(
        client.holds.capture_hold(capture(&held.hold_id, "", "")).await,
        Code::FailedPrecondition,
        "HOLD_NOT_PENDING",
    );
    refused_for(client.holds.void_hold(void(&held.hold_id)).await, Code::FailedPrecondition, "HOLD_NOT_PENDING");
    let got = client.holds.get_hold(get(&held.hold_id)).await.expect("get").into_inner();
    assert_eq!(got, pb::Hold { duplicate: false, ..captured });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_void_gives_everything_back_and_an_unknown_hold_is_not_found() {
    let (_server, mut client) = started("holds-void", &[PROGRAM]).await;
    client.add(PROGRAM, "alice", 50).await;
    let held = client.holds.hold_points(hold_points("alice", 50, "")).await.expect("hold").into_inner();
    let voided = client.holds.void_hold(void(&held.hold_id)).await.expect("void").into_inner();
    assert_eq!(voided.state(), pb::HoldState::Voided);
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!((alice.points, alice.held_points), (50, 0));

    // An add's transaction, a number no transaction has, and no number at all.
    let add = client.add(PROGRAM, "alice", 1).await.transaction_id.to_string();
    for hold_id in [add.as_str(), "999999", "abc"] {
        refused_for(client.holds.get_hold(get(hold_id)).await, Code::NotFound, "HOLD_NOT_FOUND");
        refused_for(client.holds.capture_hold(capture(hold_id, "", "")).await, Code::NotFound, "HOLD_NOT_FOUND");
        refused_for(client.holds.void_hold(void(hold_id)).await, Code::NotFound, "HOLD_NOT_FOUND");
    }
    // Invalid input is INVALID_ARGUMENT whatever the state.
    refused_for(client.holds.hold_points(hold_points("alice", 0, "")).await, Code::InvalidArgument, "INVALID_FIELD");
    let late = pb::HoldPointsRequest { expires_at: Some(seconds_from_now(31 * 86_400)), ..hold_points("alice", 1, "") };
    refused_for(client.holds.hold_points(late).await, Code::InvalidArgument, "INVALID_FIELD");
    refused_for(client.holds.capture_hold(capture("", "", "")).await, Code::InvalidArgument, "INVALID_FIELD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credits_hold_shows_as_held_on_the_member_credit() {
    let (_server, mut client) = started("holds-credits", &[PROGRAM]).await;
    let define = pb::DefineCreditRequest {
        program_id: PROGRAM.into(),
        credit_id: "twd".into(),
        name: "Cash".into(),
        unit: "TWD".into(),
    };
    client.credits.define_credit(define).await.expect("define");
    let top_up = pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        credit_id: "twd".into(),
        amount: "10.5".into(),
        remark: "top up".into(),
        reference: String::new(),
    };
    client.credits.add_credits(top_up).await.expect("add credits");
    let held = client.holds.hold_credits(hold_credits("alice", "7.25")).await.expect("hold").into_inner();
    assert_eq!((held.kind.as_str(), held.credit_id.as_str(), held.amount.as_str()), ("CREDITS", "twd", "7.25"));
    let credit = &client.member(PROGRAM, "alice").await.credits[0];
    assert_eq!((credit.amount.as_str(), credit.held.as_str()), ("3.25", "7.25"));
    refused_for(
        client.holds.hold_credits(hold_credits("alice", "3.2501")).await,
        Code::FailedPrecondition,
        "INSUFFICIENT_CREDITS",
    );
    let captured = client.holds.capture_hold(capture(&held.hold_id, "5.1", "")).await.expect("capture").into_inner();
    assert_eq!(captured.captured, "5.1");
    let credit = &client.member(PROGRAM, "alice").await.credits[0];
    assert_eq!((credit.amount.as_str(), credit.held.as_str()), ("5.4", "0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_past_its_time_is_never_counted_as_held_and_lists_filter_by_state_in_pages() {
    let (_server, mut client) = started("holds-expiry", &[PROGRAM]).await;
    client.add(PROGRAM, "alice", 100).await;
    client.add(PROGRAM, "bob", 100).await;
    let soon = pb::HoldPointsRequest { expires_at: Some(seconds_from_now(1)), ..hold_points("alice", 30, "") };
    let expiring = client.holds.hold_points(soon).await.expect("hold").into_inner();
    let pending = client.holds.hold_points(hold_points("bob", 20, "")).await.expect("hold").into_inner();
    let third = client.holds.hold_points(hold_points("bob", 10, "")).await.expect("hold").into_inner();

    let patience = Patience::new("the hold's expiry");
    while client.holds.get_hold(get(&expiring.hold_id)).await.expect("get").into_inner().state()
        != pb::HoldState::Expired
    {
        patience.next().await;
    }
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!((alice.points, alice.held_points), (100, 0), "an expired hold holds nothing, swept or not");
    refused_for(
        client.holds.capture_hold(capture(&expiring.hold_id, "", "")).await,
        Code::FailedPrecondition,
        "HOLD_NOT_PENDING",
    );

    let all = client.holds.list_holds(list("", None, 0, "")).await.expect("list").into_inner();
    let ids: Vec<&str> = all.holds.iter().map(|hold| hold.hold_id.as_str()).collect();
    assert_eq!(ids, [&expiring.hold_id, &pending.hold_id, &third.hold_id]);
    assert_eq!(all.next_page_token, "");
    let expired = client.holds.list_holds(list("", Some(pb::HoldState::Expired), 0, "")).await.expect("list");
    assert_eq!(expired.into_inner().holds.len(), 1);
    let first = client.holds.list_holds(list("bob", Some(pb::HoldState::Pending), 1, "")).await.expect("list");
    let first = first.into_inner();
    assert_eq!(first.holds[0].hold_id, pending.hold_id);
    let second = client.holds.list_holds(list("bob", None, 1, &first.next_page_token)).await.expect("list");
    let second = second.into_inner();
    assert_eq!((second.holds[0].hold_id.as_str(), second.next_page_token.as_str()), (third.hold_id.as_str(), ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_need_an_operator_of_the_program_and_reads_a_viewer() {
    let (server, mut admin) = started("holds-roles", &[PROGRAM, OTHER]).await;
    admin.add(PROGRAM, "alice", 100).await;
    let held = admin.holds.hold_points(hold_points("alice", 10, "")).await.expect("hold").into_inner();
    let mut viewer = server.clients(&admin.token(pb::Role::Viewer, PROGRAM).await).await;
    let mut stranger = server.clients(&admin.token(pb::Role::Operator, OTHER).await).await;
    let mut operator = server.clients(&admin.token(pb::Role::Operator, PROGRAM).await).await;
    let before = admin.member(PROGRAM, "alice").await;

    let writes = |client: &mut support::Clients| {
        let mut client = client.clone();
        let hold_id = held.hold_id.clone();
        async move {
            vec![
                client.holds.hold_points(hold_points("alice", 1, "")).await.map(|_| ()),
                client.holds.hold_credits(hold_credits("alice", "1")).await.map(|_| ()),
                client.holds.capture_hold(capture(&hold_id, "", "")).await.map(|_| ()),
                client.holds.void_hold(void(&hold_id)).await.map(|_| ()),
            ]
        }
    };
    for (who, reason, client) in [("viewer", "ROLE_TOO_LOW", &mut viewer), ("stranger", "WRONG_PROGRAM", &mut stranger)]
    {
        for call in writes(client).await {
            let status = call.expect_err("refused");
            assert_eq!(status.code(), Code::PermissionDenied, "{who}: {status:?}");
            assert_eq!(status.get_details_error_info().expect("ErrorInfo").reason, reason, "{who}");
        }
    }
    refused_for(stranger.holds.get_hold(get(&held.hold_id)).await, Code::PermissionDenied, "WRONG_PROGRAM");
    refused_for(stranger.holds.list_holds(list("", None, 0, "")).await, Code::PermissionDenied, "WRONG_PROGRAM");
    assert_eq!(admin.member(PROGRAM, "alice").await, before, "refused calls change nothing");

    assert_eq!(
        viewer.holds.get_hold(get(&held.hold_id)).await.expect("a viewer reads").into_inner().hold_id,
        held.hold_id
    );
    assert_eq!(
        viewer.holds.list_holds(list("alice", None, 0, "")).await.expect("a viewer lists").into_inner().holds.len(),
        1
    );
    operator.holds.void_hold(void(&held.hold_id)).await.expect("an operator voids");

    // A hold of another program is not found by its id in this one.
    admin.add(OTHER, "carol", 5).await;
    let elsewhere = pb::HoldPointsRequest { program_id: OTHER.into(), ..hold_points("carol", 5, "") };
    let elsewhere = admin.holds.hold_points(elsewhere).await.expect("hold elsewhere").into_inner();
    refused_for(operator.holds.get_hold(get(&elsewhere.hold_id)).await, Code::NotFound, "HOLD_NOT_FOUND");
    refused_for(operator.holds.void_hold(void(&elsewhere.hold_id)).await, Code::NotFound, "HOLD_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_shows_in_the_members_activities_and_the_event_feed() {
    let (_server, mut client) = started("holds-activities", &[PROGRAM]).await;
    client.add(PROGRAM, "alice", 100).await;
    let held = client.holds.hold_points(hold_points("alice", 60, "")).await.expect("hold").into_inner();
    client.holds.capture_hold(capture(&held.hold_id, "50", "")).await.expect("capture");
    let query =
        pb::ListActivitiesRequest { program_id: PROGRAM.into(), member_id: "alice".into(), ..Default::default() };
    let activities = client.audit.list_activities(query).await.expect("activities").into_inner().activities;
    let steps: Vec<(&str, &str)> =
        activities.iter().map(|activity| (activity.amount.as_str(), activity.balance_after.as_str())).collect();
    // Newest first: the capture gave 10 back, the hold took 60, the add gave 100.
    assert_eq!(steps, [("10", "50"), ("-60", "40"), ("100", "100")]);
    assert_eq!(activities[0].source_id, held.hold_id, "a settlement names its hold");

    let request = pb::StreamEventsRequest { from_sequence: 1, program_id: PROGRAM.into() };
    let mut stream = client.audit.stream_events(request).await.expect("stream").into_inner();
    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        let event = stream.message().await.expect("an event").expect("the feed goes on");
        kinds.push(event.kind);
    }
    assert_eq!(kinds, ["ProgramCreated", "PointsAdded", "PointsHeld", "HoldCaptured"]);
}

fn spend(member: &str, points: i64) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "spent".into(),
        ..Default::default()
    }
}

/// Runs `ledger --json` against the server with its admin token and returns its
/// answer.
fn ledger_cli(server: &support::Server, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--addr")
        .arg(&server.address)
        .arg("--token-file")
        .arg(server.data_dir.join("admin.token"))
        .arg("--json")
        .args(args)
        .output()
        .expect("run ledger");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ledger {args:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("ledger {args:?} printed {stdout:?}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_holds_captures_voids_shows_and_lists() {
    let (server, mut client) = started("holds-cli", &[PROGRAM]).await;
    client.add(PROGRAM, "alice", 100).await;
    let held = ledger_cli(
        &server,
        &["hold", "points", "--program", PROGRAM, "--member", "alice", "--points", "60", "--remark", "ticket"],
    );
    assert_eq!((held["state"].as_str(), held["amount"].as_str()), (Some("PENDING"), Some("60")));
    let hold_id = held["hold_id"].as_str().expect("hold_id").to_owned();
    let captured = ledger_cli(&server, &["hold", "capture", "--program", PROGRAM, &hold_id, "--amount", "45"]);
    assert_eq!((captured["state"].as_str(), captured["captured"].as_str()), (Some("CAPTURED"), Some("45")));
    let other = ledger_cli(
        &server,
        &["hold", "points", "--program", PROGRAM, "--member", "alice", "--points", "5", "--remark", "ticket"],
    );
    let other_id = other["hold_id"].as_str().expect("hold_id").to_owned();
    let voided = ledger_cli(&server, &["hold", "void", "--program", PROGRAM, &other_id]);
    assert_eq!(voided["state"].as_str(), Some("VOIDED"));
    let shown = ledger_cli(&server, &["hold", "show", "--program", PROGRAM, &hold_id]);
    assert_eq!(shown["captured"].as_str(), Some("45"));
    let listed = ledger_cli(&server, &["hold", "list", "--program", PROGRAM, "--state", "voided"]);
    let listed: Vec<&str> =
        listed["holds"].as_array().expect("holds").iter().filter_map(|hold| hold["hold_id"].as_str()).collect();
    assert_eq!(listed, [other_id.as_str()]);
    assert_eq!(client.member(PROGRAM, "alice").await.points, 55);
}
