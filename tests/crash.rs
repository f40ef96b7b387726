//! Crash recovery: `ledgerd` under concurrent load (single adds, atomic bulks and
//! Echoss voucher imports)
//! is killed with SIGKILL at a random moment and restarted on the same data
//! directory, round after round. After each restart every acknowledged write is
//! there, no atomic bulk is half-applied, every balance equals the sum of the
//! writes that are there, every acknowledged voucher statement is there, the log
//! verifies and streams without a gap, and the log holds exactly the adds the test
//! knows to be there. One round in the middle
//! stops the server cleanly with SIGTERM instead; after the last kill the offline
//! audit runs on the crashed directory.
//!
//! The server checkpoints every few hundred events, so kills land on the
//! checkpoint path as well as on the log.
//!
//! `CRASH_ROUNDS` sets the number of kill rounds (10 by default); `CRASH_SEED`
//! repeats a run's random choices (kill moments, bulk sizes, members, amounts).
//! Thread timing is not repeatable, so a seed narrows a failure down rather than
//! replaying it exactly. The long loop:
//!
//! ```text
//! CRASH_ROUNDS=200 cargo test --release -p ledger-grpc --test crash -- --nocapture
//! ```

mod support;

use ledger_grpc::pb;
use ledger_store::Until;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{Clients, Server};
use tonic::Code;

const PROGRAM: &str = "crash";
/// The Echoss brand the voucher importer writes to.
const BRAND: i64 = 7;
/// At least the largest bulk, so that a bulk's items name distinct members.
const MEMBERS_COUNT: usize = 64;
const SINGLE_WRITERS_COUNT: usize = 4;
const BULK_WRITERS_COUNT: usize = 2;
const BULK_ITEMS: RangeInclusive<usize> = 20..=50;
const POINTS: RangeInclusive<i64> = 1..=1_000;
/// When the kill comes, counted from the start of the load.
const KILL_AFTER_MS: RangeInclusive<u64> = 50..=400;
const KILL_ROUNDS_DEFAULT: usize = 10;
/// Rounds on one data directory before the loop starts a fresh one.
const EPOCH_ROUNDS_DEFAULT: usize = 50;
/// The program the wallet writer's credits, coupons and levels go to, apart from
/// the points so that the points model stays exact.
const WALLET_PROGRAM: &str = "wallet";
const WALLET_MEMBERS_COUNT: usize = 8;
const LOOKUP_TASKS_COUNT: usize = 8;
const MEMBERS_PAGE_SIZE: u32 = 100;
/// Checkpoint often so that kills hit it; no sweep, so the log holds only our writes;
/// room for 16 members and references in memory, far fewer than the writers
/// touch, so that kills land while rows leave memory and are read back.
const SERVER_FLAGS: &[&str] = &[
    "--checkpoint-events",
    "200",
    "--checkpoint-interval-ms",
    "20",
    "--expiry-sweep-secs",
    "0",
    "--resident-rows",
    "16",
];

const _: () = assert!(*BULK_ITEMS.end() <= MEMBERS_COUNT);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let kill_rounds = env_number("CRASH_ROUNDS")
        .map_or(KILL_ROUNDS_DEFAULT, |rounds| usize::try_from(rounds).expect("CRASH_ROUNDS fits usize"));
    let seed = env_number("CRASH_SEED").unwrap_or_else(|| rand::rng().random());
    println!("crash: seed {seed} (CRASH_SEED={seed} repeats the random choices), {kill_rounds} kill rounds");
    let mut rng = StdRng::seed_from_u64(seed);

    let epoch_rounds = env_number("CRASH_EPOCH_ROUNDS")
        .map_or(EPOCH_ROUNDS_DEFAULT, |rounds| usize::try_from(rounds).expect("CRASH_EPOCH_ROUNDS fits usize"));
    let mut server = fresh_server().await;
    let mut model = Model::default();
    let mut wallets = Wallets::default();
    let clean_round = kill_rounds / 2;
    let mut totals = Totals::default();
    for round in 0..=kill_rounds {
        if round > 0 && round % epoch_rounds == 0 {
            // A fresh ledger now and then keeps a long loop's rounds (which stream
            // and replay the whole log) from growing with the log.
            stop_server(server, Stop::Term).await;
            server = fresh_server().await;
            (model, wallets) = (Model::default(), Wallets::default());
        }
        let stop = if round == clean_round { Stop::Term } else { Stop::Kill };
        let kill_after = Duration::from_millis(rng.random_range(KILL_AFTER_MS));
        let stopped = load_then_stop(server, round, &mut rng, kill_after, stop).await;
        let dir = stopped.dir;
        // What this start will load (checkpoint plus tail), activities included,
        // equals a full replay of the log, after every kill.
        audit_offline(&dir);
        server = Server::start_in(dir, SERVER_FLAGS);
        let summary = model.check(&server.admin().await, stopped.requests).await;
        let vouchers = check_imports(&mut server.admin().await, &stopped.imports).await;
        let wallet_summary = wallets.check(&mut server.admin().await, stopped.wallet_ops).await;
        totals.add(stop, &summary, vouchers + wallet_summary.acknowledged);
        println!(
            "crash: round {round} {stop:?} after {kill_after:?}: {}; {vouchers} acknowledged vouchers there; {}",
            summary.line(model.events),
            wallet_summary.line()
        );
    }
    stop_server(server, Stop::Term).await;
    println!("crash: {}", totals.line());
}

/// A server on a fresh directory with the programs the writers use.
async fn fresh_server() -> Server {
    let server = Server::start_in(support::fresh_dir("crash"), SERVER_FLAGS);
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    admin.create_program(&BRAND.to_string()).await;
    Wallets::setup(&mut admin).await;
    server
}

/// What a whole run did, for the note of a long loop.
#[derive(Default)]
struct Totals {
    kills: usize,
    terms: usize,
    acknowledged: usize,
}

impl Totals {
    fn add(&mut self, stop: Stop, summary: &Summary, others: usize) {
        match stop {
            Stop::Kill => self.kills += 1,
            Stop::Term => self.terms += 1,
        }
        self.acknowledged += summary.acknowledged + others;
    }

