//! The background chain check: after `Ledger::open`, the whole log from sequence 1
//! up to the head at open is verified on its own thread.
//!
//! Start-up checks only the tail after the last checkpoint (it replays nothing
//! else), so an event edited before the checkpoint would otherwise go unnoticed,
//! and new events would be chained onto a log that no longer verifies. Checking the
//! whole log before serving would make start-up time grow with the log; checking
//! it in the background lets reads and writes start at once and stops writes as
//! soon as a break is found.
//!
//! Losses this module prevents, and how each could happen:
//!
//! - **New events chained onto a broken log.** On a mismatch the check logs an
//!   error naming the sequence, and from then on `Ledger` refuses every write
//!   (the expiry sweep too) with UNAVAILABLE naming the sequence and `ledger
//!   salvage`. Reads keep answering: the state in memory is what was recovered.
//! - **A log shorter than the state.** sled recovers a prefix of its log and may
//!   drop what follows a damaged message without an error, while the checkpoint
//!   still covers it; a log that ends before the head at open is broken too.
//! - **A check that outlives its ledger.** The thread checks a chunk of events at a
//!   time and stops between chunks once the ledger is dropped, which joins it, so
//!   the directory can be opened again as soon as the ledger is gone.

use crate::envelope;
use crate::error::StoreError;
use crate::log::Log;
use crate::replay::{self, Head, Until};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Events checked between looks at the stop flag: a few milliseconds of work, so
/// dropping a ledger waits at most that long for the check.
const CHUNK_EVENTS: u64 = 4_096;

/// The state of the background chain check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The check is running.
    Checking,
    /// Every event up to the head at open verified.
    Verified { events: u64 },
    /// The chain breaks at `sequence`; writes are refused.
    Broken { sequence: u64, reason: String },
}

/// What the ledger asks of the check: its state, and whether writes must stop.
#[derive(Clone)]
pub struct Handle {
    status: Arc<Status>,
}

struct Status {
    integrity: Mutex<Integrity>,
    /// Set with `Broken`; read on every write without taking the lock.
    broken: AtomicBool,
    stop: AtomicBool,
}

