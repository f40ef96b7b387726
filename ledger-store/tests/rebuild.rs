//! `rebuild`: a ledger's log written into a fresh directory from its exported
//! events (the NATS feed's content, without NATS) is the same chain, opens to
//! the same members, and every way an export can be wrong is refused with a
//! typed error naming the sequence: a gap, bytes that are not the hash's, a
//! broken link, a record cut by the export's end. A directory that holds a ledger
//! (a rebuild's, or one a `Ledger` opened and checkpointed) is appended to from
//! its head, the first event linked to the head's hash; another ledger's events
//! are refused there and leave it as it was.

use ledger_core::command::{AddPoints, BulkAddPoints};
use ledger_store::envelope::{self, StoredEvent};
use ledger_store::rebuild::{ExportedEvent, Rebuild, RebuildError};
use ledger_store::{Ledger, Options};
use std::path::PathBuf;

const ACTOR: &str = "test";

fn path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ledger-rebuild-{name}-{}", std::process::id()))
}

/// `path(name)`, emptied.
fn dir(name: &str) -> PathBuf {
    let path = path(name);
    let _ = std::fs::remove_dir_all(&path);
    path
}

fn add(member: &str, points: i64) -> AddPoints {
    AddPoints { program: "cafe".into(), member: member.into(), points, remark: "visit".into(), ..AddPoints::default() }
}

/// A ledger with a program (1), an add (2), a bulk of three (3..=5) and an add (6);
/// its events as an export carries them, and its head hash.
async fn exported(name: &str) -> (Vec<ExportedEvent>, String, Ledger) {
    let options = Options { expiry_sweep_interval: None, ..Options::default() };
    let ledger = Ledger::open_with(dir(name), options).expect("open");
    ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
    ledger.add_points(add("ann", 10), ACTOR).await.expect("add");
    let bulk = BulkAddPoints {
        program: "cafe".into(),
        items: vec![add("bob", 1), add("cy", 2), add("ann", 3)],
        atomic: true,
        malformed: None,
    };
    ledger.bulk_add_points(bulk, ACTOR).await.expect("bulk");
    ledger.add_points(add("bob", 4), ACTOR).await.expect("add");
    let mut events = Vec::new();
    for record in ledger.durable_records(1) {
        let (first, stored) = record.expect("a record");
        let last = first + u64::try_from(stored.len()).expect("fits") - 1;
        for (sequence, StoredEvent { bytes, hash }) in (first..).zip(stored) {
            events.push(ExportedEvent { sequence, record_first: first, record_last: last, bytes, hash });
        }
    }
    let head = ledger.verify().expect("verify").head_hash;
    (events, head, ledger)
}

fn rebuild(name: &str, events: impl IntoIterator<Item = ExportedEvent>) -> Result<Rebuild, RebuildError> {
    let mut rebuild = Rebuild::create(&dir(name))?;
    for event in events {
        rebuild.push(event)?;
    }
    Ok(rebuild)
}

#[tokio::test]
async fn a_rebuilt_log_is_the_same_chain_and_opens_to_the_same_members() {
    let (events, head, ledger) = exported("source").await;
    assert_eq!(events.len(), 6);
    assert_eq!((events[2].record_first, events[2].record_last), (3, 5), "the bulk is one record");
    let report = rebuild("whole", events).expect("rebuild").finish().expect("finish");
    assert_eq!((report.events, report.head_hash.as_str(), report.dropped_events), (6, head.as_str(), 0));

    let rebuilt = Ledger::open(path("whole")).expect("open the rebuilt directory");
    assert_eq!(rebuilt.verify().expect("verify").head_hash, head);
    for member in ["ann", "bob", "cy"] {
        assert_eq!(
            rebuilt.member("cafe", member).await.expect("member"),
            ledger.member("cafe", member).await.expect("member")
        );
    }
    rebuilt.close().expect("close");
    ledger.close().expect("close");
}

#[tokio::test]
async fn an_export_ending_inside_a_command_leaves_the_command_out() {
    let (events, _, ledger) = exported("cut-source").await;
    let rebuild = rebuild("cut", events.into_iter().take(4)).expect("the first four check");
    assert_eq!((rebuild.received(), rebuild.written()), (4, 2));
    let report = rebuild.finish().expect("finish");
    assert_eq!((report.events, report.dropped_events), (2, 2));
    ledger.close().expect("close");
}

#[tokio::test]
async fn a_gap_a_foreign_byte_a_broken_link_or_a_split_record_is_refused_by_sequence() {
    let (events, _, ledger) = exported("bad-source").await;

    let gap = events.iter().filter(|event| event.sequence != 2).cloned();
    assert!(matches!(rebuild("gap", gap), Err(RebuildError::Gap { expected: 2, found: 3 })));
    let late = events.iter().skip(1).cloned();
    assert!(matches!(rebuild("late", late), Err(RebuildError::Gap { expected: 1, found: 2 })));

    let mut flipped = events.clone();
    flipped[1].bytes[10] ^= 1;
    assert!(matches!(rebuild("hash", flipped), Err(RebuildError::Hash { sequence: 2 })));

    // A well-formed event whose hash is right for its bytes, but which names
    // another previous event.
    let mut relinked = events.clone();
    let mut envelope = envelope::decode(&relinked[3].bytes).expect("decode");
    envelope.prev_hash = [9; 32];
    let stored = envelope::encode(&envelope);
    relinked[3].bytes = stored.bytes;
    relinked[3].hash = stored.hash;
    assert!(matches!(rebuild("link", relinked), Err(RebuildError::Link { sequence: 4, .. })));

    let mut split = events.clone();
    split[3].record_last = 4;
    assert!(matches!(rebuild("split", split), Err(RebuildError::Record { sequence: 4, .. })));

    std::fs::create_dir_all(dir("full").join("something")).expect("a non-empty directory");
    assert!(matches!(Rebuild::create(&path("full")), Err(RebuildError::NotEmpty { .. })));
    ledger.close().expect("close");
}

