//! Online backup and offline restore (SPEC §18): one file holding the checkpoint
//! as of a sequence C and the log up to a sequence S ≥ C, taken while the ledger
//! keeps writing, and turned back into a data directory that opens at exactly S.
//!
//! What a backup holds: the `projections` tree (checkpoint rows, the activity
//! index and `#meta`, all as of `#meta`'s applied sequence C), the `tokens` tree
//! (hashes of secrets and grants, never a secret: `admin.token` is not copied, so
//! a restored server accepts the same tokens and its operators keep their own
//! copy of the secret), and every log record whose first sequence is at most S,
//! byte for byte. Left out, because they rebuild themselves: the `history` tree
//! (member snapshots, a cache of folds of durable events) and
//! `history_definitions` (which events define programs, read again from the log
//! on the first as-of read).
//!
//! Losses this module prevents, and how each could happen:
//!
//! - **Two checkpoints mixed under one `#meta`.** sled iterators are not
//!   snapshots: a walk of the `projections` tree while the checkpointer applies
//!   its batch could see some of the new rows and the old `#meta`, or the
//!   reverse. The checkpointer holds `Shared::checkpoint_gate` while it applies
//!   a checkpoint, and the backup holds it while it copies the tree, so the copy
//!   is exactly one checkpoint. Writes go on meanwhile (the writer never takes
//!   the gate); only checkpoints wait, so a long copy keeps more rows dirty in
//!   memory and lengthens the replay after a crash while it lasts. A storage
//!   fault's rollback and `Ledger::close` drain the checkpointer, so they too
//!   wait for the copy of the checkpoint to end (a client that goes away ends it
//!   at its next write).
//! - **A log that does not reach the checkpoint, or a record cut in half.** S is
//!   the durable watermark read once the gate is held: the checkpoint it copies
//!   was written only after the log was durable up to C, so C ≤ S, and the
//!   watermark only ever stops at the end of a commit group, so the records
//!   whose first sequence is at most S end exactly at S (checked as they are
//!   copied). Records up to S never change (the log is append-only and a fault
//!   removes only records past the watermark), so reading them needs no gate.
//! - **A damaged file restored.** The file ends with a BLAKE3 checksum of every
//!   byte before it; restore reads the whole file, checks the checksum, the
//!   format, every entry and the hash chain from 1 to S before it writes
//!   anything, then writes the trees, syncs them, and checks that the new
//!   directory verifies and opens at S with the header's head hash.
//!
//! Format (every integer big-endian): `MAGIC`, format (u16), S (u64), head
//! hash at S (32 bytes), C (u64), created at (i64, µs since the Unix epoch);
//! then entries, each a tag byte (`P` projections row, `T` token record, `L` log
//! record, in that order), key length (u32), key, value length (u32), value; then
//! `E` and the BLAKE3 hash of every byte before it, `E` included.

use crate::envelope::{self, GENESIS_HASH, Hash};
use crate::error::StoreError;
use crate::ledger::Ledger;
use crate::log::{self, Log};
use crate::projections::Projections;
use crate::replay::{self, Head, Until};
use ledger_core::Timestamp;
use ledger_core::limits::{BACKUP_KEY_BYTES_MAX, STORED_VALUE_BYTES_MAX};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"LDGBKUP\n";
/// The backup format this build writes and reads.
pub const BACKUP_FORMAT: u16 = 1;
/// Bytes of the header: magic, format, S, head hash, C, created at.
pub const HEADER_BYTES: usize = 8 + 2 + 8 + 32 + 8 + 8;

const TAG_PROJECTION: u8 = b'P';
const TAG_TOKEN: u8 = b'T';
const TAG_LOG: u8 = b'L';
const TAG_END: u8 = b'E';

/// What a backup file says of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupHeader {
    pub format: u16,
    /// S: the backup holds every event up to and including it, and none after.
    pub sequence: u64,
    /// The hash of event S (of the genesis when S is 0).
    pub head_hash: Hash,
    /// C: the sequence the checkpoint in the backup reflects; C ≤ S.
    pub checkpoint_sequence: u64,
    pub created_at: Timestamp,
}

