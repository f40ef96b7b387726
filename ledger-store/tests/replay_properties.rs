//! Random command histories against the real `Ledger` (sled in a temporary
//! directory), with limits shrunk so that checkpoints land mid-history and commit
//! groups hold several commands (each step submits its commands concurrently).
//! After the history:
//!
//! 1. the live projections, activities included, equal a replay of the log
//!    (`compare_with_replay`);
//! 2. closing and reopening gives the same state, equal to a full replay, and
//!    replays nothing at start-up (a clean close checkpoints everything);
//! 3. every member's points equal the sum of its events' `points_delta`;
//! 4. `verify` passes and counts every event;
//! 5. more commands, then a plain `drop` instead of `close`, reopen to an equal
//!    state;
//! 6. with the projections rolled back to an earlier checkpoint (what a crash
//!    between two checkpoints leaves), start-up replays only the log after it and
//!    reaches the same state;
//! 7. credits equal the sum of their events and never go below zero; at most 5
//!    cards with strictly increasing thresholds; an unpinned member's level is the
//!    highest card its qualifying amount reaches; one voucher record per triple,
//!    whose version counts its upserts (`check_kinds`);
//! 8. a transaction is reversed at most once (by ReverseTransaction or by a
//!    replacement), and each member's `reversed` names exactly the reversals of
//!    the log (`check_reversals`).
//!
//! 8. holds: a member's points plus what its pending holds hold plus what
//!    captures spent equal what every other event gave it (nothing held is lost
//!    or made), and a hold or capture reference applies once.
//!
//! Points, credits, coupons, cards, levels, Echoss imports (some naming a brand
//! that does not exist, so rejected whole), holds (captured whole or in part,
//! voided, expired by the sweep) and reversals (of any transaction id, known or
//! not, reversible or not) are mixed in every history.

use ledger_core::command::{
    AddPoints, BulkAddPoints, BulkUsePoints, CreateMemberCard, CreateProgram, CreditsChangeCommand, DefineCredit,
    DefineFormula, DefineReward, DefineShop, DeleteMemberCard, ExpirePoints, GrantCoupons, ImportPointStatements,
    ImportVoucherStatements, PointStatementItem, ReverseTransaction, SetMemberLevels, UpdateMemberCard, UseCoupon,
    UsePoints, VoucherImportItem,
};
use ledger_core::command::{CaptureHold, HoldCredits, HoldPoints, VoidHold};
use ledger_core::event::{EventBody, ReversedChange};
use ledger_core::{Command, State, Timestamp};
use ledger_store::activity::Generation;
use ledger_store::fold::fold;
use ledger_store::log::Log;
use ledger_store::projections::{Dirty, Meta, PROJECTION_FORMAT, Projections};
use ledger_store::replay::{self, Head};
use ledger_store::{Ledger, LedgerError, Options, Until};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `r` exists only once a step creates it.
const PROGRAMS: [&str; 3] = ["p", "q", "r"];
const MEMBERS: [&str; 4] = ["m0", "m1", "m2", "m3"];
const MULTIPLIERS: [&str; 3] = ["1.25", "0.5", "3"];
const COSTS: [&str; 3] = ["19.90", "4", "0.5"];
const ACTOR: &str = "tok_props";

#[derive(Clone, Copy, Debug)]
enum Expiry {
    Never,
    /// Milliseconds from now: such lots expire while the history runs.
    Soon(i64),
    /// A day from now.
    Later,
    /// Already gone: an add is rejected, a reward cannot be used.
    Past,
}

#[derive(Clone, Debug)]
enum Op {
    CreateProgram {
        program: usize,
    },
    DefineFormula {
        program: usize,
        multiplier: usize,
    },
    DefineReward {
        program: usize,
        points: i64,
        expiry: Expiry,
    },
    Add {
        program: usize,
        member: usize,
        points: i64,
        expiry: Expiry,
        reference: usize,
        replace: bool,
        cost: Option<usize>,
    },
    Use {
        program: usize,
        member: usize,
        points: i64,
        reward: bool,
        reference: usize,
        replace: bool,
    },
    BulkAdd {
        program: usize,
        items: Vec<(usize, i64, Expiry, usize)>,
        atomic: bool,
    },
    BulkUse {
        program: usize,
        items: Vec<(usize, i64, bool, usize)>,
        atomic: bool,
    },
    Expire {
        lots_max: usize,
    },
    Credits {
        program: usize,
        member: usize,
        /// In ten-thousandths; 0 is rejected.
        units: u64,
        adding: bool,
        reference: usize,
    },
    GrantCoupons {
        program: usize,
        member: usize,
        count: u32,
        reference: usize,
    },
    UseCoupon {
        program: usize,
        member: usize,
        reference: usize,
    },
    CreateCard {
        program: usize,
        lowest_amount: i64,
        name: usize,
    },
    UpdateCard {
        program: usize,
        card: usize,
        lowest_amount: i64,
    },
    DeleteCard {
        program: usize,
        card: usize,
    },
    SetLevels {
        program: usize,
        levels: Vec<(usize, u32)>,
    },
    /// Items of (brand pick, promotion, identifier, member, used, cancelled).
    ImportVouchers {
        items: Vec<(usize, i64, usize, usize, bool, bool)>,
    },
    /// Items of (brand pick, member, reason, change, reference).
    ImportPoints {
        items: Vec<(usize, usize, usize, i64, usize)>,
    },
    /// Points held; `expiry` `Never` stands for the default (15 minutes, so
    /// pending through the history), `Past` for an expiry the hold refuses.
    HoldPoints {
        program: usize,
        member: usize,
        points: i64,
        expiry: Expiry,
        reference: usize,
    },
    HoldCredits {
        program: usize,
        member: usize,
        units: u64,
        expiry: Expiry,
        reference: usize,
    },
    /// Captures the `hold`-th hold of the program the step found (or a hold id
    /// no hold has), all of it or `part` (points, or ten-thousandths).
    Capture {
        program: usize,
        hold: usize,
        part: Option<i64>,
        reference: usize,
    },
    Void {
        program: usize,
        hold: usize,
    },
    /// Reverses the transaction `pick` picks among those logged so far (and a
    /// couple beyond, unknown).
    Reverse {
        program: usize,
        pick: usize,
        reference: usize,
    },
}