    /// Lost and mismatched are 0 whenever this prints: any loss or mismatch fails the run first.
    fn line(&self) -> String {
        format!(
            "{} SIGKILLs, {} SIGTERMs, {} acknowledged writes, 0 lost, 0 mismatches",
            self.kills, self.terms, self.acknowledged
        )
    }
}

/// A start replays the log after the last checkpoint; the rows that tail changed
/// must reach the next checkpoint, or the start after that loads a checkpoint
/// without them: a member and its balance gone, a reference forgotten so that a
/// retry applies twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_replayed_at_start_reaches_the_next_checkpoint() {
    let rare_checkpoints = &["--checkpoint-events", "1000000", "--checkpoint-interval-ms", "3600000"];
    let add = |member: &str, reference: &str| Item { reference: reference.into(), member: member.into(), points: 10 };
    let server = Server::start_in(support::fresh_dir("crash-tail"), rare_checkpoints);
    server.admin().await.create_program(PROGRAM).await;
    // A clean stop checkpoints: the program is in the checkpoint.
    let server = Server::start_in(stop_server(server, Stop::Term).await, rare_checkpoints);
    add_points(&mut server.admin().await, &add("m1", "tail")).await.expect("add to m1");
    // Killed before any checkpoint: the add to m1 is only in the log.
    let server = Server::start_in(stop_server(server, Stop::Kill).await, rare_checkpoints);
    add_points(&mut server.admin().await, &add("m2", "after")).await.expect("add to m2");
    // This clean stop checkpoints up to the head, past the replayed add to m1.
    let dir = stop_server(server, Stop::Term).await;
    audit_offline(&dir);
    let server = Server::start_in(dir, rare_checkpoints);
    let mut admin = server.admin().await;
    assert_eq!(admin.member(PROGRAM, "m1").await.points, 10, "balance of m1");
    let retry = add_points(&mut admin, &add("m1", "tail")).await.expect("retry the add to m1");
    assert!(retry.duplicate, "a retry of the replayed add applied again: {retry:?}");
    stop_server(server, Stop::Term).await;
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    Term,
}

/// One write: a single add, or one item of a bulk.
#[derive(Clone, Debug)]
struct Item {
    reference: String,
    member: String,
    points: i64,
}

/// A request a writer sent, with the first transaction id of its reply if it was
/// acknowledged.
#[derive(Debug)]
struct Sent {
    items: Vec<Item>,
    atomic_bulk: bool,
    acknowledged: Option<u64>,
}

/// Stops `server` the way `stop` says and returns its data directory.
async fn stop_server(server: Server, stop: Stop) -> PathBuf {
    // Off the runtime: a clean stop waits for the server to say goodbye to clients
    // that live on this runtime.
    tokio::task::spawn_blocking(move || match stop {
        Stop::Kill => server.kill(),
        Stop::Term => {
            let dir = server.data_dir.clone();
            let status = server.stop();
            assert!(status.success(), "ledgerd exited with {status} on SIGTERM");
            dir
        }
    })
    .await
    .expect("stop ledgerd")
}

struct Round {
    dir: PathBuf,
    requests: Vec<Sent>,
    /// Voucher imports: (identifiers, acknowledged).
    imports: Vec<(Vec<String>, bool)>,
    wallet_ops: Vec<WalletOp>,
}

/// Runs the writers against `server`, stops it after `kill_after`, and returns
/// every request they sent.
async fn load_then_stop(server: Server, round: usize, rng: &mut StdRng, kill_after: Duration, stop: Stop) -> Round {
    let stopping = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for index in 0..SINGLE_WRITERS_COUNT + BULK_WRITERS_COUNT {
        let writer = Writer {
            clients: server.admin().await,
            name: format!("r{round}-w{index}"),
            atomic_bulk: index >= SINGLE_WRITERS_COUNT,
            rng: StdRng::seed_from_u64(rng.random()),
            stopping: stopping.clone(),
        };
        writers.push(tokio::spawn(writer.run()));
    }
    let importer = tokio::spawn(import_vouchers(server.admin().await, format!("r{round}"), stopping.clone()));
    let wallet = WalletWriter {
        clients: server.admin().await,
        name: format!("r{round}-wallet"),
        rng: StdRng::seed_from_u64(rng.random()),
        stopping: stopping.clone(),
    };
    let wallet = tokio::spawn(wallet.run());
    // The one sleep of the test: the kill's moment is the variable under test.
    tokio::time::sleep(kill_after).await;
    stopping.store(true, Ordering::SeqCst);
    let dir = stop_server(server, stop).await;
    let mut requests = Vec::new();
    for writer in writers {
        requests.extend(writer.await.expect("writer task"));
    }
    let imports = importer.await.expect("importer task");
    let wallet_ops = wallet.await.expect("wallet task");
    Round { dir, requests, imports, wallet_ops }
}

/// Imports batches of voucher statements with fresh identifiers (Echoss brand
/// `BRAND`) until the server goes down, so that kills also land on voucher rows
/// and their report indexes.
async fn import_vouchers(mut clients: Clients, round: String, stopping: Arc<AtomicBool>) -> Vec<(Vec<String>, bool)> {
    let mut imports = Vec::new();
    loop {
        let identifiers: Vec<String> = (0..3).map(|item| format!("{round}-{}-{item}", imports.len())).collect();
        let data = identifiers
            .iter()
            .map(|identifier| pb::VoucherStatementData {
                brand_id: BRAND,
                promotion_id: 1,
                voucher_identifier: identifier.clone(),
                voucher_number: format!("N{identifier}"),
                voucher_name: "瓦城 288元".into(),
                line_id: format!("line-{}", identifier.len() % 7),
                sent_at: Some(prost_types::Timestamp { seconds: 1_613_527_615, nanos: 0 }),
                ..Default::default()
            })
            .collect();
        let reply = clients.vouchers.import_voucher_statements(pb::ImportVoucherStatementsRequest { data }).await;
        match reply {
            Ok(_) => imports.push((identifiers, true)),
            Err(status) => {
                assert!(stopping.load(Ordering::SeqCst), "import failed before the stop: {status:?}");
                imports.push((identifiers, false));
                return imports;
            }
        }
    }
}

