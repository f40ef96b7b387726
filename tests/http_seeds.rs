//! The seeds' own endpoints over HTTP (SPEC §17), against the real `ledgerd` over
//! TCP with a plain HTTP client (no gRPC library on the calls under test; the
//! setup and the read-back use gRPC): Echoss `voucher_statements` and
//! `point_statements` take the seed's example bodies as they are and answer as
//! Echoss does (200, 401, 422 with every problem, the rate-limit headers); Loga
//! `bulk_add_point` and `bulk_use_point` take the seed's parallel arrays and
//! answer `code`, `msg`, `data.users`, `data.transaction` and `fail_at`.

mod support;

use ledger_grpc::pb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Clients, Server, refused, started};
use tonic::Code;

const VOUCHERS: &str = include_str!("fixtures/echoss/voucher_statements.json");
const POINTS: &str = include_str!("fixtures/echoss/point_statements.json");
const VOUCHERS_BROKEN: &str = include_str!("fixtures/echoss/voucher_statements_broken.json");
const POINTS_BROKEN: &str = include_str!("fixtures/echoss/point_statements_broken.json");

/// The members of the seed's point statement body.
const SEED_MEMBERS: [&str; 2] = ["b70c3e08-57a0-4a57-87a8-d32cb9677a1f", "91d1d21e-3213-4930-9429-96de5fca67e2"];

/// An answer: status, headers, and the body as JSON.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().expect("ascii header"))
    }
}

/// Posts `body` to `path` on the server as JSON, as the seeds show: `Accept:
/// application/json`, and the token, when given, as `Authorization: Bearer`.
async fn post(server: &Server, path: &str, token: Option<&str>, body: &str) -> Answer {
    send(server, path, token, "application/json", body.to_owned()).await
}

async fn send(server: &Server, path: &str, token: Option<&str>, content_type: &str, body: String) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{path}", server.address))
        .header("content-type", content_type)
        .header("accept", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an HTTP answer");
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.expect("the body");
    let body = serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"));
    Answer { status, headers, body }
}

async fn token_with_quota(admin: &mut Clients, program: &str, max_requests: Option<u64>) -> String {
    let request = pb::IssueTokenRequest {
        role: pb::Role::Operator.into(),
        program_id: program.into(),
        name: "http".into(),
        max_requests,
        ..Default::default()
    };
    admin.admin.issue_token(request).await.expect("issue token").into_inner().token
}

async fn voucher(admin: &mut Clients, identifier: &str) -> Result<pb::GetVoucherStatementResponse, tonic::Status> {
    let request =
        pb::GetVoucherStatementRequest { brand_id: 1, promotion_id: 2, voucher_identifier: identifier.into() };
    admin.vouchers.get_voucher_statement(request).await.map(tonic::Response::into_inner)
}

/// The keys of a 422's `errors` (sorted: `Value` keeps no order), each with at least one message naming it.
fn error_fields(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
    assert_eq!(answer.body["message"], "The given data was invalid.");
    let errors = answer.body["errors"].as_object().expect("errors is an object");
    for (field, messages) in errors {
        let messages = messages.as_array().expect("a list of messages");
        assert!(
            !messages.is_empty()
                && messages.iter().all(|message| message.as_str().is_some_and(|text| text.contains(field.as_str()))),
            "{field}: {messages:?}"
        );
    }
    errors.keys().cloned().collect()
}

#[tokio::test]
async fn the_echoss_seed_bodies_import_as_they_are() {
    let (server, mut admin) = started("http-echoss-seed", &["0", "1"]).await;
    // SPEC §7: the seed's point body takes 2 points from each of two members of program 0.
    for member in SEED_MEMBERS {
        admin.add("0", member, 2).await;
    }

    let answer = post(&server, "/api/external/voucher_statements", Some(&server.admin_token), VOUCHERS).await;
    assert_eq!((answer.status, &answer.body), (StatusCode::OK, &json!({"data": {"message": "Successfully created."}})));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let first = voucher(&mut admin, "2223").await.expect("the first statement is stored");
    let statement = first.statement.expect("a statement");
    assert_eq!(
        (statement.voucher_name.as_str(), statement.line_id.as_str()),
        ("瓦城 288元", "fb3d6a16-b5d6-4bf8-8fd2-7acd0ec15944")
    );
    // "2021-02-17 02:06:55+00:00", the seed's own form, is 2021-02-17T02:06:55Z.
    assert_eq!(statement.sent_at.map(|time| time.seconds), Some(1_613_527_615));
    assert_eq!(first.state, i32::from(pb::VoucherState::Cancelled));
    let second =
        voucher(&mut admin, "222").await.expect("the second statement is stored").statement.expect("a statement");
    assert_eq!((second.voucher_number.as_str(), second.brand_manager_id), ("V00A004S0013FCS00804", 3));

    let answer = post(&server, "/api/point_statements", Some(&server.admin_token), POINTS).await;
    assert_eq!((answer.status, &answer.body), (StatusCode::OK, &json!({"data": {"message": "Successfully created"}})));
    for member in SEED_MEMBERS {
        assert_eq!(admin.member("0", member).await.points, 0, "{member}");
    }

    // The same body again, under the other path: each statement would now leave -2,
    // and the service's violations come back every one, named the Echoss way.
    let answer = post(&server, "/api/external/point_statements", Some(&server.admin_token), POINTS).await;
    assert_eq!(error_fields(&answer), ["data.0.point_change_record", "data.1.point_change_record"]);
    for member in SEED_MEMBERS {
        assert_eq!(admin.member("0", member).await.points, 0, "nothing written: {member}");
    }
}

