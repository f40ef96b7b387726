//! AuditService over gRPC (SPEC §9, §10): activities newest first, one activity by
//! transaction id or reference, the hash-chained event feed (history, then live),
//! log verification, and all of it the same after a restart.

mod support;

use ledger_grpc::pb;
use support::{Clients, PATIENCE, Server, assert_invalid_field, refused};
use tokio_stream::StreamExt;
use tonic::Code;

const PROGRAM: &str = "cafe";
const OTHER: &str = "bakery";
/// 2024-01-01T00:00:00Z.
const JANUARY_1: i64 = 1_704_067_200;
const DAY: i64 = 86_400;

fn day(index: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: JANUARY_1 + index * DAY, nanos: 0 }
}

fn add(program: &str, member: &str, points: i64) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: program.into(),
        member_id: member.into(),
        points,
        remark: "latte".into(),
        ..Default::default()
    }
}

fn spend(program: &str, member: &str, points: i64) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: program.into(),
        member_id: member.into(),
        points,
        remark: "cookie".into(),
        ..Default::default()
    }
}

fn activities(member: &str, kinds: &[&str]) -> pb::ListActivitiesRequest {
    pb::ListActivitiesRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        kinds: kinds.iter().map(|kind| (*kind).to_owned()).collect(),
        ..Default::default()
    }
}

/// Every page of a listing, following the page tokens; also returns the page sizes.
async fn all_pages(client: &mut Clients, request: pb::ListActivitiesRequest) -> (Vec<pb::Activity>, Vec<usize>) {
    let mut listed = Vec::new();
    let mut sizes = Vec::new();
    let mut request = request;
    loop {
        let page = client.audit.list_activities(request.clone()).await.expect("list activities").into_inner();
        sizes.push(page.activities.len());
        listed.extend(page.activities);
        if page.next_page_token.is_empty() {
            return (listed, sizes);
        }
        assert!(sizes.len() <= 1_000, "the pages end");
        request.page_token = page.next_page_token;
    }
}

fn ids(activities: &[pb::Activity]) -> Vec<u64> {
    activities.iter().map(|activity| activity.transaction_id).collect()
}

/// Reads the next event of a feed, failing the test if none comes within `PATIENCE`.
async fn next_event(feed: &mut tonic::Streaming<pb::Event>) -> pb::Event {
    let next = tokio::time::timeout(PATIENCE, feed.next()).await.expect("an event within the wait");
    next.expect("the feed goes on").expect("an event, not an error")
}

