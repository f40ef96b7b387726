//! Storage faults through the fault seam (`disk::Faults`): a full disk, an I/O
//! error or a read-only file system while the ledger runs. A write gets
//! UNAVAILABLE naming the cause, nothing half-written stays, reads go on from what
//! is durable, and writes resume by themselves once a probe write is durable,
//! without a restart.

use ledger_core::command::AddPoints;
use ledger_store::disk::Faults;
use ledger_store::{Health, Ledger, LedgerError, Options};
use std::path::PathBuf;
use std::time::Duration;

const ENOSPC: i32 = 28;
const EIO: i32 = 5;
const EROFS: i32 = 30;

fn options(faults: &Faults, checkpoint_events: u64) -> Options {
    Options {
        checkpoint_events,
        expiry_sweep_interval: None,
        fault_probe_interval: Duration::from_millis(10),
        faults: faults.clone(),
        cache_capacity_bytes: 8 * 1024 * 1024,
        // Fewer rows in memory than the tests touch, so that a rollback meets
        // members that live only on disk.
        resident_rows_max: 4,
        ..Options::default()
    }
}

fn add(member: &str, points: i64, reference: &str) -> AddPoints {
    AddPoints {
        program: "cafe".into(),
        member: member.into(),
        points,
        remark: "visit".into(),
        reference: reference.into(),
        ..AddPoints::default()
    }
}

