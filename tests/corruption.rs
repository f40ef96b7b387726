//! Corruption: detect, name, survive.
//!
//! A ledger holding every kind of event is built once (in-process, through
//! `Ledger`), closed, and copied for each case. A case damages the copy, then runs
//! the real `ledger` binary on it, and where it says so `ledgerd`:
//!
//! - one byte of an event's stored bytes flipped through sled (so sled's own
//!   checksums pass), for every `EventBody` kind: `ledger verify` names that
//!   sequence and how many before it verify; `ledger salvage` copies exactly the
//!   whole records before it, which `Ledger::open` opens and verifies;
//! - a byte in the middle of a bulk's record: the whole command is dropped, and
//!   `ledgerd` serves the salvaged directory with the carried admin token;
//! - a byte flipped in sled's own file (not through sled): `verify` names sled's
//!   problem and its file instead of panicking, and salvage still keeps a prefix;
//! - a read-only directory (a read-only bind mount when root can mount, `chmod`
//!   when not root, `chattr +i` otherwise): verify works on a copy and says so;
//! - an event older than the last checkpoint tampered while `ledgerd` was stopped:
//!   it starts, its background chain check finds the break, health goes
//!   NOT_SERVING, AddPoints is UNAVAILABLE naming the sequence, GetMember answers.

mod support;

use ledger_core::command::{
    AddPoints, BulkAddPoints, CreateMemberCard, CreditsChangeCommand, DefineCredit, DefineFormula, DefineReward,
    DefineShop, DeleteMemberCard, GrantCoupons, ImportPointStatements, ImportVoucherStatements, PointStatementItem,
    ReverseTransaction, SetMemberLevels, UpdateMemberCard, UseCoupon, UsePoints, VoucherImportItem,
};
use ledger_core::command::{CaptureHold, HoldCredits, HoldPoints, VoidHold};
use ledger_core::event::EventBody;
use ledger_core::{Command, Timestamp};
use ledger_grpc::pb;
use ledger_store::audit::open_offline;
use ledger_store::log::{self, Log};
use ledger_store::tokens::Role;
use ledger_store::{Ledger, Options, StoreError};
use rust_decimal::Decimal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::OnceLock;
use support::{Patience, Server, fresh_dir};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const ACTOR: &str = "tok_corrupt";
const PROGRAM: &str = "cafe";
const BRAND: i64 = 7;

/// The ledger every case copies, closed.
struct Built {
    dir: PathBuf,
    /// Every event: (sequence, kind index, first sequence of its record).
    events: Vec<(u64, usize, u64)>,
    /// The three-item bulk's record: its first sequence.
    bulk_first: u64,
    /// Every log record as stored, (key, value): cases compare with these rather
    /// than open the directory every case copies.
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    // On a thread of its own: the first caller may be an async test, whose thread
    // cannot block on a runtime of its own.
    BUILT.get_or_init(|| std::thread::spawn(build).join().expect("build the ledger"))
}

fn build() -> Built {
    let dir = fresh_dir("corruption-pristine");
    let options = Options { expiry_sweep_interval: None, ..Options::default() };
    let ledger = Ledger::open_with(&dir, options).expect("open the ledger");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(record_every_kind(&ledger));
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let issued = ledger.tokens().issue(Role::Admin, "", "admin", None, None, now).expect("issue a token");
    std::fs::write(dir.join("admin.token"), format!("{}\n", issued.secret)).expect("write admin.token");
    ledger.close().expect("close");
    drop(ledger);

    let db = released(|| open_offline(&dir)).expect("open offline");
    let log = Log::open(&db).expect("log");
    let mut events = Vec::new();
    let mut bulk_first = 0;
    for record in log.records_from(1) {
        let (first, stored) = record.expect("a record");
        let count = u64::try_from(stored.len()).expect("fits");
        for (sequence, stored) in (first..).zip(&stored) {
            let envelope = ledger_store::envelope::decode(&stored.bytes).expect("decode");
            events.push((sequence, envelope.event.body.index(), first));
        }
        if count == 3 && bulk_first == 0 {
            bulk_first = first;
        }
    }
    for kind in 0..EventBody::KINDS_COUNT {
        assert!(events.iter().any(|&(_, found, _)| found == kind), "the built ledger has no event of kind {kind}");
    }
    assert_ne!(bulk_first, 0, "the built ledger holds a three-event bulk record");
    let records = records(&log);
    drop((log, db));
    wait_released(&dir);
    Built { dir, events, bulk_first, records }
}