/// Echoss brands: `7` exists (created in `setup`), `8` does not.
const BRANDS: [i64; 2] = [7, 8];
const REASONS: [&str; 3] = ["集點", "兌換", "CANCEL"];

#[derive(Clone, Debug)]
struct Case {
    checkpoint_events: u64,
    group_commands_max: usize,
    /// Each step's commands are submitted together.
    steps: Vec<Vec<Op>>,
    /// Run after the first reopen, before the plain drop.
    more_steps: Vec<Vec<Op>>,
    /// Picks the record boundary to roll the checkpoint back to.
    cut_pick: usize,
    /// Members and references in memory at most: mostly far fewer than the
    /// case names, so that evictions and reads of rows run in every case.
    resident_rows_max: usize,
}

fn program() -> impl Strategy<Value = usize> {
    prop_oneof![10 => 0..2usize, 1 => Just(2usize)]
}

fn expiry() -> impl Strategy<Value = Expiry> {
    prop_oneof![
        4 => Just(Expiry::Never),
        3 => (1..=30i64).prop_map(Expiry::Soon),
        2 => Just(Expiry::Later),
        1 => Just(Expiry::Past),
    ]
}

/// 0..=2 are no reference, the rest a pool of 5, so that repeats and replacements happen.
fn reference() -> impl Strategy<Value = usize> {
    0..8usize
}

/// Mostly none: the pool's references are mostly taken by other kinds by the
/// time a hold comes, which would refuse most holds (REFERENCE_IN_USE).
fn hold_reference() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(0usize), 1 => reference()]
}

fn add_points() -> impl Strategy<Value = i64> {
    prop_oneof![12 => 1..=60i64, 1 => Just(0i64)]
}

