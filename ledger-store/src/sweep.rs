//! The expiry sweep's timer: every interval it asks the writer to record
//! `PointsExpired` for lots whose time has come, as the system actor, repeating
//! while a sweep comes back full.

use crate::writer::{Message, Submission};
use ledger_core::command::ExpirePoints;
use ledger_core::limits::EXPIRY_SWEEP_LOTS_MAX;
use ledger_core::{Command, Outcome};
use std::sync::mpsc;
use std::time::Duration;

/// The actor recorded on events the ledger makes by itself.
pub const SYSTEM_ACTOR: &str = "system";

/// Starts the sweeper thread; dropping the returned sender stops it. It records
/// nothing once the integrity check found the log broken: the sweep writes
/// without going through `Ledger::execute`, which refuses the other writes.
pub fn start(
    queue: tokio::sync::mpsc::Sender<Message>,
    interval: Duration,
    integrity: crate::integrity::Handle,
) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("ledger-sweeper".into()).spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
            while integrity.refusal().is_none() && sweep_once(&queue) == Some(EXPIRY_SWEEP_LOTS_MAX) {}
        }
    });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start the expiry sweeper; expired lots are still never counted");
    }
    stop
}

fn sweep_once(queue: &tokio::sync::mpsc::Sender<Message>) -> Option<usize> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let command = Command::ExpirePoints(ExpirePoints { lots_max: EXPIRY_SWEEP_LOTS_MAX });
    let submission = Submission { command, actor: SYSTEM_ACTOR.to_owned(), reply };
    queue.blocking_send(Message::Command(submission)).ok()?;
    match answer.blocking_recv() {
        Ok(Ok(Outcome::PointsExpired { lots })) => Some(lots),
        _ => None,
    }
}
