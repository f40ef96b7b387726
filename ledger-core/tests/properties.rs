//! Random histories over 2 programs × 5 members (adds with and without expiry,
//! uses, rewards, references from a small pool so that repeats and replacements
//! happen, bulks atomic and not, the clock moving, sweeps), checked after every
//! step against a model kept beside the store:
//!
//! - (a) replaying the log gives the live state (`check_invariants`);
//! - (b) a member's points equal its events' deltas and its lots, and live points
//!   never exceed them (`check_invariants`, `Sim::check_lots`);
//! - (c) a bulk appends one event per non-duplicate item before `fail_at`, an atomic
//!   one that fails none (`Sim::bulk`);
//! - (d) a repeated reference appends nothing and answers the transaction it names
//!   (`Sim::repeat`, and every single command whose reference was used);
//! - (e) `live_points(t)` is the sum of the lots live at `t`, by a model of lots
//!   folded from the events (`Model`, `Sim::check_lots`), and uses take lots
//!   soonest-expiring first (`Model::apply`).

mod support;

use ledger_core::command::{AddPoints, BulkAddPoints, BulkUsePoints, Outcome, PointsReceipt, UsePoints};
use ledger_core::event::{EventBody, LotTake};
use ledger_core::{Command, Event, Rejection, Stamp, Timestamp};
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::*;

const PROGRAMS: [&str; 3] = ["p", "q", "nope"];
const MEMBERS: [&str; 5] = ["m0", "m1", "m2", "m3", "m4"];
/// Reward `gift` costs 15 in `p` until it expires at 300, and 10 in `q` forever.
const GIFT_EXPIRES_AT: i64 = 300;

fn gift(program: &str) -> (u64, Option<i64>) {
    if program == "p" { (15, Some(GIFT_EXPIRES_AT)) } else { (10, None) }
}

/// 0..=2 are no reference, the rest a pool of 6.
fn reference(index: usize) -> String {
    if index < 3 { String::new() } else { format!("r{}", index - 3) }
}

#[derive(Clone, Debug)]
enum Op {
    Add { program: usize, member: usize, points: i64, expires_in: Option<i64>, reference: usize, replace: bool },
    Use { program: usize, member: usize, points: i64, reward: bool, reference: usize, replace: bool },
    BulkAdd { program: usize, items: Vec<(usize, i64, Option<i64>, usize)>, atomic: bool },
    BulkUse { program: usize, items: Vec<(usize, i64, bool, usize)>, atomic: bool },
    Repeat { pick: usize },
    Advance { micros: i64 },
    Expire { lots_max: usize },
}

fn program() -> impl Strategy<Value = usize> {
    prop_oneof![12 => 0..2usize, 1 => Just(2usize)]
}

fn add_points() -> impl Strategy<Value = i64> {
    prop_oneof![12 => 1..=40i64, 1 => Just(0i64)]
}

fn expires_in() -> impl Strategy<Value = Option<i64>> {
    proptest::option::of(1..=150i64)
}

fn use_points() -> impl Strategy<Value = (i64, bool)> {
    prop_oneof![4 => (1..=50i64).prop_map(|points| (points, false)), 1 => Just((0, true)), 1 => Just((-3, false))]
}

fn op(weights: [u32; 7]) -> impl Strategy<Value = Op> {
    let [add, spend, bulk_add, bulk_use, repeat, advance, expire] = weights;
    prop_oneof![
        add => (program(), 0..5usize, add_points(), expires_in(), 0..9usize, prop::bool::weighted(0.2)).prop_map(
            |(program, member, points, expires_in, reference, replace)| {
                Op::Add { program, member, points, expires_in, reference, replace }
            }
        ),
        spend => (program(), 0..5usize, use_points(), 0..9usize, prop::bool::weighted(0.2)).prop_map(
            |(program, member, (points, reward), reference, replace)| {
                Op::Use { program, member, points, reward, reference, replace }
            }
        ),
        bulk_add => (
            program(),
            prop::collection::vec((0..5usize, add_points(), expires_in(), 0..9usize), 1..6),
            any::<bool>()
        )
            .prop_map(|(program, items, atomic)| Op::BulkAdd { program, items, atomic }),
        bulk_use => (
            program(),
            prop::collection::vec(
                (0..5usize, use_points(), 0..9usize).prop_map(|(member, (points, reward), reference)| {
                    (member, points, reward, reference)
                }),
                1..6
            ),
            any::<bool>()
        )
            .prop_map(|(program, items, atomic)| Op::BulkUse { program, items, atomic }),
        repeat => any::<usize>().prop_map(|pick| Op::Repeat { pick }),
        advance => (0..=60i64).prop_map(|micros| Op::Advance { micros }),
        expire => (1..=4usize).prop_map(|lots_max| Op::Expire { lots_max }),
    ]
}

