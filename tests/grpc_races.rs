//! Races (issue 11 §6), over TCP against the real `ledgerd` with many clients, each
//! on its own connection, released at the same moment: concurrent uses never
//! overdraw, a reference applies once whoever sends it and whatever it carries, a
//! reference of another kind is refused, and a bulk retried after its reply was
//! lost applies once. Points, credits and coupons alike.
//!
//! Each race runs once by default; `LEDGER_RACE_ROUNDS=N` runs every race N times
//! on fresh members (the long version, e.g. `LEDGER_RACE_ROUNDS=200 cargo test -p
//! ledger-grpc --test grpc_races`).

mod support;

use ledger_grpc::pb;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{Clients, Patience, Server, get_member, refused, started};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::{Code, Status};

const PROGRAM: &str = "cafe";
/// Clients in every race.
const RACERS: usize = 50;
/// What a member is funded with before the uses race: a fifth of the racers win.
const FUNDED: usize = 10;

fn rounds() -> usize {
    std::env::var("LEDGER_RACE_ROUNDS").ok().and_then(|rounds| rounds.parse().ok()).unwrap_or(1)
}

/// `count` admin clients, each on its own TCP connection.
async fn connections(server: &Server, count: usize) -> Vec<Clients> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(server.admin().await);
    }
    clients
}

/// Runs `call` once per client, all released together once every task is waiting,
/// and returns the results in client order.
async fn race<T, F, Fut>(clients: &[Clients], call: F) -> Vec<Result<T, Status>>
where
    T: Send + 'static,
    F: Fn(usize, Clients) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, Status>> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(clients.len()));
    let mut tasks = Vec::with_capacity(clients.len());
    for (index, client) in clients.iter().enumerate() {
        let start = Arc::clone(&start);
        let call = call(index, client.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            call.await.map(tonic::Response::into_inner)
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("racer task"));
    }
    results
}

/// The accepted results, and the codes of the refused ones.
fn split<T>(results: Vec<Result<T, Status>>) -> (Vec<T>, Vec<Code>) {
    let mut accepted = Vec::new();
    let mut codes = Vec::new();
    for result in results {
        match result {
            Ok(reply) => accepted.push(reply),
            Err(status) => codes.push(status.code()),
        }
    }
    (accepted, codes)
}

/// Events in the log: what a race may append is counted here.
async fn events(admin: &mut Clients) -> u64 {
    admin.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify log").into_inner().events
}

fn spend(member: &str, points: i64) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "race".into(),
        ..Default::default()
    }
}