/// Every acknowledged voucher import is there after the restart, at version 1.
async fn check_imports(clients: &mut Clients, imports: &[(Vec<String>, bool)]) -> usize {
    let mut checked = 0;
    for (identifiers, _) in imports.iter().filter(|(_, acknowledged)| *acknowledged) {
        for identifier in identifiers {
            let request = pb::GetVoucherStatementRequest {
                brand_id: BRAND,
                promotion_id: 1,
                voucher_identifier: identifier.clone(),
            };
            let found = clients.vouchers.get_voucher_statement(request).await;
            let found = found.unwrap_or_else(|status| panic!("acknowledged voucher {identifier} lost: {status:?}"));
            assert_eq!(found.into_inner().version, 1, "voucher {identifier} imported once");
            checked += 1;
        }
    }
    checked
}

struct Writer {
    clients: Clients,
    name: String,
    atomic_bulk: bool,
    rng: StdRng,
    stopping: Arc<AtomicBool>,
}

impl Writer {
    /// Sends requests one after another until one fails, which must be because
    /// the server is going down; the failed one is recorded as unanswered.
    async fn run(mut self) -> Vec<Sent> {
        let mut sent = Vec::new();
        loop {
            let items = self.items(sent.len());
            let reply = if self.atomic_bulk { self.bulk(&items).await } else { self.single(&items[0]).await };
            let atomic_bulk = self.atomic_bulk;
            match reply {
                Ok(first) => sent.push(Sent { items, atomic_bulk, acknowledged: Some(first) }),
                Err(status) => {
                    assert!(self.stopping.load(Ordering::SeqCst), "{}: failed before the stop: {status:?}", self.name);
                    sent.push(Sent { items, atomic_bulk, acknowledged: None });
                    return sent;
                }
            }
        }
    }

    fn items(&mut self, request: usize) -> Vec<Item> {
        let count = if self.atomic_bulk { self.rng.random_range(BULK_ITEMS) } else { 1 };
        let members = rand::seq::index::sample(&mut self.rng, MEMBERS_COUNT, count);
        members
            .iter()
            .enumerate()
            .map(|(index, member)| Item {
                reference: format!("{}-{request}-{index}", self.name),
                member: member_id(member),
                points: self.rng.random_range(POINTS),
            })
            .collect()
    }

    async fn single(&mut self, item: &Item) -> Result<u64, tonic::Status> {
        let receipt = add_points(&mut self.clients, item).await?;
        assert!(!receipt.duplicate, "{}: fresh reference taken as a duplicate", item.reference);
        assert_eq!(receipt.points, item.points, "{}", item.reference);
        Ok(receipt.transaction_id)
    }

    async fn bulk(&mut self, items: &[Item]) -> Result<u64, tonic::Status> {
        let request = pb::BulkAddPointsRequest {
            program_id: PROGRAM.into(),
            items: items
                .iter()
                .map(|item| pb::BulkAddItem {
                    member_id: item.member.clone(),
                    points: item.points,
                    remark: "crash".into(),
                    reference: item.reference.clone(),
                    ..Default::default()
                })
                .collect(),
            atomic: true,
        };
        let result = self.clients.points.bulk_add_points(request).await?.into_inner();
        let reference = &items[0].reference;
        assert_eq!(result.fail_at, None, "{reference}: {:?}", result.failure);
        assert!(result.duplicates.is_empty(), "{reference}: duplicates {:?}", result.duplicates);
        assert_eq!(usize::try_from(result.applied_count).unwrap(), items.len(), "{reference}");
        assert_eq!(span(result.first_transaction_id, items.len()), result.last_transaction_id, "{reference}");
        Ok(result.first_transaction_id)
    }
}

async fn add_points(clients: &mut Clients, item: &Item) -> Result<pb::PointsReceipt, tonic::Status> {
    let request = pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: item.member.clone(),
        points: item.points,
        remark: "crash".into(),
        reference: item.reference.clone(),
        ..Default::default()
    };
    Ok(clients.points.add_points(request).await?.into_inner())
}

fn member_id(index: usize) -> String {
    format!("m{index:02}")
}

/// The last transaction id of `count` consecutive ones from `first`.
fn span(first: u64, count: usize) -> u64 {
    first + u64::try_from(count).unwrap() - 1
}

/// A write the ledger holds.
#[derive(Debug, PartialEq, Eq)]
struct Present {
    member: String,
    points: i64,
    transaction_id: u64,
}

/// What the ledger must hold: every write known to be there, by reference.
#[derive(Default)]
struct Model {
    present: BTreeMap<String, Present>,
    /// The references found after the last restart. They are looked up again after
    /// the next one: a row the tail replay at one start left out of the checkpoints
    /// is missing only once a later start loads those checkpoints.
    previous: Vec<String>,
    events: u64,
}

type Found = BTreeMap<String, Option<pb::Activity>>;

/// What one round's points writes came to.
struct Summary {
    acknowledged: usize,
    unanswered: usize,
    unanswered_present: usize,
}

impl Summary {
    fn line(&self, events: u64) -> String {
        format!(
            "{} writes acknowledged, {} of {} unanswered present, {events} events",
            self.acknowledged, self.unanswered_present, self.unanswered
        )
    }
}