impl BackupHeader {
    pub fn head_hash_hex(&self) -> String {
        envelope::hex(&self.head_hash)
    }

    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut bytes = [0u8; HEADER_BYTES];
        let mut at = 0;
        for part in [
            &MAGIC[..],
            &self.format.to_be_bytes(),
            &self.sequence.to_be_bytes(),
            &self.head_hash,
            &self.checkpoint_sequence.to_be_bytes(),
            &self.created_at.micros().to_be_bytes(),
        ] {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        bytes
    }

    fn decode(bytes: &[u8; HEADER_BYTES]) -> Result<BackupHeader, BackupError> {
        let (magic, rest) = bytes.split_first_chunk::<8>().expect("header is long enough");
        if magic != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let (format, rest) = rest.split_first_chunk::<2>().expect("header is long enough");
        let format = u16::from_be_bytes(*format);
        if format != BACKUP_FORMAT {
            return Err(BackupError::UnsupportedFormat { found: format, supported: BACKUP_FORMAT });
        }
        let (sequence, rest) = rest.split_first_chunk::<8>().expect("header is long enough");
        let (head_hash, rest) = rest.split_first_chunk::<32>().expect("header is long enough");
        let (checkpoint, rest) = rest.split_first_chunk::<8>().expect("header is long enough");
        let created_at = <[u8; 8]>::try_from(rest).expect("header is long enough");
        let header = BackupHeader {
            format,
            sequence: u64::from_be_bytes(*sequence),
            head_hash: *head_hash,
            checkpoint_sequence: u64::from_be_bytes(*checkpoint),
            created_at: Timestamp::from_micros(i64::from_be_bytes(created_at)),
        };
        if header.checkpoint_sequence > header.sequence {
            return Err(BackupError::Damaged {
                offset: 0,
                reason: format!(
                    "the header's checkpoint sequence {} is past its sequence {}",
                    header.checkpoint_sequence, header.sequence
                ),
            });
        }
        Ok(header)
    }
}

/// What a backup wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    pub header: BackupHeader,
    pub bytes: u64,
    pub projection_rows: u64,
    pub tokens: u64,
    pub log_records: u64,
    /// How long checkpoints waited for the copy of the checkpoint (the gate held).
    pub checkpoint_wait: std::time::Duration,
}

/// What a restore made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    pub header: BackupHeader,
    /// Events the restored directory replays after its checkpoint when it opens.
    pub tail_events: u64,
    pub tokens: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{what} {path}: {source}")]
    File { what: &'static str, path: String, source: std::io::Error },
    #[error("reading or writing the backup failed: {0}")]
    Io(std::io::Error),
    #[error("not a ledger backup file (it does not start with the backup header)")]
    NotABackup,
    #[error("backup format {found} is not one this build reads (it reads format {supported})")]
    UnsupportedFormat { found: u16, supported: u16 },
    #[error("the backup file is damaged at byte {offset}: {reason}")]
    Damaged { offset: u64, reason: String },
    #[error("the backup file is truncated: it ends at byte {offset}, before its checksum")]
    Truncated { offset: u64 },
    #[error(
        "the backup's checksum does not match its contents (stored {stored}, computed {computed}): the file is damaged"
    )]
    Checksum { stored: String, computed: String },
    #[error("{dir} is not empty: restore writes a fresh data directory")]
    NotEmpty { dir: String },
    #[error("the restored directory does not verify as the backup says: {reason}")]
    Verify { reason: String },
    #[error("reading the log for the backup failed: {reason}")]
    Log { reason: String },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + use<> {
    let path = path.display().to_string();
    move |source| BackupError::File { what, path, source }
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W: Write> {
    out: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.hasher.update(bytes);
        self.bytes += u64::try_from(bytes.len()).expect("len fits u64");
        self.out.write_all(bytes).map_err(BackupError::Io)
    }

    fn entry(&mut self, tag: u8, key: &[u8], value: &[u8]) -> Result<(), BackupError> {
        assert!(key.len() <= BACKUP_KEY_BYTES_MAX, "a stored key is longer than a backup carries");
        assert!(value.len() <= STORED_VALUE_BYTES_MAX, "a stored value is longer than a backup carries");
        self.put(&[tag])?;
        self.put(&u32::try_from(key.len()).expect("bounded above").to_be_bytes())?;
        self.put(key)?;
        self.put(&u32::try_from(value.len()).expect("bounded above").to_be_bytes())?;
        self.put(value)
    }
}

