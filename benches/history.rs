//! GetMember as of a time (SPEC §16) in-process, for a member with 10,000 events:
//! the target is at most 2 ms p50. Two layouts of the same history: one
//! event per record (single adds, interleaved with another member's), the costly
//! case, and 1,000-event bulk records, where one record read serves many events.
//! Each with member snapshots (the default: a fold starts from the latest one)
//! and without (`history_snapshot_events` beyond the history: every read folds
//! all 10,000 events). Beside them, the plain read of the same member for scale.

use criterion::{Criterion, criterion_group, criterion_main};
use ledger_core::Timestamp;
use ledger_core::command::{AddPoints, BulkAddPoints};
use ledger_store::{Ledger, Options};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The member "single" gets 9,984 (156 rounds of 64), "bulk" 10,000.
const EVENTS: u64 = 10_000;
const BULK_ITEMS: u64 = 1_000;
/// Single adds in flight at once while loading: a commit group each.
const LOAD_CONCURRENCY: u64 = 64;

fn add(member: &str) -> AddPoints {
    AddPoints {
        program: "bench".into(),
        member: member.into(),
        points: 3,
        remark: "bench".into(),
        ..AddPoints::default()
    }
}

fn open(name: &str, history_snapshot_events: usize) -> Ledger {
    let dir = std::env::temp_dir().join(format!("ledger-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = Options { expiry_sweep_interval: None, history_snapshot_events, ..Options::default() };
    Ledger::open_with(&dir, options).expect("open")
}

async fn load(ledger: &Ledger) {
    ledger.create_program("bench", "Bench", "bench").await.expect("program");
    // "single": each event its own record, another member's between.
    for _ in 0..EVENTS / LOAD_CONCURRENCY {
        let adds = (0..LOAD_CONCURRENCY).flat_map(|_| ["single", "other"]).map(|member| {
            let ledger = ledger.clone();
            tokio::spawn(async move { ledger.add_points(add(member), "bench").await })
        });
        let handles: Vec<_> = adds.collect();
        for handle in handles {
            handle.await.expect("task").expect("add");
        }
    }
    for _ in 0..EVENTS / BULK_ITEMS {
        let items = (0..BULK_ITEMS).map(|_| add("bulk")).collect();
        let command = BulkAddPoints { program: "bench".into(), items, atomic: false, malformed: None };
        assert_eq!(ledger.bulk_add_points(command, "bench").await.expect("bulk").applied_count, 1_000);
    }
}

fn history(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut group = c.benchmark_group("history");
    group.sample_size(30);
    for (snapshots, every) in
        [("snapshots", ledger_core::limits::HISTORY_SNAPSHOT_EVENTS), ("no_snapshots", usize::MAX)]
    {
        let ledger = open(snapshots, every);
        runtime.block_on(load(&ledger));
        let now = Timestamp::from_chrono(chrono::Utc::now());
        let single = runtime.block_on(ledger.member_as_of("bench", "single", now)).expect("as of");
        assert_eq!(single.points, 3 * (EVENTS / LOAD_CONCURRENCY) * LOAD_CONCURRENCY);
        for member in ["single", "bulk"] {
            // "As of any time": 100 instants spread over the member's history, in turn,
            // so that a read folds from 0 to 255 events past its snapshot (and a bulk
            // record's time takes the whole bulk).
            let times: Vec<Timestamp> = ledger
                .events(1, u64::MAX)
                .map(|event| event.expect("event").envelope)
                .filter(|envelope| envelope.event.member == member)
                .map(|envelope| envelope.recorded_at)
                .collect();
            let instants: Vec<Timestamp> = times.iter().step_by(times.len() / 100).copied().collect();
            let next = AtomicUsize::new(0);
            group.bench_function(format!("get_member_as_of_10000_events_{member}_records_{snapshots}"), |b| {
                b.to_async(&runtime).iter(|| async {
                    let at = instants[next.fetch_add(1, Ordering::Relaxed) % instants.len()];
                    ledger.member_as_of("bench", member, at).await.expect("as of")
                })
            });
        }
        if every == usize::MAX {
            group.bench_function("get_member_now", |b| {
                b.to_async(&runtime).iter(|| async { ledger.member("bench", "single").await.expect("member") })
            });
        }
        ledger.close().expect("close");
    }
    group.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