/// The events of records `..=2` of `events` into `name`, finished: a directory
/// whose head is sequence 2.
fn rebuilt_through_2(name: &str, events: &[ExportedEvent]) -> PathBuf {
    let report = rebuild(name, events.iter().take(2).cloned()).expect("rebuild").finish().expect("finish");
    assert_eq!((report.events, report.started_at), (2, 0));
    path(name)
}

#[tokio::test]
async fn appending_goes_on_from_the_head_and_a_checkpointed_ledger_replays_only_the_tail() {
    let (events, head, ledger) = exported("append-source").await;
    let dir = rebuilt_through_2("append", &events);

    let mut appending = Rebuild::open(&dir).expect("open a directory that holds a ledger");
    assert_eq!(appending.started_at(), (2, events[1].hash));
    for event in events.iter().skip(2).take(2).cloned() {
        appending.push(event).expect("the events after the head");
    }
    // Sequence 4 is inside the bulk 3..=5: nothing of it is written yet.
    assert_eq!((appending.received(), appending.written()), (4, 2));
    let report = appending.finish().expect("finish");
    assert_eq!((report.events, report.started_at, report.dropped_events), (2, 2, 2));

    // A Ledger opens it, checkpoints at its close, and the log grows after that
    // checkpoint: the next open replays the appended records only.
    let opened = Ledger::open(&dir).expect("open the rebuilt directory");
    assert_eq!(opened.replayed_at_open(), 2, "no checkpoint yet: the whole log");
    opened.close().expect("close");
    drop(opened);
    let mut appending = Rebuild::open(&dir).expect("open a directory a ledger checkpointed");
    assert_eq!(appending.started_at(), (2, events[1].hash));
    for event in events.iter().skip(2).cloned() {
        appending.push(event).expect("the events after the head");
    }
    let report = appending.finish().expect("finish");
    assert_eq!((report.events, report.started_at, report.head_hash.as_str()), (6, 2, head.as_str()));

    let reopened = Ledger::open(&dir).expect("open after the append");
    assert_eq!(reopened.replayed_at_open(), 4, "the checkpoint covers 1..=2; the tail 3..=6 is replayed");
    assert_eq!(reopened.verify().expect("verify").head_hash, head);
    for member in ["ann", "bob", "cy"] {
        assert_eq!(
            reopened.member("cafe", member).await.expect("member"),
            ledger.member("cafe", member).await.expect("member")
        );
    }
    reopened.close().expect("close");
    ledger.close().expect("close");
}

#[tokio::test]
async fn appending_refuses_events_that_do_not_follow_the_head_and_leaves_the_directory_as_it_was() {
    let (events, _, ledger) = exported("junction-source").await;
    let (others, _, other) = exported("junction-other").await;
    assert_ne!(events[1].hash, others[1].hash, "two ledgers, two chains");
    let standby = rebuilt_through_2("junction", &events);

    let refused = |event: &ExportedEvent| {
        let mut appending = Rebuild::open(&standby).expect("open");
        let error = appending.push(event.clone()).expect_err("refused");
        appending.finish().expect("what the directory held still verifies");
        error
    };
    // Another ledger's next event links to its own sequence 2, not to this head.
    assert!(matches!(refused(&others[2]), RebuildError::Link { sequence: 3, .. }));
    assert!(matches!(refused(&events[3]), RebuildError::Gap { expected: 3, found: 4 }));
    assert!(matches!(refused(&events[1]), RebuildError::Gap { expected: 3, found: 2 }));

    let report = Rebuild::open(&standby).expect("open").finish().expect("finish");
    assert_eq!((report.events, report.head_hash), (2, ledger_store::envelope::hex(&events[1].hash)));

    // A directory with files but no ledger, or no ledger to append to.
    std::fs::create_dir_all(dir("stray").join("something")).expect("a directory of something else");
    assert!(matches!(Rebuild::open(&path("stray")), Err(RebuildError::NotALedger { .. })));
    assert!(matches!(Rebuild::append(&dir("nothing")), Err(RebuildError::NotALedger { .. })));
    other.close().expect("close");
    ledger.close().expect("close");
}

#[tokio::test]
async fn a_directory_a_ledger_holds_open_is_refused() {
    let (events, _, ledger) = exported("held-source").await;
    let dir = rebuilt_through_2("held", &events);
    let holder = Ledger::open(&dir).expect("open");
    let refused = Rebuild::open(&dir).err().expect("sled's lock refuses a second writer");
    assert!(matches!(refused, RebuildError::Store(ledger_store::StoreError::Locked { .. })), "{refused}");
    assert!(refused.to_string().contains("stop ledgerd first"), "{refused}");
    holder.close().expect("close");
    ledger.close().expect("close");
}
