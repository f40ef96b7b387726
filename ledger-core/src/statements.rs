//! Echoss imports (SPEC §6, §7): voucher statements and point statements. Both are
//! validated whole before anything is written: every problem of every item is
//! collected, named `data[i].field`, and any problem rejects the import.

use crate::command::{
    ImportPointStatements, ImportVoucherStatements, PointStatementItem, VoucherImportItem, brand_program,
};
use crate::event::{ChangeReason, Event, EventBody, PointStatementApplied};
use crate::field::FieldPath;
use crate::limits::{IMPORT_ITEMS_MAX, POINTS_PER_ADD_MAX};
use crate::overlay::Overlay;
use crate::references::{self, ReferenceKind};
use crate::rejection::Rejection;
use crate::state::State;
use crate::time::Timestamp;
use crate::validate;
use crate::validate::count_out_of_range;
use crate::vouchers::VoucherStatement;
use std::collections::HashMap;

/// The events of a voucher import, and how many triples it created and updated.
pub fn import_vouchers(state: &State, command: &ImportVoucherStatements) -> Result<(Vec<Event>, u32, u32), Rejection> {
    batch_size(command.items.len())?;
    let problems: Vec<Rejection> = command
        .items
        .iter()
        .enumerate()
        .flat_map(|(index, item)| voucher_problems(item).into_iter().map(move |problem| problem.under("data", index)))
        .collect();
    every(problems)?;
    brands_exist(state, command.items.iter().map(|item| item.brand_id))?;
    // Versions of triples this import already wrote: a triple twice in one file is
    // one create and one update.
    let mut versions: HashMap<(String, i64, &str), u32> = HashMap::new();
    let (mut created, mut updated) = (0u32, 0u32);
    let mut events = Vec::with_capacity(command.items.len());
    for item in &command.items {
        let program = brand_program(item.brand_id);
        let key = (program.clone(), item.promotion_id, item.voucher_identifier.as_str());
        let stored = || {
            let book = &state.program(&program).expect("brands checked above").vouchers;
            book.get(item.promotion_id, &item.voucher_identifier).map_or(0, |record| record.version)
        };
        let previous = versions.get(&key).copied().unwrap_or_else(stored);
        let version = previous.checked_add(1).expect("versions fit u32");
        versions.insert(key, version);
        if previous == 0 {
            created += 1;
        } else {
            updated += 1;
        }
        let statement = VoucherStatement {
            promotion_id: item.promotion_id,
            voucher_identifier: item.voucher_identifier.clone(),
            voucher_number: item.voucher_number.clone(),
            voucher_name: item.voucher_name.clone(),
            line_id: item.line_id.clone(),
            sent_at: item.sent_at.expect("validated above"),
            used_at: item.used_at,
            cancelled_at: item.cancelled_at,
            brand_manager_id: item.brand_manager_id,
        };
        // The business time of this version: its latest change.
        let occurred_at =
            [Some(statement.sent_at), statement.used_at, statement.cancelled_at].into_iter().flatten().max();
        let member = item.line_id.clone();
        events.push(Event { program, member, occurred_at, body: EventBody::VoucherRecorded { statement, version } });
    }
    Ok((events, created, updated))
}

/// Applies a point-statement import on the overlay; returns the items applied
/// (repeats of a used reference are skipped, not counted).
pub fn import_points(view: &mut Overlay<'_>, command: &ImportPointStatements) -> Result<u32, Rejection> {
    batch_size(command.items.len())?;
    let mut reasons = Vec::with_capacity(command.items.len());
    let mut problems = Vec::new();
    for (index, item) in command.items.iter().enumerate() {
        let (reason, found) = point_problems(item);
        reasons.push(reason);
        problems.extend(found.into_iter().map(|problem| problem.under("data", index)));
    }
    every(std::mem::take(&mut problems))?;
    brands_exist(view.state(), command.items.iter().map(|item| item.brand_id))?;
    let mut applied = 0u32;
    for (index, (item, reason)) in command.items.iter().zip(reasons).enumerate() {
        let reason = reason.expect("validated above");
        match apply_point_statement(view, item, reason) {
            Ok(true) => applied += 1,
            Ok(false) => {}
            Err(problem) => problems.push(problem.under("data", index)),
        }
    }
    every(problems)?;
    Ok(applied)
}

