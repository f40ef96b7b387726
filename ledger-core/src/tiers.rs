//! Member cards and tiers (SPEC §8; Echoss member-cards, Cardbo `user_level`, Loga
//! levels). Cards are program definitions kept in level order; a member's level is
//! never stored but read from its qualifying amount and the cards (or its pin), so
//! it follows every change of either at once without an event per member.

use crate::command::{CreateMemberCard, DeleteMemberCard, SetMemberLevels, UpdateMemberCard};
use crate::event::{Event, EventBody, MemberCardFields};
use crate::field::FieldPath;
use crate::limits::{LEVELS_ITEMS_MAX, MEMBER_CARDS_MAX, POINTS_BALANCE_MAX, REMARK_BYTES_MAX};
use crate::members::Member;
use crate::programs::{Program, definition, existing};
use crate::rejection::{Definition, Rejection};
use crate::state::State;
use crate::validate::{self, Problems, count_out_of_range};

/// A member's tier as a read shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    /// 0: below level 1's threshold, or no cards.
    pub level: u32,
    pub card: Option<MemberCardFields>,
    pub pinned: bool,
}

impl Program {
    /// The level (1-based) of a card, if it exists.
    pub fn card_level(&self, card_id: &str) -> Option<u32> {
        let index = self.cards.iter().position(|card| card.card_id == card_id)?;
        Some(u32::try_from(index + 1).expect("at most 5 cards"))
    }

    /// A pinned card, following retirements to the card that took its place.
    fn resolve_card(&self, card_id: &str) -> Option<u32> {
        let mut current = card_id;
        for _ in 0..=self.retired_cards.len() {
            if let Some(level) = self.card_level(current) {
                return Some(level);
            }
            current = self.retired_cards.get(current)?;
        }
        None
    }

    /// The tier of a member (SPEC §8): the pinned card if any, else the highest card
    /// whose `lowest_amount` is at most the qualifying amount.
    pub fn tier(&self, member: &Member) -> Tier {
        let pinned = member.pinned_card.as_deref().and_then(|card_id| self.resolve_card(card_id));
        let level = pinned.unwrap_or_else(|| {
            let reached = self.cards.iter().take_while(|card| card.lowest_amount <= member.qualifying_amount).count();
            u32::try_from(reached).expect("at most 5 cards")
        });
        let card = level.checked_sub(1).and_then(|index| self.cards.get(usize::try_from(index).ok()?)).cloned();
        Tier { level, card, pinned: pinned.is_some() }
    }

    /// Deletes a card: the card above it takes its range (the top card's goes to
    /// the one below), and its pins follow `retired_cards` to that successor.
    pub(crate) fn delete_card(&mut self, card_id: &str) {
        let index = self.cards.iter().position(|card| card.card_id == card_id).expect("deleted card exists");
        assert!(index > 0, "level 1 is never deleted");
        let removed = self.cards.remove(index);
        let successor = match self.cards.get_mut(index) {
            Some(above) => {
                above.lowest_amount = removed.lowest_amount;
                above.card_id.clone()
            }
            None => self.cards[index - 1].card_id.clone(),
        };
        self.retired_cards.insert(removed.card_id, successor);
    }
}

/// A card as lists show it: with its level and the top of its range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardView {
    pub card: MemberCardFields,
    /// 1-based.
    pub level: u32,
    /// The next card's `lowest_amount` − 1; `None` on the top card.
    pub highest_amount: Option<u64>,
}

/// Cards in level order, with their levels and ranges.
pub fn cards(cards: &[MemberCardFields]) -> Vec<CardView> {
    let mut views = Vec::with_capacity(cards.len());
    for (index, card) in cards.iter().enumerate() {
        let next = cards.get(index + 1);
        views.push(CardView {
            card: card.clone(),
            level: u32::try_from(index + 1).expect("at most 5 cards"),
            highest_amount: next.map(|next| next.lowest_amount - 1),
        });
    }
    views
}

