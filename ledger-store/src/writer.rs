//! Group commit: the one writer thread, the flusher and the checkpointer.
//!
//! Write path, step by step:
//! 1. A caller sends its command on the bounded submission queue and awaits a
//!    oneshot reply.
//! 2. The writer takes the first command and everything else queued (up to
//!    `group_commands_max`), stamps the group with one time, and under the state lock
//!    makes each command's rows resident (`resident`: read from disk when they are
//!    not in memory), decides it and applies its events to the in-memory state.
//!    Only the writer assigns sequences and extends the hash chain. Past
//!    `resident_rows_max` it then evicts rows no checkpoint still has to write.
//! 3. Outside the lock it encodes each command's events into one log record and
//!    inserts each record on its own. Not `apply_batch`: sled writes out and syncs
//!    its current buffer at the start of every batch, which cost two more disk
//!    writes per group. A record is one sled value, so a command is still atomic,
//!    and sled recovers a prefix of its log, so a crash keeps a prefix of the group.
//! 4. It hands the group's replies to the flusher and goes back to step 2: the
//!    next group is decided while this one is being flushed.
//! 5. The flusher takes every group handed over since its last pass and calls
//!    sled's flush; it hands them to the syncer, which takes every group flushed
//!    since its last pass and syncs what sled wrote (see `disk`: sled's flush alone does
//!    not survive a power loss). **A write is durable when that sync returns
//!    `Ok`.** Only then does the syncer advance the durable watermark and send the
//!    replies. Each stage serves, in one call, every group that arrived while its
//!    previous call ran, and the two stages overlap.
//! 6. Every `checkpoint_events` events (or `checkpoint_interval`, or once
//!    `checkpoint_rows_max` rows are dirty, or resident rows are past their bound
//!    and too few are clean), the writer
//!    encodes the rows changed since the last checkpoint and the checkpointer
//!    writes them, once the log is durable up to the cut (see `projections`).
//!
//! If a flush, a sync, a log insert or a checkpoint fails (a full disk, a file
//! system gone read-only, an I/O error), that is a **storage fault**, and nothing
//! after the durable watermark may be trusted. The writes in flight are answered
//! UNAVAILABLE (their outcome is unknown: a retry with the same reference applies
//! once); the writer drains the flusher, syncer and checkpointer, removes the
//! records past the watermark from sled and folds the state back to the watermark
//! from the checkpoint and the log, so reads go on answering from what is durable.
//! Every later write is answered UNAVAILABLE naming the fault, without being
//! decided, until a probe write (every `fault_probe_interval`) flushes and syncs;
//! then writes resume. Losses this prevents: a transient fault made permanent
//! until a restart; reads refused for members no failed write touched; a record
//! nobody was told about made durable under a later reply's sequence.

use crate::activity::{ActivityIndex, Generation};
use crate::disk::Disk;
use crate::durable::Durable;
use crate::envelope::{self, EnvelopeRef, Hash};
use crate::error::LedgerError;
use crate::fold::fold;
use crate::log::{self, Log, RecordBuilder};
use crate::projections::{Dirty, Meta, PROJECTION_FORMAT, Projections};
use crate::resident::{self, Hands, Resident};
use ledger_core::{Command, Context, Outcome, Stamp, State, Timestamp, decide};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub type Reply = oneshot::Sender<Result<Outcome, LedgerError>>;

/// Fills in the event a reversal names (`ReverseTransaction::target`) before its
/// footprint is made resident: the target's member is only known from it.
///
/// Why read the log rather than keep an index of transactions: a transaction id
/// is the sequence of an event, and the log is keyed by sequence, so one bounded
/// read (one record) finds it whatever the member or program; an index would
/// be a row per transaction that every add and use must write, for the few that
/// are ever reversed. What the decision needs besides the event (whether it was
/// reversed, the lots) is on the member, which the footprint then loads.
/// Commands decided earlier in the same group are not in the log yet: they are
/// looked up in `decided` first.
fn resolve_target(
    log: &Log,
    decided: &[(u64, String, Vec<ledger_core::Event>)],
    next_sequence: u64,
    command: &mut Command,
) -> Result<(), crate::error::StoreError> {
    let Command::ReverseTransaction(reverse) = command else { return Ok(()) };
    let sequence = reverse.transaction_id;
    reverse.target = None;
    if sequence == 0 || sequence >= next_sequence {
        return Ok(());
    }
    for (first, _, events) in decided {
        let found = sequence.checked_sub(*first).and_then(|offset| usize::try_from(offset).ok());
        if let Some(event) = found.and_then(|offset| events.get(offset)) {
            reverse.target = Some(event.clone());
            return Ok(());
        }
    }
    reverse.target = log.event(sequence)?.map(|logged| logged.envelope.event);
    Ok(())
}

