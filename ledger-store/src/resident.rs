//! The members, references and lot references in memory: a cache over the
//! projection rows that the last checkpoint wrote, bounded by a number of rows
//! (`Options::resident_rows_max`, from `ledgerd --cache-mib`), not by the data.
//!
//! `State` holds the resident rows. Before `decide` (and before a recovery folds an
//! event) every row the command or event names (`ledger_core::footprint`) is made
//! resident, read from its row on a miss; a row with no row on disk is one no
//! event ever named, which is what the core takes an absent member to be.
//!
//! Losses this prevents:
//! - a member evicted and then taken for a new one with 0 points by the next add:
//!   nothing decides before its footprint is resident;
//! - a reference forgotten once evicted, so that a repeat applies twice: a
//!   reference is read from its row before the command that names it decides;
//! - an evicted row whose newest version is not on disk yet, read back stale: only
//!   rows that no checkpoint still has to write are evicted (not dirty, and no
//!   checkpoint in flight), so a row that is not resident is current on disk.

use crate::error::StoreError;
use crate::projections::{Dirty, Projections};
use ledger_core::footprint::{self, Key};
use ledger_core::state::Program;
use ledger_core::{Command, Event, State, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};

/// The state in memory and which programs' voucher books are in it: a book is
/// read whole from its rows the first time a command, an event or a read needs
/// it, so that start-up does not read every voucher statement.
#[derive(Debug, Default)]
pub struct Resident {
    pub state: State,
    /// Programs whose book is in `state`. A book not in it holds only its shops.
    pub books: BTreeSet<String>,
}

impl Deref for Resident {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for Resident {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Resident {
    pub fn new(state: State) -> Resident {
        Resident { state, books: BTreeSet::new() }
    }

    /// Reads `program`'s voucher statements into its book, once.
    pub fn load_book(&mut self, rows: &Projections, program: &str) -> Result<(), StoreError> {
        if self.books.contains(program) {
            return Ok(());
        }
        let Some(found) = self.state.programs.get_mut(program) else { return Ok(()) };
        for record in rows.book_records(program)? {
            found.vouchers.restore(record);
        }
        self.books.insert(program.to_owned());
        Ok(())
    }
}

/// Rows to read because a command or event names them and they are not resident.
#[derive(Default)]
struct Misses {
    members: Vec<(String, String)>,
    references: Vec<(String, String)>,
    lots: Vec<(String, u64)>,
    books: Vec<String>,
}

impl Misses {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.references.is_empty() && self.lots.is_empty() && self.books.is_empty()
    }

    /// Notes `key` if it is not resident. A resident reference names a member,
    /// and a resident lot reference a reference, that a replacement or an expiry
    /// changes: those are noted too.
    fn note(&mut self, resident: &Resident, key: Key<'_>) {
        let state = &resident.state;
        let program_id = match key {
            Key::Member { program, .. } | Key::Reference { program, .. } | Key::LotReference { program, .. } => program,
            Key::Book { program } => {
                if state.program(program).is_some() && !resident.books.contains(program) {
                    self.books.push(program.to_owned());
                }
                return;
            }
        };
        // A program that does not exist has no rows; `decide` refuses the command.
        let Some(program) = state.program(program_id) else { return };
        match key {
            Key::Member { member, .. } => {
                if !program.members.contains_key(member) {
                    self.members.push((program_id.to_owned(), member.to_owned()));
                }
            }
            Key::Reference { reference, .. } => match program.references.get(reference) {
                Some(entry) => {
                    if !program.members.contains_key(&entry.member) {
                        self.members.push((program_id.to_owned(), entry.member.clone()));
                    }
                }
                None => self.references.push((program_id.to_owned(), reference.to_owned())),
            },
            Key::LotReference { lot, .. } => match program.lot_references.get(&lot) {
                Some(reference) => self.note(resident, Key::Reference { program: program_id, reference }),
                None => self.lots.push((program_id.to_owned(), lot)),
            },
            Key::Book { .. } => {}
        }
    }

