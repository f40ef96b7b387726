//! `Ledger`: the library API. Open a data directory, send commands, read
//! projections; the same operations the gRPC server offers, in-process.

use crate::activities::{self, Activity, ActivityPage, ActivityQuery};
use crate::activity::{self, ActivityIndex, Generation};
use crate::disk::{Disk, Faults};
use crate::durable::Durable;
use crate::error::{LedgerError, StoreError};
use crate::fold::fold;
use crate::integrity::{self, Integrity};
use crate::log::{Log, LoggedEvent};
use crate::projections::{Dirty, Meta, Projections};
use crate::replay::{self, Head, Until};
use crate::resident::{self, Resident};
use crate::tokens::Tokens;
use crate::views::{self, CouponView, MemberPage, MemberView, VoucherPage, VoucherView};
use crate::writer::{self, Message, Shared, Submission, Tuning};
use ledger_core::command::brand_program;
use ledger_core::command::{
    AddPoints, BulkAddPoints, BulkResult, BulkUsePoints, CreateProgram, PointsReceipt, UsePoints,
};
use ledger_core::command::{CaptureHold, HoldCredits, HoldPoints, VoidHold};
use ledger_core::holds::{self, HoldView};
use ledger_core::tiers::{self, CardView};
use ledger_core::vouchers::ReportQuery;
use ledger_core::{Command, EventBody, FieldPath, Outcome, Rejection, State, limits};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The default disk reserve: room for a large checkpoint (100,000 rows) and
/// sled's next segments.
pub const DISK_FREE_MIN_BYTES_DEFAULT: u64 = 128 * 1024 * 1024;

/// Knobs of the store. The defaults suit a server; tests shrink them so that the
/// checkpoint and batching paths run all the time.
#[derive(Clone, Debug)]
pub struct Options {
    /// Commands waiting for the writer at most; callers wait beyond that.
    pub queue_max: usize,
    /// Commands one commit group takes at most.
    pub group_commands_max: usize,
    /// Events between checkpoints of the projections: bounds the log tail that
    /// start-up replays after a crash (935,000 events replayed in 2.3 s on a
    /// 2-core VM, so the default keeps it near 1 s). Fewer is costlier than it
    /// looks: a checkpoint is one `apply_batch`, which holds sled's process-wide
    /// write lock, so log inserts and flushes wait for all of it (~150 ms for
    /// 10,000 members), and its size follows the rows touched, not the events.
    pub checkpoint_events: u64,
    /// Dirty rows (members, references, vouchers, expiries, programs) at which a
    /// checkpoint is due whatever the events: a checkpoint is one `apply_batch`,
    /// atomic, which holds sled's process-wide write lock for all its rows (about
    /// 15 µs each) and leaves copies of the nodes it changed for sled's epoch
    /// collector, so this bounds both the stall and a checkpoint's memory.
    pub checkpoint_rows_max: usize,
    /// Time between checkpoints when writes are few.
    pub checkpoint_interval: Duration,
    /// How often the expiry sweep records `PointsExpired` events; `None` turns it off.
    pub expiry_sweep_interval: Option<Duration>,
    /// sled's page cache.
    pub cache_capacity_bytes: u64,
    /// Members and references kept in memory at most; the rest are read from
    /// their rows when a command or read needs them (`resident`). At least 1.
    pub resident_rows_max: usize,
    /// After a storage fault, how often the writer tries a probe write to learn
    /// whether the disk takes writes again.
    pub fault_probe_interval: Duration,
    /// Free bytes on the data directory's file system below which writes are
    /// refused as a storage fault (and resume once there is room again): sled
    /// must never meet a full disk itself, since it then refuses every write until
    /// a restart. 0 turns the reserve off.
    pub disk_free_min_bytes: u64,
    /// The fault seam (`disk::Faults`): unarmed unless a test or
    /// `ledgerd --fault-file` arms it.
    pub faults: Faults,
    /// Events a member as of a time folds at most past its latest snapshot
    /// (`history`): a fold leaves a snapshot every this many events.
    pub history_snapshot_events: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            queue_max: limits::QUEUE_COMMANDS_MAX,
            group_commands_max: limits::GROUP_COMMANDS_MAX,
            checkpoint_events: limits::CHECKPOINT_EVENTS,
            checkpoint_rows_max: limits::CHECKPOINT_ROWS_MAX,
            checkpoint_interval: Duration::from_secs(5),
            expiry_sweep_interval: Some(Duration::from_secs(60)),
            cache_capacity_bytes: Options::sled_cache_bytes(CACHE_MIB_DEFAULT),
            resident_rows_max: Options::resident_rows(CACHE_MIB_DEFAULT),
            fault_probe_interval: Duration::from_secs(1),
            disk_free_min_bytes: DISK_FREE_MIN_BYTES_DEFAULT,
            faults: Faults::default(),
            history_snapshot_events: limits::HISTORY_SNAPSHOT_EVENTS,
        }
    }
}