fn use_points() -> impl Strategy<Value = (i64, bool)> {
    prop_oneof![5 => (1..=50i64).prop_map(|points| (points, false)), 1 => Just((0, true)), 1 => Just((-1, false))]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3usize).prop_map(|program| Op::CreateProgram { program }),
        1 => (program(), 0..3usize).prop_map(|(program, multiplier)| Op::DefineFormula { program, multiplier }),
        1 => (program(), 1..=40i64, expiry())
            .prop_map(|(program, points, expiry)| Op::DefineReward { program, points, expiry }),
        10 => (
            program(),
            0..4usize,
            add_points(),
            expiry(),
            reference(),
            prop::bool::weighted(0.2),
            prop::option::weighted(0.2, 0..3usize)
        )
            .prop_map(|(program, member, points, expiry, reference, replace, cost)| Op::Add {
                program,
                member,
                points,
                expiry,
                reference,
                replace,
                cost
            }),
        8 => (program(), 0..4usize, use_points(), reference(), prop::bool::weighted(0.2)).prop_map(
            |(program, member, (points, reward), reference, replace)| Op::Use {
                program,
                member,
                points,
                reward,
                reference,
                replace
            }
        ),
        3 => (program(), prop::collection::vec((0..4usize, add_points(), expiry(), reference()), 1..6), any::<bool>())
            .prop_map(|(program, items, atomic)| Op::BulkAdd { program, items, atomic }),
        3 => (
            program(),
            prop::collection::vec(
                (0..4usize, use_points(), reference())
                    .prop_map(|(member, (points, reward), reference)| (member, points, reward, reference)),
                1..6
            ),
            any::<bool>()
        )
            .prop_map(|(program, items, atomic)| Op::BulkUse { program, items, atomic }),
        2 => (1..=4usize).prop_map(|lots_max| Op::Expire { lots_max }),
        3 => (program(), 0..4usize, 0..300_000u64, any::<bool>(), reference())
            .prop_map(|(program, member, units, adding, reference)| Op::Credits { program, member, units, adding, reference }),
        2 => (program(), 0..4usize, 0..4u32, reference())
            .prop_map(|(program, member, count, reference)| Op::GrantCoupons { program, member, count, reference }),
        2 => (program(), 0..4usize, reference()).prop_map(|(program, member, reference)| Op::UseCoupon { program, member, reference }),
        2 => (program(), -5..200i64, 0..7usize).prop_map(|(program, lowest_amount, name)| Op::CreateCard { program, lowest_amount, name }),
        1 => (program(), 0..6usize, -5..200i64).prop_map(|(program, card, lowest_amount)| Op::UpdateCard { program, card, lowest_amount }),
        1 => (program(), 0..6usize).prop_map(|(program, card)| Op::DeleteCard { program, card }),
        1 => (program(), prop::collection::vec((0..4usize, 0..4u32), 1..4)).prop_map(|(program, levels)| Op::SetLevels { program, levels }),
        2 => prop::collection::vec(
            (prop_oneof![12 => Just(0usize), 1 => Just(1usize)], 0..3i64, 0..6usize, 0..4usize, any::<bool>(), any::<bool>()),
            1..5
        ).prop_map(|items| Op::ImportVouchers { items }),
        2 => prop::collection::vec(
            (prop_oneof![12 => Just(0usize), 1 => Just(1usize)], 0..4usize, 0..3usize, -40..60i64, reference()),
            1..5
        ).prop_map(|items| Op::ImportPoints { items }),
        4 => (program(), 0..4usize, 1..=40i64, expiry(), hold_reference())
            .prop_map(|(program, member, points, expiry, reference)| Op::HoldPoints { program, member, points, expiry, reference }),
        3 => (program(), 0..4usize, 1..30_000u64, expiry(), hold_reference())
            .prop_map(|(program, member, units, expiry, reference)| Op::HoldCredits { program, member, units, expiry, reference }),
        4 => (program(), 0..6usize, prop::option::of(1..=30i64), hold_reference())
            .prop_map(|(program, hold, part, reference)| Op::Capture { program, hold, part, reference }),
        3 => (program(), 0..6usize).prop_map(|(program, hold)| Op::Void { program, hold }),
        4 => (program(), any::<usize>(), reference()).prop_map(|(program, pick, reference)| Op::Reverse { program, pick, reference }),
    ]
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 1..7), 1..max)
}

fn case() -> impl Strategy<Value = Case> {
    let resident_rows_max = prop_oneof![3 => 1..12usize, 1 => Just(100_000usize)];
    (1..30u64, 1..5usize, steps(40), steps(8), any::<usize>(), resident_rows_max).prop_map(
        |(checkpoint_events, group_commands_max, steps, more_steps, cut_pick, resident_rows_max)| Case {
            checkpoint_events,
            group_commands_max,
            steps,
            more_steps,
            cut_pick,
            resident_rows_max,
        },
    )
}

proptest! {
    // Each case opens sled four times and flushes per commit group: keep it modest.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn replay_equals_live_projections(case in case()) {
        check(&case);
    }
}

fn check(case: &Case) {
    let dir = TempDir::new();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let options = Options {
        queue_max: 16,
        group_commands_max: case.group_commands_max,
        checkpoint_events: case.checkpoint_events,
        checkpoint_interval: Duration::from_secs(3_600),
        expiry_sweep_interval: None,
        cache_capacity_bytes: 8 * 1024 * 1024,
        resident_rows_max: case.resident_rows_max,
        ..Options::default()
    };

    let ledger = Ledger::open_with(&dir.0, options.clone()).expect("open");
    runtime.block_on(setup(&ledger));
    for step in &case.steps {
        runtime.block_on(submit(&ledger, step));
    }
    let before = check_live(&runtime, &ledger);
    let events = ledger.durable_sequence();
    runtime.block_on(rejected_imports_change_nothing(&ledger, &before));
    ledger.close().expect("close");
    drop(ledger);

    // (2) A clean close checkpoints everything: start-up replays nothing.
    let ledger = Ledger::open_with(&dir.0, options.clone()).expect("reopen after close");
    assert_eq!(ledger.replayed_at_open(), 0, "a clean close leaves no log tail to replay");
    assert_eq!(check_live(&runtime, &ledger), before, "the state after close and reopen");
    assert_eq!(ledger.durable_sequence(), events);

    // (5) More commands, then a plain drop instead of `close`.
    for step in &case.more_steps {
        runtime.block_on(submit(&ledger, step));
    }
    let before = check_live(&runtime, &ledger);
    let events = ledger.durable_sequence();
    drop(ledger);
    let ledger = Ledger::open_with(&dir.0, options.clone()).expect("reopen after drop");
    assert_eq!(check_live(&runtime, &ledger), before, "the state after drop and reopen");
    assert_eq!(ledger.durable_sequence(), events);
    ledger.close().expect("close");
    drop(ledger);

    // (6) Start-up replays only the tail after the checkpoint.
    let cut = roll_back_checkpoint(&dir.0, case.cut_pick);
    let ledger = Ledger::open_with(&dir.0, options).expect("reopen after the rollback");
    assert_eq!(ledger.replayed_at_open(), events - cut, "start-up replays the log after the checkpoint at {cut}");
    assert_eq!(check_live(&runtime, &ledger), before, "checkpoint at {cut} plus the tail");
    ledger.close().expect("close");
}

