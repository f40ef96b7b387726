//! Auth over gRPC (SPEC §10, §11): who may call what, and where. Every refused
//! call changes nothing; health and reflection need no token.

mod support;

use ledger_grpc::pb;
use support::{Clients, Patience, Server, assert_invalid_field, refused, seconds_from_now};
use tokio_stream::StreamExt;
use tonic::Code;

const HOME: &str = "cafe";
const OTHER: &str = "bakery";
const SERVICES: [&str; 4] =
    ["ledger.v1.AdminService", "ledger.v1.PointsService", "ledger.v1.MembersService", "ledger.v1.AuditService"];

/// A server with programs `cafe` (alice has 100 points) and `bakery` (bob has 50).
async fn started(name: &str) -> (Server, Clients) {
    let server = Server::start(name);
    let mut admin = server.admin().await;
    admin.create_program(HOME).await;
    admin.create_program(OTHER).await;
    admin.add(HOME, "alice", 100).await;
    admin.add(OTHER, "bob", 50).await;
    (server, admin)
}

fn issue(role: pb::Role, program: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest { role: role.into(), program_id: program.into(), name: "till 3".into(), ..Default::default() }
}

async fn issued(admin: &mut Clients, request: pb::IssueTokenRequest) -> pb::IssueTokenResponse {
    admin.admin.issue_token(request).await.expect("issue token").into_inner()
}

fn add(program: &str, member: &str) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: program.into(),
        member_id: member.into(),
        points: 5,
        remark: "auth".into(),
        ..Default::default()
    }
}

fn get(program: &str, member: &str) -> pb::GetMemberRequest {
    pb::GetMemberRequest { program_id: program.into(), member_id: member.into(), as_of: None }
}

/// Writes in `program`: one of each kind, each reduced to its status code.
async fn writes(client: &mut Clients, program: &str) -> Vec<(&'static str, Code)> {
    let owned = program.to_owned();
    let points = &mut client.points;
    let use_points = pb::UsePointsRequest {
        program_id: owned.clone(),
        member_id: "zed".into(),
        points: 1,
        remark: "auth".into(),
        ..Default::default()
    };
    let bulk_add = pb::BulkAddPointsRequest {
        program_id: owned.clone(),
        items: vec![pb::BulkAddItem {
            member_id: "zed".into(),
            points: 1,
            remark: "auth".into(),
            ..Default::default()
        }],
        atomic: false,
    };
    let bulk_use = pb::BulkUsePointsRequest {
        program_id: owned.clone(),
        items: vec![pb::BulkUseItem {
            member_id: "zed".into(),
            points: 1,
            remark: "auth".into(),
            ..Default::default()
        }],
        atomic: false,
    };
    let formula = pb::DefineFormulaRequest {
        program_id: owned.clone(),
        formula_id: "f".into(),
        name: "F".into(),
        multiplier: "2".into(),
    };
    let reward = pb::DefineRewardRequest {
        program_id: owned.clone(),
        reward_id: "r".into(),
        name: "R".into(),
        points: 1,
        expires_at: None,
    };
    vec![
        ("AddPoints", code(points.add_points(add(program, "zed")).await)),
        ("UsePoints", code(points.use_points(use_points).await)),
        ("BulkAddPoints", code(points.bulk_add_points(bulk_add).await)),
        ("BulkUsePoints", code(points.bulk_use_points(bulk_use).await)),
        ("DefineFormula", code(points.define_formula(formula).await)),
        ("DefineReward", code(points.define_reward(reward).await)),
    ]
}

