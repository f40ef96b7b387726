//! Random histories over 2 programs × 5 members (adds with and without expiry,
//! uses, rewards, references from a small pool so that repeats and replacements
//! happen, bulks atomic and not, holds of points with their captures, voids and
//! expiries, reversals, the clock moving, sweeps), checked after every step
//! against a model kept beside the store:
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
//!   soonest-expiring first (`Model::apply`);
//! - (f) held points are not spendable; a capture spends what it captures and
//!   gives the rest back to the lots it came from, a void and an expiry give it all
//!   back; a hold past its time holds nothing for any read even before the sweep
//!   records it, and the next use, hold, bulk use or reversal of its member records
//!   it first; for every member live + held + captured + used + expired = added
//!   (`Sim::check_lots`);
//! - (g) a reversal undoes an add whose points are all in its lot, or a use (its
//!   points back to the lots they came from, with their expiry), once
//!   (`Sim::reverse`).

mod support;

use ledger_core::command::{
    AddPoints, BulkAddPoints, BulkUsePoints, CaptureHold, HoldPoints, Outcome, PointsReceipt, Reversal,
    ReverseTransaction, UsePoints, VoidHold,
};
use ledger_core::event::{EventBody, HoldSettled, LotTake, ReversedChange};
use ledger_core::holds::{HoldState, HoldView};
use ledger_core::{Command, Event, Rejection, Stamp, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::BTreeMap;
use support::*;

const PROGRAMS: [&str; 3] = ["p", "q", "nope"];
const MEMBERS: [&str; 5] = ["m0", "m1", "m2", "m3", "m4"];
/// Reward `gift` costs 15 in `p` until it expires at 300, and 10 in `q` forever.
const GIFT_EXPIRES_AT: i64 = 300;
/// A hold that names no expiry expires this long after it (SPEC §14).
const HOLD_DEFAULT_MICROS: i64 = 15 * 60 * 1_000_000;

fn gift(program: &str) -> (u64, Option<i64>) {
    if program == "p" { (15, Some(GIFT_EXPIRES_AT)) } else { (10, None) }
}

/// 0..=2 are no reference, the rest a pool of 6.
fn reference(index: usize) -> String {
    if index < 3 { String::new() } else { format!("r{}", index - 3) }
}

#[derive(Clone, Debug)]
enum Op {
    Add {
        program: usize,
        member: usize,
        points: i64,
        expires_in: Option<i64>,
        reference: usize,
        replace: bool,
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
        items: Vec<(usize, i64, Option<i64>, usize)>,
        atomic: bool,
    },
    BulkUse {
        program: usize,
        items: Vec<(usize, i64, bool, usize)>,
        atomic: bool,
    },
    Repeat {
        pick: usize,
    },
    Advance {
        micros: i64,
    },
    Expire {
        lots_max: usize,
    },
    /// `expires_in` `None` takes the default; 0 is refused (not later than now).
    Hold {
        program: usize,
        member: usize,
        points: HoldAmount,
        expires_in: Option<i64>,
        reference: usize,
    },
    /// `pick` chooses among the holds made so far, or one id that is no hold.
    Capture {
        pick: usize,
        amount: Option<i64>,
        reference: usize,
    },
    Void {
        pick: usize,
    },
    /// `pick` chooses among the adds and uses so far, or with `any` among every
    /// sequence of the log and a few past its end, in program `program`.
    Reverse {
        pick: usize,
        any: bool,
        program: usize,
        reference: usize,
    },
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

#[derive(Clone, Copy, Debug)]
enum HoldAmount {
    /// 1..=15 fifteenths of what the member can spend when the hold is made.
    ShareOfLive(i64),
    Points(i64),
}

fn hold_points() -> impl Strategy<Value = HoldAmount> {
    prop_oneof![
        8 => (1..=15i64).prop_map(HoldAmount::ShareOfLive),
        4 => (1..=30i64).prop_map(HoldAmount::Points),
        1 => Just(HoldAmount::Points(0)),
    ]
}

fn hold_expires_in() -> impl Strategy<Value = Option<i64>> {
    // Mostly soon, so that holds lapse while the history goes on.
    prop_oneof![8 => (1..=40i64).prop_map(Some), 1 => Just(None), 1 => Just(Some(0))]
}

fn capture_amount() -> impl Strategy<Value = Option<i64>> {
    // Small parts, so that most fit the hold; 0 and more than any hold are invalid.
    prop_oneof![3 => Just(None), 4 => (1..=12i64).prop_map(Some), 1 => Just(Some(0)), 1 => Just(Some(1_000))]
}

/// Mostly none, so that most holds, captures and reversals reach the state, not
/// a reference an add or use took (the pool is shared, so that they clash).
fn fewer_references() -> impl Strategy<Value = usize> {
    prop_oneof![2 => Just(0usize), 1 => 0..9usize]
}

/// Weights of add, use, bulk add, bulk use, repeat, advance, expire, hold,
/// capture, void, reverse.
type Weights = [u32; 11];

fn op(weights: Weights) -> impl Strategy<Value = Op> {
    let [add, spend, bulk_add, bulk_use, repeat, advance, expire, hold, capture, void, reverse] = weights;
    let ops: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            add,
            (program(), 0..5usize, add_points(), expires_in(), 0..9usize, prop::bool::weighted(0.2))
                .prop_map(|(program, member, points, expires_in, reference, replace)| Op::Add {
                    program,
                    member,
                    points,
                    expires_in,
                    reference,
                    replace,
                })
                .boxed(),
        ),
        (
            spend,
            (program(), 0..5usize, use_points(), 0..9usize, prop::bool::weighted(0.2))
                .prop_map(|(program, member, (points, reward), reference, replace)| Op::Use {
                    program,
                    member,
                    points,
                    reward,
                    reference,
                    replace,
                })
                .boxed(),
        ),
        (
            bulk_add,
            (program(), prop::collection::vec((0..5usize, add_points(), expires_in(), 0..9usize), 1..6), any::<bool>())
                .prop_map(|(program, items, atomic)| Op::BulkAdd { program, items, atomic })
                .boxed(),
        ),
        (
            bulk_use,
            (
                program(),
                prop::collection::vec(
                    (0..5usize, use_points(), 0..9usize)
                        .prop_map(|(member, (points, reward), reference)| (member, points, reward, reference)),
                    1..6,
                ),
                any::<bool>(),
            )
                .prop_map(|(program, items, atomic)| Op::BulkUse { program, items, atomic })
                .boxed(),
        ),
        (repeat, any::<usize>().prop_map(|pick| Op::Repeat { pick }).boxed()),
        (advance, (0..=60i64).prop_map(|micros| Op::Advance { micros }).boxed()),
        (expire, (1..=4usize).prop_map(|lots_max| Op::Expire { lots_max }).boxed()),
        (
            hold,
            (program(), 0..5usize, hold_points(), hold_expires_in(), fewer_references())
                .prop_map(|(program, member, points, expires_in, reference)| Op::Hold {
                    program,
                    member,
                    points,
                    expires_in,
                    reference,
                })
                .boxed(),
        ),
        (
            capture,
            (any::<usize>(), capture_amount(), fewer_references())
                .prop_map(|(pick, amount, reference)| Op::Capture { pick, amount, reference })
                .boxed(),
        ),
        (void, any::<usize>().prop_map(|pick| Op::Void { pick }).boxed()),
        (
            reverse,
            (any::<usize>(), prop::bool::weighted(0.3), program(), fewer_references())
                .prop_map(|(pick, any, program, reference)| Op::Reverse { pick, any, program, reference })
                .boxed(),
        ),
    ];
    // A history without some ops weighs them 0, which a union refuses.
    proptest::strategy::Union::new_weighted(ops.into_iter().filter(|(weight, _)| *weight > 0).collect())
}