/// The view of card `index` of `after`, the program's cards once a change applies.
fn view_at(after: &[MemberCardFields], index: usize) -> CardView {
    cards(after).swap_remove(index)
}

pub fn create(state: &State, command: &CreateMemberCard, card_id: String) -> Result<(Vec<Event>, CardView), Rejection> {
    let program = existing(state, &command.program)?;
    create_fields(command).finish()?;
    unique_name(program, &command.name, "")?;
    if program.cards.len() >= MEMBER_CARDS_MAX {
        return Err(Rejection::Conflict {
            field: FieldPath::new("program_id"),
            reason: crate::reason::TOO_MANY_CARDS,
            rule: format!("program {:?} holds {MEMBER_CARDS_MAX} member cards, the most it may", command.program),
        });
    }
    let lowest_amount = validate::amount("lowest_amount", command.lowest_amount, 0, POINTS_BALANCE_MAX)?;
    if let Some(top) = program.cards.last() {
        above("lowest_amount", lowest_amount, top.lowest_amount, program.cards.len())?;
    }
    let card = MemberCardFields {
        card_id,
        name: command.name.clone(),
        benefit: command.benefit.clone(),
        lowest_amount,
        image_url: command.image_url.clone(),
    };
    let mut after = program.cards.clone();
    after.push(card.clone());
    let view = view_at(&after, after.len() - 1);
    Ok((vec![definition(&command.program, EventBody::MemberCardCreated(card))], view))
}

pub fn update(state: &State, command: &UpdateMemberCard) -> Result<(Vec<Event>, CardView), Rejection> {
    let program = existing(state, &command.program)?;
    let index = card_index(program, &command.program, &command.card_id)?;
    update_fields(command).finish()?;
    let mut card = program.cards[index].clone();
    if let Some(name) = &command.name {
        unique_name(program, name, &command.card_id)?;
        card.name.clone_from(name);
    }
    if let Some(benefit) = &command.benefit {
        card.benefit.clone_from(benefit);
    }
    if let Some(image_url) = &command.image_url {
        card.image_url.clone_from(image_url);
    }
    if let Some(lowest_amount) = command.lowest_amount {
        let lowest_amount = validate::amount("lowest_amount", lowest_amount, 0, POINTS_BALANCE_MAX)?;
        if let Some(below) = index.checked_sub(1).map(|below| &program.cards[below]) {
            above("lowest_amount", lowest_amount, below.lowest_amount, index)?;
        }
        if let Some(next) = program.cards.get(index + 1)
            && lowest_amount >= next.lowest_amount
        {
            return Err(Rejection::Invalid {
                field: FieldPath::new("lowest_amount"),
                rule: format!(
                    "must stay below {} (level {}'s lowest_amount), got {lowest_amount}",
                    next.lowest_amount,
                    index + 2
                ),
            });
        }
        card.lowest_amount = lowest_amount;
    }
    let mut after = program.cards.clone();
    after[index] = card.clone();
    let view = view_at(&after, index);
    Ok((vec![definition(&command.program, EventBody::MemberCardUpdated(card))], view))
}

pub fn delete(state: &State, command: &DeleteMemberCard) -> Result<Vec<Event>, Rejection> {
    let program = existing(state, &command.program)?;
    let index = card_index(program, &command.program, &command.card_id)?;
    if index == 0 {
        return Err(Rejection::Conflict {
            field: FieldPath::new("card_id"),
            reason: crate::reason::LEVEL_ONE_CARD,
            rule: format!("card {:?} is level 1, which cannot be deleted", command.card_id),
        });
    }
    let body = EventBody::MemberCardDeleted { card_id: command.card_id.clone() };
    Ok(vec![definition(&command.program, body)])
}

