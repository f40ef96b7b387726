//! `ledger import-nats`: a data directory rebuilt from the event feed in NATS
//! JetStream (`ledgerd --export-nats`), or brought up to date with it, verified
//! against the hash chain; with `--follow`, a warm standby kept up to date until
//! SIGINT or SIGTERM. The work is `nats::import` and `ledger_store::rebuild`; this
//! module handles the signals and prints.

use super::output::{Failure, Reply, fields};
use crate::nats::import::{ImportConfig, Synced, import};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
A new or empty --data-dir is rebuilt from the stream's first message. A directory that holds a \
ledger already (an earlier import's, or one a stopped ledgerd opened) is brought up to date: \
the stream's event at the directory's head sequence must have the head's hash (else the import \
refuses and writes nothing: another ledger's feed, or a directory that took writes of its own), \
and the events after it are appended, whole commands only, checked and verified. A directory a \
running ledgerd (or another import) holds is refused.

With --follow, the import keeps appending new events as they are published, syncing whenever \
it catches up (each synced head is printed on stderr), until SIGINT or SIGTERM; then it syncs, \
verifies and prints the head. Run it beside the standby's stopped ledgerd (docs/OPERATIONS.md, \
\"A warm standby\"). Tokens are not events: the stream does not carry them.")]
pub struct ImportNatsArgs {
    /// The NATS server: nats://HOST:4222 (several separated by commas: a cluster).
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// The JetStream stream ledgerd --export-nats publishes to.
    #[arg(long, value_name = "NAME", default_value = crate::nats::STREAM_DEFAULT)]
    pub nats_stream: String,
    /// The data directory: a new (or empty) one, or one holding a ledger to bring up to date.
    /// Start ledgerd on it afterwards (not while an import runs on it).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Stop after this sequence (cut back to the last whole command at or before it);
    /// without it, at the stream's last message when the import started.
    #[arg(long, value_name = "N", conflicts_with = "follow")]
    pub until_seq: Option<u64>,
    /// After catching up, keep appending new events as they are published, until SIGINT or
    /// SIGTERM; then sync, verify and print the head.
    #[arg(long)]
    pub follow: bool,
}

pub async fn run(args: ImportNatsArgs) -> Result<Reply, Failure> {
    let config = ImportConfig {
        url: args.nats,
        stream: args.nats_stream,
        data_dir: args.data_dir,
        until_sequence: args.until_seq,
        follow: args.follow,
    };
    // Installed before anything is read, so that a signal never meets the default
    // action, which would end the process without a sync.
    let stop = crate::stop_signal::stop_signal()
        .map_err(|error| Failure::message(format!("import-nats: signal handlers: {error}")))?;
    let progress =
        |head: &Synced| eprintln!("import-nats: synced through sequence {} (hash {})", head.sequence, head.hash);
    let report =
        import(&config, stop, progress).await.map_err(|error| Failure::message(format!("import-nats: {error}")))?;
    let written = match report.started_at {
        0 => format!("{} (sequences 1 through {0}), verified", report.events),
        from if from == report.events => format!("none after the directory's head, sequence {from}"),
        from => format!(
            "{} (sequences {} through {}) after its head, verified",
            report.events - from,
            from + 1,
            report.events
        ),
    };
    let mut lines = vec![
        ("events", written),
        ("head_sequence", report.events.to_string()),
        ("head_hash", report.head_hash.clone()),
        ("data_dir", config.data_dir.display().to_string()),
    ];
    if report.dropped_events > 0 {
        lines.push((
            "not written",
            format!(
                "{} events of a command the stream ends inside of (kept whole or not at all)",
                report.dropped_events
            ),
        ));
    }
    let tokens = match report.started_at {
        0 => "none: tokens are not events; ledgerd writes a new admin.token when it first starts",
        _ => "as the directory had them: tokens are not events and the stream does not carry them",
    };
    lines.push(("tokens", tokens.into()));
    let json = json!({
        "head_sequence": report.events,
        "head_hash": report.head_hash,
        "started_at_sequence": report.started_at,
        "appended_events": report.events - report.started_at,
        "dropped_events": report.dropped_events,
        "data_dir": config.data_dir.display().to_string(),
    });
    Ok(Reply::new(fields(&lines), json))
}