async fn verify(client: &mut Clients) -> pb::VerifyLogResponse {
    client.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify log").into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_list_newest_first_in_pages_filtered_by_member_kind_and_time() {
    let server = Server::start("audit-activities");
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    // alice earns on 12 days of January, bob on 3 days of February, then alice spends now.
    let mut alice = Vec::new();
    let mut bob = Vec::new();
    for index in 0..12 {
        let request = pb::AddPointsRequest { occurred_at: Some(day(index)), ..add(PROGRAM, "alice", index + 1) };
        alice.push(client.points.add_points(request).await.expect("add").into_inner().transaction_id);
    }
    let formula = pb::DefineFormulaRequest {
        program_id: PROGRAM.into(),
        formula_id: "double".into(),
        name: "Double".into(),
        multiplier: "2".into(),
    };
    client.points.define_formula(formula).await.expect("define formula");
    for index in 31..34 {
        let request = pb::AddPointsRequest { occurred_at: Some(day(index)), ..add(PROGRAM, "bob", 10) };
        bob.push(client.points.add_points(request).await.expect("add").into_inner().transaction_id);
    }
    alice.push(client.points.use_points(spend(PROGRAM, "alice", 5)).await.expect("use").into_inner().transaction_id);
    let newest_first = |mut ids: Vec<u64>| {
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    };
    let everyone = newest_first(alice.iter().chain(&bob).copied().collect());
    let alice = newest_first(alice);
    let bob = newest_first(bob);

    let first = client.audit.list_activities(activities("", &[])).await.expect("list").into_inner();
    assert_eq!(ids(&first.activities), everyone[..10], "a default page is the 10 newest");
    assert!(!first.next_page_token.is_empty());

    // (request, the transaction ids of every page together, the page sizes)
    let page_of =
        |size: u32, request: pb::ListActivitiesRequest| pb::ListActivitiesRequest { page_size: size, ..request };
    let between = |from: i64, to: i64, request: pb::ListActivitiesRequest| pb::ListActivitiesRequest {
        from: Some(day(from)),
        to: Some(day(to)),
        ..request
    };
    let cases = [
        (activities("", &[]), everyone.clone(), vec![10, 6]),
        (page_of(5, activities("alice", &[])), alice.clone(), vec![5, 5, 3]),
        (activities("bob", &[]), bob.clone(), vec![3]),
        (activities("", &["POINTS"]), everyone.clone(), vec![10, 6]),
        (activities("", &["CREDITS", "TIERS"]), vec![], vec![0]),
        (activities("carol", &[]), vec![], vec![0]),
        // from is inclusive, to exclusive: January 5th, 6th and 7th.
        (between(4, 7, activities("alice", &[])), alice[6..9].to_vec(), vec![3]),
        (between(4, 7, activities("bob", &[])), vec![], vec![0]),
        (between(31, 60, activities("", &["POINTS"])), bob.clone(), vec![3]),
        (page_of(2, between(32, 60, activities("", &[]))), bob[..2].to_vec(), vec![2]),
    ];
    for (index, (request, expected, sizes)) in cases.into_iter().enumerate() {
        let (listed, got_sizes) = all_pages(&mut client, request).await;
        assert_eq!((ids(&listed), got_sizes), (expected, sizes), "case {index}");
        assert!(listed.iter().all(|activity| activity.kind == "POINTS"), "case {index}");
    }
    let (listed, _) = all_pages(&mut client, between(4, 7, activities("alice", &[]))).await;
    let times: Vec<_> = listed.into_iter().map(|activity| activity.occurred_at).collect();
    assert_eq!(times, [Some(day(6)), Some(day(5)), Some(day(4))], "occurred_at is the business time given");

    let bogus = activities("", &["POINTS", "BONUS"]);
    assert_invalid_field(&refused(client.audit.list_activities(bogus).await, Code::InvalidArgument), "kinds[1]");
    let nowhere = pb::ListActivitiesRequest { program_id: "nowhere".into(), ..activities("", &[]) };
    refused(client.audit.list_activities(nowhere).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_is_found_by_transaction_id_or_by_reference_in_its_own_program() {
    let server = Server::start("audit-activity");
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    admin.create_program(OTHER).await;
    let request = pb::IssueTokenRequest {
        role: pb::Role::Operator.into(),
        program_id: PROGRAM.into(),
        name: "till 1".into(),
        ..Default::default()
    };
    let token = admin.admin.issue_token(request).await.expect("issue token").into_inner();
    let mut operator = server.clients(&token.token).await;
    let reward = pb::DefineRewardRequest {
        program_id: PROGRAM.into(),
        reward_id: "muffin".into(),
        name: "Muffin".into(),
        points: 30,
        expires_at: None,
    };
    operator.points.define_reward(reward).await.expect("define reward");

    let earned = pb::AddPointsRequest {
        private_remark: "paid cash".into(),
        reference: "order-1".into(),
        occurred_at: Some(day(3)),
        ..add(PROGRAM, "alice", 120)
    };
    let earned = operator.points.add_points(earned).await.expect("add").into_inner();
    let spent = pb::UsePointsRequest { reference: "order-2".into(), ..spend(PROGRAM, "alice", 45) };
    let spent = operator.points.use_points(spent).await.expect("use").into_inner();
    let muffin =
        pb::UsePointsRequest { reward_id: "muffin".into(), remark: String::new(), ..spend(PROGRAM, "alice", 0) };
    let muffin = operator.points.use_points(muffin).await.expect("use a reward").into_inner();

    let by_id = |transaction_id: u64| pb::GetActivityRequest {
        program_id: PROGRAM.into(),
        transaction_id,
        reference: String::new(),
    };
    let by_reference = |reference: &str| pb::GetActivityRequest {
        program_id: PROGRAM.into(),
        transaction_id: 0,
        reference: reference.into(),
    };
    let found = operator.audit.get_activity(by_id(earned.transaction_id)).await.expect("get").into_inner();
    let recorded_at = found.recorded_at;
    assert!(recorded_at.is_some());
    let expected = pb::Activity {
        transaction_id: earned.transaction_id,
        kind: "POINTS".into(),
        member_id: "alice".into(),
        amount: "120".into(),
        balance_after: "120".into(),
        remark: "latte".into(),
        private_remark: "paid cash".into(),
        reference: "order-1".into(),
        source_id: String::new(),
        actor: token.token_id.clone(),
        occurred_at: Some(day(3)),
        recorded_at,
        reversed_by: None,
    };
    assert_eq!(found, expected);
    let found = operator.audit.get_activity(by_reference("order-1")).await.expect("get").into_inner();
    assert_eq!(found, expected, "the same activity by its reference");

    let found = operator.audit.get_activity(by_reference("order-2")).await.expect("get").into_inner();
    let got = (found.transaction_id, found.amount.as_str(), found.balance_after.as_str(), found.remark.as_str());
    assert_eq!(got, (spent.transaction_id, "-45", "75", "cookie"), "a use's amount is negative");
    assert_eq!(found.actor, token.token_id);
    assert_eq!(found.occurred_at, found.recorded_at, "without a business time, the recorded time");
    let found = operator.audit.get_activity(by_id(muffin.transaction_id)).await.expect("get").into_inner();
    let got = (found.amount.as_str(), found.balance_after.as_str(), found.source_id.as_str());
    assert_eq!(got, ("-30", "45", "muffin"), "the reward is the source");

    // A replacement: the reference names the new transaction; the reversal is an activity too.
    let replace =
        pb::AddPointsRequest { reference: "order-1".into(), replace_duplicate: true, ..add(PROGRAM, "alice", 100) };
    let replaced = operator.points.add_points(replace).await.expect("replace").into_inner();
    assert!(replaced.replaced);
    let found = operator.audit.get_activity(by_reference("order-1")).await.expect("get").into_inner();
    assert_eq!((found.transaction_id, found.amount.as_str()), (replaced.transaction_id, "100"));
    let (listed, _) = all_pages(&mut operator, activities("alice", &[])).await;
    let amounts: Vec<&str> = listed.iter().map(|activity| activity.amount.as_str()).collect();
    assert_eq!(amounts, ["-120", "100", "-30", "-45", "120"], "newest first, the reversal last");
    assert_eq!(listed[0].balance_after, "25");

    // Another program's transaction, one that names no member, and ones that do not exist.
    let elsewhere = pb::GetActivityRequest { program_id: OTHER.into(), ..by_id(earned.transaction_id) };
    refused(admin.audit.get_activity(elsewhere).await, Code::NotFound);
    let elsewhere = pb::GetActivityRequest { program_id: OTHER.into(), ..by_reference("order-1") };
    refused(admin.audit.get_activity(elsewhere).await, Code::NotFound);
    refused(operator.audit.get_activity(by_id(1)).await, Code::NotFound);
    refused(operator.audit.get_activity(by_id(1_000)).await, Code::NotFound);
    refused(operator.audit.get_activity(by_reference("order-9")).await, Code::NotFound);
    let neither = refused(operator.audit.get_activity(by_reference("")).await, Code::InvalidArgument);
    assert_invalid_field(&neither, "transaction_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_sends_the_whole_hash_chained_log_in_order_then_follows_it_live() {
    let server = Server::start("audit-feed");
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    client.create_program(OTHER).await;
    client.add(PROGRAM, "alice", 100).await;
    client.add(OTHER, "bob", 50).await;
    client.points.use_points(spend(PROGRAM, "alice", 30)).await.expect("use");
    let items = (0..3).map(|index| pb::BulkAddItem {
        member_id: format!("m{index}"),
        points: 1,
        remark: "bulk".into(),
        ..Default::default()
    });
    let bulk = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items: items.collect(), atomic: false };
    client.points.bulk_add_points(bulk).await.expect("bulk");
    let verified = verify(&mut client).await;
    assert!(verified.ok);
    assert_eq!(verified.events, 8);

    let all = pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() };
    let mut feed = client.audit.stream_events(all).await.expect("stream").into_inner();
    let mut history = Vec::new();
    for _ in 0..verified.events {
        history.push(next_event(&mut feed).await);
    }
    let kinds: Vec<&str> = history.iter().map(|event| event.kind.as_str()).collect();
    let expected = ["ProgramCreated", "ProgramCreated", "PointsAdded", "PointsAdded", "PointsUsed"];
    assert_eq!(kinds[..5], expected);
    assert_eq!(kinds[5..], ["PointsAdded"; 3]);
    let sequences: Vec<u64> = history.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, (1..=verified.events).collect::<Vec<_>>());
    for pair in history.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "event {} chains to the one before it", pair[1].sequence);
    }
    for event in &history {
        assert_eq!(event.hash.len(), 64, "a hex hash: {event:?}");
        assert!(event.hash.chars().all(|c| c.is_ascii_hexdigit()), "{event:?}");
        assert!(event.recorded_at.is_some() && !event.event_id.is_empty(), "{event:?}");
        let payload: serde_json::Value = serde_json::from_str(&event.payload_json).expect("payload is JSON");
        assert!(payload.is_object(), "{event:?}");
    }
    let programs: Vec<&str> = history.iter().map(|event| event.program_id.as_str()).collect();
    assert_eq!(programs[..4], [PROGRAM, OTHER, PROGRAM, OTHER]);
    assert_eq!((history[2].member_id.as_str(), history[3].member_id.as_str()), ("alice", "bob"));
    let head = history.last().expect("events").clone();
    assert_eq!(head.hash, verified.head_hash);

    // Live: a write made after the history was read arrives next.
    let receipt = client.add(PROGRAM, "carol", 7).await;
    let live = next_event(&mut feed).await;
    let got = (live.sequence, live.kind.as_str(), live.program_id.as_str(), live.member_id.as_str());
    assert_eq!(got, (receipt.transaction_id, "PointsAdded", PROGRAM, "carol"));
    assert_eq!(live.prev_hash, head.hash);
    drop(feed);

    // From the middle of the log.
    let from = pb::StreamEventsRequest { from_sequence: 5, program_id: String::new() };
    let mut feed = client.audit.stream_events(from).await.expect("stream").into_inner();
    assert_eq!(next_event(&mut feed).await, history[4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_of_one_program_sends_only_its_events() {
    let server = Server::start("audit-feed-program");
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    admin.create_program(OTHER).await;
    let request = pb::IssueTokenRequest {
        role: pb::Role::Viewer.into(),
        program_id: PROGRAM.into(),
        name: "auditor".into(),
        ..Default::default()
    };
    let token = admin.admin.issue_token(request).await.expect("issue token").into_inner();
    let mut viewer = server.clients(&token.token).await;
    let mut ours = vec![1];
    for (program, member) in [(PROGRAM, "alice"), (OTHER, "bob"), (OTHER, "bob"), (PROGRAM, "carol")] {
        let receipt = admin.add(program, member, 10).await;
        if program == PROGRAM {
            ours.push(receipt.transaction_id);
        }
    }

    let request = pb::StreamEventsRequest { from_sequence: 0, program_id: PROGRAM.into() };
    let mut feed = viewer.audit.stream_events(request).await.expect("stream").into_inner();
    let mut seen = Vec::new();
    for _ in 0..ours.len() {
        let event = next_event(&mut feed).await;
        assert_eq!(event.program_id, PROGRAM, "{event:?}");
        seen.push(event.sequence);
    }
    assert_eq!(seen, ours);

    // Live, another program's event is skipped: the next one is ours.
    admin.add(OTHER, "bob", 1).await;
    let receipt = admin.add(PROGRAM, "alice", 1).await;
    let live = next_event(&mut feed).await;
    assert_eq!((live.sequence, live.program_id.as_str()), (receipt.transaction_id, PROGRAM));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_verifies_and_reads_the_same_after_a_restart() {
    let server = Server::start("audit-restart");
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    let formula = pb::DefineFormulaRequest {
        program_id: PROGRAM.into(),
        formula_id: "half-again".into(),
        name: "One and a half".into(),
        multiplier: "1.5".into(),
    };
    client.points.define_formula(formula).await.expect("define formula");
    let reward = pb::DefineRewardRequest {
        program_id: PROGRAM.into(),
        reward_id: "muffin".into(),
        name: "Muffin".into(),
        points: 20,
        expires_at: Some(support::seconds_from_now(86_400)),
    };
    client.points.define_reward(reward).await.expect("define reward");
    let by_formula =
        pb::AddPointsRequest { cost: "33.35".into(), formula_id: "half-again".into(), ..add(PROGRAM, "alice", 0) };
    assert_eq!(client.points.add_points(by_formula).await.expect("add").into_inner().points, 50);
    let expiring =
        pb::AddPointsRequest { expires_at: Some(support::seconds_from_now(3_600)), ..add(PROGRAM, "bob", 40) };
    client.points.add_points(expiring).await.expect("add");
    let referenced = pb::AddPointsRequest { reference: "r1".into(), ..add(PROGRAM, "carol", 30) };
    client.points.add_points(referenced.clone()).await.expect("add");
    let replacement = pb::AddPointsRequest { points: 25, replace_duplicate: true, ..referenced };
    client.points.add_points(replacement).await.expect("replace");
    let muffin = pb::UsePointsRequest { reward_id: "muffin".into(), ..spend(PROGRAM, "alice", 0) };
    client.points.use_points(muffin).await.expect("use a reward");
    let items = ["alice", "bob", "dave"].map(|member| pb::BulkUseItem {
        member_id: member.into(),
        points: 5,
        remark: "bulk".into(),
        ..Default::default()
    });
    let bulk = pb::BulkUsePointsRequest { program_id: PROGRAM.into(), items: items.into(), atomic: false };
    assert_eq!(client.points.bulk_use_points(bulk).await.expect("bulk").into_inner().fail_at, Some(2));
    let last = client.points.use_points(spend(PROGRAM, "carol", 5)).await.expect("use").into_inner();

    let verified = verify(&mut client).await;
    let report = (verified.ok, verified.events, verified.first_mismatch.as_str());
    assert_eq!(report, (true, last.transaction_id, ""), "events = every event in the log");
    let before = snapshot(&mut client).await;
    assert_eq!(before.0.iter().map(|member| member.points).collect::<Vec<_>>(), [25, 35, 20], "alice, bob, carol");
    let data_dir = server.data_dir.clone();
    drop(client);
    assert!(server.stop().success());

    let server = Server::start_in(data_dir, &[]);
    let mut client = server.admin().await;
    assert_eq!(verify(&mut client).await, verified);
    assert_eq!(snapshot(&mut client).await, before);
    let receipt = client.add(PROGRAM, "alice", 1).await;
    assert_eq!((receipt.transaction_id, receipt.balance), (last.transaction_id + 1, 26));
    let verified = verify(&mut client).await;
    assert_eq!((verified.ok, verified.events), (true, receipt.transaction_id), "the chain goes on");
}

/// What a reader sees of the program: members, activities, formulas and rewards.
async fn snapshot(client: &mut Clients) -> (Vec<pb::Member>, Vec<pb::Activity>, Vec<pb::Formula>, Vec<pb::Reward>) {
    let list = pb::ListMembersRequest { program_id: PROGRAM.into(), page_size: 100, ..Default::default() };
    let members = client.members.list_members(list).await.expect("list members").into_inner().members;
    let (activities, _) = all_pages(client, activities("", &[])).await;
    let formulas = pb::ListFormulasRequest { program_id: PROGRAM.into() };
    let formulas = client.points.list_formulas(formulas).await.expect("list formulas").into_inner().formulas;
    let rewards = pb::ListRewardsRequest { program_id: PROGRAM.into() };
    let rewards = client.points.list_rewards(rewards).await.expect("list rewards").into_inner().rewards;
    (members, activities, formulas, rewards)
}
