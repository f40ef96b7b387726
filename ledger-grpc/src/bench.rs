//! `ledger bench`: a closed-loop load generator for the ledger's gRPC API, or the same calls
//! over HTTP/JSON (`--transport http`).
//!
//! Each client task sends one request, waits for its reply and sends the next, so the rate
//! measured is what the server sustains at that concurrency. `--op ping` runs the same client
//! against the gRPC health check, which shows the ceiling of gRPC itself on the machine: a
//! write rate close to it means the ledger's own work is not the limit.
//!
//! `--transport http` sends each call in the Connect protocol's unary JSON form over keep-alive
//! HTTP/1.1 connections (one per client in flight), turning the same request into JSON and the
//! answer back through the descriptor set as any JSON client would: what an HTTP call costs
//! beside a gRPC one. The setup (program, funding) goes over gRPC either way.
//!
//! `--distinct` and `--references` reproduce a member base being imported (issue 12's table):
//! every item a new member and its own reference, numbered by one counter all clients share.
//! The server's resident memory is sampled each second when it runs on this machine
//! (`server_process`), and `--data-dir` gives the disk it took (`data_dir`).

mod data_dir;
mod server_process;
pub mod throwaway;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use prost_reflect::{DynamicMessage, MessageDescriptor};

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
    /// The program to write in; created if missing, with the name "ledger bench" that marks it
    /// as the bench's own.
    #[arg(long)]
    pub program: String,
    /// Write into --program even when it exists and is not the bench's own (its name is not
    /// "ledger bench"): it may hold real members, and the bench adds and uses points.
    #[arg(long)]
    pub yes: bool,
    /// Bench a ledgerd of its own instead of --addr's: the one beside this ledger, started on a
    /// new directory under TMPDIR, stopped and removed at the end.
    #[arg(long)]
    pub throwaway: bool,
    #[arg(long, value_enum)]
    pub op: Op,
    /// gRPC, or the Connect protocol's JSON form over HTTP/1.1 (not with ping, a gRPC service).
    #[arg(long, value_enum, default_value_t = Transport::Grpc)]
    pub transport: Transport,
    /// Concurrent client tasks, each with one request in flight.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// How long to issue requests, in seconds. May be left out (or 0) with --distinct and
    /// --members N: the run then ends once N new members were written.
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Items per bulk-add request (the server accepts at most 1,000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub items: u32,
    /// Without --distinct: the members drawn from uniformly, m0..m{N-1} [default: 10000].
    /// With --distinct: how many new members to write; the run ends when they are written or
    /// --seconds pass, whichever comes first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub members: Option<u32>,
    /// HTTP/2 connections the clients are spread over; one is enough because tonic multiplexes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Each add (each bulk item) names a new member, member-000000000, member-000000001, ...
    /// (9 digits, from one counter all clients share, starting at --start), with 10 points and
    /// the remark "welcome": a member base being imported. add-points and bulk-add only.
    #[arg(long)]
    pub distinct: bool,
    /// Each call (each bulk item) carries its own reference, ref-000000000000, ... (12 digits,
    /// from the same counter as --distinct), so the server checks and keeps one reference per
    /// event. Not with get-member or ping.
    #[arg(long)]
    pub references: bool,
    /// The counter's first value for --distinct and --references. A second run in the same
    /// program continues without reusing a member or a reference when it starts where the
    /// first stopped: the first run's next_start.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(..START_END))]
    pub start: u64,
    /// The server's process id, for its resident memory (sampled each second and at the end).
    /// Without it, the process listening on --addr's port is found from /proc when the
    /// server runs on this machine.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// The server's data directory: its size at the end (allocated and apparent bytes), and how
    /// much it grew during the run per item acknowledged: the disk each event takes.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// After the last reply, wait this long before the final memory sample and the data
    /// directory's size, sampling each second: what the server takes after a load (its next
    /// checkpoint) then counts in the peak and the end. Rates count the load alone.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub settle_seconds: u64,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Grpc,
    Http,
}

