//! `ledger backup` (AdminService.Backup, online) and `ledger restore` (offline):
//! SPEC §18. The backup is written to `DEST.partial`, checked whole (checksum,
//! entries, hash chain), synced and only then renamed to DEST, so that a DEST
//! that exists is a whole backup; restore makes a data directory that `ledgerd`
//! opens at the backup's sequence.

use super::connect::Server;
use super::output::{Failure, Reply, fields};
use crate::pb;
use clap::Args;
use ledger_store::backup::{self, BackupHeader};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The backup file to write (DEST.partial until it is whole and checked).
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A file `ledger backup` wrote.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The new data directory (absent or empty) for `ledgerd --data-dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
}

pub async fn run(server: &Server, args: BackupArgs) -> Result<Reply, Failure> {
    let partial = backup::partial_path(&args.dest);
    let written = receive(server, &partial).await;
    let checked = match written {
        Ok(first) => check(&partial, &first).await,
        Err(failure) => Err(failure),
    };
    let (header, bytes) = match checked {
        Ok(checked) => checked,
        Err(failure) => {
            let _ = std::fs::remove_file(&partial);
            return Err(failure);
        }
    };
    backup::finish_file(&partial, &args.dest).map_err(|error| Failure::message(format!("backup: {error}")))?;
    let dest = args.dest.display().to_string();
    let text = fields(&[
        ("file", dest.clone()),
        ("sequence", header.sequence.to_string()),
        ("head_hash", header.head_hash_hex()),
        ("checkpoint", header.checkpoint_sequence.to_string()),
        ("bytes", bytes.to_string()),
    ]);
    let json = json!({
        "file": dest,
        "sequence": header.sequence,
        "head_hash": header.head_hash_hex(),
        "checkpoint_sequence": header.checkpoint_sequence,
        "bytes": bytes,
    });
    Ok(Reply::new(text, json))
}

/// Writes the stream to `partial` and syncs it; returns the first message's
/// header fields (with its data taken out).
async fn receive(server: &Server, partial: &Path) -> Result<pb::BackupChunk, Failure> {
    let local =
        |what: &str, error: std::io::Error| Failure::message(format!("backup: {what} {}: {error}", partial.display()));
    let mut file = std::fs::File::create(partial).map_err(|error| local("creating", error))?;
    let mut chunks = server.admin().backup(pb::BackupRequest {}).await?.into_inner();
    let mut first = None;
    while let Some(mut chunk) = chunks.message().await? {
        file.write_all(&chunk.data).map_err(|error| local("writing", error))?;
        if first.is_none() {
            chunk.data = Vec::new();
            first = Some(chunk);
        }
    }
    file.sync_all().map_err(|error| local("syncing", error))?;
    first.ok_or_else(|| Failure::message("backup: the server sent no backup"))
}

/// Reads the written file back whole, as restore will; it must hold what the
/// server said it sent.
async fn check(partial: &Path, first: &pb::BackupChunk) -> Result<(BackupHeader, u64), Failure> {
    let path = partial.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || backup::check_file(&path))
        .await
        .map_err(|error| Failure::message(format!("backup: checking the file failed: {error}")))?;
    let header =
        checked.map_err(|error| Failure::message(format!("backup: the file received does not check: {error}")))?;
    if header.sequence != first.sequence || header.head_hash_hex() != first.head_hash {
        return Err(Failure::message(format!(
            "backup: the file holds sequence {} ({}), the server announced {} ({})",
            header.sequence,
            header.head_hash_hex(),
            first.sequence,
            first.head_hash
        )));
    }
    let bytes = std::fs::metadata(partial).map(|metadata| metadata.len()).unwrap_or_default();
    Ok((header, bytes))
}

/// OFFLINE: the backup into a new data directory, checked before and after.
pub fn restore(args: &RestoreArgs) -> Result<Reply, Failure> {
    let report = backup::restore(&args.file, &args.data_dir).map_err(|error| {
        Failure::message(format!("restore: {error}; nothing was written to {}", args.data_dir.display()))
    })?;
    let header = report.header;
    let dir = args.data_dir.display().to_string();
    let text = fields(&[
        ("data_dir", dir.clone()),
        ("sequence", header.sequence.to_string()),
        ("head_hash", header.head_hash_hex()),
        ("checkpoint", header.checkpoint_sequence.to_string()),
        ("tail", format!("{} events replayed after the checkpoint when ledgerd opens it", report.tail_events)),
        ("tokens", format!("{} carried (hashes only: keep admin.token yourself)", report.tokens)),
        ("verified", format!("the hash chain 1..{} verifies, head {}", header.sequence, header.head_hash_hex())),
    ]);
    let json = json!({
        "data_dir": dir,
        "sequence": header.sequence,
        "head_hash": header.head_hash_hex(),
        "checkpoint_sequence": header.checkpoint_sequence,
        "tail_events": report.tail_events,
        "tokens": report.tokens,
    });
    Ok(Reply::new(text, json))
}
