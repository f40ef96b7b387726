//! `ledger bench`: a closed-loop load generator for the ledger's gRPC API.
//!
//! Each client task sends one request, waits for its reply and sends the next, so the rate
//! measured is what the server sustains at that concurrency. `--op ping` runs the same client
//! against the gRPC health check, which shows the ceiling of gRPC itself on the machine: a
//! write rate close to it means the ledger's own work is not the limit.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::task::JoinSet;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::pb;
use crate::pb::admin_service_client::AdminServiceClient;
use crate::pb::members_service_client::MembersServiceClient;
use crate::pb::points_service_client::PointsServiceClient;

pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// `ledger bench`: measure one operation's throughput and latency against a running server.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The server, HOST:PORT (plain HTTP/2, no TLS). Not a flag of its own: `ledger` fills it
    /// from its global `--addr`, which every subcommand shares.
    #[arg(skip)]
    pub addr: String,
    /// A file holding the bearer token; ADMIN unless the program exists already and the op is
    /// ping. Filled from `ledger`'s global `--token-file`.
    #[arg(skip)]
    pub token_file: PathBuf,
    /// The bearer token itself, from `ledger`'s global `--token`; when set, `token_file` is
    /// not read.
    #[arg(skip)]
    pub token: Option<String>,
    /// The program to write in; created if missing.
    #[arg(long)]
    pub program: String,
    #[arg(long, value_enum)]
    pub op: Op,
    /// Concurrent client tasks, each with one request in flight.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// How long to issue requests.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// Items per bulk-add request (the server accepts at most 1,000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub items: u32,
    /// Members drawn from, m0..m{M-1}.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub members: u32,
    /// HTTP/2 connections the clients are spread over; one is enough because tonic multiplexes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Op {
    AddPoints,
    UsePoints,
    BulkAdd,
    GetMember,
    /// The gRPC health check (service ""): the transport's ceiling with the same client.
    Ping,
}

/// The result of a run; `to_json_line` is the stable, machine-read output.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchReport {
    pub op: String,
    pub clients: u32,
    /// Measured from the first request to the last reply, so it includes the in-flight tail.
    pub seconds: f64,
    pub requests: u64,
    pub items: u64,
    pub errors: u64,
    pub ops_per_s: f64,
    pub items_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl BenchReport {
    /// One JSON object without a trailing newline; keys in the documented order.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a struct of numbers and a string always serializes")
    }
}

pub async fn run(args: BenchArgs) -> Result<BenchReport, BenchError> {
    let token = match &args.token {
        Some(token) => token.clone(),
        None => std::fs::read_to_string(&args.token_file)
            .map_err(|error| format!("reading token file {}: {error}", args.token_file.display()))?,
    };
    let bearer = Bearer(
        format!("Bearer {}", token.trim()).parse().map_err(|_| "the token holds characters not allowed in a header")?,
    );
    let endpoint = Endpoint::from_shared(format!("http://{}", args.addr))?;
    // More connections than clients would sit idle.
    let mut channels = Vec::new();
    for _ in 0..args.connections.min(args.clients) {
        let channel = endpoint.connect().await;
        channels.push(channel.map_err(|error| format!("connecting to {}: {}", args.addr, with_causes(&error)))?);
    }
    let members: Arc<[String]> = (0..args.members).map(|index| format!("m{index}")).collect();
    prepare(&args, &channels[0], &bearer, &members).await?;

    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let progress = tokio::spawn(report_progress(Arc::clone(&counters), started));
    let mut tasks = JoinSet::new();
    for channel in channels.iter().cycle().take(args.clients.try_into()?) {
        let caller = Caller::new(&args, channel, &bearer);
        tasks.spawn(client_loop(caller, Arc::clone(&members), deadline, Arc::clone(&counters)));
    }
    let mut latencies_us: Vec<u32> = tasks.join_all().await.concat();
    let elapsed = started.elapsed().as_secs_f64();
    progress.abort();

    latencies_us.sort_unstable();
    let requests = counters.requests.load(Ordering::Relaxed);
    let items = counters.items.load(Ordering::Relaxed);
    let to_ms = |percent| percentile(&latencies_us, percent).map_or(0.0, |us| f64::from(us) / 1000.0);
    Ok(BenchReport {
        op: args.op.to_possible_value().expect("no op is skipped").get_name().to_owned(),
        clients: args.clients,
        seconds: round(elapsed, 3),
        requests,
        items,
        errors: counters.errors.load(Ordering::Relaxed),
        // Counts stay far below 2^53, where f64 is exact.
        ops_per_s: round(requests as f64 / elapsed, 1),
        items_per_s: round(items as f64 / elapsed, 1),
        p50_ms: to_ms(50),
        p99_ms: to_ms(99),
    })
}

