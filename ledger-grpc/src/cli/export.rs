//! `ledger replay --export FILE`: every member's balances at the replay's end, so
//! that an auditor can compare two dates (SPEC §16).
//!
//! CSV is long: one row per balance (`program_id,member_id,balance,id,amount`, with
//! `balance` one of `points`, `qualifying_amount`, `level`, `credit`, `coupon`, and
//! `id` the credit or coupon id), so that every file has the same columns however
//! many credit types and coupons a program has, and two dates compare line by line
//! (`diff`, or a join on the first four columns). JSON Lines (a `.jsonl` FILE) is one
//! object per member. Members come in program then member id order.

use super::output::Failure;
use ledger_core::{State, Timestamp};
use ledger_store::views::{self, MemberView};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Serialize)]
struct Row<'a> {
    program_id: &'a str,
    member_id: &'a str,
    balance: &'static str,
    id: &'a str,
    amount: String,
}

#[derive(Serialize)]
struct Line<'a> {
    program_id: &'a str,
    member_id: &'a str,
    points: u64,
    qualifying_amount: u64,
    level: u32,
    level_name: &'a str,
    credits: Vec<Credit<'a>>,
    coupons: Vec<Coupon<'a>>,
}

#[derive(Serialize)]
struct Credit<'a> {
    credit_id: &'a str,
    /// A decimal string, normalized, as the API prints credits.
    amount: String,
}

#[derive(Serialize)]
struct Coupon<'a> {
    coupon_id: &'a str,
    count: u32,
}

/// Writes every member of `state` as a read at `at` shows it (expired lots not
/// counted) to `path`; returns how many members.
pub fn export(state: &State, at: Timestamp, path: &Path) -> Result<u64, Failure> {
    let failed = |error: &dyn std::fmt::Display| Failure::message(format!("--export {}: {error}", path.display()));
    let file = std::fs::File::create(path).map_err(|error| failed(&error))?;
    let jsonl = path.extension().is_some_and(|extension| extension == "jsonl");
    let members = state.programs.iter().flat_map(|(program_id, program)| {
        program.members.iter().map(move |(member_id, member)| views::view(program_id, program, member_id, member, at))
    });
    let mut count = 0u64;
    if jsonl {
        let mut out = std::io::BufWriter::new(file);
        for view in members {
            serde_json::to_writer(&mut out, &line(&view)).map_err(|error| failed(&error))?;
            out.write_all(b"\n").map_err(|error| failed(&error))?;
            count += 1;
        }
        out.flush().map_err(|error| failed(&error))?;
    } else {
        let mut out = csv::Writer::from_writer(file);
        for view in members {
            for row in rows(&view) {
                out.serialize(row).map_err(|error| failed(&error))?;
            }
            count += 1;
        }
        out.flush().map_err(|error| failed(&error))?;
    }
    Ok(count)
}

fn rows(view: &MemberView) -> Vec<Row<'_>> {
    let row =
        |balance, id, amount: String| Row { program_id: &view.program, member_id: &view.member, balance, id, amount };
    let mut rows = vec![
        row("points", "", view.points.to_string()),
        row("qualifying_amount", "", view.qualifying_amount.to_string()),
        row("level", "", view.level.to_string()),
    ];
    rows.extend(
        view.credits.iter().map(|credit| row("credit", &credit.credit_id, credit.amount.normalize().to_string())),
    );
    rows.extend(view.coupons.iter().map(|coupon| row("coupon", &coupon.coupon_id, coupon.count.to_string())));
    rows
}

fn line(view: &MemberView) -> Line<'_> {
    Line {
        program_id: &view.program,
        member_id: &view.member,
        points: view.points,
        qualifying_amount: view.qualifying_amount,
        level: view.level,
        level_name: &view.level_name,
        credits: view
            .credits
            .iter()
            .map(|credit| Credit { credit_id: &credit.credit_id, amount: credit.amount.normalize().to_string() })
            .collect(),
        coupons: view
            .coupons
            .iter()
            .map(|coupon| Coupon { coupon_id: &coupon.coupon_id, count: coupon.count })
            .collect(),
    }
}
