//! Properties of member cards and tiers (SPEC §8) over random sequences of card
//! operations, qualifying-amount changes (adds, uses, point statements) and manual
//! levels, checked after every step against a plain model:
//!
//! - at most 5 cards, `lowest_amount`s strictly increasing, levels 1..n in order;
//! - a card operation the rules refuse changes nothing;
//! - an unpinned member's level is the highest card whose `lowest_amount` is at
//!   most its qualifying amount; a pinned member stays on its card (or the card
//!   that took its place) whatever its amount does;
//! - the qualifying amount is lifetime earning: adds and COLLECT/CANCEL statements
//!   move it, uses and REDEEM statements do not;
//! - the state equals a replay of the log.

mod support;

use ledger_core::command::{
    CreateMemberCard, DeleteMemberCard, ImportPointStatements, PointStatementItem, SetMemberLevels, UpdateMemberCard,
};
use ledger_core::{Command, Timestamp};
use proptest::prelude::*;
use support::{Step, Store, add, spend};

const MEMBERS: [&str; 3] = ["m0", "m1", "m2"];
/// Echoss brands are programs named by number.
const BRAND: i64 = 7;

#[derive(Clone, Debug)]
enum Op {
    Create { lowest_amount: i64, name: usize },
    Update { card: usize, lowest_amount: i64 },
    Delete { card: usize },
    Add { member: usize, points: i64 },
    Use { member: usize, points: i64 },
    Statement { member: usize, reason: usize, change: i64 },
    Pin { member: usize, level: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (-3..300i64, 0..8usize).prop_map(|(lowest_amount, name)| Op::Create { lowest_amount, name }),
        3 => (0..6usize, -3..300i64).prop_map(|(card, lowest_amount)| Op::Update { card, lowest_amount }),
        2 => (0..6usize).prop_map(|card| Op::Delete { card }),
        4 => (0..3usize, 1..80i64).prop_map(|(member, points)| Op::Add { member, points }),
        2 => (0..3usize, 1..60i64).prop_map(|(member, points)| Op::Use { member, points }),
        3 => (0..3usize, 0..3usize, -40..60i64).prop_map(|(member, reason, change)| Op::Statement { member, reason, change }),
        2 => (0..3usize, 0..5u32).prop_map(|(member, level)| Op::Pin { member, level }),
    ]
}

/// What the tests expect, kept apart from the ledger's own code.
#[derive(Default)]
struct Model {
    /// (card id, lowest_amount) in level order.
    cards: Vec<(String, u64)>,
    qualifying: [u64; 3],
    /// The card a member is pinned to, following deletions.
    pins: [Option<String>; 3],
}

impl Model {
    fn level(&self, member: usize) -> u32 {
        let reached = match &self.pins[member] {
            Some(card) => self.cards.iter().position(|(id, _)| id == card).expect("pins follow cards") + 1,
            None => self.cards.iter().filter(|(_, lowest)| *lowest <= self.qualifying[member]).count(),
        };
        u32::try_from(reached).expect("small")
    }

    fn delete(&mut self, index: usize) {
        let (removed, lowest) = self.cards.remove(index);
        let successor = match self.cards.get_mut(index) {
            Some(above) => {
                above.1 = lowest;
                above.0.clone()
            }
            None => self.cards[index - 1].0.clone(),
        };
        for pin in self.pins.iter_mut().flatten() {
            if *pin == removed {
                pin.clone_from(&successor);
            }
        }
    }
}

fn card_id(model: &Model, index: usize) -> String {
    model.cards.get(index).map_or_else(|| "missing".to_owned(), |(id, _)| id.clone())
}

fn statement(member: usize, reason: usize, change: i64) -> Command {
    Command::ImportPointStatements(ImportPointStatements {
        items: vec![PointStatementItem {
            brand_id: BRAND,
            line_id: MEMBERS[member].to_owned(),
            change_reason: ["集點", "兌換", "取消"][reason].to_owned(),
            point_change_record: change,
            changed_at: Some(Timestamp::from_micros(1)),
            ..PointStatementItem::default()
        }],
    })
}