pub struct Submission {
    pub command: Command,
    pub actor: String,
    pub reply: Reply,
}

// A command is the common message; boxing it would cost an allocation per write.
#[allow(clippy::large_enum_variant)]
pub enum Message {
    Command(Submission),
    /// Checkpoint, flush and stop; the sender learns when that is done.
    Shutdown(std::sync::mpsc::Sender<()>),
    /// Look at the ledger's health: a stage or the checkpointer met a fault
    /// while the writer may be idle, and the reads wait for its rollback.
    Wake,
}

/// What the writer, flusher, checkpointer and readers share.
pub struct Shared {
    /// A storage fault (transient): writes refused until a probe succeeds.
    pub fault: Mutex<Option<String>>,
    pub faulted: AtomicBool,
    /// How many times a fault folded the state back; written under the state lock.
    pub rollbacks: AtomicU64,
    /// The writer's queue, to wake it when a fault comes while it is idle.
    pub wake: tokio::sync::mpsc::WeakSender<Message>,
    /// sled and the sync that makes its flushes durable (`disk`).
    pub disk: Arc<Disk>,
    pub activity: ActivityIndex,
    pub log: Log,
    pub projections: Projections,
    pub state: RwLock<Resident>,
    /// The last sequence applied to `state`, durable or not; written under the state lock.
    pub applied: AtomicU64,
    /// The cut of the last checkpoint written: rows the writer handed over up to
    /// it are on disk, and may leave memory.
    pub checkpoint_written: AtomicU64,
    pub durable: Durable,
    pub failure: Mutex<Option<String>>,
    pub failed: AtomicBool,
    /// Held by the checkpointer while it applies a checkpoint, and by a backup
    /// while it copies the projections tree (`backup`): sled iterators are not
    /// snapshots, so without it a copy could mix two checkpoints. The writer never
    /// takes it: a backup delays checkpoints, never writes.
    pub checkpoint_gate: Mutex<()>,
}

impl Shared {
    pub fn fail(&self, reason: String) {
        tracing::error!(%reason, "the ledger failed: no further writes until restart");
        let mut failure = self.failure.lock().expect("failure lock");
        failure.get_or_insert(reason);
        self.failed.store(true, Ordering::SeqCst);
        self.durable.wake_all();
    }

    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::SeqCst) {
            return None;
        }
        self.failure.lock().expect("failure lock").clone()
    }

    /// A storage fault: every write is refused until the writer's probe succeeds.
    pub fn fault(&self, reason: String) {
        let mut fault = self.fault.lock().expect("fault lock");
        if fault.is_none() {
            tracing::error!(%reason, "storage fault: writes are refused until a probe write succeeds; reads go on");
            *fault = Some(reason);
        }
        self.faulted.store(true, Ordering::SeqCst);
        self.durable.wake_all();
        if let Some(queue) = self.wake.upgrade() {
            // A full queue wakes the writer anyway.
            let _ = queue.try_send(Message::Wake);
        }
    }

    /// The fault writes are refused for, if any.
    pub fn fault_reason(&self) -> Option<String> {
        if !self.faulted.load(Ordering::SeqCst) {
            return None;
        }
        self.fault.lock().expect("fault lock").clone()
    }

    /// Whether waits for durability should give up: a failure or a fault means
    /// what they wait for may never become durable.
    pub fn stalled(&self) -> bool {
        self.failed.load(Ordering::SeqCst) || self.faulted.load(Ordering::SeqCst)
    }

    fn clear_fault(&self) {
        let mut fault = self.fault.lock().expect("fault lock");
        if let Some(reason) = fault.take() {
            tracing::warn!(%reason, "storage fault cleared: a probe write is durable, writes resume");
        }
        self.faulted.store(false, Ordering::SeqCst);
    }
}

