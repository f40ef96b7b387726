//! A command's private view of the state: reads fall through to the state, writes
//! land on copies of only what the command touched. A bulk decides each item
//! against what the items before it left, and an all-or-nothing bulk that fails
//! drops the overlay, so nothing half-applied ever reaches the state.

use crate::command::{Context, Decision, Outcome};
use crate::event::{Event, Stamp};
use crate::members::Member;
use crate::programs::Program;
use crate::references::{self, ReferenceEntry};
use crate::state::State;
use crate::time::Timestamp;
use std::collections::{BTreeMap, HashMap};

pub struct Overlay<'s> {
    base: &'s State,
    context: Context,
    /// Copies of the members touched, by program then member: looked up by `&str`
    /// without building a key, since a bulk looks members up thousands of times.
    /// Hash maps, because nothing ever iterates them: their order cannot leak
    /// into a decision.
    members: HashMap<String, HashMap<String, Member>>,
    references: HashMap<String, HashMap<String, ReferenceEntry>>,
    events: Vec<Event>,
}

impl<'s> Overlay<'s> {
    pub fn new(base: &'s State, context: Context) -> Overlay<'s> {
        Overlay { base, context, members: HashMap::new(), references: HashMap::new(), events: Vec::new() }
    }

    pub fn state(&self) -> &'s State {
        self.base
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
        let copied = self.members.get(program).and_then(|members| members.get(member));
        copied.or_else(|| self.base.member(program, member))
    }

    pub fn live_points(&self, program: &str, member: &str) -> u64 {
        self.member(program, member).map_or(0, |member| member.live_points(self.context.at))
    }

    pub fn reference(&self, program: &str, reference: &str) -> Option<&ReferenceEntry> {
        let copied = self.references.get(program).and_then(|references| references.get(reference));
        copied.or_else(|| self.base.program(program)?.references.get(reference))
    }

    /// Applies one member event to the copies and records it; returns its
    /// transaction id.
    pub fn apply(&mut self, event: Event) -> u64 {
        let stamp = Stamp { sequence: self.next_sequence(), recorded_at: self.context.at };
        let base = self.base;
        let members = self.members.entry(event.program.clone()).or_default();
        if !members.contains_key(&event.member) {
            let copy = base.member(&event.program, &event.member).cloned();
            members.insert(event.member.clone(), copy.unwrap_or_else(|| Member::new(stamp.recorded_at)));
        }
        let member = members.get_mut(&event.member).expect("copied above");
        let balance_after = member.fold(stamp, &event.body, &mut Vec::new());
        let reference = event.body.reference();
        if !reference.is_empty() {
            let mut one = BTreeMap::new();
            if let Some(existing) = self.reference(&event.program, reference) {
                one.insert(reference.to_owned(), existing.clone());
            }
            references::apply(&mut one, &mut BTreeMap::new(), stamp, &event, balance_after);
            let entry = one.remove(reference).expect("a referenced event records its reference");
            let references = self.references.entry(event.program.clone()).or_default();
            references.insert(reference.to_owned(), entry);
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
