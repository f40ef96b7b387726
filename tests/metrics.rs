//! `ledgerd --metrics` and the request log (SPEC §18): known traffic over gRPC
//! and HTTP/JSON, then the scrape finds exactly those counts with their labels,
//! and the json log has one line per request with its fields and no secret.

mod support;

use ledger_core::limits::FEED_BATCH_EVENTS_MAX;
use ledger_grpc::pb;
use std::path::Path;
use support::{Clients, Patience, Server, fresh_dir};
use tonic::Code;

const PROGRAM: &str = "metrics";

/// Starts ledgerd with `--metrics 127.0.0.1:0` and the json request log, and
/// returns the metrics URL it printed.
fn start(name: &str) -> (Server, String) {
    start_in(fresh_dir(name))
}

fn start_in(data_dir: std::path::PathBuf) -> (Server, String) {
    let extra = ["--metrics", "127.0.0.1:0", "--log-format", "json"];
    let server = Server::start_logging(data_dir, &extra, "info");
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

/// Makes event `sequence`'s envelope claim a format newer than this build reads
/// (what a downgrade meets in a log a newer build wrote), through sled, offline:
/// reading it fails, as any damaged event does, while the events before it read.
fn make_unreadable(dir: &Path, sequence: u64) {
    use ledger_store::log::{self, Log};
    let db = ledger_store::audit::open_offline(dir).expect("open offline");
    let log = Log::open(&db).expect("log");
    let (key, value) = log.tree().range(..=log::key(sequence)).next_back().expect("a record").expect("read");
    let first = log::sequence_of(&key).expect("key");
    let events = log::decode_record(first, &value).expect("decode the record");
    let stored = &events[usize::try_from(sequence - first).expect("fits")];
    let at = value.windows(stored.bytes.len()).position(|window| window == stored.bytes).expect("the event's bytes");
    // The envelope's first field is its format, a u16 in one varint byte.
    assert_eq!(value[at], 1, "the envelope's format byte");
    let mut changed = value.to_vec();
    changed[at] = 2;
    log.tree().insert(key, changed).expect("rewrite the record");
    db.flush().expect("flush");
}

/// Whether another process could take sled's lock on `dir`: this process's
/// handles may hold it a moment after they drop (crossbeam's epoch collection).
fn released(dir: &Path) -> bool {
    std::process::Command::new("flock")
        .args(["--nonblock", "--exclusive"])
        .arg(dir.join("db"))
        .arg("true")
        .status()
        .is_ok_and(|status| status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_fails_after_sending_events_is_counted_with_its_code_and_reason() {
    const BULK_ITEMS: u64 = 99;
    // In the feed's second batch: the first is sent before the read that fails.
    const UNREADABLE: u64 = FEED_BATCH_EVENTS_MAX + 2;
    const READ_EVENTS: &str = "ledger.v1.AuditService/ReadEvents";
    let dir = fresh_dir("metrics_stream_failure");
    let server = Server::start_in(dir.clone(), &[]);
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    let items = (1..=BULK_ITEMS)
        .map(|n| pb::BulkAddItem {
            member_id: format!("m{n}"),
            points: 1,
            remark: "visit".into(),
            ..Default::default()
        })
        .collect();
    let bulk = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items, atomic: true };
    admin.points.bulk_add_points(bulk).await.expect("the bulk applies");
    // The head is a record of its own: start-up reads the head's record, not the bulk's.
    admin.add(PROGRAM, "m1", 1).await;
    drop(admin);
    assert!(server.stop().success(), "a clean stop checkpoints every event");
    make_unreadable(&dir, UNREADABLE);
    let patience = Patience::new("sled to release the data directory");
    while !released(&dir) {
        patience.next().await;
    }

    // Start-up replays only the log after the checkpoint, so the server starts.
    let (server, url) = start_in(dir);
    let mut admin = server.admin().await;
    let request = pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() };
    let mut feed = admin.audit.read_events(request).await.expect("the feed starts").into_inner();
    let mut sent = 0;
    let status = loop {
        match feed.message().await {
            Ok(Some(_)) => sent += 1,
            Ok(None) => panic!("the feed ended well after {sent} events"),
            Err(status) => break status,
        }
    };
    assert_eq!(sent, FEED_BATCH_EVENTS_MAX, "the events before the unreadable one's batch");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // The same over Connect's HTTP stream: messages, then the error in the end-of-stream envelope.
    let body = {
        let payload = br#"{"fromSequence":"1"}"#;
        let mut body = vec![0];
        body.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
        body.extend_from_slice(payload);
        body
    };
    let response = reqwest::Client::new()
        .post(format!("http://{}/{READ_EVENTS}", server.address))
        .bearer_auth(&server.admin_token)
        .header(http::header::CONTENT_TYPE, "application/connect+json")
        .body(body)
        .send()
        .await
        .expect("an HTTP answer");
    assert!(response.status().is_success(), "{response:?}");
    let mut bytes = &response.bytes().await.expect("the whole stream")[..];
    let mut envelopes = Vec::new();
    while let Some((&flags, rest)) = bytes.split_first() {
        let (length, rest) = rest.split_first_chunk::<4>().expect("a length");
        let (json, rest) = rest.split_at(usize::try_from(u32::from_be_bytes(*length)).expect("fits"));
        envelopes.push((flags, serde_json::from_slice::<serde_json::Value>(json).expect("JSON")));
        bytes = rest;
    }
    let (end, messages) = envelopes.split_last().expect("an end-of-stream envelope");
    assert_eq!(u64::try_from(messages.len()).expect("fits"), FEED_BATCH_EVENTS_MAX);
    assert_eq!((end.0, end.1["error"]["code"].as_str()), (2, Some("unavailable")), "{}", end.1);

    let text = scrape(&url).await;
    let started = format!(r#"ledger_requests_total{{rpc="{READ_EVENTS}"}}"#);
    assert_eq!(value(&text, &started), Some(2.0), "{text}");
    let failed = format!(
        r#"ledger_request_errors_total{{rpc="{READ_EVENTS}",code="UNAVAILABLE",reason="STORAGE_UNAVAILABLE"}}"#
    );
    assert_eq!(value(&text, &failed), Some(2.0), "both feeds failed, gRPC and HTTP: {text}");

    drop(admin);
    let (_, output) = server.stop_with_output();
    let output = String::from_utf8_lossy(&output).into_owned();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "ledgerd::request" && line["fields"]["rpc"] == READ_EVENTS)
        .collect();
    assert_eq!(lines.len(), 2, "one line per feed, at its end: {output}");
    for line in lines {
        assert_eq!(line["fields"]["code"], "UNAVAILABLE", "{line}");
        assert_eq!(line["fields"]["reason"], "STORAGE_UNAVAILABLE", "{line}");
    }
}
