//! `ledgerd`: serves the ledger over gRPC.
//!
//! On first start with an empty data directory it issues an admin token and
//! writes it to `DIR/admin.token`, readable only by its owner. It shuts down
//! cleanly on SIGINT or SIGTERM: the server stops taking calls, the ledger
//! checkpoints and flushes, and every acknowledged write is durable.

use clap::Parser;

/// The writer allocates and frees many small strings and vectors per bulk item;
/// glibc's allocator spent a third of the writer's time on them (perf, 1,000-item
/// bulks), mimalloc a small fraction. The `system-allocator` feature leaves it
/// out, for heap profilers that follow malloc (`heaptrack`).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ledger_core::{Timestamp, limits};
use ledger_grpc::limits::Limits;
use ledger_grpc::server::Config;
use ledger_grpc::tls::TlsIdentity;
use ledger_store::disk::Faults;
use ledger_store::tokens::Role;
use ledger_store::{Ledger, Options, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "ledgerd",
    version,
    about = "The points and voucher ledger, served over gRPC",
    after_help = "Logging: to stderr, at the level RUST_LOG sets (default `info`, which logs one line per \
                  request under target `ledgerd::request`). Examples: RUST_LOG=warn (no request lines), \
                  RUST_LOG=info,ledgerd::request=off, RUST_LOG=debug. See docs/OPERATIONS.md."
)]
struct Args {
    /// Where the ledger keeps its data.
    #[arg(long, default_value = "./ledger-data")]
    data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: String,
    /// Seconds between expiry sweeps (0 turns the sweep off; reads never count
    /// expired lots either way).
    #[arg(long, default_value_t = 60)]
    expiry_sweep_secs: u64,
    /// Events between checkpoints of the projections. Hidden: crash tests set it
    /// small so that kills land on the checkpoint path too.
    #[arg(long, hide = true)]
    checkpoint_events: Option<u64>,
    /// Dirty rows at which a checkpoint is due (`Options::checkpoint_rows_max`).
    /// Hidden: for measuring its trade-off between a checkpoint's memory and stall
    /// and how often one is written.
    #[arg(long, hide = true)]
    checkpoint_rows: Option<usize>,
    /// Members and references kept in memory at most, instead of what
    /// `--cache-mib` gives. Hidden: crash tests make it tiny so that rows leave
    /// memory and are read back all the time.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    resident_rows: Option<u64>,
    /// Milliseconds between checkpoints when writes are few. Hidden, as above.
    #[arg(long, hide = true)]
    checkpoint_interval_ms: Option<u64>,
    /// Free space (MiB) the data directory's file system must keep: below it,
    /// writes are refused as UNAVAILABLE until space is freed, so that the
    /// storage engine never meets a full disk itself (0 turns it off).
    #[arg(long, default_value_t = ledger_store::ledger::DISK_FREE_MIN_BYTES_DEFAULT / (1024 * 1024))]
    disk_free_min_mib: u64,
    /// Memory (MiB) for everything the ledger caches: an eighth for the storage
    /// engine's page cache, the rest for members and references in memory. The
    /// others stay on disk and are read when a request needs them, so memory
    /// follows this setting, not the number of members.
    #[arg(long, default_value_t = ledger_store::ledger::CACHE_MIB_DEFAULT, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    cache_mib: u64,
    /// A file that, while it exists and names ENOSPC, EIO or EROFS, makes every
    /// flush and sync fail with that error. Hidden: fault tests break a running
    /// server's disk with it.
    #[arg(long, hide = true)]
    fault_file: Option<PathBuf>,
    /// Milliseconds between probe writes while the disk is faulted. Hidden, as above.
    #[arg(long, hide = true)]
    fault_probe_ms: Option<u64>,
    /// The server's certificate chain (PEM): serve TLS. Needs --tls-key; without
    /// both the server speaks plaintext HTTP/2.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at `GET /metrics` on this address (its own
    /// listener; port 0 picks a free port, the bound address is printed). Without
    /// it, nothing listens and no series are kept.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Log lines as text, or as one JSON object a line for log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    limits: LimitArgs,
    /// Publish every durable event, in order, to NATS JetStream at this URL
    /// (`nats://HOST:4222`, several separated by commas): subject
    /// `ledger.<program_id>`, header `Nats-Msg-Id` = the sequence. A restart resumes
    /// after the stream's last message; NATS being down delays the feed, never a
    /// write. See docs/OPERATIONS.md, "Event export".
    #[arg(long, value_name = "URL")]
    export_nats: Option<String>,
    /// The JetStream stream of --export-nats (subjects `ledger.>`, file storage),
    /// created if missing.
    #[arg(long, value_name = "NAME", default_value = ledger_grpc::nats::STREAM_DEFAULT, requires = "export_nats")]
    nats_stream: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

/// What one caller may cost (ledger_core::limits has the defaults and why).
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Limits")]
struct LimitArgs {
    /// Open connections; more wait to be accepted. Lowered to fit the descriptor limit.
    #[arg(long, default_value_t = limits::CONNECTIONS_MAX)]
    connections_max: usize,
    /// Calls being handled at once in the whole server (open streams count against
    /// the stream caps instead); beyond it RESOURCE_EXHAUSTED (TOO_MANY_REQUESTS).
    #[arg(long, default_value_t = limits::REQUESTS_MAX)]
    requests_max: usize,
    /// Concurrent calls on one connection (HTTP/2 max concurrent streams).
    #[arg(long, default_value_t = limits::REQUESTS_PER_CONNECTION_MAX)]
    requests_per_connection_max: u32,
    /// Open event streams (StreamEvents, ReadEvents, Backup) in the whole server; beyond it
    /// RESOURCE_EXHAUSTED (TOO_MANY_STREAMS).
    #[arg(long, default_value_t = limits::STREAMS_MAX)]
    streams_max: usize,
    /// Open event streams (StreamEvents, ReadEvents, Backup) per token; beyond it
    /// RESOURCE_EXHAUSTED (TOO_MANY_STREAMS).
    #[arg(long, default_value_t = limits::STREAMS_PER_TOKEN_MAX)]
    streams_per_token_max: usize,
    /// Seconds a connection may stay open with no call in flight.
    #[arg(long, default_value_t = limits::CONNECTION_IDLE_TIMEOUT_MS / 1_000)]
    idle_timeout_secs: u64,
    /// Milliseconds a new connection has to send HTTP/2's preface. Hidden: tests
    /// shorten it, and the idle timeout below.
    #[arg(long, hide = true, default_value_t = limits::PREFACE_TIMEOUT_MS)]
    preface_timeout_ms: u64,
    #[arg(long, hide = true)]
    idle_timeout_ms: Option<u64>,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            connections_max: self.connections_max.max(1),
            requests_max: self.requests_max.max(1),
            requests_per_connection_max: self.requests_per_connection_max.max(1),
            streams_max: self.streams_max,
            streams_per_token_max: self.streams_per_token_max,
            preface_timeout: Duration::from_millis(self.preface_timeout_ms),
            idle_timeout: Duration::from_millis(
                self.idle_timeout_ms.unwrap_or(self.idle_timeout_secs.saturating_mul(1_000)),
            ),
            ..Limits::default()
        }
    }
}

