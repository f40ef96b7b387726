//! Loga's bulk add and bulk use (SPEC §3): items apply in order; the first that
//! fails stops the bulk with `fail_at`, and what came before stays applied unless
//! the bulk is atomic. Items after the failure are not looked at.

use crate::command::{
    AddPoints, BulkAddPoints, BulkResult, BulkUsePoints, Context, Decision, MalformedItem, Outcome, PointsReceipt,
    UsePoints,
};
use crate::field::FieldPath;
use crate::limits::BULK_ITEMS_MAX;
use crate::overlay::Overlay;
use crate::points;
use crate::programs;
use crate::rejection::Rejection;
use crate::state::State;
use std::collections::HashSet;

pub fn add(state: &State, bulk: &BulkAddPoints, context: Context) -> Result<Decision, Rejection> {
    let program = bulk.program.as_str();
    let items =
        Items { all: &bulk.items, atomic: bulk.atomic, malformed: bulk.malformed.as_ref(), releases: Vec::new() };
    run(state, program, items, context, |view, item: &AddPoints| {
        same_program(program, &item.program)?;
        if item.cost.is_some() || !item.formula_id.is_empty() || item.replace_duplicate {
            return Err(Rejection::Invalid {
                field: FieldPath::new("cost"),
                rule: "cost, formula_id and replace_duplicate are not bulk fields".to_owned(),
            });
        }
        points::add(view, item)
    })
}

pub fn spend(state: &State, bulk: &BulkUsePoints, context: Context) -> Result<Decision, Rejection> {
    let program = bulk.program.as_str();
    // What a hold past its time gives back is the member's to spend, as every read
    // counts it; its expiry is recorded before the first item, so that the items'
    // transaction ids stay consecutive (SPEC §3, §14).
    let mut releases: Vec<&str> = Vec::new();
    for item in &bulk.items {
        if !releases.contains(&item.member.as_str()) {
            releases.push(&item.member);
        }
    }
    let items = Items { all: &bulk.items, atomic: bulk.atomic, malformed: bulk.malformed.as_ref(), releases };
    run(state, program, items, context, |view, item: &UsePoints| {
        same_program(program, &item.program)?;
        if item.replace_duplicate {
            return Err(Rejection::Invalid {
                field: FieldPath::new("replace_duplicate"),
                rule: "replace_duplicate is not a bulk field".to_owned(),
            });
        }
        points::spend(view, item)
    })
}

/// An item names the bulk's program: one naming another would write outside the
/// program the caller was checked for, and one naming none would make an event no
/// state can apply.
fn same_program(program: &str, item_program: &str) -> Result<(), Rejection> {
    if item_program == program {
        return Ok(());
    }
    Err(Rejection::Invalid {
        field: FieldPath::new("program_id"),
        rule: format!("must be the bulk's program {program:?}, got {item_program:?}"),
    })
}

/// A bulk's items, as `run` needs them.
struct Items<'a, Item> {
    all: &'a [Item],
    atomic: bool,
    malformed: Option<&'a MalformedItem>,
    /// Members whose holds past their time are released before the first item.
    releases: Vec<&'a str>,
}

fn run<Item>(
    state: &State,
    program: &str,
    bulk: Items<'_, Item>,
    context: Context,
    mut decide: impl FnMut(&mut Overlay<'_>, &Item) -> Result<PointsReceipt, Rejection>,
) -> Result<Decision, Rejection> {
    programs::existing(state, program)?;
    let (items, atomic) = (bulk.all, bulk.atomic);
    if items.is_empty() || items.len() > BULK_ITEMS_MAX {
        return Err(Rejection::OutOfRange {
            field: FieldPath::new("items"),
            got: i128::try_from(items.len()).expect("len fits i128"),
            min: 1,
            max: i128::try_from(BULK_ITEMS_MAX).expect("limit fits i128"),
        });
    }
    let mut view = Overlay::new(state, context);
    for member in &bulk.releases {
        crate::holds::release_lapsed(&mut view, program, member);
    }
    let mut result = BulkResult::default();
    // Members in first-touch order, and a set to find them by (never iterated, so
    // its order cannot leak): a bulk touches up to a thousand.
    let mut touched: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let index_u32 = u32::try_from(index).expect("bulk index fits u32");
        let before = view.events().len();
        let decided = match bulk.malformed {
            Some(malformed) if malformed.index == index => Err(malformed.rejection.clone()),
            _ => decide(&mut view, item),
        };
        match decided {
            Ok(receipt) if receipt.duplicate => result.duplicates.push(index_u32),
            Ok(receipt) => {
                result.applied_count += 1;
                if result.first_transaction_id == 0 {
                    result.first_transaction_id = receipt.transaction_id;
                }
                result.last_transaction_id = receipt.transaction_id;
                for event in &view.events()[before..] {
                    if !seen.contains(event.member.as_str()) {
                        seen.insert(event.member.clone());
                        touched.push(event.member.clone());
                    }
                }
            }
            Err(rejection) => {
                result.fail_at = Some(index_u32);
                result.failure = Some(rejection.under("items", index));
                break;
            }
        }
    }
    if atomic && result.fail_at.is_some() {
        let failed = BulkResult { fail_at: result.fail_at, failure: result.failure, ..BulkResult::default() };
        return Ok(Decision { events: Vec::new(), outcome: Outcome::Bulk(failed) });
    }
    // A bulk that applied nothing records nothing, the releases included: the
    // sweep records those.
    if result.applied_count == 0 {
        return Ok(Decision { events: Vec::new(), outcome: Outcome::Bulk(result) });
    }
    result.balances = touched
        .into_iter()
        .map(|member| {
            let points = view.live_points(program, &member);
            (member, points)
        })
        .collect();
    Ok(view.finish(Outcome::Bulk(result)))
}