/// The nearest-rank percentile of ascending `sorted`: the smallest value that at least
/// `percent` per cent of the values do not exceed. `None` when there are no values.
fn percentile(sorted: &[u32], percent: usize) -> Option<u32> {
    assert!((1..=100).contains(&percent), "percent must be 1..=100, got {percent}");
    let rank = (sorted.len() * percent).div_ceil(100);
    sorted.get(rank.checked_sub(1)?).copied()
}

/// tonic's transport errors say only "transport error"; the reason (refused, unresolved) is in
/// their sources.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Members funded before use-points and get-member get this much in each bulk item: the most one
/// add may carry, so a run of 1-point uses never drains them.
const FUND_POINTS: i64 = 1_000_000;
/// Items per funding request: the server's bulk limit.
const FUND_ITEMS_MAX: usize = 1_000;

#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        // Cloning the parsed value shares its bytes: no per-call parse or allocation.
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

async fn prepare(args: &BenchArgs, channel: &Channel, bearer: &Bearer, members: &[String]) -> Result<(), BenchError> {
    // Ping touches no program: it must work with any token, against any server.
    if args.op == Op::Ping {
        return Ok(());
    }
    let mut admin = AdminServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let request = pb::CreateProgramRequest { program_id: args.program.clone(), name: args.program.clone() };
    match admin.create_program(request).await {
        Ok(_) => {}
        Err(status) if status.code() == Code::AlreadyExists => {}
        Err(status) => return Err(format!("creating program {}: {status}", args.program).into()),
    }
    if !matches!(args.op, Op::UsePoints | Op::GetMember) {
        return Ok(());
    }
    let mut points = PointsServiceClient::with_interceptor(channel.clone(), bearer.clone());
    for chunk in members.chunks(FUND_ITEMS_MAX) {
        let items = chunk
            .iter()
            .map(|member_id| pb::BulkAddItem {
                member_id: member_id.clone(),
                points: FUND_POINTS,
                remark: "bench".to_owned(),
                ..Default::default()
            })
            .collect();
        let request = pb::BulkAddPointsRequest { program_id: args.program.clone(), items, atomic: false };
        let reply = points.bulk_add_points(request).await.map_err(|status| format!("funding members: {status}"))?;
        let reply = reply.into_inner();
        if let Some(fail_at) = reply.fail_at {
            let failure = reply.failure.unwrap_or_default();
            return Err(format!("funding members: item {fail_at} failed: {} {}", failure.code, failure.message).into());
        }
    }
    Ok(())
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    items: AtomicU64,
    errors: AtomicU64,
}

