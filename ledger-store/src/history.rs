//! History (SPEC §16): a member as it stood at an instant, and the lots that
//! expire soon.
//!
//! A member as of a time is computed from the log, never stored: its events are
//! the transaction ids the activity index lists for it, read from their records
//! and folded with `Member::fold` (the member's part of the one fold) up to the
//! last one recorded at or before the time; the program's definitions as they
//! stood then (member cards for the level, credit types for their names) are
//! the program's events that name no member, folded with `fold::fold` into an
//! empty state. "At or before the time" is a prefix of the log by sequence: the
//! writer never stamps a group earlier than the one before it, so recorded times
//! do not decrease along the log, and the answer is the member of
//! `ledger replay --until TIME`.
//!
//! Folding costs about 1 µs an event (2.3 µs when each is its own record), so a
//! member with 10,000 events would take 10–25 ms from scratch. So a fold leaves
//! **snapshots** behind: the member after every `snapshot_events`-th event it
//! folded, in a tree of its own (`history`). A later read starts from the latest
//! snapshot at or before its time and folds at most that many events. A snapshot
//! is of durable events only, which never change, so it never goes stale; it is a
//! cache, written without a sync: one lost in a crash is made again by the next
//! fold, and one of another row format (`PROJECTION_FORMAT`, which `Member`'s
//! encoding follows) is ignored.

