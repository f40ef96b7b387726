//! `ledger`: the command-line client (SPEC §12). Online commands call `ledgerd`
//! over gRPC with a bearer token; `replay`, `verify` and `salvage` open a stopped server's
//! data directory themselves, so that an auditor needs no running server and no
//! token.
//!
//! Each area is one small module that turns its arguments into requests and the
//! replies into a [`Reply`]; this module only parses, dispatches and prints.

mod activities;
mod backup;
mod bulk;
#[doc(hidden)] // `pub` for the fuzz targets and their tests (`fuzzing`).
pub mod bulk_file;
mod cards;
mod connect;
mod coupons;
mod credits;
mod definitions;
mod events;
mod export;
mod holds;
mod import_nats;
mod imports;
mod levels;
mod members;
mod offline;
mod output;
mod points;
mod programs;
mod reverse;
#[doc(hidden)]
pub mod time;
mod tokens;
mod vouchers;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

pub use output::{Failure, Reply};

/// Exit status when a bulk stopped at a failing item: the reply was printed, but
/// not every item applied, and a script must notice.
pub const EXIT_BULK_FAILED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "ledger",
    version,
    about = "Command-line client of the points ledger (ledgerd), and offline audit of its data directory",
    after_help = "Exit status: 0 success; 1 an error (printed on stderr) or an audit mismatch; \
                  2 bad usage; 3 a bulk stopped at a failing item (fail_at)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes, before or after its name.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The server: HOST:PORT or http://HOST:PORT (plaintext HTTP/2), or https://HOST:PORT (TLS).
    /// The flag wins over LEDGER_ADDR.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "LEDGER_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    pub addr: String,
    /// The CA certificate (PEM) that signed an https:// server's certificate; without it
    /// the system's trusted roots.
    #[arg(long, global = true, help_heading = "Global options", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A file holding the bearer token; ledgerd writes DIR/admin.token on first start.
    /// Precedence: --token, LEDGER_TOKEN, --token-file, LEDGER_TOKEN_FILE, then this default.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "LEDGER_TOKEN_FILE",
        default_value = "./ledger-data/admin.token"
    )]
    pub token_file: PathBuf,
    /// The bearer token itself; wins over any token file (other users of the machine may see
    /// command lines: prefer the file, or LEDGER_TOKEN).
    #[arg(long, global = true, help_heading = "Global options", env = "LEDGER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the reply as one line of JSON instead of text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Programs (tenants); ADMIN token.
    #[command(subcommand)]
    Program(programs::ProgramCommand),
    /// API tokens; ADMIN token.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Add or use one member's points.
    #[command(subcommand)]
    Points(points::PointsCommand),
    /// Holds of points or credits: hold, capture, void, show, list.
    #[command(subcommand)]
    Hold(holds::HoldCommand),
    /// Earning formulas (points = floor(cost x multiplier)).
    #[command(subcommand)]
    Formula(definitions::FormulaCommand),
    /// Rewards a use may name.
    #[command(subcommand)]
    Reward(definitions::RewardCommand),
    /// Add or use points for up to 1,000 items from a JSON or CSV file.
    #[command(subcommand)]
    Bulk(bulk::BulkCommand),
    /// Credit types (stored-value wallets) of a program.
    #[command(subcommand)]
    Credit(credits::CreditCommand),
    /// Add or use one member's credits of one type.
    #[command(subcommand)]
    Credits(credits::CreditsCommand),
    /// Grant, use or list one member's coupons.
    #[command(subcommand)]
    Coupons(coupons::CouponsCommand),
    /// Member cards: the tiers of a program.
    #[command(subcommand)]
    Card(cards::CardCommand),
    /// Members' balances, lots and tiers; manual tier levels.
    #[command(subcommand)]
    Member(members::MemberCommand),
    /// Import Echoss voucher or point statements from a JSON file (the Echoss request body).
    #[command(subcommand)]
    Import(imports::ImportCommand),
    /// The Echoss voucher-statement report, and one statement.
    #[command(subcommand)]
    Vouchers(vouchers::VouchersCommand),
    /// Shop names the voucher report shows.
    #[command(subcommand)]
    Shop(vouchers::ShopCommand),
    /// Undoes one transaction by its id, once (a points add or use, a credits add or
    /// use, a coupon grant or use).
    Reverse(reverse::ReverseArgs),
    /// Lists activities, newest first.
    Activities(activities::ActivitiesArgs),
    /// Shows one activity, by transaction id or by reference.
    Activity(activities::ActivityArgs),
    /// Prints the raw event feed, one line per event (JSON Lines with --json): the events
    /// recorded so far from --from on, and with --follow new ones as they come.
    Events(events::EventsArgs),
    /// Asks the server to verify the whole log's hash chain.
    VerifyLog,
    /// OFFLINE: rebuilds every projection from the log of a stopped server's data directory
    /// and compares it with the stored projections.
    Replay(offline::ReplayArgs),
    /// OFFLINE: verifies the hash chain of a stopped server's data directory; names the first
    /// bad sequence and how many events before it verify.
    Verify(offline::VerifyArgs),
    /// OFFLINE: copies every event that still verifies (the longest good prefix of the hash
    /// chain, whole commands only), the tokens and admin.token into a new data directory, and
    /// says what was lost.
    Salvage(offline::SalvageArgs),
    /// Measures one operation's throughput and latency against a running server, and the
    /// server's resident memory when it runs here; prints one JSON line (progress and a
    /// summary on stderr).
    Bench(crate::bench::BenchArgs),
    /// Takes a consistent backup while the server runs (ADMIN token): the log up to a
    /// sequence and the checkpoint at or below it, in one checksummed file DEST.
    Backup(backup::BackupArgs),
    /// OFFLINE: makes a new data directory from a backup file, which ledgerd opens at exactly
    /// the backup's sequence; checks the file and the hash chain before and after writing.
    Restore(backup::RestoreArgs),
    /// Rebuilds a new data directory from the event feed in NATS JetStream (ledgerd
    /// --export-nats), or brings one that holds a ledger up to date (--follow: keeps it so),
    /// checking every event's hash, sequence and link; prints the head sequence and hash to
    /// compare with the first ledger's VerifyLog.
    ImportNats(import_nats::ImportNatsArgs),
}

