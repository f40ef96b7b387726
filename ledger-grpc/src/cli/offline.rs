//! `ledger replay`, `ledger verify` and `ledger salvage`: audits and repair of a
//! data directory, opened directly rather than through a server, so that they
//! trust nothing a running server says. sled locks the directory, so ledgerd must
//! be stopped; the store then answers `StoreError::Locked`, whose message says so.
//! The store does the work (`audit`, `salvage`); this module only prints.

use super::output::{Failure, Reply, fields};
use super::time;
use indicatif::{ProgressBar, ProgressStyle};
use ledger_core::{State, Timestamp};
use ledger_store::Until;
use ledger_store::audit::{VerifyReport, head_sequence, replay_dir, verify_dir_sized};
use ledger_store::salvage::{SalvageReport, salvage as salvage_dir};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Events between progress bar updates: verify walks ~500k events/s, and a
/// redraw check on every one would cost more than the walk.
const PROGRESS_STEP_EVENTS: u64 = 1_024;

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The data directory of a stopped ledgerd.
    #[arg(long, value_name = "DIR", default_value = "./ledger-data")]
    pub data_dir: PathBuf,
    /// Replay up to and including this sequence number (the projections are then not compared).
    #[arg(long, value_name = "N", conflicts_with = "until")]
    pub until_seq: Option<u64>,
    /// Replay every event recorded at or before this time (RFC 3339 or Unix seconds; the
    /// projections are then not compared).
    #[arg(long, value_name = "TIME", value_parser = time::parse)]
    pub until: Option<Timestamp>,
    /// Writes every member's balances at that point (points, qualifying amount, level,
    /// each credit, each coupon count) to FILE: CSV, one row per balance, or JSON Lines,
    /// one member per line, when FILE ends in `.jsonl`.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The data directory of a stopped ledgerd. A directory that cannot be written to (a
    /// mounted backup) is copied under $TMPDIR first, and the copy verified. sled opens a
    /// writable one in place and may zero what follows a damaged message: verify a copy to
    /// keep a damaged directory exactly as found.
    #[arg(long, value_name = "DIR", default_value = "./ledger-data")]
    pub data_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct SalvageArgs {
    /// The damaged data directory of a stopped ledgerd; it is copied (next to --out) and left
    /// as it is.
    #[arg(long, value_name = "BAD")]
    pub data_dir: PathBuf,
    /// A new data directory (absent or empty) to write the events that still verify into.
    #[arg(long, value_name = "NEW")]
    pub out: PathBuf,
}

pub fn verify(args: &VerifyArgs) -> Result<Reply, Failure> {
    let mut progress = Progress::hidden_until_sized();
    let report = verify_dir_sized(&args.data_dir, |sequence, head| progress.advance_of(sequence, head));
    progress.finish();
    Ok(verify_reply(&report?))
}

/// The offline verification's reply: the online one's fields, plus the first bad
/// sequence and what the tool did (a copy of a read-only directory).
fn verify_reply(report: &VerifyReport) -> Reply {
    let verdict = if report.ok { "ok".to_owned() } else { format!("MISMATCH: {}", report.first_mismatch) };
    let mut lines =
        vec![("events", report.events.to_string()), ("head_hash", report.head_hash.clone()), ("result", verdict)];
    if let Some(sequence) = report.first_bad_sequence {
        lines.push(("first bad", format!("sequence {sequence}; events 1 through {} verify", report.events)));
    }
    for note in &report.notes {
        lines.push(("note", note.clone()));
    }
    let json = json!({
        "events": report.events,
        "head_hash": report.head_hash,
        "ok": report.ok,
        "first_mismatch": report.first_mismatch,
        "first_bad_sequence": report.first_bad_sequence,
        "notes": report.notes,
    });
    Reply::new(fields(&lines), json).with_exit(u8::from(!report.ok))
}

/// Exit status 0 once NEW is written and verified, lost events or not: the
/// report says what was lost, and `ledger verify` of BAD keeps failing.
pub fn salvage(args: &SalvageArgs) -> Result<Reply, Failure> {
    let mut progress = Progress::hidden_until_sized();
    let report = salvage_dir(&args.data_dir, &args.out, |sequence| progress.advance_of(sequence, 0));
    progress.finish();
    Ok(salvage_reply(&report?, &args.out))
}

fn salvage_reply(report: &SalvageReport, out: &Path) -> Reply {
    let kept = format!("{} events (sequences 1 through {0}), verified in {}", report.kept_events, out.display());
    let lost = match (report.first_bad_sequence, report.dropped_events) {
        (None, _) => "nothing: the whole log verified".to_owned(),
        (Some(sequence), Some(dropped)) => format!(
            "{dropped} events from sequence {} on; the first bad one is sequence {sequence}: {}",
            report.kept_events + 1,
            report.reason
        ),
        (Some(sequence), None) => format!(
            "every event after sequence {} (how many is unknown); the first bad one is sequence {sequence}: {}",
            report.kept_events, report.reason
        ),
    };
    let mut lines = vec![("kept", kept), ("head_hash", report.head_hash.clone()), ("lost", lost)];
    if report.dropped_before_bad > 0 {
        lines.push((
            "whole command",
            format!(
                "{} good events before sequence {} were dropped with it: they are one command (one record), \
                 kept whole or not at all",
                report.dropped_before_bad,
                report.first_bad_sequence.unwrap_or_default()
            ),
        ));
    }
    let tokens = match (report.tokens_carried, report.admin_token_copied) {
        (0, _) => "none carried: ledgerd writes a new admin.token when it first starts on NEW".to_owned(),
        (carried, true) => format!("{carried} carried, and admin.token: operators log in as before"),
        (carried, false) => format!("{carried} carried (operators log in as before); no admin.token to copy"),
    };
    lines.push(("tokens", tokens));
    for note in &report.notes {
        lines.push(("note", note.clone()));
    }
    let json = json!({
        "kept_events": report.kept_events,
        "head_hash": report.head_hash,
        "first_bad_sequence": report.first_bad_sequence,
        "reason": report.reason,
        "dropped_events": report.dropped_events,
        "dropped_before_bad": report.dropped_before_bad,
        "tokens_carried": report.tokens_carried,
        "admin_token_copied": report.admin_token_copied,
        "out": out.display().to_string(),
        "notes": report.notes,
    });
    Reply::new(fields(&lines), json)
}