impl Model {
    /// Checks the restarted server against the model and this round's requests,
    /// and adds the writes of this round that are there to the model.
    async fn check(&mut self, clients: &Clients, requests: Vec<Sent>) -> Summary {
        let mut references = self.previous.clone();
        references.extend(requests.iter().flat_map(|sent| sent.items.iter().map(|item| item.reference.clone())));
        let found = lookup_all(clients, references).await;
        for reference in &self.previous {
            let transaction_id = found[reference].as_ref().map(|activity| activity.transaction_id);
            assert_eq!(
                transaction_id,
                Some(self.present[reference].transaction_id),
                "{reference} gone after a restart"
            );
        }
        self.previous.clear();
        let (mut acknowledged_count, mut unanswered_count, mut unanswered_present_count) = (0, 0, 0);
        for sent in &requests {
            let present_count = self.resolve(sent, &found);
            if sent.acknowledged.is_some() {
                acknowledged_count += sent.items.len();
            } else {
                unanswered_count += sent.items.len();
                unanswered_present_count += present_count;
            }
        }
        self.check_balances(&mut clients.clone()).await;
        self.check_log(&mut clients.clone()).await;
        Summary {
            acknowledged: acknowledged_count,
            unanswered: unanswered_count,
            unanswered_present: unanswered_present_count,
        }
    }

    /// Checks the items of `sent` found against the reply, records those there and
    /// returns how many are.
    fn resolve(&mut self, sent: &Sent, found: &Found) -> usize {
        let found: Vec<&pb::Activity> = sent.items.iter().filter_map(|item| found[&item.reference].as_ref()).collect();
        let first_reference = &sent.items[0].reference;
        match sent.acknowledged {
            Some(_) => assert_eq!(found.len(), sent.items.len(), "acknowledged writes lost, from {first_reference}"),
            None if sent.atomic_bulk => assert!(
                found.is_empty() || found.len() == sent.items.len(),
                "atomic bulk half-applied: {} of {} items, from {first_reference}",
                found.len(),
                sent.items.len()
            ),
            None => {}
        }
        let Some(first) = sent.acknowledged.or_else(|| found.first().map(|activity| activity.transaction_id)) else {
            return 0;
        };
        // Present items are all the items here: a single add, or a whole bulk.
        for ((item, activity), transaction_id) in sent.items.iter().zip(&found).zip(first..) {
            self.record(item, activity, transaction_id);
        }
        found.len()
    }

    fn record(&mut self, item: &Item, activity: &pb::Activity, transaction_id: u64) {
        let reference = &item.reference;
        assert_eq!(activity.transaction_id, transaction_id, "{reference}: transaction id");
        assert_eq!(activity.member_id, item.member, "{reference}: member");
        assert_eq!(activity.amount, item.points.to_string(), "{reference}: amount");
        let present = Present { member: item.member.clone(), points: item.points, transaction_id };
        let earlier = self.present.insert(reference.clone(), present);
        assert_eq!(earlier, None, "{reference} recorded twice");
        self.previous.push(reference.clone());
    }

    /// Every member's balance is the sum of its writes that are there, and no
    /// other member exists.
    async fn check_balances(&self, clients: &mut Clients) {
        let mut expected = BTreeMap::<String, i64>::new();
        for present in self.present.values() {
            *expected.entry(present.member.clone()).or_default() += present.points;
        }
        let mut listed = BTreeMap::new();
        let mut page_token = String::new();
        loop {
            let request = pb::ListMembersRequest {
                program_id: PROGRAM.into(),
                page_size: MEMBERS_PAGE_SIZE,
                page_token,
                offset: 0,
            };
            let page = clients.members.list_members(request).await.expect("list members").into_inner();
            listed.extend(page.members.into_iter().map(|member| (member.member_id, member.points)));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert!(listed == expected, "balances differ from the sums of present writes: {}", diff(&listed, &expected));
    }

    /// The log verifies, did not shrink, streams from 1 without a gap or a broken
    /// link, and holds exactly the writes the model holds.
    async fn check_log(&mut self, clients: &mut Clients) {
        let verified = clients.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify log").into_inner();
        assert!(verified.ok, "log does not verify: {}", verified.first_mismatch);
        assert!(verified.events >= self.events, "log shrank from {} to {} events", self.events, verified.events);
        self.events = verified.events;
        let request = pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() };
        let mut stream = clients.audit.stream_events(request).await.expect("stream events").into_inner();
        let mut logged = BTreeMap::new();
        let mut previous = pb::Event::default();
        while previous.sequence < verified.events {
            let event = stream.message().await.expect("stream events").expect("the feed follows live");
            assert_eq!(event.sequence, previous.sequence + 1, "gap in the event stream");
            if previous.sequence > 0 {
                assert_eq!(event.prev_hash, previous.hash, "broken link at sequence {}", event.sequence);
            }
            if event.kind == "PointsAdded" {
                let payload: serde_json::Value = serde_json::from_str(&event.payload_json).expect("payload is JSON");
                let reference = payload["body"]["PointsAdded"]["reference"].as_str().expect("reference").to_owned();
                logged.insert(reference, event.sequence);
            }
            previous = event;
        }
        assert_eq!(previous.hash, verified.head_hash, "the stream ends at the verified head");
        let modelled: BTreeMap<String, u64> =
            self.present.iter().map(|(reference, present)| (reference.clone(), present.transaction_id)).collect();
        assert!(
            logged == modelled,
            "the log's adds differ from the writes known present: {}",
            diff(&logged, &modelled)
        );
    }
}

/// Looks `references` up by GetActivity, a few at a time.
async fn lookup_all(clients: &Clients, references: Vec<String>) -> Found {
    let chunk_size = references.len().div_ceil(LOOKUP_TASKS_COUNT).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in references.chunks(chunk_size) {
        let (mut clients, chunk) = (clients.clone(), chunk.to_vec());
        tasks.spawn(async move {
            let mut found = Found::new();
            for reference in chunk {
                let activity = activity(&mut clients, &reference).await;
                found.insert(reference, activity);
            }
            found
        });
    }
    let mut found = Found::new();
    while let Some(chunk) = tasks.join_next().await {
        found.extend(chunk.expect("lookup task"));
    }
    found
}

/// The activity with `reference`, or `None` if the ledger has none.
async fn activity(clients: &mut Clients, reference: &str) -> Option<pb::Activity> {
    activity_in(clients, PROGRAM, reference).await
}

