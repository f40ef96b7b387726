//! A command's private view of the state: reads fall through to the state, writes
//! land on copies of only what the command touched. A bulk decides each item
//! against what the items before it left, and an all-or-nothing bulk that fails
//! drops the overlay, so nothing half-applied ever reaches the state.

use crate::command::{Context, Decision, Outcome};
use crate::event::{Event, Stamp};
use crate::state::{Member, Program, ReferenceEntry, State, apply_to_references};
use crate::time::Timestamp;
use std::collections::BTreeMap;

pub struct Overlay<'s> {
    base: &'s State,
    context: Context,
    /// Copies of the members touched, by (program, member).
    members: BTreeMap<(String, String), Member>,
    references: BTreeMap<(String, String), ReferenceEntry>,
    events: Vec<Event>,
}

impl<'s> Overlay<'s> {
    pub fn new(base: &'s State, context: Context) -> Overlay<'s> {
        Overlay { base, context, members: BTreeMap::new(), references: BTreeMap::new(), events: Vec::new() }
    }

    pub fn at(&self) -> Timestamp {
        self.context.at
    }

    /// The transaction id the next applied event will get.
    pub fn next_sequence(&self) -> u64 {
        let recorded = u64::try_from(self.events.len()).expect("events fit u64");
        self.context.next_sequence + recorded
    }

    pub fn program(&self, program: &str) -> Option<&'s Program> {
        self.base.program(program)
    }

    pub fn member(&self, program: &str, member: &str) -> Option<&Member> {
        let key = (program.to_owned(), member.to_owned());
        self.members.get(&key).or_else(|| self.base.member(program, member))
    }

    pub fn live_points(&self, program: &str, member: &str) -> u64 {
        self.member(program, member).map_or(0, |member| member.live_points(self.context.at))
    }

    pub fn reference(&self, program: &str, reference: &str) -> Option<&ReferenceEntry> {
        let key = (program.to_owned(), reference.to_owned());
        self.references.get(&key).or_else(|| self.base.program(program)?.references.get(reference))
    }

    /// Applies one member event to the copies and records it; returns its
    /// transaction id.
    pub fn apply(&mut self, event: Event) -> u64 {
        let stamp = Stamp { sequence: self.next_sequence(), recorded_at: self.context.at };
        let key = (event.program.clone(), event.member.clone());
        let base = self.base;
        let member = self.members.entry(key).or_insert_with(|| {
            base.member(&event.program, &event.member).cloned().unwrap_or_else(|| Member::new(stamp.recorded_at))
        });
        member.apply(stamp, &event.body, &mut Vec::new());
        let balance_after = member.live_points(stamp.recorded_at);
        let reference = event.body.reference();
        if !reference.is_empty() {
            let key = (event.program.clone(), reference.to_owned());
            let mut one = BTreeMap::new();
            if let Some(existing) = self.reference(&event.program, reference) {
                one.insert(reference.to_owned(), existing.clone());
            }
            apply_to_references(&mut one, &mut BTreeMap::new(), stamp, &event, balance_after);
            let entry = one.remove(reference).expect("a referenced event records its reference");
            self.references.insert(key, entry);
        }
        self.events.push(event);
        stamp.sequence
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn finish(self, outcome: Outcome) -> Decision {
        Decision { events: self.events, outcome }
    }
}
