//! Online backup and restore (SPEC §18, `ledger_store::backup`): a backup taken
//! while several writers go on, with checkpoints due every few events and held
//! at the gate while the checkpoint is copied, restores into a directory that
//! opens at exactly the backup's sequence: the same events byte for byte (by
//! hash), nothing after, a chain that verifies, the state of the original log
//! replayed to that sequence, and only the tail after the checkpoint replayed.
//! A damaged file, or a directory that is not empty, is refused and nothing is
//! written.

use ledger_core::Timestamp;
use ledger_core::command::{AddPoints, BulkAddPoints, HoldPoints, VoidHold};
use ledger_store::backup::{self, BackupError, BackupHeader};
use ledger_store::log::LoggedEvent;
use ledger_store::tokens::Role;
use ledger_store::{Ledger, Options, Until};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const ACTOR: &str = "test";
/// Events a writer adds while the backup holds the checkpoint gate: several
/// checkpoints' worth, so that checkpoints are due, and wait, during the copy.
const WRITES_DURING_COPY: u64 = 200;

fn options() -> Options {
    Options {
        // A checkpoint every few events: they are due all through the backup.
        checkpoint_events: 16,
        checkpoint_interval: Duration::from_millis(5),
        expiry_sweep_interval: None,
        cache_capacity_bytes: 8 * 1024 * 1024,
        resident_rows_max: 16,
        ..Options::default()
    }
}

fn dir(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ledger-backup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let _ = std::fs::remove_file(&path);
    path
}

fn add(member: String, points: i64, reference: String) -> AddPoints {
    AddPoints { program: "cafe".into(), member, points, remark: "visit".into(), reference, ..AddPoints::default() }
}

/// The backup's bytes, kept in memory; the first write (the header, written with
/// the checkpoint gate held) waits until the writers have added
/// `WRITES_DURING_COPY` events after the backup's sequence.
struct HeldCopy {
    bytes: Vec<u8>,
    ledger: Ledger,
    runtime: tokio::runtime::Handle,
    sequence: Arc<AtomicU64>,
    waited: bool,
}