fn history(weights: [u32; 7], steps: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(weights), 1..steps)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn mixed_histories(ops in history([6, 5, 2, 2, 2, 3, 1], 50)) {
        simulate(&ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bulk_heavy_histories(ops in history([2, 1, 5, 5, 1, 2, 1], 30)) {
        simulate(&ops);
    }

    #[test]
    fn reference_heavy_histories(ops in history([5, 5, 1, 1, 6, 2, 1], 50)) {
        simulate(&ops);
    }

    #[test]
    fn expiry_heavy_histories(ops in history([6, 4, 1, 1, 1, 6, 4], 50)) {
        simulate(&ops);
    }
}

fn simulate(ops: &[Op]) {
    let mut sim = Sim::new();
    for op in ops {
        sim.step(op);
        check_invariants(&sim.store);
        sim.check_lots();
    }
}

// The model.

#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelLot {
    remaining: u64,
    expires_at: Option<Timestamp>,
}

/// The lots of every member and the transaction each reference names, folded from
/// the appended events by rules written out plainly, independent of `Lots`.
#[derive(Default)]
struct Model {
    lots: BTreeMap<(String, String), BTreeMap<u64, ModelLot>>,
    /// The lot each add's points went to: its own when it expires, else the
    /// member's one never-expiring lot, 0.
    add_lots: BTreeMap<u64, u64>,
    references: BTreeMap<(String, String), Remembered>,
}

/// What a reference names, and the receipt its transaction answered when known
/// (bulks answer no receipt per item).
#[derive(Clone, Debug)]
struct Remembered {
    transaction_id: u64,
    /// The transaction was an add (else a use): only a command of the same kind is
    /// answered as a repeat; the other kind is refused.
    add: bool,
    receipt: Option<PointsReceipt>,
}

fn is_live(lot: &ModelLot, at: Timestamp) -> bool {
    match lot.expires_at {
        None => true,
        Some(expires_at) => at < expires_at,
    }
}

impl Model {
    fn member_lots(&self, program: &str, member: &str) -> Option<&BTreeMap<u64, ModelLot>> {
        self.lots.get(&(program.to_owned(), member.to_owned()))
    }

    fn live(&self, program: &str, member: &str, at: Timestamp) -> u64 {
        let lots = self.member_lots(program, member).into_iter().flat_map(|lots| lots.values());
        lots.filter(|lot| is_live(lot, at)).map(|lot| lot.remaining).sum()
    }

    fn reference(&self, program: &str, reference: &str) -> Option<&Remembered> {
        if reference.is_empty() {
            return None;
        }
        self.references.get(&(program.to_owned(), reference.to_owned()))
    }

    /// Lots whose expiry has come at `at` and still hold points: what a sweep takes.
    fn expired_count(&self, at: Timestamp) -> usize {
        self.lots.values().flat_map(|lots| lots.values()).filter(|lot| !is_live(lot, at)).count()
    }

    /// The takes SPEC §3 asks for: lot `first` (any state) before the others, then
    /// live lots soonest-expiring first, never-expiring last, older first.
    fn plan(&self, program: &str, member: &str, points: u64, at: Timestamp, first: Option<u64>) -> Vec<(u64, u64)> {
        let empty = BTreeMap::new();
        let lots = self.member_lots(program, member).unwrap_or(&empty);
        let mut order: Vec<(&u64, &ModelLot)> = Vec::new();
        if let Some(first) = first
            && let Some(lot) = lots.get(&first)
        {
            order.push((lots.get_key_value(&first).expect("present").0, lot));
        }
        let mut rest: Vec<(&u64, &ModelLot)> =
            lots.iter().filter(|(id, lot)| Some(**id) != first && is_live(lot, at)).collect();
        rest.sort_by_key(|(id, lot)| (lot.expires_at.is_none(), lot.expires_at, **id));
        order.extend(rest);
        let mut left = points;
        let mut takes = Vec::new();
        for (id, lot) in order {
            if left == 0 {
                break;
            }
            let take = left.min(lot.remaining);
            if take > 0 {
                takes.push((*id, take));
                left -= take;
            }
        }
        assert_eq!(left, 0, "the core took points the lots did not hold");
        takes
    }