impl Ledger {
    /// Writes a consistent backup of this open ledger to `dest` while it keeps
    /// taking writes: to `DEST.partial` first, synced, then renamed, and the
    /// directory synced. Reads sled on a thread of its own and only waits for it,
    /// as every other `async` method waits for the ledger's threads: any executor
    /// drives it, not only tokio's.
    pub async fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupSummary, BackupError> {
        let ledger = self.clone();
        let dest = dest.as_ref().to_path_buf();
        let (done, answer) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("ledger-backup".to_owned())
            .spawn(move || {
                // The caller may have gone; the file is whole or removed either way.
                let _ = done.send(ledger.backup_file(&dest));
            })
            .map_err(BackupError::Io)?;
        answer
            .await
            .map_err(|_| BackupError::Io(std::io::Error::other("the backup thread stopped before answering")))?
    }

    /// [`Ledger::backup`] on the calling thread, which it blocks.
    pub fn backup_file(&self, dest: &Path) -> Result<BackupSummary, BackupError> {
        let partial = partial_path(dest);
        let file = std::fs::File::create(&partial).map_err(io_error("creating", &partial))?;
        let written = self.backup_to(BufWriter::new(&file), |_| {}).and_then(|summary| {
            file.sync_all().map_err(io_error("syncing", &partial))?;
            Ok(summary)
        });
        let summary = match written {
            Ok(summary) => summary,
            Err(error) => {
                drop(file);
                let _ = std::fs::remove_file(&partial);
                return Err(error);
            }
        };
        drop(file);
        finish_file(&partial, dest)?;
        Ok(summary)
    }

    /// Writes a backup to `out`, blocking the calling thread (call it from a
    /// blocking thread, not the async runtime). `started` gets the header once it
    /// is known, before any byte is written. Checkpoints wait while the
    /// checkpoint's rows are being copied (see the module's documentation); if
    /// `out` is slow (a slow network client), they wait as long.
    pub fn backup_to(
        &self,
        out: impl Write,
        started: impl FnOnce(&BackupHeader),
    ) -> Result<BackupSummary, BackupError> {
        let shared = self.shared();
        let mut out = Hashing { out, hasher: blake3::Hasher::new(), bytes: 0 };
        let gate = shared.checkpoint_gate.lock().expect("checkpoint gate");
        let gate_taken = std::time::Instant::now();
        let checkpoint_sequence = shared.projections.meta()?.map_or(0, |meta| meta.applied_sequence);
        // The checkpoint under the gate was written once the log was durable up to
        // its cut, and the watermark never goes back: C ≤ S.
        let sequence = shared.durable.get();
        assert!(checkpoint_sequence <= sequence, "a checkpoint covers only durable events");
        let head_hash = match sequence {
            0 => GENESIS_HASH,
            _ => shared.log.event(sequence)?.map(|event| event.hash).ok_or_else(|| BackupError::Log {
                reason: format!("the durable sequence {sequence} is not in the log"),
            })?,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX));
        let header = BackupHeader {
            format: BACKUP_FORMAT,
            sequence,
            head_hash,
            checkpoint_sequence,
            created_at: Timestamp::from_micros(now),
        };
        started(&header);
        out.put(&header.encode())?;
        let mut projection_rows = 0u64;
        for row in shared.projections.tree().iter() {
            let (key, value) = row.map_err(StoreError::from)?;
            out.entry(TAG_PROJECTION, &key, &value)?;
            projection_rows += 1;
        }
        drop(gate);
        let checkpoint_wait = gate_taken.elapsed();
        let mut tokens = 0u64;
        let token_tree = shared.disk.db().open_tree(crate::tokens::TREE_NAME).map_err(StoreError::from)?;
        for record in token_tree.iter() {
            let (key, value) = record.map_err(StoreError::from)?;
            out.entry(TAG_TOKEN, &key, &value)?;
            tokens += 1;
        }
        let log_records = copy_log(&shared.log, sequence, &mut out)?;
        out.put(&[TAG_END])?;
        let checksum = *out.hasher.finalize().as_bytes();
        out.out.write_all(&checksum).map_err(BackupError::Io)?;
        out.out.flush().map_err(BackupError::Io)?;
        let bytes = out.bytes + 32;
        Ok(BackupSummary { header, bytes, projection_rows, tokens, log_records, checkpoint_wait })
    }
}