/// `Ok(false)` when the item's reference was used before: skipped.
fn apply_point_statement(
    view: &mut Overlay<'_>,
    item: &PointStatementItem,
    reason: ChangeReason,
) -> Result<bool, Rejection> {
    let program = brand_program(item.brand_id);
    if references::earlier(view, &program, &item.reference, ReferenceKind::PointStatement)?.is_some() {
        return Ok(false);
    }
    let magnitude = item.point_change_record.unsigned_abs();
    let live = view.live_points(&program, &item.line_id);
    if item.point_change_record > 0 {
        crate::points::room_for(view, &program, &item.line_id, magnitude, "point_change_record")?;
    }
    let taken = if item.point_change_record < 0 {
        let member = view.member(&program, &item.line_id);
        let planned = member.map_or(Err(magnitude), |member| member.lots.plan_take(magnitude, view.at(), None));
        planned.map_err(|_| Rejection::Invalid {
            field: FieldPath::new("point_change_record"),
            rule: format!(
                "would leave member {:?} of brand {} at {} points (balance {live}, change {})",
                item.line_id,
                item.brand_id,
                i128::from(live) - i128::from(magnitude),
                item.point_change_record
            ),
        })?
    } else {
        Vec::new()
    };
    let body = EventBody::PointStatementApplied(PointStatementApplied {
        promotion_id: item.promotion_id,
        change_reason: reason,
        points: item.point_change_record,
        brand_manager_id: item.brand_manager_id,
        reference: item.reference.clone(),
        taken,
    });
    view.apply(Event { program, member: item.line_id.clone(), occurred_at: item.changed_at, body });
    Ok(true)
}

/// Every problem of an import's items, named `data[i].field`, whatever the state.
pub fn voucher_fields(command: &ImportVoucherStatements) -> Vec<Rejection> {
    let items = command.items.iter().enumerate();
    items.flat_map(|(index, item)| voucher_problems(item).into_iter().map(move |p| p.under("data", index))).collect()
}

/// Every problem of a point-statement import's items, whatever the state.
pub fn point_fields(command: &ImportPointStatements) -> Vec<Rejection> {
    let items = command.items.iter().enumerate();
    items.flat_map(|(index, item)| point_problems(item).1.into_iter().map(move |p| p.under("data", index))).collect()
}

fn batch_size(items: usize) -> Result<(), Rejection> {
    if items == 0 {
        return Err(Rejection::Required { field: FieldPath::new("data") });
    }
    if items > IMPORT_ITEMS_MAX {
        return Err(count_out_of_range("data", items, IMPORT_ITEMS_MAX));
    }
    Ok(())
}

fn every(problems: Vec<Rejection>) -> Result<(), Rejection> {
    if problems.is_empty() { Ok(()) } else { Err(Rejection::Many { problems }) }
}

/// The first item naming a brand that is no program: NOT_FOUND, as for any request.
fn brands_exist(state: &State, brands: impl Iterator<Item = i64>) -> Result<(), Rejection> {
    for (index, brand_id) in brands.enumerate() {
        let program = brand_program(brand_id);
        if state.program(&program).is_none() {
            return Err(Rejection::UnknownProgram { field: FieldPath::item("data", index, "brand_id"), program });
        }
    }
    Ok(())
}

fn voucher_problems(item: &VoucherImportItem) -> Vec<Rejection> {
    let mut problems = Vec::new();
    let mut check = |result: Result<(), Rejection>| problems.extend(result.err());
    check(not_negative("brand_id", item.brand_id));
    check(not_negative("promotion_id", item.promotion_id));
    check(validate::id("voucher_identifier", &item.voucher_identifier));
    check(validate::id("voucher_number", &item.voucher_number));
    check(validate::name("voucher_name", &item.voucher_name));
    check(validate::id("line_id", &item.line_id));
    check(required_time("sent_at", item.sent_at));
    check(not_negative("brand_manager_id", item.brand_manager_id));
    problems
}

fn point_problems(item: &PointStatementItem) -> (Option<ChangeReason>, Vec<Rejection>) {
    let mut problems = Vec::new();
    let mut check = |result: Result<(), Rejection>| problems.extend(result.err());
    check(not_negative("brand_id", item.brand_id));
    check(not_negative("promotion_id", item.promotion_id));
    check(validate::id("line_id", &item.line_id));
    check(required_time("changed_at", item.changed_at));
    check(not_negative("brand_manager_id", item.brand_manager_id));
    check(validate::optional_id("reference", &item.reference));
    let limit = i64::try_from(POINTS_PER_ADD_MAX).expect("limits fit i64");
    if item.point_change_record == 0 || item.point_change_record.unsigned_abs() > POINTS_PER_ADD_MAX {
        check(Err(Rejection::Invalid {
            field: FieldPath::new("point_change_record"),
            rule: format!("must be non-zero and within -{limit}..={limit}, got {}", item.point_change_record),
        }));
    }
    let reason = ChangeReason::parse(&item.change_reason);
    if reason.is_none() {
        let rule = format!("must be 集點, 兌換 or 取消 (or COLLECT, REDEEM, CANCEL), got {:?}", item.change_reason);
        check(Err(Rejection::Invalid { field: FieldPath::new("change_reason"), rule }));
    }
    (reason, problems)
}

fn not_negative(field: &str, value: i64) -> Result<(), Rejection> {
    if value < 0 {
        return Err(Rejection::OutOfRange {
            field: FieldPath::new(field),
            got: i128::from(value),
            min: 0,
            max: i128::from(i64::MAX),
        });
    }
    Ok(())
}

fn required_time(field: &str, value: Option<Timestamp>) -> Result<(), Rejection> {
    value.map(|_| ()).ok_or_else(|| Rejection::Required { field: FieldPath::new(field) })
}