/// Parses the command line, runs it, prints the reply or the error, and returns
/// the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let outcome = match cli.command {
        Command::Replay(args) => offline::replay(&args),
        Command::Verify(args) => offline::verify(&args),
        Command::Salvage(args) => offline::salvage(&args),
        Command::Restore(args) => backup::restore(&args),
        command => online(&cli.global, command),
    };
    match outcome {
        Ok(reply) => reply.print(json),
        Err(failure) => failure.print(),
    }
}

fn online(global: &Global, command: Command) -> Result<Reply, Failure> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|error| Failure::message(format!("starting tokio: {error}")))?;
    runtime.block_on(dispatch(global, command))
}

async fn dispatch(global: &Global, command: Command) -> Result<Reply, Failure> {
    match command {
        // No ledgerd: NATS and a data directory.
        Command::ImportNats(args) => import_nats::run(args).await,
        // Bench connects its own clients (several connections, no per-call overhead).
        Command::Bench(args) => bench(global, args).await,
        // The file is read first: a bad file needs no server to report.
        Command::Bulk(command) => {
            let prepared = bulk::prepare(command)?;
            bulk::run(&connect::Server::connect(global).await?, prepared).await
        }
        Command::Import(command) => {
            let prepared = imports::prepare(command)?;
            imports::run(&connect::Server::connect(global).await?, prepared).await
        }
        // Printed as the events come, so it needs to know the output form.
        Command::Events(args) => events::run(&connect::Server::connect(global).await?, args, global.json).await,
        Command::Member(members::MemberCommand::Levels(args)) => {
            let request = levels::prepare(args)?;
            levels::run(&connect::Server::connect(global).await?, request).await
        }
        Command::Backup(args) => backup::run(&connect::Server::connect(global).await?, args).await,
        command => call(&connect::Server::connect(global).await?, command).await,
    }
}

async fn call(server: &connect::Server, command: Command) -> Result<Reply, Failure> {
    match command {
        Command::Program(command) => programs::run(server, command).await,
        Command::Token(command) => tokens::run(server, command).await,
        Command::Points(command) => points::run(server, command).await,
        Command::Hold(command) => holds::run(server, command).await,
        Command::Formula(command) => definitions::run_formula(server, command).await,
        Command::Reward(command) => definitions::run_reward(server, command).await,
        Command::Credit(command) => credits::run_define(server, command).await,
        Command::Credits(command) => credits::run(server, command).await,
        Command::Coupons(command) => coupons::run(server, command).await,
        Command::Card(command) => cards::run(server, command).await,
        Command::Member(command) => members::run(server, command).await,
        Command::Vouchers(command) => vouchers::run(server, command).await,
        Command::Shop(command) => vouchers::run_shop(server, command).await,
        Command::Reverse(args) => reverse::run(server, args).await,
        Command::Activities(args) => activities::list(server, args).await,
        Command::Activity(args) => activities::show(server, args).await,
        Command::VerifyLog => activities::verify_log(server).await,
        Command::Replay(_)
        | Command::Verify(_)
        | Command::Salvage(_)
        | Command::Bench(_)
        | Command::Events(_)
        | Command::Bulk(_)
        | Command::Import(_)
        | Command::Backup(_)
        | Command::Restore(_)
        | Command::ImportNats(_) => {
            unreachable!("offline commands, bench, events, bulk and imports are dispatched before `call`")
        }
    }
}

/// Bench takes the server and token from the global flags, so that every
/// subcommand names them the same way.
/// `--throwaway` replaces them with its own server's, which lives until the report is made.
async fn bench(global: &Global, mut args: crate::bench::BenchArgs) -> Result<Reply, Failure> {
    let mut throwaway = None;
    if args.throwaway {
        let server =
            crate::bench::throwaway::Throwaway::start().map_err(|error| Failure::message(format!("bench: {error}")))?;
        args.addr.clone_from(&server.addr);
        args.token = Some(server.token.clone());
        args.server_pid = args.server_pid.or(Some(server.pid()));
        args.data_dir = args.data_dir.or_else(|| Some(server.dir.clone()));
        throwaway = Some(server);
    } else {
        args.addr = connect::bare_addr(&global.addr)?.to_owned();
        args.token_file.clone_from(&global.token_file);
        args.token.clone_from(&global.token);
    }
    let report = crate::bench::run(args).await.map_err(|error| Failure::message(format!("bench: {error}")));
    drop(throwaway);
    Ok(Reply::json_line(report?.to_json_line()))
}
