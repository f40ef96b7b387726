//! Bounded cost per caller (issue 11, item 5), over TCP against the real
//! `ledgerd`: hundreds of event streams that never read leave its memory within a
//! bound while reads and writes answer; streams beyond the caps get
//! RESOURCE_EXHAUSTED `TOO_MANY_STREAMS`; connections that never speak HTTP/2, or
//! stop calling, are closed; and a descriptor limit lower than the idle
//! connections piling up does not stop the server.
//!
//! The sizes are small so that the suite stays fast; `LEDGER_LIMITS_STREAMS=N`
//! opens N idle streams instead of 300 (the caps follow), and
//! `LEDGER_LIMITS_READ_ALL=1` times one stream reading the whole log.

mod support;

use ledger_grpc::pb;
use std::time::{Duration, Instant};
use support::{Clients, Patience, Server, fresh_dir, get_member, read_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_types::StatusExt;

const PROGRAM: &str = "cafe";

/// Kibibytes resident in the process's memory, from /proc/PID/status.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).expect("VmRSS value").parse().expect("VmRSS in kB")
}

fn open_descriptors(pid: u32) -> u64 {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/PID/fd");
    u64::try_from(entries.count()).expect("count fits u64")
}

/// A bulk add of `count` members with long remarks, so that the log is large.
fn bulk(round: usize, count: usize) -> pb::BulkAddPointsRequest {
    let items = (0..count)
        .map(|index| pb::BulkAddItem {
            member_id: format!("m{}", index % 50),
            points: 1,
            remark: format!("round {round} item {index} {}", "x".repeat(400)),
            ..Default::default()
        })
        .collect();
    pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items, atomic: false }
}

fn stream_request() -> pb::StreamEventsRequest {
    pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() }
}

/// The `google.rpc.ErrorInfo` of an error: (domain, reason, metadata "scope").
fn error_info(status: &tonic::Status) -> (String, String, String) {
    let info = status.get_error_details().error_info().cloned().expect("an ErrorInfo detail");
    let scope = info.metadata.get("scope").cloned().unwrap_or_default();
    (info.domain, info.reason, scope)
}

async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let answer = call.await;
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_subscribers_cost_a_bounded_buffer_and_streams_beyond_the_caps_are_refused() {
    let streams: usize = std::env::var("LEDGER_LIMITS_STREAMS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
    let viewer_streams = 10;
    let streams_max = (streams + viewer_streams).to_string();
    let per_token = streams.to_string();
    let server = Server::start_in(
        fresh_dir("limits-streams"),
        &["--streams-max", &streams_max, "--streams-per-token-max", &per_token],
    );
    let pid = server.child.id();
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    // A log of about 10 MB: every stream has far more to send than HTTP/2 lets
    // through before its client reads.
    let mut head = 0;
    for round in 0..20 {
        head =
            client.points.bulk_add_points(bulk(round, 1_000)).await.expect("bulk add").into_inner().last_transaction_id;
    }
    // One client that reads: how fast a stream catches up (printed, not asserted;
    // `LEDGER_LIMITS_READ_ALL=1` reads the whole log rather than its start).
    let until = if std::env::var_os("LEDGER_LIMITS_READ_ALL").is_some() { head } else { head.min(2_000) };
    let started = Instant::now();
    let mut reader = client.audit.stream_events(stream_request()).await.expect("open a stream").into_inner();
    let mut read = 0_u32;
    while let Some(event) = tokio_stream::StreamExt::next(&mut reader).await {
        read += 1;
        if event.expect("an event").sequence >= until {
            break;
        }
    }
    let took = started.elapsed();
    eprintln!("one stream read {read} events in {took:?} ({:.0} events/s)", f64::from(read) / took.as_secs_f64());
    drop(reader);
    let before_kib = resident_kib(pid);

    // Streams that are never polled, over a few connections.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(server.channel().await);
    }
    let mut idle = Vec::new();
    for index in 0..streams {
        let mut admin = Clients::new(channels[index % channels.len()].clone(), &server.admin_token);
        idle.push(admin.audit.stream_events(stream_request()).await.expect("open a stream").into_inner());
    }

    // One more for the admin token passes the per-token cap.
    let refused = client.audit.stream_events(stream_request()).await.expect_err("beyond the per-token cap");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(error_info(&refused), ("ledger.v1".into(), "TOO_MANY_STREAMS".into(), "token".into()));
    // Another token may open streams until the server's cap.
    let viewer_token = client.token(pb::Role::Viewer, PROGRAM).await;
    let mut viewer = server.clients(&viewer_token).await;
    let viewer_request = pb::StreamEventsRequest { from_sequence: 1, program_id: PROGRAM.into() };
    let mut viewer_idle = Vec::new();
    for _ in 0..viewer_streams {
        viewer_idle.push(viewer.audit.stream_events(viewer_request.clone()).await.expect("viewer stream").into_inner());
    }
    let refused = viewer.audit.stream_events(viewer_request.clone()).await.expect_err("beyond the server's cap");
    assert_eq!(error_info(&refused), ("ledger.v1".into(), "TOO_MANY_STREAMS".into(), "server".into()));

    // The log grows while nobody reads; reads and writes answer meanwhile.
    let mut add_latencies = Vec::new();
    let mut get_latencies = Vec::new();
    for round in 20..30 {
        client.points.bulk_add_points(bulk(round, 1_000)).await.expect("bulk add while streams idle");
        let add = pb::AddPointsRequest {
            program_id: PROGRAM.into(),
            member_id: "m1".into(),
            points: 5,
            remark: "while streams idle".into(),
            ..Default::default()
        };
        let (added, took) = timed(client.points.add_points(add)).await;
        added.expect("AddPoints answers while streams idle");
        add_latencies.push(took);
        let (got, took) = timed(client.members.get_member(get_member(PROGRAM, "m1"))).await;
        got.expect("GetMember answers while streams idle");
        get_latencies.push(took);
    }
    let after_kib = resident_kib(pid);
    let growth_mib = after_kib.saturating_sub(before_kib) / 1_024;
    eprintln!(
        "{streams} idle streams: ledgerd RSS {} MiB -> {} MiB (+{growth_mib} MiB); AddPoints {add_latencies:?}; \
         GetMember {get_latencies:?}",
        before_kib / 1_024,
        after_kib / 1_024
    );
    // Each stream may hold one batch of decoded events and one encoded chunk
    // (about 100 KB with these events) besides what HTTP/2's windows let through;
    // the ~20 MB logged during the test must not be copied per stream.
    let bound_mib = 64 + u64::try_from(streams).expect("fits") / 4;
    assert!(growth_mib <= bound_mib, "RSS grew {growth_mib} MiB with {streams} idle streams (bound {bound_mib} MiB)");

    // Closing streams gives their slots back.
    drop(viewer_idle);
    let patience = Patience::new("a closed stream's slot to come back");
    loop {
        match viewer.audit.stream_events(viewer_request.clone()).await {
            Ok(_) => break,
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
        patience.next().await;
    }
    drop(idle);
}

/// Reads until the server closes the connection (EOF or reset); fails the test
/// if it stays open past the patience.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, what: &str) {
    let mut buffer = [0_u8; 4_096];
    let patience = Patience::new(what);
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
        patience.next().await;
    }
}