#[derive(Clone, Debug)]
pub struct Tuning {
    /// Commands one group takes at most, so that one group never delays the
    /// replies of its first command for long.
    pub group_commands_max: usize,
    pub checkpoint_events: u64,
    pub checkpoint_interval: Duration,
    /// How often a faulted writer tries a probe write.
    pub fault_probe_interval: Duration,
    /// Free bytes below which writes are refused as a storage fault.
    pub disk_free_min_bytes: u64,
    /// Dirty rows at which a checkpoint is due whatever the events
    /// (`Options::checkpoint_rows_max`).
    pub checkpoint_rows_max: usize,
    /// Members and references kept in memory at most (`resident`): past it,
    /// clean rows are evicted, and when too few are clean a checkpoint is due.
    pub resident_rows_max: usize,
}

struct FlushJob {
    replies: Vec<(Reply, Result<Outcome, LedgerError>)>,
    last_sequence: u64,
    /// Told when the last stage is done with this job: how the writer learns
    /// that everything it handed over before is answered.
    barrier: Option<mpsc::Sender<()>>,
}

enum CheckpointJob {
    Write {
        batch: sled::Batch,
        /// Rows in `batch`.
        rows: usize,
        activity: Arc<Generation>,
        cut: u64,
    },
    /// Told when every job before it is done.
    Barrier(mpsc::Sender<()>),
}

/// What a probe write found.
enum Probe {
    Durable,
    /// The fault has not cleared (no room yet, or the seam is still armed).
    NotYet,
    /// The disk or sled failed for the rest of the process.
    Broken(String),
}

/// How a faulted writer's wait ended.
enum AfterFault {
    Resumed,
    Stop(Option<std::sync::mpsc::Sender<()>>),
}

/// How often the writer looks at the free space of the disk.
const SPACE_CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// How often a faulted writer looks at its queue.
const FAULT_POLL: Duration = Duration::from_millis(5);

/// The row a probe write rewrites (the projections' loader ignores it).
const PROBE_KEY: &[u8] = b"#probe";

pub struct Writer {
    shared: Arc<Shared>,
    tuning: Tuning,
    next_sequence: u64,
    head_hash: Hash,
    last_at: Timestamp,
    dirty: Dirty,
    /// The checkpoints handed to the checkpointer and not yet written, with the
    /// rows each is to write: those rows stay in memory until it is written.
    in_flight: VecDeque<(u64, Dirty)>,
    /// Resident rows are past `resident_rows_max` and too few were clean.
    checkpoint_for_room: bool,
    hands: Hands,
    events_since_checkpoint: u64,
    last_checkpoint: Instant,
    last_space_check: Instant,
    flusher: mpsc::Sender<FlushJob>,
    checkpointer: mpsc::Sender<CheckpointJob>,
    metrics: WriterMetrics,
}

/// The writer's series (SPEC §18, docs/OPERATIONS.md), registered once so that
/// a group pays an atomic update each, no lookup or allocation. Without a
/// recorder installed (no `ledgerd --metrics`) they are no-ops.
struct WriterMetrics {
    group_commands: metrics::Histogram,
    log_bytes: metrics::Counter,
    log_sequence: metrics::Gauge,
    checkpoint_lag: metrics::Gauge,
}

impl WriterMetrics {
    fn register() -> WriterMetrics {
        WriterMetrics {
            group_commands: metrics::histogram!("ledger_commit_group_commands"),
            log_bytes: metrics::counter!("ledger_log_appended_bytes_total"),
            log_sequence: metrics::gauge!("ledger_log_sequence"),
            checkpoint_lag: metrics::gauge!("ledger_checkpoint_lag_events"),
        }
    }
}