use crate::activity::ActivityIndex;
use crate::envelope;
use crate::error::{LedgerError, StoreError};
use crate::fold::{NoActivities, fold};
use crate::log::{self, Log};
use crate::projections::{PROJECTION_FORMAT, Projections};
use crate::views::{self, MemberView};
use ledger_core::state::{ExpiryKey, Member};
use ledger_core::{Event, FieldPath, Rejection, Stamp, State, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;

/// Members as of past events (see the module's documentation).
#[derive(Clone)]
pub struct Snapshots {
    tree: sled::Tree,
    /// Events folded between two snapshots of a member.
    every: usize,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u16,
    /// When the snapshot's last event was recorded.
    recorded_at: Timestamp,
    member: Member,
}

impl Snapshots {
    pub fn open(db: &sled::Db, every: usize) -> Result<Snapshots, StoreError> {
        Ok(Snapshots { tree: db.open_tree("history")?, every: every.max(1) })
    }

    fn prefix(program: &str, member: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(4 + program.len() + member.len() + 8);
        for part in [program, member] {
            let length = u16::try_from(part.len()).expect("ids are at most 128 bytes");
            key.extend_from_slice(&length.to_be_bytes());
            key.extend_from_slice(part.as_bytes());
        }
        key
    }

    /// The latest snapshot of `member` whose last event was recorded at or before
    /// `at`, as (its sequence, the member). Anything unreadable counts as absent:
    /// the fold then starts earlier.
    fn latest(&self, program: &str, member: &str, at: Timestamp) -> Option<(u64, Member)> {
        for row in self.tree.scan_prefix(Snapshots::prefix(program, member)).rev() {
            let Ok((key, value)) = row else { return None };
            let tail = key.len().checked_sub(8).and_then(|start| key.get(start..));
            let sequence = u64::from_be_bytes(tail?.try_into().ok()?);
            let decoded: Result<(Snapshot, usize), _> =
                bincode::serde::decode_from_slice(&value, envelope::decode_config());
            let Ok((snapshot, _)) = decoded else { continue };
            if snapshot.format == PROJECTION_FORMAT && snapshot.recorded_at <= at {
                return Some((sequence, snapshot.member));
            }
        }
        None
    }

    fn write(&self, program: &str, member_id: &str, stamp: Stamp, member: &Member) {
        let mut key = Snapshots::prefix(program, member_id);
        key.extend_from_slice(&stamp.sequence.to_be_bytes());
        let snapshot = Snapshot { format: PROJECTION_FORMAT, recorded_at: stamp.recorded_at, member: member.clone() };
        let value = bincode::serde::encode_to_vec(&snapshot, bincode::config::standard()).expect("members encode");
        if let Err(error) = self.tree.insert(key, value) {
            // A cache: the next fold starts earlier and tries again.
            tracing::debug!(%error, "a member snapshot was not written");
        }
    }
}

/// Every program's events that name no member (its creation and definitions),
/// read from the durable log as it grows: they are few, and a member as of a
/// time needs those before the time. Their sequences, and how far the log was
/// read, are kept in a tree of their own (a cache, written without a sync), so
/// that a restarted server reads them back instead of the whole log again.
#[derive(Debug)]
pub struct Definitions {
    tree: sled::Tree,
    /// Whether the tree was read back since this process opened the ledger.
    loaded: bool,
    /// The log is read up to and including this sequence.
    scanned: u64,
    programs: BTreeMap<String, Vec<(Stamp, Event)>>,
}

const SCANNED_KEY: &[u8] = b"#scanned";
const SEQUENCE_TAG: u8 = b's';

fn sequence_key(sequence: u64) -> Vec<u8> {
    let mut key = vec![SEQUENCE_TAG];
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

impl Definitions {
    pub fn open(db: &sled::Db) -> Result<Definitions, StoreError> {
        let tree = db.open_tree("history_definitions")?;
        Ok(Definitions { tree, loaded: false, scanned: 0, programs: BTreeMap::new() })
    }

    fn push(&mut self, stamp: Stamp, event: Event) {
        self.programs.entry(event.program.clone()).or_default().push((stamp, event));
    }

    /// What an earlier process read: the definitions' events from the log by
    /// their kept sequences. Anything that does not read makes it start over.
    fn load(&mut self, log: &Log, durable: u64) -> Result<(), StoreError> {
        let Some(scanned) = self.tree.get(SCANNED_KEY)? else { return Ok(()) };
        let scanned = <[u8; 8]>::try_from(scanned.as_ref()).map(u64::from_be_bytes).unwrap_or(u64::MAX);
        if scanned > durable {
            return Err(StoreError::CorruptProjection {
                key: "history_definitions".to_owned(),
                reason: format!("read up to {scanned}, past the log's durable {durable}"),
            });
        }
        for row in self.tree.scan_prefix([SEQUENCE_TAG]) {
            let (key, _) = row?;
            let sequence = key.get(1..).and_then(|bytes| <[u8; 8]>::try_from(bytes).ok()).map(u64::from_be_bytes);
            let logged = sequence.map(|sequence| log.event(sequence)).transpose()?.flatten();
            let Some(logged) = logged.filter(|logged| logged.envelope.event.member.is_empty()) else {
                return Err(StoreError::CorruptProjection {
                    key: "history_definitions".to_owned(),
                    reason: "a kept sequence names no definition in the log".to_owned(),
                });
            };
            let envelope = logged.envelope;
            self.push(Stamp { sequence: envelope.sequence, recorded_at: envelope.recorded_at }, envelope.event);
        }
        self.scanned = scanned;
        Ok(())
    }

    /// Reads the log after what was read, up to `durable`: nothing above the
    /// durable watermark, which a storage fault could still take back.
    fn catch_up(&mut self, log: &Log, durable: u64) -> Result<(), StoreError> {
        if !self.loaded {
            self.loaded = true;
            if let Err(error) = self.load(log, durable) {
                tracing::warn!(%error, "reading the log again for the programs' definitions");
                self.scanned = 0;
                self.programs.clear();
                self.tree.clear()?;
            }
        }
        if self.scanned >= durable {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for logged in log.events_from(self.scanned + 1) {
            let envelope = logged?.envelope;
            if envelope.sequence > durable {
                break;
            }
            self.scanned = envelope.sequence;
            if envelope.event.member.is_empty() {
                batch.insert(sequence_key(envelope.sequence), &[]);
                self.push(Stamp { sequence: envelope.sequence, recorded_at: envelope.recorded_at }, envelope.event);
            }
        }
        // The sequences and how far they go, in one atomic batch.
        batch.insert(SCANNED_KEY, &self.scanned.to_be_bytes());
        if let Err(error) = self.tree.apply_batch(batch) {
            // A cache: the next process reads the log again.
            tracing::debug!(%error, "the definitions read were not kept");
        }
        Ok(())
    }

    /// A state holding only `program` as its events at or before `at` left it
    /// (no program before its creation).
    fn program_at(&self, program: &str, at: Timestamp) -> State {
        let mut state = State::default();
        for (stamp, event) in self.programs.get(program).into_iter().flatten() {
            if stamp.recorded_at > at {
                break;
            }
            fold(&mut state, *stamp, event, None, &mut NoActivities);
        }
        state
    }
}

/// `member` of `program` as it stood at `at`: every durable event recorded at or
/// before `at`, with lots counted as a read at `at` counts them (expired ones left
/// out, swept or not). One rule for every time, a time to come included: the
/// events so far, and the lots that will have expired by then left out.
/// NOT_FOUND `MEMBER_NOT_FOUND` when no event had named the member by then.
#[allow(clippy::too_many_arguments)]
pub fn member_as_of(
    log: &Log,
    activity: &ActivityIndex,
    snapshots: &Snapshots,
    definitions: &std::sync::Mutex<Definitions>,
    durable: u64,
    program: &str,
    member_id: &str,
    at: Timestamp,
) -> Result<MemberView, LedgerError> {
    let not_found = || {
        LedgerError::Rejected(Rejection::UnknownMember {
            field: FieldPath::new("member_id"),
            program: program.to_owned(),
            member: member_id.to_owned(),
        })
    };
    let defined = {
        let mut definitions = definitions.lock().expect("definitions lock");
        definitions.catch_up(log, durable)?;
        definitions.program_at(program, at)
    };
    let Some(found) = defined.program(program) else { return Err(not_found()) };
    let start = snapshots.latest(program, member_id, at);
    let after = start.as_ref().map_or(0, |(sequence, _)| *sequence);
    let mut sequences = activity.newest(program, member_id, durable.saturating_add(1), usize::MAX)?;
    sequences.retain(|(sequence, _)| *sequence > after);
    sequences.reverse();
    let sequences = sequences.iter().map(|(sequence, _)| *sequence);
    let mut folded = 0usize;
    let mut snapshot = |stamp: Stamp, member: &Member| {
        folded += 1;
        if folded.is_multiple_of(snapshots.every) {
            snapshots.write(program, member_id, stamp, member);
        }
    };
    let start = start.map(|(_, member)| member);
    let member = fold_member(log, sequences, at, start, &mut snapshot)?.ok_or_else(not_found)?;
    Ok(views::view(program, found, member_id, &member, at))
}

/// Folds into `member` (`None`: from before its first event) the events at
/// `sequences` (ascending, all of one member) that were recorded at or before
/// `at`, telling `folded` of each; `None` if there is none at all.
fn fold_member(
    log: &Log,
    sequences: impl Iterator<Item = u64>,
    at: Timestamp,
    mut member: Option<Member>,
    folded: &mut impl FnMut(Stamp, &Member),
) -> Result<Option<Member>, StoreError> {
    let mut changes = Vec::new();
    // The record last read: a bulk holds many events, maybe several of the member's.
    let mut record: Option<(u64, Vec<envelope::StoredEvent>)> = None;
    for sequence in sequences {
        let held = record.as_ref().is_some_and(|(first, events)| {
            sequence >= *first && usize::try_from(sequence - first).is_ok_and(|index| index < events.len())
        });
        if !held {
            record = Some(read_record(log, sequence)?);
        }
        let (first, events) = record.as_ref().expect("read above");
        let stored = usize::try_from(sequence - first).ok().and_then(|index| events.get(index));
        let stored = stored.ok_or_else(|| missing(sequence))?;
        let envelope = envelope::decode(&stored.bytes)
            .map_err(|error| StoreError::Corrupt { sequence, reason: error.to_string() })?;
        if envelope.recorded_at > at {
            break;
        }
        let stamp = Stamp { sequence, recorded_at: envelope.recorded_at };
        let member = member.get_or_insert_with(|| Member::new(envelope.recorded_at));
        changes.clear();
        member.fold(stamp, &envelope.event.body, &mut changes);
        folded(stamp, member);
    }
    Ok(member)
}

/// The record holding `sequence`, its events still encoded.
fn read_record(log: &Log, sequence: u64) -> Result<(u64, Vec<envelope::StoredEvent>), StoreError> {
    let found = log.tree().range(..=log::key(sequence)).next_back().transpose()?;
    let (key, value) = found.ok_or_else(|| missing(sequence))?;
    let first = log::sequence_of(&key)?;
    Ok((first, log::decode_record(first, &value)?))
}

fn missing(sequence: u64) -> StoreError {
    StoreError::Corrupt { sequence, reason: "the activity index names an event the log does not hold".to_owned() }
}

/// Where a page of expiring lots continues: after this lot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiringCursor {
    pub expires_at: Timestamp,
    pub member: String,
    pub lot: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiringQuery {
    pub program: String,
    /// Lots expiring strictly before this time.
    pub before: Timestamp,
    pub page_size: usize,
    pub after: Option<ExpiringCursor>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiringLot {
    pub member: String,
    /// The lot's id (the transaction id of the add that made it).
    pub lot: u64,
    /// What is left of it.
    pub points: u64,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiringPage {
    pub lots: Vec<ExpiringLot>,
    /// `None` on the last page.
    pub next_after: Option<ExpiringCursor>,
}

/// A page of `query.program`'s lots still live at `now` that expire before
/// `query.before`, soonest first (then by member and lot), from the expiry index
/// (whole in memory) and the members' lots (resident, else their rows). A lot
/// past its time is left out even before the sweep records its expiry.
pub fn expiring(
    state: &State,
    rows: &Projections,
    query: &ExpiringQuery,
    now: Timestamp,
) -> Result<ExpiringPage, LedgerError> {
    let found = state.program(&query.program).ok_or_else(|| views::unknown_program(&query.program))?;
    let start = match &query.after {
        Some(cursor) => Bound::Excluded(ExpiryKey {
            expires_at: cursor.expires_at,
            program: query.program.clone(),
            member: cursor.member.clone(),
            lot: cursor.lot,
        }),
        None => Bound::Included(ExpiryKey { expires_at: now, program: String::new(), member: String::new(), lot: 0 }),
    };
    // Members read from their rows, once per page.
    let mut read: BTreeMap<&str, Option<Member>> = BTreeMap::new();
    let mut lots: Vec<ExpiringLot> = Vec::new();
    let mut more = false;
    // The index is ordered by time first: the other programs' lots in the window
    // are stepped over, never the program's lots outside it.
    for key in state.expiries.range((start, Bound::Unbounded)) {
        if key.expires_at >= query.before {
            break;
        }
        if key.program != query.program || key.expires_at <= now {
            continue;
        }
        let remaining = match found.members.get(&key.member) {
            Some(resident) => resident.lots.get(key.lot).map(|lot| lot.remaining),
            None => {
                if !read.contains_key(key.member.as_str()) {
                    read.insert(&key.member, rows.member(&query.program, &key.member)?);
                }
                let row = read.get(key.member.as_str()).and_then(Option::as_ref);
                row.and_then(|member| member.lots.get(key.lot)).map(|lot| lot.remaining)
            }
        };
        let Some(points) = remaining else { continue };
        if points == 0 {
            continue;
        }
        if lots.len() == query.page_size {
            more = true;
            break;
        }
        lots.push(ExpiringLot { member: key.member.clone(), lot: key.lot, points, expires_at: key.expires_at });
    }
    let next_after = if more {
        lots.last().map(|last| ExpiringCursor {
            expires_at: last.expires_at,
            member: last.member.clone(),
            lot: last.lot,
        })
    } else {
        None
    };
    Ok(ExpiringPage { lots, next_after })
}