/// HTTP/2's client preface and an empty SETTINGS frame: a client that spoke.
const PREFACE_AND_SETTINGS: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_never_speak_or_stop_calling_are_closed_and_streams_are_not() {
    let server =
        Server::start_in(fresh_dir("limits-idle"), &["--preface-timeout-ms", "300", "--idle-timeout-ms", "1000"]);
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    let mut subscriber = server.admin().await;
    let mut feed = subscriber.audit.stream_events(stream_request()).await.expect("open a stream").into_inner();

    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(&server.address).await.expect("connect"));
    }
    for stream in &mut silent {
        closed_by_server(stream, "a connection that never spoke to be closed").await;
    }
    eprintln!("20 silent connections closed after {:?} (preface timeout 300 ms)", started.elapsed());

    let mut spoke = tokio::net::TcpStream::connect(&server.address).await.expect("connect");
    spoke.write_all(PREFACE_AND_SETTINGS).await.expect("send the preface");
    let started = Instant::now();
    closed_by_server(&mut spoke, "a connection with no call to be closed").await;
    eprintln!("an HTTP/2 connection with no call closed after {:?} (idle timeout 1 s)", started.elapsed());

    // The subscriber's connection outlived the idle timeout: its stream is a call
    // in flight. It still follows the log.
    let added = client.add(PROGRAM, "m1", 7).await;
    let patience = Patience::new("the stream to deliver the add");
    loop {
        let event = tokio::time::timeout(Duration::from_millis(200), tokio_stream::StreamExt::next(&mut feed)).await;
        if let Ok(event) = event {
            let event = event.expect("the stream is open").expect("an event");
            if event.sequence == added.transaction_id {
                break;
            }
        }
        patience.next().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_descriptor_limit_with_idle_connections_piling_up_does_not_stop_the_server() {
    let server = Server::start_in(fresh_dir("limits-descriptors"), &["--preface-timeout-ms", "300"]);
    let pid = server.child.id();
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    client.add(PROGRAM, "m1", 3).await;
    drop(client);

    // Fewer descriptors than the idle connections about to arrive: the server
    // runs out (EMFILE) with its connection cap still far away.
    let limit = open_descriptors(pid) + 24;
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit --nofile={limit}");
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(tokio::net::TcpStream::connect(&server.address).await.expect("connect: the kernel queues it"));
    }

    // A new client is served once the idle ones are closed.
    let started = Instant::now();
    let patience = Patience::new("a new client to be served");
    let member = loop {
        let attempt = async {
            let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.address))
                .expect("valid uri")
                .connect()
                .await
                .ok()?;
            let mut client = Clients::new(channel, &read_token(&server.data_dir.join("admin.token")));
            client.members.get_member(get_member(PROGRAM, "m1")).await.ok()
        };
        if let Ok(Some(member)) = tokio::time::timeout(Duration::from_secs(5), attempt).await {
            break member.into_inner();
        }
        patience.next().await;
    };
    assert_eq!(member.points, 3);
    eprintln!(
        "with 100 idle connections and {limit} descriptors a new client was served after {:?}",
        started.elapsed()
    );
    for stream in &mut silent {
        closed_by_server(stream, "every idle connection to be closed").await;
    }
    // Still alive and serving after all of it.
    let mut client = server.admin().await;
    assert_eq!(client.member(PROGRAM, "m1").await.points, 3);
}
