//! The projections on disk: a checkpoint of the in-memory `State`, row by row, with
//! the sequence it reflects.
//!
//! The writer decides from memory and appends only the log on the hot path; every
//! so often it hands the rows changed since the last checkpoint to the
//! checkpointer, which writes them and the new `applied_sequence` in one
//! `apply_batch` (atomic in sled). On start-up the ledger loads the rows and
//! replays only the log after `applied_sequence`: the rows plus that tail equal a
//! replay of the whole log, at any crash point, because a checkpoint is written
//! whole or not at all and only ever covers events that are already durable.
//!
//! Losses this prevents: a row newer than its recorded sequence (rows and the
//! sequence share one batch); a checkpoint of events a crash then loses (the
//! checkpointer waits until the log is durable up to the cut); replaying the whole
//! log at start-up (only the tail after the cut is replayed).

use crate::envelope::{GENESIS_HASH, Hash};
use crate::error::StoreError;
use crate::resident::Resident;
use ledger_core::event::EventBody;
use ledger_core::event::MemberCardFields;
use ledger_core::references::ReferenceEntry;
use ledger_core::state::{CreditType, ExpiryKey, Formula, Member, Program, Reward};
use ledger_core::vouchers::{VoucherBook, VoucherRecord};
use ledger_core::{Event, State, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The row format this build writes. Rows are derived data: a build that finds
/// another format rebuilds them from the log instead of reading them. 4: a
/// reference row holds a record per kind (`ReferenceRecord`). 5: a member row
/// holds its holds (`Member::holds`) and its reversed transactions
/// (`Member::reversed`).
pub const PROJECTION_FORMAT: u16 = 5;

/// Outside every tag's key space, so that no prefix scan of rows meets it.
const META_KEY: &[u8] = b"#meta";
const PROGRAM_TAG: u8 = b'p';
const MEMBER_TAG: u8 = b'm';
const REFERENCE_TAG: u8 = b'r';
const VOUCHER_TAG: u8 = b'v';
/// Each lot with an expiry (`State::expiries`); the key is the whole row.
const EXPIRY_TAG: u8 = b'e';
/// The reference of an add with an expiring lot, by the lot. Never removed: a
/// row is current only while its reference's `expiring_lot` still names the lot
/// (a replaced add's reference names the new transaction), which is checked when
/// it is read.
const LOT_TAG: u8 = b'l';

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u16,
    pub applied_sequence: u64,
    pub head_hash: Hash,
    pub recorded_at: Timestamp,
}

impl Meta {
    pub fn empty() -> Meta {
        Meta { format: PROJECTION_FORMAT, applied_sequence: 0, head_hash: GENESIS_HASH, recorded_at: Timestamp(0) }
    }
}

#[derive(Serialize, Deserialize)]
struct ProgramRow {
    name: String,
    created_at: Timestamp,
    formulas: BTreeMap<String, Formula>,
    rewards: BTreeMap<String, Reward>,
    credits: BTreeMap<String, CreditType>,
    cards: Vec<MemberCardFields>,
    retired_cards: BTreeMap<String, String>,
    shops: BTreeMap<i64, String>,
    member_count: u64,
}

/// Rows changed since the last checkpoint, by program: noted for every event, so
/// a repeat costs a lookup by `&str`, not new keys.
#[derive(Debug, Default)]
pub struct Dirty {
    programs: BTreeSet<String>,
    members: BTreeMap<String, BTreeSet<String>>,
    references: BTreeMap<String, BTreeSet<String>>,
    /// Voucher statements by program, then (promotion_id, voucher_identifier).
    vouchers: BTreeMap<String, BTreeSet<(i64, String)>>,
    /// Keys the expiry index gained (`true`) or lost (`false`).
    expiries: BTreeMap<ExpiryKey, bool>,
    rows: usize,
}

fn note_row(rows: &mut BTreeMap<String, BTreeSet<String>>, program: &str, key: &str) -> bool {
    if rows.get(program).is_some_and(|keys| keys.contains(key)) {
        return false;
    }
    rows.entry(program.to_owned()).or_default().insert(key.to_owned())
}