async fn activity_in(clients: &mut Clients, program: &str, reference: &str) -> Option<pb::Activity> {
    let request = pb::GetActivityRequest { program_id: program.into(), transaction_id: 0, reference: reference.into() };
    match clients.audit.get_activity(request).await {
        Ok(reply) => Some(reply.into_inner()),
        Err(status) if status.code() == Code::NotFound => None,
        Err(status) => panic!("get activity {reference} in {program}: {status:?}"),
    }
}

fn diff<V: PartialEq + std::fmt::Debug>(got: &BTreeMap<String, V>, want: &BTreeMap<String, V>) -> String {
    let extra: Vec<_> = got.iter().filter(|(key, _)| !want.contains_key(*key)).take(5).collect();
    let missing: Vec<_> = want.iter().filter(|(key, _)| !got.contains_key(*key)).take(5).collect();
    let changed: Vec<_> = got
        .iter()
        .filter_map(|(key, value)| want.get(key).filter(|wanted| *wanted != value).map(|wanted| (key, value, wanted)))
        .take(5)
        .collect();
    format!("unexpected {extra:?}, missing {missing:?}, (key, got, want) {changed:?}")
}

/// The offline audit on a directory no server holds: the chain verifies, and the
/// projections a start would load (checkpoint plus tail) equal a full replay.
fn audit_offline(dir: &Path) {
    let verified = ledger_store::audit::verify_dir(dir, |_| {}).expect("verify offline");
    assert!(verified.ok, "offline verify: {}", verified.first_mismatch);
    let replayed = ledger_store::audit::replay_dir(dir, Until::End, |_| {}).expect("replay offline");
    assert_eq!(replayed.events, verified.events, "replay and verify see the same log");
    assert_eq!(replayed.difference, None, "checkpoint plus tail differs from a full replay");
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|error| panic!("{name}={value:?}: {error}")))
}

/// One credits, coupons or level change the wallet writer sent.
#[derive(Clone, Debug)]
struct WalletOp {
    reference: String,
    member: String,
    change: WalletChange,
    acknowledged: bool,
}

#[derive(Clone, Copy, Debug)]
enum WalletChange {
    /// Signed, in hundredths of the credit.
    Credits(i64),
    /// Signed: a grant or a use of one.
    Coupons(i64),
    /// SetMemberLevels (no reference): checked by the offline audit's replay only.
    Level(u32),
}

const CREDIT: &str = "wallet";
const COUPON: &str = "coffee";

/// Credits, coupons and member levels written beside the points, and reversals of
/// the writer's own credits and coupon changes, so that kills land on every kind
/// of event and on activities whose balance is not points.
struct WalletWriter {
    clients: Clients,
    name: String,
    rng: StdRng,
    stopping: Arc<AtomicBool>,
}

impl WalletWriter {
    async fn run(mut self) -> Vec<WalletOp> {
        let mut sent = Vec::new();
        // Acknowledged credits and coupon changes not reversed yet: (transaction id,
        // member, change), for the reversals below.
        let mut reversible: Vec<(u64, String, WalletChange)> = Vec::new();
        loop {
            let reference = format!("{}-{}", self.name, sent.len());
            // A reversal (SPEC §15) is, to the model, the opposite change of the same
            // member, there or not like any other change with a reference.
            if !reversible.is_empty() && self.rng.random_range(0..6) == 0 {
                let (transaction_id, member, change) =
                    reversible.swap_remove(self.rng.random_range(0..reversible.len()));
                let opposite = match change {
                    WalletChange::Credits(cents) => WalletChange::Credits(-cents),
                    WalletChange::Coupons(count) => WalletChange::Coupons(-count),
                    WalletChange::Level(_) => unreachable!("levels are not reversed"),
                };
                let request = pb::ReverseTransactionRequest {
                    program_id: WALLET_PROGRAM.into(),
                    transaction_id,
                    remark: "crash".into(),
                    reference: reference.clone(),
                };
                match self.clients.transactions.reverse_transaction(request).await {
                    Ok(_) => sent.push(WalletOp { reference, member, change: opposite, acknowledged: true }),
                    // What it added was spent since: nothing changed.
                    Err(status) if status.code() == Code::FailedPrecondition => {}
                    Err(status) => {
                        assert!(
                            self.stopping.load(Ordering::SeqCst),
                            "{}: failed before the stop: {status:?}",
                            self.name
                        );
                        sent.push(WalletOp { reference, member, change: opposite, acknowledged: false });
                        return sent;
                    }
                }
                continue;
            }
            let member = format!("w{}", self.rng.random_range(0..WALLET_MEMBERS_COUNT));
            let change = match self.rng.random_range(0..5) {
                0 | 1 => WalletChange::Credits(self.rng.random_range(1..=5_000)),
                2 => WalletChange::Credits(-self.rng.random_range(1..=2_000)),
                3 if self.rng.random_bool(0.5) => WalletChange::Coupons(self.rng.random_range(1..=3)),
                3 => WalletChange::Coupons(-1),
                _ => WalletChange::Level(self.rng.random_range(0..=2)),
            };
            let reply = self.send(&member, &reference, change).await;
            match reply {
                Ok(transaction_id) => {
                    if let Some(transaction_id) = transaction_id {
                        reversible.push((transaction_id, member.clone(), change));
                    }
                    sent.push(WalletOp { reference, member, change, acknowledged: true });
                }
                // Refused (not enough credits or coupons): nothing changed.
                Err(status) if status.code() == Code::FailedPrecondition => {}
                Err(status) => {
                    assert!(self.stopping.load(Ordering::SeqCst), "{}: failed before the stop: {status:?}", self.name);
                    sent.push(WalletOp { reference, member, change, acknowledged: false });
                    return sent;
                }
            }
        }
    }

