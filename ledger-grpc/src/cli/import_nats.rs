//! `ledger import-nats`: a new data directory rebuilt from the event feed in NATS
//! JetStream (`ledgerd --export-nats`), verified against the hash chain. The work
//! is `nats::import` and `ledger_store::rebuild`; this module only prints.

use super::output::{Failure, Reply, fields};
use crate::nats::import::{ImportConfig, import};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ImportNatsArgs {
    /// The NATS server: nats://HOST:4222 (several separated by commas: a cluster).
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// The JetStream stream ledgerd --export-nats publishes to.
    #[arg(long, value_name = "NAME", default_value = crate::nats::STREAM_DEFAULT)]
    pub nats_stream: String,
    /// The new data directory (must not exist, or be empty); start ledgerd on it afterwards.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Stop after this sequence (cut back to the last whole command at or before it);
    /// without it, at the stream's last message when the import started.
    #[arg(long, value_name = "N")]
    pub until_seq: Option<u64>,
}

pub async fn run(args: ImportNatsArgs) -> Result<Reply, Failure> {
    let config = ImportConfig {
        url: args.nats,
        stream: args.nats_stream,
        data_dir: args.data_dir,
        until_sequence: args.until_seq,
    };
    let report = import(&config, |_| {}).await.map_err(|error| Failure::message(format!("import-nats: {error}")))?;
    let mut lines = vec![
        ("events", format!("{} (sequences 1 through {0}), verified", report.events)),
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
    lines.push(("tokens", "none: tokens are not events; ledgerd writes a new admin.token when it first starts".into()));
    let json = json!({
        "head_sequence": report.events,
        "head_hash": report.head_hash,
        "dropped_events": report.dropped_events,
        "data_dir": config.data_dir.display().to_string(),
    });
    Ok(Reply::new(fields(&lines), json))
}