/// The result of a run; `to_json_line` is the stable, machine-read output.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchReport {
    pub op: String,
    pub transport: String,
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
    /// Adds and uses whose reference was used already: the server answered with the original
    /// result and wrote nothing. Not counted in `items`.
    pub duplicates: u64,
    /// With --distinct or --references: the --start of a run that continues this one.
    pub next_start: Option<u64>,
    /// The process whose memory was sampled; null when it was not found.
    pub server_pid: Option<u32>,
    /// The server's resident memory: the most of the samples taken each second and at the end,
    /// and the last of them. Null when the server's process was not found or not readable.
    pub server_rss_peak_mib: Option<f64>,
    pub server_rss_end_mib: Option<f64>,
    /// The kernel's high-water mark of the server's resident memory (`VmHWM`) at the end: over
    /// the process's whole life, between samples too.
    pub server_rss_hwm_mib: Option<f64>,
    /// With --data-dir: its size at the end, allocated and apparent; how much its allocated
    /// size grew from the start of the run (negative when the server freed more than it
    /// wrote); and that growth per item acknowledged.
    pub data_dir_bytes: Option<u64>,
    pub data_dir_apparent_bytes: Option<u64>,
    pub data_dir_grown_bytes: Option<i64>,
    pub data_dir_bytes_per_event: Option<f64>,
}

impl BenchReport {
    /// One JSON object without a trailing newline; keys in the documented order.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a struct of numbers and a string always serializes")
    }
}

pub async fn run(args: BenchArgs) -> Result<BenchReport, BenchError> {
    check(&args)?;
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
    let items = Arc::new(Items::new(&args));
    prepare(&args, &channels[0], &bearer, &items.pool).await?;
    // After connecting: the server's side of those connections shows that --addr is local.
    let memory = find_server(&args);
    let disk_before = data_dir_size(&args);

    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let deadline = args.seconds.filter(|&seconds| seconds > 0).map(|seconds| started + Duration::from_secs(seconds));
    let progress = tokio::spawn(report_progress(Arc::clone(&counters), memory.clone(), started));
    let http = HttpLink::new(&args, &token)?;
    let mut tasks = JoinSet::new();
    for channel in channels.iter().cycle().take(args.clients.try_into()?) {
        let stub = match args.transport {
            Transport::Grpc => Link::Grpc(channel, &bearer),
            Transport::Http => Link::Http(&http),
        };
        let caller = Caller::new(&args, stub);
        tasks.spawn(client_loop(caller, Arc::clone(&items), deadline, Arc::clone(&counters)));
    }
    let mut latencies_us: Vec<u32> = tasks.join_all().await.concat();
    let elapsed = started.elapsed().as_secs_f64();
    if args.settle_seconds > 0 {
        eprintln!("settling: {} s more of memory samples", args.settle_seconds);
        tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    }
    progress.abort();
    let memory_end = memory.as_deref().and_then(MemorySamples::sample);
    let disk = data_dir_size(&args);
    let disk_grown = disk_before.zip(disk).and_then(|(before, after)| grown(before, after));

    latencies_us.sort_unstable();
    let requests = counters.requests.load(Ordering::Relaxed);
    let items_acknowledged = counters.items.load(Ordering::Relaxed);
    let to_ms = |percent| percentile(&latencies_us, percent).map_or(0.0, |us| f64::from(us) / 1000.0);
    let report = BenchReport {
        op: op_name(args.op),
        transport: args.transport.to_possible_value().expect("no transport is skipped").get_name().to_owned(),
        clients: args.clients,
        seconds: round(elapsed, 3),
        requests,
        items: items_acknowledged,
        errors: counters.errors.load(Ordering::Relaxed),
        // Counts stay far below 2^53, where f64 is exact.
        ops_per_s: round(requests as f64 / elapsed, 1),
        items_per_s: round(items_acknowledged as f64 / elapsed, 1),
        p50_ms: to_ms(50),
        p99_ms: to_ms(99),
        duplicates: counters.duplicates.load(Ordering::Relaxed),
        next_start: items.counting().then(|| items.next_start()),
        server_pid: memory.as_ref().map(|memory| memory.pid),
        server_rss_peak_mib: memory.as_deref().and_then(MemorySamples::peak_kib).map(mib),
        server_rss_end_mib: memory_end.map(|end| mib(end.rss_kib)),
        server_rss_hwm_mib: memory_end.map(|end| mib(end.hwm_kib)),
        data_dir_bytes: disk.map(|disk| disk.allocated_bytes),
        data_dir_apparent_bytes: disk.map(|disk| disk.apparent_bytes),
        data_dir_grown_bytes: disk_grown,
        data_dir_bytes_per_event: disk_grown
            .filter(|_| items_acknowledged > 0)
            .map(|grown| round(grown as f64 / items_acknowledged as f64, 1)),
    };
    print_summary(&report, &args, memory.as_deref());
    Ok(report)
}