    /// Reads every missing row into `state`: lot references first (they name
    /// references), then references (they name members), then members.
    fn load(mut self, resident: &mut Resident, rows: &Projections) -> Result<(), StoreError> {
        for program in std::mem::take(&mut self.books) {
            resident.load_book(rows, &program)?;
        }
        let state = &mut resident.state;
        for (program, lot) in std::mem::take(&mut self.lots) {
            if let Some(reference) = rows.lot_reference(&program, lot)? {
                self.references.push((program, reference));
            }
        }
        for (program_id, reference) in std::mem::take(&mut self.references) {
            let program = program_mut(state, &program_id);
            let entry = match program.references.get(&reference) {
                Some(entry) => entry,
                None => {
                    let Some(entry) = rows.reference(&program_id, &reference)? else { continue };
                    if let Some(lot) = entry.expiring_lot() {
                        program.lot_references.insert(lot, reference.clone());
                    }
                    program.references.entry(reference).or_insert(entry)
                }
            };
            if !program.members.contains_key(&entry.member) {
                self.members.push((program_id, entry.member.clone()));
            }
        }
        for (program_id, member) in self.members {
            if program_mut(state, &program_id).members.contains_key(&member) {
                continue;
            }
            if let Some(row) = rows.member(&program_id, &member)? {
                program_mut(state, &program_id).members.insert(member, row);
            }
        }
        Ok(())
    }
}

fn program_mut<'s>(state: &'s mut State, program: &str) -> &'s mut Program {
    state.programs.get_mut(program).expect("misses are noted only for existing programs")
}

/// Makes resident every row `decide` may read for `command` at `at`.
pub fn ensure_command(
    resident: &mut Resident,
    rows: &Projections,
    command: &Command,
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut misses = Misses::default();
    footprint::of_command(resident, command, at, &mut |key| misses.note(resident, key));
    if misses.is_empty() {
        return Ok(());
    }
    misses.load(resident, rows)
}

/// Makes resident every row `State::apply` reads or changes for `event`.
pub fn ensure_event(resident: &mut Resident, rows: &Projections, event: &Event) -> Result<(), StoreError> {
    let mut misses = Misses::default();
    footprint::of_event(event, &mut |key| misses.note(resident, key));
    if !misses.is_empty() {
        misses.load(resident, rows)?;
    }
    Ok(())
}

/// Members and references in memory.
pub fn resident_rows(state: &State) -> usize {
    state.programs.values().map(|program| program.members.len() + program.references.len()).sum()
}

/// Evicts clean rows until at most `target` are resident, walking each
/// program's members and references from where the last pass stopped (a clock
/// hand), so that a pass does not always take the same rows. Rows of any of
/// `pinned` (dirty since the last checkpoint, or to be written by one in flight)
/// are kept: until a checkpoint has written them they are the only copy.
pub fn evict(state: &mut State, pinned: &[&Dirty], hands: &mut Hands, target: usize) {
    let Some(mut excess) = resident_rows(state).checked_sub(target).filter(|excess| *excess > 0) else { return };
    for (program_id, program) in &mut state.programs {
        if excess == 0 {
            break;
        }
        let hand = hands.0.entry(program_id.clone()).or_default();
        let members = take_clean(&program.members, &mut hand.member, excess, |member| {
            !pinned.iter().any(|dirty| dirty.has_member(program_id, member))
        });
        for member in &members {
            program.members.remove(member);
        }
        excess -= members.len();
        let references = take_clean(&program.references, &mut hand.reference, excess, |reference| {
            !pinned.iter().any(|dirty| dirty.has_reference(program_id, reference))
        });
        for reference in &references {
            let entry = program.references.remove(reference).expect("taken from the map");
            if let Some(lot) = entry.expiring_lot()
                && program.lot_references.get(&lot) == Some(reference)
            {
                program.lot_references.remove(&lot);
            }
        }
        excess -= references.len();
    }
}

/// Where each program's next eviction pass starts.
#[derive(Debug, Default)]
pub struct Hands(BTreeMap<String, Hand>);

#[derive(Debug, Default)]
struct Hand {
    member: String,
    reference: String,
}

/// Up to `count` keys of `map` that `clean` allows, from `hand` on, wrapping
/// around once; moves `hand` past the last one looked at.
fn take_clean<V>(
    map: &BTreeMap<String, V>,
    hand: &mut String,
    count: usize,
    clean: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut taken = Vec::new();
    if count == 0 {
        return taken;
    }
    let after = map.range::<String, _>(hand.clone()..);
    let before = map.range::<String, _>(..hand.clone());
    for key in after.chain(before).map(|(key, _)| key) {
        *hand = key.clone();
        if clean(key) {
            taken.push(key.clone());
            if taken.len() == count {
                break;
            }
        }
    }
    // The next pass starts after the last key looked at.
    hand.push('\0');
    taken
}