#[tokio::test]
async fn a_broken_echoss_body_gets_422_with_every_problem_and_nothing_written() {
    let (server, mut admin) = started("http-echoss-broken", &["0", "1"]).await;
    let answer = post(&server, "/api/external/voucher_statements", Some(&server.admin_token), VOUCHERS_BROKEN).await;
    assert_eq!(
        error_fields(&answer),
        [
            "data.0.brand_id",
            "data.0.line_id",
            "data.0.used_at",
            "data.1.activity",
            "data.1.sent_at",
            "data.1.voucher_number"
        ]
    );
    assert_eq!(answer.body["errors"]["data.0.line_id"], json!(["data.0.line_id: is required"]));
    // The broken body's second item is whole but for its extra field: it was not written.
    refused(voucher(&mut admin, "222").await.map(tonic::Response::new), Code::NotFound);

    let answer = post(&server, "/api/point_statements", Some(&server.admin_token), POINTS_BROKEN).await;
    assert_eq!(
        error_fields(&answer),
        [
            "data.0.change_reason",
            "data.0.line_id",
            "data.1.brand_id",
            "data.1.changed_at",
            "data.1.point_change_record",
            "data.1.reference"
        ]
    );
    let answer = post(&server, "/api/point_statements", Some(&server.admin_token), "not json").await;
    assert_eq!(error_fields(&answer), ["data"]);
    let events = admin.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify").into_inner().events;
    assert_eq!(events, 2, "the two programs, and nothing else");
}