pub fn replay(args: &ReplayArgs) -> Result<Reply, Failure> {
    let until = match (args.until_seq, args.until) {
        (Some(sequence), _) => Until::Sequence(sequence),
        (None, Some(time)) => Until::Time(time),
        (None, None) => Until::End,
    };
    let mut progress = Progress::start(&args.data_dir, args.until_seq)?;
    let report = replay_dir(&args.data_dir, until, |sequence| progress.advance(sequence));
    progress.finish();
    let report = report?;
    // Points are counted as a read would at the end of the replay: lots expired
    // by then do not count, swept or not.
    let at = match until {
        Until::Time(time) => time,
        Until::End | Until::Sequence(_) => Timestamp::from_chrono(chrono::Utc::now()),
    };
    let totals = Totals::of(&report.state, at);
    let exported = match &args.export {
        Some(path) => Some((path, super::export::export(&report.state, at, path)?)),
        None => None,
    };
    let verdict = match (until, &report.difference) {
        (Until::End, None) => "projections match the replay".to_owned(),
        (Until::End, Some(difference)) => format!("DIFFERENCE: {difference}"),
        (Until::Sequence(_) | Until::Time(_), _) => "partial replay: projections not compared".to_owned(),
    };
    let mut lines = vec![
        ("events replayed", report.events.to_string()),
        ("head hash", report.head_hash.clone()),
        ("programs", totals.programs.to_string()),
        ("members", totals.members.to_string()),
        ("live points", format!("{} (at {at})", totals.live_points)),
    ];
    if let Some((path, members)) = &exported {
        lines.push(("exported", format!("{members} members to {}", path.display())));
    }
    lines.push(("result", verdict));
    let text = fields(&lines);
    let json = json!({
        "events": report.events,
        "head_hash": report.head_hash,
        "programs": totals.programs,
        "members": totals.members,
        "live_points": totals.live_points.to_string(),
        "live_points_at": at.to_string(),
        "compared": until == Until::End,
        "difference": report.difference,
        "exported": exported.as_ref().map(|(path, _)| path.display().to_string()),
        "exported_members": exported.as_ref().map(|(_, members)| members),
    });
    Ok(Reply::new(text, json).with_exit(u8::from(report.difference.is_some())))
}

/// What the replayed state holds, summed over every program.
struct Totals {
    programs: usize,
    members: usize,
    /// u128: a sum of u64 balances cannot overflow it.
    live_points: u128,
}

impl Totals {
    fn of(state: &State, at: Timestamp) -> Totals {
        let mut totals = Totals { programs: state.programs.len(), members: 0, live_points: 0 };
        for program in state.programs.values() {
            totals.members += program.members.len();
            for member in program.members.values() {
                totals.live_points += u128::from(member.live_points(at));
            }
        }
        totals
    }
}

/// A progress bar over the log's sequence numbers, redrawn every
/// [`PROGRESS_STEP_EVENTS`]; hidden when stderr is not a terminal.
struct Progress {
    bar: ProgressBar,
    shown: u64,
}

impl Progress {
    /// Reads the head first: that also fails early, with the store's message, when
    /// ledgerd still holds the directory.
    fn start(path: &Path, until_seq: Option<u64>) -> Result<Progress, Failure> {
        let head = head_sequence(path)?;
        let bar = ProgressBar::new(until_seq.map_or(head, |until| until.min(head)));
        let style =
            ProgressStyle::with_template("{wide_bar} {human_pos}/{human_len} events, {elapsed} elapsed, eta {eta}")
                .expect("the template is valid");
        bar.set_style(style);
        Ok(Progress { bar, shown: 0 })
    }

    /// A bar whose length comes with the first event (`advance_of`): the directory
    /// is opened once, by the store, which may first have to copy it.
    fn hidden_until_sized() -> Progress {
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template("{wide_bar} {human_pos}/{human_len} events, {elapsed} elapsed")
            .expect("the template is valid");
        bar.set_style(style);
        Progress { bar, shown: 0 }
    }

    fn advance_of(&mut self, sequence: u64, head: u64) {
        if head > self.bar.length().unwrap_or(0) {
            self.bar.set_length(head);
        }
        self.advance(sequence);
    }

    fn advance(&mut self, sequence: u64) {
        if sequence >= self.shown + PROGRESS_STEP_EVENTS {
            self.bar.set_position(sequence);
            self.shown = sequence;
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