    fn debit(&mut self, key: &(String, String), takes: &[LotTake]) {
        let lots = self.lots.get_mut(key).expect("a debit names a member with lots");
        for take in takes {
            let lot = lots.get_mut(&take.lot).expect("a debit names an existing lot");
            lot.remaining = lot.remaining.checked_sub(take.points).expect("a lot never goes below zero");
            if lot.remaining == 0 {
                lots.remove(&take.lot);
            }
        }
    }

    /// Folds one appended event, checking that the lots it takes are the ones the
    /// spend order names.
    fn apply(&mut self, stamp: Stamp, event: &Event) {
        let key = (event.program.clone(), event.member.clone());
        let takes_of = |takes: &[LotTake]| takes.iter().map(|take| (take.lot, take.points)).collect::<Vec<_>>();
        match &event.body {
            EventBody::PointsAdded(added) => {
                let id = if added.expires_at.is_some() { stamp.sequence } else { 0 };
                self.add_lots.insert(stamp.sequence, id);
                let lot = self
                    .lots
                    .entry(key)
                    .or_default()
                    .entry(id)
                    .or_insert(ModelLot { remaining: 0, expires_at: added.expires_at });
                lot.remaining += added.points;
            }
            EventBody::PointsUsed(used) => {
                let planned = self.plan(&event.program, &event.member, used.points, stamp.recorded_at, None);
                assert_eq!(takes_of(&used.taken), planned, "a use takes the soonest-expiring live lots first");
                self.debit(&key, &used.taken);
            }
            EventBody::PointsAddReversed(reversal) => {
                let first = Some(self.add_lots[&reversal.transaction_id]);
                let planned = self.plan(&event.program, &event.member, reversal.points, stamp.recorded_at, first);
                assert_eq!(takes_of(&reversal.lots), planned, "a reversal takes from the add's own lot first");
                self.debit(&key, &reversal.lots);
            }
            EventBody::PointsUseReversed(reversal) => {
                let lots = self.lots.entry(key).or_default();
                for take in &reversal.lots {
                    let lot = lots.entry(take.lot).or_insert(ModelLot { remaining: 0, expires_at: take.expires_at });
                    lot.remaining += take.points;
                }
            }
            EventBody::PointsExpired { lot, points } => {
                let found = self.lots.get(&key).and_then(|lots| lots.get(lot)).expect("the sweep names a lot");
                assert!(!is_live(found, stamp.recorded_at), "the sweep expires only lots whose time has come");
                assert_eq!(found.remaining, *points, "the sweep takes all that is left of a lot");
                self.lots.get_mut(&key).expect("present").remove(lot);
            }
            // These properties generate only points commands; issue-5 kinds have
            // their own properties in `kinds.rs`.
            _ => {}
        }
        let reference = event.body.reference();
        if !reference.is_empty() {
            let add = matches!(event.body, EventBody::PointsAdded(_));
            let remembered = Remembered { transaction_id: stamp.sequence, add, receipt: None };
            self.references.insert((event.program.clone(), reference.to_owned()), remembered);
        }
    }
}

// The simulation.

struct Sim {
    store: Store,
    model: Model,
    /// Single commands that applied with a reference, to repeat later.
    repeatable: Vec<Command>,
}

impl Sim {
    fn new() -> Sim {
        let mut store = Store::new();
        let setup =
            [create_program("q"), reward("gift", 15, Some(GIFT_EXPIRES_AT)), reward("gift", 10, None).program("q")];
        for step in &setup {
            store.step(step).expect("setup is accepted");
        }
        Sim { store, model: Model::default(), repeatable: Vec::new() }
    }

    fn at(&self) -> Timestamp {
        self.store.at
    }