/// What `ledgerd --cache-mib` is when not given.
pub const CACHE_MIB_DEFAULT: u64 = 256;

/// What one resident member or reference costs in resident memory, measured:
/// a member ~430 B and a reference ~270 B of heap (its key, the row, its share of
/// the map's nodes), plus the dirty set's copy of its key and the allocator's
/// rounding (1 M members with references under a load).
pub const RESIDENT_ROW_BYTES: u64 = 600;

impl Options {
    /// The options with everything the ledger caches bounded by `mib` MiB: an
    /// eighth to sled's page cache (whose nodes take two to three times their
    /// size on disk in memory), a quarter kept for what a checkpoint holds while
    /// it is written (sled copies each node a batch changes and frees the copies
    /// only after the batch), and the rest to resident rows.
    pub fn with_cache_mib(mib: u64) -> Options {
        Options {
            cache_capacity_bytes: Options::sled_cache_bytes(mib),
            resident_rows_max: Options::resident_rows(mib),
            ..Options::default()
        }
    }

    fn sled_cache_bytes(mib: u64) -> u64 {
        mib * 1024 * 1024 / 8
    }

    fn resident_rows(mib: u64) -> usize {
        let bytes = mib * 1024 * 1024 - Options::sled_cache_bytes(mib) - mib * 1024 * 1024 / 4;
        usize::try_from(bytes / RESIDENT_ROW_BYTES).unwrap_or(usize::MAX).max(1)
    }
}

/// Whether a ledger takes writes (`Ledger::health`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Writable,
    /// A storage fault: writes are refused until a probe write is durable.
    Faulted(String),
    /// Writes are refused until a restart.
    Failed(String),
}

/// An open ledger. Cheap to clone: clones share one writer. The crate docs say
/// what it needs (no runtime of its own), what `actor` is, and show every area.
///
/// ```
/// use ledger_core::command::{AddPoints, UsePoints};
/// use ledger_store::Ledger;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let dir = std::env::temp_dir().join(format!("ledger-doc-{}", std::process::id()));
/// #   let _ = std::fs::remove_dir_all(&dir);
///     let ledger = Ledger::open(&dir)?;
///     // "admin" and "till-1" are actors: who asked, recorded in each event for audits.
///     ledger.create_program("cafe", "Corner Cafe", "admin").await?;
///
///     let add = AddPoints { program: "cafe".into(), member: "alice".into(), points: 120,
///                           remark: "latte".into(), ..AddPoints::default() };
///     let receipt = ledger.add_points(add, "till-1").await?;
///     assert_eq!(receipt.balance, 120);
///
///     let spend = UsePoints { program: "cafe".into(), member: "alice".into(), points: 20,
///                             remark: "cookie".into(), ..UsePoints::default() };
///     assert_eq!(ledger.use_points(spend, "till-1").await?.balance, 100);
///
///     // Every reply came after the flush that made it durable.
///     let alice = ledger.member("cafe", "alice").await?;
///     assert_eq!(alice.points, 100);
///     ledger.close()?;
///     std::fs::remove_dir_all(&dir)?;
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    queue: tokio::sync::mpsc::Sender<Message>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    sweeper: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    tokens: Tokens,
    replayed_at_open: u64,
    /// The programs' definitions, for members as of a time (`history`).
    definitions: Mutex<crate::history::Definitions>,
    /// Members as of past events, so that a member as of a time folds few events.
    snapshots: crate::history::Snapshots,
    /// The background check of the whole chain; dropped last, which stops it.
    integrity: integrity::Checker,
}