fn dir(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ledger-faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

/// Retries a read that a rollback in progress may answer UNAVAILABLE.
async fn points(ledger: &Ledger, member: &str) -> u64 {
    loop {
        match ledger.member("cafe", member).await {
            Ok(view) => return view.points,
            Err(LedgerError::Unavailable(_)) => tokio::task::yield_now().await,
            Err(other) => panic!("read {member}: {other}"),
        }
    }
}

async fn until_writable(ledger: &Ledger) {
    while ledger.health() != Health::Writable {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_refuses_writes_keeps_reads_and_clears_by_itself() {
    for (errno, cause) in [(ENOSPC, "No space left on device"), (EIO, "Input/output error"), (EROFS, "Read-only")] {
        let path = dir(&format!("clears-{errno}"));
        let faults = Faults::default();
        let ledger = Ledger::open_with(&path, options(&faults, 1_000_000)).expect("open");
        ledger.create_program("cafe", "Corner Cafe", "test").await.expect("program");
        ledger.add_points(add("alice", 100, "a1"), "test").await.expect("add");
        ledger.add_points(add("bob", 50, "b1"), "test").await.expect("add");
        let events = ledger.durable_sequence();

        faults.arm(errno);
        let refused = ledger.add_points(add("alice", 10, "a2"), "test").await.expect_err("a write on a broken disk");
        assert!(matches!(&refused, LedgerError::Unavailable(reason) if reason.contains(cause)), "{refused:?}");
        assert!(matches!(ledger.health(), Health::Faulted(reason) if reason.contains(cause)));
        // Reads answer from what is durable: the refused add is not there.
        assert_eq!(points(&ledger, "bob").await, 50);
        assert_eq!(points(&ledger, "alice").await, 100);
        let again = ledger.add_points(add("carol", 5, "c1"), "test").await.expect_err("still broken");
        assert!(matches!(again, LedgerError::Unavailable(_)), "{again:?}");
        assert_eq!(ledger.durable_sequence(), events);

        faults.clear();
        until_writable(&ledger).await;
        let retried = ledger.add_points(add("alice", 10, "a2"), "test").await.expect("the retry after the fault");
        assert!(!retried.duplicate, "the refused add was not applied, so its retry is new");
        assert_eq!(retried.balance, 110);
        assert_eq!(ledger.durable_sequence(), events + 1, "nothing of the refused writes stayed in the log");
        assert_eq!(ledger.compare_with_replay().expect("replay"), None);
        assert!(ledger.verify().expect("verify").ok);
        ledger.close().expect("close");
        drop(ledger);

        let ledger = Ledger::open_with(&path, options(&Faults::default(), 1_000_000)).expect("reopen");
        assert_eq!(points(&ledger, "alice").await, 110);
        assert_eq!(ledger.durable_sequence(), events + 1);
        assert_eq!(ledger.compare_with_replay().expect("replay"), None);
        ledger.close().expect("close");
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// Faults that land on checkpoints (every 3 events here) and on commit groups
/// of concurrent writers: after the fault clears, the ledger equals a replay of
/// its log, every acknowledged write is there and a refused one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_under_concurrent_writes_and_checkpoints_leave_a_consistent_ledger() {
    let path = dir("concurrent");
    let faults = Faults::default();
    let ledger = Ledger::open_with(&path, options(&faults, 3)).expect("open");
    ledger.create_program("cafe", "Corner Cafe", "test").await.expect("program");
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    for round in 0..9 {
        // Broken before the round's writes, or while they are in flight.
        if round % 3 == 1 {
            faults.arm(ENOSPC);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..8 {
            let ledger = ledger.clone();
            let reference = format!("r{round}-{writer}");
            tasks.spawn(async move {
                let result = ledger.add_points(add(&format!("m{writer}"), 1, &reference), "test").await;
                (reference, result)
            });
        }
        if round % 3 == 2 {
            faults.arm(EIO);
        }
        while let Some(joined) = tasks.join_next().await {
            let (reference, result) = joined.expect("writer task");
            match result {
                Ok(receipt) => acknowledged.push((reference, receipt.transaction_id)),
                Err(LedgerError::Unavailable(_)) => refused.push(reference),
                Err(other) => panic!("{reference}: {other}"),
            }
        }
        faults.clear();
        until_writable(&ledger).await;
    }
    assert!(refused.len() >= 24, "the rounds broken beforehand refuse all their writes: {refused:?}");
    assert_eq!(ledger.compare_with_replay().expect("replay"), None, "live equals a replay after the faults");
    for (reference, transaction_id) in &acknowledged {
        let activity = ledger.activity("cafe", 0, reference).await.expect("acknowledged write present");
        assert_eq!(activity.transaction_id, *transaction_id, "{reference}");
    }
    for reference in &refused {
        assert!(ledger.activity("cafe", 0, reference).await.is_err(), "refused write {reference} present");
    }
    ledger.close().expect("close");
    drop(ledger);
    let ledger = Ledger::open_with(&path, options(&Faults::default(), 3)).expect("reopen");
    assert_eq!(ledger.compare_with_replay().expect("replay"), None, "after reopening");
    let count = u64::try_from(acknowledged.len()).unwrap();
    assert_eq!(ledger.durable_sequence(), 1 + count, "the program and the acknowledged adds, nothing else");
    ledger.close().expect("close");
    let _ = std::fs::remove_dir_all(&path);
}

/// Closing while the disk is still broken ends (without a checkpoint) instead of
/// waiting for a flush that cannot come; the next open recovers from the log,
/// and a retry of the refused write applies once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_a_fault_ends_and_the_next_open_recovers() {
    let path = dir("close");
    let faults = Faults::default();
    let ledger = Ledger::open_with(&path, options(&faults, 1_000_000)).expect("open");
    ledger.create_program("cafe", "Corner Cafe", "test").await.expect("program");
    ledger.add_points(add("alice", 100, "a1"), "test").await.expect("add");
    faults.arm(ENOSPC);
    assert!(ledger.add_points(add("alice", 1, "a2"), "test").await.is_err());
    let closing = ledger.clone();
    tokio::task::spawn_blocking(move || closing.close()).await.expect("close task").expect("close");
    drop(ledger);
    let ledger = Ledger::open_with(&path, options(&Faults::default(), 1_000_000)).expect("reopen");
    assert_eq!(ledger.compare_with_replay().expect("replay"), None);
    // The refused add's outcome was unknown (UNAVAILABLE): sled may have kept it,
    // as after a crash. Its retry with the same reference applies once either way.
    let retried = ledger.add_points(add("alice", 1, "a2"), "test").await.expect("retry");
    assert_eq!(retried.balance, 101);
    assert_eq!(points(&ledger, "alice").await, 101);
    ledger.close().expect("close");
    let _ = std::fs::remove_dir_all(&path);
}

/// A sync that fails after sled wrote (a failed write-back) is never retried:
/// Linux drops the pages it could not write and reports that once, so a later
/// sync that succeeds would prove nothing. The ledger refuses writes until it is
/// opened again, reads go on from what is durable, and the next open has every
/// acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_back_fails_the_ledger_until_it_is_opened_again() {
    let path = dir("write-back");
    let faults = Faults::default();
    let ledger = Ledger::open_with(&path, options(&faults, 1_000_000)).expect("open");
    ledger.create_program("cafe", "Corner Cafe", "test").await.expect("program");
    ledger.add_points(add("alice", 100, "a1"), "test").await.expect("add");
    faults.arm_sync(EIO);
    let refused = ledger.add_points(add("alice", 10, "a2"), "test").await.expect_err("a failed sync");
    assert!(
        matches!(&refused, LedgerError::Unavailable(reason) if reason.contains("Input/output error")),
        "{refused:?}"
    );
    faults.clear();
    while !matches!(ledger.health(), Health::Failed(_)) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let still = ledger.add_points(add("alice", 10, "a3"), "test").await.expect_err("no retry of a failed sync");
    assert!(matches!(&still, LedgerError::Unavailable(reason) if reason.contains("restart")), "{still:?}");
    assert_eq!(points(&ledger, "alice").await, 100, "reads answer from what is durable");
    let closing = ledger.clone();
    let _ = tokio::task::spawn_blocking(move || closing.close()).await.expect("close task");
    drop(ledger);

    let ledger = Ledger::open_with(&path, options(&Faults::default(), 1_000_000)).expect("reopen");
    assert_eq!(ledger.compare_with_replay().expect("replay"), None);
    let retried = ledger.add_points(add("alice", 10, "a2"), "test").await.expect("retry after reopening");
    assert_eq!(retried.balance, 110, "the refused add applies once, whether or not sled kept it");
    ledger.close().expect("close");
    let _ = std::fs::remove_dir_all(&path);
}
