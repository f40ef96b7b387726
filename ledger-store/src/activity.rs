//! The activity index: for each member, and for each program as a whole, the
//! transaction ids of its events with the balance right after each, newest first
//! on read (Loga `get_activities`).
//!
//! Writing an index row per event would cost a sled insert per bulk item, the
//! very cost the log's one-record-per-command layout avoids. So the writer keeps
//! the entries made since the last checkpoint in memory, and each checkpoint writes
//! them as one row per member (and one per program) in the same atomic batch as the
//! projections: the index on disk always reflects exactly the checkpoint's cut, and
//! recovery rebuilds the rest from the replayed tail.

use crate::error::StoreError;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

const ACTIVITY_TAG: u8 = b'a';

/// (transaction id, balance after it).
pub type Entry = (u64, u64);

/// A whole index, oldest entry first, by (program, member); member `""` is the program.
pub type Entries = BTreeMap<(String, String), Vec<Entry>>;

/// Index entries by program, then member; member `""` is the program as a whole.
#[derive(Debug, Default)]
pub struct Generation {
    entries: BTreeMap<String, BTreeMap<String, Vec<Entry>>>,
}

impl Generation {
    pub fn record(&mut self, program: &str, member: &str, sequence: u64, balance_after: u64) {
        if !self.entries.contains_key(program) {
            self.entries.insert(program.to_owned(), BTreeMap::new());
        }
        let members = self.entries.get_mut(program).expect("inserted above");
        for who in [member, ""] {
            match members.get_mut(who) {
                Some(entries) => entries.push((sequence, balance_after)),
                None => {
                    members.insert(who.to_owned(), vec![(sequence, balance_after)]);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get(&self, program: &str, member: &str) -> Option<&Vec<Entry>> {
        self.entries.get(program)?.get(member)
    }

    /// Every entry of this generation, by (program, member).
    pub fn entries(&self) -> Entries {
        let mut all = Entries::new();
        for (program, members) in &self.entries {
            for (member, entries) in members {
                all.insert((program.clone(), member.clone()), entries.clone());
            }
        }
        all
    }

    /// The checkpoint rows of this generation.
    pub fn rows(&self) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
        self.entries.iter().flat_map(|(program, members)| {
            members.iter().map(move |(member, entries)| {
                let first = entries.first().expect("index lists are never empty").0;
                let value =
                    bincode::serde::encode_to_vec(entries, bincode::config::standard()).expect("entries encode");
                (row_key(program, member, first), value)
            })
        })
    }
}

fn prefix(program: &str, member: &str) -> Vec<u8> {
    let mut key = vec![ACTIVITY_TAG];
    for part in [program, member] {
        let length = u16::try_from(part.len()).expect("ids are at most 128 bytes");
        key.extend_from_slice(&length.to_be_bytes());
        key.extend_from_slice(part.as_bytes());
    }
    key
}

/// The entries of one activity row.
fn decode_row(key: &[u8], value: &[u8]) -> Result<Vec<Entry>, StoreError> {
    let decoded = bincode::serde::decode_from_slice(value, crate::envelope::decode_config());
    let (entries, _): (Vec<Entry>, usize) = decoded.map_err(|error| StoreError::CorruptProjection {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: error.to_string(),
    })?;
    Ok(entries)
}

/// The (program, member) of an activity row's key.
fn parse_prefix(key: &[u8]) -> Option<(String, String)> {
    let mut rest = key.strip_prefix(&[ACTIVITY_TAG])?;
    let mut parts = Vec::with_capacity(2);
    for _ in 0..2 {
        let (length, after) = rest.split_first_chunk::<2>()?;
        let length = usize::from(u16::from_be_bytes(*length));
        let part = after.get(..length)?;
        parts.push(String::from_utf8(part.to_vec()).ok()?);
        rest = &after[length..];
    }
    let member = parts.pop()?;
    Some((parts.pop()?, member))
}

/// The first difference between two whole indexes, `live` and `replayed`, named
/// by program, member and transaction id; `None` when they are equal.
pub fn first_difference(live: &Entries, replayed: &Entries) -> Option<String> {
    let keys: std::collections::BTreeSet<&(String, String)> = live.keys().chain(replayed.keys()).collect();
    for key in keys {
        let (program, member) = key;
        let who = if member.is_empty() { format!("program {program:?}") } else { format!("member {program}/{member}") };
        let empty = Vec::new();
        let (mine, theirs) = (live.get(key).unwrap_or(&empty), replayed.get(key).unwrap_or(&empty));
        for index in 0..mine.len().max(theirs.len()) {
            match (mine.get(index), theirs.get(index)) {
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) => {
                    return Some(format!(
                        "activities of {who}: live has transaction {} with balance after {}, the replay \
                         transaction {} with balance after {}",
                        a.0, a.1, b.0, b.1
                    ));
                }
                (Some(a), None) => {
                    return Some(format!("activities of {who}: live has transaction {}, the replay does not", a.0));
                }
                (None, Some(b)) => {
                    return Some(format!("activities of {who}: the replay has transaction {}, live does not", b.0));
                }
                (None, None) => unreachable!("index below the longer length"),
            }
        }
    }
    None
}

fn row_key(program: &str, member: &str, first: u64) -> Vec<u8> {
    let mut key = prefix(program, member);
    key.extend_from_slice(&first.to_be_bytes());
    key
}

/// The writer's hold on the current generation.
pub struct CurrentGeneration<'a>(std::sync::RwLockWriteGuard<'a, Memory>);

impl CurrentGeneration<'_> {
    pub fn record(&mut self, program: &str, member: &str, sequence: u64, balance_after: u64) {
        self.0.current.record(program, member, sequence, balance_after);
    }
}