impl Ledger {
    /// Opens (or creates) the ledger in `path` with the default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger, StoreError> {
        Ledger::open_with(path, Options::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Ledger, StoreError> {
        let opening = std::time::Instant::now();
        let db = open_db(path.as_ref(), options.cache_capacity_bytes)?;
        // sled's own recovery, apart from ours: the floor of a restart.
        let sled_open_ms = opening.elapsed().as_millis();
        let log = Log::open(&db)?;
        let projections = Projections::open(&db)?;
        let snapshots = crate::history::Snapshots::open(&db, options.history_snapshot_events)?;
        let definitions = crate::history::Definitions::open(&db)?;
        let disk = Arc::new(Disk::open_with_faults(db, path.as_ref(), options.faults.clone())?);
        let tokens = Tokens::open(disk.clone())
            .map_err(|error| StoreError::CorruptProjection { key: "tokens".into(), reason: error.to_string() })?;
        let Recovered { state, head, replayed, activity, dirty } = recover(&log, &projections)?;
        let open_ms = opening.elapsed().as_millis();
        tracing::info!(sequence = head.sequence, replayed, sled_open_ms, open_ms, "ledger opened");
        let integrity = integrity::Checker::start(log.clone(), head);
        let activity = ActivityIndex::new(projections.tree().clone(), activity);
        let (queue, receiver) = tokio::sync::mpsc::channel(options.queue_max);
        let shared = Arc::new(Shared {
            activity,
            disk,
            log,
            projections,
            state: RwLock::new(state),
            applied: AtomicU64::new(head.sequence),
            checkpoint_written: AtomicU64::new(0),
            durable: Durable::new(head.sequence),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            fault: Mutex::new(None),
            faulted: AtomicBool::new(false),
            rollbacks: AtomicU64::new(0),
            wake: queue.downgrade(),
            checkpoint_gate: Mutex::new(()),
        });
        let tuning = Tuning {
            group_commands_max: options.group_commands_max,
            checkpoint_events: options.checkpoint_events,
            checkpoint_interval: options.checkpoint_interval,
            fault_probe_interval: options.fault_probe_interval,
            disk_free_min_bytes: options.disk_free_min_bytes,
            resident_rows_max: options.resident_rows_max,
            checkpoint_rows_max: options.checkpoint_rows_max.max(1),
        };
        let writer =
            writer::start(shared.clone(), tuning, (head.sequence, head.hash, head.recorded_at), dirty, receiver)?;
        let sweeper = options
            .expiry_sweep_interval
            .map(|interval| crate::sweep::start(queue.clone(), interval, integrity.handle()));
        let inner = Inner {
            shared,
            queue,
            writer: Mutex::new(Some(writer)),
            sweeper: Mutex::new(sweeper),
            tokens,
            replayed_at_open: replayed,
            definitions: Mutex::new(definitions),
            snapshots,
            integrity,
        };
        Ok(Ledger { inner: Arc::new(inner) })
    }

    /// Whether the ledger takes writes, and if not, why: a storage fault (writes
    /// resume by themselves once a probe write is durable) or a failure (a
    /// restart is needed, or a salvage when the hash chain is broken). Reads
    /// answer either way.
    pub fn health(&self) -> Health {
        let shared = &self.inner.shared;
        let failure = self.inner.integrity.refusal().or_else(|| shared.failure());
        match (failure, shared.fault_reason()) {
            (Some(reason), _) => Health::Failed(reason),
            (None, Some(reason)) => Health::Faulted(reason),
            (None, None) => Health::Writable,
        }
    }

    /// What the writer and its readers share, for modules of this crate that
    /// read the store directly (`backup`).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Events replayed from the log tail when this ledger opened.
    pub fn replayed_at_open(&self) -> u64 {
        self.inner.replayed_at_open
    }

    /// The background check of the whole hash chain (see `integrity`): while it is
    /// `Broken`, every write is refused.
    pub fn integrity(&self) -> Integrity {
        self.inner.integrity.integrity()
    }

    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// Decides and records one command; returns once it is durable. The typed
    /// methods (`add_points`, `add_credits`, ...) call it and take their answer
    /// out of the `Outcome`. `ExpirePoints` is the expiry sweep's own command and
    /// is refused (`sweep_expiry` runs the sweep).
    pub async fn execute(&self, command: Command, actor: &str) -> Result<Outcome, LedgerError> {
        crate::operations::internal_command(&command)?;
        self.submit(command, actor).await
    }

    /// `execute` without the refusal of internal commands: for the sweep.
    pub(crate) async fn submit(&self, command: Command, actor: &str) -> Result<Outcome, LedgerError> {
        let shared = &self.inner.shared;
        if let Some(reason) = self.inner.integrity.refusal() {
            return Err(LedgerError::Unavailable(reason));
        }
        if let Some(reason) = shared.failure().or_else(|| shared.fault_reason()) {
            return Err(LedgerError::Unavailable(reason));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let submission = Submission { command, actor: actor.to_owned(), reply };
        self.inner
            .queue
            .send(Message::Command(submission))
            .await
            .map_err(|_| LedgerError::Closed("the ledger is closed"))?;
        answer.await.map_err(|_| LedgerError::Closed("the ledger stopped before answering"))?
    }

    pub async fn create_program(&self, program: &str, name: &str, actor: &str) -> Result<Outcome, LedgerError> {
        let command = CreateProgram { program: program.to_owned(), name: name.to_owned() };
        self.execute(Command::CreateProgram(command), actor).await
    }

    /// Adds points to a member (a lot, expiring at `expires_at` if set; with a
    /// `formula_id` and a `cost`, the formula's points). Returns the receipt:
    /// transaction id, points applied and live balance after; a `reference` used
    /// before answers the original result (`duplicate`) or says it replaced the
    /// earlier transaction (`replaced`). Refuses an unknown program or formula
    /// (`PROGRAM_NOT_FOUND`, `FORMULA_NOT_FOUND`), malformed fields
    /// (`INVALID_FIELD`) and a `reference` used by another kind of command
    /// (`REFERENCE_IN_USE`).
    pub async fn add_points(&self, command: AddPoints, actor: &str) -> Result<PointsReceipt, LedgerError> {
        match self.execute(Command::AddPoints(command), actor).await? {
            Outcome::Points(receipt) => Ok(receipt),
            other => unreachable!("an add answers with a receipt, got {other:?}"),
        }
    }

    /// Uses a member's points (with a `reward_id` and no points, the reward's
    /// cost). Returns the receipt, as
    /// [`Ledger::add_points`] does. Refuses a balance short of the points
    /// (`INSUFFICIENT_POINTS`), an unknown or expired reward
    /// (`REWARD_NOT_FOUND`, `REWARD_EXPIRED`), and otherwise as an add.
    pub async fn use_points(&self, command: UsePoints, actor: &str) -> Result<PointsReceipt, LedgerError> {
        match self.execute(Command::UsePoints(command), actor).await? {
            Outcome::Points(receipt) => Ok(receipt),
            other => unreachable!("a use answers with a receipt, got {other:?}"),
        }
    }

    /// Sets points aside (SPEC §14); the hold's id is its transaction id.
    pub async fn hold_points(&self, command: HoldPoints, actor: &str) -> Result<HoldView, LedgerError> {
        self.hold_outcome(Command::HoldPoints(command), actor).await
    }

    pub async fn hold_credits(&self, command: HoldCredits, actor: &str) -> Result<HoldView, LedgerError> {
        self.hold_outcome(Command::HoldCredits(command), actor).await
    }

    /// Spends a pending hold, whole or in part. The caller names the hold only:
    /// its member is read from the hold's event first, since the core reads no log.
    pub async fn capture_hold(&self, mut command: CaptureHold, actor: &str) -> Result<HoldView, LedgerError> {
        command.member = self.hold_member(&command.program, &command.hold_id)?.unwrap_or_default();
        self.hold_outcome(Command::CaptureHold(command), actor).await
    }

    pub async fn void_hold(&self, mut command: VoidHold, actor: &str) -> Result<HoldView, LedgerError> {
        command.member = self.hold_member(&command.program, &command.hold_id)?.unwrap_or_default();
        self.hold_outcome(Command::VoidHold(command), actor).await
    }

    /// One hold as it stands now: a hold past its time shows as expired.
    pub async fn hold(&self, program: &str, hold_id: &str) -> Result<HoldView, LedgerError> {
        let now = ledger_core::Timestamp::from_chrono(chrono::Utc::now());
        let rows = &self.inner.shared.projections;
        let Some(member) = self.hold_member(program, hold_id)? else {
            // An unknown program is PROGRAM_NOT_FOUND, as everywhere.
            self.read(|state| state.program(program).map(|_| ()))
                .await?
                .ok_or_else(|| views::unknown_program(program))?;
            return Err(views::unknown_hold(program, hold_id));
        };
        let hold_id = holds::parse_hold_id(hold_id).expect("a hold's member was found by its id");
        self.read(|state| views::hold(state, rows, program, &member, hold_id, now)).await?
    }

    /// A page of holds, in hold id order.
    pub async fn holds(&self, query: views::HoldQuery) -> Result<views::HoldPage, LedgerError> {
        let now = ledger_core::Timestamp::from_chrono(chrono::Utc::now());
        let rows = &self.inner.shared.projections;
        self.read(|state| views::holds(state, rows, &query, now)).await?
    }

    /// The member of hold `hold_id` of `program`: the member its durable event
    /// names, `None` when that transaction is no hold of the program.
    fn hold_member(&self, program: &str, hold_id: &str) -> Result<Option<String>, LedgerError> {
        let Some(sequence) = holds::parse_hold_id(hold_id) else { return Ok(None) };
        let Some(logged) = self.event(sequence)? else { return Ok(None) };
        let event = logged.envelope.event;
        let is_hold = matches!(event.body, EventBody::PointsHeld(_) | EventBody::CreditsHeld(_));
        Ok((is_hold && event.program == program).then_some(event.member))
    }

    async fn hold_outcome(&self, command: Command, actor: &str) -> Result<HoldView, LedgerError> {
        match self.execute(command, actor).await? {
            Outcome::Hold(view) => Ok(view),
            other => unreachable!("a hold command answers with its hold, got {other:?}"),
        }
    }

    /// Applies items in order and stops at the first that fails (Loga's
    /// `bulk_add_point`): what came before stays applied, unless `atomic`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ledger_core::command::{AddPoints, BulkAddPoints};
    /// use ledger_store::Ledger;
    ///
    /// let dir = std::env::temp_dir().join(format!("ledger-doc-bulk-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let ledger = Ledger::open(&dir)?;
    /// ledger.create_program("cafe", "Corner Cafe", "doc").await?;
    /// let item = |member: &str, points: i64, remark: &str| AddPoints {
    ///     program: "cafe".into(), member: member.into(), points, remark: remark.into(),
    ///     ..AddPoints::default()
    /// };
    /// let items = vec![item("alice", 10, "visit"), item("bob", 20, "visit"), item("carol", 5, "")];
    /// let bulk = BulkAddPoints { program: "cafe".into(), items, atomic: false, malformed: None };
    /// let result = ledger.bulk_add_points(bulk, "doc").await?;
    /// // The third item has no remark: it fails, the first two stay applied.
    /// assert_eq!((result.applied_count, result.fail_at), (2, Some(2)));
    /// assert_eq!(result.failure.unwrap().field().as_str(), "items[2].remark");
    /// assert_eq!(result.balances, vec![("alice".to_owned(), 10), ("bob".to_owned(), 20)]);
    /// ledger.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn bulk_add_points(&self, command: BulkAddPoints, actor: &str) -> Result<BulkResult, LedgerError> {
        match self.execute(Command::BulkAddPoints(command), actor).await? {
            Outcome::Bulk(result) => Ok(result),
            other => unreachable!("a bulk answers with a bulk result, got {other:?}"),
        }
    }

    pub async fn bulk_use_points(&self, command: BulkUsePoints, actor: &str) -> Result<BulkResult, LedgerError> {
        match self.execute(Command::BulkUsePoints(command), actor).await? {
            Outcome::Bulk(result) => Ok(result),
            other => unreachable!("a bulk answers with a bulk result, got {other:?}"),
        }
    }

    /// Runs `read` on the state, and returns once everything it saw is durable: a
    /// read never shows a write that a crash could still take back.
    ///
    /// Programs, their definitions, cards and voucher books and the expiry index
    /// are whole in it; members and references only as far as they are resident
    /// (`resident`): read those with `member`, `members` and `activity`, or take
    /// `whole_state`.
    pub async fn read<T>(&self, read: impl FnOnce(&State) -> T) -> Result<T, LedgerError> {
        self.read_resident(|resident| read(&resident.state)).await
    }

    /// Reads `program`'s voucher book into memory if it is not there yet (once
    /// per program and process: books stay).
    fn load_book(&self, program: &str) -> Result<(), LedgerError> {
        let shared = &self.inner.shared;
        if shared.state.read().expect("state lock").books.contains(program) {
            return Ok(());
        }
        let mut resident = shared.state.write().expect("state lock");
        resident.load_book(&shared.projections, program).map_err(LedgerError::from)
    }

    /// `read`, given the resident rows and which voucher books are loaded.
    async fn read_resident<T>(&self, read: impl FnOnce(&Resident) -> T) -> Result<T, LedgerError> {
        let shared = &self.inner.shared;
        let (value, seen, rollbacks) = {
            let state = shared.state.read().expect("state lock");
            (read(&state), shared.applied.load(Ordering::SeqCst), shared.rollbacks.load(Ordering::SeqCst))
        };
        self.wait_durable(seen).await?;
        if shared.rollbacks.load(Ordering::SeqCst) != rollbacks {
            // What it saw was folded back after a storage fault: it never was durable.
            return Err(LedgerError::Unavailable("a storage fault took back what this read saw; retry".to_owned()));
        }
        Ok(value)
    }

    /// Members and references in memory now (at most `Options::resident_rows_max`,
    /// but for the rows a checkpoint has yet to write).
    pub fn resident_rows(&self) -> usize {
        resident::resident_rows(&self.inner.shared.state.read().expect("state lock"))
    }

    /// The whole state, every member and reference in memory at once: for audits
    /// and tests, not for serving (its cost grows with the members).
    pub async fn whole_state(&self) -> Result<State, LedgerError> {
        let rows = &self.inner.shared.projections;
        self.read_resident(|resident| rows.materialize(resident)).await?.map_err(LedgerError::from)
    }

    async fn wait_durable(&self, sequence: u64) -> Result<(), LedgerError> {
        let shared = &self.inner.shared;
        let mut watch = shared.durable.subscribe();
        loop {
            if *watch.borrow_and_update() >= sequence {
                return Ok(());
            }
            // What this read saw may never become durable: the writer is folding
            // the state back to the watermark, and a retry reads that.
            if let Some(reason) = shared.failure().or_else(|| shared.fault_reason()) {
                return Err(LedgerError::Unavailable(reason));
            }
            watch.changed().await.map_err(|_| LedgerError::Closed("the ledger is closed"))?;
        }
    }

    /// One member as a read shows it: expired lots never count.
    pub async fn member(&self, program: &str, member: &str) -> Result<MemberView, LedgerError> {
        let now = ledger_core::Timestamp::from_chrono(chrono::Utc::now());
        let rows = &self.inner.shared.projections;
        self.read(|state| views::member(state, rows, program, member, now)).await?
    }

    /// One member as it stood at `at`: every event recorded at or before it, by
    /// sequence, with the lots expired by `at` left out (`history`). NOT_FOUND
    /// `MEMBER_NOT_FOUND` when no event had named the member by then.
    pub async fn member_as_of(
        &self,
        program: &str,
        member: &str,
        at: ledger_core::Timestamp,
    ) -> Result<MemberView, LedgerError> {
        let exists = self.read(|state| state.program(program).is_some()).await?;
        if !exists {
            return Err(views::unknown_program(program));
        }
        let shared = &self.inner.shared;
        let durable = self.durable_sequence();
        let (definitions, snapshots) = (&self.inner.definitions, &self.inner.snapshots);
        let activity = &shared.activity;
        crate::history::member_as_of(&shared.log, activity, snapshots, definitions, durable, program, member, at)
    }

    /// A page of a program's lots that are live now and expire before
    /// `query.before`, soonest first.
    pub async fn expiring_points(
        &self,
        query: crate::history::ExpiringQuery,
    ) -> Result<crate::history::ExpiringPage, LedgerError> {
        let now = ledger_core::Timestamp::from_chrono(chrono::Utc::now());
        let rows = &self.inner.shared.projections;
        self.read(|state| crate::history::expiring(state, rows, &query, now)).await?
    }

    /// A page of a program's members, ordered by id.
    pub async fn members(&self, program: &str, page: views::PageRequest) -> Result<MemberPage, LedgerError> {
        let now = ledger_core::Timestamp::from_chrono(chrono::Utc::now());
        let rows = &self.inner.shared.projections;
        self.read(|state| views::members(state, rows, program, &page, now)).await?
    }

    /// A program's member cards, by level.
    pub async fn member_cards(&self, program: &str) -> Result<Vec<CardView>, LedgerError> {
        self.read(|state| {
            state
                .program(program)
                .map(|found| tiers::cards(&found.cards))
                .ok_or_else(|| views::unknown_program(program))
        })
        .await?
    }

    /// A member's coupons; none for a member no event has named.
    pub async fn member_coupons(&self, program: &str, member: &str) -> Result<Vec<CouponView>, LedgerError> {
        let rows = &self.inner.shared.projections;
        self.read(|state| {
            let found = state.program(program).ok_or_else(|| views::unknown_program(program))?;
            Ok(match found.members.get(member) {
                Some(resident) => views::coupons(resident),
                None => rows.member(program, member)?.as_ref().map(views::coupons).unwrap_or_default(),
            })
        })
        .await?
    }

    /// The latest version of one voucher statement.
    pub async fn voucher_statement(
        &self,
        brand_id: i64,
        promotion_id: i64,
        voucher_identifier: &str,
    ) -> Result<VoucherView, LedgerError> {
        let program = brand_program(brand_id);
        self.load_book(&program)?;
        self.read(|state| {
            let book = &state.program(&program).ok_or_else(|| views::unknown_program(&program))?.vouchers;
            let record = book.get(promotion_id, voucher_identifier).ok_or_else(|| {
                LedgerError::Rejected(Rejection::UnknownVoucher {
                    field: FieldPath::new("voucher_identifier"),
                    brand_id,
                    promotion_id,
                    voucher_identifier: voucher_identifier.to_owned(),
                })
            })?;
            Ok(views::voucher(brand_id, book, record))
        })
        .await?
    }

    /// One page of the voucher-statement report (Echoss), from the book's indexes.
    pub async fn voucher_report(&self, brand_id: i64, query: ReportQuery) -> Result<VoucherPage, LedgerError> {
        let program = brand_program(brand_id);
        self.load_book(&program)?;
        self.read(|state| {
            let book = &state.program(&program).ok_or_else(|| views::unknown_program(&program))?.vouchers;
            let page = book.report(&query).map_err(LedgerError::Rejected)?;
            Ok(VoucherPage {
                statements: page.records.iter().map(|record| views::voucher(brand_id, book, record)).collect(),
                next_page_token: page.next_page_token,
                total_size: page.total_size,
            })
        })
        .await?
    }

    /// A page of activities, newest first.
    pub async fn activities(&self, query: ActivityQuery) -> Result<ActivityPage, LedgerError> {
        let exists = self.read(|state| state.program(&query.program).is_some()).await?;
        if !exists {
            return Err(views::unknown_program(&query.program));
        }
        let shared = &self.inner.shared;
        let mut page = activities::list(&shared.log, &shared.activity, &query, self.durable_sequence())?;
        self.note_reversals(&query.program, &mut page.activities).await?;
        Ok(page)
    }

    /// Sets `reversed_by` on each activity a durable reversal undid, from its
    /// member's state (`Member::reversed`), resident or on disk.
    async fn note_reversals(&self, program: &str, activities: &mut [Activity]) -> Result<(), LedgerError> {
        if activities.is_empty() {
            return Ok(());
        }
        let rows = &self.inner.shared.projections;
        let durable = self.durable_sequence();
        let wanted: Vec<(String, u64)> =
            activities.iter().map(|activity| (activity.member.clone(), activity.transaction_id)).collect();
        let found = self
            .read(|state| {
                let Some(program_state) = state.program(program) else { return Ok(vec![None; wanted.len()]) };
                // Each member's reversed transactions, read once per page (its row
                // from disk when the member is not resident).
                let mut reversed: std::collections::BTreeMap<&str, std::collections::BTreeMap<u64, u64>> =
                    std::collections::BTreeMap::new();
                let mut found = Vec::with_capacity(wanted.len());
                for (member, transaction_id) in &wanted {
                    if !reversed.contains_key(member.as_str()) {
                        let map = match program_state.members.get(member) {
                            Some(resident) => resident.reversed.clone(),
                            None => rows.member(program, member)?.map(|row| row.reversed).unwrap_or_default(),
                        };
                        reversed.insert(member, map);
                    }
                    let reversed_by = reversed[member.as_str()].get(transaction_id);
                    found.push(reversed_by.copied().filter(|by| *by <= durable));
                }
                Ok::<_, LedgerError>(found)
            })
            .await??;
        for (activity, reversed_by) in activities.iter_mut().zip(found) {
            activity.reversed_by = reversed_by;
        }
        Ok(())
    }

    /// One activity, by transaction id or, when that is 0, by the client's reference.
    pub async fn activity(&self, program: &str, transaction_id: u64, reference: &str) -> Result<Activity, LedgerError> {
        let sequence = if transaction_id != 0 {
            transaction_id
        } else {
            let rows = &self.inner.shared.projections;
            let found = self
                .read(|state| {
                    let program_state = state.program(program).ok_or_else(|| views::unknown_program(program))?;
                    let transaction_id = match program_state.references.get(reference) {
                        Some(entry) => Some(entry.transaction_id),
                        None => rows.reference(program, reference)?.map(|entry| entry.transaction_id),
                    };
                    transaction_id.ok_or_else(|| {
                        LedgerError::Rejected(Rejection::UnknownReference {
                            field: FieldPath::new("reference"),
                            program: program.to_owned(),
                            reference: reference.to_owned(),
                        })
                    })
                })
                .await?;
            found?
        };
        let shared = &self.inner.shared;
        let mut activity = activities::get(&shared.log, &shared.activity, program, sequence, self.durable_sequence())?;
        self.note_reversals(program, std::slice::from_mut(&mut activity)).await?;
        Ok(activity)
    }

    /// ReverseTransaction (SPEC §15).
    pub async fn reverse_transaction(
        &self,
        command: ledger_core::command::ReverseTransaction,
        actor: &str,
    ) -> Result<ledger_core::command::Reversal, LedgerError> {
        match self.execute(Command::ReverseTransaction(command), actor).await? {
            Outcome::Reversal(reversal) => Ok(reversal),
            other => unreachable!("a reversal answers with a reversal, got {other:?}"),
        }
    }

    /// The last durable sequence: the log up to it can be read and streamed.
    pub fn durable_sequence(&self) -> u64 {
        self.inner.shared.durable.get()
    }

    /// Waits until the durable sequence passes `after` (or the ledger fails or closes).
    pub async fn wait_beyond(&self, after: u64) -> Result<u64, LedgerError> {
        let shared = &self.inner.shared;
        let mut watch = shared.durable.subscribe();
        loop {
            if let Some(reason) = shared.failure() {
                return Err(LedgerError::Unavailable(reason));
            }
            let durable = *watch.borrow_and_update();
            if durable > after {
                return Ok(durable);
            }
            watch.changed().await.map_err(|_| LedgerError::Closed("the ledger is closed"))?;
        }
    }

    /// One durable event by its sequence (transaction id).
    pub fn event(&self, sequence: u64) -> Result<Option<LoggedEvent>, StoreError> {
        if sequence > self.durable_sequence() {
            return Ok(None);
        }
        self.inner.shared.log.event(sequence)
    }

    /// Durable events from `from` through `to`, in order.
    pub fn events(&self, from: u64, to: u64) -> impl Iterator<Item = Result<LoggedEvent, StoreError>> + use<> {
        let to = to.min(self.durable_sequence());
        self.inner
            .shared
            .log
            .events_from(from.max(1))
            .take_while(move |event| event.as_ref().map_or(true, |event| event.envelope.sequence <= to))
    }

    /// Durable records from the one holding `from` on, each as (first sequence,
    /// its events as stored): the event export reads these, so that it can send
    /// the exact bytes each hash covers and say which events make one command.
    /// A record past the durable sequence is left out (the writer makes whole
    /// records durable, so none straddles it).
    pub fn durable_records(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Vec<crate::envelope::StoredEvent>), StoreError>> + use<> {
        let durable = self.durable_sequence();
        self.inner
            .shared
            .log
            .records_from(from.max(1))
            .take_while(move |record| record.as_ref().map_or(true, |(first, _)| *first <= durable))
    }

    /// Checks the hash chain of the whole durable log.
    pub fn verify(&self) -> Result<crate::audit::VerifyReport, StoreError> {
        crate::audit::verify_log(&self.inner.shared.log, Until::Sequence(self.durable_sequence()), |_| {})
    }

    /// Replays the whole log into a fresh state and compares it, and the activity
    /// index, with the live projections at the same sequence; `None` when they
    /// are equal, else the first difference. With
    /// [`Ledger::verify`], what an auditor runs:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ledger_core::command::AddPoints;
    /// use ledger_store::Ledger;
    ///
    /// let dir = std::env::temp_dir().join(format!("ledger-doc-audit-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let ledger = Ledger::open(&dir)?;
    /// ledger.create_program("cafe", "Corner Cafe", "doc").await?;
    /// let add = AddPoints { program: "cafe".into(), member: "alice".into(), points: 5,
    ///                       remark: "visit".into(), ..AddPoints::default() };
    /// ledger.add_points(add, "doc").await?;
    ///
    /// let report = ledger.verify()?;
    /// assert!(report.ok, "{}", report.first_mismatch);
    /// assert_eq!(report.events, 2);
    /// assert_eq!(ledger.compare_with_replay()?, None);
    /// ledger.close()?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn compare_with_replay(&self) -> Result<Option<String>, StoreError> {
        let shared = &self.inner.shared;
        let (live, live_activities, applied) = {
            let state = shared.state.read().expect("state lock");
            // The writer records activities under the state lock: both are at
            // `applied`. Rows that are not resident are current on disk, and
            // under the lock none leaves memory.
            (shared.projections.materialize(&state)?, shared.activity.entries()?, shared.applied.load(Ordering::SeqCst))
        };
        shared.durable.wait_until(applied, || shared.stalled());
        if shared.stalled() {
            let reason = shared.failure().or_else(|| shared.fault_reason()).unwrap_or_default();
            return Err(StoreError::Io(std::io::Error::other(format!("storage unavailable: {reason}"))));
        }
        let mut replayed = State::default();
        let mut replayed_activities = Generation::default();
        let until = Until::Sequence(applied);
        replay::replay_into(&shared.log, &mut replayed, &mut replayed_activities, Head::GENESIS, until, |_| {})?;
        Ok(ledger_core::diff::first_difference(&live, &replayed)
            .or_else(|| activity::first_difference(&live_activities, &replayed_activities.entries())))
    }

