//! SPEC §16 over gRPC: ListExpiringPoints (soonest first, paged, bounded by
//! `before`, never a lot past its time even before the sweep, VIEWER allowed,
//! program scoping) and GetMember `as_of` (NOT_FOUND before the member's first
//! event, the older balance between events, the level as the cards then made it,
//! the same answers after a SIGKILL and a restart).

mod support;

use ledger_grpc::pb;
use support::{Clients, Patience, Server, assert_invalid_field, fresh_dir, refused, seconds_from_now};
use tonic::Code;
use tonic_types::StatusExt;

const PROGRAM: &str = "cafe";
const OTHER: &str = "bakery";

/// The sweep off: a lot past its time stays in the expiry index until a sweep
/// records its expiry, which is what reads must not be fooled by.
const NO_SWEEP: &[&str] = &["--expiry-sweep-secs", "0"];

async fn started(name: &str) -> (Server, Clients) {
    let server = Server::start_in(fresh_dir(name), NO_SWEEP);
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    client.create_program(OTHER).await;
    (server, client)
}

fn add(program: &str, member: &str, points: i64, expires_at: Option<prost_types::Timestamp>) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: program.into(),
        member_id: member.into(),
        points,
        remark: "visit".into(),
        expires_at,
        ..Default::default()
    }
}

fn expiring(before: prost_types::Timestamp, page_size: u32, page_token: &str) -> pb::ListExpiringPointsRequest {
    pb::ListExpiringPointsRequest {
        program_id: PROGRAM.into(),
        before: Some(before),
        page_size,
        page_token: page_token.into(),
    }
}

#[track_caller]
fn assert_reason(status: &tonic::Status, reason: &str) {
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
}

/// Every page of lots before `before`, as (member, points, expires_at seconds).
async fn all_pages(client: &mut Clients, before: prost_types::Timestamp) -> Vec<(String, i64, i64)> {
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = client.members.list_expiring_points(expiring(before, 2, &token)).await.expect("page").into_inner();
        assert!(page.lots.len() <= 2, "{page:?}");
        let seconds = |lot: &pb::ExpiringLot| lot.expires_at.expect("expires_at").seconds;
        listed.extend(page.lots.iter().map(|lot| (lot.member_id.clone(), lot.points, seconds(lot))));
        if page.next_page_token.is_empty() {
            return listed;
        }
        token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_points_come_soonest_first_in_pages_and_never_past_their_time() {
    let (server, mut client) = started("history-expiring").await;
    let day = |count: i64| seconds_from_now(count * 86_400);
    let lots = [("dan", 40, day(40)), ("cy", 30, day(3)), ("bob", 20, day(2)), ("ann", 10, day(1))];
    // Added latest first, so that the order listed is the index's, not the log's.
    for (member, points, expires_at) in lots {
        client.points.add_points(add(PROGRAM, member, points, Some(expires_at))).await.expect("add");
    }
    client.points.add_points(add(PROGRAM, "ann", 99, None)).await.expect("a lot that never expires");
    client.points.add_points(add(OTHER, "ann", 7, Some(day(1)))).await.expect("another program's lot");
    // A lot a few seconds from its end; the sweep is off.
    let soon = seconds_from_now(2);
    client.points.add_points(add(PROGRAM, "eve", 5, Some(soon))).await.expect("add");
    let use_part = pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: "bob".into(),
        points: 5,
        remark: "tea".into(),
        ..Default::default()
    };
    client.points.use_points(use_part).await.expect("use");

    let before = day(30);
    let first = client.members.list_expiring_points(expiring(before, 0, "")).await.expect("list").into_inner();
    assert!(first.next_page_token.is_empty(), "the default page holds them all: {first:?}");

    // Once its time is up eve's lot is never listed, though no sweep recorded its expiry.
    let patience = Patience::new("eve's lot to pass its time");
    while seconds_from_now(0).seconds <= soon.seconds {
        patience.next().await;
    }
    let listed = all_pages(&mut client, before).await;
    let [_, (cy, _, in_3), (bob, _, in_2), (ann, _, in_1)] = lots;
    let expected = [(ann, 10, in_1), (bob, 15, in_2), (cy, 30, in_3)];
    let expected: Vec<(String, i64, i64)> =
        expected.iter().map(|(member, points, at)| ((*member).to_owned(), *points, at.seconds)).collect();
    assert_eq!(listed, expected, "dan's lot is past `before`, ann's pool never expires, bob spent 5");

    // A viewer may list; a token of another program may not.
    let viewer = client.token(pb::Role::Viewer, PROGRAM).await;
    let mut viewer = server.clients(&viewer).await;
    assert_eq!(all_pages(&mut viewer, before).await, listed);
    let stranger = client.token(pb::Role::Viewer, OTHER).await;
    let mut stranger = server.clients(&stranger).await;
    let status = refused(stranger.members.list_expiring_points(expiring(before, 0, "")).await, Code::PermissionDenied);
    assert_reason(&status, "WRONG_PROGRAM");

    let missing = pb::ListExpiringPointsRequest { before: None, ..expiring(before, 0, "") };
    assert_invalid_field(&refused(client.members.list_expiring_points(missing).await, Code::InvalidArgument), "before");
    let forged = expiring(before, 0, "not-a-token");
    let status = refused(client.members.list_expiring_points(forged).await, Code::InvalidArgument);
    assert_invalid_field(&status, "page_token");
}