    /// Runs a command, feeds what it appended to the model, and returns both.
    fn run(&mut self, command: &Command) -> (Result<Outcome, Rejection>, Vec<(Stamp, Event)>) {
        let logged = self.store.log.len();
        let before = self.store.state.clone();
        let result = self.store.run(command);
        if result.is_err() {
            assert_eq!(self.store.state, before, "a rejected command changes nothing");
        }
        let appended = self.store.log[logged..].to_vec();
        for (stamp, event) in &appended {
            self.model.apply(*stamp, event);
        }
        (result, appended)
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Add { program, member, points, expires_in, reference: index, replace } => {
                let add = AddPoints {
                    program: PROGRAMS[*program].to_owned(),
                    member: MEMBERS[*member].to_owned(),
                    points: *points,
                    remark: "earned".to_owned(),
                    reference: reference(*index),
                    replace_duplicate: *replace,
                    expires_at: expires_in.map(|micros| Timestamp::from_micros(self.at().micros() + micros)),
                    ..AddPoints::default()
                };
                self.single(Command::AddPoints(add));
            }
            Op::Use { program, member, points, reward, reference: index, replace } => {
                let spend = UsePoints {
                    program: PROGRAMS[*program].to_owned(),
                    member: MEMBERS[*member].to_owned(),
                    points: *points,
                    reward_id: if *reward { "gift".to_owned() } else { String::new() },
                    remark: if *reward { String::new() } else { "spent".to_owned() },
                    reference: reference(*index),
                    replace_duplicate: *replace,
                    ..UsePoints::default()
                };
                self.single(Command::UsePoints(spend));
            }
            Op::BulkAdd { program, items, atomic } => {
                let items = items
                    .iter()
                    .map(|(member, points, expires_in, index)| AddPoints {
                        program: PROGRAMS[*program].to_owned(),
                        member: MEMBERS[*member].to_owned(),
                        points: *points,
                        remark: "earned".to_owned(),
                        reference: reference(*index),
                        expires_at: expires_in.map(|micros| Timestamp::from_micros(self.at().micros() + micros)),
                        ..AddPoints::default()
                    })
                    .collect();
                let bulk =
                    BulkAddPoints { program: PROGRAMS[*program].to_owned(), items, atomic: *atomic, malformed: None };
                self.bulk(Command::BulkAddPoints(bulk));
            }
            Op::BulkUse { program, items, atomic } => {
                let items = items
                    .iter()
                    .map(|(member, points, reward, index)| UsePoints {
                        program: PROGRAMS[*program].to_owned(),
                        member: MEMBERS[*member].to_owned(),
                        points: *points,
                        reward_id: if *reward { "gift".to_owned() } else { String::new() },
                        remark: if *reward { String::new() } else { "spent".to_owned() },
                        reference: reference(*index),
                        ..UsePoints::default()
                    })
                    .collect();
                let bulk =
                    BulkUsePoints { program: PROGRAMS[*program].to_owned(), items, atomic: *atomic, malformed: None };
                self.bulk(Command::BulkUsePoints(bulk));
            }
            Op::Repeat { pick } => self.repeat(*pick),
            Op::Advance { micros } => {
                let to = self.at().micros() + micros;
                self.store.step(&at(to)).expect("the clock moves");
            }
            Op::Expire { lots_max } => self.expire(*lots_max),
        }
    }

    /// One add or use, checked against what the model says it must do.
    fn single(&mut self, command: Command) {
        let at = self.at();
        let (program, member, reference, replace) = match &command {
            Command::AddPoints(add) => (&add.program, &add.member, &add.reference, add.replace_duplicate),
            Command::UsePoints(spend) => (&spend.program, &spend.member, &spend.reference, spend.replace_duplicate),
            other => unreachable!("not a single command: {other:?}"),
        };
        let (program, member, reference) = (program.clone(), member.clone(), reference.clone());
        let earlier = self.model.reference(&program, &reference).cloned();
        let live = self.model.live(&program, &member, at);
        // A replacement may spend what its reversal gives back, so the model judges
        // its input only; a fresh command it judges whole.
        let expected = match &command {
            Command::AddPoints(add) => Expected::of_add(add.points),
            Command::UsePoints(spend) if replace && earlier.is_some() => Expected::of_bulk_use(spend, at),
            Command::UsePoints(spend) => Expected::of_use(spend, at, live),
            _ => unreachable!(),
        };
        let (result, appended) = self.run(&command);
        if program == "nope" {
            let rejection = result.expect_err("an unknown program is refused");
            assert_eq!(rejection.reason(), "PROGRAM_NOT_FOUND");
            assert!(appended.is_empty());
            return;
        }
        // (d): a used reference without replacement is answered from the record, or
        // refused when a transaction of the other kind used it.
        if let Some(earlier) = earlier.as_ref().filter(|_| !replace) {
            check_repeat(&result, &appended, earlier, matches!(command, Command::AddPoints(_)));
            return;
        }
        match (expected, earlier.is_some()) {
            (Expected::Rejected(code), _) => {
                let rejection = result.expect_err("the model expects a rejection");
                assert_eq!(rejection.reason(), code, "{rejection}");
                assert!(appended.is_empty(), "a rejected command appends nothing");
            }
            (Expected::Applied { delta }, false) => {
                let Ok(Outcome::Points(receipt)) = result else { panic!("the model expects an applied command") };
                assert_eq!(appended.len(), 1, "one command, one event");
                assert_eq!(receipt.transaction_id, appended[0].0.sequence);
                assert_eq!(i128::from(receipt.balance), i128::from(live) + delta, "balance after");
                assert!(!receipt.duplicate && !receipt.replaced);
                self.remember(&program, &reference, &receipt, command);
            }
            (Expected::Applied { .. }, true) => match result {
                // Whether the net change fits is the core's to decide: the model checks
                // what a replacement appends, not whether it may.
                Ok(Outcome::Points(receipt)) => {
                    assert_eq!(appended.len(), 2, "a replacement records a reversal and the new transaction");
                    assert!(receipt.replaced && !receipt.duplicate);
                    assert!(appended.iter().any(|(stamp, _)| stamp.sequence == receipt.transaction_id));
                    self.remember(&program, &reference, &receipt, command);
                }
                Ok(other) => panic!("a single command answers a receipt, got {other:?}"),
                Err(rejection) => {
                    assert_eq!(rejection.reason(), "INSUFFICIENT_POINTS", "{rejection}");
                    assert!(appended.is_empty(), "a refused replacement appends nothing");
                }
            },
        }
    }

    fn remember(&mut self, program: &str, reference: &str, receipt: &PointsReceipt, mut command: Command) {
        if reference.is_empty() {
            return;
        }
        let key = (program.to_owned(), reference.to_owned());
        let remembered = self.model.references.get_mut(&key).expect("the model saw the referenced event");
        assert_eq!(remembered.transaction_id, receipt.transaction_id, "the reference names the new transaction");
        remembered.receipt = Some(receipt.clone());
        match &mut command {
            Command::AddPoints(add) => add.replace_duplicate = false,
            Command::UsePoints(spend) => spend.replace_duplicate = false,
            _ => {}
        }
        self.repeatable.push(command);
    }

    /// (d): a repeat of an applied command appends nothing and answers the
    /// transaction its reference names now.
    fn repeat(&mut self, pick: usize) {
        if self.repeatable.is_empty() {
            return;
        }
        let command = self.repeatable[pick % self.repeatable.len()].clone();
        let (program, reference) = match &command {
            Command::AddPoints(add) => (add.program.clone(), add.reference.clone()),
            Command::UsePoints(spend) => (spend.program.clone(), spend.reference.clone()),
            _ => unreachable!(),
        };
        let earlier = self.model.reference(&program, &reference).cloned().expect("a repeatable reference is used");
        let (result, appended) = self.run(&command);
        // A replacement of the other kind may have taken the reference since.
        check_repeat(&result, &appended, &earlier, matches!(command, Command::AddPoints(_)));
    }

    /// (c): the bulk applies exactly the non-duplicate items before `fail_at`, one
    /// event each with consecutive ids, or nothing when atomic and failed.
    fn bulk(&mut self, command: Command) {
        let at = self.at();
        let (program, atomic, items): (String, bool, Vec<BulkItem>) = match &command {
            Command::BulkAddPoints(bulk) => {
                let items = bulk.items.iter().map(BulkItem::add).collect();
                (bulk.program.clone(), bulk.atomic, items)
            }
            Command::BulkUsePoints(bulk) => {
                let items = bulk.items.iter().map(|spend| BulkItem::spend(spend, at)).collect();
                (bulk.program.clone(), bulk.atomic, items)
            }
            _ => unreachable!(),
        };
        // Walk the items as the core must: duplicates skipped, each item against
        // what the ones before it left, stop at the first failure.
        let mut live: BTreeMap<String, u64> = BTreeMap::new();
        let mut seen: Vec<String> = Vec::new();
        let mut duplicates = Vec::new();
        let mut applied = 0u32;
        let mut fail_at = None;
        for (index, item) in items.iter().enumerate() {
            let index = u32::try_from(index).expect("small bulk");
            let earlier = self.model.reference(&program, &item.reference);
            if earlier.is_some_and(|earlier| earlier.add != item.add) {
                // A reference of the other kind fails the item: it is no repeat of it.
                fail_at = Some(index);
                break;
            }
            if !item.reference.is_empty() && (earlier.is_some() || seen.contains(&item.reference)) {
                duplicates.push(index);
                continue;
            }
            let balance =
                live.entry(item.member.clone()).or_insert_with(|| self.model.live(&program, &item.member, at));
            let fits = match item.expected {
                Expected::Rejected(_) => false,
                Expected::Applied { delta } => i128::from(*balance) + delta >= 0,
            };
            if !fits {
                fail_at = Some(index);
                break;
            }
            if let Expected::Applied { delta } = item.expected {
                *balance = u64::try_from(i128::from(*balance) + delta).expect("checked above");
            }
            if !item.reference.is_empty() {
                seen.push(item.reference.clone());
            }
            applied += 1;
        }
        let (result, appended) = self.run(&command);
        if program == "nope" {
            assert_eq!(result.expect_err("an unknown program is refused").reason(), "PROGRAM_NOT_FOUND");
            assert!(appended.is_empty());
            return;
        }
        let Ok(Outcome::Bulk(result)) = result else { panic!("a bulk of 1..=5 items answers a result: {result:?}") };
        assert_eq!(result.fail_at, fail_at, "fail_at");
        assert_eq!(result.failure.is_some(), fail_at.is_some());
        if atomic && fail_at.is_some() {
            assert!(appended.is_empty(), "an atomic bulk that fails appends nothing");
            assert_eq!(result.applied_count, 0);
            return;
        }
        assert_eq!(result.duplicates, duplicates, "duplicates");
        assert_eq!(result.applied_count, applied, "applied_count");
        assert_eq!(appended.len(), usize::try_from(applied).expect("small"), "one event per applied item");
        if let (Some((first, _)), Some((last, _))) = (appended.first(), appended.last()) {
            assert_eq!((result.first_transaction_id, result.last_transaction_id), (first.sequence, last.sequence));
            assert_eq!(last.sequence - first.sequence + 1, u64::from(applied), "consecutive ids");
        } else {
            assert_eq!((result.first_transaction_id, result.last_transaction_id), (0, 0));
        }
        let touched: BTreeMap<String, u64> =
            live.into_iter().filter(|(member, _)| appended.iter().any(|(_, event)| event.member == *member)).collect();
        let balances: BTreeMap<String, u64> = result.balances.into_iter().collect();
        assert_eq!(balances, touched, "balances of the members applied items touched");
    }

    fn expire(&mut self, lots_max: usize) {
        let due = self.model.expired_count(self.at());
        let (result, appended) = self.run(&expire(lots_max).into_command());
        let Ok(Outcome::PointsExpired { lots }) = result else { panic!("a sweep always answers: {result:?}") };
        assert_eq!(lots, due.min(lots_max), "the sweep expires every due lot, up to its limit");
        assert_eq!(appended.len(), lots);
    }

    /// (b), (e): every member's lots are the model's, and live points at any time
    /// are the remainders of the lots live then.
    fn check_lots(&self) {
        for (program_id, program) in &self.store.state.programs {
            for (member_id, member) in &program.members {
                let lots: BTreeMap<u64, ModelLot> = member
                    .lots
                    .iter()
                    .map(|lot| (lot.lot, ModelLot { remaining: lot.remaining, expires_at: lot.expires_at }))
                    .collect();
                let empty = BTreeMap::new();
                let model = self.model.member_lots(program_id, member_id).unwrap_or(&empty);
                assert_eq!(&lots, model, "{program_id}/{member_id}: lots");
                let mut probes = vec![self.at(), Timestamp::from_micros(self.at().micros() + 1)];
                for expires_at in model.values().filter_map(|lot| lot.expires_at) {
                    probes.extend([-1, 0, 1].map(|step| Timestamp::from_micros(expires_at.micros() + step)));
                }
                for at in probes {
                    let live = self.model.live(program_id, member_id, at);
                    assert_eq!(member.live_points(at), live, "{program_id}/{member_id}: live points at {at:?}");
                    assert!(live <= member.points);
                }
            }
        }
    }
}