impl Dirty {
    /// Notes the rows an event changed; called right after `State::apply`.
    pub fn note(&mut self, state: &State, event: &Event) {
        // Every event may change its program's row: a definition, or the count
        // of members a new member raises.
        if !self.programs.contains(&event.program) {
            self.programs.insert(event.program.clone());
            self.rows += 1;
        }
        if event.member.is_empty() {
            return;
        }
        if note_row(&mut self.members, &event.program, &event.member) {
            self.rows += 1;
        }
        if let EventBody::VoucherRecorded { statement, .. } = &event.body {
            let key = (statement.promotion_id, statement.voucher_identifier.clone());
            if self.vouchers.entry(event.program.clone()).or_default().insert(key) {
                self.rows += 1;
            }
        }
        let reference = match &event.body {
            EventBody::PointsExpired { lot, .. } => state
                .program(&event.program)
                .and_then(|program| program.lot_references.get(lot))
                .map_or("", String::as_str),
            body => body.reference(),
        };
        if !reference.is_empty() && note_row(&mut self.references, &event.program, reference) {
            self.rows += 1;
        }
    }

    /// Notes a key the expiry index gained or lost (`State::apply_noting`).
    pub fn note_expiry(&mut self, key: &ExpiryKey, created: bool) {
        if self.expiries.insert(key.clone(), created).is_none() {
            self.rows += 1;
        }
    }

    pub fn has_member(&self, program: &str, member: &str) -> bool {
        self.members.get(program).is_some_and(|members| members.contains(member))
    }