fn add(member: &str, points: i64, reference: &str) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "race".into(),
        reference: reference.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_uses_of_a_member_funded_for_ten_take_exactly_ten() {
    let (server, mut admin) = started("races-uses", &[PROGRAM]).await;
    let clients = connections(&server, RACERS).await;
    for round in 0..rounds() {
        let member = format!("alice-{round}");
        admin.add(PROGRAM, &member, i64::try_from(FUNDED).expect("small")).await;
        let results = race(&clients, |_, mut client| {
            let request = spend(&member, 1);
            async move { client.points.use_points(request).await }
        })
        .await;
        let (receipts, codes) = split(results);
        assert_eq!(receipts.len(), FUNDED, "round {round}: {codes:?}");
        assert!(codes.iter().all(|code| *code == Code::FailedPrecondition), "round {round}: {codes:?}");
        // Each winner saw its own balance after: 9 down to 0, each once.
        let mut balances: Vec<i64> = receipts.iter().map(|receipt| receipt.balance).collect();
        balances.sort_unstable();
        assert_eq!(balances, (0..10).collect::<Vec<i64>>(), "round {round}");
        let mut transactions: Vec<u64> = receipts.iter().map(|receipt| receipt.transaction_id).collect();
        transactions.sort_unstable();
        transactions.dedup();
        assert_eq!(transactions.len(), FUNDED, "round {round}: one transaction per use");
        assert_eq!(admin.member(PROGRAM, &member).await.points, 0, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_adds_with_one_reference_apply_once_and_all_get_its_receipt() {
    let (server, mut admin) = started("races-adds", &[PROGRAM]).await;
    let clients = connections(&server, RACERS).await;
    for round in 0..rounds() {
        let (member, reference) = (format!("alice-{round}"), format!("order-{round}"));
        let before = events(&mut admin).await;
        let results = race(&clients, |_, mut client| {
            let request = add(&member, 7, &reference);
            async move { client.points.add_points(request).await }
        })
        .await;
        let (receipts, codes) = split(results);
        assert!(codes.is_empty(), "round {round}: every add is answered: {codes:?}");
        let applied: Vec<&pb::PointsReceipt> = receipts.iter().filter(|receipt| !receipt.duplicate).collect();
        assert_eq!(applied.len(), 1, "round {round}: applied once: {receipts:?}");
        let original = *applied[0];
        assert_eq!((original.points, original.balance), (7, 7), "round {round}");
        for receipt in &receipts {
            assert_eq!(receipt, &pb::PointsReceipt { duplicate: receipt.duplicate, ..original });
        }
        assert_eq!(admin.member(PROGRAM, &member).await.points, 7, "round {round}");
        assert_eq!(events(&mut admin).await, before + 1, "round {round}: one event appended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reference_with_fifty_different_payloads_applies_once_and_answers_the_winner() {
    // SPEC §3: a repeat is ignored and answered with the original result, marked
    // duplicate, whatever it carries (another member, another amount).
    let (server, mut admin) = started("races-payloads", &[PROGRAM]).await;
    let clients = connections(&server, RACERS).await;
    for round in 0..rounds() {
        let reference = format!("order-{round}");
        let before = events(&mut admin).await;
        let results = race(&clients, |index, mut client| {
            let member = format!("m{round}-{}", index % 5);
            let request = add(&member, i64::try_from(index).expect("small") + 1, &reference);
            async move { client.points.add_points(request).await }
        })
        .await;
        let (receipts, codes) = split(results);
        assert!(codes.is_empty(), "round {round}: {codes:?}");
        let winners: Vec<usize> = (0..RACERS).filter(|index| !receipts[*index].duplicate).collect();
        assert_eq!(winners.len(), 1, "round {round}: applied once: {receipts:?}");
        let winner = winners[0];
        let original = receipts[winner];
        assert_eq!(original.points, i64::try_from(winner).expect("small") + 1, "the winner's own amount");
        for receipt in &receipts {
            assert_eq!(receipt, &pb::PointsReceipt { duplicate: receipt.duplicate, ..original });
        }
        for slot in 0..5 {
            let member = format!("m{round}-{slot}");
            let found = admin.members.get_member(get_member(PROGRAM, &member)).await;
            let points = found.map_or(0, |member| member.into_inner().points);
            let expected = if winner % 5 == slot { original.points } else { 0 };
            assert_eq!(points, expected, "round {round}: {member}");
        }
        assert_eq!(events(&mut admin).await, before + 1, "round {round}: one event appended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_and_uses_racing_for_one_reference_apply_once_and_the_other_kind_is_refused() {
    let (server, mut admin) = started("races-kinds", &[PROGRAM]).await;
    let clients = connections(&server, RACERS).await;
    // Sequentially first: a use reusing an add's reference is ALREADY_EXISTS (REFERENCE_IN_USE), never an
    // OK duplicate carrying the add's receipt (a retrying client would believe points
    // were taken).
    let added = admin.points.add_points(add("bob", 40, "bob-1")).await.expect("add").into_inner();
    let reused = pb::UsePointsRequest { reference: "bob-1".into(), ..spend("bob", 5) };
    let status = refused(admin.points.use_points(reused).await, Code::AlreadyExists);
    assert!(status.message().contains("bob-1"), "{status:?}");
    let bulk = pb::BulkUsePointsRequest {
        program_id: PROGRAM.into(),
        items: vec![pb::BulkUseItem {
            member_id: "bob".into(),
            points: 5,
            remark: "race".into(),
            reference: "bob-1".into(),
            ..Default::default()
        }],
        atomic: false,
    };
    let result = admin.points.bulk_use_points(bulk).await.expect("a bulk answers").into_inner();
    assert_eq!((result.applied_count, result.fail_at, result.duplicates.len()), (0, Some(0), 0), "{result:?}");
    assert_eq!(result.failure.expect("a failure").code, "REFERENCE_IN_USE");
    assert_eq!(admin.member(PROGRAM, "bob").await.points, added.balance, "nothing was taken");

    for round in 0..rounds() {
        let (member, reference) = (format!("carol-{round}"), format!("till-{round}"));
        admin.add(PROGRAM, &member, 100).await;
        let before = events(&mut admin).await;
        // Even racers add 5, odd racers use 3, all with one reference.
        let results = race(&clients, |index, mut client| {
            let (member, reference) = (member.clone(), reference.clone());
            async move {
                let receipt = if index.is_multiple_of(2) {
                    client.points.add_points(add(&member, 5, &reference)).await?
                } else {
                    let request = pb::UsePointsRequest { reference, ..spend(&member, 3) };
                    client.points.use_points(request).await?
                };
                Ok(receipt)
            }
        })
        .await;
        let winners: Vec<usize> =
            (0..RACERS).filter(|index| results[*index].as_ref().is_ok_and(|receipt| !receipt.duplicate)).collect();
        assert_eq!(winners.len(), 1, "round {round}: applied once: {results:?}");
        let winner = winners[0];
        let original = *results[winner].as_ref().expect("the winner");
        for (index, result) in results.iter().enumerate() {
            if index % 2 == winner % 2 {
                let receipt = result.as_ref().expect("the winner's kind is answered");
                assert_eq!(receipt, &pb::PointsReceipt { duplicate: receipt.duplicate, ..original });
            } else {
                let status = result.as_ref().expect_err("the other kind is refused");
                assert_eq!(status.code(), Code::AlreadyExists, "round {round}: {status:?}");
            }
        }
        let expected = if winner.is_multiple_of(2) { 105 } else { 97 };
        assert_eq!(admin.member(PROGRAM, &member).await.points, expected, "round {round}");
        assert_eq!(events(&mut admin).await, before + 1, "round {round}: one event appended");
    }
}

/// A TCP proxy to the server that forwards everything until `cut` is set; from then
/// on it drops what the server sends: a reply lost on its way back to the client.
struct LossyProxy {
    address: String,
    cut: Arc<AtomicBool>,
}

async fn lossy_proxy(upstream: String) -> LossyProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
    let address = listener.local_addr().expect("proxy address").to_string();
    let cut = Arc::new(AtomicBool::new(false));
    let cutting = Arc::clone(&cut);
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let outbound = TcpStream::connect(&upstream).await.expect("proxy to ledgerd");
            let (mut from_client, mut to_client) = inbound.into_split();
            let (mut from_server, mut to_server) = outbound.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut from_client, &mut to_server).await });
            let cut = Arc::clone(&cutting);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(read) = from_server.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    if !cut.load(Ordering::Acquire) && to_client.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    LossyProxy { address, cut }
}

fn bulk_items(round: usize, count: usize) -> Vec<pb::BulkAddItem> {
    (0..count)
        .map(|index| pb::BulkAddItem {
            member_id: format!("r{round}-m{}", index % 7),
            points: i64::try_from(index).expect("small") + 1,
            remark: "retried bulk".into(),
            reference: format!("r{round}-item-{index}"),
            ..Default::default()
        })
        .collect()
}

/// What `items` add up to per member, as GetMember must show after one application.
fn expected_balances(items: &[pb::BulkAddItem]) -> std::collections::BTreeMap<String, i64> {
    let mut balances = std::collections::BTreeMap::new();
    for item in items {
        *balances.entry(item.member_id.clone()).or_insert(0) += item.points;
    }
    balances
}

async fn assert_applied_once(admin: &mut Clients, items: &[pb::BulkAddItem], what: &str) {
    for (member, points) in expected_balances(items) {
        assert_eq!(admin.member(PROGRAM, &member).await.points, points, "{what}: {member}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retried_after_its_reply_was_lost_applies_once() {
    let (server, mut admin) = started("races-bulk-retry", &[PROGRAM]).await;
    let proxy = lossy_proxy(server.address.clone()).await;
    for round in 0..rounds() {
        let items = bulk_items(round, 40);
        let request =
            pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items: items.clone(), atomic: round % 2 == 1 };
        let before = events(&mut admin).await;

        // Connect through the proxy and finish the HTTP/2 handshake, then lose every reply.
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", proxy.address))
            .expect("proxy uri")
            .connect()
            .await
            .expect("connect through the proxy");
        let mut lossy = Clients::new(channel, &server.admin_token);
        lossy.audit.verify_log(pb::VerifyLogRequest {}).await.expect("a call through the proxy");
        proxy.cut.store(true, Ordering::Release);
        let first = request.clone();
        let call = tokio::spawn(async move { lossy.points.bulk_add_points(first).await });

        // The server applied it; the client never hears so, gives up and sends it again.
        let patience = Patience::new("the first bulk to be applied");
        while events(&mut admin).await < before + 40 {
            patience.next().await;
        }
        call.abort();
        assert!(call.await.is_err_and(|error| error.is_cancelled()), "no reply came through the proxy");
        proxy.cut.store(false, Ordering::Release);

        let retry = admin.points.bulk_add_points(request).await.expect("the retry").into_inner();
        assert_eq!(retry.applied_count, 0, "round {round}: {retry:?}");
        assert_eq!(retry.duplicates, (0..40).collect::<Vec<u32>>(), "round {round}: every item a duplicate");
        assert_eq!((retry.fail_at, retry.balances.len()), (None, 0), "round {round}");
        assert_applied_once(&mut admin, &items, &format!("round {round}")).await;
        assert_eq!(events(&mut admin).await, before + 40, "round {round}: one event per item");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulks_dropped_at_any_moment_and_sent_again_apply_once() {
    // The client gives up at a different point each time (before sending, while the
    // server decides, after it answered) and sends the bulk again at once, so a
    // retry may also race the original in the writer's queue.
    let (server, mut admin) = started("races-bulk-drop", &[PROGRAM]).await;
    let client = server.admin().await;
    for round in 0..rounds() * 20 {
        let items = bulk_items(round, 30);
        let request = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items: items.clone(), atomic: false };
        let mut dropped = client.clone();
        let first = request.clone();
        let call = tokio::spawn(async move { dropped.points.bulk_add_points(first).await });
        for _ in 0..round {
            tokio::task::yield_now().await;
        }
        call.abort();
        let _ = call.await;
        let retry = client.clone().points.bulk_add_points(request).await.expect("the retry").into_inner();
        assert_eq!(retry.fail_at, None, "round {round}: {retry:?}");
        assert_eq!(
            retry.applied_count + u32::try_from(retry.duplicates.len()).expect("small"),
            30,
            "round {round}: each item applied by one of the two sends"
        );
        assert_applied_once(&mut admin, &items, &format!("round {round}")).await;
    }
}

fn define_credit() -> pb::DefineCreditRequest {
    pb::DefineCreditRequest {
        program_id: PROGRAM.into(),
        credit_id: "gift-card".into(),
        name: "Gift card".into(),
        unit: "TWD".into(),
    }
}

fn top_up(member: &str, amount: &str, reference: &str) -> pb::AddCreditsRequest {
    pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        credit_id: "gift-card".into(),
        amount: amount.into(),
        remark: "race".into(),
        reference: reference.into(),
    }
}

fn pay(member: &str, amount: &str, reference: &str) -> pb::UseCreditsRequest {
    pb::UseCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        credit_id: "gift-card".into(),
        amount: amount.into(),
        remark: "race".into(),
        reference: reference.into(),
    }
}

async fn credits(admin: &mut Clients, member: &str) -> String {
    let member = admin.member(PROGRAM, member).await;
    member.credits.iter().find(|credit| credit.credit_id == "gift-card").map(|credit| credit.amount.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_uses_never_overdraw_and_a_reference_applies_once() {
    let (server, mut admin) = started("races-credits", &[PROGRAM]).await;
    admin.credits.define_credit(define_credit()).await.expect("define credit");
    let clients = connections(&server, RACERS).await;
    for round in 0..rounds() {
        let member = format!("alice-{round}");
        admin.credits.add_credits(top_up(&member, "2.5", "")).await.expect("fund");
        // 50 uses of 0.25 against 2.5: exactly ten fit.
        let results = race(&clients, |_, mut client| {
            let request = pay(&member, "0.25", "");
            async move { client.credits.use_credits(request).await }
        })
        .await;
        let (receipts, codes) = split(results);
        assert_eq!(receipts.len(), FUNDED, "round {round}: {codes:?}");
        assert!(codes.iter().all(|code| *code == Code::FailedPrecondition), "round {round}: {codes:?}");
        assert_eq!(credits(&mut admin, &member).await, "0", "round {round}");

        // 50 top-ups with one reference, then 50 payments with another.
        for (kind, amount) in [("top-up", "1.5"), ("pay", "0.5")] {
            let reference = format!("{kind}-{round}");
            let before = events(&mut admin).await;
            let results = race(&clients, |_, mut client| {
                let (member, reference) = (member.clone(), reference.clone());
                async move {
                    if kind == "top-up" {
                        client.credits.add_credits(top_up(&member, amount, &reference)).await
                    } else {
                        client.credits.use_credits(pay(&member, amount, &reference)).await
                    }
                }
            })
            .await;
            let (receipts, codes) = split(results);
            assert!(codes.is_empty(), "round {round} {kind}: {codes:?}");
            assert_eq!(receipts.iter().filter(|receipt| !receipt.duplicate).count(), 1, "round {round} {kind}");
            let original = receipts.iter().find(|receipt| !receipt.duplicate).expect("one applied").clone();
            for receipt in &receipts {
                assert_eq!(receipt, &pb::CreditsReceipt { duplicate: receipt.duplicate, ..original.clone() });
            }
            assert_eq!(events(&mut admin).await, before + 1, "round {round} {kind}: one event appended");
        }
        assert_eq!(credits(&mut admin, &member).await, "1", "round {round}: 0 + 1.5 - 0.5");
        // Another kind's reference: a payment reusing the top-up's is refused.
        let status = refused(
            admin.credits.use_credits(pay(&member, "1", &format!("top-up-{round}"))).await,
            Code::AlreadyExists,
        );
        assert!(status.message().contains("reference"), "{status:?}");
        assert_eq!(credits(&mut admin, &member).await, "1", "round {round}");
    }
}

fn grant(member: &str, count: u32, reference: &str) -> pb::GrantCouponsRequest {
    pb::GrantCouponsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        coupon_id: "coffee".into(),
        name: "Coffee".into(),
        count,
        reference: reference.into(),
    }
}

fn redeem(member: &str, reference: &str) -> pb::UseCouponRequest {
    pb::UseCouponRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        coupon_id: "coffee".into(),
        remark: "race".into(),
        reference: reference.into(),
    }
}

async fn coupons(admin: &mut Clients, member: &str) -> u32 {
    let request = pb::ListMemberCouponsRequest { program_id: PROGRAM.into(), member_id: member.into() };
    let listed = admin.coupons.list_member_coupons(request).await.expect("list coupons").into_inner();
    listed.coupons.iter().find(|coupon| coupon.coupon_id == "coffee").map_or(0, |coupon| coupon.count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupon_uses_never_overdraw_and_a_reference_applies_once() {
    let (server, mut admin) = started("races-coupons", &[PROGRAM]).await;
    let clients = connections(&server, RACERS).await;
    for round in 0..rounds() {
        let member = format!("alice-{round}");
        let funded = u32::try_from(FUNDED).expect("small");
        admin.coupons.grant_coupons(grant(&member, funded, "")).await.expect("grant");
        let results = race(&clients, |_, mut client| {
            let request = redeem(&member, "");
            async move { client.coupons.use_coupon(request).await }
        })
        .await;
        let (used, codes) = split(results);
        assert_eq!(used.len(), FUNDED, "round {round}: {codes:?}");
        assert!(codes.iter().all(|code| *code == Code::FailedPrecondition), "round {round}: {codes:?}");
        let mut remaining: Vec<u32> = used.iter().map(|used| used.remaining).collect();
        remaining.sort_unstable();
        assert_eq!(remaining, (0..funded).collect::<Vec<u32>>(), "round {round}");
        assert_eq!(coupons(&mut admin, &member).await, 0, "round {round}");

        // 50 grants of 3 with one reference: granted once, every reply the same.
        let reference = format!("grant-{round}");
        let before = events(&mut admin).await;
        let results = race(&clients, |_, mut client| {
            let request = grant(&member, 3, &reference);
            async move { client.coupons.grant_coupons(request).await }
        })
        .await;
        let (granted, codes) = split(results);
        assert!(codes.is_empty(), "round {round}: {codes:?}");
        assert!(granted.iter().all(|reply| *reply == granted[0]), "round {round}: {granted:?}");
        assert_eq!(granted[0].count, 3, "round {round}");
        assert_eq!(coupons(&mut admin, &member).await, 3, "round {round}");
        assert_eq!(events(&mut admin).await, before + 1, "round {round}: one event appended");

        // 50 uses with one reference: one coupon taken, every reply the same.
        let reference = format!("use-{round}");
        let results = race(&clients, |_, mut client| {
            let request = redeem(&member, &reference);
            async move { client.coupons.use_coupon(request).await }
        })
        .await;
        let (used, codes) = split(results);
        assert!(codes.is_empty(), "round {round}: {codes:?}");
        assert!(used.iter().all(|reply| *reply == used[0]), "round {round}: {used:?}");
        assert_eq!(used[0].remaining, 2, "round {round}");
        assert_eq!(coupons(&mut admin, &member).await, 2, "round {round}");
        assert_eq!(events(&mut admin).await, before + 2, "round {round}: one more event");
        // A use reusing the grant's reference is refused, and takes nothing.
        refused(admin.coupons.use_coupon(redeem(&member, &format!("grant-{round}"))).await, Code::AlreadyExists);
        assert_eq!(coupons(&mut admin, &member).await, 2, "round {round}");
    }
}