    /// Sends one change; answers its transaction id, but for a level (not reversible).
    async fn send(
        &mut self,
        member: &str,
        reference: &str,
        change: WalletChange,
    ) -> Result<Option<u64>, tonic::Status> {
        let (program_id, member_id, reference) = (WALLET_PROGRAM.to_owned(), member.to_owned(), reference.to_owned());
        let remark = "crash".to_owned();
        match change {
            WalletChange::Credits(cents) if cents > 0 => {
                let amount = credit_amount(cents);
                let request = pb::AddCreditsRequest {
                    program_id,
                    member_id,
                    credit_id: CREDIT.into(),
                    amount,
                    remark,
                    reference,
                };
                self.clients.credits.add_credits(request).await.map(|reply| Some(reply.into_inner().transaction_id))
            }
            WalletChange::Credits(cents) => {
                let amount = credit_amount(-cents);
                let request = pb::UseCreditsRequest {
                    program_id,
                    member_id,
                    credit_id: CREDIT.into(),
                    amount,
                    remark,
                    reference,
                };
                self.clients.credits.use_credits(request).await.map(|reply| Some(reply.into_inner().transaction_id))
            }
            WalletChange::Coupons(count) if count > 0 => {
                let count = u32::try_from(count).expect("small count");
                let request = pb::GrantCouponsRequest {
                    program_id,
                    member_id,
                    coupon_id: COUPON.into(),
                    name: "Free coffee".into(),
                    count,
                    reference,
                };
                self.clients.coupons.grant_coupons(request).await.map(|reply| Some(reply.into_inner().transaction_id))
            }
            WalletChange::Coupons(_) => {
                let request =
                    pb::UseCouponRequest { program_id, member_id, coupon_id: COUPON.into(), remark, reference };
                self.clients.coupons.use_coupon(request).await.map(|reply| Some(reply.into_inner().transaction_id))
            }
            WalletChange::Level(level) => {
                let levels = vec![pb::MemberLevel { member_id, level }];
                self.clients
                    .members
                    .set_member_levels(pb::SetMemberLevelsRequest { program_id, levels })
                    .await
                    .map(|_| None)
            }
        }
    }
}

fn credit_amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// What the wallet program must hold: every change known to be there, by reference.
#[derive(Default)]
struct Wallets {
    present: BTreeMap<String, (String, WalletChange)>,
}

struct WalletSummary {
    acknowledged: usize,
    unanswered_present: usize,
    unanswered: usize,
}

impl WalletSummary {
    fn line(&self) -> String {
        format!(
            "wallet: {} acknowledged, {} of {} unanswered present",
            self.acknowledged, self.unanswered_present, self.unanswered
        )
    }
}

impl Wallets {
    async fn setup(admin: &mut Clients) {
        admin.create_program(WALLET_PROGRAM).await;
        let define = pb::DefineCreditRequest {
            program_id: WALLET_PROGRAM.into(),
            credit_id: CREDIT.into(),
            name: "Wallet".into(),
            unit: "TWD".into(),
        };
        admin.credits.define_credit(define).await.expect("define the credit");
        for (name, lowest_amount) in [("Silver", 0), ("Gold", 1_000)] {
            let card = pb::CreateMemberCardRequest {
                program_id: WALLET_PROGRAM.into(),
                name: name.into(),
                lowest_amount,
                ..Default::default()
            };
            admin.tiers.create_member_card(card).await.expect("create a card");
        }
    }

    /// Every acknowledged change with a reference is there after the restart, and
    /// so is every change found before; each member's credits and coupons are the
    /// sums of the changes there.
    async fn check(&mut self, clients: &mut Clients, ops: Vec<WalletOp>) -> WalletSummary {
        for reference in self.present.keys() {
            assert!(wallet_activity(clients, reference).await.is_some(), "wallet change {reference} gone");
        }
        let mut summary = WalletSummary { acknowledged: 0, unanswered_present: 0, unanswered: 0 };
        for op in ops {
            if matches!(op.change, WalletChange::Level(_)) {
                continue;
            }
            let found = wallet_activity(clients, &op.reference).await;
            if op.acknowledged {
                summary.acknowledged += 1;
                let activity =
                    found.as_ref().unwrap_or_else(|| panic!("acknowledged wallet change {} lost", op.reference));
                assert_eq!(activity.member_id, op.member, "{}", op.reference);
            } else {
                summary.unanswered += 1;
                summary.unanswered_present += usize::from(found.is_some());
            }
            if found.is_some() {
                self.present.insert(op.reference, (op.member, op.change));
            }
        }
        let mut credits = BTreeMap::<&str, i64>::new();
        let mut coupons = BTreeMap::<&str, i64>::new();
        for (member, change) in self.present.values() {
            match change {
                WalletChange::Credits(cents) => *credits.entry(member).or_default() += cents,
                WalletChange::Coupons(count) => *coupons.entry(member).or_default() += count,
                WalletChange::Level(_) => {}
            }
        }
        for index in 0..WALLET_MEMBERS_COUNT {
            let member_id = format!("w{index}");
            let request = support::get_member(WALLET_PROGRAM, &member_id);
            let member = match clients.members.get_member(request).await {
                Ok(reply) => reply.into_inner(),
                Err(status) if status.code() == Code::NotFound => pb::Member::default(),
                Err(status) => panic!("get member {member_id}: {status:?}"),
            };
            let held = member.credits.iter().find(|credit| credit.credit_id == CREDIT).map_or("0", |c| &c.amount);
            let want = credits.get(member_id.as_str()).copied().unwrap_or(0);
            assert_eq!(
                held.parse::<rust_decimal::Decimal>().unwrap(),
                rust_decimal::Decimal::new(want, 2),
                "{member_id}: credits"
            );
            let held =
                member.coupons.iter().find(|coupon| coupon.coupon_id == COUPON).map_or(0, |c| i64::from(c.count));
            assert_eq!(held, coupons.get(member_id.as_str()).copied().unwrap_or(0), "{member_id}: coupons");
        }
        summary
    }
}

async fn wallet_activity(clients: &mut Clients, reference: &str) -> Option<pb::Activity> {
    activity_in(clients, WALLET_PROGRAM, reference).await
}