impl Write for HeldCopy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.waited {
            self.waited = true;
            let target = self.sequence.load(Ordering::SeqCst) + WRITES_DURING_COPY;
            let reached = self.runtime.block_on(self.ledger.wait_beyond(target));
            reached.map_err(|error| std::io::Error::other(error.to_string()))?;
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes until `stop`: single adds, bulks or holds (each voided), by `kind`.
async fn writer(ledger: Ledger, kind: usize, stop: Arc<AtomicBool>) -> u64 {
    let mut writes = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let n = writes;
        match kind {
            0 => {
                let command = add(format!("m{}", n % 40), 5, format!("single-{n}"));
                ledger.add_points(command, ACTOR).await.expect("add");
            }
            1 => {
                let items = (0..10).map(|i| add(format!("b{}", (n * 10 + i) % 60), 3, format!("bulk-{n}-{i}")));
                let bulk =
                    BulkAddPoints { program: "cafe".into(), items: items.collect(), atomic: false, malformed: None };
                ledger.bulk_add_points(bulk, ACTOR).await.expect("bulk");
            }
            _ => {
                let member = format!("m{}", n % 40);
                let hold = HoldPoints {
                    program: "cafe".into(),
                    member,
                    points: 1,
                    remark: "pending".into(),
                    reference: format!("hold-{n}"),
                    expires_at: None,
                };
                let held = ledger.hold_points(hold, ACTOR).await.expect("hold");
                let void = VoidHold {
                    program: "cafe".into(),
                    hold_id: held.hold_id.to_string(),
                    member: String::new(),
                    remark: String::new(),
                };
                ledger.void_hold(void, ACTOR).await.expect("void");
            }
        }
        writes += 1;
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_exactly_its_sequence() {
    let source = dir("source");
    let restored_dir = dir("restored");
    let file = dir("file");
    let ledger = Ledger::open_with(&source, options()).expect("open");
    ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
    let now = Timestamp::from_micros(1_700_000_000_000_000);
    let operator = ledger.tokens().issue(Role::Operator, "cafe", "till", None, None, now).expect("token");
    for n in 0..40 {
        ledger.add_points(add(format!("m{n}"), 100, format!("seed-{n}")), ACTOR).await.expect("seed");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3).map(|kind| tokio::spawn(writer(ledger.clone(), kind, stop.clone()))).collect();
    // Under load, with checkpoints behind it, before the backup starts.
    let loaded = ledger.durable_sequence() + 300;
    ledger.wait_beyond(loaded).await.expect("writes before the backup");
    let sequence = Arc::new(AtomicU64::new(0));
    let copy = HeldCopy {
        bytes: Vec::new(),
        ledger: ledger.clone(),
        runtime: tokio::runtime::Handle::current(),
        sequence: sequence.clone(),
        waited: false,
    };
    let backing_up = ledger.clone();
    let (summary, bytes) = tokio::task::spawn_blocking(move || {
        let mut copy = copy;
        let summary = backing_up
            .backup_to(&mut copy, |header: &BackupHeader| sequence.store(header.sequence, Ordering::SeqCst))
            .expect("backup");
        (summary, copy.bytes)
    })
    .await
    .expect("backup thread");
    // More events after the backup, still under load.
    let after = ledger.durable_sequence() + 100;
    ledger.wait_beyond(after).await.expect("writes after the backup");
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        assert!(writer.await.expect("writer") > 0, "every kind of writer wrote");
    }
    let header = summary.header;
    let s = header.sequence;
    assert!(header.checkpoint_sequence > 0, "the backup holds a checkpoint");
    assert!(header.checkpoint_sequence <= s);
    assert!(ledger.durable_sequence() > s + WRITES_DURING_COPY, "the writers went on during and after the copy");
    assert_eq!(summary.bytes, u64::try_from(bytes.len()).expect("fits"));
    assert_eq!(summary.tokens, 1);
    std::fs::write(&file, &bytes).expect("write the file");
    assert_eq!(backup::check_file(&file).expect("the file checks"), header);

    let original: Vec<LoggedEvent> = ledger.events(1, u64::MAX).collect::<Result<_, _>>().expect("events");
    ledger.close().expect("close");
    drop(ledger);
    let replayed = ledger_store::audit::replay_dir(&source, Until::Sequence(s), |_| {}).expect("replay to S");
    assert_eq!(replayed.events, s);

    let report = backup::restore(&file, &restored_dir).expect("restore");
    assert_eq!(report.header, header);
    assert_eq!(report.tail_events, s - header.checkpoint_sequence);
    assert_eq!(report.tokens, 1);

    let restored = Ledger::open_with(&restored_dir, options()).expect("open the restored directory");
    assert_eq!(restored.replayed_at_open(), s - header.checkpoint_sequence, "only the tail after C replays");
    assert_eq!(restored.durable_sequence(), s);
    let events: Vec<LoggedEvent> = restored.events(1, u64::MAX).collect::<Result<_, _>>().expect("restored events");
    assert_eq!(events.len(), usize::try_from(s).expect("fits"), "exactly the events 1..=S");
    for (mine, theirs) in events.iter().zip(&original) {
        assert_eq!(mine, theirs, "event {} as the original has it", mine.envelope.sequence);
    }
    assert!(original.len() > events.len(), "the original went on past S");
    let verified = restored.verify().expect("verify");
    assert!(verified.ok, "{}", verified.first_mismatch);
    assert_eq!(verified.events, s);
    assert_eq!(verified.head_hash, header.head_hash_hex());
    assert_eq!(restored.compare_with_replay().expect("compare"), None);
    let state = restored.whole_state().await.expect("state");
    assert_eq!(ledger_core::diff::first_difference(&state, &replayed.state), None);
    let till = restored.tokens().authenticate(&operator.secret, now).expect("the operator's token still works");
    assert_eq!(till.token_id, operator.info.token_id);
    restored.close().expect("close the restored ledger");
    drop(restored);

    refuses_what_does_not_read(&file, &bytes);
    for path in [&source, &restored_dir] {
        std::fs::remove_dir_all(path).expect("clean up");
    }
    std::fs::remove_file(&file).expect("clean up");
}

/// A flipped byte, a cut file, something else entirely and a directory that is
/// not empty are each refused by name, and nothing is left behind.
fn refuses_what_does_not_read(file: &Path, bytes: &[u8]) {
    let damaged = dir("damaged");
    let target = dir("refused");
    let mut flipped = bytes.to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    std::fs::write(&damaged, &flipped).expect("write");
    let refused = backup::restore(&damaged, &target).expect_err("a flipped byte is refused");
    assert!(matches!(refused, BackupError::Checksum { .. } | BackupError::Damaged { .. }), "a flipped byte: {refused}");
    assert!(!target.exists(), "nothing is written for a damaged file");

    std::fs::write(&damaged, &bytes[..bytes.len() - 40]).expect("write");
    let refused = backup::restore(&damaged, &target).expect_err("a cut file is refused");
    assert!(matches!(refused, BackupError::Truncated { .. }), "a cut file: {refused}");
    assert!(!target.exists());

    std::fs::write(&damaged, b"hello, not a backup at all, but long enough to hold a header........").expect("write");
    let refused = backup::restore(&damaged, &target).expect_err("not a backup");
    assert!(matches!(refused, BackupError::NotABackup), "{refused}");

    std::fs::create_dir_all(&target).expect("dir");
    std::fs::write(target.join("keep"), b"mine").expect("write");
    let refused = backup::restore(file, &target).expect_err("a directory with files is refused");
    assert!(matches!(refused, BackupError::NotEmpty { .. }), "{refused}");
    assert_eq!(std::fs::read(target.join("keep")).expect("untouched"), b"mine");
    std::fs::remove_dir_all(&target).expect("clean up");
    std::fs::remove_file(&damaged).expect("clean up");
}

/// `Ledger::backup` writes the file by itself: `DEST.partial` renamed when whole.
#[tokio::test]
async fn a_backup_file_is_renamed_into_place_when_whole() {
    let source = dir("file-source");
    let file = dir("file-dest");
    let ledger = Ledger::open_with(&source, options()).expect("open");
    ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
    ledger.add_points(add("m1".into(), 10, "r1".into()), ACTOR).await.expect("add");
    let summary = ledger.backup(&file).await.expect("backup");
    assert_eq!(summary.header.sequence, 2);
    assert!(!backup::partial_path(&file).exists());
    assert_eq!(std::fs::metadata(&file).expect("file").len(), summary.bytes);
    assert_eq!(backup::check_file(&file).expect("checks"), summary.header);
    ledger.close().expect("close");
    std::fs::remove_dir_all(&source).expect("clean up");
    std::fs::remove_file(&file).expect("clean up");
}

/// A destination that refuses every byte: a client gone away, a full disk.
struct Refusing;

impl Write for Refusing {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A backup whose destination fails ends with the error and lets the gate go:
/// checkpoints, a later backup and the close all go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_lets_checkpoints_go_on() {
    let source = dir("failed-source");
    let file = dir("failed-dest");
    let ledger = Ledger::open_with(&source, options()).expect("open");
    ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
    let failing = ledger.clone();
    let failed = tokio::task::spawn_blocking(move || failing.backup_to(Refusing, |_| {})).await.expect("thread");
    assert!(matches!(failed, Err(BackupError::Io(_))), "{failed:?}");
    for n in 0..100 {
        ledger.add_points(add(format!("m{}", n % 7), 1, format!("after-{n}")), ACTOR).await.expect("add");
    }
    // A gate left held would make these backups (and the close) wait for ever; the
    // checkpoint they copy moves on once the checkpointer has written one.
    while ledger.backup(&file).await.expect("a later backup").header.checkpoint_sequence <= 1 {
        tokio::task::yield_now().await;
    }
    ledger.close().expect("close");
    std::fs::remove_dir_all(&source).expect("clean up");
    std::fs::remove_file(&file).expect("clean up");
}