struct Memory {
    current: Generation,
    /// Generations handed to a checkpoint that may not be written yet, oldest first.
    sealed: VecDeque<(u64, Arc<Generation>)>,
}

pub struct ActivityIndex {
    tree: sled::Tree,
    memory: RwLock<Memory>,
}

impl ActivityIndex {
    /// `tree` is the projections tree, whose checkpoints carry the rows.
    pub fn new(tree: sled::Tree, replayed: Generation) -> ActivityIndex {
        ActivityIndex { tree, memory: RwLock::new(Memory { current: replayed, sealed: VecDeque::new() }) }
    }

    /// The generation the writer records into, held for one commit group.
    pub fn current(&self) -> CurrentGeneration<'_> {
        CurrentGeneration(self.memory.write().expect("activity lock"))
    }

    /// Hands the current generation to a checkpoint with cut `cut`.
    pub fn seal(&self, cut: u64) -> Arc<Generation> {
        let mut memory = self.memory.write().expect("activity lock");
        let sealed = Arc::new(std::mem::take(&mut memory.current));
        memory.sealed.push_back((cut, sealed.clone()));
        sealed
    }

    /// Starts over from `replayed` after a rollback to the durable sequence:
    /// generations not yet written are dropped (the log still has their events).
    pub fn reset(&self, replayed: Generation) {
        let mut memory = self.memory.write().expect("activity lock");
        memory.current = replayed;
        memory.sealed.clear();
    }

    /// The checkpoint with cut `cut` is written: its generation is on disk now.
    pub fn written(&self, cut: u64) {
        let mut memory = self.memory.write().expect("activity lock");
        memory.sealed.retain(|(sealed_cut, _)| *sealed_cut > cut);
    }

    /// Entries of `member` (`""`: the whole program) with transaction ids below
    /// `before`, newest first, at most `limit`.
    pub fn newest(&self, program: &str, member: &str, before: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut found: Vec<Entry> = Vec::new();
        let mut below = before;
        let mut take = |entries: &mut dyn Iterator<Item = Entry>, found: &mut Vec<Entry>| {
            for entry in entries {
                if found.len() == limit {
                    return;
                }
                if entry.0 < below {
                    below = entry.0;
                    found.push(entry);
                }
            }
        };
        {
            let memory = self.memory.read().expect("activity lock");
            let generations = std::iter::once(&memory.current).chain(memory.sealed.iter().rev().map(|(_, g)| &**g));
            for generation in generations {
                if let Some(entries) = generation.get(program, member) {
                    take(&mut entries.iter().rev().copied(), &mut found);
                }
            }
        }
        let rows = self.tree.range(prefix(program, member)..row_key(program, member, before));
        for row in rows.rev() {
            if found.len() == limit {
                break;
            }
            let (key, value) = row?;
            let entries = decode_row(&key, &value)?;
            take(&mut entries.into_iter().rev(), &mut found);
        }
        Ok(found)
    }

    /// The whole index, on disk and in memory: what an audit compares with a
    /// replay's. A generation a checkpoint is writing may be both in memory and
    /// on disk; each transaction is listed once.
    pub fn entries(&self) -> Result<Entries, StoreError> {
        let mut all = Entries::new();
        // Memory first: a checkpoint writes a generation's rows before it drops
        // the generation from memory, so nothing falls between the two looks.
        {
            let memory = self.memory.read().expect("activity lock");
            let sealed = memory.sealed.iter().map(|(_, generation)| &**generation);
            for generation in sealed.chain(std::iter::once(&memory.current)) {
                for (who, entries) in generation.entries() {
                    all.entry(who).or_default().extend(entries);
                }
            }
        }
        for row in self.tree.scan_prefix([ACTIVITY_TAG]) {
            let (key, value) = row?;
            let (program, member) = parse_prefix(&key).ok_or_else(|| StoreError::CorruptProjection {
                key: String::from_utf8_lossy(&key).into_owned(),
                reason: "an activity key that does not parse".to_owned(),
            })?;
            all.entry((program, member)).or_default().extend(decode_row(&key, &value)?);
        }
        for entries in all.values_mut() {
            entries.sort_unstable();
            entries.dedup();
        }
        Ok(all)
    }

    /// The balance right after transaction `sequence` of `member`, if indexed.
    pub fn balance_after(&self, program: &str, member: &str, sequence: u64) -> Result<Option<u64>, StoreError> {
        let found = self.newest(program, member, sequence.saturating_add(1), 1)?;
        Ok(found.first().filter(|entry| entry.0 == sequence).map(|entry| entry.1))
    }
}