/// The activity history of every kind reads the same after a SIGKILL as before
/// it, field by field: recovery folds the replayed tail exactly as the writer did
/// (credits and coupons once showed points as their balance after a restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_of_every_kind_read_the_same_after_kill_9() {
    // No checkpoint before the kill: everything below is recovered from the log tail.
    let rare_checkpoints = &["--checkpoint-events", "1000000", "--checkpoint-interval-ms", "3600000"];
    let server = Server::start_in(support::fresh_dir("crash-activities"), rare_checkpoints);
    let mut admin = server.admin().await;
    admin.create_program(PROGRAM).await;
    admin.create_program(&BRAND.to_string()).await;
    Wallets::setup(&mut admin).await;
    admin.add(WALLET_PROGRAM, "w0", 1_500).await;
    let mut writer = WalletWriter {
        clients: admin.clone(),
        name: "every-kind".into(),
        rng: StdRng::seed_from_u64(7),
        stopping: Arc::new(AtomicBool::new(false)),
    };
    let changes = [
        WalletChange::Credits(1_250),
        WalletChange::Coupons(3),
        WalletChange::Coupons(-1),
        WalletChange::Credits(-250),
        WalletChange::Level(2),
    ];
    for (index, change) in changes.into_iter().enumerate() {
        writer.send("w0", &format!("kind-{index}"), change).await.expect("wallet change");
    }
    let voucher = pb::VoucherStatementData {
        brand_id: BRAND,
        promotion_id: 1,
        voucher_identifier: "v1".into(),
        voucher_number: "N1".into(),
        voucher_name: "瓦城 288元".into(),
        line_id: "line-1".into(),
        sent_at: Some(prost_types::Timestamp { seconds: 1_613_527_615, nanos: 0 }),
        ..Default::default()
    };
    let import = pb::ImportVoucherStatementsRequest { data: vec![voucher] };
    admin.vouchers.import_voucher_statements(import).await.expect("import a voucher");
    // Reversals of a credits use, a coupon use and the points add (SPEC §15): their
    // activities and the `reversed_by` of what they undid read the same after the kill.
    let mut reversed = Vec::new();
    for reference in ["kind-3", "kind-2"] {
        let found = wallet_activity(&mut admin, reference).await.expect("the wallet change");
        reversed.push(found.transaction_id);
    }
    let points = all_activities(&mut admin).await.into_iter().find(|activity| activity.kind == "POINTS");
    reversed.push(points.expect("the points add").transaction_id);
    for (index, transaction_id) in reversed.iter().enumerate() {
        let request = pb::ReverseTransactionRequest {
            program_id: WALLET_PROGRAM.into(),
            transaction_id: *transaction_id,
            remark: "crash".into(),
            reference: format!("undo-{index}"),
        };
        admin.transactions.reverse_transaction(request).await.expect("reverse");
    }
    let before = all_activities(&mut admin).await;
    let shown = before.iter().filter(|activity| activity.reversed_by.is_some()).count();
    assert_eq!(shown, reversed.len(), "each reversed activity shows its reversal");
    let kinds: std::collections::BTreeSet<&str> = before.iter().map(|activity| activity.kind.as_str()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["COUPONS", "CREDITS", "POINTS", "TIERS", "VOUCHERS"]);
    let credit = before.iter().find(|activity| activity.reference == "kind-0").expect("the credits add");
    assert_eq!((credit.amount.as_str(), credit.balance_after.as_str()), ("12.5", "12.5"));
    let grant = before.iter().find(|activity| activity.reference == "kind-1").expect("the coupon grant");
    assert_eq!(grant.balance_after, "3");

    let server = Server::start_in(stop_server(server, Stop::Kill).await, rare_checkpoints);
    let mut admin = server.admin().await;
    let after = all_activities(&mut admin).await;
    assert_eq!(after, before, "activities after the kill");
    // Reversed once, also after recovery.
    let again = pb::ReverseTransactionRequest {
        program_id: WALLET_PROGRAM.into(),
        transaction_id: reversed[0],
        remark: "crash".into(),
        reference: String::new(),
    };
    let status = admin.transactions.reverse_transaction(again).await.expect_err("reversed already");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // And after a clean stop, which checkpoints the recovered tail.
    let server = Server::start_in(stop_server(server, Stop::Term).await, rare_checkpoints);
    assert_eq!(all_activities(&mut server.admin().await).await, before, "activities after a checkpoint");
    audit_offline(&stop_server(server, Stop::Term).await);
}

