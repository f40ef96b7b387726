//! `rebuild`: a ledger's log written into a fresh directory from its exported
//! events (the NATS feed's content, without NATS) is the same chain, opens to
//! the same members, and every way an export can be wrong is refused with a
//! typed error naming the sequence: a gap, bytes that are not the hash's, a
//! broken link, a record cut by the export's end.

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

#[tokio::test]
async fn a_rebuild_that_stops_leaves_no_directory_behind() {
    let (events, _, ledger) = exported("stopped-source").await;
    // An import that stops at a gap (or a lost connection) drops its rebuild.
    let gap = events.iter().filter(|event| event.sequence != 3).cloned();
    assert!(matches!(rebuild("stopped", gap), Err(RebuildError::Gap { expected: 3, found: 4 })));
    assert!(!path("stopped").exists(), "a half-rebuilt directory would open as a shorter ledger");
    // A directory that existed empty is emptied again, and kept.
    std::fs::create_dir_all(path("stopped")).expect("an empty directory");
    drop(Rebuild::create(&path("stopped")).expect("an empty directory takes a rebuild"));
    assert_eq!(std::fs::read_dir(path("stopped")).expect("kept").count(), 0);
    // So the same directory takes the next import.
    let report = rebuild("stopped", events).expect("rebuild").finish().expect("finish");
    assert_eq!(report.events, 6);
    assert!(Ledger::open(path("stopped")).expect("a finished rebuild is kept").close().is_ok());
    ledger.close().expect("close");
}