fn run(store: &mut Store, model: &mut Model, op: &Op) {
    let program = || BRAND.to_string();
    match op {
        Op::Create { lowest_amount, name } => {
            let command = Command::CreateMemberCard(CreateMemberCard {
                program: program(),
                name: format!("card {name}"),
                lowest_amount: *lowest_amount,
                ..CreateMemberCard::default()
            });
            let sequence = store.next_sequence;
            let allowed = model.cards.len() < 5
                && !model.cards.iter().any(|(id, _)| store_card_name(store, id) == format!("card {name}"))
                && *lowest_amount >= 0
                && model.cards.last().is_none_or(|(_, top)| lowest_amount.unsigned_abs() > *top);
            assert_eq!(store.run(&command).is_ok(), allowed, "create {op:?}");
            if allowed {
                model.cards.push((sequence.to_string(), lowest_amount.unsigned_abs()));
            }
        }
        Op::Update { card, lowest_amount } => {
            let command = Command::UpdateMemberCard(UpdateMemberCard {
                program: program(),
                card_id: card_id(model, *card),
                lowest_amount: Some(*lowest_amount),
                ..UpdateMemberCard::default()
            });
            let below = card.checked_sub(1).and_then(|below| model.cards.get(below)).map(|(_, lowest)| *lowest);
            let above = model.cards.get(card + 1).map(|(_, lowest)| *lowest);
            let allowed = *card < model.cards.len()
                && *lowest_amount >= 0
                && below.is_none_or(|below| lowest_amount.unsigned_abs() > below)
                && above.is_none_or(|above| lowest_amount.unsigned_abs() < above);
            assert_eq!(store.run(&command).is_ok(), allowed, "update {op:?}");
            if allowed {
                model.cards[*card].1 = lowest_amount.unsigned_abs();
            }
        }
        Op::Delete { card } => {
            let command =
                Command::DeleteMemberCard(DeleteMemberCard { program: program(), card_id: card_id(model, *card) });
            let allowed = *card > 0 && *card < model.cards.len();
            assert_eq!(store.run(&command).is_ok(), allowed, "delete {op:?}");
            if allowed {
                model.delete(*card);
            }
        }
        Op::Add { member, points } => {
            let Step::Run(Command::AddPoints(mut command)) = add(MEMBERS[*member], *points) else { unreachable!() };
            command.program = program();
            store.run(&Command::AddPoints(command)).expect("adds of 1..80 succeed");
            model.qualifying[*member] += points.unsigned_abs();
        }
        Op::Use { member, points } => {
            let Step::Run(Command::UsePoints(mut command)) = spend(MEMBERS[*member], *points) else { unreachable!() };
            command.program = program();
            let _ = store.run(&Command::UsePoints(command));
        }
        Op::Statement { member, reason, change } => {
            if store.run(&statement(*member, *reason, *change)).is_ok() && *reason != 1 {
                let qualifying = &mut model.qualifying[*member];
                *qualifying = if *change > 0 {
                    *qualifying + change.unsigned_abs()
                } else {
                    qualifying.saturating_sub(change.unsigned_abs())
                };
            }
        }
        Op::Pin { member, level } => {
            let command = Command::SetMemberLevels(SetMemberLevels {
                program: program(),
                levels: vec![(MEMBERS[*member].to_owned(), *level)],
            });
            let allowed = usize::try_from(*level).expect("small") <= model.cards.len();
            assert_eq!(store.run(&command).is_ok(), allowed, "pin {op:?}");
            if allowed {
                model.pins[*member] =
                    level.checked_sub(1).map(|index| card_id(model, usize::try_from(index).expect("small")));
            }
        }
    }
}

fn store_card_name(store: &Store, card_id: &str) -> String {
    let program = store.state.program(&BRAND.to_string()).expect("brand exists");
    program.cards.iter().find(|card| card.card_id == card_id).map(|card| card.name.clone()).unwrap_or_default()
}

fn check(store: &Store, model: &Model) {
    let program = store.state.program(&BRAND.to_string()).expect("brand exists");
    let lowest: Vec<(String, u64)> =
        program.cards.iter().map(|card| (card.card_id.clone(), card.lowest_amount)).collect();
    assert_eq!(lowest, model.cards, "the cards, in level order");
    assert!(program.cards.len() <= 5, "at most 5 cards");
    assert!(program.cards.windows(2).all(|pair| pair[0].lowest_amount < pair[1].lowest_amount), "strictly increasing");
    for (index, member_id) in MEMBERS.iter().enumerate() {
        let Some(member) = program.members.get(*member_id) else { continue };
        assert_eq!(member.qualifying_amount, model.qualifying[index], "{member_id}: qualifying amount");
        let tier = program.tier(member);
        assert_eq!(tier.level, model.level(index), "{member_id}: level");
        assert_eq!(tier.pinned, model.pins[index].is_some(), "{member_id}: pinned");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn cards_and_levels_follow_the_rules(ops in prop::collection::vec(op(), 1..60)) {
        let mut store = Store::empty();
        store.step(&support::create_program(&BRAND.to_string())).expect("brand");
        let mut model = Model::default();
        for op in &ops {
            run(&mut store, &mut model, op);
            check(&store, &model);
        }
        prop_assert!(store.replay() == store.state, "the state equals a replay of the log");
    }
}