async fn client_loop(
    mut caller: Caller,
    members: Arc<[String]>,
    deadline: Instant,
    counters: Arc<Counters>,
) -> Vec<u32> {
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut latencies_us = Vec::new();
    while Instant::now() < deadline {
        let sent = Instant::now();
        let outcome = caller.call(&mut rng, &members).await;
        // u32 microseconds hold 71 minutes and convert to f64 exactly.
        latencies_us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.items.fetch_add(outcome.items, Ordering::Relaxed);
        if !outcome.ok {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    latencies_us
}

async fn report_progress(counters: Arc<Counters>, started: Instant) {
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requests_before = 0;
    loop {
        tick.tick().await;
        let requests = counters.requests.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        eprintln!(
            "{:>7.1}s {requests:>10} requests {:>8} ops/s {errors:>8} errors",
            started.elapsed().as_secs_f64(),
            requests - requests_before,
        );
        requests_before = requests;
    }
}

/// What one call did: items applied, and whether it counts as an error.
struct Outcome {
    items: u64,
    ok: bool,
}

impl Outcome {
    const FAILED: Outcome = Outcome { items: 0, ok: false };
    const ONE: Outcome = Outcome { items: 1, ok: true };
}

/// One client's stub and the constant part of its request, built once.
enum Caller {
    AddPoints(PointsServiceClient<Authed>, pb::AddPointsRequest),
    UsePoints(PointsServiceClient<Authed>, pb::UsePointsRequest),
    BulkAdd(PointsServiceClient<Authed>, pb::BulkAddPointsRequest, pb::BulkAddItem, u32),
    GetMember(MembersServiceClient<Authed>, pb::GetMemberRequest),
    Ping(HealthClient<Authed>),
}

impl Caller {
    fn new(args: &BenchArgs, channel: &Channel, bearer: &Bearer) -> Caller {
        let program_id = args.program.clone();
        let remark = "bench".to_owned();
        let points = || PointsServiceClient::with_interceptor(channel.clone(), bearer.clone());
        match args.op {
            Op::AddPoints => {
                Caller::AddPoints(points(), pb::AddPointsRequest { program_id, remark, ..Default::default() })
            }
            Op::UsePoints => Caller::UsePoints(
                points(),
                pb::UsePointsRequest { program_id, remark, points: 1, ..Default::default() },
            ),
            Op::BulkAdd => Caller::BulkAdd(
                points(),
                pb::BulkAddPointsRequest { program_id, items: Vec::new(), atomic: false },
                pb::BulkAddItem { remark, ..Default::default() },
                args.items,
            ),
            Op::GetMember => Caller::GetMember(
                MembersServiceClient::with_interceptor(channel.clone(), bearer.clone()),
                pb::GetMemberRequest { program_id, member_id: String::new() },
            ),
            Op::Ping => Caller::Ping(HealthClient::with_interceptor(channel.clone(), bearer.clone())),
        }
    }

    async fn call(&mut self, rng: &mut SmallRng, members: &[String]) -> Outcome {
        match self {
            Caller::AddPoints(client, template) => {
                let request = pb::AddPointsRequest {
                    member_id: pick(rng, members),
                    points: rng.random_range(1..=100),
                    ..template.clone()
                };
                client.add_points(request).await.map_or(Outcome::FAILED, |_| Outcome::ONE)
            }
            Caller::UsePoints(client, template) => {
                let request = pb::UsePointsRequest { member_id: pick(rng, members), ..template.clone() };
                client.use_points(request).await.map_or(Outcome::FAILED, |_| Outcome::ONE)
            }
            Caller::BulkAdd(client, template, item, items) => {
                let items = (0..*items)
                    .map(|_| pb::BulkAddItem {
                        member_id: pick(rng, members),
                        points: rng.random_range(1..=100),
                        ..item.clone()
                    })
                    .collect();
                let request = pb::BulkAddPointsRequest { items, ..template.clone() };
                match client.bulk_add_points(request).await {
                    Ok(reply) => {
                        let reply = reply.into_inner();
                        Outcome { items: u64::from(reply.applied_count), ok: reply.fail_at.is_none() }
                    }
                    Err(_) => Outcome::FAILED,
                }
            }
            Caller::GetMember(client, template) => {
                let request = pb::GetMemberRequest { member_id: pick(rng, members), ..template.clone() };
                client.get_member(request).await.map_or(Outcome::FAILED, |_| Outcome::ONE)
            }
            Caller::Ping(client) => match client.check(HealthCheckRequest { service: String::new() }).await {
                Ok(reply) if reply.get_ref().status() == ServingStatus::Serving => Outcome::ONE,
                _ => Outcome::FAILED,
            },
        }
    }
}

fn pick(rng: &mut SmallRng, members: &[String]) -> String {
    members[rng.random_range(0..members.len())].clone()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentile_is_nearest_rank() {
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50), Some(50));
        assert_eq!(percentile(&hundred, 99), Some(99));
        assert_eq!(percentile(&hundred, 100), Some(100));
        let thousand: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&thousand, 99), Some(990));
        assert_eq!(percentile(&[7], 1), Some(7));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[3, 9], 50), Some(3));
        assert_eq!(percentile(&[3, 9], 51), Some(9));
        assert_eq!(percentile(&[], 50), None);
    }
}
