//! The pure core's cost per item: deciding a 1,000-item bulk add against a program
//! of 10,000 members and folding its events into the state. This is the writer's
//! CPU per bulk before any encoding or I/O.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ledger_core::command::{AddPoints, BulkAddPoints, CreateProgram};
use ledger_core::{Command, Context, Stamp, State, Timestamp, decide};
use std::hint::black_box;

const MEMBERS: usize = 10_000;
const ITEMS: usize = 1_000;

fn run(state: &mut State, command: &Command, next_sequence: &mut u64, at: Timestamp) {
    let decision = decide(state, command, Context { at, next_sequence: *next_sequence }).expect("accepted");
    for event in &decision.events {
        state.apply(Stamp { sequence: *next_sequence, recorded_at: at }, event);
        *next_sequence += 1;
    }
}

fn bulk(round: usize) -> Command {
    let items = (0..ITEMS)
        .map(|index| AddPoints {
            program: "bench".into(),
            member: format!("m{}", (index * 7 + round * 13) % MEMBERS),
            points: 10,
            remark: "bench".into(),
            ..AddPoints::default()
        })
        .collect();
    Command::BulkAddPoints(BulkAddPoints { program: "bench".into(), items, atomic: false, malformed: None })
}

/// A program whose members all have history, as after a while in production.
fn warmed() -> (State, u64) {
    let mut state = State::default();
    let mut next = 1;
    let at = Timestamp::from_micros(1_700_000_000_000_000);
    let create = Command::CreateProgram(CreateProgram { program: "bench".into(), name: "Bench".into() });
    run(&mut state, &create, &mut next, at);
    for round in 0..20 {
        run(&mut state, &bulk(round), &mut next, at);
    }
    (state, next)
}

fn bulk_add(c: &mut Criterion) {
    let (state, next) = warmed();
    let command = bulk(99);
    let at = Timestamp::from_micros(1_700_000_100_000_000);
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("decide_bulk_add_1000", |b| {
        b.iter(|| black_box(decide(&state, &command, Context { at, next_sequence: next }).expect("accepted")))
    });
    group.bench_function("decide_and_apply_bulk_add_1000", |b| {
        b.iter_batched(
            || state.clone(),
            |mut state| {
                let mut sequence = next;
                run(&mut state, &command, &mut sequence, at);
                state
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bulk_add);
criterion_main!(benches);
