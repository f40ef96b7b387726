//! The durable watermark: the last sequence a successful flush covered. Whatever
//! lies above it never happened as far as any caller can tell: no reply, read or
//! feed shows it until the watermark passes it.

use std::sync::{Condvar, Mutex};
use tokio::sync::watch;

pub struct Durable {
    sequence: Mutex<u64>,
    changed: Condvar,
    /// For async waiters (reads, the event feed).
    watch: watch::Sender<u64>,
}

impl Durable {
    pub fn new(sequence: u64) -> Durable {
        Durable { sequence: Mutex::new(sequence), changed: Condvar::new(), watch: watch::Sender::new(sequence) }
    }

    pub fn get(&self) -> u64 {
        *self.sequence.lock().expect("durable lock")
    }

    pub fn advance(&self, sequence: u64) {
        let mut current = self.sequence.lock().expect("durable lock");
        if sequence > *current {
            *current = sequence;
            self.watch.send_replace(sequence);
            self.changed.notify_all();
        }
    }

    /// Blocks a thread until `sequence` is durable or `give_up` says it may never be.
    pub fn wait_until(&self, sequence: u64, give_up: impl Fn() -> bool) {
        let current = self.sequence.lock().expect("durable lock");
        let _unused =
            self.changed.wait_while(current, |current| *current < sequence && !give_up()).expect("durable lock");
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.watch.subscribe()
    }

    /// Wakes every waiter, e.g. when the ledger fails and nothing will become durable.
    pub fn wake_all(&self) {
        self.watch.send_modify(|_| {});
        let _guard = self.sequence.lock().expect("durable lock");
        self.changed.notify_all();
    }
}