/// Copies every record whose first sequence is at most `sequence`; they must end
/// exactly at it.
fn copy_log(log: &Log, sequence: u64, out: &mut Hashing<impl Write>) -> Result<u64, BackupError> {
    let mut next = 1u64;
    let mut records = 0u64;
    for record in log.tree().range(..=log::key(sequence)) {
        let (key, value) = record.map_err(StoreError::from)?;
        let first = log::sequence_of(&key)?;
        if first != next {
            return Err(BackupError::Log {
                reason: format!("the record at {first} follows one ending at {}", next - 1),
            });
        }
        let events = log::decode_record(first, &value)?;
        next = first + u64::try_from(events.len()).expect("len fits u64");
        out.entry(TAG_LOG, &key, &value)?;
        records += 1;
    }
    if next != sequence + 1 {
        return Err(BackupError::Log {
            reason: format!("the records up to the durable sequence {sequence} end at {}", next - 1),
        });
    }
    Ok(records)
}

/// `DEST.partial`: where a backup is written before it is complete.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".partial");
    dest.with_file_name(name)
}

/// Renames a complete, synced `partial` to `dest` and syncs the directory, so
/// that the name survives a power loss too.
pub fn finish_file(partial: &Path, dest: &Path) -> Result<(), BackupError> {
    std::fs::rename(partial, dest).map_err(io_error("renaming the backup to", dest))?;
    let parent = dest.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(parent).and_then(|dir| dir.sync_all()).map_err(io_error("syncing the directory", parent))
}

/// Where the entries of a backup go while it is read.
struct Trees {
    projections: sled::Tree,
    tokens: sled::Tree,
    log: sled::Tree,
}

/// What reading a whole backup found.
struct Contents {
    header: BackupHeader,
    tokens: u64,
}

/// A reader that hashes what it reads and knows where it is.
struct Reading<R: Read> {
    input: R,
    hasher: blake3::Hasher,
    offset: u64,
}

impl<R: Read> Reading<R> {
    fn exact(&mut self, bytes: &mut [u8]) -> Result<(), BackupError> {
        self.input.read_exact(bytes).map_err(|error| match error.kind() {
            std::io::ErrorKind::UnexpectedEof => BackupError::Truncated { offset: self.offset },
            _ => BackupError::Io(error),
        })?;
        self.hasher.update(bytes);
        self.offset += u64::try_from(bytes.len()).expect("len fits u64");
        Ok(())
    }

    fn length(&mut self, what: &str, max: usize) -> Result<usize, BackupError> {
        let at = self.offset;
        let mut bytes = [0u8; 4];
        self.exact(&mut bytes)?;
        let length = usize::try_from(u32::from_be_bytes(bytes)).unwrap_or(usize::MAX);
        if length > max {
            return Err(BackupError::Damaged {
                offset: at,
                reason: format!("a {what} of {length} bytes (at most {max})"),
            });
        }
        Ok(length)
    }