/// What the model expects of one add or use that names no used reference.
#[derive(Clone, Copy, Debug)]
enum Expected {
    Rejected(&'static str),
    /// Applied if the balance allows, changing it by `delta`.
    Applied {
        delta: i128,
    },
}

impl Expected {
    fn of_add(points: i64) -> Expected {
        if points < 1 { Expected::Rejected("INVALID_FIELD") } else { Expected::Applied { delta: i128::from(points) } }
    }

    /// A single use: decided here whole, since the model knows the balance.
    fn of_use(spend: &UsePoints, at: Timestamp, live: u64) -> Expected {
        match Expected::of_bulk_use(spend, at) {
            Expected::Applied { delta } if i128::from(live) + delta < 0 => Expected::Rejected("INSUFFICIENT_POINTS"),
            expected => expected,
        }
    }

    fn of_bulk_use(spend: &UsePoints, at: Timestamp) -> Expected {
        if spend.reward_id.is_empty() {
            return if spend.points < 1 {
                Expected::Rejected("INVALID_FIELD")
            } else {
                Expected::Applied { delta: -i128::from(spend.points) }
            };
        }
        let (cost, expires_at) = gift(&spend.program);
        if expires_at.is_some_and(|expires_at| at.micros() >= expires_at) {
            return Expected::Rejected("REWARD_EXPIRED");
        }
        match spend.points {
            0 => Expected::Applied { delta: -i128::from(cost) },
            points if points < 0 => Expected::Rejected("INVALID_FIELD"),
            points => Expected::Applied { delta: -i128::from(points) },
        }
    }
}

struct BulkItem {
    member: String,
    reference: String,
    add: bool,
    expected: Expected,
}

impl BulkItem {
    fn add(add: &AddPoints) -> BulkItem {
        BulkItem {
            member: add.member.clone(),
            reference: add.reference.clone(),
            add: true,
            expected: Expected::of_add(add.points),
        }
    }