fn as_of(member: &str, at: prost_types::Timestamp) -> pb::GetMemberRequest {
    pb::GetMemberRequest { program_id: PROGRAM.into(), member_id: member.into(), as_of: Some(at) }
}

/// `at` moved by `micros` microseconds.
fn shifted(at: prost_types::Timestamp, micros: i64) -> prost_types::Timestamp {
    let total = at.seconds * 1_000_000 + i64::from(at.nanos) / 1_000 + micros;
    prost_types::Timestamp {
        seconds: total.div_euclid(1_000_000),
        nanos: i32::try_from(total.rem_euclid(1_000_000) * 1_000).expect("below a second"),
    }
}

/// When each of `member`'s transactions was recorded, oldest first.
async fn recorded(client: &mut Clients, member: &str) -> Vec<prost_types::Timestamp> {
    let request = pb::ListActivitiesRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        page_size: 100,
        ..Default::default()
    };
    let page = client.audit.list_activities(request).await.expect("activities").into_inner();
    page.activities.iter().rev().map(|activity| activity.recorded_at.expect("recorded_at")).collect()
}

/// (points, qualifying amount, level, level name) as of `at`, or the status code.
async fn balance(
    client: &mut Clients,
    member: &str,
    at: prost_types::Timestamp,
) -> Result<(i64, i64, u32, String), Code> {
    match client.members.get_member(as_of(member, at)).await {
        Ok(found) => {
            let found = found.into_inner();
            Ok((found.points, found.qualifying_amount, found.level, found.level_name))
        }
        Err(status) => {
            assert_reason(&status, "MEMBER_NOT_FOUND");
            Err(status.code())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_member_as_of_shows_the_member_then_and_the_same_after_a_crash() {
    let (server, mut client) = started("history-as-of").await;
    let card = |name: &str, lowest_amount: i64| pb::CreateMemberCardRequest {
        program_id: PROGRAM.into(),
        name: name.into(),
        lowest_amount,
        ..Default::default()
    };
    client.tiers.create_member_card(card("Green", 0)).await.expect("card");
    let gold = client.tiers.create_member_card(card("Gold", 100)).await.expect("card").into_inner();
    client.points.add_points(add(PROGRAM, "ann", 60, None)).await.expect("add");
    client.points.add_points(add(PROGRAM, "ann", 60, None)).await.expect("add");
    let spend = pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: "ann".into(),
        points: 100,
        remark: "cake".into(),
        ..Default::default()
    };
    client.points.use_points(spend).await.expect("use");
    // Gold moves out of reach: ann is Green now, and was Gold before the move.
    let raise = pb::UpdateMemberCardRequest {
        program_id: PROGRAM.into(),
        card_id: gold.card_id.clone(),
        lowest_amount: Some(1_000),
        ..Default::default()
    };
    client.tiers.update_member_card(raise).await.expect("raise");
    let after_raise = seconds_from_now(1);
    let times = recorded(&mut client, "ann").await;
    assert_eq!(times.len(), 3);

    let instants = [shifted(times[0], -1), times[0], shifted(times[1], -1), times[1], times[2], after_raise];
    let mut answers = Vec::new();
    for at in instants {
        answers.push(balance(&mut client, "ann", at).await);
    }
    let at = |points, qualifying, level, name: &str| Ok((points, qualifying, level, name.to_owned()));
    assert_eq!(
        answers,
        [
            Err(Code::NotFound),
            at(60, 60, 1, "Green"),
            at(60, 60, 1, "Green"),
            at(120, 120, 2, "Gold"),
            at(20, 120, 2, "Gold"),
            at(20, 120, 1, "Green"),
        ]
    );
    let now = client.member(PROGRAM, "ann").await;
    assert_eq!(at(now.points, now.qualifying_amount, now.level, &now.level_name), answers[5]);
    // An instant outside google.protobuf.Timestamp's range names the field.
    let far = prost_types::Timestamp { seconds: i64::MAX, nanos: 0 };
    assert_invalid_field(&refused(client.members.get_member(as_of("ann", far)).await, Code::InvalidArgument), "as_of");

    // A viewer may ask; after a SIGKILL and a restart the answers are the same.
    let viewer = client.token(pb::Role::Viewer, PROGRAM).await;
    let dir = server.kill();
    let server = Server::start_in(dir, NO_SWEEP);
    let mut viewer = server.clients(&viewer).await;
    let mut again = Vec::new();
    for at in instants {
        again.push(balance(&mut viewer, "ann", at).await);
    }
    assert_eq!(again, answers, "as_of reads after the crash");
}

/// `ledger replay` on a stopped server's directory, exporting to `file`.
fn replay(dir: &std::path::Path, until: &[&str], file: &std::path::Path) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("replay")
        .arg("--data-dir")
        .arg(dir)
        .args(until)
        .arg("--export")
        .arg(file)
        .output()
        .expect("run ledger replay");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{printed}");
    std::fs::read_to_string(file).expect("the export")
}

fn rfc3339(at: prost_types::Timestamp) -> String {
    let time = chrono::DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).expect("nanos")).expect("time");
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_exports_every_members_balances_at_two_dates_as_csv_and_json_lines() {
    let (server, mut client) = started("history-export").await;
    let credit = pb::DefineCreditRequest {
        program_id: PROGRAM.into(),
        credit_id: "wallet".into(),
        name: "Wallet".into(),
        unit: "TWD".into(),
    };
    client.credits.define_credit(credit).await.expect("credit");
    let credits = |amount: &str| pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "ann".into(),
        credit_id: "wallet".into(),
        amount: amount.into(),
        remark: "top-up".into(),
        reference: String::new(),
    };
    client.credits.add_credits(credits("12.50")).await.expect("credits");
    let grant = pb::GrantCouponsRequest {
        program_id: PROGRAM.into(),
        member_id: "cy".into(),
        coupon_id: "tea".into(),
        name: "Free tea".into(),
        count: 2,
        reference: String::new(),
    };
    client.coupons.grant_coupons(grant).await.expect("grant");
    client.points.add_points(add(PROGRAM, "ann", 60, None)).await.expect("add");
    let first_date = *recorded(&mut client, "ann").await.last().expect("ann's add");

    client.points.add_points(add(PROGRAM, "ann", 40, None)).await.expect("add");
    let used = pb::UseCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "ann".into(),
        credit_id: "wallet".into(),
        amount: "2.25".into(),
        remark: "coffee".into(),
        reference: String::new(),
    };
    client.credits.use_credits(used).await.expect("use credits");
    let coupon = pb::UseCouponRequest {
        program_id: PROGRAM.into(),
        member_id: "cy".into(),
        coupon_id: "tea".into(),
        remark: "tea".into(),
        reference: String::new(),
    };
    client.coupons.use_coupon(coupon).await.expect("use coupon");
    client.points.add_points(add(OTHER, "bob", 5, None)).await.expect("add");
    let dir = server.data_dir.clone();
    assert!(server.stop().success());

    let out = fresh_dir("history-export-files");
    let first = replay(&dir, &["--until", &rfc3339(first_date)], &out.join("first.csv"));
    assert_eq!(
        first,
        "program_id,member_id,balance,id,amount\n\
         cafe,ann,points,,60\n\
         cafe,ann,qualifying_amount,,60\n\
         cafe,ann,level,,0\n\
         cafe,ann,credit,wallet,12.5\n\
         cafe,cy,points,,0\n\
         cafe,cy,qualifying_amount,,0\n\
         cafe,cy,level,,0\n\
         cafe,cy,coupon,tea,2\n"
    );
    let second = replay(&dir, &["--until", &rfc3339(seconds_from_now(1))], &out.join("second.csv"));
    assert_eq!(
        second,
        "program_id,member_id,balance,id,amount\n\
         bakery,bob,points,,5\n\
         bakery,bob,qualifying_amount,,5\n\
         bakery,bob,level,,0\n\
         cafe,ann,points,,100\n\
         cafe,ann,qualifying_amount,,100\n\
         cafe,ann,level,,0\n\
         cafe,ann,credit,wallet,10.25\n\
         cafe,cy,points,,0\n\
         cafe,cy,qualifying_amount,,0\n\
         cafe,cy,level,,0\n\
         cafe,cy,coupon,tea,1\n"
    );
    // By sequence, as JSON Lines: the end of the log is the second date.
    let lines = replay(&dir, &["--until-seq", "1000"], &out.join("second.jsonl"));
    let members: Vec<serde_json::Value> =
        lines.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
    let ann = serde_json::json!({
        "program_id": "cafe", "member_id": "ann", "points": 100, "qualifying_amount": 100, "level": 0,
        "level_name": "", "credits": [{"credit_id": "wallet", "amount": "10.25"}], "coupons": [],
    });
    assert_eq!(members.len(), 3, "{lines}");
    assert_eq!(members[1], ann);
    assert_eq!(members[2]["coupons"], serde_json::json!([{"coupon_id": "tea", "count": 1}]));
}