/// How long a stop waits for the ledger to checkpoint and close before the
/// process exits anyway: whatever was acknowledged is durable already, and the
/// next start recovers the rest from the log. A stop never hangs on a broken disk.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // Log lines leave in batches from a thread of their own (`log_writer`): a
    // request line per call costs no write(2) on the call's path.
    let (stderr, _flushed_at_exit) = match ledger_grpc::log_writer::stderr() {
        Ok(writer) => writer,
        Err(error) => {
            eprintln!("ledgerd: cannot start the log's writer thread: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(stderr);
    match args.log_format {
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => logs.json().init(),
    }
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Once, and not through the log: whatever RUST_LOG says, the
            // operator must learn why the server did not start or stopped.
            ledger_grpc::log_writer::flush();
            eprintln!("ledgerd: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&args.data_dir)?;
    let defaults = Options::with_cache_mib(args.cache_mib);
    let options = Options {
        expiry_sweep_interval: (args.expiry_sweep_secs > 0).then(|| Duration::from_secs(args.expiry_sweep_secs)),
        checkpoint_events: args.checkpoint_events.unwrap_or(defaults.checkpoint_events),
        checkpoint_rows_max: args.checkpoint_rows.unwrap_or(defaults.checkpoint_rows_max),
        resident_rows_max: args
            .resident_rows
            .map_or(defaults.resident_rows_max, |rows| usize::try_from(rows).unwrap_or(usize::MAX)),
        checkpoint_interval: args.checkpoint_interval_ms.map_or(defaults.checkpoint_interval, Duration::from_millis),
        fault_probe_interval: args.fault_probe_ms.map_or(defaults.fault_probe_interval, Duration::from_millis),
        disk_free_min_bytes: args.disk_free_min_mib.saturating_mul(1024 * 1024),
        faults: args.fault_file.clone().map_or(defaults.faults.clone(), Faults::from_file),
        ..defaults
    };
    let config = Config { limits: args.limits.limits(), tls: tls_identity(&args)? };
    if let Some(url) = &args.export_nats {
        ledger_grpc::nats::check_servers(url)?;
    }
    // Before the ledger opens: its writer registers its series as it starts.
    let metrics = match &args.metrics {
        Some(address) => {
            let handle = ledger_grpc::observe::install_recorder()?;
            Some((tokio::net::TcpListener::bind(address).await?, handle))
        }
        None => None,
    };
    let ledger = Ledger::open_with(&args.data_dir, options).map_err(|error| unopenable(error, &args.data_dir))?;
    if ledger.tokens().is_empty() {
        write_admin_token(&ledger, &args.data_dir)?;
    }
    let shutdown = ledger_grpc::stop_signal::stop_signal()?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let address = listener.local_addr()?;
    // Tests and scripts read these lines to find a port picked with `:0`; they
    // are the start messages, not repeated in the log.
    if let Some((listener, handle)) = metrics {
        println!("ledgerd metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(async move {
            if let Err(error) = ledger_grpc::observe::serve_metrics(listener, handle).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    let export = args.export_nats.clone().map(|url| {
        let config = ledger_grpc::nats::export::ExportConfig { url, stream: args.nats_stream.clone() };
        tracing::info!(url = %config.url, stream = %config.stream, "exporting events to NATS JetStream");
        ledger_grpc::nats::export::spawn(ledger.clone(), config)
    });
    println!("ledgerd listening on {address}");
    std::io::stdout().flush()?;

    ledger_grpc::server::serve_with(ledger.clone(), listener, config, shutdown).await?;
    // Before the close: whatever it had in flight, the next start finds in the stream.
    if let Some(export) = export {
        export.abort();
    }
    tracing::info!("shutting down: checkpointing and flushing");
    let closing = ledger.clone();
    let closed = tokio::time::timeout(CLOSE_GRACE, tokio::task::spawn_blocking(move || closing.close())).await;
    match closed {
        Ok(closed) => closed??,
        Err(_) => {
            // The runtime would wait for the blocked close on its way out: leave now.
            // Not through the log, as main's last words (above), after what the
            // log holds: exit runs no destructors.
            ledger_grpc::log_writer::flush();
            eprintln!(
                "ledgerd: the ledger did not close within {CLOSE_GRACE:?}: exiting; the next start recovers from the log"
            );
            std::process::exit(1);
        }
    }
    tracing::info!("stopped; every acknowledged write is durable");
    Ok(())
}

/// An open that failed on what is stored says where, and what the operator can
/// do: start-up checks the log after the last checkpoint, and sled its own files.
fn unopenable(error: StoreError, data_dir: &Path) -> Box<dyn std::error::Error + Send + Sync> {
    let problem = match &error {
        StoreError::Sled(sled) => ledger_store::audit::sled_problem(sled, Some(data_dir)),
        StoreError::Corrupt { .. } | StoreError::CorruptProjection { .. } => error.to_string(),
        _ => return Box::new(error),
    };
    let dir = data_dir.display();
    format!(
        "cannot open {dir}: {problem}. `ledger verify --data-dir {dir}` names what is damaged; \
         `ledger salvage --data-dir {dir} --out NEW` copies every event that still verifies into NEW"
    )
    .into()
}

/// The TLS identity from --tls-cert and --tls-key, read before the ledger opens
/// so that a wrong path fails at once.
fn tls_identity(args: &Args) -> Result<Option<TlsIdentity>, Box<dyn std::error::Error + Send + Sync>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else { return Ok(None) };
    let read =
        |flag: &str, path: &Path| std::fs::read(path).map_err(|error| format!("{flag} {}: {error}", path.display()));
    Ok(Some(TlsIdentity { cert_pem: read("--tls-cert", cert)?, key_pem: read("--tls-key", key)? }))
}

fn write_admin_token(ledger: &Ledger, data_dir: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let issued = ledger.tokens().issue(Role::Admin, "", "admin (first start)", None, None, now)?;
    let path = data_dir.join("admin.token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    writeln!(file, "{}", issued.secret)?;
    file.sync_all()?;
    // Said whatever RUST_LOG is: the operator needs the path to make any call.
    tracing::warn!(path = %path.display(), token_id = %issued.info.token_id, "first start: admin token written");
    Ok(())
}