/// Every activity of the wallet program and of the brand, newest first.
async fn all_activities(clients: &mut Clients) -> Vec<pb::Activity> {
    let mut all = Vec::new();
    for program_id in [WALLET_PROGRAM.to_owned(), BRAND.to_string()] {
        let mut page_token = String::new();
        loop {
            let request = pb::ListActivitiesRequest {
                program_id: program_id.clone(),
                page_size: 100,
                page_token,
                ..Default::default()
            };
            let page = clients.audit.list_activities(request).await.expect("list activities").into_inner();
            all.extend(page.activities);
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    all
}

/// A clean stop under load: SIGTERM while 16 clients write. Every write the
/// server acknowledged is there after the restart, the log holds exactly the
/// writes that are there, and no client was told yes by a server that then lost
/// the write in its shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_keeps_every_acknowledged_write() {
    const WRITERS_COUNT: usize = 16;
    let server = Server::start_in(support::fresh_dir("crash-term"), SERVER_FLAGS);
    server.admin().await.create_program(PROGRAM).await;
    let stopping = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for index in 0..WRITERS_COUNT {
        let writer = Writer {
            clients: server.admin().await,
            name: format!("term-w{index}"),
            atomic_bulk: index % 4 == 3,
            rng: StdRng::seed_from_u64(u64::try_from(index).unwrap()),
            stopping: stopping.clone(),
        };
        writers.push(tokio::spawn(writer.run()));
    }
    // Stop once every writer has been acknowledged a few times: mid-load, not before it.
    let patience = support::Patience::new("writes before the stop");
    let mut admin = server.admin().await;
    loop {
        let verified = admin.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify").into_inner();
        if verified.events > 200 {
            break;
        }
        patience.next().await;
    }
    stopping.store(true, Ordering::SeqCst);
    let dir = stop_server(server, Stop::Term).await;
    let mut requests = Vec::new();
    for writer in writers {
        requests.extend(writer.await.expect("writer task"));
    }
    let acknowledged = requests.iter().filter(|sent| sent.acknowledged.is_some()).count();
    assert!(acknowledged > 0, "some writes were acknowledged before the stop");
    audit_offline(&dir);
    let server = Server::start_in(dir, SERVER_FLAGS);
    let summary = Model::default().check(&server.admin().await, requests).await;
    println!("crash: SIGTERM under load: {}", summary.line(0));
    stop_server(server, Stop::Term).await;
}

/// Holds across a SIGKILL (SPEC §14): a pending hold is still pending after the
/// restart (or expired, once its time passed), an acknowledged capture is there
/// with what it captured, and a hold writer killed mid-flight leaves every
/// acknowledged hold and capture in place; members read the same before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_captures_survive_kill_9() {
    const HOLDS_PROGRAM: &str = "holds";
    // No sweep: the expired hold's expiry is never recorded, only read.
    let flags = &["--checkpoint-events", "50", "--checkpoint-interval-ms", "20", "--expiry-sweep-secs", "0"];
    let server = Server::start_in(support::fresh_dir("crash-holds"), flags);
    let mut admin = server.admin().await;
    admin.create_program(HOLDS_PROGRAM).await;
    for member in ["h0", "h1", "h2"] {
        admin.add(HOLDS_PROGRAM, member, 100_000).await;
    }
    let hold = |member: &str, points: i64, reference: String, expires_at: Option<prost_types::Timestamp>| {
        pb::HoldPointsRequest {
            program_id: HOLDS_PROGRAM.into(),
            member_id: member.into(),
            points,
            remark: "ticket".into(),
            reference,
            expires_at,
        }
    };
    let capture = |hold_id: &str, amount: &str| pb::CaptureHoldRequest {
        program_id: HOLDS_PROGRAM.into(),
        hold_id: hold_id.into(),
        amount: amount.into(),
        ..Default::default()
    };
    let get = |hold_id: &str| pb::GetHoldRequest { program_id: HOLDS_PROGRAM.into(), hold_id: hold_id.into() };
    let pending = admin.holds.hold_points(hold("h0", 70, "pending".into(), None)).await.expect("hold").into_inner();
    let captured = admin.holds.hold_points(hold("h0", 50, "captured".into(), None)).await.expect("hold").into_inner();
    let captured = admin.holds.capture_hold(capture(&captured.hold_id, "20")).await.expect("capture").into_inner();
    let soon = Some(support::seconds_from_now(1));
    let lapsing = admin.holds.hold_points(hold("h0", 30, "lapsing".into(), soon)).await.expect("hold").into_inner();

    // A writer of holds and captures, killed mid-flight.
    let stopping = Arc::new(AtomicBool::new(false));
    let mut writer = admin.clone();
    let writing = stopping.clone();
    let load = tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        for index in 0.. {
            if writing.load(Ordering::SeqCst) {
                break;
            }
            let member = ["h1", "h2"][index % 2];
            let Ok(held) = writer.holds.hold_points(hold(member, 3, format!("load-{index}"), None)).await else {
                break;
            };
            let held = held.into_inner();
            let captured = writer.holds.capture_hold(capture(&held.hold_id, "2")).await.map(|reply| reply.into_inner());
            let done = captured.is_ok();
            acknowledged.push((held, captured.ok()));
            if !done {
                break;
            }
        }
        acknowledged
    });
    // The writer runs while the lapsing hold's time passes, so the kill lands
    // mid-flight.
    let patience = support::Patience::new("the lapsing hold's time");
    while admin.holds.get_hold(get(&lapsing.hold_id)).await.expect("get").into_inner().state() != pb::HoldState::Expired
    {
        patience.next().await;
    }
    let before = admin.member(HOLDS_PROGRAM, "h0").await;
    assert_eq!((before.points, before.held_points), (100_000 - 20 - 70, 70));
    let dir = stop_server(server, Stop::Kill).await;
    stopping.store(true, Ordering::SeqCst);
    let acknowledged = load.await.expect("the hold writer");

    let expected = HoldsBefore { pending, captured, lapsing, member: before, acknowledged };
    let server = Server::start_in(dir, flags);
    expected.check(&mut server.admin().await, "after the kill").await;
    let server = Server::start_in(stop_server(server, Stop::Term).await, flags);
    expected.check(&mut server.admin().await, "after a clean stop").await;
    audit_offline(&stop_server(server, Stop::Term).await);
}

/// What `holds_and_captures_survive_kill_9` read before the kill.
struct HoldsBefore {
    pending: pb::Hold,
    captured: pb::Hold,
    lapsing: pb::Hold,
    member: pb::Member,
    /// The load's holds, each with its capture when that was acknowledged.
    acknowledged: Vec<(pb::Hold, Option<pb::Hold>)>,
}

impl HoldsBefore {
    async fn check(&self, admin: &mut Clients, round: &str) {
        let mut got = async |hold_id: &str| {
            let request = pb::GetHoldRequest { program_id: "holds".into(), hold_id: hold_id.into() };
            admin.holds.get_hold(request).await.expect("an acknowledged hold is there").into_inner()
        };
        assert_eq!(got(&self.pending.hold_id).await, self.pending, "the pending hold is still pending {round}");
        let captured = pb::Hold { duplicate: false, ..self.captured.clone() };
        assert_eq!(got(&self.captured.hold_id).await, captured, "the acknowledged capture {round}");
        assert_eq!(got(&self.lapsing.hold_id).await.state(), pb::HoldState::Expired, "{round}");
        for (held, capture) in &self.acknowledged {
            let found = got(&held.hold_id).await;
            match capture {
                Some(capture) => assert_eq!(found, pb::Hold { duplicate: false, ..capture.clone() }, "{round}"),
                // A capture that was not acknowledged may or may not be there.
                None => assert!(
                    matches!(found.state(), pb::HoldState::Pending | pb::HoldState::Captured),
                    "{found:?} {round}"
                ),
            }
        }
        assert_eq!(admin.member("holds", "h0").await, self.member, "h0 {round}");
    }
}