/// Checks (1), (3) and (4) and returns the state.
fn check_live(runtime: &tokio::runtime::Runtime, ledger: &Ledger) -> State {
    let state = runtime.block_on(ledger.whole_state()).expect("read");
    assert_eq!(ledger.compare_with_replay().expect("replay"), None, "live projections equal a replay of the log");

    let mut deltas: BTreeMap<(String, String), i128> = BTreeMap::new();
    // What every event but the holds' own gave each member.
    let mut given: BTreeMap<(String, String), i128> = BTreeMap::new();
    let mut hold_references: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut credits: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut upserts: BTreeMap<(String, i64, String), u32> = BTreeMap::new();
    let mut count = 0u64;
    for event in ledger.events(1, u64::MAX) {
        let event = event.expect("a durable event reads back").envelope;
        count += 1;
        assert_eq!(event.sequence, count, "the log is gapless from 1");
        let body = &event.event.body;
        if !event.event.member.is_empty() {
            *deltas.entry((event.event.program.clone(), event.event.member.clone())).or_default() +=
                body.points_delta();
            if !matches!(
                body,
                EventBody::PointsHeld(_)
                    | EventBody::HoldCaptured(_)
                    | EventBody::HoldVoided(_)
                    | EventBody::HoldExpired(_)
            ) {
                *given.entry((event.event.program.clone(), event.event.member.clone())).or_default() +=
                    body.points_delta();
            }
        }
        if matches!(body, EventBody::PointsHeld(_) | EventBody::CreditsHeld(_) | EventBody::HoldCaptured(_))
            && !body.reference().is_empty()
        {
            let applied =
                hold_references.entry((event.event.program.clone(), body.reference().to_owned())).or_default();
            *applied += 1;
            assert_eq!(*applied, 1, "a hold or capture reference applies once");
        }
        let key = (event.event.program.clone(), event.event.member.clone());
        match body {
            EventBody::CreditsAdded(change) => *credits.entry(key).or_default() += change.amount,
            EventBody::CreditsUsed(change) => *credits.entry(key).or_default() -= change.amount,
            EventBody::CreditsHeld(hold) => *credits.entry(key).or_default() -= hold.amount,
            EventBody::HoldCaptured(settled) | EventBody::HoldVoided(settled) | EventBody::HoldExpired(settled)
                if !settled.credit_id.is_empty() =>
            {
                *credits.entry(key).or_default() += settled.released;
            }
            EventBody::TransactionReversed(reversal) => match &reversal.change {
                ReversedChange::CreditsAdd { amount, .. } => *credits.entry(key).or_default() -= *amount,
                ReversedChange::CreditsUse { amount, .. } => *credits.entry(key).or_default() += *amount,
                _ => {}
            },
            EventBody::VoucherRecorded { statement, .. } => {
                let triple =
                    (event.event.program.clone(), statement.promotion_id, statement.voucher_identifier.clone());
                *upserts.entry(triple).or_default() += 1;
            }
            _ => {}
        }
    }
    assert_eq!(count, ledger.durable_sequence(), "every durable event is in the log");
    let mut members = 0usize;
    for (program_id, program) in &state.programs {
        for (member_id, member) in &program.members {
            members += 1;
            let delta = deltas.get(&(program_id.clone(), member_id.clone())).copied().unwrap_or_default();
            assert_eq!(i128::from(member.points), delta, "{program_id}/{member_id}: points equal its events' deltas");
            assert_eq!(member.points, member.lots.total(), "{program_id}/{member_id}: points equal its lots");
            let points_holds = member.holds.values().filter(|hold| hold.is_points());
            let (mut pending, mut captured) = (0u64, 0u64);
            for hold in points_holds {
                if hold.state == ledger_core::holds::HoldState::Pending {
                    pending += hold.amount;
                }
                captured += hold.captured;
            }
            let given = given.get(&(program_id.clone(), member_id.clone())).copied().unwrap_or_default();
            assert_eq!(
                i128::from(member.points + pending + captured),
                given,
                "{program_id}/{member_id}: points, plus what is held, plus what captures spent, equal what it was given"
            );
        }
    }
    assert_eq!(members, deltas.len(), "every member named by an event exists, and only those");
    check_kinds(&state, &credits, &upserts);
    check_reversals(ledger, &state);

    let report = ledger.verify().expect("verify");
    assert!(report.ok, "verify: {}", report.first_mismatch);
    assert_eq!(report.events, count);
    state
}