/// Pins (or, at level 0, unpins) members' levels: all or nothing.
pub fn set_levels(state: &State, command: &SetMemberLevels) -> Result<Vec<Event>, Rejection> {
    let program = existing(state, &command.program)?;
    levels_fields(command).finish()?;
    let mut events = Vec::with_capacity(command.levels.len());
    for (index, (member, level)) in command.levels.iter().enumerate() {
        let card_id = match level.checked_sub(1) {
            None => String::new(),
            Some(card_index) => {
                let card = usize::try_from(card_index).ok().and_then(|card_index| program.cards.get(card_index));
                let card = card.ok_or_else(|| Rejection::NotDefined {
                    field: FieldPath::item("levels", index, "level"),
                    what: Definition::CardLevel,
                    id: level.to_string(),
                    program: command.program.clone(),
                })?;
                card.card_id.clone()
            }
        };
        let body = EventBody::MemberLevelSet { level: *level, card_id };
        events.push(Event { program: command.program.clone(), member: member.clone(), occurred_at: None, body });
    }
    Ok(events)
}

/// Every problem of a new card's own fields.
pub fn create_fields(command: &CreateMemberCard) -> Problems {
    let mut problems = Problems::new();
    problems.check(validate::name("name", &command.name));
    problems.check(validate::max_bytes("benefit", &command.benefit, REMARK_BYTES_MAX));
    problems.check(validate::max_bytes("image_url", &command.image_url, REMARK_BYTES_MAX));
    problems.check(validate::amount("lowest_amount", command.lowest_amount, 0, POINTS_BALANCE_MAX));
    problems
}

/// Every problem of an update's own fields (those it gives).
pub fn update_fields(command: &UpdateMemberCard) -> Problems {
    let mut problems = Problems::new();
    if let Some(name) = &command.name {
        problems.check(validate::name("name", name));
    }
    if let Some(benefit) = &command.benefit {
        problems.check(validate::max_bytes("benefit", benefit, REMARK_BYTES_MAX));
    }
    if let Some(image_url) = &command.image_url {
        problems.check(validate::max_bytes("image_url", image_url, REMARK_BYTES_MAX));
    }
    if let Some(lowest_amount) = command.lowest_amount {
        problems.check(validate::amount("lowest_amount", lowest_amount, 0, POINTS_BALANCE_MAX));
    }
    problems
}

/// Every problem of a batch of levels: its size, and each member id.
pub fn levels_fields(command: &SetMemberLevels) -> Problems {
    let mut problems = Problems::new();
    if command.levels.is_empty() {
        problems.push(Rejection::Required { field: FieldPath::new("levels") });
    }
    if command.levels.len() > LEVELS_ITEMS_MAX {
        problems.push(count_out_of_range("levels", command.levels.len(), LEVELS_ITEMS_MAX));
        return problems;
    }
    for (index, (member, _)) in command.levels.iter().enumerate() {
        problems.check(validate::id("member_id", member).map_err(|rejection| rejection.under("levels", index)));
    }
    problems
}

fn card_index(program: &Program, program_id: &str, card_id: &str) -> Result<usize, Rejection> {
    validate::id("card_id", card_id)?;
    program.cards.iter().position(|card| card.card_id == card_id).ok_or_else(|| Rejection::NotDefined {
        field: FieldPath::new("card_id"),
        what: Definition::MemberCard,
        id: card_id.to_owned(),
        program: program_id.to_owned(),
    })
}

fn unique_name(program: &Program, name: &str, except_card: &str) -> Result<(), Rejection> {
    let taken = program.cards.iter().find(|card| card.name == name && card.card_id != except_card);
    match taken {
        Some(card) => Err(Rejection::NameTaken {
            field: FieldPath::new("name"),
            name: name.to_owned(),
            rule: format!("member card {:?} is already named {name:?}", card.card_id),
        }),
        None => Ok(()),
    }
}

/// `lowest_amount` must be strictly above the level below's (level `below_level`).
fn above(field: &str, lowest_amount: u64, below: u64, below_level: usize) -> Result<(), Rejection> {
    if lowest_amount > below {
        return Ok(());
    }
    Err(Rejection::Invalid {
        field: FieldPath::new(field),
        rule: format!("must be greater than {below} (level {below_level}'s lowest_amount), got {lowest_amount}"),
    })
}