/// Starts the writer, flusher and checkpointer threads; the returned handle ends
/// when the writer has stopped and everything it wrote is flushed.
pub fn start(
    shared: Arc<Shared>,
    tuning: Tuning,
    head: (u64, Hash, Timestamp),
    dirty: Dirty,
    queue: tokio::sync::mpsc::Receiver<Message>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (flush_tx, flush_rx) = mpsc::channel();
    let (checkpoint_tx, checkpoint_rx) = mpsc::channel();
    let (sync_tx, sync_rx) = mpsc::channel();
    let syncer_shared = shared.clone();
    let syncer = std::thread::Builder::new().name("ledger-syncer".into()).spawn(move || {
        stage(&syncer_shared, &sync_rx, || syncer_shared.disk.sync().map(|_| ()), None, "ledger_sync_seconds");
    })?;
    let flusher_shared = shared.clone();
    let flusher = std::thread::Builder::new().name("ledger-flusher".into()).spawn(move || {
        let flush = || flusher_shared.disk.flush_sled();
        // Ends when the writer drops its sender; dropping `sync_tx` then ends the syncer.
        stage(&flusher_shared, &flush_rx, flush, Some(&sync_tx), "ledger_flush_seconds");
    })?;
    let checkpointer_shared = shared.clone();
    let checkpointer = std::thread::Builder::new()
        .name("ledger-checkpointer".into())
        .spawn(move || checkpoint_loop(&checkpointer_shared, &checkpoint_rx))?;
    let writer = Writer {
        shared,
        tuning,
        next_sequence: head.0 + 1,
        head_hash: head.1,
        last_at: head.2,
        in_flight: VecDeque::new(),
        dirty,
        checkpoint_for_room: false,
        hands: Hands::default(),
        events_since_checkpoint: 0,
        last_checkpoint: Instant::now(),
        last_space_check: Instant::now(),
        flusher: flush_tx,
        checkpointer: checkpoint_tx,
        metrics: WriterMetrics::register(),
    };
    std::thread::Builder::new().name("ledger-writer".into()).spawn(move || {
        let done = writer.run(queue);
        // The writer dropped its senders: the flusher and checkpointer drain and end.
        flusher.join().expect("flusher thread");
        syncer.join().expect("syncer thread");
        checkpointer.join().expect("checkpointer thread");
        if let Some(done) = done {
            let _ = done.send(());
        }
    })
}

/// The time a group is recorded at: the wall clock, but never before the last
/// group, so that recorded times never go back even if the clock does.
fn tick(last: Timestamp) -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX));
    Timestamp(now.max(last.0))
}

impl Writer {
    fn run(mut self, mut queue: tokio::sync::mpsc::Receiver<Message>) -> Option<std::sync::mpsc::Sender<()>> {
        let mut shutdown = None;
        // A ledger opened on a disk already below its reserve says so at once.
        if let Some(reason) = self.shared.disk.short_of_space(self.tuning.disk_free_min_bytes) {
            self.shared.fault(reason);
        }
        while shutdown.is_none() {
            if self.shared.faulted.load(Ordering::SeqCst) {
                match self.ride_out_fault(&mut queue) {
                    AfterFault::Resumed => continue,
                    AfterFault::Stop(done) => {
                        shutdown = done;
                        break;
                    }
                }
            }
            let Some(first) = queue.blocking_recv() else { break };
            let mut group = Vec::new();
            match first {
                Message::Command(submission) => group.push(submission),
                Message::Shutdown(done) => shutdown = Some(done),
                Message::Wake => {}
            }
            while shutdown.is_none() && group.len() < self.tuning.group_commands_max {
                match queue.try_recv() {
                    Ok(Message::Command(submission)) => group.push(submission),
                    Ok(Message::Shutdown(done)) => shutdown = Some(done),
                    Ok(Message::Wake) => {}
                    Err(_) => break,
                }
            }
            if group.is_empty() {
                let shared = self.shared.clone();
                self.keep_resident_bounded(&mut shared.state.write().expect("state lock"));
            } else {
                self.commit(group);
            }
            if self.checkpoint_due() {
                self.checkpoint();
            }
        }
        if !self.dirty.is_empty() && !self.shared.stalled() {
            self.checkpoint();
        }
        shutdown
    }