async fn run(ledger: &Ledger, command: Command) {
    ledger.execute(command, ACTOR).await.expect("the command applies");
}

fn add(member: &str, points: i64, reference: &str) -> AddPoints {
    AddPoints {
        program: PROGRAM.into(),
        member: member.into(),
        points,
        remark: "visit".into(),
        reference: reference.into(),
        ..AddPoints::default()
    }
}

fn spend(member: &str, points: i64, reference: &str) -> UsePoints {
    UsePoints {
        program: PROGRAM.into(),
        member: member.into(),
        points,
        remark: "treat".into(),
        reference: reference.into(),
        ..UsePoints::default()
    }
}

/// Runs commands that record at least one event of every kind.
async fn record_every_kind(ledger: &Ledger) {
    ledger.create_program(PROGRAM, "Corner Cafe", ACTOR).await.expect("create program");
    let multiplier: Decimal = "1.5".parse().expect("decimal");
    let formula = DefineFormula { program: PROGRAM.into(), formula_id: "f".into(), name: "F".into(), multiplier };
    run(ledger, Command::DefineFormula(formula)).await;
    let reward = DefineReward {
        program: PROGRAM.into(),
        reward_id: "gift".into(),
        name: "Gift".into(),
        points: 5,
        expires_at: None,
    };
    run(ledger, Command::DefineReward(reward)).await;
    run(ledger, Command::AddPoints(add("alice", 100, "a1"))).await;
    run(ledger, Command::UsePoints(spend("alice", 10, "u1"))).await;
    run(ledger, Command::AddPoints(AddPoints { replace_duplicate: true, ..add("alice", 90, "a1") })).await;
    run(ledger, Command::UsePoints(UsePoints { replace_duplicate: true, ..spend("alice", 20, "u1") })).await;
    let items = vec![add("bob", 1, ""), add("carol", 2, ""), add("dave", 3, "")];
    run(
        ledger,
        Command::BulkAddPoints(BulkAddPoints { program: PROGRAM.into(), items, atomic: true, malformed: None }),
    )
    .await;
    expire_a_lot(ledger).await;
    record_wallets(ledger).await;
    // The coupon use just recorded (acknowledged, so durable and the head) is reversed.
    let reverse = ReverseTransaction {
        program: PROGRAM.into(),
        transaction_id: ledger.durable_sequence(),
        remark: "returned".into(),
        reference: "undo-1".into(),
        target: None,
    };
    run(ledger, Command::ReverseTransaction(reverse)).await;
    record_vouchers(ledger).await;
    record_tiers(ledger).await;
    record_holds(ledger).await;
}

/// A points hold captured in part, a credits hold voided, and a hold the sweep
/// expires once the clock has passed it.
async fn record_holds(ledger: &Ledger) {
    let hold = |points: i64, expires_at: Option<Timestamp>| HoldPoints {
        program: PROGRAM.into(),
        member: "alice".into(),
        points,
        remark: "ticket".into(),
        reference: String::new(),
        expires_at,
    };
    let held = ledger.hold_points(hold(10, None), ACTOR).await.expect("hold points");
    let capture = CaptureHold {
        program: PROGRAM.into(),
        hold_id: held.hold_id.to_string(),
        amount: Some(Decimal::new(4, 0)),
        ..CaptureHold::default()
    };
    ledger.capture_hold(capture, ACTOR).await.expect("capture");
    let credits = HoldCredits {
        program: PROGRAM.into(),
        member: "alice".into(),
        credit_id: "wallet".into(),
        amount: Decimal::new(5, 1),
        remark: "remote QR".into(),
        ..HoldCredits::default()
    };
    let held = ledger.hold_credits(credits, ACTOR).await.expect("hold credits");
    let void = VoidHold { program: PROGRAM.into(), hold_id: held.hold_id.to_string(), ..VoidHold::default() };
    ledger.void_hold(void, ACTOR).await.expect("void");
    let expires_at = Timestamp(Timestamp::from_chrono(chrono::Utc::now()).micros() + 20_000);
    ledger.hold_points(hold(1, Some(expires_at)), ACTOR).await.expect("hold points");
    let patience = Patience::new("the hold's expiry time to pass");
    while Timestamp::from_chrono(chrono::Utc::now()) <= expires_at {
        patience.next().await;
    }
    ledger.sweep_expiry(10).await.expect("the sweep");
}