impl Handle {
    pub fn integrity(&self) -> Integrity {
        self.status.integrity.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Why writes are refused, once the check found a break.
    pub fn refusal(&self) -> Option<String> {
        if !self.status.broken.load(Ordering::Acquire) {
            return None;
        }
        match self.integrity() {
            Integrity::Broken { sequence, reason } => {
                Some(format!("the log failed its integrity check at sequence {sequence}: {reason}; run ledger salvage"))
            }
            Integrity::Checking | Integrity::Verified { .. } => None,
        }
    }

    fn settle(&self, integrity: Integrity) {
        let broken = matches!(integrity, Integrity::Broken { .. });
        *self.status.integrity.lock().unwrap_or_else(PoisonError::into_inner) = integrity;
        self.status.broken.store(broken, Ordering::Release);
    }
}

/// The running check; dropping it stops and joins the thread.
pub struct Checker {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checker {
    /// Starts checking `log` from sequence 1 through `head`, the head at open.
    pub fn start(log: Log, head: Head) -> Checker {
        let status = Status {
            integrity: Mutex::new(Integrity::Checking),
            broken: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        };
        let handle = Handle { status: Arc::new(status) };
        let running = handle.clone();
        let spawned =
            std::thread::Builder::new().name("ledger-integrity".into()).spawn(move || run(&log, head, &running));
        let thread = match spawned {
            Ok(thread) => Some(thread),
            Err(error) => {
                // Without the check the ledger still serves, as it did before it
                // existed; the operator learns the log is unchecked.
                tracing::error!(%error, "could not start the background chain check: the log is not verified");
                None
            }
        };
        Checker { handle, thread }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// [`Handle::refusal`], without cloning the handle: it is asked on every write.
    pub fn refusal(&self) -> Option<String> {
        self.handle.refusal()
    }

    pub fn integrity(&self) -> Integrity {
        self.handle.integrity()
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.handle.status.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(log: &Log, head: Head, handle: &Handle) {
    let started = std::time::Instant::now();
    let mut reached = Head::GENESIS;
    while reached.sequence < head.sequence {
        if handle.status.stop.load(Ordering::Acquire) {
            return;
        }
        let until = head.sequence.min(reached.sequence.saturating_add(CHUNK_EVENTS));
        match replay::walk(log, reached, Until::Sequence(until), |_, _| {}) {
            Ok(next) if next.sequence == reached.sequence => {
                let reason = format!(
                    "the log ends at sequence {}, but the ledger opened at sequence {}",
                    reached.sequence, head.sequence
                );
                return broken(handle, reached.sequence + 1, reason);
            }
            Ok(next) => reached = next,
            Err(StoreError::Corrupt { sequence, reason }) => return broken(handle, sequence, reason),
            Err(other) => return broken(handle, reached.sequence + 1, other.to_string()),
        }
    }
    if reached.hash != head.hash {
        let reason = format!(
            "event {} hashes to {}, but the ledger opened on head {}",
            head.sequence,
            envelope::hex(&reached.hash),
            envelope::hex(&head.hash)
        );
        return broken(handle, head.sequence, reason);
    }
    tracing::info!(events = head.sequence, elapsed_ms = started.elapsed().as_millis(), "the whole log verified");
    handle.settle(Integrity::Verified { events: head.sequence });
}

fn broken(handle: &Handle, sequence: u64, reason: String) {
    tracing::error!(
        sequence,
        %reason,
        "THE LOG FAILED ITS INTEGRITY CHECK: writes are refused from now on; stop ledgerd and run ledger salvage"
    );
    handle.settle(Integrity::Broken { sequence, reason });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ledger, Options};
    use ledger_core::command::AddPoints;
    use std::time::{Duration, Instant};

    /// Polls until the check settles; a passing test never waits long.
    fn settled(ledger: &Ledger) -> Integrity {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let integrity = ledger.integrity();
            if integrity != Integrity::Checking {
                return integrity;
            }
            assert!(Instant::now() < deadline, "the check never settled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn options() -> Options {
        Options { expiry_sweep_interval: None, ..Options::default() }
    }

    #[test]
    fn integrity_verifies_every_event_up_to_the_head_at_open_and_then_takes_writes() {
        let dir = std::env::temp_dir().join(format!("ledger-integrity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        {
            let ledger = Ledger::open_with(&dir, options()).expect("open");
            assert_eq!(settled(&ledger), Integrity::Verified { events: 0 }, "an empty log verifies");
            runtime.block_on(async {
                ledger.create_program("cafe", "Cafe", "t").await.expect("create");
                // More than one chunk, so the check resumes where a chunk stopped.
                let events = CHUNK_EVENTS + 10;
                let items = (0..events).map(|index| AddPoints {
                    program: "cafe".into(),
                    member: format!("m{index}"),
                    points: 1,
                    remark: "r".into(),
                    ..AddPoints::default()
                });
                for chunk in items.collect::<Vec<_>>().chunks(1_000) {
                    let bulk = ledger_core::command::BulkAddPoints {
                        program: "cafe".into(),
                        items: chunk.to_vec(),
                        atomic: true,
                        malformed: None,
                    };
                    ledger.bulk_add_points(bulk, "t").await.expect("bulk");
                }
            });
            ledger.close().expect("close");
        }
        let ledger = Ledger::open_with(&dir, options()).expect("reopen");
        assert_eq!(settled(&ledger), Integrity::Verified { events: CHUNK_EVENTS + 11 });
        let add = AddPoints {
            program: "cafe".into(),
            member: "m0".into(),
            points: 1,
            remark: "r".into(),
            ..AddPoints::default()
        };
        runtime.block_on(ledger.add_points(add, "t")).expect("a verified ledger takes writes");
        drop(ledger);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