fn history(weights: Weights, steps: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(weights), 1..steps)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn mixed_histories(ops in history([6, 5, 2, 2, 2, 3, 1, 1, 1, 1, 1], 50)) {
        simulate(&ops);
    }

    /// Holds beside uses and bulk uses of the same members, with the clock
    /// passing their time and sweeps recording it.
    #[test]
    fn hold_heavy_histories(ops in history([5, 2, 1, 2, 2, 5, 2, 6, 4, 2, 1], 50)) {
        simulate(&ops);
    }

    /// Reversals of adds and uses (single and bulk items), of what cannot be
    /// reversed, twice, and beside replacements and holds that take the same lots.
    #[test]
    fn reversal_heavy_histories(ops in history([6, 4, 1, 2, 2, 2, 1, 2, 1, 1, 6], 50)) {
        simulate(&ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bulk_heavy_histories(ops in history([2, 1, 5, 5, 1, 2, 1, 0, 0, 0, 0], 30)) {
        simulate(&ops);
    }

    #[test]
    fn reference_heavy_histories(ops in history([5, 5, 1, 1, 6, 2, 1, 0, 0, 0, 0], 50)) {
        simulate(&ops);
    }

    #[test]
    fn expiry_heavy_histories(ops in history([6, 4, 1, 1, 1, 6, 4, 0, 0, 0, 0], 50)) {
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

/// A points hold as the model keeps it: the state as recorded (a read asks
/// `state_at`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelHold {
    program: String,
    member: String,
    amount: u64,
    taken: Vec<LotTake>,
    expires_at: Timestamp,
    state: HoldState,
    captured: u64,
    settled_transaction_id: u64,
}

impl ModelHold {
    /// SPEC §14: a pending hold whose time came is expired for every read.
    fn state_at(&self, at: Timestamp) -> HoldState {
        if self.state == HoldState::Pending && self.expires_at <= at { HoldState::Expired } else { self.state }
    }

    fn is_lapsed(&self, at: Timestamp) -> bool {
        self.state == HoldState::Pending && self.expires_at <= at
    }
}

/// Where a member's points went, from its events: what the conservation check
/// of (f) adds up. Net of reversals; `u64`, so never negative.
#[derive(Clone, Copy, Debug, Default)]
struct Flows {
    added: u64,
    used: u64,
    captured: u64,
    /// Recorded by the sweep (`PointsExpired`).
    swept: u64,
}

/// The lots of every member and the transaction each reference names, folded from
/// the appended events by rules written out plainly, independent of `Lots`.
#[derive(Default)]
struct Model {
    lots: BTreeMap<(String, String), BTreeMap<u64, ModelLot>>,
    /// The lot each add's points went to: its own when it expires, else the
    /// member's one never-expiring lot, 0.
    add_lots: BTreeMap<u64, u64>,
    /// What each use took, to check that its reversal gives exactly that back.
    use_takes: BTreeMap<u64, Vec<LotTake>>,
    references: BTreeMap<(String, String), Remembered>,
    /// Every points hold by its id.
    holds: BTreeMap<u64, ModelHold>,
    flows: BTreeMap<(String, String), Flows>,
    /// Every event by its sequence, setup included: what the store reads a
    /// reversal's target from, and what the model judges a reversal by.
    events: BTreeMap<u64, Event>,
    /// Adds and uses (bulk items included), the transactions a reversal undoes.
    transactions: Vec<u64>,
    /// Transactions reversed (by a reversal or a replacement), with the reversal.
    reversed: BTreeMap<u64, u64>,
}

/// The kind of transaction a reference names: only a command of the same kind is
/// answered as a repeat; another kind is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Use,
    Hold,
    Capture,
    Reversal,
}

impl Kind {
    /// The kinds a `replace_duplicate` may replace.
    fn is_points(self) -> bool {
        matches!(self, Kind::Add | Kind::Use)
    }
}

/// What a reference names, and the answer its transaction gave when known
/// (bulks answer no receipt per item).
#[derive(Clone, Debug)]
struct Remembered {
    transaction_id: u64,
    kind: Kind,
    receipt: Option<PointsReceipt>,
    /// For a capture: the hold it captured.
    hold: u64,
    reversal: Option<Reversal>,
}

fn is_live(lot: &ModelLot, at: Timestamp) -> bool {
    match lot.expires_at {
        None => true,
        Some(expires_at) => at < expires_at,
    }
}

fn take_is_live(take: &LotTake, at: Timestamp) -> bool {
    take.expires_at.is_none_or(|expires_at| at < expires_at)
}

/// The last `points` of `taken`, in the same order: what a release gives back.
fn tail_of(taken: &[LotTake], points: u64) -> Vec<(u64, u64)> {
    let mut left = points;
    let mut tail = Vec::new();
    for take in taken.iter().rev() {
        if left == 0 {
            break;
        }
        let given = left.min(take.points);
        tail.push((take.lot, given));
        left -= given;
    }
    assert_eq!(left, 0, "a release gives back at most what the hold took");
    tail.reverse();
    tail
}

fn whole(amount: Decimal) -> u64 {
    assert!(amount.normalize().is_integer(), "points move whole: {amount}");
    amount.to_u64().expect("points fit u64")
}

fn key(program: &str, member: &str) -> (String, String) {
    (program.to_owned(), member.to_owned())
}

impl Model {
    fn member_lots(&self, program: &str, member: &str) -> Option<&BTreeMap<u64, ModelLot>> {
        self.lots.get(&key(program, member))
    }

    fn member_holds<'a>(&'a self, program: &'a str, member: &'a str) -> impl Iterator<Item = (&'a u64, &'a ModelHold)> {
        self.holds.iter().filter(move |(_, hold)| hold.program == program && hold.member == member)
    }

    /// Points spendable at `at`: the live lots, and what holds past their time
    /// give back to lots still live then.
    fn live(&self, program: &str, member: &str, at: Timestamp) -> u64 {
        let lots = self.member_lots(program, member).into_iter().flat_map(|lots| lots.values());
        let in_lots: u64 = lots.filter(|lot| is_live(lot, at)).map(|lot| lot.remaining).sum();
        let lapsed = self.member_holds(program, member).filter(|(_, hold)| hold.is_lapsed(at));
        let released: u64 = lapsed
            .flat_map(|(_, hold)| hold.taken.iter())
            .filter(|take| take_is_live(take, at))
            .map(|t| t.points)
            .sum();
        in_lots + released
    }

    /// Points pending holds hold at `at`: none past its time.
    fn held(&self, program: &str, member: &str, at: Timestamp) -> u64 {
        let pending = self.member_holds(program, member).filter(|(_, hold)| hold.state_at(at) == HoldState::Pending);
        pending.map(|(_, hold)| hold.amount).sum()
    }

    /// Points expired at `at` but not swept: in expired lots, or on their way back
    /// to them from a hold past its time.
    fn unswept(&self, program: &str, member: &str, at: Timestamp) -> u64 {
        let lots = self.member_lots(program, member).into_iter().flat_map(|lots| lots.values());
        let in_lots: u64 = lots.filter(|lot| !is_live(lot, at)).map(|lot| lot.remaining).sum();
        let lapsed = self.member_holds(program, member).filter(|(_, hold)| hold.is_lapsed(at));
        let released: u64 = lapsed
            .flat_map(|(_, hold)| hold.taken.iter())
            .filter(|take| !take_is_live(take, at))
            .map(|t| t.points)
            .sum();
        in_lots + released
    }

    /// The member's holds past their time at `at` and not recorded as expired, in
    /// id order: what its next single use or hold records first.
    fn lapsed(&self, program: &str, member: &str, at: Timestamp) -> Vec<u64> {
        self.member_holds(program, member).filter(|(_, hold)| hold.is_lapsed(at)).map(|(id, _)| *id).collect()
    }

    fn reference(&self, program: &str, reference: &str) -> Option<&Remembered> {
        if reference.is_empty() {
            return None;
        }
        self.references.get(&key(program, reference))
    }

    /// Lots whose expiry has come at `at` and still hold points, and pending holds
    /// past their time: what a sweep records.
    fn expired_count(&self, at: Timestamp) -> usize {
        let lots = self.lots.values().flat_map(|lots| lots.values()).filter(|lot| !is_live(lot, at)).count();
        lots + self.holds.values().filter(|hold| hold.is_lapsed(at)).count()
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
            assert_eq!(lot.expires_at, take.expires_at, "a take names its lot's expiry");
            lot.remaining = lot.remaining.checked_sub(take.points).expect("a lot never goes below zero");
            if lot.remaining == 0 {
                lots.remove(&take.lot);
            }
        }
    }

    /// Points back to the lots they came from, with their expiry: a lot that
    /// expired (or was swept) meanwhile comes back expired.
    fn credit(&mut self, key: &(String, String), takes: &[LotTake]) {
        let lots = self.lots.entry(key.clone()).or_default();
        for take in takes {
            let lot = lots.entry(take.lot).or_insert(ModelLot { remaining: 0, expires_at: take.expires_at });
            assert_eq!(lot.expires_at, take.expires_at, "points come back with their lot's expiry");
            lot.remaining += take.points;
        }
    }

    fn flows(&mut self, key: &(String, String)) -> &mut Flows {
        self.flows.entry(key.clone()).or_default()
    }

    fn note_reversed(&mut self, transaction_id: u64, by: u64) {
        let previous = self.reversed.insert(transaction_id, by);
        assert!(previous.is_none(), "transaction {transaction_id} reversed twice");
    }

    /// Folds one appended event, checking that the lots it takes are the ones the
    /// spend order names.
    fn apply(&mut self, stamp: Stamp, event: &Event) {
        let key = key(&event.program, &event.member);
        let at = stamp.recorded_at;
        let takes_of = |takes: &[LotTake]| takes.iter().map(|take| (take.lot, take.points)).collect::<Vec<_>>();
        self.events.insert(stamp.sequence, event.clone());
        match &event.body {
            EventBody::PointsAdded(added) => {
                let id = if added.expires_at.is_some() { stamp.sequence } else { 0 };
                self.add_lots.insert(stamp.sequence, id);
                self.transactions.push(stamp.sequence);
                let lot = self
                    .lots
                    .entry(key.clone())
                    .or_default()
                    .entry(id)
                    .or_insert(ModelLot { remaining: 0, expires_at: added.expires_at });
                lot.remaining += added.points;
                self.flows(&key).added += added.points;
            }
            EventBody::PointsUsed(used) => {
                let planned = self.plan(&event.program, &event.member, used.points, at, None);
                assert_eq!(takes_of(&used.taken), planned, "a use takes the soonest-expiring live lots first");
                self.debit(&key, &used.taken);
                self.use_takes.insert(stamp.sequence, used.taken.clone());
                self.transactions.push(stamp.sequence);
                self.flows(&key).used += used.points;
            }
            EventBody::PointsAddReversed(reversal) => {
                let first = Some(self.add_lots[&reversal.transaction_id]);
                let planned = self.plan(&event.program, &event.member, reversal.points, at, first);
                assert_eq!(takes_of(&reversal.lots), planned, "a reversal takes from the add's own lot first");
                self.debit(&key, &reversal.lots);
                self.note_reversed(reversal.transaction_id, stamp.sequence);
                let flows = self.flows(&key);
                flows.added = flows.added.checked_sub(reversal.points).expect("never below zero");
            }
            EventBody::PointsUseReversed(reversal) => {
                self.credit(&key, &reversal.lots);
                self.note_reversed(reversal.transaction_id, stamp.sequence);
                let flows = self.flows(&key);
                flows.used = flows.used.checked_sub(reversal.points).expect("never below zero");
            }
            EventBody::PointsExpired { lot, points } => {
                let found = self.lots.get(&key).and_then(|lots| lots.get(lot)).expect("the sweep names a lot");
                assert!(!is_live(found, at), "the sweep expires only lots whose time has come");
                assert_eq!(found.remaining, *points, "the sweep takes all that is left of a lot");
                self.lots.get_mut(&key).expect("present").remove(lot);
                self.flows(&key).swept += points;
            }
            EventBody::PointsHeld(held) => {
                let planned = self.plan(&event.program, &event.member, held.points, at, None);
                assert_eq!(takes_of(&held.taken), planned, "a hold takes lots as a use does");
                assert!(held.expires_at > at, "a hold expires after it is made");
                self.debit(&key, &held.taken);
                let hold = ModelHold {
                    program: event.program.clone(),
                    member: event.member.clone(),
                    amount: held.points,
                    taken: held.taken.clone(),
                    expires_at: held.expires_at,
                    state: HoldState::Pending,
                    captured: 0,
                    settled_transaction_id: 0,
                };
                self.holds.insert(stamp.sequence, hold);
            }
            EventBody::HoldCaptured(settled) => self.settle(stamp, &key, settled, HoldState::Captured),
            EventBody::HoldVoided(settled) => self.settle(stamp, &key, settled, HoldState::Voided),
            EventBody::HoldExpired(settled) => self.settle(stamp, &key, settled, HoldState::Expired),
            EventBody::TransactionReversed(reversal) => {
                let target = self.events[&reversal.transaction_id].clone();
                assert_eq!((&target.program, &target.member), (&event.program, &event.member), "its own member");
                match &reversal.change {
                    ReversedChange::PointsAdd { points, lots, earned } => {
                        let EventBody::PointsAdded(added) = &target.body else {
                            panic!("an add's reversal names an add")
                        };
                        let lot = self.add_lots[&reversal.transaction_id];
                        let whole_lot = vec![LotTake { lot, points: added.points, expires_at: added.expires_at }];
                        assert_eq!((points, earned, lots), (&added.points, &added.points, &whole_lot), "the add whole");
                        self.debit(&key, lots);
                        let flows = self.flows(&key);
                        flows.added = flows.added.checked_sub(*points).expect("never below zero");
                    }
                    ReversedChange::PointsUse { points, lots } => {
                        let taken = &self.use_takes[&reversal.transaction_id];
                        assert_eq!(lots, taken, "a use's reversal gives back exactly what it took");
                        self.credit(&key, lots);
                        let flows = self.flows(&key);
                        flows.used = flows.used.checked_sub(*points).expect("never below zero");
                    }
                    other => panic!("these histories reverse only points: {other:?}"),
                }
                self.note_reversed(reversal.transaction_id, stamp.sequence);
            }
            // These properties generate only points commands; issue-5 kinds have
            // their own properties in `kinds.rs`.
            _ => {}
        }
        let reference = event.body.reference();
        if !reference.is_empty() {
            let (kind, hold) = match &event.body {
                EventBody::PointsAdded(_) => (Kind::Add, 0),
                EventBody::PointsUsed(_) => (Kind::Use, 0),
                EventBody::PointsHeld(_) => (Kind::Hold, stamp.sequence),
                EventBody::HoldCaptured(settled) => (Kind::Capture, settled.hold),
                EventBody::TransactionReversed(_) => (Kind::Reversal, 0),
                other => panic!("no reference expected on {other:?}"),
            };
            let remembered = Remembered { transaction_id: stamp.sequence, kind, receipt: None, hold, reversal: None };
            self.references.insert((event.program.clone(), reference.to_owned()), remembered);
        }
    }

    /// A capture, void or expiry of a pending points hold: what it captures is
    /// spent, the rest goes back to the lots it came from, the last taken first.
    fn settle(&mut self, stamp: Stamp, key: &(String, String), settled: &HoldSettled, state: HoldState) {
        let at = stamp.recorded_at;
        let hold = self.holds.get(&settled.hold).expect("a settlement names a hold").clone();
        assert_eq!((&hold.program, &hold.member), (&key.0, &key.1), "a settlement names its hold's member");
        assert_eq!(hold.state, HoldState::Pending, "only a pending hold is settled");
        if state == HoldState::Expired {
            assert!(hold.expires_at <= at, "a hold expires only once its time came");
        } else {
            assert!(at < hold.expires_at, "a hold past its time is neither captured nor voided");
        }
        let (captured, released) = (whole(settled.captured), whole(settled.released));
        assert_eq!(captured + released, hold.amount, "a settlement accounts for all that is held");
        if state != HoldState::Captured {
            assert_eq!(captured, 0, "a void or an expiry gives all back");
        }
        let given: Vec<(u64, u64)> = settled.released_lots.iter().map(|take| (take.lot, take.points)).collect();
        assert_eq!(given, tail_of(&hold.taken, released), "the rest goes back to the lots it came from");
        self.credit(key, &settled.released_lots);
        self.flows(key).captured += captured;
        let hold = self.holds.get_mut(&settled.hold).expect("present");
        hold.state = state;
        hold.captured = captured;
        hold.settled_transaction_id = stamp.sequence;
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
        let mut model = Model::default();
        for (stamp, event) in &store.log {
            model.apply(*stamp, event);
        }
        Sim { store, model, repeatable: Vec::new() }
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
            Op::Hold { program, member, points, expires_in, reference: index } => {
                let (mut program, mut member) = (PROGRAMS[*program], MEMBERS[*member]);
                // Mostly a share of what a member can spend, so that most holds
                // apply: the drawn member's, or the next one's that has points.
                if matches!(points, HoldAmount::ShareOfLive(_)) && program != "nope" {
                    let pairs = PROGRAMS[..2].iter().flat_map(|program| MEMBERS.iter().map(move |m| (*program, *m)));
                    let pairs: Vec<(&str, &str)> = pairs.collect();
                    let start = pairs.iter().position(|pair| *pair == (program, member)).expect("drawn from these");
                    let at = self.at();
                    let rich = (0..pairs.len()).map(|step| pairs[(start + step) % pairs.len()]);
                    if let Some(pair) =
                        rich.into_iter().find(|(program, member)| self.model.live(program, member, at) > 0)
                    {
                        (program, member) = pair;
                    }
                }
                let live = i64::try_from(self.model.live(program, member, self.at())).expect("small");
                let points = match points {
                    HoldAmount::ShareOfLive(fifteenths) if live > 0 => (live * fifteenths / 15).max(1),
                    HoldAmount::ShareOfLive(fifteenths) => *fifteenths,
                    HoldAmount::Points(points) => *points,
                };
                let hold = HoldPoints {
                    program: program.to_owned(),
                    member: member.to_owned(),
                    points,
                    remark: "ticket".to_owned(),
                    reference: reference(*index),
                    expires_at: expires_in.map(|micros| Timestamp::from_micros(self.at().micros() + micros)),
                };
                self.hold(hold);
            }
            Op::Capture { pick, amount, reference: index } => {
                let (program, hold_id, member) = self.pick_hold(*pick);
                let amount = amount.map(Decimal::from);
                let reference = reference(*index);
                let remark = String::new();
                self.capture(CaptureHold { program, hold_id, member, amount, remark, reference });
            }
            Op::Void { pick } => {
                let (program, hold_id, member) = self.pick_hold(*pick);
                self.void(VoidHold { program, hold_id, member, remark: "cancelled".to_owned() });
            }
            Op::Reverse { pick, any, program, reference: index } => {
                let transactions = &self.model.transactions;
                let (program, transaction_id) = if *any || transactions.is_empty() {
                    // Any event of the log (definitions, expiries, holds,
                    // reversals, another program's), or one past its end.
                    let last = self.store.next_sequence + 2;
                    (PROGRAMS[*program].to_owned(), 1 + u64::try_from(*pick).expect("fits") % last)
                } else {
                    let transaction_id = transactions[pick % transactions.len()];
                    (self.model.events[&transaction_id].program.clone(), transaction_id)
                };
                self.reverse(ReverseTransaction {
                    program,
                    transaction_id,
                    remark: "cashier mistake".to_owned(),
                    reference: reference(*index),
                    // The store reads it from its log (`support::Store::decide`).
                    target: None,
                });
            }
        }
    }

    /// A hold made so far as Capture and Void name it (the store fills the member in
    /// from the hold's event), or an id that is no hold, whose member is empty.
    fn pick_hold(&self, pick: usize) -> (String, String, String) {
        // One pick in 8 names no hold; most of the others a pending one.
        let at = self.at();
        let pending = self.model.holds.iter().filter(|(_, hold)| hold.state_at(at) == HoldState::Pending);
        let holds: Vec<(&u64, &ModelHold)> =
            if pick.is_multiple_of(4) { self.model.holds.iter().collect() } else { pending.collect() };
        let found = if pick % 8 == 1 { None } else { holds.get(pick / 8 % holds.len().max(1)) };
        match found {
            Some((id, hold)) => (hold.program.clone(), id.to_string(), hold.member.clone()),
            // Sequence 1 is the program's creation.
            None => ("p".to_owned(), "1".to_owned(), String::new()),
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
        let kind = if matches!(command, Command::AddPoints(_)) { Kind::Add } else { Kind::Use };
        // A single use first records the expiry of its member's holds past their
        // time, whose points it may spend; an add leaves them to the sweep.
        let lapsed = if kind == Kind::Use { self.model.lapsed(&program, &member, at) } else { Vec::new() };
        // A replacement may spend what its reversal gives back, so the model judges
        // its input only; a fresh command it judges whole.
        let expected = match &command {
            Command::AddPoints(add) => Expected::of_add(add.points),
            Command::UsePoints(spend) if replace && earlier.is_some() => Expected::of_bulk_use(spend, at),
            Command::UsePoints(spend) => Expected::of_use(spend, at, live),
            _ => unreachable!(),
        };
        let reversed = self.model.reversed.clone();
        let (result, appended) = self.run(&command);
        if program == "nope" {
            let rejection = result.expect_err("an unknown program is refused");
            assert_eq!(rejection.reason(), "PROGRAM_NOT_FOUND");
            assert!(appended.is_empty());
            return;
        }
        // (d): a used reference without replacement is answered from the record, or
        // refused when a transaction of another kind used it; a replacement replaces
        // only an add or a use.
        if let Some(earlier) = earlier.as_ref().filter(|earlier| !replace || !earlier.kind.is_points()) {
            check_repeat(&result, &appended, earlier, kind);
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
                assert_eq!(appended.len(), lapsed.len() + 1, "one command, one event, after the lapsed holds'");
                check_releases(&appended[..lapsed.len()], &lapsed);
                assert_eq!(receipt.transaction_id, appended[lapsed.len()].0.sequence);
                assert_eq!(i128::from(receipt.balance), i128::from(live) + delta, "balance after");
                assert!(!receipt.duplicate && !receipt.replaced);
                self.remember(&program, &reference, &receipt, command);
            }
            (Expected::Applied { .. }, true) => match result {
                // Whether the net change fits is the core's to decide: the model checks
                // what a replacement appends, not whether it may.
                Ok(Outcome::Points(receipt)) => {
                    // A transaction reversed already has nothing left to undo.
                    let earlier = earlier.as_ref().expect("a replacement");
                    let reversal = usize::from(!reversed.contains_key(&earlier.transaction_id));
                    assert_eq!(
                        appended.len(),
                        reversal + lapsed.len() + 1,
                        "a replacement records the reversal of what it replaces unless reversed already, the \
                         lapsed holds' expiry and the new transaction"
                    );
                    let expiries: Vec<(Stamp, Event)> = appended
                        .iter()
                        .filter(|(_, event)| matches!(event.body, EventBody::HoldExpired(_)))
                        .cloned()
                        .collect();
                    check_releases(&expiries, &lapsed);
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
            // The same checks as a first try: the reference is used, so the answer
            // is the original's.
            Command::HoldPoints(hold) => return self.hold(hold.clone()),
            Command::CaptureHold(capture) => return self.capture(capture.clone()),
            Command::ReverseTransaction(reverse) => return self.reverse(reverse.clone()),
            _ => unreachable!(),
        };
        let earlier = self.model.reference(&program, &reference).cloned().expect("a repeatable reference is used");
        let (result, appended) = self.run(&command);
        // A replacement of the other kind may have taken the reference since.
        let kind = if matches!(command, Command::AddPoints(_)) { Kind::Add } else { Kind::Use };
        check_repeat(&result, &appended, &earlier, kind);
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
            if earlier.is_some_and(|earlier| earlier.kind != item.kind()) {
                // A reference of another kind fails the item: it is no repeat of it.
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
        // A bulk use records the expiry of the holds past their time of every member
        // it names before its first item, so that the items' ids stay consecutive.
        let mut lapsed = Vec::new();
        if matches!(command, Command::BulkUsePoints(_)) {
            let mut members: Vec<&str> = Vec::new();
            for item in &items {
                if !members.contains(&item.member.as_str()) {
                    members.push(&item.member);
                    lapsed.extend(self.model.lapsed(&program, &item.member, at));
                }
            }
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
        // A bulk that applies nothing records nothing, the releases included.
        let releases = if applied == 0 { 0 } else { lapsed.len() };
        check_releases(&appended[..releases.min(appended.len())], &lapsed[..releases]);
        let appended = &appended[releases..];
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
        assert_eq!(lots, due.min(lots_max), "the sweep expires every due lot and hold past its time, up to its limit");
        assert_eq!(appended.len(), lots);
    }

    /// (f): a hold takes from what the member can spend, expiring holds past their
    /// time first; a repeat of its reference answers the hold as it stands.
    fn hold(&mut self, command: HoldPoints) {
        let at = self.at();
        let (program, member) = (command.program.clone(), command.member.clone());
        let earlier = self.model.reference(&program, &command.reference).cloned();
        let live = self.model.live(&program, &member, at);
        let lapsed = self.model.lapsed(&program, &member, at);
        let (result, appended) = self.run(&Command::HoldPoints(command.clone()));
        let expected = if program == "nope" {
            Some("PROGRAM_NOT_FOUND")
        } else if let Some(earlier) = earlier {
            if earlier.kind == Kind::Hold {
                let Ok(Outcome::Hold(view)) = result else { panic!("a repeated hold answers the hold: {result:?}") };
                assert!(appended.is_empty(), "a repeat appends nothing");
                self.check_view(&view, earlier.transaction_id, true);
                return;
            }
            Some("REFERENCE_IN_USE")
        } else if command.points < 1 || command.expires_at.is_some_and(|expires_at| expires_at <= at) {
            Some("INVALID_FIELD")
        } else if live < command.points.unsigned_abs() {
            Some("INSUFFICIENT_POINTS")
        } else {
            None
        };
        if let Some(code) = expected {
            let rejection = result.expect_err("the model expects a rejection");
            assert_eq!(rejection.reason(), code, "{rejection}");
            assert!(appended.is_empty(), "a rejected command appends nothing");
            return;
        }
        let Ok(Outcome::Hold(view)) = result else { panic!("the model expects a hold: {result:?}") };
        assert_eq!(appended.len(), lapsed.len() + 1, "a hold records the lapsed holds' expiry, then itself");
        check_releases(&appended[..lapsed.len()], &lapsed);
        let hold_id = appended[lapsed.len()].0.sequence;
        self.check_view(&view, hold_id, false);
        let expires_at = command.expires_at.unwrap_or(Timestamp::from_micros(at.micros() + HOLD_DEFAULT_MICROS));
        assert_eq!(view.hold.expires_at, expires_at, "a hold expires when asked, else 15 minutes on");
        assert_eq!(view.hold.amount, command.points.unsigned_abs());
        assert_eq!(view.hold.state, HoldState::Pending);
        assert_eq!(self.model.live(&program, &member, at), live - view.hold.amount, "held points are not spendable");
        if !command.reference.is_empty() {
            self.repeatable.push(Command::HoldPoints(command));
        }
    }

    /// (f): a capture spends the hold, whole or the part asked; only a pending hold
    /// is captured; a repeat of its reference answers the hold it captured.
    fn capture(&mut self, command: CaptureHold) {
        let program = command.program.clone();
        let earlier = self.model.reference(&program, &command.reference).cloned();
        let hold = self.pending(&command.hold_id, &command.member);
        let (result, appended) = self.run(&Command::CaptureHold(command.clone()));
        let expected = match (earlier, hold) {
            (Some(earlier), _) if earlier.kind == Kind::Capture => {
                let Ok(Outcome::Hold(view)) = result else { panic!("a repeated capture answers the hold: {result:?}") };
                assert!(appended.is_empty(), "a repeat appends nothing");
                self.check_view(&view, earlier.hold, true);
                return;
            }
            (Some(_), _) => Err("REFERENCE_IN_USE"),
            _ if command.amount.is_some_and(|amount| amount <= Decimal::ZERO) => Err("INVALID_FIELD"),
            (None, Err(code)) => Err(code),
            (None, Ok((hold_id, amount))) => match command.amount {
                None => Ok((hold_id, amount)),
                Some(part) if part <= Decimal::from(amount) => Ok((hold_id, whole(part))),
                Some(_) => Err("INVALID_FIELD"),
            },
        };
        let (hold_id, captured) = match expected {
            Err(code) => {
                let rejection = result.expect_err("the model expects a rejection");
                assert_eq!(rejection.reason(), code, "{rejection}");
                assert!(appended.is_empty(), "a rejected command appends nothing");
                return;
            }
            Ok(capture) => capture,
        };
        let Ok(Outcome::Hold(view)) = result else { panic!("the model expects a capture: {result:?}") };
        assert_eq!(appended.len(), 1, "one capture, one event");
        assert!(matches!(&appended[0].1.body, EventBody::HoldCaptured(settled) if settled.hold == hold_id));
        self.check_view(&view, hold_id, false);
        assert_eq!((view.hold.state, view.hold.captured), (HoldState::Captured, captured));
        assert_eq!(view.hold.settled_transaction_id, appended[0].0.sequence);
        if !command.reference.is_empty() {
            self.repeatable.push(Command::CaptureHold(command));
        }
    }

    /// (f): a void gives the whole hold back; only a pending hold is voided.
    fn void(&mut self, command: VoidHold) {
        let hold = self.pending(&command.hold_id, &command.member);
        let (result, appended) = self.run(&Command::VoidHold(command));
        let hold_id = match hold {
            Err(code) => {
                let rejection = result.expect_err("the model expects a rejection");
                assert_eq!(rejection.reason(), code, "{rejection}");
                assert!(appended.is_empty(), "a rejected command appends nothing");
                return;
            }
            Ok((hold_id, _)) => hold_id,
        };
        let Ok(Outcome::Hold(view)) = result else { panic!("the model expects a void: {result:?}") };
        assert_eq!(appended.len(), 1, "one void, one event");
        assert!(matches!(&appended[0].1.body, EventBody::HoldVoided(settled) if settled.hold == hold_id));
        self.check_view(&view, hold_id, false);
        assert_eq!((view.hold.state, view.hold.captured), (HoldState::Voided, 0));
    }

    /// The hold a capture or void names and its amount, if pending now; else why not.
    fn pending(&self, hold_id: &str, member: &str) -> Result<(u64, u64), &'static str> {
        let found = hold_id.parse::<u64>().ok().and_then(|id| Some((id, self.model.holds.get(&id)?)));
        let Some((id, hold)) = found.filter(|(_, hold)| hold.member == member) else { return Err("HOLD_NOT_FOUND") };
        if hold.state_at(self.at()) != HoldState::Pending {
            return Err("HOLD_NOT_PENDING");
        }
        Ok((id, hold.amount))
    }

    /// A hold as a command answers it: the model's, in its state now.
    fn check_view(&self, view: &HoldView, hold_id: u64, duplicate: bool) {
        let hold = &self.model.holds[&hold_id];
        assert_eq!((view.hold_id, view.duplicate), (hold_id, duplicate), "the hold, and whether a repeat");
        assert_eq!((&view.program, &view.member), (&hold.program, &hold.member));
        assert_eq!(view.hold.state, hold.state_at(self.at()), "a hold past its time shows expired");
        assert_eq!((view.hold.amount, view.hold.captured), (hold.amount, hold.captured));
        assert_eq!(view.hold.settled_transaction_id, hold.settled_transaction_id);
    }

    /// (g): a reversal undoes an add or a use once, by its id; an add only while
    /// all its points are in its lot.
    fn reverse(&mut self, command: ReverseTransaction) {
        let at = self.at();
        let (program, transaction_id) = (command.program.clone(), command.transaction_id);
        let earlier = self.model.reference(&program, &command.reference).cloned();
        let target = self.model.events.get(&transaction_id).filter(|event| event.program == program).cloned();
        let lapsed = target.as_ref().map_or_else(Vec::new, |event| self.model.lapsed(&program, &event.member, at));
        let expected: Result<(String, i128), (&str, Option<u64>)> = if program == "nope" {
            Err(("PROGRAM_NOT_FOUND", None))
        } else if let Some(earlier) = earlier {
            if earlier.kind == Kind::Reversal {
                let (result, appended) = self.run(&Command::ReverseTransaction(command.clone()));
                let Ok(Outcome::Reversal(reversal)) = result else {
                    panic!("a repeat answers the reversal: {result:?}")
                };
                assert!(appended.is_empty(), "a repeat appends nothing");
                let original = earlier.reversal.expect("a reversal's reference is remembered with its answer");
                assert_eq!(reversal, Reversal { duplicate: true, ..original }, "a repeat answers the original");
                return;
            }
            Err(("REFERENCE_IN_USE", None))
        } else {
            match target.as_ref().map(|event| (event, &event.body)) {
                None => Err(("TRANSACTION_NOT_FOUND", None)),
                Some((_, body)) if !matches!(body, EventBody::PointsAdded(_) | EventBody::PointsUsed(_)) => {
                    Err(("NOT_REVERSIBLE", None))
                }
                Some(_) if self.model.reversed.contains_key(&transaction_id) => Err(("ALREADY_REVERSED", None)),
                Some((event, EventBody::PointsAdded(added))) => {
                    // All of its points must be in its lot, live: a hold past its
                    // time has given back what it took (SPEC §14).
                    let lot = self.model.add_lots[&transaction_id];
                    let in_lot = self.model.member_lots(&program, &event.member).and_then(|lots| lots.get(&lot));
                    let mut left = in_lot.filter(|found| is_live(found, at)).map_or(0, |found| found.remaining);
                    let lapsed = self.model.member_holds(&program, &event.member).filter(|(_, h)| h.is_lapsed(at));
                    let back = lapsed.flat_map(|(_, hold)| hold.taken.iter()).filter(|take| take.lot == lot);
                    left += back.filter(|take| take_is_live(take, at)).map(|take| take.points).sum::<u64>();
                    if left < added.points {
                        Err(("NOT_REVERSIBLE", Some(left)))
                    } else {
                        Ok((event.member.clone(), -i128::from(added.points)))
                    }
                }
                Some((event, EventBody::PointsUsed(used))) => Ok((event.member.clone(), i128::from(used.points))),
                Some(_) => unreachable!(),
            }
        };
        let (result, appended) = self.run(&Command::ReverseTransaction(command.clone()));
        let (member, amount) = match expected {
            Err((code, left)) => {
                let rejection = result.expect_err("the model expects a rejection");
                assert_eq!(rejection.reason(), code, "{rejection}");
                if let Rejection::NotReversible { left: said, .. } = &rejection {
                    assert_eq!(said, &left.map(|left| left.to_string()), "NOT_REVERSIBLE says what is left");
                }
                assert!(appended.is_empty(), "a rejected command appends nothing");
                return;
            }
            Ok(expected) => expected,
        };
        let Ok(Outcome::Reversal(reversal)) = result else { panic!("the model expects a reversal: {result:?}") };
        let (stamp, event) = appended.last().expect("a reversal appends");
        assert!(matches!(event.body, EventBody::TransactionReversed(_)), "the reversal comes last");
        // Before it, the expiry of the member's holds past their time, whose points
        // an add's reversal may take back.
        check_releases(&appended[..appended.len() - 1], &lapsed);
        let expected = Reversal {
            transaction_id: stamp.sequence,
            reversed_transaction_id: transaction_id,
            kind: ledger_core::event::ActivityKind::Points,
            member: member.clone(),
            amount: Decimal::from_i128_with_scale(amount, 0),
            balance_after: Decimal::from(self.model.live(&program, &member, at)),
            duplicate: false,
        };
        assert_eq!(reversal, expected, "the reversal's answer");
        if !command.reference.is_empty() {
            let remembered = self.model.references.get_mut(&key(&program, &command.reference)).expect("remembered");
            remembered.reversal = Some(reversal);
            self.repeatable.push(Command::ReverseTransaction(command));
        }
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
                let holds: BTreeMap<u64, ModelHold> = member
                    .holds
                    .iter()
                    .map(|(id, hold)| {
                        let hold = ModelHold {
                            program: program_id.clone(),
                            member: member_id.clone(),
                            amount: hold.amount,
                            taken: hold.taken.clone(),
                            expires_at: hold.expires_at,
                            state: hold.state,
                            captured: hold.captured,
                            settled_transaction_id: hold.settled_transaction_id,
                        };
                        (*id, hold)
                    })
                    .collect();
                let modelled: BTreeMap<u64, ModelHold> =
                    self.model.member_holds(program_id, member_id).map(|(id, hold)| (*id, hold.clone())).collect();
                assert_eq!(holds, modelled, "{program_id}/{member_id}: holds");
                let pending: u64 =
                    modelled.values().filter(|hold| hold.state == HoldState::Pending).map(|hold| hold.amount).sum();
                let mut probes = vec![self.at(), Timestamp::from_micros(self.at().micros() + 1)];
                let lot_expiries = model.values().filter_map(|lot| lot.expires_at);
                for expires_at in lot_expiries.chain(modelled.values().map(|hold| hold.expires_at)) {
                    probes.extend([-1, 0, 1].map(|step| Timestamp::from_micros(expires_at.micros() + step)));
                }
                for at in probes {
                    let live = self.model.live(program_id, member_id, at);
                    assert_eq!(member.live_points(at), live, "{program_id}/{member_id}: live points at {at:?}");
                    let held = self.model.held(program_id, member_id, at);
                    assert_eq!(member.held_points(at), held, "{program_id}/{member_id}: held points at {at:?}");
                    assert!(live + held <= member.points + pending, "what is held is taken from the lots");
                }
                // Every point added is live, held, captured, used or expired, once.
                let at = self.at();
                let flows = self.model.flows.get(&key(program_id, member_id)).copied().unwrap_or_default();
                let unswept = self.model.unswept(program_id, member_id, at);
                let accounted = member.live_points(at)
                    + member.held_points(at)
                    + flows.captured
                    + flows.used
                    + flows.swept
                    + unswept;
                assert_eq!(accounted, flows.added, "{program_id}/{member_id}: {flows:?}, unswept {unswept}");
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
    fn kind(&self) -> Kind {
        if self.add { Kind::Add } else { Kind::Use }
    }

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

/// A command of `kind` naming a used reference: answered with the original receipt
/// when the same kind used it, refused REFERENCE_IN_USE when another kind did;
/// either way it appends nothing.
fn check_repeat(result: &Result<Outcome, Rejection>, appended: &[(Stamp, Event)], earlier: &Remembered, kind: Kind) {
    if earlier.kind != kind {
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

/// `appended` records the expiry of exactly the holds `lapsed`, in that order.
fn check_releases(appended: &[(Stamp, Event)], lapsed: &[u64]) {
    let released: Vec<u64> = appended
        .iter()
        .map(|(_, event)| match &event.body {
            EventBody::HoldExpired(settled) => settled.hold,
            other => panic!("expected a hold's expiry, got {other:?}"),
        })
        .collect();
    assert_eq!(released, lapsed, "the expiry of the member's holds past their time is recorded first");
}