    /// Answers every command UNAVAILABLE while the fault lasts, after folding the
    /// state back to what is durable; probes the disk every
    /// `fault_probe_interval` and returns once a probe write is durable (or the
    /// ledger is told to stop, which it then does at once).
    fn ride_out_fault(&mut self, queue: &mut tokio::sync::mpsc::Receiver<Message>) -> AfterFault {
        if let Err(reason) = self.drain().and_then(|()| self.roll_back_to_durable()) {
            // sled 0.34 keeps the first I/O error it meets and answers it to every
            // later write (and often read) until it is reopened, and dropping it
            // then blocks for good in its flush: only a restart clears that. The
            // disk reserve (`disk_free_min_bytes`) keeps a full disk from reaching sled.
            self.shared.fail(format!("{reason}; sled refuses writes after an I/O error of its own: restart ledgerd"));
        } else if let Some(reason) = self.shared.disk.broken() {
            self.shared.fail(format!("{reason}; a failed flush or sync is never retried: restart ledgerd"));
        }
        let mut last_probe = Instant::now();
        loop {
            match queue.try_recv() {
                Ok(Message::Command(submission)) => {
                    let reason = self.shared.failure().or_else(|| self.shared.fault_reason()).unwrap_or_default();
                    let _ = submission.reply.send(Err(LedgerError::Unavailable(reason)));
                    continue;
                }
                Ok(Message::Shutdown(done)) => return AfterFault::Stop(Some(done)),
                Ok(Message::Wake) => continue,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return AfterFault::Stop(None),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {}
            }
            if self.shared.failure().is_none() && last_probe.elapsed() >= self.tuning.fault_probe_interval {
                last_probe = Instant::now();
                match self.probe() {
                    Probe::Durable => {
                        self.shared.clear_fault();
                        return AfterFault::Resumed;
                    }
                    Probe::NotYet => {}
                    Probe::Broken(reason) => self.shared.fail(format!("{reason}: restart ledgerd")),
                }
            }
            std::thread::sleep(FAULT_POLL);
        }
    }

    /// Waits until the flusher, syncer and checkpointer have answered everything
    /// handed to them (with a fault, they answer without writing).
    fn drain(&self) -> Result<(), String> {
        let (done, finished) = mpsc::channel();
        let job = FlushJob { replies: Vec::new(), last_sequence: 0, barrier: Some(done) };
        self.flusher.send(job).map_err(|_| "the flusher stopped".to_owned())?;
        finished.recv().map_err(|_| "the syncer stopped".to_owned())?;
        let (done, finished) = mpsc::channel();
        self.checkpointer.send(CheckpointJob::Barrier(done)).map_err(|_| "the checkpointer stopped".to_owned())?;
        finished.recv().map_err(|_| "the checkpointer stopped".to_owned())
    }

    /// Folds the state back to the durable watermark: the records after it leave
    /// sled (so that no later flush makes them durable under sequences the writer
    /// gives out again), and the state, activities and dirty rows are recovered
    /// from the checkpoint and the log up to it, as a restart would.
    fn roll_back_to_durable(&mut self) -> Result<(), String> {
        let durable = self.shared.durable.get();
        let tree = self.shared.log.tree();
        // One batch, so that a crash keeps all of the removals or none: removed
        // one by one, a crash could keep a later record without an earlier one.
        let mut removals = sled::Batch::default();
        for key in tree.range(log::key(durable + 1)..).keys() {
            removals.remove(key.map_err(|error| format!("reading records past the durable sequence failed: {error}"))?);
        }
        tree.apply_batch(removals).map_err(|error| {
            // sled refuses writes after an I/O error of its own until it is
            // reopened: nothing more can be written in this process.
            format!("removing records past the durable sequence {durable} failed: {error}")
        })?;
        // The stages are drained and the writer is here: nothing else changes
        // the log or the projections while the state is recovered.
        let recovered = crate::ledger::recover(&self.shared.log, &self.shared.projections)
            .map_err(|error| format!("recovering the durable state failed: {error}"))?;
        assert_eq!(recovered.head.sequence, durable, "the log ends at the durable sequence after the rollback");
        let mut state = self.shared.state.write().expect("state lock");
        *state = recovered.state;
        self.shared.activity.reset(recovered.activity);
        self.dirty = recovered.dirty;
        // Checkpoints in flight were dropped; the recovered state holds no row
        // they were to write.
        self.in_flight.clear();
        self.checkpoint_for_room = false;
        self.next_sequence = durable + 1;
        self.head_hash = recovered.head.hash;
        self.events_since_checkpoint = 0;
        self.shared.applied.store(durable, Ordering::SeqCst);
        // A read that saw the state before this must not be answered once the
        // sequences it waited for are given out again.
        self.shared.rollbacks.fetch_add(1, Ordering::SeqCst);
        drop(state);
        tracing::warn!(durable, "storage fault: the state is back at the durable sequence; reads answer from it");
        Ok(())
    }