/// A lot that expires a few milliseconds from now, then the sweep once the clock
/// has passed it (a wait on the clock, not a guess at how long it takes).
async fn expire_a_lot(ledger: &Ledger) {
    let expires_at = Timestamp(Timestamp::from_chrono(chrono::Utc::now()).micros() + 20_000);
    run(ledger, Command::AddPoints(AddPoints { expires_at: Some(expires_at), ..add("erin", 7, "") })).await;
    let patience = Patience::new("the lot's expiry time to pass");
    while Timestamp::from_chrono(chrono::Utc::now()) <= expires_at {
        patience.next().await;
    }
    ledger.sweep_expiry(10).await.expect("the sweep");
}

async fn record_wallets(ledger: &Ledger) {
    let credit =
        DefineCredit { program: PROGRAM.into(), credit_id: "wallet".into(), name: "Wallet".into(), unit: "TWD".into() };
    run(ledger, Command::DefineCredit(credit)).await;
    let change = |amount: i64| CreditsChangeCommand {
        program: PROGRAM.into(),
        member: "alice".into(),
        credit_id: "wallet".into(),
        amount: Decimal::new(amount, 1),
        remark: "top-up".into(),
        reference: String::new(),
    };
    run(ledger, Command::AddCredits(change(125))).await;
    run(ledger, Command::UseCredits(change(25))).await;
    let grant = GrantCoupons {
        program: PROGRAM.into(),
        member: "alice".into(),
        coupon_id: "coffee".into(),
        name: "Coffee".into(),
        count: 3,
        reference: String::new(),
    };
    run(ledger, Command::GrantCoupons(grant)).await;
    let coupon = UseCoupon {
        program: PROGRAM.into(),
        member: "alice".into(),
        coupon_id: "coffee".into(),
        remark: String::new(),
        reference: String::new(),
    };
    run(ledger, Command::UseCoupon(coupon)).await;
}

async fn record_vouchers(ledger: &Ledger) {
    let brand = BRAND.to_string();
    ledger.create_program(&brand, "Brand 7", ACTOR).await.expect("create brand");
    run(ledger, Command::DefineShop(DefineShop { program: brand, shop_id: 3, name: "Shop 3".into() })).await;
    let voucher = VoucherImportItem {
        brand_id: BRAND,
        promotion_id: 1,
        voucher_identifier: "v1".into(),
        voucher_number: "N1".into(),
        voucher_name: "Voucher".into(),
        line_id: "alice".into(),
        sent_at: Some(Timestamp(1_613_527_615_000_000)),
        used_at: None,
        cancelled_at: None,
        brand_manager_id: 0,
    };
    run(ledger, Command::ImportVoucherStatements(ImportVoucherStatements { items: vec![voucher] })).await;
    let point = PointStatementItem {
        brand_id: BRAND,
        promotion_id: 0,
        line_id: "alice".into(),
        change_reason: "集點".into(),
        point_change_record: 5,
        changed_at: Some(Timestamp(1_614_528_000_000_000)),
        brand_manager_id: 0,
        reference: String::new(),
    };
    run(ledger, Command::ImportPointStatements(ImportPointStatements { items: vec![point] })).await;
}

