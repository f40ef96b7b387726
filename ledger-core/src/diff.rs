//! Names the first difference between two states, for audits: "the live
//! projections say X, a replay of the log says Y".

use crate::state::State;
use crate::vouchers::VoucherBook;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// `None` when the states are equal; otherwise a sentence naming the first
/// difference, with `left` called live and `right` replayed.
pub fn first_difference(live: &State, replayed: &State) -> Option<String> {
    if live == replayed {
        return None;
    }
    if let Some(key) = first_key_difference(&live.programs, &replayed.programs) {
        return Some(format!("program {key:?}: {}", presence(live.programs.contains_key(&key))));
    }
    for (id, program) in &live.programs {
        let other = &replayed.programs[id];
        if let Some(text) = map_difference("member", &program.members, &other.members) {
            return Some(format!("program {id:?}: {text}"));
        }
        if let Some(text) = map_difference("reference", &program.references, &other.references) {
            return Some(format!("program {id:?}: {text}"));
        }
        if let Some(text) = map_difference("formula", &program.formulas, &other.formulas) {
            return Some(format!("program {id:?}: {text}"));
        }
        if let Some(text) = map_difference("reward", &program.rewards, &other.rewards) {
            return Some(format!("program {id:?}: {text}"));
        }
        if let Some(text) = voucher_difference(&program.vouchers, &other.vouchers) {
            return Some(format!("program {id:?}: {text}"));
        }
        if program.cards != other.cards {
            return Some(format!("program {id:?}: member cards: live {:?}, replayed {:?}", program.cards, other.cards));
        }
        if program != other {
            return Some(format!("program {id:?}: live {program:?}, replayed {other:?}"));
        }
    }
    let extra = live.expiries.symmetric_difference(&replayed.expiries).next();
    Some(format!("expiry index differs at {extra:?}"))
}

fn presence(in_live: bool) -> &'static str {
    if in_live {
        "in the live projections, absent from the replay"
    } else {
        "in the replay, absent from the live projections"
    }
}

fn first_key_difference<V>(left: &BTreeMap<String, V>, right: &BTreeMap<String, V>) -> Option<String> {
    left.keys()
        .filter(|key| !right.contains_key(*key))
        .chain(right.keys().filter(|key| !left.contains_key(*key)))
        .next()
        .cloned()
}

fn map_difference<V: PartialEq + Debug>(
    what: &str,
    live: &BTreeMap<String, V>,
    replayed: &BTreeMap<String, V>,
) -> Option<String> {
    if let Some(key) = first_key_difference(live, replayed) {
        return Some(format!("{what} {key:?}: {}", presence(live.contains_key(&key))));
    }
    let (key, value) = live.iter().find(|(key, value)| replayed[*key] != **value)?;
    Some(format!("{what} {key:?}: live {value:?}, replayed {:?}", replayed[key]))
}

fn voucher_difference(live: &VoucherBook, replayed: &VoucherBook) -> Option<String> {
    if live == replayed {
        return None;
    }
    if live.shops() != replayed.shops() {
        return Some(format!("shops: live {:?}, replayed {:?}", live.shops(), replayed.shops()));
    }
    let mut pairs = live.records().zip(replayed.records());
    if let Some((left, right)) = pairs.find(|(left, right)| left != right) {
        return Some(format!("voucher statement: live {left:?}, replayed {right:?}"));
    }
    Some(format!("voucher statements: live {} of them, replayed {}", live.len(), replayed.len()))
}