    pub fn has_reference(&self, program: &str, reference: &str) -> bool {
        self.references.get(program).is_some_and(|references| references.contains(reference))
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn len(&self) -> usize {
        self.rows
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("rows always encode")
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    bincode::serde::decode_from_slice(bytes, crate::envelope::decode_config()).map(|(value, _)| value).map_err(
        |error| StoreError::CorruptProjection {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: error.to_string(),
        },
    )
}

/// `tag`, then the program's length and bytes, then the rest: programs never run
/// into each other, whatever bytes their ids hold.
fn row_key(tag: u8, program: &str, rest: &str) -> Vec<u8> {
    row_key_bytes(tag, program, rest.as_bytes())
}

fn row_key_bytes(tag: u8, program: &str, rest: &[u8]) -> Vec<u8> {
    let length = u16::try_from(program.len()).expect("ids are at most 128 bytes");
    let mut key = Vec::with_capacity(3 + program.len() + rest.len());
    key.push(tag);
    key.extend_from_slice(&length.to_be_bytes());
    key.extend_from_slice(program.as_bytes());
    key.extend_from_slice(rest);
    key
}

/// An expiry row's key: the program, the time (big-endian, sign bit flipped),
/// the lot, then the member.
fn expiry_key(key: &ExpiryKey) -> Vec<u8> {
    let mut rest = Vec::with_capacity(16 + key.member.len());
    let micros = key.expires_at.micros().to_be_bytes();
    rest.push(micros[0] ^ 0x80);
    rest.extend_from_slice(&micros[1..]);
    rest.extend_from_slice(&key.lot.to_be_bytes());
    rest.extend_from_slice(key.member.as_bytes());
    row_key_bytes(EXPIRY_TAG, &key.program, &rest)
}

fn parse_expiry_key(key: &[u8]) -> Result<ExpiryKey, StoreError> {
    let corrupt = || StoreError::CorruptProjection {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "bad expiry key".to_owned(),
    };
    let (program, rest) = split_key_program(key)?;
    let (micros, rest) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let (lot, member) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let mut micros = *micros;
    micros[0] ^= 0x80;
    let member = String::from_utf8(member.to_vec()).map_err(|_| corrupt())?;
    Ok(ExpiryKey {
        expires_at: Timestamp::from_micros(i64::from_be_bytes(micros)),
        program,
        member,
        lot: u64::from_be_bytes(*lot),
    })
}

/// A voucher row's key: the program, then the promotion id as big-endian bytes
/// with the sign bit flipped (so that rows sort by promotion), then the identifier.
fn voucher_key(program: &str, promotion_id: i64, identifier: &str) -> Vec<u8> {
    let mut key = row_key(VOUCHER_TAG, program, "");
    let ordered = promotion_id.to_be_bytes();
    key.push(ordered[0] ^ 0x80);
    key.extend_from_slice(&ordered[1..]);
    key.extend_from_slice(identifier.as_bytes());
    key
}

fn split_key(key: &[u8]) -> Result<(String, String), StoreError> {
    let corrupt = || StoreError::CorruptProjection {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "bad key".to_owned(),
    };
    let (program, rest) = split_key_program(key)?;
    let rest = String::from_utf8(rest.to_vec()).map_err(|_| corrupt())?;
    Ok((program, rest))
}

/// The program of a row key and the bytes after it.
fn split_key_program(key: &[u8]) -> Result<(String, &[u8]), StoreError> {
    let corrupt = || StoreError::CorruptProjection {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "bad key".to_owned(),
    };
    let length = key.get(1..3).ok_or_else(corrupt)?;
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    let program = key.get(3..3 + length).ok_or_else(corrupt)?;
    let rest = key.get(3 + length..).ok_or_else(corrupt)?;
    let program = String::from_utf8(program.to_vec()).map_err(|_| corrupt())?;
    Ok((program, rest))
}

#[derive(Clone)]
pub struct Projections {
    tree: sled::Tree,
}

impl Projections {
    pub fn open(db: &sled::Db) -> Result<Projections, StoreError> {
        Ok(Projections { tree: db.open_tree("projections")? })
    }

    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    pub fn meta(&self) -> Result<Option<Meta>, StoreError> {
        self.tree.get(META_KEY)?.map(|bytes| decode(META_KEY, &bytes)).transpose()
    }

    /// The checkpointed state and what it reflects; `None` when there is no
    /// checkpoint this build can read, and the state must come from the log.
    ///
    /// Only what does not grow with members is loaded: programs with their
    /// definitions and shops, and the expiry index. Members, references, lot
    /// references and voucher books stay on disk until a command, an event or a
    /// read needs them (`resident`).
    pub fn load(&self) -> Result<Option<(State, Meta)>, StoreError> {
        let Some(meta) = self.meta()? else { return Ok(None) };
        if meta.format != PROJECTION_FORMAT {
            return Ok(None);
        }
        let mut state = State::default();
        for entry in self.tree.scan_prefix([PROGRAM_TAG]) {
            let (key, value) = entry?;
            let (program, _) = split_key(&key)?;
            let row: ProgramRow = decode(&key, &value)?;
            let mut vouchers = VoucherBook::default();
            for (shop_id, name) in row.shops {
                vouchers.define_shop(shop_id, name);
            }
            let loaded = Program {
                name: row.name,
                created_at: row.created_at,
                formulas: row.formulas,
                rewards: row.rewards,
                members: BTreeMap::new(),
                member_count: row.member_count,
                references: BTreeMap::new(),
                lot_references: BTreeMap::new(),
                credits: row.credits,
                cards: row.cards,
                retired_cards: row.retired_cards,
                vouchers,
            };
            state.programs.insert(program, loaded);
        }
        for entry in self.tree.scan_prefix([EXPIRY_TAG]) {
            let (key, _) = entry?;
            let expiry = parse_expiry_key(&key)?;
            program_mut(&mut state, &expiry.program, &key)?;
            state.expiries.insert(expiry);
        }
        Ok(Some((state, meta)))
    }

    /// Every voucher statement of `program`, as the last checkpoint wrote them.
    pub fn book_records(&self, program: &str) -> Result<Vec<VoucherRecord>, StoreError> {
        let mut records = Vec::new();
        for entry in self.tree.scan_prefix(row_key(VOUCHER_TAG, program, "")) {
            let (key, value) = entry?;
            records.push(decode(&key, &value)?);
        }
        Ok(records)
    }

    /// A member's row as the last checkpoint wrote it.
    pub fn member(&self, program: &str, member: &str) -> Result<Option<Member>, StoreError> {
        let key = row_key(MEMBER_TAG, program, member);
        self.tree.get(&key)?.map(|bytes| decode(&key, &bytes)).transpose()
    }

    /// A reference's row as the last checkpoint wrote it.
    pub fn reference(&self, program: &str, reference: &str) -> Result<Option<ReferenceEntry>, StoreError> {
        let key = row_key(REFERENCE_TAG, program, reference);
        self.tree.get(&key)?.map(|bytes| decode(&key, &bytes)).transpose()
    }

    /// The reference a lot row names, current or not (see `LOT_TAG`).
    pub fn lot_reference(&self, program: &str, lot: u64) -> Result<Option<String>, StoreError> {
        let key = row_key_bytes(LOT_TAG, program, &lot.to_be_bytes());
        self.tree.get(&key)?.map(|bytes| decode(&key, &bytes)).transpose()
    }

    /// Up to `limit` member rows of `program` after `after` (from the first when
    /// `None`), in id order.
    pub fn members_after(
        &self,
        program: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Member)>, StoreError> {
        let prefix = row_key(MEMBER_TAG, program, "");
        let start = match after {
            Some(after) => {
                // The first key after `after`'s: `after` followed by a 0 byte.
                let mut key = row_key(MEMBER_TAG, program, after);
                key.push(0);
                key
            }
            None => prefix.clone(),
        };
        let mut found = Vec::new();
        for entry in self.tree.range(start..) {
            let (key, value) = entry?;
            if !key.starts_with(&prefix) || found.len() == limit {
                break;
            }
            let (_, member) = split_key(&key)?;
            found.push((member, decode(&key, &value)?));
        }
        Ok(found)
    }

    /// The whole state: every row, with what `resident` holds in memory taking
    /// the place of its row (a resident row may be newer than its checkpoint).
    /// For audits and tests: it holds every member in memory.
    pub fn materialize(&self, resident: &Resident) -> Result<State, StoreError> {
        let mut state = resident.state.clone();
        for (program_id, program) in &mut state.programs {
            if !resident.books.contains(program_id) {
                for record in self.book_records(program_id)? {
                    program.vouchers.restore(record);
                }
            }
        }
        for entry in self.tree.scan_prefix([MEMBER_TAG]) {
            let (key, value) = entry?;
            let (program, member) = split_key(&key)?;
            let program = program_mut(&mut state, &program, &key)?;
            if let std::collections::btree_map::Entry::Vacant(vacant) = program.members.entry(member) {
                vacant.insert(decode(&key, &value)?);
            }
        }
        for entry in self.tree.scan_prefix([REFERENCE_TAG]) {
            let (key, value) = entry?;
            let (program, reference) = split_key(&key)?;
            let program = program_mut(&mut state, &program, &key)?;
            if !program.references.contains_key(&reference) {
                let row: ReferenceEntry = decode(&key, &value)?;
                if let Some(lot) = row.expiring_lot() {
                    program.lot_references.insert(lot, reference.clone());
                }
                program.references.insert(reference, row);
            }
        }
        Ok(state)
    }

    /// The batch that brings the rows up to `state` and records `meta`.
    pub fn batch(state: &State, dirty: &Dirty, meta: Meta) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for program_id in &dirty.programs {
            let program = state.program(program_id).expect("dirty programs exist");
            let row = ProgramRow {
                name: program.name.clone(),
                created_at: program.created_at,
                formulas: program.formulas.clone(),
                rewards: program.rewards.clone(),
                credits: program.credits.clone(),
                cards: program.cards.clone(),
                retired_cards: program.retired_cards.clone(),
                shops: program.vouchers.shops().clone(),
                member_count: program.member_count,
            };
            batch.insert(row_key(PROGRAM_TAG, program_id, ""), encode(&row));
        }
        for (program, member_ids) in &dirty.members {
            for member_id in member_ids {
                let member = state.member(program, member_id).expect("dirty members are resident");
                batch.insert(row_key(MEMBER_TAG, program, member_id), encode(member));
            }
        }
        for (program, references) in &dirty.references {
            for reference in references {
                let entry = state
                    .program(program)
                    .and_then(|p| p.references.get(reference))
                    .expect("dirty references are resident");
                batch.insert(row_key(REFERENCE_TAG, program, reference), encode(entry));
                if let Some(lot) = entry.expiring_lot() {
                    batch.insert(row_key_bytes(LOT_TAG, program, &lot.to_be_bytes()), encode(reference));
                }
            }
        }
        for (key, present) in &dirty.expiries {
            if *present {
                batch.insert(expiry_key(key), Vec::new());
            } else {
                batch.remove(expiry_key(key));
            }
        }
        for (program_id, keys) in &dirty.vouchers {
            let book = &state.program(program_id).expect("dirty programs exist").vouchers;
            for (promotion_id, identifier) in keys {
                let record = book.get(*promotion_id, identifier).expect("dirty vouchers exist");
                batch.insert(voucher_key(program_id, *promotion_id, identifier), encode(record));
            }
        }
        batch.insert(META_KEY, encode(&meta));
        batch
    }

    pub fn apply(&self, batch: sled::Batch) -> Result<(), StoreError> {
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Drops every row, before a rebuild from the log.
    pub fn clear(&self) -> Result<(), StoreError> {
        self.tree.clear()?;
        Ok(())
    }
}

fn program_mut<'s>(state: &'s mut State, program: &str, key: &[u8]) -> Result<&'s mut Program, StoreError> {
    state.programs.get_mut(program).ok_or_else(|| StoreError::CorruptProjection {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("row of program {program:?}, which has no program row"),
    })
}