    fn bytes(&mut self, length: usize) -> Result<Vec<u8>, BackupError> {
        let mut bytes = vec![0u8; length];
        self.exact(&mut bytes)?;
        Ok(bytes)
    }
}

/// Reads a whole backup, checking it: the header, each entry's bounds and order,
/// every log record's events and hash chain from 1 to S against the header, the
/// checksum, and that nothing follows it. With `trees`, writes each entry too.
fn read_backup(file: &Path, trees: Option<&Trees>) -> Result<Contents, BackupError> {
    let opened = std::fs::File::open(file).map_err(io_error("opening", file))?;
    let mut input = Reading { input: BufReader::new(opened), hasher: blake3::Hasher::new(), offset: 0 };
    let mut header_bytes = [0u8; HEADER_BYTES];
    input.exact(&mut header_bytes).map_err(|error| match error {
        BackupError::Truncated { .. } => BackupError::NotABackup,
        other => other,
    })?;
    let header = BackupHeader::decode(&header_bytes)?;
    let mut last_tag = TAG_PROJECTION;
    let mut head = Head::GENESIS;
    let mut tokens = 0u64;
    loop {
        let at = input.offset;
        let mut tag = [0u8; 1];
        input.exact(&mut tag)?;
        let tag = tag[0];
        if tag == TAG_END {
            break;
        }
        let rank = |tag: u8| [TAG_PROJECTION, TAG_TOKEN, TAG_LOG].iter().position(|known| *known == tag);
        let damaged = |reason: String| BackupError::Damaged { offset: at, reason };
        match (rank(tag), rank(last_tag)) {
            (None, _) => return Err(damaged(format!("an entry of unknown kind {tag:#04x}"))),
            (Some(now), Some(before)) if now < before => {
                return Err(damaged("entries out of order (rows, tokens, then the log)".to_owned()));
            }
            _ => last_tag = tag,
        }
        let key_length = input.length("key", BACKUP_KEY_BYTES_MAX)?;
        let key = input.bytes(key_length)?;
        let value_length = input.length("value", STORED_VALUE_BYTES_MAX)?;
        let value = input.bytes(value_length)?;
        if tag == TAG_LOG {
            head = check_record(&head, &key, &value, header.sequence).map_err(damaged)?;
        }
        if tag == TAG_TOKEN {
            tokens += 1;
        }
        if let Some(trees) = trees {
            let tree = match tag {
                TAG_PROJECTION => &trees.projections,
                TAG_TOKEN => &trees.tokens,
                _ => &trees.log,
            };
            tree.insert(key, value).map_err(StoreError::from)?;
        }
    }
    let computed = *input.hasher.finalize().as_bytes();
    let mut stored = [0u8; 32];
    input.input.read_exact(&mut stored).map_err(|_| BackupError::Truncated { offset: input.offset })?;
    if stored != computed {
        return Err(BackupError::Checksum { stored: envelope::hex(&stored), computed: envelope::hex(&computed) });
    }
    let mut rest = [0u8; 1];
    match input.input.read(&mut rest) {
        Ok(0) => {}
        Ok(_) => {
            return Err(BackupError::Damaged {
                offset: input.offset + 32,
                reason: "bytes after the checksum".to_owned(),
            });
        }
        Err(error) => return Err(BackupError::Io(error)),
    }
    if head.sequence != header.sequence || head.hash != header.head_hash {
        return Err(BackupError::Damaged {
            offset: input.offset,
            reason: format!(
                "the log ends at sequence {} with hash {}, the header says {} with {}",
                head.sequence,
                envelope::hex(&head.hash),
                header.sequence,
                header.head_hash_hex()
            ),
        });
    }
    Ok(Contents { header, tokens })
}