/// (8) Each transaction is reversed at most once, and the members' `reversed`
/// name exactly the log's reversals.
fn check_reversals(ledger: &Ledger, state: &State) {
    let mut reversals: BTreeMap<(String, String), BTreeMap<u64, u64>> = BTreeMap::new();
    for event in ledger.events(1, u64::MAX) {
        let event = event.expect("a durable event reads back").envelope;
        let reversed = match &event.event.body {
            EventBody::TransactionReversed(reversal) => reversal.transaction_id,
            EventBody::PointsAddReversed(reversal) | EventBody::PointsUseReversed(reversal) => reversal.transaction_id,
            _ => continue,
        };
        let member = reversals.entry((event.event.program.clone(), event.event.member.clone())).or_default();
        let previous = member.insert(reversed, event.sequence);
        assert!(previous.is_none(), "transaction {reversed} reversed twice: by {previous:?} and {}", event.sequence);
    }
    for (program_id, program) in &state.programs {
        for (member_id, member) in &program.members {
            let logged = reversals.remove(&(program_id.clone(), member_id.clone())).unwrap_or_default();
            assert_eq!(member.reversed, logged, "{program_id}/{member_id}: reversed transactions");
        }
    }
    assert!(reversals.is_empty(), "every reversal names a member: {reversals:?}");
}

/// Imports whose last item is invalid (an unknown brand, a spend beyond the
/// balance, a blank line_id) are refused whole: nothing of them is written.
async fn rejected_imports_change_nothing(ledger: &Ledger, before: &State) {
    let events = ledger.durable_sequence();
    let point = |line_id: &str, change: i64, brand_id: i64| PointStatementItem {
        brand_id,
        line_id: line_id.to_owned(),
        change_reason: "集點".to_owned(),
        point_change_record: change,
        changed_at: Some(Timestamp(1_614_528_000_000_000)),
        ..PointStatementItem::default()
    };
    let voucher = |line_id: &str| VoucherImportItem {
        brand_id: 7,
        voucher_identifier: "fresh".to_owned(),
        voucher_number: "N".to_owned(),
        voucher_name: "瓦城".to_owned(),
        line_id: line_id.to_owned(),
        sent_at: Some(Timestamp(1_613_527_615_000_000)),
        ..VoucherImportItem::default()
    };
    let imports = [
        Command::ImportPointStatements(ImportPointStatements { items: vec![point("m0", 5, 7), point("m1", 5, 8)] }),
        Command::ImportPointStatements(ImportPointStatements {
            items: vec![point("m0", 5, 7), point("m1", -1_000_000, 7)],
        }),
        Command::ImportVoucherStatements(ImportVoucherStatements { items: vec![voucher("m0"), voucher(" ")] }),
    ];
    for import in imports {
        match ledger.execute(import, ACTOR).await {
            Err(LedgerError::Rejected(_)) => {}
            other => panic!("an import with an invalid item is refused, got {other:?}"),
        }
    }
    assert_eq!(ledger.durable_sequence(), events, "a refused import appends nothing");
    let after = ledger.whole_state().await.expect("read");
    assert!(&after == before, "a refused import changes no projection");
}

/// The invariants of credits, cards, tiers and voucher statements.
fn check_kinds(
    state: &State,
    credits: &BTreeMap<(String, String), Decimal>,
    upserts: &BTreeMap<(String, i64, String), u32>,
) {
    for (program_id, program) in &state.programs {
        assert!(program.cards.len() <= 5, "{program_id}: at most 5 member cards");
        for pair in program.cards.windows(2) {
            assert!(pair[0].lowest_amount < pair[1].lowest_amount, "{program_id}: thresholds strictly increase");
        }
        for (member_id, member) in &program.members {
            let wallet = member.credits.get("wallet").copied().unwrap_or(0);
            let sum = credits.get(&(program_id.clone(), member_id.clone())).copied().unwrap_or_default();
            assert!(sum >= Decimal::ZERO, "{program_id}/{member_id}: credits never go below zero");
            assert_eq!(ledger_core::credits::decimal(wallet), sum, "{program_id}/{member_id}: credits = their events");
            let tier = program.tier(member);
            if member.pinned_card.is_none() {
                let reached =
                    program.cards.iter().filter(|card| card.lowest_amount <= member.qualifying_amount).count();
                assert_eq!(usize::try_from(tier.level).expect("small"), reached, "{program_id}/{member_id}: level");
            } else {
                assert!(
                    tier.pinned && (1..=program.cards.len()).contains(&usize::try_from(tier.level).expect("small"))
                );
            }
        }
        let triples = upserts.keys().filter(|(program, _, _)| program == program_id).count();
        assert_eq!(program.vouchers.len(), triples, "{program_id}: one current record per triple");
        for record in program.vouchers.records() {
            let key = (program_id.clone(), record.statement.promotion_id, record.statement.voucher_identifier.clone());
            assert_eq!(record.version, upserts[&key], "{program_id}: a version counts its upserts");
        }
    }
}

