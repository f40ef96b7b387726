//! SPEC §16 in the store: a member as of an instant equals a replay of the log up
//! to that instant, at every instant of a history with points, expiring lots,
//! credits, coupons, member cards and a pin, with room for 2 rows in memory (the
//! members come from their rows and the activity index from checkpoints) and a
//! member snapshot every other event; a reopened ledger answers the same. And the
//! lots that expire soon, paged.

use ledger_core::command::{
    AddPoints, CreateMemberCard, CreditsChangeCommand, DefineCredit, GrantCoupons, SetMemberLevels, UpdateMemberCard,
    UseCoupon, UsePoints,
};
use ledger_core::{Command, Rejection, State, Timestamp};
use ledger_store::fold::{NoActivities, fold};
use ledger_store::history::{ExpiringCursor, ExpiringQuery};
use ledger_store::views::{self, MemberView};
use ledger_store::{Ledger, LedgerError, Options};
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::time::Duration;

const ACTOR: &str = "test";
const MEMBERS: [&str; 3] = ["ann", "bob", "cy"];

fn options() -> Options {
    Options {
        // Checkpoints often, so that rows leave memory and the activity index is on disk.
        checkpoint_events: 8,
        checkpoint_interval: Duration::from_secs(3_600),
        expiry_sweep_interval: None,
        cache_capacity_bytes: 4 * 1024 * 1024,
        resident_rows_max: 2,
        // A snapshot every other event a fold passes: later reads start from them,
        // including reads of times before some of them.
        history_snapshot_events: 2,
        ..Options::default()
    }
}