/// Checks one log record as the continuation of `head`, within `sequence`.
fn check_record(head: &Head, key: &[u8], value: &[u8], sequence: u64) -> Result<Head, String> {
    let first = log::sequence_of(key).map_err(|error| error.to_string())?;
    if first != head.sequence + 1 {
        return Err(format!("a log record starting at {first} after one ending at {}", head.sequence));
    }
    let events = log::decode_record(first, value).map_err(|error| error.to_string())?;
    let mut next = *head;
    for (at, stored) in (first..).zip(&events) {
        if at > sequence {
            return Err(format!("a log record reaching past the header's sequence {sequence}"));
        }
        let envelope = replay::check(&next, at, stored).map_err(|error| error.to_string())?;
        next = Head { sequence: at, hash: stored.hash, recorded_at: envelope.recorded_at };
    }
    Ok(next)
}

/// Reads and checks a whole backup file without writing anything: its header
/// when every check passes.
pub fn check_file(file: &Path) -> Result<BackupHeader, BackupError> {
    read_backup(file, None).map(|read| read.header)
}

/// Makes `dir` (absent or empty) a data directory that opens at exactly the
/// backup's sequence: checks the whole file first (nothing is written when it
/// does not read), writes the trees, syncs them, then verifies the hash chain
/// 1..S against the header's head hash and loads the checkpoint with its tail.
/// On any failure after writing began, what it wrote is removed.
pub fn restore(file: &Path, dir: &Path) -> Result<RestoreReport, BackupError> {
    let existed = dir.exists();
    if existed && std::fs::read_dir(dir).map_err(io_error("reading", dir))?.next().is_some() {
        return Err(BackupError::NotEmpty { dir: dir.display().to_string() });
    }
    check_file(file)?;
    std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    let restored = write_and_verify(file, dir);
    if restored.is_err() {
        // Nothing half-restored is left for ledgerd to open.
        if existed {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    restored
}

fn write_and_verify(file: &Path, dir: &Path) -> Result<RestoreReport, BackupError> {
    let db =
        sled::Config::new().path(dir).flush_every_ms(None).open().map_err(|error| StoreError::from_open(dir, error))?;
    // Opened before anything is written, so that its sync covers every blob file sled creates.
    let disk = crate::disk::Disk::open(db.clone(), dir).map_err(io_error("watching", dir))?;
    let log = Log::open(&db)?;
    let projections = Projections::open(&db)?;
    let trees = Trees {
        projections: projections.tree().clone(),
        tokens: db.open_tree(crate::tokens::TREE_NAME).map_err(StoreError::from)?,
        log: log.tree().clone(),
    };
    let read = read_backup(file, Some(&trees))?;
    disk.flush().map_err(|reason| BackupError::Io(std::io::Error::other(reason)))?;
    let header = read.header;
    let verified = crate::audit::verify_log(&log, Until::End, |_| {})?;
    if !verified.ok || verified.events != header.sequence || verified.head_hash != header.head_hash_hex() {
        return Err(BackupError::Verify {
            reason: format!(
                "{} events verify with head {}, the backup holds {} with head {}: {}",
                verified.events,
                verified.head_hash,
                header.sequence,
                header.head_hash_hex(),
                verified.first_mismatch
            ),
        });
    }
    let meta = projections.meta()?.map_or(0, |meta| meta.applied_sequence);
    if meta != header.checkpoint_sequence {
        return Err(BackupError::Verify {
            reason: format!("the checkpoint reflects {meta}, the header says {}", header.checkpoint_sequence),
        });
    }
    // What `Ledger::open` does: the checkpoint, then the tail after it.
    let recovered = crate::ledger::recover(&log, &projections)?;
    if recovered.head.sequence != header.sequence || recovered.head.hash != header.head_hash {
        return Err(BackupError::Verify {
            reason: format!("the checkpoint and its tail open at sequence {}", recovered.head.sequence),
        });
    }
    drop((trees, projections, log, disk, db));
    Ok(RestoreReport { header, tail_events: recovered.replayed, tokens: read.tokens })
}