async fn setup(ledger: &Ledger) {
    for program in ["p", "q"] {
        ledger.create_program(program, &format!("Program {program}"), ACTOR).await.expect("create program");
        let reward = DefineReward {
            program: program.to_owned(),
            reward_id: "gift".to_owned(),
            name: "Gift".to_owned(),
            points: 15,
            expires_at: None,
        };
        ledger.execute(Command::DefineReward(reward), ACTOR).await.expect("define reward");
    }
    let formula = DefineFormula {
        program: "p".to_owned(),
        formula_id: "f".to_owned(),
        name: "Weekday".to_owned(),
        multiplier: "1.25".parse().expect("decimal"),
    };
    ledger.execute(Command::DefineFormula(formula), ACTOR).await.expect("define formula");
    for program in ["p", "q"] {
        let credit = DefineCredit {
            program: program.to_owned(),
            credit_id: "wallet".to_owned(),
            name: "Wallet".to_owned(),
            unit: "TWD".to_owned(),
        };
        ledger.execute(Command::DefineCredit(credit), ACTOR).await.expect("define credit");
    }
    ledger.create_program("7", "Brand 7", ACTOR).await.expect("create brand");
    let shop = DefineShop { program: "7".to_owned(), shop_id: 3, name: "Shop 3".to_owned() };
    ledger.execute(Command::DefineShop(shop), ACTOR).await.expect("define shop");
}

/// Submits a step's commands at once, so that the writer groups them; a rejection is
/// fine, any other error is not.
async fn submit(ledger: &Ledger, step: &[Op]) {
    let cards: Cards = ledger
        .read(|state| {
            let ids = |program: &ledger_core::state::Program| program.cards.iter().map(|c| c.card_id.clone()).collect();
            state.programs.iter().map(|(id, program)| (id.clone(), ids(program))).collect()
        })
        .await
        .expect("read cards");
    // Every member, resident or not: a small cache must not hide the holds.
    let state = ledger.whole_state().await.expect("read holds");
    let holds: Holds = {
        let holds = |program: &ledger_core::state::Program| {
            let members = program.members.iter();
            members.flat_map(|(id, member)| member.holds.keys().map(move |hold| (*hold, id.clone()))).collect()
        };
        state.programs.iter().map(|(id, program)| (id.clone(), holds(program))).collect()
    };
    let logged = ledger.durable_sequence();
    let tasks: Vec<_> = step
        .iter()
        .map(|op| {
            let ledger = ledger.clone();
            let command = command(op, &cards, &holds, logged);
            tokio::spawn(async move {
                match command {
                    // The sweep's own command: only the ledger sends it.
                    Command::ExpirePoints(ExpirePoints { lots_max }) => ledger.sweep_expiry(lots_max).await.map(drop),
                    command => ledger.execute(command, ACTOR).await.map(drop),
                }
            })
        })
        .collect();
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) | Err(LedgerError::Rejected(_)) => {}
            Err(error) => panic!("the ledger failed: {error}"),
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from_chrono(chrono::Utc::now())
}

fn expires_at(expiry: Expiry) -> Option<Timestamp> {
    let now = now().micros();
    match expiry {
        Expiry::Never => None,
        Expiry::Soon(millis) => Some(Timestamp(now + millis * 1_000)),
        Expiry::Later => Some(Timestamp(now + 86_400_000_000)),
        Expiry::Past => Some(Timestamp(now - 1_000_000)),
    }
}

fn reference_id(index: usize) -> String {
    if index < 3 { String::new() } else { format!("ref{}", index - 3) }
}

fn add(program: usize, member: usize, points: i64, expiry: Expiry, reference: usize) -> AddPoints {
    AddPoints {
        program: PROGRAMS[program].to_owned(),
        member: MEMBERS[member].to_owned(),
        points,
        remark: "visit".to_owned(),
        reference: reference_id(reference),
        expires_at: expires_at(expiry),
        ..AddPoints::default()
    }
}

fn spend(program: usize, member: usize, points: i64, reward: bool, reference: usize) -> UsePoints {
    UsePoints {
        program: PROGRAMS[program].to_owned(),
        member: MEMBERS[member].to_owned(),
        points,
        reward_id: if reward { "gift".to_owned() } else { String::new() },
        remark: "treat".to_owned(),
        reference: reference_id(reference),
        ..UsePoints::default()
    }
}

/// Card ids by program, in level order, as the step found them.
type Cards = BTreeMap<String, Vec<String>>;

/// Holds (id, member) by program, as the step found them.
type Holds = BTreeMap<String, Vec<(u64, String)>>;

/// A hold of the program (counting from the newest, which are mostly still
/// pending) and its member (as `Ledger::capture_hold` reads it from the hold's
/// event), or now and then a hold id no hold has.
fn hold_pick(holds: &Holds, program: usize, index: usize) -> (String, String) {
    let holds = holds.get(PROGRAMS[program]).map_or(&[][..], Vec::as_slice);
    let found = holds.iter().rev().nth(index % (holds.len() + 1));
    found.map_or_else(|| ("999999".to_owned(), String::new()), |(id, member)| (id.to_string(), member.clone()))
}

fn hold_expiry(expiry: Expiry) -> Option<Timestamp> {
    match expiry {
        Expiry::Never => None,
        other => expires_at(other),
    }
}

/// The card at `index` in level order, or an id no card has.
fn card_id(cards: &Cards, program: usize, index: usize) -> String {
    let found = cards.get(PROGRAMS[program]).and_then(|ids| ids.get(index));
    found.cloned().unwrap_or_else(|| "no-such-card".to_owned())
}