/// The server's process for its memory samples: --server-pid, or the local process listening
/// on --addr's port; `None`, said on stderr, when there is none.
fn find_server(args: &BenchArgs) -> Option<Arc<MemorySamples>> {
    let pid = match args.server_pid {
        Some(pid) => pid,
        None => match server_process::find(&args.addr) {
            Ok(pid) => pid,
            Err(why) => {
                eprintln!("server memory: not measured: {why}");
                return None;
            }
        },
    };
    eprintln!("server memory: sampling process {pid} each second");
    Some(Arc::new(MemorySamples::new(pid)))
}

/// The size of --data-dir, if given; `None`, said on stderr, when it cannot be read.
fn data_dir_size(args: &BenchArgs) -> Option<data_dir::Size> {
    let dir = args.data_dir.as_deref()?;
    data_dir::size(dir).map_err(|why| eprintln!("data dir: not measured: {why}")).ok()
}

/// Allocated bytes from `before` to `after`; sled frees space too, so it may be negative.
fn grown(before: data_dir::Size, after: data_dir::Size) -> Option<i64> {
    let before = i64::try_from(before.allocated_bytes).ok()?;
    let after = i64::try_from(after.allocated_bytes).ok()?;
    after.checked_sub(before)
}

/// What the flags cannot say alone; each refusal names the flag and the rule.
fn check(args: &BenchArgs) -> Result<(), BenchError> {
    let op = op_name(args.op);
    if args.distinct && !matches!(args.op, Op::AddPoints | Op::BulkAdd) {
        return Err(format!("--distinct: only add-points and bulk-add write new members, not {op}").into());
    }
    if args.references && matches!(args.op, Op::GetMember | Op::Ping) {
        return Err(format!("--references: {op} writes nothing and carries no reference").into());
    }
    if args.transport == Transport::Http && args.op == Op::Ping {
        return Err("--transport http: ping is the gRPC health check; it has no HTTP form".into());
    }
    let ends_by_count = args.distinct && args.members.is_some();
    if args.seconds.unwrap_or(0) == 0 && !ends_by_count {
        return Err("--seconds: must be at least 1 unless --distinct --members N ends the run".into());
    }
    Ok(())
}

fn op_name(op: Op) -> String {
    op.to_possible_value().expect("no op is skipped").get_name().to_owned()
}

/// Human lines on stderr beside the JSON line on stdout: the memory and disk figures, or why
/// there are none.
fn print_summary(report: &BenchReport, args: &BenchArgs, memory: Option<&MemorySamples>) {
    match (report.server_pid, report.server_rss_peak_mib, report.server_rss_end_mib) {
        (Some(pid), Some(peak), Some(end)) => {
            let hwm = report.server_rss_hwm_mib.unwrap_or(end);
            eprintln!(
                "server memory (process {pid}): resident peak {peak:.1} MiB (sampled each second), \
                 {end:.1} MiB at the end; the kernel's high-water mark {hwm:.1} MiB"
            );
        }
        (Some(pid), _, _) => {
            let why = memory.and_then(MemorySamples::failure).unwrap_or_default();
            eprintln!("server memory (process {pid}): not measured at the end: {why}");
        }
        (None, _, _) => eprintln!("server memory: not measured (see above)"),
    }
    if let (Some(dir), Some(bytes), Some(apparent)) =
        (&args.data_dir, report.data_dir_bytes, report.data_dir_apparent_bytes)
    {
        let grown = match (report.data_dir_grown_bytes, report.data_dir_bytes_per_event) {
            (Some(grown), Some(per_event)) => {
                format!("grew {grown} bytes, {per_event:.0} per event over {} events", report.items)
            }
            (Some(grown), None) => format!("grew {grown} bytes, no event acknowledged"),
            (None, _) => "growth unknown".to_owned(),
        };
        eprintln!(
            "data dir {}: {bytes} bytes allocated ({:.1} MiB), {apparent} apparent; {grown}",
            dir.display(),
            mib(bytes / 1024),
        );
    }
    if let Some(next_start) = report.next_start {
        eprintln!("a run continuing this one: --start {next_start}");
    }
}