    /// Why the disk is too full to write on, looked at every `SPACE_CHECK_INTERVAL`:
    /// refusing writes before sled meets ENOSPC keeps the fault one that clears.
    fn short_of_space(&mut self) -> Option<String> {
        if self.last_space_check.elapsed() < SPACE_CHECK_INTERVAL {
            return None;
        }
        self.last_space_check = Instant::now();
        self.shared.disk.short_of_space(self.tuning.disk_free_min_bytes)
    }

    /// Writes a probe row and makes it durable, once there is room for it.
    fn probe(&self) -> Probe {
        if self.shared.disk.short_of_space(self.tuning.disk_free_min_bytes).is_some() {
            return Probe::NotYet;
        }
        let written = self.shared.projections.tree().insert(PROBE_KEY, &self.next_sequence.to_be_bytes());
        if let Err(error) = written {
            return Probe::Broken(format!("sled refused a probe write: {error}"));
        }
        match (self.shared.disk.flush(), self.shared.disk.broken()) {
            (Ok(()), _) => Probe::Durable,
            (Err(_), Some(reason)) => Probe::Broken(reason),
            (Err(_), None) => Probe::NotYet,
        }
    }

    fn commit(&mut self, group: Vec<Submission>) {
        if let Some(reason) = self.short_of_space() {
            self.shared.fault(reason);
        }
        if let Some(reason) = self.shared.failure().or_else(|| self.shared.fault_reason()) {
            for submission in group {
                let _ = submission.reply.send(Err(LedgerError::Unavailable(reason.clone())));
            }
            return;
        }
        let at = tick(self.last_at);
        self.last_at = at;
        self.metrics.group_commands.record(group.len() as f64);
        let mut decided = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        {
            let shared = self.shared.clone();
            let mut state = shared.state.write().expect("state lock");
            // Taken after the state lock, like every reader that takes both.
            let mut activity = shared.activity.current();
            for mut submission in group {
                let read = resolve_target(&self.shared.log, &decided, self.next_sequence, &mut submission.command)
                    .and_then(|()| {
                        resident::ensure_command(&mut state, &self.shared.projections, &submission.command, at)
                    });
                if let Err(error) = read {
                    let reason = format!("reading the projections failed: {error}");
                    self.shared.fault(reason.clone());
                    replies.push((submission.reply, Err(LedgerError::Unavailable(reason))));
                    continue;
                }
                let context = Context { at, next_sequence: self.next_sequence };
                match decide(&state, &submission.command, context) {
                    Err(rejection) => replies.push((submission.reply, Err(rejection.into()))),
                    Ok(decision) => {
                        for event in &decision.events {
                            let stamp = Stamp { sequence: self.next_sequence, recorded_at: at };
                            fold(&mut state, stamp, event, Some(&mut self.dirty), &mut activity);
                            self.next_sequence += 1;
                        }
                        replies.push((submission.reply, Ok(decision.outcome)));
                        if !decision.events.is_empty() {
                            decided.push((context.next_sequence, submission.actor, decision.events));
                        }
                    }
                }
            }
            drop(activity);
            self.shared.applied.store(self.next_sequence - 1, Ordering::SeqCst);
            self.keep_resident_bounded(&mut state);
        }
        for (first, actor, events) in decided {
            let count = u64::try_from(events.len()).expect("len fits u64");
            self.events_since_checkpoint += count;
            let record = self.encode_record(first, at, &actor, &events);
            self.metrics.log_bytes.increment(u64::try_from(record.len()).expect("len fits u64"));
            if let Err(error) = self.shared.log.tree().insert(log::key(first), record) {
                self.shared.fault(format!("appending to the log failed: {error}"));
                break;
            }
        }
        self.metrics.log_sequence.set(self.next_sequence.saturating_sub(1) as f64);
        self.metrics.checkpoint_lag.set(self.events_since_checkpoint as f64);
        let job = FlushJob { replies, last_sequence: self.next_sequence - 1, barrier: None };
        if self.flusher.send(job).is_err() {
            self.shared.fail("the flusher stopped".to_owned());
        }
    }