fn command(op: &Op, cards: &Cards, holds: &Holds, logged: u64) -> Command {
    match op {
        Op::Reverse { program, pick, reference } => {
            // Half of them among the last few, mostly the step before's adds and
            // uses; the rest anywhere, definitions and unknown ids included.
            let span = u64::try_from(*pick % 1_000_000).expect("small");
            let transaction_id =
                if pick % 2 == 0 { logged.saturating_sub(span % 8).max(1) } else { 1 + span % (logged + 2) };
            Command::ReverseTransaction(ReverseTransaction {
                program: PROGRAMS[*program].to_owned(),
                transaction_id,
                remark: "undo".to_owned(),
                reference: reference_id(*reference),
                target: None,
            })
        }
        Op::CreateProgram { program } => Command::CreateProgram(CreateProgram {
            program: PROGRAMS[*program].to_owned(),
            name: format!("Program {}", PROGRAMS[*program]),
        }),
        Op::DefineFormula { program, multiplier } => Command::DefineFormula(DefineFormula {
            program: PROGRAMS[*program].to_owned(),
            formula_id: "f".to_owned(),
            name: "Formula".to_owned(),
            multiplier: MULTIPLIERS[*multiplier].parse::<Decimal>().expect("decimal"),
        }),
        Op::DefineReward { program, points, expiry } => Command::DefineReward(DefineReward {
            program: PROGRAMS[*program].to_owned(),
            reward_id: "gift".to_owned(),
            name: "Gift".to_owned(),
            points: *points,
            expires_at: expires_at(*expiry),
        }),
        Op::Add { program, member, points, expiry, reference, replace, cost } => {
            let mut command = add(*program, *member, *points, *expiry, *reference);
            command.replace_duplicate = *replace;
            if let Some(cost) = cost {
                command.cost = Some(COSTS[*cost].parse().expect("decimal"));
                command.formula_id = "f".to_owned();
            }
            Command::AddPoints(command)
        }
        Op::Use { program, member, points, reward, reference, replace } => {
            let mut command = spend(*program, *member, *points, *reward, *reference);
            command.replace_duplicate = *replace;
            Command::UsePoints(command)
        }
        Op::BulkAdd { program, items, atomic } => Command::BulkAddPoints(BulkAddPoints {
            program: PROGRAMS[*program].to_owned(),
            items: items
                .iter()
                .map(|&(member, points, expiry, reference)| add(*program, member, points, expiry, reference))
                .collect(),
            atomic: *atomic,
            malformed: None,
        }),
        Op::BulkUse { program, items, atomic } => Command::BulkUsePoints(BulkUsePoints {
            program: PROGRAMS[*program].to_owned(),
            items: items
                .iter()
                .map(|&(member, points, reward, reference)| spend(*program, member, points, reward, reference))
                .collect(),
            atomic: *atomic,
            malformed: None,
        }),
        Op::Expire { lots_max } => Command::ExpirePoints(ExpirePoints { lots_max: *lots_max }),
        Op::HoldPoints { program, member, points, expiry, reference } => Command::HoldPoints(HoldPoints {
            program: PROGRAMS[*program].to_owned(),
            member: MEMBERS[*member].to_owned(),
            points: *points,
            remark: "ticket".to_owned(),
            reference: reference_id(*reference),
            expires_at: hold_expiry(*expiry),
        }),
        Op::HoldCredits { program, member, units, expiry, reference } => Command::HoldCredits(HoldCredits {
            program: PROGRAMS[*program].to_owned(),
            member: MEMBERS[*member].to_owned(),
            credit_id: "wallet".to_owned(),
            amount: Decimal::new(i64::try_from(*units).expect("small"), 4),
            remark: "remote QR".to_owned(),
            reference: reference_id(*reference),
            expires_at: hold_expiry(*expiry),
        }),
        Op::Capture { program, hold, part, reference } => {
            let (hold_id, member) = hold_pick(holds, *program, *hold);
            Command::CaptureHold(CaptureHold {
                program: PROGRAMS[*program].to_owned(),
                hold_id,
                member,
                // A part is points for a points hold, and ten-thousandths
                // of a credit for a credits hold.
                amount: part.map(|part| Decimal::new(part, if *hold % 2 == 0 { 0 } else { 4 })),
                remark: String::new(),
                reference: reference_id(*reference),
            })
        }
        Op::Void { program, hold } => {
            let (hold_id, member) = hold_pick(holds, *program, *hold);
            Command::VoidHold(VoidHold {
                program: PROGRAMS[*program].to_owned(),
                hold_id,
                member,
                remark: "cancelled".to_owned(),
            })
        }
        Op::Credits { program, member, units, adding, reference } => {
            let change = CreditsChangeCommand {
                program: PROGRAMS[*program].to_owned(),
                member: MEMBERS[*member].to_owned(),
                credit_id: "wallet".to_owned(),
                amount: Decimal::new(i64::try_from(*units).expect("small"), 4),
                remark: "top-up".to_owned(),
                reference: reference_id(*reference),
            };
            if *adding { Command::AddCredits(change) } else { Command::UseCredits(change) }
        }
        Op::GrantCoupons { program, member, count, reference } => Command::GrantCoupons(GrantCoupons {
            program: PROGRAMS[*program].to_owned(),
            member: MEMBERS[*member].to_owned(),
            coupon_id: "coffee".to_owned(),
            name: "Coffee".to_owned(),
            count: *count,
            reference: reference_id(*reference),
        }),
        Op::UseCoupon { program, member, reference } => Command::UseCoupon(UseCoupon {
            program: PROGRAMS[*program].to_owned(),
            member: MEMBERS[*member].to_owned(),
            coupon_id: "coffee".to_owned(),
            remark: String::new(),
            reference: reference_id(*reference),
        }),
        Op::CreateCard { program, lowest_amount, name } => Command::CreateMemberCard(CreateMemberCard {
            program: PROGRAMS[*program].to_owned(),
            name: format!("card {name}"),
            benefit: String::new(),
            lowest_amount: *lowest_amount,
            image_url: String::new(),
        }),
        Op::UpdateCard { program, card, lowest_amount } => Command::UpdateMemberCard(UpdateMemberCard {
            program: PROGRAMS[*program].to_owned(),
            card_id: card_id(cards, *program, *card),
            lowest_amount: Some(*lowest_amount),
            ..UpdateMemberCard::default()
        }),
        Op::DeleteCard { program, card } => Command::DeleteMemberCard(DeleteMemberCard {
            program: PROGRAMS[*program].to_owned(),
            card_id: card_id(cards, *program, *card),
        }),
        Op::SetLevels { program, levels } => Command::SetMemberLevels(SetMemberLevels {
            program: PROGRAMS[*program].to_owned(),
            levels: levels.iter().map(|&(member, level)| (MEMBERS[member].to_owned(), level)).collect(),
        }),
        Op::ImportVouchers { items } => Command::ImportVoucherStatements(ImportVoucherStatements {
            items: items
                .iter()
                .map(|&(brand, promotion_id, identifier, member, used, cancelled)| VoucherImportItem {
                    brand_id: BRANDS[brand],
                    promotion_id,
                    voucher_identifier: format!("v{identifier}"),
                    voucher_number: format!("N{identifier}"),
                    voucher_name: format!("瓦城 {}元", 100 * (identifier % 3)),
                    line_id: MEMBERS[member].to_owned(),
                    sent_at: Some(Timestamp(1_613_527_615_000_000)),
                    used_at: used.then_some(Timestamp(1_613_527_700_000_000)),
                    cancelled_at: cancelled.then_some(Timestamp(1_613_527_800_000_000)),
                    brand_manager_id: if used { 3 } else { 0 },
                })
                .collect(),
        }),
        Op::ImportPoints { items } => Command::ImportPointStatements(ImportPointStatements {
            items: items
                .iter()
                .map(|&(brand, member, reason, change, reference)| PointStatementItem {
                    brand_id: BRANDS[brand],
                    promotion_id: 0,
                    line_id: MEMBERS[member].to_owned(),
                    change_reason: REASONS[reason].to_owned(),
                    point_change_record: change,
                    changed_at: Some(Timestamp(1_614_528_000_000_000)),
                    brand_manager_id: 0,
                    reference: reference_id(reference),
                })
                .collect(),
        }),
    }
}

