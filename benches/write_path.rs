//! The store's write path in-process, without gRPC: a 1,000-item bulk add from 4
//! concurrent callers, and single adds from 16, each acknowledged only after the
//! flush that made it durable. What remains between these and `ledger bench`
//! against `ledgerd` is the cost of gRPC.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ledger_core::command::{AddPoints, BulkAddPoints};
use ledger_store::{Ledger, Options};
use std::sync::atomic::{AtomicU64, Ordering};

const MEMBERS: u64 = 10_000;
const ITEMS: u64 = 1_000;

fn item(index: u64) -> AddPoints {
    AddPoints {
        program: "bench".into(),
        member: format!("m{}", index % MEMBERS),
        points: 10,
        remark: "bench".into(),
        ..AddPoints::default()
    }
}

fn open(name: &str) -> Ledger {
    let dir = std::env::temp_dir().join(format!("ledger-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Ledger::open_with(&dir, Options { expiry_sweep_interval: None, ..Options::default() }).expect("open")
}

fn write_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let ledger = open("write");
    runtime.block_on(ledger.create_program("bench", "Bench", "bench")).expect("program");
    let counter = AtomicU64::new(0);

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(4 * ITEMS));
    group.bench_function("bulk_add_1000_x4", |b| {
        b.to_async(&runtime).iter(|| async {
            let base = counter.fetch_add(4 * ITEMS, Ordering::Relaxed);
            let bulks = (0..4).map(|bulk| {
                let items = (0..ITEMS).map(|index| item(base + bulk * ITEMS + index * 7)).collect();
                let command = BulkAddPoints { program: "bench".into(), items, atomic: false, malformed: None };
                let ledger = ledger.clone();
                async move { ledger.bulk_add_points(command, "bench").await }
            });
            for result in futures_join(bulks).await {
                assert_eq!(result.expect("bulk").applied_count, 1_000);
            }
        })
    });
    group.throughput(Throughput::Elements(16));
    group.bench_function("add_points_x16", |b| {
        b.to_async(&runtime).iter(|| async {
            let base = counter.fetch_add(16, Ordering::Relaxed);
            let adds = (0..16).map(|index| {
                let ledger = ledger.clone();
                async move { ledger.add_points(item(base + index * 613), "bench").await }
            });
            for result in futures_join(adds).await {
                result.expect("add");
            }
        })
    });
    group.finish();
    ledger.close().expect("close");
}

/// Runs the futures concurrently on the runtime, as concurrent callers would.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}

criterion_group!(benches, write_path);
criterion_main!(benches);
