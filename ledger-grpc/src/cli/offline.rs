//! `ledger replay` and `ledger verify`: audits of a data directory, opened
//! directly rather than through a server, so that they trust nothing a running
//! server says. sled locks the directory, so ledgerd must be stopped; the store
//! then answers `StoreError::Locked`, whose message says so.

use super::output::{Failure, Reply, fields};
use super::time;
use indicatif::{ProgressBar, ProgressStyle};
use ledger_core::{State, Timestamp};
use ledger_store::Until;
use ledger_store::audit::{head_sequence, replay_dir, verify_dir};
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
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The data directory of a stopped ledgerd.
    #[arg(long, value_name = "DIR", default_value = "./ledger-data")]
    pub data_dir: PathBuf,
}

pub fn verify(args: &VerifyArgs) -> Result<Reply, Failure> {
    let mut progress = Progress::start(&args.data_dir, None)?;
    let report = verify_dir(&args.data_dir, |sequence| progress.advance(sequence));
    progress.finish();
    let report = report?;
    Ok(super::activities::verify_reply(report.events, &report.head_hash, report.ok, &report.first_mismatch))
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
    let verdict = match (until, &report.difference) {
        (Until::End, None) => "projections match the replay".to_owned(),
        (Until::End, Some(difference)) => format!("DIFFERENCE: {difference}"),
        (Until::Sequence(_) | Until::Time(_), _) => "partial replay: projections not compared".to_owned(),
    };
    let text = fields(&[
        ("events replayed", report.events.to_string()),
        ("head hash", report.head_hash.clone()),
        ("programs", totals.programs.to_string()),
        ("members", totals.members.to_string()),
        ("live points", format!("{} (at {at})", totals.live_points)),
        ("result", verdict),
    ]);
    let json = json!({
        "events": report.events,
        "head_hash": report.head_hash,
        "programs": totals.programs,
        "members": totals.members,
        "live_points": totals.live_points.to_string(),
        "live_points_at": at.to_string(),
        "compared": until == Until::End,
        "difference": report.difference,
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