#[tokio::test]
async fn echoss_answers_401_as_the_seed_and_counts_the_quota_down_in_headers() {
    let (server, mut admin) = started("http-echoss-auth", &["1", "7"]).await;
    let seed_401 = json!({"message": "These credentials do not match our records."});
    for token in [Some("ldg_not-a-token"), None] {
        let answer = post(&server, "/api/external/voucher_statements", token, VOUCHERS).await;
        assert_eq!((answer.status, &answer.body), (StatusCode::UNAUTHORIZED, &seed_401), "{token:?}");
        assert_eq!(answer.header("x-ratelimit-limit"), None, "no token, no quota");
    }

    let limited = token_with_quota(&mut admin, "1", Some(3)).await;
    let answer = post(&server, "/api/external/voucher_statements", Some(&limited), VOUCHERS).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!((answer.header("x-ratelimit-limit"), answer.header("x-ratelimit-remaining")), (Some("3"), Some("2")));
    // A refused call counts too (SPEC §11).
    let answer = post(&server, "/api/external/voucher_statements", Some(&limited), VOUCHERS_BROKEN).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
    assert_eq!(answer.header("x-ratelimit-remaining"), Some("1"));
    let answer = post(&server, "/api/external/voucher_statements", Some(&limited), VOUCHERS).await;
    assert_eq!((answer.status, answer.header("x-ratelimit-remaining")), (StatusCode::OK, Some("0")));
    let answer = post(&server, "/api/external/voucher_statements", Some(&limited), VOUCHERS).await;
    assert_eq!((answer.status, &answer.body), (StatusCode::UNAUTHORIZED, &seed_401));
    assert_eq!((answer.header("x-ratelimit-limit"), answer.header("x-ratelimit-remaining")), (Some("3"), Some("0")));

    // A token of another brand: 403, with a message saying why.
    let other = token_with_quota(&mut admin, "7", None).await;
    let answer = post(&server, "/api/external/voucher_statements", Some(&other), VOUCHERS).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(answer.body["message"].as_str().is_some_and(|message| message.contains("\"1\"")), "{}", answer.body);
    assert_eq!(answer.header("x-ratelimit-limit"), None, "a token without a quota sends no rate-limit headers");
    // A brand no admin created: 404.
    let answer = post(&server, "/api/point_statements", Some(&server.admin_token), POINTS).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert!(
        answer.body["message"].as_str().is_some_and(|message| message.starts_with("data.0.brand_id: ")),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn loga_bulks_answer_users_transactions_and_fail_at_as_the_seed() {
    let (server, mut admin) = started("http-loga", &["c1"]).await;
    let token = token_with_quota(&mut admin, "c1", None).await;

    // The third item adds 0 points: it fails, the two before it stay applied.
    let body = json!({
        "token": token, "uuid": "device-1", "card_id": "c1",
        "cuid": ["m1", "m2", "m3"], "point": [10, 20, 0], "remark": ["a", "b", "c"],
        "reference": ["r1", "r2", "r3"], "branch": ["BKK", "CMI", "BKK"],
        "created": [1_700_000_000, 0, 0], "expired": [0, 0, 0]
    });
    let failed = post(&server, "/api/points/bulk_add_point", None, &body.to_string()).await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    let start = failed.body["data"]["transaction"]["start"].as_u64().expect("a first transaction id");
    assert_eq!(failed.body["code"], 503);
    assert_eq!(failed.body["fail_at"], 2);
    assert_eq!(
        failed.body["data"],
        json!({"users": [{"cuid": "m1", "point": 10}, {"cuid": "m2", "point": 20}], "transaction": {"start": start, "end": start + 1}})
    );
    assert_eq!(failed.body["errors"][0]["field"], "point[2]", "{}", failed.body);
    assert!(failed.body["msg"].as_str().is_some_and(|msg| msg.contains("point[2]")), "{}", failed.body);
    assert_eq!(admin.member("c1", "m2").await.points, 20);
    refused(admin.members.get_member(support::get_member("c1", "m3")).await, Code::NotFound);

    // A good one, the token as a bearer header this time.
    let body = json!({"card_id": "c1", "cuid[]": ["m1", "m2"], "point[]": ["5", 5], "remark[]": ["a", "b"]});
    let added = post(&server, "/api/points/bulk_add_point", Some(&token), &body.to_string()).await;
    assert_eq!(
        (added.status, &added.body),
        (
            StatusCode::OK,
            &json!({"code": 200, "msg": "Success", "data": {
                "users": [{"cuid": "m1", "point": 15}, {"cuid": "m2", "point": 25}],
                "transaction": {"start": start + 2, "end": start + 3}}})
        )
    );

    // bulk_use_point as a PHP form, the token in it.
    let form = format!("token={token}&uuid=d&card_id=c1&cuid[]=m1&point[]=3&remark[]=coffee");
    let used = send(&server, "/api/points/bulk_use_point", None, "application/x-www-form-urlencoded", form).await;
    assert_eq!(
        (used.status, &used.body),
        (
            StatusCode::OK,
            &json!({"code": 200, "msg": "Success", "data": {
                "users": [{"cuid": "m1", "point": 12}], "point": {"now": 12},
                "transaction": {"start": start + 4, "end": start + 4}}})
        )
    );
    let body = json!({"token": token, "card_id": "c1", "cuid": ["m2", "m1"], "point": [1, 1000], "remark": ["x", "y"]});
    let short = post(&server, "/api/points/bulk_use_point", None, &body.to_string()).await;
    assert_eq!((short.body["code"].clone(), short.body["fail_at"].clone()), (json!(503), json!(1)), "{}", short.body);
    assert_eq!(short.body["reason"], "INSUFFICIENT_POINTS");
    assert_eq!(short.body["data"]["users"], json!([{"cuid": "m2", "point": 24}]));

    // Refused whole: a bad token, and arrays that do not line up (every problem named).
    let body = json!({"token": "ldg_nope", "card_id": "c1", "cuid": ["m1"], "point": [1], "remark": ["x"]});
    let answer = post(&server, "/api/points/bulk_add_point", None, &body.to_string()).await;
    assert_eq!((answer.status, answer.body["code"].clone()), (StatusCode::UNAUTHORIZED, json!(401)), "{}", answer.body);
    let body = json!({"token": token, "card_id": "c1", "cuid": ["m1", "m2"], "point": [1, "many"], "remark": ["x"]});
    let answer = post(&server, "/api/points/bulk_add_point", None, &body.to_string()).await;
    assert_eq!((answer.status, answer.body["code"].clone()), (StatusCode::BAD_REQUEST, json!(400)), "{}", answer.body);
    let fields: Vec<&str> =
        answer.body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["remark", "point[1]"]);
    assert_eq!(admin.member("c1", "m1").await.points, 12, "nothing applied");
    let body = json!({"card_id": "zz", "cuid": ["m1"], "point": [1], "remark": ["x"]});
    let answer = post(&server, "/api/points/bulk_add_point", Some(&server.admin_token), &body.to_string()).await;
    assert_eq!((answer.status, answer.body["code"].clone()), (StatusCode::NOT_FOUND, json!(404)), "{}", answer.body);
    assert!(answer.body["msg"].as_str().is_some_and(|msg| msg.starts_with("card_id")), "{}", answer.body);
}
