//! Where `ledgerd`'s log lines go: stderr, written in batches by a thread of its
//! own.
//!
//! A request line per call (SPEC §18) written straight to stderr is a write(2)
//! per call on the call's thread; handed to a writer thread one line at a time
//! (tracing-appender), it is a wake-up of that thread and still a write per line,
//! since the queue is empty again after each. Either cost AddPoints 8–9 µs of
//! server CPU per call, 15 % of it (`benches/observe-ab.sh`). Here a line is
//! formatted on the thread that logs it (tracing-subscriber does that) and
//! copied into a shared buffer; the writer thread wakes every
//! `LOG_FLUSH_INTERVAL`, or sooner when the buffer holds `LOG_FLUSH_BYTES`, and
//! writes all of it at once. A line reaches stderr at most that interval late.
//!
//! What it must not do:
//! - **Make calls wait for the log.** Past `LOG_BYTES_QUEUED_MAX` waiting (a
//!   stderr nobody reads, a full disk under a log file), new lines are dropped
//!   and counted, and the count is written in their place once stderr takes
//!   writes again. The buffer's lock is held for a copy, never for a write.
//! - **Lose what was logged before a stop.** `LogFlusher`'s drop (at the end of
//!   `main`) and `flush` (before a `process::exit`) write out what is waiting.

use ledger_core::limits::{LOG_BYTES_QUEUED_MAX, LOG_FLUSH_BYTES, LOG_FLUSH_INTERVAL_MS};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(LOG_FLUSH_INTERVAL_MS);

/// The buffer the process logs into, for `flush`.
static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Lines dropped since the last write, for the note that takes their place.
    dropped: u64,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A thread that panicked while logging left whole lines or none: the
        // buffer is still fit to write.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what is waiting (with the note of dropped lines first) and writes
    /// it, outside the lock.
    fn write_out(&self, out: &mut impl Write) {
        let (bytes, dropped) = {
            let mut pending = self.lock();
            (std::mem::take(&mut pending.bytes), std::mem::take(&mut pending.dropped))
        };
        if dropped > 0 {
            let _ = writeln!(out, "ledgerd: {dropped} log lines dropped: stderr took writes too slowly");
        }
        // Nowhere to report a failed write to: the log is where errors go.
        let _ = out.write_all(&bytes);
        let _ = out.flush();
    }
}

/// Starts the writer thread; the returned `(MakeWriter, guard)` pair goes to
/// `tracing_subscriber::fmt().with_writer(…)` and to the end of `main`.
pub fn stderr() -> std::io::Result<(LogWriter, LogFlusher)> {
    let shared = SHARED.get_or_init(Arc::default).clone();
    shared.lock().closed = false;
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new().name("ledgerd-log".into()).spawn(move || {
            let mut stderr = std::io::stderr();
            loop {
                let closed = {
                    let pending = shared.lock();
                    let (pending, _) = shared
                        .wake
                        .wait_timeout_while(pending, LOG_FLUSH_INTERVAL, |pending| {
                            pending.bytes.len() < LOG_FLUSH_BYTES && !pending.closed
                        })
                        .unwrap_or_else(PoisonError::into_inner);
                    pending.closed
                };
                shared.write_out(&mut stderr);
                if closed {
                    return;
                }
            }
        })?
    };
    Ok((LogWriter { shared: shared.clone() }, LogFlusher { shared, thread: Some(thread) }))
}

/// Writes out what is waiting now, from the calling thread: before a
/// `process::exit`, which runs no destructors.
pub fn flush() {
    if let Some(shared) = SHARED.get() {
        shared.write_out(&mut std::io::stderr());
    }
}

/// Ends the writer thread once it wrote out what is waiting.
pub struct LogFlusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogFlusher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What tracing-subscriber writes each formatted line to.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        self.clone()
    }
}

impl Write for LogWriter {
    /// tracing-subscriber writes each line whole, in one call, so a line is
    /// kept or dropped whole.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.shared.lock();
        if pending.bytes.len() + line.len() > LOG_BYTES_QUEUED_MAX {
            pending.dropped += 1;
            return Ok(line.len());
        }
        pending.bytes.extend_from_slice(line);
        if pending.bytes.len() >= LOG_FLUSH_BYTES {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::default()
    }

    #[test]
    fn lines_wait_in_order_and_leave_whole() {
        let shared = shared();
        let mut writer = LogWriter { shared: shared.clone() };
        writer.write_all(b"one\n").unwrap();
        writer.write_all(b"two\n").unwrap();
        let mut out = Vec::new();
        shared.write_out(&mut out);
        assert_eq!(out, b"one\ntwo\n");
        shared.write_out(&mut out);
        assert_eq!(out, b"one\ntwo\n", "nothing is written twice");
    }

    #[test]
    fn past_the_bound_lines_are_dropped_whole_and_counted() {
        let shared = shared();
        let mut writer = LogWriter { shared: shared.clone() };
        let line = vec![b'x'; LOG_BYTES_QUEUED_MAX / 2 + 1];
        writer.write_all(&line).unwrap();
        writer.write_all(&line).unwrap();
        writer.write_all(&line).unwrap();
        let mut out = Vec::new();
        shared.write_out(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("ledgerd: 2 log lines dropped"), "{}", &text[..80]);
        assert_eq!(text.matches('x').count(), line.len(), "the first line whole, none of the others");
    }

    #[test]
    fn the_flusher_writes_out_what_waits_when_dropped() {
        // The thread writes to the process's stderr; what is checked is that a
        // drop ends it with the buffer emptied (and does not hang).
        let (mut writer, flusher) = stderr().unwrap();
        writer.write_all(b"log_writer test line\n").unwrap();
        drop(flusher);
        assert!(writer.shared.lock().bytes.is_empty());
    }
}