    fn encode_record(&mut self, first: u64, at: Timestamp, actor: &str, events: &[ledger_core::Event]) -> Vec<u8> {
        let mut record = RecordBuilder::new(events.len());
        // UUID v7 from the recorded time and the thread's userspace generator:
        // `Uuid::now_v7` makes a getrandom system call per event.
        let millis = u64::try_from(at.micros().div_euclid(1_000)).unwrap_or(0);
        for (sequence, event) in (first..).zip(events) {
            let envelope = EnvelopeRef {
                format: envelope::EVENT_FORMAT,
                sequence,
                event_id: uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid(),
                recorded_at: at,
                actor,
                prev_hash: &self.head_hash,
                event,
            };
            self.head_hash = record.push(&envelope);
        }
        let bytes = record.finish();
        // What is written must read back as what was decided: a format that
        // cannot decode would only show when an auditor replays the log.
        #[cfg(debug_assertions)]
        {
            let decoded = log::decode_record(first, &bytes).expect("records read back");
            for (stored, event) in decoded.iter().zip(events) {
                let envelope = envelope::decode(&stored.bytes).expect("events read back");
                assert_eq!(&envelope.event, event, "events read back as written");
                assert!(stored.hash_matches());
            }
        }
        bytes
    }

    /// Evicts clean rows once more than `resident_rows_max` are resident: rows
    /// that are neither dirty nor to be written by a checkpoint in flight (not on
    /// disk yet, they would read back stale). Asks for a checkpoint when too few
    /// are clean and none is in flight.
    fn keep_resident_bounded(&mut self, state: &mut State) {
        let written = self.shared.checkpoint_written.load(Ordering::SeqCst);
        while self.in_flight.front().is_some_and(|(cut, _)| *cut <= written) {
            self.in_flight.pop_front();
        }
        let rows_max = self.tuning.resident_rows_max;
        if resident::resident_rows(state) <= rows_max {
            return;
        }
        // Down to three quarters, so that eviction is not due again at once.
        let target = rows_max - rows_max / 4;
        let mut pinned: Vec<&Dirty> = self.in_flight.iter().map(|(_, dirty)| dirty).collect();
        pinned.push(&self.dirty);
        resident::evict(state, &pinned, &mut self.hands, target);
        self.checkpoint_for_room = resident::resident_rows(state) > target && self.in_flight.is_empty();
    }

    fn checkpoint_due(&self) -> bool {
        if self.dirty.is_empty() {
            return false;
        }
        self.checkpoint_for_room
            || self.events_since_checkpoint >= self.tuning.checkpoint_events
            || self.dirty.len() >= self.tuning.checkpoint_rows_max
            || self.last_checkpoint.elapsed() >= self.tuning.checkpoint_interval
    }

    fn checkpoint(&mut self) {
        let cut = self.next_sequence - 1;
        let meta = Meta {
            format: PROJECTION_FORMAT,
            applied_sequence: cut,
            head_hash: self.head_hash,
            recorded_at: self.last_at,
        };
        let batch = {
            let state = self.shared.state.read().expect("state lock");
            Projections::batch(&state, &self.dirty, meta)
        };
        // The activity entries are encoded by the checkpointer, off the writer's path.
        let activity = self.shared.activity.seal(cut);
        let rows = self.dirty.len() + 1;
        tracing::debug!(rows, cut, "checkpoint");
        self.in_flight.push_back((cut, std::mem::take(&mut self.dirty)));
        self.checkpoint_for_room = false;
        self.events_since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        let job = CheckpointJob::Write { batch, rows, activity, cut };
        if self.checkpointer.send(job).is_err() {
            self.shared.fail("the checkpointer stopped".to_owned());
        }
    }
}