/// Reads in `program`, each reduced to its status code.
async fn reads(client: &mut Clients, program: &str) -> Vec<(&'static str, Code)> {
    let owned = program.to_owned();
    let list_members = pb::ListMembersRequest { program_id: owned.clone(), ..Default::default() };
    let activities = pb::ListActivitiesRequest { program_id: owned.clone(), ..Default::default() };
    let activity = pb::GetActivityRequest { program_id: owned.clone(), transaction_id: 1, reference: String::new() };
    let stream = pb::StreamEventsRequest { from_sequence: 1, program_id: owned.clone() };
    let member = if program == HOME { "alice" } else { "bob" };
    vec![
        ("GetMember", code(client.members.get_member(get(program, member)).await)),
        ("ListMembers", code(client.members.list_members(list_members).await)),
        (
            "ListFormulas",
            code(client.points.list_formulas(pb::ListFormulasRequest { program_id: owned.clone() }).await),
        ),
        ("ListRewards", code(client.points.list_rewards(pb::ListRewardsRequest { program_id: owned.clone() }).await)),
        ("ListActivities", code(client.audit.list_activities(activities).await)),
        // Transaction 1 created a program: not a member's activity, so NOT_FOUND once allowed.
        ("GetActivity", code(client.audit.get_activity(activity).await)),
        ("StreamEvents", code(client.audit.stream_events(stream).await)),
    ]
}