async fn record_tiers(ledger: &Ledger) {
    for (name, lowest_amount) in [("Basic", 0), ("Gold", 100)] {
        let card = CreateMemberCard {
            program: PROGRAM.into(),
            name: name.into(),
            benefit: String::new(),
            lowest_amount,
            image_url: String::new(),
        };
        run(ledger, Command::CreateMemberCard(card)).await;
    }
    let cards: Vec<String> = ledger
        .read(|state| state.program(PROGRAM).expect("cafe").cards.iter().map(|card| card.card_id.clone()).collect())
        .await
        .expect("read cards");
    let update = UpdateMemberCard {
        program: PROGRAM.into(),
        card_id: cards[1].clone(),
        lowest_amount: Some(200),
        ..UpdateMemberCard::default()
    };
    run(ledger, Command::UpdateMemberCard(update)).await;
    let levels = SetMemberLevels { program: PROGRAM.into(), levels: vec![("alice".into(), 2)] };
    run(ledger, Command::SetMemberLevels(levels)).await;
    run(ledger, Command::DeleteMemberCard(DeleteMemberCard { program: PROGRAM.into(), card_id: cards[1].clone() }))
        .await;
}

/// A fresh copy of the built ledger.
fn copy_of_built(name: &str) -> PathBuf {
    let dir = fresh_dir(name);
    copy_dir(&built().dir, &dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Flips one byte in the middle of event `sequence`'s stored bytes, through sled:
/// the record is rewritten whole, so sled's own checksums still pass.
fn tamper(dir: &Path, sequence: u64) {
    let db = open_offline(dir).expect("open offline");
    let log = Log::open(&db).expect("log");
    let (key, value) = log.tree().range(..=log::key(sequence)).next_back().expect("a record").expect("read");
    let first = log::sequence_of(&key).expect("key");
    let events = log::decode_record(first, &value).expect("decode the record");
    let stored = &events[usize::try_from(sequence - first).expect("fits")];
    let at = value.windows(stored.bytes.len()).position(|window| window == stored.bytes).expect("the event's bytes")
        + stored.bytes.len() / 2;
    let mut changed = value.to_vec();
    changed[at] ^= 0x01;
    log.tree().insert(key, changed).expect("rewrite the record");
    db.flush().expect("flush");
    drop((log, db));
    wait_released(dir);
}

/// Runs the `ledger` binary with `--json`; returns its exit code, its reply and its stderr.
fn ledger_cli(args: &[&str]) -> (i32, Value, String) {
    let output = Process::new(env!("CARGO_BIN_EXE_ledger")).args(args).arg("--json").output().expect("run ledger");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "ledger {args:?} panicked: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reply = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (output.status.code().expect("exited"), reply, stderr)
}

fn verify_cli(dir: &Path) -> (i32, Value) {
    let (code, reply, stderr) = ledger_cli(&["verify", "--data-dir", &dir.display().to_string()]);
    assert_ne!(reply, Value::Null, "verify printed a reply: {stderr}");
    (code, reply)
}

fn salvage_cli(bad: &Path, out: &Path) -> Value {
    let args = ["salvage", "--data-dir", &bad.display().to_string(), "--out", &out.display().to_string()];
    let (code, reply, stderr) = ledger_cli(&args);
    assert_eq!(code, 0, "salvage succeeded: {stderr}");
    reply
}

/// The salvaged directory opens, verifies through exactly `kept` events, holds the
/// original's records byte for byte, and its rebuilt projections equal a replay.
fn check_salvaged(out: &Path, kept: u64) {
    {
        let ledger = released(|| Ledger::open_with(out, Options { expiry_sweep_interval: None, ..Options::default() }))
            .expect("Ledger::open opens the salvaged directory");
        let report = ledger.verify().expect("verify");
        assert!(report.ok, "{}", report.first_mismatch);
        assert_eq!(report.events, kept);
        assert_eq!(ledger.compare_with_replay().expect("replay"), None);
        ledger.close().expect("close");
    }
    let salvaged = released(|| open_offline(out)).expect("open the salvaged");
    let salvaged = records(&Log::open(&salvaged).expect("log"));
    let kept_records: Vec<_> =
        built().records.iter().filter(|(key, _)| log::sequence_of(key).expect("key") <= kept).cloned().collect();
    assert_eq!(salvaged, kept_records, "the salvaged records are the original's, as stored");
}

/// Waits until no open file holds sled's lock on `dir` (sled takes it with
/// `flock`): after the last handle drops, sled may still hold its files for a
/// moment (background writes, crossbeam's epoch garbage collection), and a
/// `ledger` or `ledgerd` started then would find the directory locked.
fn wait_released(dir: &Path) {
    let deadline = std::time::Instant::now() + support::PATIENCE;
    loop {
        let free = Process::new("flock")
            .args(["--nonblock", "--exclusive"])
            .arg(dir.join("db"))
            .arg("true")
            .status()
            .is_ok_and(|status| status.success());
        if free {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "sled never released {}", dir.display());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Opens a directory this process closed a moment ago: sled releases its lock
/// some time after the last handle drops (crossbeam's epoch garbage collection).
fn released<T>(open: impl Fn() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let deadline = std::time::Instant::now() + support::PATIENCE;
    loop {
        match open() {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => return opened,
        }
    }
}

fn records(log: &Log) -> Vec<(Vec<u8>, Vec<u8>)> {
    log.tree().iter().map(|entry| entry.expect("read")).map(|(key, value)| (key.to_vec(), value.to_vec())).collect()
}

#[test]
fn a_flipped_byte_in_any_kind_of_event_is_named_and_salvage_keeps_the_records_before_it() {
    let built = built();
    let head = built.events.last().expect("events").0;
    for kind in 0..EventBody::KINDS_COUNT {
        let &(sequence, _, record_first) = built.events.iter().find(|event| event.1 == kind).expect("kind");
        let dir = copy_of_built(&format!("corrupt-kind-{kind}"));
        tamper(&dir, sequence);

        let (code, report) = verify_cli(&dir);
        assert_eq!(code, 1, "kind {kind}: verify exits non-zero: {report}");
        assert_eq!(report["ok"], false, "kind {kind}");
        assert_eq!(report["first_bad_sequence"], sequence, "kind {kind}: {report}");
        assert_eq!(report["events"], sequence - 1, "kind {kind}: the events before it verify: {report}");
        let mismatch = report["first_mismatch"].as_str().expect("text");
        assert!(mismatch.starts_with(&format!("sequence {sequence}: ")), "kind {kind}: {mismatch}");

        let out = dir.with_extension("salvaged");
        let salvaged = salvage_cli(&dir, &out);
        assert_eq!(salvaged["kept_events"], record_first - 1, "kind {kind}: whole records before it: {salvaged}");
        assert_eq!(salvaged["first_bad_sequence"], sequence, "kind {kind}");
        assert_eq!(salvaged["dropped_events"], head - (record_first - 1), "kind {kind}: {salvaged}");
        assert_eq!(salvaged["dropped_before_bad"], sequence - record_first, "kind {kind}");
        check_salvaged(&out, record_first - 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_damaged_in_its_middle_is_dropped_whole_and_ledgerd_serves_the_rest_to_the_same_admin() {
    let built = built();
    let bad = built.bulk_first + 1;
    let dir = copy_of_built("corrupt-bulk");
    tamper(&dir, bad);
    let out = dir.with_extension("salvaged");
    let salvaged = salvage_cli(&dir, &out);
    assert_eq!(salvaged["first_bad_sequence"], bad);
    assert_eq!(salvaged["kept_events"], built.bulk_first - 1, "the bulk's good first item is not kept alone");
    assert_eq!(salvaged["dropped_before_bad"], 1);
    assert_eq!(salvaged["tokens_carried"], 1);
    assert_eq!(salvaged["admin_token_copied"], true);

    // ledgerd opens it; the admin token of the damaged directory still works.
    let server = Server::start_in(out, &["--expiry-sweep-secs", "0"]);
    assert_eq!(server.admin_token, support::read_token(&built.dir.join("admin.token")));
    let mut client = server.admin().await;
    let bob = pb::GetMemberRequest { program_id: PROGRAM.into(), member_id: "bob".into(), as_of: None };
    let status = client.members.get_member(bob).await.expect_err("bob's points were in the dropped bulk");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    let receipt = client.add(PROGRAM, "bob", 1).await;
    assert_eq!(receipt.transaction_id, built.bulk_first, "the chain goes on from the kept head");
    assert!(server.stop().success());
}

#[test]
fn a_flipped_byte_in_sleds_own_file_is_named_not_a_panic() {
    let built = built();
    let dir = copy_of_built("corrupt-sled-file");
    // Every copy sled keeps of one event's bytes (old page versions too) is damaged,
    // so the live one is; sled's checksum over it no longer passes.
    let db = open_offline(&dir).expect("open offline");
    let (sequence, _, _) = built.events[built.events.len() / 2];
    let stored = Log::open(&db).expect("log").event(sequence).expect("read").expect("the event");
    drop(db);
    wait_released(&dir);
    let needle = ledger_store::envelope::encode(&stored.envelope).bytes;
    let path = dir.join("db");
    let mut bytes = std::fs::read(&path).expect("read sled's file");
    let found: Vec<usize> = (0..bytes.len().saturating_sub(needle.len()))
        .filter(|&at| bytes[at..at + needle.len()] == needle[..])
        .collect();
    assert!(!found.is_empty(), "sled stores the event's bytes as they are");
    for at in found {
        bytes[at + needle.len() / 2] ^= 0x01;
    }
    std::fs::write(&path, bytes).expect("write sled's file");

    let (code, report) = verify_cli(&dir);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["ok"], false);
    let mismatch = report["first_mismatch"].as_str().expect("text");
    assert!(mismatch.contains("corrupt data (a checksum failed)"), "names sled's problem: {mismatch}");
    assert!(mismatch.contains(&path.display().to_string()), "names sled's file: {mismatch}");

    let out = dir.with_extension("salvaged");
    let salvaged = salvage_cli(&dir, &out);
    let kept = salvaged["kept_events"].as_u64().expect("count");
    assert!(kept < sequence, "nothing from the damaged page on is kept: {salvaged}");
    check_salvaged(&out, kept);
}

/// A directory this process cannot write to, undone when dropped.
enum ReadOnly {
    Mounted(PathBuf),
    Chmod(PathBuf),
    Immutable(PathBuf),
}

impl ReadOnly {
    /// A read-only bind mount when root can mount, `chmod a-w` when not root (root
    /// ignores it), else `chattr +i`; `None` when none of these is possible here.
    fn make(dir: &Path) -> Option<ReadOnly> {
        let shell = |command: &str, args: &[&str]| {
            Process::new(command).args(args).output().is_ok_and(|output| output.status.success())
        };
        let path = dir.display().to_string();
        if current_uid() != Some(0) {
            return shell("chmod", &["-R", "a-w", &path]).then(|| ReadOnly::Chmod(dir.to_owned()));
        }
        if shell("mount", &["--bind", &path, &path]) {
            if shell("mount", &["-o", "remount,bind,ro", &path]) {
                return Some(ReadOnly::Mounted(dir.to_owned()));
            }
            shell("umount", &[&path]);
        }
        shell("chattr", &["+i", &path]).then(|| ReadOnly::Immutable(dir.to_owned()))
    }
}

fn current_uid() -> Option<u32> {
    let output = Process::new("id").arg("-u").output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let (command, args): (&str, Vec<String>) = match self {
            ReadOnly::Mounted(dir) => ("umount", vec![dir.display().to_string()]),
            ReadOnly::Chmod(dir) => ("chmod", vec!["-R".into(), "u+w".into(), dir.display().to_string()]),
            ReadOnly::Immutable(dir) => ("chattr", vec!["-i".into(), dir.display().to_string()]),
        };
        let _ = Process::new(command).args(&args).status();
    }
}

#[test]
fn verify_and_salvage_work_on_a_read_only_directory() {
    let built = built();
    let head = built.events.last().expect("events").0;
    let dir = copy_of_built("corrupt-read-only");
    let (sequence, _, record_first) = built.events[built.events.len() / 3];
    tamper(&dir, sequence);
    let listing = |dir: &Path| {
        let mut names: Vec<_> =
            std::fs::read_dir(dir).expect("list").map(|entry| entry.expect("entry").file_name()).collect();
        names.sort();
        (names, std::fs::read(dir.join("db")).expect("read db"))
    };
    let before = listing(&dir);
    let Some(read_only) = ReadOnly::make(&dir) else {
        // FIXME: no way to make a read-only directory here (root without mount or
        // chattr): only the detection of a writable one is checked.
        assert!(ledger_store::audit::writable(&dir));
        return;
    };
    assert!(!ledger_store::audit::writable(&dir), "the directory is read-only");

    let (code, report) = verify_cli(&dir);
    assert_eq!((code, report["first_bad_sequence"].clone()), (1, Value::from(sequence)), "{report}");
    let notes = report["notes"].to_string();
    assert!(notes.contains("is read-only") && notes.contains("audited a copy"), "says so: {notes}");

    let out = fresh_dir("corrupt-read-only-out").join("salvaged");
    let salvaged = salvage_cli(&dir, &out);
    assert_eq!(salvaged["kept_events"], record_first - 1);
    assert_eq!(salvaged["dropped_events"], head - (record_first - 1));
    drop(read_only);
    assert_eq!(listing(&dir), before, "the read-only directory is as it was");
    check_salvaged(&out, record_first - 1);
}

async fn health(server: &Server, service: &str) -> i32 {
    let mut client = HealthClient::new(server.channel().await);
    let request = HealthCheckRequest { service: service.into() };
    client.check(request).await.expect("health check").into_inner().status
}

#[tokio::test(flavor = "multi_thread")]
async fn ledgerd_finds_an_old_tampered_event_in_the_background_and_refuses_writes() {
    let (server, mut client) = support::started("corrupt-integrity", &[PROGRAM]).await;
    for member in ["alice", "bob", "carol", "dave"] {
        client.add(PROGRAM, member, 10).await;
    }
    let dir = server.data_dir.clone();
    drop(client);
    assert!(server.stop().success(), "a clean stop checkpoints every event");
    let bad = 3;
    tamper(&dir, bad);

    // Start-up replays only the log after the checkpoint, so it starts.
    let server = Server::start_in(dir, &["--expiry-sweep-secs", "0"]);
    let patience = Patience::new("health to report the broken log");
    while health(&server, "ledger.v1.PointsService").await != ServingStatus::NotServing as i32 {
        patience.next().await;
    }
    // Reads go on: the server as a whole and the read services stay SERVING.
    assert_eq!(health(&server, "").await, ServingStatus::Serving as i32);
    assert_eq!(health(&server, "ledger.v1.MembersService").await, ServingStatus::Serving as i32);

    let mut client = server.admin().await;
    let add = pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        points: 1,
        remark: "after".into(),
        ..Default::default()
    };
    let status = client.points.add_points(add).await.expect_err("writes are refused");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let message = status.message();
    assert!(message.contains(&format!("integrity check at sequence {bad}")), "{message}");
    assert!(message.contains("ledger salvage"), "{message}");
    assert_eq!(client.member(PROGRAM, "alice").await.points, 10, "reads keep answering");
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn ledgerd_refuses_to_start_on_a_tampered_tail_and_says_what_to_run() {
    let dir = fresh_dir("corrupt-tail");
    let no_checkpoint = ["--checkpoint-interval-ms", "3600000", "--expiry-sweep-secs", "0"];
    let server = Server::start_in(dir.clone(), &no_checkpoint);
    let mut client = server.admin().await;
    client.create_program(PROGRAM).await;
    let last = client.add(PROGRAM, "alice", 10).await.transaction_id;
    drop(client);
    // Killed, not stopped: no checkpoint covers the events, start-up replays them.
    server.kill();
    tamper(&dir, last);

    let output = Process::new(env!("CARGO_BIN_EXE_ledgerd"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(no_checkpoint)
        .env("RUST_LOG", "off")
        .output()
        .expect("run ledgerd");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "ledgerd does not serve a log whose tail does not verify");
    assert!(stderr.contains(&format!("corrupt log at sequence {last}")), "{stderr}");
    assert!(stderr.contains("ledger salvage --data-dir"), "{stderr}");
}
