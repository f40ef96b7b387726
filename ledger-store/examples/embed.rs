//! The ledger in your own program: open a directory, make a program, add and use
//! points, hold some and capture the hold, print the member and its activities,
//! verify the log, close. Copy it as a start.
//!
//!     cargo run -p ledger-store --example embed -- ./my-ledger
//!
//! Without a directory it uses a new one under the temporary directory and
//! removes it at the end. Run it twice on the same directory and the second run
//! adds to what the first left: the ledger is durable.
//!
//! `cargo test` runs it too (`test = true` in ledger-store's Cargo.toml): the test
//! at the end calls the same `run` that `main` does.

use ledger_core::command::{AddPoints, CaptureHold, HoldPoints, UsePoints};
use ledger_store::activities::ActivityQuery;
use ledger_store::views::MemberView;
use ledger_store::{Ledger, LedgerError};
use std::path::{Path, PathBuf};

/// Who asks for the changes: the ledger records it in every event, for audits.
/// It is a name, not a permission; your program decides who may do what.
const ACTOR: &str = "till-1";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, temporary) = match std::env::args_os().nth(1) {
        Some(dir) => (PathBuf::from(dir), false),
        None => (std::env::temp_dir().join(format!("ledger-embed-{}", std::process::id())), true),
    };
    run(&dir).await?;
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

/// Everything the example does, on the ledger in `dir`; returns alice as the
/// last read showed her.
async fn run(dir: &Path) -> Result<MemberView, Box<dyn std::error::Error>> {
    // Opens the ledger in `dir`, creating it if needed. While it is open no
    // other process (a `ledgerd`, say) can open the same directory.
    let ledger = Ledger::open(dir)?;
    println!("opened {}", dir.display());

    // A program holds members and their points. It is created once: a second
    // run finds it.
    let exists = ledger.programs().await?.iter().any(|program| program.program == "cafe");
    if !exists {
        ledger.create_program("cafe", "Corner Cafe", ACTOR).await?;
    }

    // Every write returns once it is durable (flushed and synced to disk).
    let add = AddPoints {
        program: "cafe".into(),
        member: "alice".into(),
        points: 120,
        remark: "latte and cake".into(),
        ..AddPoints::default()
    };
    let added = ledger.add_points(add, ACTOR).await?;
    println!("added {} points: transaction {}, balance {}", added.points, added.transaction_id, added.balance);

    let spend = UsePoints {
        program: "cafe".into(),
        member: "alice".into(),
        points: 20,
        remark: "cookie".into(),
        ..UsePoints::default()
    };
    let used = ledger.use_points(spend, ACTOR).await?;
    println!("used {} points: balance {}", used.points, used.balance);

    // A hold sets points aside (an open table's bill); the capture spends them.
    let hold = HoldPoints {
        program: "cafe".into(),
        member: "alice".into(),
        points: 30,
        remark: "table 4".into(),
        ..HoldPoints::default()
    };
    let held = ledger.hold_points(hold, ACTOR).await?;
    let capture = CaptureHold {
        program: "cafe".into(),
        hold_id: held.hold_id.to_string(),
        remark: "table 4 paid".into(),
        ..CaptureHold::default() // no amount: the whole hold
    };
    let captured = ledger.capture_hold(capture, ACTOR).await?;
    println!("hold {} captured {} points", captured.hold_id, captured.hold.captured);

    // A rule broken is a typed refusal that changed nothing.
    let too_much = UsePoints {
        program: "cafe".into(),
        member: "alice".into(),
        points: 1_000_000,
        remark: "a yacht".into(),
        ..UsePoints::default()
    };
    match ledger.use_points(too_much, ACTOR).await {
        Err(LedgerError::Rejected(rejection)) => println!("refused ({}): {rejection}", rejection.reason()),
        other => return Err(format!("a use beyond the balance was not refused: {other:?}").into()),
    }

    let alice = ledger.member("cafe", "alice").await?;
    println!("alice: {} points, {} held, level {}", alice.points, alice.held_points, alice.level);

    let query = ActivityQuery { program: "cafe".into(), member: "alice".into(), page_size: 20, ..Default::default() };
    for activity in ledger.activities(query).await?.activities {
        println!(
            "  #{} {:<14} {:>6} -> {:>6}  by {} ({})",
            activity.transaction_id,
            activity.event,
            activity.amount,
            activity.balance_after,
            activity.actor,
            activity.remark
        );
    }

    // The audit: every event's hash and its link to the one before.
    let report = ledger.verify()?;
    if !report.ok {
        return Err(format!("the log does not verify: {}", report.first_mismatch).into());
    }
    println!("verified {} events, head {}", report.events, report.head_hash);

    // Stops the writer after what is queued and writes a checkpoint, so the next
    // open replays nothing.
    ledger.close()?;
    Ok(alice)
}

#[cfg(test)]
mod tests {
    /// The example as `main` runs it, on a new directory: the numbers it prints
    /// are the ones a user sees.
    #[test]
    fn the_example_runs_on_a_new_directory() {
        let dir = std::env::temp_dir().join(format!("ledger-embed-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let alice = runtime.block_on(super::run(&dir)).expect("the example runs");
        // 120 added, 20 used, 30 held and captured.
        assert_eq!((alice.points, alice.held_points), (70, 0));
        // A second run on the same directory finds the program and adds to it.
        let alice = runtime.block_on(super::run(&dir)).expect("the example runs again");
        assert_eq!(alice.points, 140);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