    /// Stops the writer after the commands already queued, checkpoints the
    /// projections and flushes. Later calls answer UNAVAILABLE.
    pub fn close(&self) -> Result<(), StoreError> {
        self.inner.close();
        match self.inner.shared.failure() {
            Some(reason) => Err(StoreError::Io(std::io::Error::other(reason))),
            None => Ok(()),
        }
    }
}

impl Inner {
    fn close(&self) {
        self.sweeper.lock().expect("sweeper lock").take();
        let Some(writer) = self.writer.lock().expect("writer lock").take() else { return };
        let (done, finished) = std::sync::mpsc::channel();
        let mut message = Message::Shutdown(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                // A full queue drains within a group or two; the shutdown must not be lost.
                Err(tokio::sync::mpsc::error::TrySendError::Full(returned)) => {
                    message = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
        let _ = finished.recv();
        let _ = writer.join();
        // Without the exact counts a restart would resume limited tokens at their
        // lease ceilings, ending them early.
        if let Err(error) = self.tokens.persist_usage() {
            tracing::warn!(%error, "limited tokens resume at their lease ceilings after this restart");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_db(path: &Path, cache_capacity_bytes: u64) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes)
        // Durability comes from our own flushes only; a timer flush promises no one anything.
        .flush_every_ms(None)
        .mode(sled::Mode::HighThroughput);
    crate::error::open_sled(&config, path)
}

/// The state at the end of the log: the checkpoint plus a replay of the tail after
/// it. Without a readable checkpoint the whole log is replayed once.
pub(crate) fn recover(log: &Log, projections: &Projections) -> Result<Recovered, StoreError> {
    let (state, meta) = match projections.load()? {
        Some(loaded) => loaded,
        None => {
            if projections.meta()?.is_some() {
                tracing::warn!("projection rows are of another format: rebuilding them from the log");
            }
            projections.clear()?;
            (State::default(), Meta::empty())
        }
    };
    let mut state = Resident::new(state);
    let start = Head { sequence: meta.applied_sequence, hash: meta.head_hash, recorded_at: meta.recorded_at };
    let mut replayed = 0u64;
    let mut activity = Generation::default();
    let mut dirty = Dirty::default();
    let mut unreadable = None;
    let head = replay::walk(log, start, Until::End, |stamp, event| {
        if unreadable.is_some() {
            return;
        }
        // The rows the event names, from the checkpoint.
        if let Err(error) = resident::ensure_event(&mut state, projections, &event) {
            unreadable = Some(error);
            return;
        }
        // The rows the tail changed are not in the checkpoint: the next one
        // must write them, or its cut would claim them.
        fold(&mut state, stamp, &event, Some(&mut dirty), &mut activity);
        replayed += 1;
    })?;
    if let Some(error) = unreadable {
        return Err(error);
    }
    Ok(Recovered { state, head, replayed, activity, dirty })
}

pub(crate) struct Recovered {
    pub state: Resident,
    pub head: Head,
    /// Events replayed from the tail after the checkpoint.
    pub replayed: u64,
    /// Activity entries of the replayed tail, not yet in any checkpoint.
    pub activity: Generation,
    /// Rows the replayed tail changed, not yet in any checkpoint.
    pub dirty: Dirty,
}