fn mib(kib: u64) -> f64 {
    // KiB counts stay far below 2^53, where f64 is exact.
    round(kib as f64 / 1024.0, 1)
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
const FUND_POINTS: i64 = ledger_core::limits::POINTS_PER_ADD_MAX as i64;
/// Items per funding request: the server's bulk limit.
const FUND_ITEMS_MAX: usize = ledger_core::limits::BULK_ITEMS_MAX;

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
    let request = pb::CreateProgramRequest { program_id: args.program.clone(), name: BENCH_PROGRAM_NAME.to_owned() };
    match admin.create_program(request).await {
        Ok(_) => {}
        Err(status) if status.code() == Code::AlreadyExists => mine_or_told(args, &mut admin).await?,
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

/// The name of every program the bench creates: a later run may write into such a program
/// without asking, since whatever it holds the bench wrote.
pub const BENCH_PROGRAM_NAME: &str = "ledger bench";

/// An existing program is written into only when the bench made it, or when told `--yes`:
/// every op but ping adds or uses points, and in a real program those land on real members.
async fn mine_or_told(args: &BenchArgs, admin: &mut AdminServiceClient<Authed>) -> Result<(), BenchError> {
    if args.yes {
        return Ok(());
    }
    let programs = admin
        .list_programs(pb::ListProgramsRequest {})
        .await
        .map_err(|status| format!("reading program {}: {status}", args.program))?
        .into_inner()
        .programs;
    let name = programs.into_iter().find(|program| program.program_id == args.program).map(|program| program.name);
    if name.as_deref() == Some(BENCH_PROGRAM_NAME) {
        return Ok(());
    }
    Err(format!(
        "program {} exists and was not created by ledger bench (its name is {:?}, not {BENCH_PROGRAM_NAME:?}): \
         it may hold real members, and the bench would add and use points in it. Nothing was written. \
         Give --yes to write into it anyway, another --program, or --throwaway to bench a server of its own",
        args.program,
        name.unwrap_or_default()
    )
    .into())
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    items: AtomicU64,
    errors: AtomicU64,
    duplicates: AtomicU64,
}

async fn client_loop(
    mut caller: Caller,
    items: Arc<Items>,
    deadline: Option<Instant>,
    counters: Arc<Counters>,
) -> Vec<u32> {
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut latencies_us = Vec::new();
    while deadline.is_none_or(|deadline| Instant::now() < deadline) {
        let sent = Instant::now();
        // None: every one of --members new members was handed out, to this client or another.
        let Some(outcome) = caller.call(&mut rng, &items).await else {
            break;
        };
        // u32 microseconds hold 71 minutes and convert to f64 exactly.
        latencies_us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
        counters.requests.fetch_add(1, Ordering::Relaxed);
        counters.items.fetch_add(outcome.items, Ordering::Relaxed);
        counters.duplicates.fetch_add(outcome.duplicates, Ordering::Relaxed);
        if !outcome.ok {
            counters.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    latencies_us
}

/// A line on stderr each second; with the server's process known, its resident memory is
/// sampled at the start and with each line.
async fn report_progress(counters: Arc<Counters>, memory: Option<Arc<MemorySamples>>, started: Instant) {
    if let Some(memory) = &memory {
        memory.sample();
    }
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut requests_before = 0;
    let mut items_before = 0;
    loop {
        tick.tick().await;
        let requests = counters.requests.load(Ordering::Relaxed);
        let items = counters.items.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        let resident = match memory.as_deref().map(MemorySamples::sample) {
            Some(Some(now)) => format!(" {:>9.1} MiB resident", mib(now.rss_kib)),
            Some(None) => " resident unknown".to_owned(),
            None => String::new(),
        };
        eprintln!(
            "{:>7.1}s {requests:>10} requests {:>8} ops/s {:>9} items/s {errors:>8} errors{resident}",
            started.elapsed().as_secs_f64(),
            requests - requests_before,
            items - items_before,
        );
        requests_before = requests;
        items_before = items;
    }
}

/// The server's resident memory, sampled each second by the progress task and once at the end.
struct MemorySamples {
    pid: u32,
    /// The most resident of the samples so far; 0 before the first.
    peak_kib: AtomicU64,
    /// Why the last look failed, if it did: the server exited, or its /proc entry is another
    /// user's.
    failure: Mutex<Option<String>>,
}

impl MemorySamples {
    fn new(pid: u32) -> MemorySamples {
        MemorySamples { pid, peak_kib: AtomicU64::new(0), failure: Mutex::new(None) }
    }

    fn sample(&self) -> Option<server_process::Memory> {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        match server_process::memory(self.pid) {
            Ok(memory) => {
                self.peak_kib.fetch_max(memory.rss_kib, Ordering::Relaxed);
                *failure = None;
                Some(memory)
            }
            Err(error) => {
                *failure = Some(format!("reading /proc/{}/status: {error}", self.pid));
                None
            }
        }
    }

    fn peak_kib(&self) -> Option<u64> {
        Some(self.peak_kib.load(Ordering::Relaxed)).filter(|&peak| peak > 0)
    }

    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Members drawn from without --distinct when --members is not given.
const POOL_MEMBERS_DEFAULT: u32 = 10_000;
/// Each new member's first add with --distinct: a welcome bonus.
const WELCOME_POINTS: i64 = 10;
const WELCOME_REMARK: &str = "welcome";
/// --start stays below this so that references keep their 12 digits.
const START_END: u64 = 1_000_000_000_000;

/// What each add, use or bulk item names: its member, its points and its reference.
struct Items {
    /// The members drawn from uniformly; empty with --distinct.
    pool: Arc<[String]>,
    distinct: bool,
    references: bool,
    /// The counter of --distinct and --references: the next index to hand out...
    next: AtomicU64,
    /// ...and the first not to: --start + --members with --distinct, else no end.
    end: u64,
}

impl Items {
    fn new(args: &BenchArgs) -> Items {
        let pool_members = if args.distinct { 0 } else { args.members.unwrap_or(POOL_MEMBERS_DEFAULT) };
        let end = match (args.distinct, args.members) {
            (true, Some(members)) => args.start.saturating_add(u64::from(members)),
            _ => u64::MAX,
        };
        Items {
            pool: (0..pool_members).map(|index| format!("m{index}")).collect(),
            distinct: args.distinct,
            references: args.references,
            next: AtomicU64::new(args.start),
            end,
        }
    }

    /// Whether items are numbered (--distinct or --references).
    fn counting(&self) -> bool {
        self.distinct || self.references
    }

    /// The indexes of the next call's `count` items, fewer at the end; `None` once the counter
    /// reached its end. Each call takes its own block, so no index goes out twice.
    fn take(&self, count: u32) -> Option<Range<u64>> {
        let count = u64::from(count);
        if !self.counting() {
            return Some(0..count);
        }
        let first = self.next.fetch_add(count, Ordering::Relaxed);
        (first < self.end).then(|| first..first.saturating_add(count).min(self.end))
    }

    /// Past every index handed out: where a run continuing this one starts.
    fn next_start(&self) -> u64 {
        self.next.load(Ordering::Relaxed).min(self.end)
    }

    fn member(&self, rng: &mut SmallRng, index: u64) -> String {
        if self.distinct { format!("member-{index:09}") } else { self.pick(rng) }
    }

    fn pick(&self, rng: &mut SmallRng) -> String {
        self.pool[rng.random_range(0..self.pool.len())].clone()
    }

    fn points(&self, rng: &mut SmallRng) -> i64 {
        if self.distinct { WELCOME_POINTS } else { rng.random_range(1..=100) }
    }

    fn reference(&self, index: u64) -> String {
        if self.references { format!("ref-{index:012}") } else { String::new() }
    }
}

/// What one call did: items applied, items skipped as duplicates, and whether it counts as an
/// error.
struct Outcome {
    items: u64,
    duplicates: u64,
    ok: bool,
}

impl Outcome {
    const FAILED: Outcome = Outcome { items: 0, duplicates: 0, ok: false };
    const ONE: Outcome = Outcome { items: 1, duplicates: 0, ok: true };
    const DUPLICATE: Outcome = Outcome { items: 0, duplicates: 1, ok: true };

    fn receipt(receipt: &pb::PointsReceipt) -> Outcome {
        if receipt.duplicate { Outcome::DUPLICATE } else { Outcome::ONE }
    }
}

/// How a caller reaches the server.
enum Link<'a> {
    Grpc(&'a Channel, &'a Bearer),
    Http(&'a HttpLink),
}

/// A generated gRPC client, or the HTTP route of the same method.
enum Stub<C> {
    Grpc(C),
    Http(Box<HttpRoute>),
}

impl<C> Stub<C> {
    fn new(link: &Link<'_>, grpc: impl FnOnce(Channel, Bearer) -> C, route: &str) -> Stub<C> {
        match link {
            Link::Grpc(channel, bearer) => Stub::Grpc(grpc((*channel).clone(), (*bearer).clone())),
            Link::Http(http) => Stub::Http(Box::new(http.route(route))),
        }
    }
}

/// One client's stub and the constant part of its request, built once.
enum Caller {
    AddPoints(Stub<PointsServiceClient<Authed>>, pb::AddPointsRequest),
    UsePoints(Stub<PointsServiceClient<Authed>>, pb::UsePointsRequest),
    BulkAdd(Stub<PointsServiceClient<Authed>>, pb::BulkAddPointsRequest, pb::BulkAddItem, u32),
    GetMember(Stub<MembersServiceClient<Authed>>, pb::GetMemberRequest),
    Ping(HealthClient<Authed>),
}

impl Caller {
    fn new(args: &BenchArgs, link: Link<'_>) -> Caller {
        let program_id = args.program.clone();
        let remark = if args.distinct { WELCOME_REMARK } else { "bench" }.to_owned();
        let points = |route| Stub::new(&link, PointsServiceClient::with_interceptor, route);
        match args.op {
            Op::AddPoints => Caller::AddPoints(
                points("/ledger.v1.PointsService/AddPoints"),
                pb::AddPointsRequest { program_id, remark, ..Default::default() },
            ),
            Op::UsePoints => Caller::UsePoints(
                points("/ledger.v1.PointsService/UsePoints"),
                pb::UsePointsRequest { program_id, remark, points: 1, ..Default::default() },
            ),
            Op::BulkAdd => Caller::BulkAdd(
                points("/ledger.v1.PointsService/BulkAddPoints"),
                pb::BulkAddPointsRequest { program_id, items: Vec::new(), atomic: false },
                pb::BulkAddItem { remark, ..Default::default() },
                args.items,
            ),
            Op::GetMember => Caller::GetMember(
                Stub::new(&link, MembersServiceClient::with_interceptor, "/ledger.v1.MembersService/GetMember"),
                pb::GetMemberRequest { program_id, member_id: String::new(), as_of: None },
            ),
            Op::Ping => match link {
                Link::Grpc(channel, bearer) => {
                    Caller::Ping(HealthClient::with_interceptor(channel.clone(), bearer.clone()))
                }
                Link::Http(_) => unreachable!("`check` refuses ping over HTTP"),
            },
        }
    }

    /// One call; `None`, without calling, once the items' counter reached its end.
    async fn call(&mut self, rng: &mut SmallRng, items: &Items) -> Option<Outcome> {
        let outcome = match self {
            Caller::AddPoints(client, template) => {
                let index = items.take(1)?.start;
                let request = pb::AddPointsRequest {
                    member_id: items.member(rng, index),
                    points: items.points(rng),
                    reference: items.reference(index),
                    ..template.clone()
                };
                let reply = match client {
                    Stub::Grpc(client) => client.add_points(request).await.ok().map(tonic::Response::into_inner),
                    Stub::Http(route) => route.call(&request).await,
                };
                reply.map_or(Outcome::FAILED, |reply| Outcome::receipt(&reply))
            }
            Caller::UsePoints(client, template) => {
                let index = items.take(1)?.start;
                let request = pb::UsePointsRequest {
                    member_id: items.pick(rng),
                    reference: items.reference(index),
                    ..template.clone()
                };
                let reply = match client {
                    Stub::Grpc(client) => client.use_points(request).await.ok().map(tonic::Response::into_inner),
                    Stub::Http(route) => route.call(&request).await,
                };
                reply.map_or(Outcome::FAILED, |reply| Outcome::receipt(&reply))
            }
            Caller::BulkAdd(client, template, item, count) => {
                let batch = items
                    .take(*count)?
                    .map(|index| pb::BulkAddItem {
                        member_id: items.member(rng, index),
                        points: items.points(rng),
                        reference: items.reference(index),
                        ..item.clone()
                    })
                    .collect();
                let request = pb::BulkAddPointsRequest { items: batch, ..template.clone() };
                let reply = match client {
                    Stub::Grpc(client) => client.bulk_add_points(request).await.ok().map(tonic::Response::into_inner),
                    Stub::Http(route) => route.call::<pb::BulkPointsResult>(&request).await,
                };
                match reply {
                    Some(reply) => Outcome {
                        items: u64::from(reply.applied_count),
                        duplicates: u64::try_from(reply.duplicates.len()).unwrap_or(u64::MAX),
                        ok: reply.fail_at.is_none(),
                    },
                    None => Outcome::FAILED,
                }
            }
            Caller::GetMember(client, template) => {
                let request = pb::GetMemberRequest { member_id: items.pick(rng), ..template.clone() };
                let reply = match client {
                    Stub::Grpc(client) => client.get_member(request).await.ok().map(tonic::Response::into_inner),
                    Stub::Http(route) => route.call::<pb::Member>(&request).await,
                };
                reply.map_or(Outcome::FAILED, |_| Outcome::ONE)
            }
            Caller::Ping(client) => match client.check(HealthCheckRequest { service: String::new() }).await {
                Ok(reply) if reply.get_ref().status() == ServingStatus::Serving => Outcome::ONE,
                _ => Outcome::FAILED,
            },
        };
        Some(outcome)
    }
}

/// The HTTP client all callers share: it keeps one HTTP/1.1 connection alive per call in
/// flight and reuses it for the next call.
struct HttpLink {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    authorization: http::HeaderValue,
}

impl HttpLink {
    fn new(args: &BenchArgs, token: &str) -> Result<HttpLink, BenchError> {
        let mut connector = HttpConnector::new();
        // As tonic does: a small request must not wait for Nagle's timer.
        connector.set_nodelay(true);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        let authorization = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| "the token holds characters not allowed in a header")?;
        Ok(HttpLink { client, base: format!("http://{}", args.addr), authorization })
    }

    /// The route of one method, with the messages its JSON maps to.
    fn route(&self, path: &str) -> HttpRoute {
        let pool = crate::http::connect::descriptors();
        let (service, method) = path.trim_start_matches('/').split_once('/').expect("a route is /service/method");
        let method = pool
            .get_service_by_name(service)
            .and_then(|service| service.methods().find(|known| known.name() == method))
            .unwrap_or_else(|| panic!("{path} is a method of the descriptor set"));
        HttpRoute {
            client: self.client.clone(),
            uri: format!("{}{path}", self.base).parse().expect("a valid URI"),
            authorization: self.authorization.clone(),
            input: method.input(),
            output: method.output(),
        }
    }
}

/// One method over HTTP/JSON.
struct HttpRoute {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: http::Uri,
    authorization: http::HeaderValue,
    input: MessageDescriptor,
    output: MessageDescriptor,
}

impl HttpRoute {
    /// One call: the request as proto3 JSON, the answer from it; `None` for any error.
    async fn call<Reply: prost::Message + Default>(&self, request: &impl prost::Message) -> Option<Reply> {
        let mut message = DynamicMessage::new(self.input.clone());
        message.transcode_from(request).ok()?;
        let body = serde_json::to_vec(&message).ok()?;
        let request = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        let response = self.client.request(request).await.ok()?;
        let ok = response.status() == http::StatusCode::OK;
        // Read to the end either way, so that the connection can carry the next call.
        let answer = response.into_body().collect().await.ok()?.to_bytes();
        if !ok {
            return None;
        }
        let mut json = serde_json::Deserializer::from_slice(&answer);
        DynamicMessage::deserialize(self.output.clone(), &mut json).ok()?.transcode_to().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(flags: &str) -> BenchArgs {
        let words = std::iter::once("bench").chain(flags.split_whitespace());
        Command::try_parse_from(words).expect("flags parse").args
    }

    #[test]
    fn distinct_items_are_numbered_from_start_in_blocks_until_members_were_handed_out() {
        let items = Items::new(&parse("--program p --op bulk-add --clients 2 --distinct --members 2500 --start 3000"));
        assert!(items.pool.is_empty());
        assert_eq!(items.take(1_000), Some(3_000..4_000));
        assert_eq!(items.take(1_000), Some(4_000..5_000));
        assert_eq!(items.take(1_000), Some(5_000..5_500), "the last block stops at --members");
        assert_eq!(items.take(1_000), None);
        assert_eq!(items.take(1), None);
        assert_eq!(items.next_start(), 5_500);
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(items.member(&mut rng, 3_000), "member-000003000");
        assert_eq!(items.points(&mut rng), 10);
        assert_eq!(items.reference(3_000), "", "no references without --references");
    }

    #[test]
    fn references_number_calls_over_the_pool_without_an_end() {
        let items = Items::new(&parse("--program p --op add-points --clients 1 --seconds 1 --members 3 --references"));
        assert_eq!(items.pool.len(), 3);
        assert_eq!(items.take(1), Some(0..1));
        assert_eq!(items.take(1), Some(1..2));
        assert_eq!(items.reference(1), "ref-000000000001");
        let mut rng = SmallRng::seed_from_u64(1);
        assert!(["m0", "m1", "m2"].contains(&items.member(&mut rng, 1).as_str()));
        assert!(items.counting());
        assert_eq!(items.next_start(), 2);
    }

    #[test]
    fn without_distinct_or_references_nothing_is_numbered() {
        let items = Items::new(&parse("--program p --op bulk-add --clients 1 --seconds 1"));
        assert_eq!(items.pool.len(), 10_000, "the default pool");
        assert!(!items.counting());
        assert_eq!(items.take(1_000), Some(0..1_000));
        assert_eq!(items.take(1_000), Some(0..1_000));
    }

    #[test]
    fn flags_that_do_not_fit_together_are_refused_by_name() {
        let refused = |flags: &str| check(&parse(flags)).expect_err(flags).to_string();
        assert!(refused("--program p --op get-member --clients 1 --seconds 1 --distinct").starts_with("--distinct:"));
        assert!(refused("--program p --op ping --clients 1 --seconds 1 --references").starts_with("--references:"));
        assert!(refused("--program p --op add-points --clients 1").starts_with("--seconds:"));
        assert!(refused("--program p --op add-points --clients 1 --seconds 0").starts_with("--seconds:"));
        assert!(refused("--program p --op bulk-add --clients 1 --distinct").starts_with("--seconds:"));
        check(&parse("--program p --op bulk-add --clients 1 --distinct --members 5")).expect("ends by count");
        check(&parse("--program p --op add-points --clients 1 --distinct --seconds 3")).expect("ends by time");
        check(&parse("--program p --op use-points --clients 1 --seconds 3 --references")).expect("uses carry one");
        let start = |start: &str| {
            let flags = ["bench", "--program", "p", "--op", "add-points", "--clients", "1", "--start", start];
            Command::try_parse_from(flags).map(|command| command.args.start)
        };
        assert_eq!(start("999999999999").ok(), Some(999_999_999_999));
        assert!(start("1000000000000").is_err(), "--start keeps references to 12 digits");
    }

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