/// One stage of making groups durable: takes every group handed over since its
/// last pass, does `work` once for all of them, and hands them on to `next` (or,
/// at the last stage, advances the durable watermark and replies). The flusher
/// (sled's flush) and the syncer (`Disk::sync`) are two such stages, so that the
/// sled flush of one batch of groups overlaps the sync of the batch before it;
/// the sync after a flush always covers it, because it starts after it ended.
fn stage(
    shared: &Shared,
    jobs: &mpsc::Receiver<FlushJob>,
    work: impl Fn() -> Result<(), String>,
    next: Option<&mpsc::Sender<FlushJob>>,
    seconds_metric: &'static str,
) {
    // Registered once: a static name needs no allocation, and the handle no
    // registry lookup per batch.
    let seconds = metrics::histogram!(seconds_metric);
    while let Ok(first) = jobs.recv() {
        let mut taken = vec![first];
        taken.extend(jobs.try_iter());
        let last_sequence = taken.iter().map(|job| job.last_sequence).max().unwrap_or(0);
        let done = match shared.failure().or_else(|| shared.fault_reason()) {
            Some(reason) => Err(reason),
            None => {
                let started = Instant::now();
                let done = work();
                seconds.record(started.elapsed().as_secs_f64());
                done.inspect_err(|reason| shared.fault(reason.clone()))
            }
        };
        let barrier = taken.iter_mut().filter_map(|job| job.barrier.take()).next_back();
        // A failed batch is answered here and goes no further: nothing of it
        // becomes durable as far as any caller can tell.
        let (replies, last_sequence) = match done {
            Ok(()) => (taken.into_iter().flat_map(|job| job.replies).collect(), last_sequence),
            Err(reason) => {
                for (reply, _) in taken.into_iter().flat_map(|job| job.replies) {
                    let _ = reply.send(Err(LedgerError::Unavailable(reason.clone())));
                }
                (Vec::new(), 0)
            }
        };
        match next {
            // The barrier goes on to the last stage even after a fault: the
            // writer's drain must not return while a later stage is still working
            // on (and may still acknowledge) an earlier batch.
            Some(next) => {
                if next.send(FlushJob { replies, last_sequence, barrier }).is_err() {
                    shared.fail("the syncer stopped".to_owned());
                }
            }
            None => {
                shared.durable.advance(last_sequence);
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
                if let Some(barrier) = barrier {
                    let _ = barrier.send(());
                }
            }
        }
    }
}

fn checkpoint_loop(shared: &Shared, jobs: &mpsc::Receiver<CheckpointJob>) {
    while let Ok(job) = jobs.recv() {
        let (mut batch, mut rows, activity, cut) = match job {
            CheckpointJob::Write { batch, rows, activity, cut } => (batch, rows, activity, cut),
            CheckpointJob::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
        };
        for (key, value) in activity.rows() {
            batch.insert(key, value);
            rows += 1;
        }
        shared.durable.wait_until(cut, || shared.stalled());
        if shared.stalled() {
            // Dropped: after a fault the writer recovers its rows from the log.
            tracing::warn!(cut, "checkpoint dropped: storage fault");
            continue;
        }
        let gate = shared.checkpoint_gate.lock().expect("checkpoint gate");
        let applied = shared.projections.apply(batch).map_err(|error| error.to_string());
        drop(gate);
        let written = applied.and_then(|()| shared.disk.flush());
        crate::disk::collect_sled_garbage(rows / 16 + 64);
        if let Err(error) = written {
            shared.fault(format!("writing a checkpoint failed: {error}"));
            continue;
        }
        shared.activity.written(cut);
        shared.checkpoint_written.store(cut, Ordering::SeqCst);
        // The rows it wrote may leave memory now: an idle writer learns it here.
        if let Some(queue) = shared.wake.upgrade() {
            let _ = queue.try_send(Message::Wake);
        }
    }
}
