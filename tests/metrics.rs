//! `ledgerd --metrics` and the request log (SPEC §18): known traffic over gRPC
//! and HTTP/JSON, then the scrape finds exactly those counts with their labels,
//! and the json log has one line per request with its fields and no secret.

mod support;

use ledger_grpc::pb;
use support::{Clients, Server, fresh_dir};
use tonic::Code;

const PROGRAM: &str = "metrics";

/// Starts ledgerd with `--metrics 127.0.0.1:0` and the json request log, and
/// returns the metrics URL it printed.
fn start(name: &str) -> (Server, String) {
    let extra = ["--metrics", "127.0.0.1:0", "--log-format", "json"];
    let server = Server::start_logging(fresh_dir(name), &extra, "info");
    let output = String::from_utf8_lossy(&server.output()).into_owned();
    let url = output
        .lines()
        .find_map(|line| line.strip_prefix("ledgerd metrics on "))
        .expect("the metrics address is printed before the listening line")
        .trim()
        .to_owned();
    (server, url)
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.expect("scrape /metrics");
    assert!(response.status().is_success(), "{response:?}");
    response.text().await.expect("the metrics text")
}

/// The value of the series `name{labels}` exactly as rendered (labels in the
/// exporter's order), or None when absent.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The known traffic: a program, 3 AddPoints and an overspend over gRPC, one
/// GetMember over HTTP/JSON, one call with a token no one issued.
async fn traffic(server: &Server) {
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    for _ in 0..3 {
        admin.add(PROGRAM, "alice", 10).await;
    }
    let overspend = pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        points: 31,
        remark: "too much".into(),
        ..Default::default()
    };
    let status = admin.points.use_points(overspend).await.expect_err("an overspend is refused");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    let response = reqwest::Client::new()
        .post(format!("http://{}/ledger.v1.MembersService/GetMember", server.address))
        .bearer_auth(&server.admin_token)
        .json(&serde_json::json!({ "programId": PROGRAM, "memberId": "alice" }))
        .send()
        .await
        .expect("an HTTP answer");
    assert!(response.status().is_success(), "{response:?}");

    let mut stranger = Clients::new(server.channel().await, "not-a-token");
    let status = stranger.members.get_member(support::get_member(PROGRAM, "alice")).await.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn metrics_count_the_calls_made() {
    let (server, url) = start("metrics_counts");
    traffic(&server).await;
    // A path no service has: its name must not become a series of its own.
    let response = reqwest::Client::new()
        .post(format!("http://{}/ledger.v1.NoSuchService/Anything{}", server.address, "x".repeat(100)))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .send()
        .await
        .expect("an HTTP answer");
    assert_eq!(response.headers().get("grpc-status").map(|code| code.as_bytes()), Some(&b"12"[..]), "{response:?}");
    let text = scrape(&url).await;
    let expected = [
        (r#"ledger_requests_total{rpc="ledger.v1.AdminService/CreateProgram"}"#, 1.0),
        (r#"ledger_requests_total{rpc="ledger.v1.PointsService/AddPoints"}"#, 3.0),
        (r#"ledger_requests_total{rpc="ledger.v1.PointsService/UsePoints"}"#, 1.0),
        // One over HTTP/JSON, one over gRPC with a bad token: counted alike.
        (r#"ledger_requests_total{rpc="ledger.v1.MembersService/GetMember"}"#, 2.0),
        (
            r#"ledger_request_errors_total{rpc="ledger.v1.PointsService/UsePoints",code="FAILED_PRECONDITION",reason="INSUFFICIENT_POINTS"}"#,
            1.0,
        ),
        (
            r#"ledger_request_errors_total{rpc="ledger.v1.MembersService/GetMember",code="UNAUTHENTICATED",reason="TOKEN_UNKNOWN"}"#,
            1.0,
        ),
        (r#"ledger_token_rejections_total{reason="TOKEN_UNKNOWN"}"#, 1.0),
        (r#"ledger_requests_total{rpc="unknown"}"#, 1.0),
        (r#"ledger_request_errors_total{rpc="unknown",code="UNIMPLEMENTED",reason=""}"#, 1.0),
        (r#"ledger_request_seconds_count{rpc="ledger.v1.PointsService/AddPoints"}"#, 3.0),
        // The program and 3 additions are 4 events.
        ("ledger_log_sequence", 4.0),
    ];
    for (series, count) in expected {
        assert_eq!(value(&text, series), Some(count), "{series} in:\n{text}");
    }
    assert_eq!(text.matches("ledger_request_errors_total{").count(), 3, "no other errors:\n{text}");
    assert!(!text.contains("NoSuchService"), "{text}");
    for present in [
        "ledger_commit_group_commands_count",
        "ledger_flush_seconds_count",
        "ledger_sync_seconds_count",
        "ledger_log_appended_bytes_total",
        "ledger_checkpoint_lag_events",
        "ledger_process_cpu_seconds_total",
        "ledger_process_resident_memory_bytes",
    ] {
        assert!(text.lines().any(|line| line.starts_with(present)), "{present} in:\n{text}");
    }
    server.stop();
}

#[tokio::test]
async fn each_request_logs_one_json_line_without_secrets() {
    let (server, _url) = start("metrics_request_log");
    traffic(&server).await;
    let admin_token = server.admin_token.clone();
    let (_, output) = server.stop_with_output();
    let output = String::from_utf8_lossy(&output).into_owned();
    assert!(!output.contains(&admin_token), "a secret in the log:\n{output}");
    assert!(!output.contains("not-a-token"), "a presented secret in the log:\n{output}");
    let requests: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "ledgerd::request")
        .collect();
    // CreateProgram, 3 AddPoints, UsePoints, 2 GetMember.
    assert_eq!(requests.len(), 7, "{output}");
    let overspend = requests
        .iter()
        .find(|line| line["fields"]["rpc"] == "ledger.v1.PointsService/UsePoints")
        .expect("the overspend's line");
    let fields = &overspend["fields"];
    assert_eq!(overspend["level"], "INFO");
    assert_eq!(fields["program"], PROGRAM);
    assert_eq!(fields["code"], "FAILED_PRECONDITION");
    assert_eq!(fields["reason"], "INSUFFICIENT_POINTS");
    assert!(fields["duration_us"].is_u64(), "{overspend}");
    let token_id = fields["token_id"].as_str().expect("the token id");
    assert!(token_id.starts_with("tok_"), "{overspend}");
    let refused = requests.iter().find(|line| line["fields"]["code"] == "UNAUTHENTICATED").expect("the refusal");
    assert_eq!(refused["fields"]["reason"], "TOKEN_UNKNOWN");
    assert!(refused["fields"].get("token_id").is_none(), "no token is known: {refused}");
    // Each start message once: the listening line on stdout, nothing repeating it.
    assert_eq!(output.matches("listening on").count(), 1, "{output}");
}