    fn spend(spend: &UsePoints, at: Timestamp) -> BulkItem {
        let expected = Expected::of_bulk_use(spend, at);
        BulkItem { member: spend.member.clone(), reference: spend.reference.clone(), add: false, expected }
    }
}

/// A command (an add when `add`) naming a used reference: answered with the original
/// receipt when the same kind used it, refused ALREADY_EXISTS when the other kind
/// did; either way it appends nothing.
fn check_repeat(result: &Result<Outcome, Rejection>, appended: &[(Stamp, Event)], earlier: &Remembered, add: bool) {
    if earlier.add != add {
        let rejection = result.as_ref().expect_err("another kind's reference is refused");
        assert_eq!(rejection.reason(), "REFERENCE_IN_USE", "{rejection}");
        assert!(appended.is_empty(), "a refused command appends nothing");
        return;
    }
    check_duplicate(result, appended, earlier);
}

fn check_duplicate(result: &Result<Outcome, Rejection>, appended: &[(Stamp, Event)], earlier: &Remembered) {
    let Ok(Outcome::Points(receipt)) = result else { panic!("a repeat answers the original receipt: {result:?}") };
    assert!(appended.is_empty(), "a repeat appends nothing");
    assert!(receipt.duplicate);
    assert_eq!(receipt.transaction_id, earlier.transaction_id, "a repeat answers the transaction it names");
    if let Some(original) = &earlier.receipt {
        let original = PointsReceipt { duplicate: true, ..original.clone() };
        assert_eq!(receipt, &original, "a repeat answers the original receipt");
    }
}