fn dir(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ledger-history-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

fn now() -> Timestamp {
    Timestamp::from_chrono(chrono::Utc::now())
}

fn days(count: i64) -> i64 {
    count * 86_400 * 1_000_000
}

fn add(member: &str, points: i64, expires_at: Option<Timestamp>) -> Command {
    Command::AddPoints(AddPoints {
        program: "cafe".into(),
        member: member.into(),
        points,
        remark: "visit".into(),
        expires_at,
        ..AddPoints::default()
    })
}

async fn history(ledger: &Ledger) {
    let run = |command: Command| async move { ledger.execute(command, ACTOR).await.expect("command") };
    ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
    let credit =
        DefineCredit { program: "cafe".into(), credit_id: "wallet".into(), name: "Wallet".into(), unit: "TWD".into() };
    run(Command::DefineCredit(credit)).await;
    let card = |name: &str, lowest_amount| CreateMemberCard {
        program: "cafe".into(),
        name: name.into(),
        benefit: String::new(),
        lowest_amount,
        image_url: String::new(),
    };
    run(Command::CreateMemberCard(card("Green", 0))).await;
    run(add("ann", 50, None)).await;
    run(Command::CreateMemberCard(card("Gold", 100))).await;
    run(add("bob", 30, Some(Timestamp(now().micros() + days(3))))).await;
    run(add("ann", 70, Some(Timestamp(now().micros() + days(10))))).await;
    let credits = |member: &str, amount: &str| CreditsChangeCommand {
        program: "cafe".into(),
        member: member.into(),
        credit_id: "wallet".into(),
        amount: amount.parse::<Decimal>().expect("decimal"),
        remark: "top-up".into(),
        reference: String::new(),
    };
    run(Command::AddCredits(credits("ann", "12.5"))).await;
    let spend = UsePoints {
        program: "cafe".into(),
        member: "ann".into(),
        points: 60,
        remark: "cake".into(),
        ..UsePoints::default()
    };
    run(Command::UsePoints(spend)).await;
    run(Command::UseCredits(credits("ann", "2.25"))).await;
    let grant = GrantCoupons {
        program: "cafe".into(),
        member: "cy".into(),
        coupon_id: "tea".into(),
        name: "Free tea".into(),
        count: 2,
        reference: String::new(),
    };
    run(Command::GrantCoupons(grant)).await;
    let used = UseCoupon {
        program: "cafe".into(),
        member: "cy".into(),
        coupon_id: "tea".into(),
        remark: "tea".into(),
        reference: String::new(),
    };
    run(Command::UseCoupon(used)).await;
    // Gold moves up after ann reached it: her level as of before the move is Gold.
    let gold = ledger.member_cards("cafe").await.expect("cards")[1].card.card_id.clone();
    let raise = UpdateMemberCard {
        program: "cafe".into(),
        card_id: gold.clone(),
        lowest_amount: Some(1_000),
        ..UpdateMemberCard::default()
    };
    run(Command::UpdateMemberCard(raise)).await;
    run(Command::SetMemberLevels(SetMemberLevels { program: "cafe".into(), levels: vec![("bob".into(), 2)] })).await;
    run(add("bob", 5, None)).await;
}

/// Every instant worth asking about: each event's time and the microsecond
/// before it.
async fn instants(ledger: &Ledger) -> Vec<Timestamp> {
    let mut instants = Vec::new();
    for event in ledger.events(1, u64::MAX) {
        let recorded_at = event.expect("event").envelope.recorded_at;
        instants.extend([Timestamp(recorded_at.micros() - 1), recorded_at]);
    }
    instants
}

/// The member as a replay of the log up to `at` leaves it, read at `at`.
fn replayed(ledger: &Ledger, member: &str, at: Timestamp) -> Option<MemberView> {
    let mut state = State::default();
    for event in ledger.events(1, u64::MAX) {
        let envelope = event.expect("event").envelope;
        if envelope.recorded_at > at {
            break;
        }
        let stamp = ledger_core::Stamp { sequence: envelope.sequence, recorded_at: envelope.recorded_at };
        fold(&mut state, stamp, &envelope.event, None, &mut NoActivities);
    }
    let program = state.program("cafe")?;
    let found = program.members.get(member)?;
    Some(views::view("cafe", program, member, found, at))
}

async fn as_of(ledger: &Ledger, member: &str, at: Timestamp) -> Option<MemberView> {
    match ledger.member_as_of("cafe", member, at).await {
        Ok(view) => Some(view),
        Err(LedgerError::Rejected(Rejection::UnknownMember { member: named, .. })) => {
            assert_eq!(named, member);
            None
        }
        Err(error) => panic!("as of {at}: {error}"),
    }
}

async fn answers(ledger: &Ledger, instants: &[Timestamp]) -> Vec<Option<MemberView>> {
    let mut answers = Vec::new();
    for at in instants {
        for member in MEMBERS {
            answers.push(as_of(ledger, member, *at).await);
        }
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_as_of_any_instant_is_the_replay_up_to_it_and_survives_a_reopen() {
    let path = dir("as-of");
    let ledger = Ledger::open_with(&path, options()).expect("open");
    history(&ledger).await;
    let instants = instants(&ledger).await;
    for at in &instants {
        for member in MEMBERS {
            assert_eq!(as_of(&ledger, member, *at).await, replayed(&ledger, member, *at), "{member} as of {at}");
        }
    }

    // Before the first event that names ann, she does not exist; at it, she has its points.
    let first = instants[0];
    assert_eq!(as_of(&ledger, "ann", first).await, None);
    let latest = *instants.last().expect("events");
    let ann = as_of(&ledger, "ann", latest).await.expect("ann");
    assert_eq!((ann.points, ann.qualifying_amount, ann.level), (60, 120, 1), "Gold moved above her");
    let credits: Vec<String> = ann.credits.iter().map(|credit| credit.amount.to_string()).collect();
    assert_eq!(credits, ["10.25"]);
    // As of the moment before Gold moved up, she was Gold.
    let gold_moved = ledger
        .events(1, u64::MAX)
        .map(|event| event.expect("event").envelope)
        .find(|envelope| matches!(envelope.event.body, ledger_core::event::EventBody::MemberCardUpdated(_)));
    let before_move = Timestamp(gold_moved.expect("the update").recorded_at.micros() - 1);
    assert_eq!(
        as_of(&ledger, "ann", before_move).await.map(|ann| (ann.level, ann.level_name)),
        Some((2, "Gold".into()))
    );
    // Now is the member as a read shows it.
    let now_view = ledger.member("cafe", "ann").await.expect("ann");
    assert_eq!(
        as_of(&ledger, "ann", now()).await.map(|ann| (ann.points, ann.lots)),
        Some((now_view.points, now_view.lots))
    );

    let before = answers(&ledger, &instants).await;
    ledger.close().expect("close");
    drop(ledger);
    let reopened = Ledger::open_with(&path, options()).expect("reopen");
    assert_eq!(answers(&reopened, &instants).await, before, "the same answers after a reopen");
    reopened.close().expect("close");
    let _ = std::fs::remove_dir_all(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_lots_come_soonest_first_in_pages_before_the_bound() {
    let path = dir("expiring");
    let ledger = Ledger::open_with(&path, options()).expect("open");
    ledger.create_program("cafe", "Cafe", ACTOR).await.expect("program");
    ledger.create_program("other", "Other", ACTOR).await.expect("program");
    let start = now().micros();
    // Five members, each a lot expiring on day 5 - i, one never-expiring lot, and
    // another program's lot in the same window.
    for (index, member) in ["m0", "m1", "m2", "m3", "m4"].iter().enumerate() {
        let day = 5 - i64::try_from(index).expect("small");
        ledger.execute(add(member, 10 + day, Some(Timestamp(start + days(day)))), ACTOR).await.expect("add");
    }
    ledger.execute(add("m0", 99, None), ACTOR).await.expect("add");
    let mut elsewhere = add("m0", 7, Some(Timestamp(start + days(1))));
    if let Command::AddPoints(add) = &mut elsewhere {
        add.program = "other".into();
    }
    ledger.execute(elsewhere, ACTOR).await.expect("add");
    // The member that holds the soonest lot spends part of it.
    let spend = UsePoints {
        program: "cafe".into(),
        member: "m4".into(),
        points: 4,
        remark: "x".into(),
        ..UsePoints::default()
    };
    ledger.execute(Command::UsePoints(spend), ACTOR).await.expect("use");

    let query = |before: i64, after: Option<ExpiringCursor>| ExpiringQuery {
        program: "cafe".into(),
        before: Timestamp(start + before),
        page_size: 2,
        after,
    };
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = ledger.expiring_points(query(days(4) + 1, after)).await.expect("page");
        assert!(page.lots.len() <= 2);
        listed.extend(page.lots.iter().map(|lot| (lot.member.clone(), lot.points, lot.expires_at.micros() - start)));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<(String, u64, i64)> = vec![
        ("m4".into(), 7, days(1)),
        ("m3".into(), 12, days(2)),
        ("m2".into(), 13, days(3)),
        ("m1".into(), 14, days(4)),
    ];
    assert_eq!(listed, expected, "m0's day-5 lot is past the bound, the pool never expires");
    let unknown = ledger.expiring_points(ExpiringQuery { program: "nope".into(), ..query(days(1), None) }).await;
    assert!(matches!(unknown, Err(LedgerError::Rejected(Rejection::UnknownProgram { .. }))), "{unknown:?}");
    ledger.close().expect("close");
    let _ = std::fs::remove_dir_all(&path);
}
