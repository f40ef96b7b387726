//! The projections: what the log says now. Built only by `apply`, so that replaying
//! the same events always gives an equal `State` (ordered maps, no hash order).
//!
//! `State` holds the programs and the expiry index, and `apply` hands each event to
//! the part it concerns: a program's definitions (`programs`, `tiers`), a member
//! (`members`), the references (`references`). The rules live in those files.

use crate::event::{Event, EventBody, Stamp};
use crate::lots::LotChange;
use crate::references;
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

// The parts of `State`, named from here as well as from their own files.
pub use crate::members::{Member, MemberCoupons};
pub use crate::programs::{CreditType, Formula, Program, Reward};
pub use crate::tiers::Tier;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub programs: BTreeMap<String, Program>,
    /// Lots with an expiry and pending holds (a key's `lot` is then the hold id),
    /// by expiry: what the sweep looks at, so that it never scans every member.
    pub expiries: BTreeSet<ExpiryKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpiryKey {
    pub expires_at: Timestamp,
    pub program: String,
    pub member: String,
    pub lot: u64,
}

impl State {
    pub fn program(&self, program: &str) -> Option<&Program> {
        self.programs.get(program)
    }

    pub fn member(&self, program: &str, member: &str) -> Option<&Member> {
        self.programs.get(program)?.members.get(member)
    }

    /// Folds one event into the state. Never fails: `decide` checked it, and a
    /// replay of the log meets only events that were once decided.
    ///
    /// Returns, for a member event, the balance of what it moved right after it
    /// (`Member::fold`: what the activity index records); `None` for
    /// program events.
    pub fn apply(&mut self, stamp: Stamp, event: &Event) -> Option<u64> {
        self.apply_noting(stamp, event, &mut |_, _| {})
    }

    /// `apply`, telling `expiry` of each key the expiry index gains (`true`) or
    /// loses (`false`): what a store that keeps the index on disk must write.
    pub fn apply_noting(
        &mut self,
        stamp: Stamp,
        event: &Event,
        expiry: &mut impl FnMut(&ExpiryKey, bool),
    ) -> Option<u64> {
        if let EventBody::ProgramCreated { name } = &event.body {
            let program = Program::new(name.clone(), stamp.recorded_at);
            let previous = self.programs.insert(event.program.clone(), program);
            assert!(previous.is_none(), "program {} created twice", event.program);
            return None;
        }
        let program = self.programs.get_mut(&event.program).expect("event of an unknown program");
        program.apply_definitions(stamp, &event.body);
        if event.member.is_empty() {
            return None;
        }
        let mut changes = Vec::new();
        // Looked up before inserting, so that a known member costs no key copy.
        if !program.members.contains_key(&event.member) {
            program.members.insert(event.member.clone(), Member::new(stamp.recorded_at));
            program.member_count += 1;
        }
        let member = program.members.get_mut(&event.member).expect("inserted above");
        let balance_after = member.fold(stamp, &event.body, &mut changes);
        references::apply(&mut program.references, &mut program.lot_references, stamp, event, balance_after);
        for change in changes {
            let (lot, expires_at, created) = match change {
                LotChange::Created { lot, expires_at } => (lot, expires_at, true),
                LotChange::Removed { lot, expires_at } => (lot, expires_at, false),
            };
            let key = ExpiryKey { expires_at, program: event.program.clone(), member: event.member.clone(), lot };
            expiry(&key, created);
            if created {
                self.expiries.insert(key);
            } else {
                self.expiries.remove(&key);
            }
        }
        Some(balance_after)
    }
}