/// Rewrites the projections of the closed ledger in `path` as a checkpoint at a
/// record boundary before the end of the log would have left them, the state a
/// crash between that checkpoint and the next leaves behind. Returns the cut.
///
/// The rows are those of a replay up to the cut, each row any event touched, and
/// the activity entries up to the cut, as the writer's checkpoints would have
/// written them, through the one fold the writer uses.
fn roll_back_checkpoint(path: &Path, pick: usize) -> u64 {
    let db = ledger_store::audit::open_offline(path).expect("open offline");
    let log = Log::open(&db).expect("log");
    let projections = Projections::open(&db).expect("projections");
    let boundaries: Vec<u64> =
        log.records_from(1).map(|record| record.expect("record").0 - 1).filter(|&cut| cut > 0).collect();
    let cut = boundaries[pick % boundaries.len()];
    let mut state = State::default();
    let mut dirty = Dirty::default();
    let mut activities = Generation::default();
    let head = replay::walk(&log, Head::GENESIS, Until::Sequence(cut), |stamp, event| {
        fold(&mut state, stamp, &event, Some(&mut dirty), &mut activities);
    })
    .expect("replay to the cut");
    assert_eq!(head.sequence, cut);
    let meta =
        Meta { format: PROJECTION_FORMAT, applied_sequence: cut, head_hash: head.hash, recorded_at: head.recorded_at };
    projections.clear().expect("clear projections");
    let mut batch = Projections::batch(&state, &dirty, meta);
    for (key, value) in activities.rows() {
        batch.insert(key, value);
    }
    projections.apply(batch).expect("write the checkpoint");
    db.flush().expect("flush");
    cut
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("ledger-replay-properties-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