/// AdminService calls, each reduced to its status code.
async fn admin_calls(client: &mut Clients) -> Vec<(&'static str, Code)> {
    let admin = &mut client.admin;
    let create = pb::CreateProgramRequest { program_id: "new".into(), name: "New".into() };
    vec![
        ("CreateProgram", code(admin.create_program(create).await)),
        ("ListPrograms", code(admin.list_programs(pb::ListProgramsRequest {}).await)),
        ("IssueToken", code(admin.issue_token(issue(pb::Role::Admin, "")).await)),
        ("RevokeToken", code(admin.revoke_token(pb::RevokeTokenRequest { token_id: "tok_none".into() }).await)),
    ]
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

#[track_caller]
fn assert_all(calls: &[(&'static str, Code)], expected: Code) {
    let wrong: Vec<_> = calls.iter().filter(|(_, code)| *code != expected).collect();
    assert!(wrong.is_empty(), "expected {expected:?} from every call, got {wrong:?}");
}

/// What a refused call could have changed: both programs' members and the program list.
async fn snapshot(admin: &mut Clients) -> (Vec<pb::Member>, Vec<pb::Member>, usize) {
    let mut members = Vec::new();
    for program in [HOME, OTHER] {
        let list = pb::ListMembersRequest { program_id: program.into(), page_size: 100, ..Default::default() };
        members.push(admin.members.list_members(list).await.expect("list members").into_inner().members);
    }
    let programs = admin.admin.list_programs(pb::ListProgramsRequest {}).await.expect("list programs").into_inner();
    let other = members.pop().expect("two programs");
    (members.pop().expect("two programs"), other, programs.programs.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_malformed_or_unknown_token_is_unauthenticated() {
    let (server, mut admin) = started("auth-unauthenticated").await;
    let before = snapshot(&mut admin).await;
    let headers =
        ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "ldg_0000", "Bearer ldg_00000000000000000000000000000000"];
    let mut clients: Vec<(String, Clients)> = Vec::new();
    for header in headers {
        clients.push((header.to_owned(), Clients::with_authorization(server.channel().await, header)));
    }
    for (header, client) in &mut clients {
        let mut calls = writes(client, HOME).await;
        calls.extend(reads(client, HOME).await);
        calls.extend(admin_calls(client).await);
        let verify = client.audit.verify_log(pb::VerifyLogRequest {}).await;
        calls.push(("VerifyLog", code(verify)));
        let wrong: Vec<_> = calls.iter().filter(|(_, code)| *code != Code::Unauthenticated).collect();
        assert!(wrong.is_empty(), "authorization {header:?}: {wrong:?}");
    }

    // No authorization metadata at all.
    let channel = server.channel().await;
    let mut points = pb::points_service_client::PointsServiceClient::new(channel.clone());
    let status = refused(points.add_points(add(HOME, "alice")).await, Code::Unauthenticated);
    assert!(status.message().contains("authorization"), "{status:?}");
    let mut members = pb::members_service_client::MembersServiceClient::new(channel.clone());
    refused(members.get_member(get(HOME, "alice")).await, Code::Unauthenticated);
    let mut admin_client = pb::admin_service_client::AdminServiceClient::new(channel.clone());
    refused(admin_client.list_programs(pb::ListProgramsRequest {}).await, Code::Unauthenticated);
    let mut audit = pb::audit_service_client::AuditServiceClient::new(channel);
    refused(audit.verify_log(pb::VerifyLogRequest {}).await, Code::Unauthenticated);

    assert_eq!(snapshot(&mut admin).await, before, "refused calls change nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reads_and_writes_in_its_own_program_only() {
    let (server, mut admin) = started("auth-operator").await;
    let token = issued(&mut admin, issue(pb::Role::Operator, HOME)).await;
    assert_eq!((token.role, token.program_id.as_str()), (i32::from(pb::Role::Operator), HOME));
    let mut operator = server.clients(&token.token).await;

    let calls = writes(&mut operator, HOME).await;
    let expected = [
        ("AddPoints", Code::Ok),
        ("UsePoints", Code::Ok),
        ("BulkAddPoints", Code::Ok),
        ("BulkUsePoints", Code::Ok),
        ("DefineFormula", Code::Ok),
        ("DefineReward", Code::Ok),
    ];
    assert_eq!(calls, expected);
    let calls = reads(&mut operator, HOME).await;
    assert_eq!(
        calls.iter().filter(|(name, _)| *name != "GetActivity").map(|(_, code)| *code).collect::<Vec<_>>(),
        [Code::Ok; 6]
    );
    assert_eq!(calls.iter().find(|(name, _)| *name == "GetActivity").map(|(_, code)| *code), Some(Code::NotFound));

    let before = snapshot(&mut admin).await;
    assert_all(&writes(&mut operator, OTHER).await, Code::PermissionDenied);
    assert_all(&reads(&mut operator, OTHER).await, Code::PermissionDenied);
    assert_all(&admin_calls(&mut operator).await, Code::PermissionDenied);
    let all = pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() };
    refused(operator.audit.stream_events(all).await, Code::PermissionDenied);
    let status = refused(operator.points.add_points(add(OTHER, "bob")).await, Code::PermissionDenied);
    assert!(status.message().contains(OTHER), "{status:?}");
    assert_eq!(snapshot(&mut admin).await, before, "refused calls change nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_in_its_own_program_and_writes_nothing() {
    let (server, mut admin) = started("auth-viewer").await;
    let token = issued(&mut admin, issue(pb::Role::Viewer, HOME)).await;
    let mut viewer = server.clients(&token.token).await;

    let calls = reads(&mut viewer, HOME).await;
    let expected = [
        ("GetMember", Code::Ok),
        ("ListMembers", Code::Ok),
        ("ListFormulas", Code::Ok),
        ("ListRewards", Code::Ok),
        ("ListActivities", Code::Ok),
        ("GetActivity", Code::NotFound),
        ("StreamEvents", Code::Ok),
    ];
    assert_eq!(calls, expected);

    let before = snapshot(&mut admin).await;
    assert_all(&writes(&mut viewer, HOME).await, Code::PermissionDenied);
    assert_all(&writes(&mut viewer, OTHER).await, Code::PermissionDenied);
    assert_all(&reads(&mut viewer, OTHER).await, Code::PermissionDenied);
    assert_all(&admin_calls(&mut viewer).await, Code::PermissionDenied);
    let all = pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() };
    refused(viewer.audit.stream_events(all).await, Code::PermissionDenied);
    assert_eq!(snapshot(&mut admin).await, before, "refused calls change nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_ends_at_its_expiry() {
    let (server, mut admin) = started("auth-expiry").await;
    let past = pb::IssueTokenRequest { expires_at: Some(seconds_from_now(-1)), ..issue(pb::Role::Viewer, HOME) };
    assert_invalid_field(&refused(admin.admin.issue_token(past).await, Code::InvalidArgument), "expires_at");

    let expires_at = seconds_from_now(3);
    let request = pb::IssueTokenRequest { expires_at: Some(expires_at), ..issue(pb::Role::Viewer, HOME) };
    let token = issued(&mut admin, request).await;
    assert_eq!(token.expires_at, Some(expires_at));
    let mut viewer = server.clients(&token.token).await;
    viewer.members.get_member(get(HOME, "alice")).await.expect("a token works before its expiry");

    let patience = Patience::new("the token to expire");
    let status = loop {
        match viewer.members.get_member(get(HOME, "alice")).await {
            Ok(_) => patience.next().await,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");
    refused(viewer.audit.verify_log(pb::VerifyLogRequest {}).await, Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_ends_after_max_requests_calls_refused_ones_included() {
    let (server, mut admin) = started("auth-max-requests").await;
    let zero = pb::IssueTokenRequest { max_requests: Some(0), ..issue(pb::Role::Operator, HOME) };
    assert_invalid_field(&refused(admin.admin.issue_token(zero).await, Code::InvalidArgument), "max_requests");

    let request = pb::IssueTokenRequest { max_requests: Some(3), ..issue(pb::Role::Operator, HOME) };
    let token = issued(&mut admin, request).await;
    assert_eq!(token.max_requests, Some(3));
    let mut operator = server.clients(&token.token).await;
    operator.members.get_member(get(HOME, "alice")).await.expect("call 1");
    refused(operator.members.get_member(get(OTHER, "bob")).await, Code::PermissionDenied);
    operator.points.add_points(add(HOME, "alice")).await.expect("call 3");
    let status = refused(operator.members.get_member(get(HOME, "alice")).await, Code::Unauthenticated);
    assert!(status.message().contains("requests"), "{status:?}");
    refused(operator.points.add_points(add(HOME, "alice")).await, Code::Unauthenticated);
    assert_eq!(admin.member(HOME, "alice").await.points, 105, "only call 3 wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_ends_at_once() {
    let (server, mut admin) = started("auth-revoke").await;
    let token = issued(&mut admin, issue(pb::Role::Operator, HOME)).await;
    let mut operator = server.clients(&token.token).await;
    operator.points.add_points(add(HOME, "alice")).await.expect("before the revoke");

    admin.admin.revoke_token(pb::RevokeTokenRequest { token_id: token.token_id.clone() }).await.expect("revoke");
    let status = refused(operator.points.add_points(add(HOME, "alice")).await, Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{status:?}");
    refused(operator.audit.verify_log(pb::VerifyLogRequest {}).await, Code::Unauthenticated);
    assert_eq!(admin.member(HOME, "alice").await.points, 105);

    let unknown = pb::RevokeTokenRequest { token_id: "tok_000000000000".into() };
    refused(admin.admin.revoke_token(unknown).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_of_every_program_needs_an_admin_and_any_valid_token_verifies_the_log() {
    let (server, mut admin) = started("auth-feed").await;
    let mut operator = server.clients(&issued(&mut admin, issue(pb::Role::Operator, HOME)).await.token).await;
    let mut viewer = server.clients(&issued(&mut admin, issue(pb::Role::Viewer, OTHER)).await.token).await;

    let all = pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() };
    for client in [&mut operator, &mut viewer] {
        let status = refused(client.audit.stream_events(all.clone()).await, Code::PermissionDenied);
        assert!(status.message().contains("ADMIN"), "{status:?}");
    }
    let mut feed = admin.audit.stream_events(all).await.expect("an admin streams every program").into_inner();
    let mut programs = Vec::new();
    while programs.len() < 4 {
        let event = feed.next().await.expect("the feed goes on").expect("an event");
        programs.push(event.program_id);
    }
    assert_eq!(programs, [HOME, OTHER, HOME, OTHER], "both programs' creations and adds");
    drop(feed);

    let verified = admin.audit.verify_log(pb::VerifyLogRequest {}).await.expect("admin verifies").into_inner();
    assert!(verified.ok);
    for client in [&mut operator, &mut viewer] {
        let report = client.audit.verify_log(pb::VerifyLogRequest {}).await.expect("any token verifies").into_inner();
        assert_eq!(report, verified);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_revocations_survive_a_restart() {
    let (server, mut admin) = started("auth-restart").await;
    let kept = issued(&mut admin, issue(pb::Role::Operator, HOME)).await;
    let revoked = issued(&mut admin, issue(pb::Role::Operator, HOME)).await;
    admin.admin.revoke_token(pb::RevokeTokenRequest { token_id: revoked.token_id.clone() }).await.expect("revoke");
    let request = pb::IssueTokenRequest { max_requests: Some(5), ..issue(pb::Role::Viewer, HOME) };
    let limited = issued(&mut admin, request).await;
    let mut viewer = server.clients(&limited.token).await;
    for call in 1..=2 {
        viewer.members.get_member(get(HOME, "alice")).await.unwrap_or_else(|status| panic!("call {call}: {status:?}"));
    }
    let (data_dir, admin_token) = (server.data_dir.clone(), server.admin_token.clone());
    drop((admin, viewer));
    assert!(server.stop().success());

    let server = Server::start_in(data_dir, &[]);
    assert_eq!(server.admin_token, admin_token, "the first admin token is written once");
    let mut admin = server.admin().await;
    let mut kept = server.clients(&kept.token).await;
    let receipt = kept.points.add_points(add(HOME, "alice")).await.expect("a kept token works").into_inner();
    assert_eq!(receipt.balance, 105);
    let mut revoked = server.clients(&revoked.token).await;
    refused(revoked.points.add_points(add(HOME, "alice")).await, Code::Unauthenticated);
    admin.admin.list_programs(pb::ListProgramsRequest {}).await.expect("the admin token works");
    assert_eq!(admin.member(HOME, "alice").await.points, 105);

    // A clean restart takes no calls from a limited token: it had 3 of its 5 left.
    let mut viewer = server.clients(&limited.token).await;
    for call in 3..=5 {
        viewer.members.get_member(get(HOME, "alice")).await.unwrap_or_else(|status| panic!("call {call}: {status:?}"));
    }
    refused(viewer.members.get_member(get(HOME, "alice")).await, Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_server_and_every_service_serving_without_a_token() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let server = Server::start("auth-health");
    let mut health = HealthClient::new(server.channel().await);
    for service in std::iter::once("").chain(SERVICES) {
        let request = HealthCheckRequest { service: service.into() };
        let response = health.check(request).await.expect("health check without a token").into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "service {service:?}");
    }
    let unknown = HealthCheckRequest { service: "ledger.v1.NoSuchService".into() };
    refused(health.check(unknown).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_and_v1alpha_list_every_service_without_a_token() {
    let server = Server::start("auth-reflection");
    let listed = [
        ("v1", reflection_v1_services(server.channel().await).await),
        ("v1alpha", reflection_v1alpha_services(server.channel().await).await),
    ];
    for (version, names) in listed {
        for service in SERVICES.into_iter().chain(["grpc.health.v1.Health"]) {
            assert!(names.iter().any(|name| name == service), "reflection {version} lists {service}: {names:?}");
        }
    }
}

async fn reflection_v1_services(channel: tonic::transport::Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_client::ServerReflectionClient};
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut client = ServerReflectionClient::new(channel);
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.expect("v1").into_inner();
    let response = responses.next().await.expect("a response").expect("no error");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(listed)) => listed.service.into_iter().map(|s| s.name).collect(),
        other => panic!("expected a service list, got {other:?}"),
    }
}

async fn reflection_v1alpha_services(channel: tonic::transport::Channel) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, server_reflection_client::ServerReflectionClient};
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut client = ServerReflectionClient::new(channel);
    let mut responses =
        client.server_reflection_info(tokio_stream::iter([request])).await.expect("v1alpha").into_inner();
    let response = responses.next().await.expect("a response").expect("no error");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(listed)) => listed.service.into_iter().map(|s| s.name).collect(),
        other => panic!("expected a service list, got {other:?}"),
    }
}
