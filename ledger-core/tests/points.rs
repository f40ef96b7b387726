//! SPEC §3, rule by rule: given steps, when a command, then what it answered, the
//! events it appended (`#sequence member …`) and the members they name
//! (`lots [lot:remaining@expiry]`). Refresh the snapshots with `UPDATE_EXPECT=1`.

mod support;

use expect_test::{Expect, expect};
use ledger_core::command::{AddPoints, BulkResult, CreateMemberCard, MalformedItem, Outcome, SetMemberLevels};
use ledger_core::{Command, FieldPath, Rejection};
use support::*;

fn check(given: &[Step], when: Step, expect: Expect) {
    expect.assert_eq(&render(given, &when));
}

// Add.

#[test]
fn add_points_must_be_1_to_1_000_000() {
    check(
        &[],
        add("m1", 0),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: points: must be 1..=1000000, got 0
            m1: no events"#]],
    );
    check(
        &[],
        add("m1", -5),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: points: must be 1..=1000000, got -5
            m1: no events"#]],
    );
    check(
        &[],
        add("m1", 1),
        expect![[r#"
            tx 2: 1 points, balance 1
            #2 m1 add 1
            m1: points 1, live 1, lots [0:1]"#]],
    );
    check(
        &[],
        add("m1", 1_000_000),
        expect![[r#"
            tx 2: 1000000 points, balance 1000000
            #2 m1 add 1000000
            m1: points 1000000, live 1000000, lots [0:1000000]"#]],
    );
    check(
        &[],
        add("m1", 1_000_001),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: points: must be 1..=1000000, got 1000001
            m1: no events"#]],
    );
}

#[test]
fn add_requires_a_remark() {
    check(
        &[],
        add("m1", 10).remark(""),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: remark: is required and may not be blank
            m1: no events"#]],
    );
    check(
        &[],
        add("m1", 10).remark(" \t "),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: remark: is required and may not be blank
            m1: no events"#]],
    );
    check(
        &[],
        add("m1", 10).remark(&"r".repeat(1_025)),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: remark: must be at most 1024 bytes, got 1025
            m1: no events"#]],
    );
}

#[test]
fn add_with_a_formula_takes_floor_of_cost_times_multiplier() {
    let given = [formula("f", "1.5"), formula("hundred", "100")];
    // Any `points` given is ignored, even one out of range.
    check(
        &given,
        add("m1", 0).cost("10.99", "f"),
        expect![[r#"
            tx 4: 16 points, balance 16
            #4 m1 add 16 cost 10.99 formula f
            m1: points 16, live 16, lots [0:16]"#]],
    );
    check(
        &given,
        add("m1", 999).cost("10.99", "f"),
        expect![[r#"
            tx 4: 16 points, balance 16
            #4 m1 add 16 cost 10.99 formula f
            m1: points 16, live 16, lots [0:16]"#]],
    );
    // 0.29 × 100 is 28.999999999999996 in floats: decimals are exact.
    check(
        &given,
        add("m1", 0).cost("0.29", "hundred"),
        expect![[r#"
            tx 4: 29 points, balance 29
            #4 m1 add 29 cost 0.29 formula hundred
            m1: points 29, live 29, lots [0:29]"#]],
    );
    check(
        &given,
        add("m1", 0).cost("0.66", "f"),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: cost: cost 0.66 × multiplier 1.5 of formula "f" must give 1..=1000000 points, got 0
            m1: no events"#]],
    );
    check(
        &given,
        add("m1", 0).cost("666668", "f"),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: cost: cost 666668 × multiplier 1.5 of formula "f" must give 1..=1000000 points, got 1000002
            m1: no events"#]],
    );
    check(
        &given,
        add("m1", 0).cost("-1", "f"),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: cost: must be greater than 0, got -1
            m1: no events"#]],
    );
}

#[test]
fn add_with_an_unknown_formula_is_not_found() {
    check(
        &[formula("f", "2")],
        add("m1", 0).cost("10", "g"),
        expect![[r#"
        rejected FORMULA_NOT_FOUND NotFound: formula_id: formula "g" is not defined in program "p"
        m1: no events"#]],
    );
}

#[test]
fn cost_and_formula_come_together() {
    check(
        &[formula("f", "2")],
        add("m1", 10).cost("10", ""),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: formula_id: is required and may not be blank
            m1: no events"#]],
    );
    check(
        &[formula("f", "2")],
        add("m1", 10).cost("", "f"),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: cost: is required and may not be blank
            m1: no events"#]],
    );
}

#[test]
fn add_expiry_must_be_in_the_future() {
    check(
        &[at(100)],
        add("m1", 10).expires(100),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: expires_at: must be later than now (1970-01-01T00:00:00.000100Z), got 1970-01-01T00:00:00.000100Z
            m1: no events"#]],
    );
    check(
        &[at(100)],
        add("m1", 10).expires(101),
        expect![[r#"
        tx 2: 10 points, balance 10
        #2 m1 add 10 expires 101
        m1: points 10, live 10, lots [2:10@101]"#]],
    );
}

// Use.

#[test]
fn use_may_not_go_below_zero() {
    check(
        &[add("m1", 10)],
        spend("m1", 11),
        expect![[r#"
            rejected INSUFFICIENT_POINTS FailedPrecondition: points: balance 10 is less than 11
            m1: points 10, live 10, lots [0:10]"#]],
    );
    check(
        &[add("m1", 10)],
        spend("m1", 10),
        expect![[r#"
            tx 3: 10 points, balance 0
            #3 m1 use 10 from [0:10]
            m1: points 0, live 0, lots []"#]],
    );
    check(
        &[],
        spend("nobody", 1),
        expect![[r#"
        rejected INSUFFICIENT_POINTS FailedPrecondition: points: balance 0 is less than 1
        nobody: no events"#]],
    );
}

#[test]
fn use_points_must_be_positive_and_remark_given() {
    check(
        &[add("m1", 10)],
        spend("m1", 0),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: points: must be 1..=9223372036854775807, got 0
            m1: points 10, live 10, lots [0:10]"#]],
    );
    check(
        &[add("m1", 10)],
        spend("m1", -1),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: points: must be 1..=9223372036854775807, got -1
            m1: points 10, live 10, lots [0:10]"#]],
    );
    check(
        &[add("m1", 10)],
        spend("m1", 1).remark(" "),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: remark: is required and may not be blank
            m1: points 10, live 10, lots [0:10]"#]],
    );
}

#[test]
fn use_with_a_reward_takes_its_cost_and_needs_no_remark() {
    let given = [reward("gift", 30, None), add("m1", 100)];
    check(
        &given,
        spend("m1", 0).reward("gift").remark(""),
        expect![[r#"
            tx 4: 30 points, balance 70
            #4 m1 use 30 from [0:30] reward gift
            m1: points 70, live 70, lots [0:70]"#]],
    );
    // Points given with a reward are what the use takes.
    check(
        &given,
        spend("m1", 5).reward("gift"),
        expect![[r#"
            tx 4: 5 points, balance 95
            #4 m1 use 5 from [0:5] reward gift
            m1: points 95, live 95, lots [0:95]"#]],
    );
    check(
        &given,
        spend("m1", 0).reward("nothing"),
        expect![[r#"
            rejected REWARD_NOT_FOUND NotFound: reward_id: reward "nothing" is not defined in program "p"
            m1: points 100, live 100, lots [0:100]"#]],
    );
    check(
        &[reward("gift", 300, None), add("m1", 100)],
        spend("m1", 0).reward("gift"),
        expect![[r#"
            rejected INSUFFICIENT_POINTS FailedPrecondition: points: balance 100 is less than 300
            m1: points 100, live 100, lots [0:100]"#]],
    );
}

#[test]
fn an_expired_reward_cannot_be_used() {
    let given = [reward("gift", 30, Some(50)), add("m1", 100)];
    check(
        &[given[0].clone(), given[1].clone(), at(49)],
        spend("m1", 0).reward("gift"),
        expect![[r#"
            tx 4: 30 points, balance 70
            #4 m1 use 30 from [0:30] reward gift
            m1: points 70, live 70, lots [0:70]"#]],
    );
    check(
        &[given[0].clone(), given[1].clone(), at(50)],
        spend("m1", 0).reward("gift"),
        expect![[r#"
            rejected REWARD_EXPIRED FailedPrecondition: reward_id: reward "gift" expired at 1970-01-01T00:00:00.000050Z
            m1: points 100, live 100, lots [0:100]"#]],
    );
}

// Lots and expiry.

#[test]
fn uses_spend_soonest_expiring_lots_first_and_never_expiring_last() {
    let given = [add("m1", 10), add("m1", 10).expires(300), add("m1", 10).expires(200), add("m1", 10)];
    check(
        &given,
        spend("m1", 15),
        expect![[r#"
            tx 6: 15 points, balance 25
            #6 m1 use 15 from [4:10 3:5]
            m1: points 25, live 25, lots [3:5@300 0:20]"#]],
    );
    check(
        &given,
        spend("m1", 35),
        expect![[r#"
            tx 6: 35 points, balance 5
            #6 m1 use 35 from [4:10 3:10 0:15]
            m1: points 5, live 5, lots [0:5]"#]],
    );
}

#[test]
fn an_expired_lot_is_neither_counted_nor_spent_before_the_sweep() {
    let given = [add("m1", 10).expires(50), add("m1", 5), at(49)];
    check(
        &given,
        spend("m1", 12),
        expect![[r#"
            tx 4: 12 points, balance 3
            #4 m1 use 12 from [2:10 0:2]
            m1: points 3, live 3, lots [0:3]"#]],
    );
    let given = [add("m1", 10).expires(50), add("m1", 5), at(50)];
    check(
        &given,
        spend("m1", 6),
        expect![[r#"
            rejected INSUFFICIENT_POINTS FailedPrecondition: points: balance 5 is less than 6
            m1: points 15, live 5, lots [2:10@50 0:5]"#]],
    );
    check(
        &given,
        spend("m1", 5),
        expect![[r#"
            tx 4: 5 points, balance 0
            #4 m1 use 5 from [0:5]
            m1: points 10, live 0, lots [2:10@50]"#]],
    );
}

#[test]
fn the_sweep_records_exactly_the_expired_lots() {
    let given = [
        add("m1", 10).expires(50),
        add("m1", 20).expires(60),
        add("m1", 30),
        add("m2", 7).expires(55),
        spend("m1", 4),
        at(58),
    ];
    check(
        &given,
        expire(1_000),
        expect![[r#"
            expired 2 lots
            #7 m1 lot 2 expired: 6
            #8 m2 lot 5 expired: 7
            m1: points 50, live 50, lots [3:20@60 0:30]
            m2: points 0, live 0, lots []"#]],
    );
    check(
        &given,
        expire(1),
        expect![[r#"
            expired 1 lots
            #7 m1 lot 2 expired: 6
            m1: points 50, live 50, lots [3:20@60 0:30]"#]],
    );
    check(&given[..5], expire(1_000), expect!["expired 0 lots"]);
    // A second sweep finds nothing left to expire.
    let mut twice = given.to_vec();
    twice.push(expire(1_000));
    check(&twice, expire(1_000), expect!["expired 0 lots"]);
}

// References.

#[test]
fn a_repeated_reference_returns_the_original_receipt() {
    let given = [add("m1", 10).reference("r1"), add("m1", 5)];
    check(
        &given,
        add("m1", 10).reference("r1"),
        expect![[r#"
            tx 2: 10 points, balance 10, duplicate
            m1: points 15, live 15, lots [0:15]"#]],
    );
    // Whatever the repeat says, as long as it is of the same kind.
    check(
        &given,
        add("m2", 99).reference("r1"),
        expect![[r#"
        tx 2: 10 points, balance 10, duplicate
        m2: no events"#]],
    );
    // References are per program.
    let given = [create_program("q"), add("m1", 10).reference("r1")];
    check(
        &given,
        add("m1", 4).reference("r1").program("q"),
        expect![[r#"
            tx 4: 4 points, balance 4
            #4 m1 add 4 ref r1
            m1: points 10, live 10, lots [0:10]"#]],
    );
}

#[test]
fn a_reference_of_the_other_points_kind_is_refused_not_answered() {
    // A use reusing an add's reference was once answered with the add's receipt,
    // marked duplicate: a retrying client then believed points were taken when none
    // were. Another kind's reference is refused, as for credits and coupons.
    let given = [add("m1", 10).reference("r1"), add("m1", 5)];
    check(
        &given,
        spend("m1", 3).reference("r1"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "r1" was used by transaction 2, a points add, so it cannot name a points use
            m1: points 15, live 15, lots [0:15]"#]],
    );
    let given = [add("m1", 10), spend("m1", 4).reference("u1")];
    check(
        &given,
        add("m1", 4).reference("u1"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "u1" was used by transaction 3, a points use, so it cannot name a points add
            m1: points 6, live 6, lots [0:6]"#]],
    );
    // Bulk items go by the same rule: the item fails, it is not skipped as a duplicate.
    let given = [add("m1", 10).reference("r1")];
    check(
        &given,
        bulk_use(vec![spend("m1", 1), spend("m1", 2).reference("r1"), spend("m1", 3)]),
        expect![[r#"
            applied 1, fail_at 1 REFERENCE_IN_USE AlreadyExists: items[1].reference: reference "r1" was used by transaction 2, a points add, so it cannot name a points use, tx 3..3, balances [m1=9], duplicates []
            #3 m1 use 1 from [0:1]
            m1: points 9, live 9, lots [0:9]"#]],
    );
    let given = [add("m1", 10), spend("m1", 4).reference("u1")];
    check(
        &given,
        bulk_add(vec![add("m1", 1).reference("u1")]),
        expect![[
            r#"applied 0, fail_at 0 REFERENCE_IN_USE AlreadyExists: items[0].reference: reference "u1" was used by transaction 3, a points use, so it cannot name a points add, tx 0..0, balances [], duplicates []"#
        ]],
    );
    // With replace_duplicate an add and a use may replace each other (see below);
    // the reference then names the replacement's kind, and only that kind repeats.
    let given = [add("m1", 100), add("m1", 20).reference("r"), spend("m1", 10).reference("r").replace()];
    check(
        &given,
        add("m1", 20).reference("r"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "r" was used by transaction 4, a points use, so it cannot name a points add
            m1: points 90, live 90, lots [0:90]"#]],
    );
}

#[test]
fn a_repeat_is_a_duplicate_even_when_it_would_now_be_refused() {
    // A client retrying after a lost reply must get the original result, even once
    // the reward or the expiry it named has passed.
    let given = [reward("gift", 30, Some(50)), add("m1", 100), spend("m1", 0).reward("gift").reference("u"), at(60)];
    check(
        &given,
        spend("m1", 0).reward("gift").reference("u"),
        expect![[r#"
            tx 4: 30 points, balance 70, duplicate
            m1: points 70, live 70, lots [0:70]"#]],
    );
    let given = [add("m1", 10).expires(50).reference("a"), at(60)];
    check(
        &given,
        add("m1", 10).expires(50).reference("a"),
        expect![[r#"
        tx 2: 10 points, balance 10, duplicate
        m1: points 10, live 0, lots [2:10@50]"#]],
    );
}

#[test]
fn replace_an_add_with_an_add() {
    let given = [add("m1", 100).reference("r")];
    check(
        &given,
        add("m1", 40).reference("r").replace(),
        expect![[r#"
            tx 3: 40 points, balance 40, replaced
            #3 m1 add 40 ref r
            #4 m1 add #2 reversed: 100 from [0:100]
            m1: points 40, live 40, lots [0:40]"#]],
    );
    // The reference now names the new transaction, and a repeat returns its receipt.
    let replaced = [given[0].clone(), add("m1", 40).reference("r").replace()];
    check(
        &replaced,
        add("m1", 40).reference("r"),
        expect![[r#"
            tx 3: 40 points, balance 40, duplicate, replaced
            m1: points 40, live 40, lots [0:40]"#]],
    );
    // Replacing with an add to another member.
    check(
        &given,
        add("m2", 40).reference("r").replace(),
        expect![[r#"
            tx 3: 40 points, balance 40, replaced
            #3 m2 add 40 ref r
            #4 m1 add #2 reversed: 100 from [0:100]
            m2: points 40, live 40, lots [0:40]
            m1: points 0, live 0, lots []"#]],
    );
}

#[test]
fn replace_a_use_with_a_use() {
    let given = [add("m1", 100), spend("m1", 30).reference("r")];
    check(
        &given,
        spend("m1", 50).reference("r").replace(),
        expect![[r#"
            tx 5: 50 points, balance 50, replaced
            #4 m1 use #3 reversed: 30 to [0:30]
            #5 m1 use 50 from [0:50] ref r
            m1: points 50, live 50, lots [0:50]"#]],
    );
    // The reversal goes first, so the whole balance is there to spend again.
    check(
        &given,
        spend("m1", 100).reference("r").replace(),
        expect![[r#"
            tx 5: 100 points, balance 0, replaced
            #4 m1 use #3 reversed: 30 to [0:30]
            #5 m1 use 100 from [0:100] ref r
            m1: points 0, live 0, lots []"#]],
    );
    check(
        &given,
        spend("m1", 101).reference("r").replace(),
        expect![[r#"
            rejected INSUFFICIENT_POINTS FailedPrecondition: points: balance 100 is less than 101
            m1: points 70, live 70, lots [0:70]"#]],
    );
}

#[test]
fn replace_an_add_with_a_use_and_a_use_with_an_add() {
    let given = [add("m1", 100), add("m1", 20).reference("r")];
    check(
        &given,
        spend("m1", 10).reference("r").replace(),
        expect![[r#"
            tx 4: 10 points, balance 90, replaced
            #4 m1 use 10 from [0:10] ref r
            #5 m1 add #3 reversed: 20 from [0:20]
            m1: points 90, live 90, lots [0:90]"#]],
    );
    let given = [add("m1", 100), spend("m1", 30).reference("r")];
    check(
        &given,
        add("m1", 5).reference("r").replace(),
        expect![[r#"
            tx 4: 5 points, balance 105, replaced
            #4 m1 add 5 ref r
            #5 m1 use #3 reversed: 30 to [0:30]
            m1: points 105, live 105, lots [0:105]"#]],
    );
    // A repeat answers the balance the replacement answered, after its reversal.
    let given = [add("m1", 100), add("m1", 20).reference("r"), spend("m1", 10).reference("r").replace()];
    check(
        &given,
        spend("m1", 10).reference("r"),
        expect![[r#"
            tx 4: 10 points, balance 90, duplicate, replaced
            m1: points 90, live 90, lots [0:90]"#]],
    );
    let given = [add("m1", 100), spend("m1", 30).reference("r"), add("m1", 5).reference("r").replace()];
    check(
        &given,
        add("m1", 5).reference("r"),
        expect![[r#"
            tx 4: 5 points, balance 105, duplicate, replaced
            m1: points 105, live 105, lots [0:105]"#]],
    );
}

#[test]
fn a_replaced_add_leaves_the_qualifying_amount() {
    // SPEC §2 makes the qualifying amount net of cancellations: replacing an add of
    // 10 by one of 5 leaves 5, even though the lot of 10 expired and nothing of it
    // was taken back.
    let mut store = Store::new();
    let steps =
        [add("m1", 10).expires(50).reference("r"), at(60), expire(1_000), add("m1", 5).reference("r").replace()];
    for step in &steps {
        store.step(step).expect("each step is accepted");
    }
    let member = store.state.member(PROGRAM, "m1").expect("m1 has events");
    assert_eq!((member.points, member.qualifying_amount), (5, 5));
}

#[test]
fn a_replacement_that_would_go_below_zero_changes_nothing() {
    // 10 added, 8 spent: replacing the add of 10 by 5 leaves 2 - 10 + 5 = -3.
    let given = [add("m1", 10).reference("r"), spend("m1", 8)];
    check(
        &given,
        add("m1", 5).reference("r").replace(),
        expect![[r#"
            rejected INSUFFICIENT_POINTS FailedPrecondition: replace_duplicate: replacing transaction 2 would leave member "m1" 3 points below zero; nothing was changed
            m1: points 2, live 2, lots [0:2]"#]],
    );
    check(
        &given,
        add("m1", 8).reference("r").replace(),
        expect![[r#"
            tx 4: 8 points, balance 0, replaced
            #4 m1 add 8 ref r
            #5 m1 add #2 reversed: 10 from [0:10]
            m1: points 0, live 0, lots []"#]],
    );
    check(
        &given,
        spend("m1", 1).reference("r").replace(),
        expect![[r#"
            rejected INSUFFICIENT_POINTS FailedPrecondition: replace_duplicate: replacing transaction 2 would leave member "m1" 9 points below zero; nothing was changed
            m1: points 2, live 2, lots [0:2]"#]],
    );
}

#[test]
fn replacing_a_partly_expired_add_takes_back_only_what_is_left() {
    let given = [add("m1", 10).expires(50).reference("r"), add("m1", 20), spend("m1", 4), at(60), expire(1_000)];
    check(
        &given,
        add("m1", 5).reference("r").replace(),
        expect![[r#"
            tx 6: 5 points, balance 21, replaced
            #6 m1 add 5 ref r
            #7 m1 add #2 reversed: 4 from [0:4]
            m1: points 21, live 21, lots [0:21]"#]],
    );
}

// Bulk.

#[test]
fn bulk_add_stops_at_the_first_failure_and_keeps_what_came_before() {
    let items = vec![add("m1", 10), add("m2", 5), add("m1", 3), add("m3", 0), add("m4", 7)];
    check(
        &[],
        bulk_add(items),
        expect![[r#"
            applied 3, fail_at 3 INVALID_FIELD InvalidArgument: items[3].points: must be 1..=1000000, got 0, tx 2..4, balances [m1=13 m2=5], duplicates []
            #2 m1 add 10
            #3 m2 add 5
            #4 m1 add 3
            m1: points 13, live 13, lots [0:13]
            m2: points 5, live 5, lots [0:5]"#]],
    );
}

#[test]
fn bulk_use_stops_at_the_first_short_member() {
    let given = [add("m1", 100), add("m2", 5)];
    check(
        &given,
        bulk_use(vec![spend("m1", 30), spend("m2", 10), spend("m1", 10)]),
        expect![[r#"
            applied 1, fail_at 1 INSUFFICIENT_POINTS FailedPrecondition: items[1].points: balance 5 is less than 10, tx 4..4, balances [m1=70], duplicates []
            #4 m1 use 30 from [0:30]
            m1: points 70, live 70, lots [0:70]"#]],
    );
    // Each item sees what the items before it left.
    check(
        &given,
        bulk_use(vec![spend("m1", 60), spend("m1", 50)]),
        expect![[r#"
            applied 1, fail_at 1 INSUFFICIENT_POINTS FailedPrecondition: items[1].points: balance 40 is less than 50, tx 4..4, balances [m1=40], duplicates []
            #4 m1 use 60 from [0:60]
            m1: points 40, live 40, lots [0:40]"#]],
    );
}

#[test]
fn bulk_failures_name_the_item_field() {
    let items = vec![add("m1", 1), add("m1", 1), add("m1", 1), add("m1", 1).remark("")];
    check(
        &[],
        bulk_add(items),
        expect![[r#"
            applied 3, fail_at 3 INVALID_FIELD InvalidArgument: items[3].remark: is required and may not be blank, tx 2..4, balances [m1=3], duplicates []
            #2 m1 add 1
            #3 m1 add 1
            #4 m1 add 1
            m1: points 3, live 3, lots [0:3]"#]],
    );
    check(
        &[],
        bulk_add(vec![add("m1", 1).cost("10", "f")]),
        expect![
            "applied 0, fail_at 0 INVALID_FIELD InvalidArgument: items[0].cost: cost, formula_id and replace_duplicate are not bulk fields, tx 0..0, balances [], duplicates []"
        ],
    );
    check(
        &[add("m1", 5)],
        bulk_use(vec![spend("m1", 1).replace()]),
        expect![
            "applied 0, fail_at 0 INVALID_FIELD InvalidArgument: items[0].replace_duplicate: replace_duplicate is not a bulk field, tx 0..0, balances [], duplicates []"
        ],
    );
    check(
        &[],
        bulk_add(vec![add(&"m".repeat(129), 1)]),
        expect![
            "applied 0, fail_at 0 INVALID_FIELD InvalidArgument: items[0].member_id: must be at most 128 bytes, got 129, tx 0..0, balances [], duplicates []"
        ],
    );
}

#[test]
fn bulk_items_belong_to_the_bulk_program() {
    // An item naming another program, or none, would write outside the program the
    // caller was authorized for, or make an event no state can apply.
    let given = [create_program("q")];
    check(
        &given,
        bulk_add(vec![add("m1", 1), add("m1", 1).program("q")]),
        expect![[r#"
            applied 1, fail_at 1 INVALID_FIELD InvalidArgument: items[1].program_id: must be the bulk's program "p", got "q", tx 3..3, balances [m1=1], duplicates []
            #3 m1 add 1
            m1: points 1, live 1, lots [0:1]"#]],
    );
    check(
        &given,
        bulk_use(vec![spend("m1", 1).program("")]),
        expect![[
            r#"applied 0, fail_at 0 INVALID_FIELD InvalidArgument: items[0].program_id: must be the bulk's program "p", got "", tx 0..0, balances [], duplicates []"#
        ]],
    );
}

#[test]
fn bulk_skips_used_references_as_duplicates() {
    let given = [add("m1", 10).reference("old")];
    let items = vec![
        add("m1", 1).reference("a"),
        add("m2", 2).reference("old"),
        add("m2", 3).reference("b"),
        add("m2", 4).reference("a"),
        add("m1", 5),
    ];
    check(
        &given,
        bulk_add(items),
        expect![[r#"
            applied 3, tx 3..5, balances [m1=16 m2=3], duplicates [1, 3]
            #3 m1 add 1 ref a
            #4 m2 add 3 ref b
            #5 m1 add 5
            m1: points 16, live 16, lots [0:16]
            m2: points 3, live 3, lots [0:3]"#]],
    );
    let items = vec![spend("m1", 3).reference("u"), spend("m1", 3).reference("u"), spend("m1", 3).reference("old")];
    check(
        &given,
        bulk_use(items),
        expect![[r#"
            applied 1, fail_at 2 REFERENCE_IN_USE AlreadyExists: items[2].reference: reference "old" was used by transaction 2, a points add, so it cannot name a points use, tx 3..3, balances [m1=7], duplicates [1]
            #3 m1 use 3 from [0:3] ref u
            m1: points 7, live 7, lots [0:7]"#]],
    );
    // A bulk of only duplicates applies nothing and touches no one.
    check(
        &given,
        bulk_add(vec![add("m1", 10).reference("old")]),
        expect![[r#"
        applied 0, tx 0..0, balances [], duplicates [0]"#]],
    );
}

#[test]
fn bulk_use_with_rewards_and_expired_lots() {
    let given = [reward("gift", 30, None), add("m1", 50).expires(100), add("m1", 40), at(100)];
    check(
        &given,
        bulk_use(vec![spend("m1", 0).reward("gift").remark(""), spend("m1", 20)]),
        expect![[r#"
            applied 1, fail_at 1 INSUFFICIENT_POINTS FailedPrecondition: items[1].points: balance 10 is less than 20, tx 5..5, balances [m1=10], duplicates []
            #5 m1 use 30 from [0:30] reward gift
            m1: points 60, live 10, lots [3:50@100 0:10]"#]],
    );
}

#[test]
fn an_atomic_bulk_applies_nothing_when_an_item_fails() {
    let given = [add("m1", 100), add("m2", 5)];
    check(
        &given,
        bulk_use(vec![spend("m1", 30), spend("m2", 10)]).atomic(),
        expect![[
            "applied 0, fail_at 1 INSUFFICIENT_POINTS FailedPrecondition: items[1].points: balance 5 is less than 10, tx 0..0, balances [], duplicates []"
        ]],
    );
    check(
        &given,
        bulk_add(vec![add("m1", 1), add("m2", 1), add("m3", -1)]).atomic(),
        expect![
            "applied 0, fail_at 2 INVALID_FIELD InvalidArgument: items[2].points: must be 1..=1000000, got -1, tx 0..0, balances [], duplicates []"
        ],
    );
    check(
        &given,
        bulk_use(vec![spend("m1", 30), spend("m2", 5)]).atomic(),
        expect![[r#"
            applied 2, tx 4..5, balances [m1=70 m2=0], duplicates []
            #4 m1 use 30 from [0:30]
            #5 m2 use 5 from [0:5]
            m1: points 70, live 70, lots [0:70]
            m2: points 0, live 0, lots []"#]],
    );
}

#[test]
fn an_empty_or_oversized_bulk_is_rejected_whole() {
    check(&[], bulk_add(vec![]), expect!["rejected INVALID_FIELD InvalidArgument: items: must be 1..=1000, got 0"]);
    check(&[], bulk_use(vec![]), expect!["rejected INVALID_FIELD InvalidArgument: items: must be 1..=1000, got 0"]);
    check(
        &[],
        bulk_add((0..1_001).map(|_| add("m1", 1)).collect()),
        expect!["rejected INVALID_FIELD InvalidArgument: items: must be 1..=1000, got 1001"],
    );
    check(
        &[add("m1", 5_000)],
        bulk_use((0..1_001).map(|_| spend("m1", 1)).collect()),
        expect!["rejected INVALID_FIELD InvalidArgument: items: must be 1..=1000, got 1001"],
    );
}

#[test]
fn a_full_bulk_of_1000_items_applies_with_consecutive_transaction_ids() {
    let mut store = Store::new();
    let items = (0..1_000).map(|index| add(&format!("m{}", index % 7), 1)).collect();
    let outcome = store.step(&bulk_add(items)).expect("a full bulk is accepted");
    let Outcome::Bulk(result) = outcome else { panic!("a bulk answers a bulk result") };
    let BulkResult { applied_count, fail_at, first_transaction_id, last_transaction_id, balances, .. } = result;
    assert_eq!((applied_count, fail_at), (1_000, None));
    assert_eq!((first_transaction_id, last_transaction_id), (2, 1_001));
    assert_eq!(balances.len(), 7);
    assert_eq!(balances[0], ("m0".to_owned(), 143));
    assert_eq!(store.log.len(), 1_001);
    check_invariants(&store);
}

// Programs and ids.

#[test]
fn a_command_naming_an_unknown_program_is_not_found() {
    check(
        &[],
        add("m1", 1).program("nope"),
        expect![[r#"
        rejected PROGRAM_NOT_FOUND NotFound: program_id: program "nope" does not exist
        m1: no events"#]],
    );
    check(
        &[],
        spend("m1", 1).program("nope"),
        expect![[r#"
        rejected PROGRAM_NOT_FOUND NotFound: program_id: program "nope" does not exist
        m1: no events"#]],
    );
    check(
        &[],
        bulk_add(vec![add("m1", 1)]).program("nope"),
        expect![[r#"
        rejected PROGRAM_NOT_FOUND NotFound: program_id: program "nope" does not exist"#]],
    );
    check(
        &[],
        formula("f", "2").program("nope"),
        expect![[r#"
        rejected PROGRAM_NOT_FOUND NotFound: program_id: program "nope" does not exist"#]],
    );
    check(
        &[],
        reward("gift", 1, None).program("nope"),
        expect![[r#"
        rejected PROGRAM_NOT_FOUND NotFound: program_id: program "nope" does not exist"#]],
    );
}

#[test]
fn a_program_is_created_once() {
    check(
        &[],
        create_program("q"),
        expect![[r#"
        program "q" "Program q" created at 0
        #2 ProgramCreated"#]],
    );
    check(
        &[],
        create_program(PROGRAM),
        expect![[r#"
        rejected PROGRAM_EXISTS AlreadyExists: program_id: program "p" already exists"#]],
    );
}

#[test]
fn ids_are_required_and_at_most_128_bytes() {
    let long = "x".repeat(129);
    let longest = "x".repeat(128);
    check(
        &[],
        add(&longest, 1),
        expect![[r#"
            tx 2: 1 points, balance 1
            #2 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx add 1
            xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: points 1, live 1, lots [0:1]"#]],
    );
    check(
        &[],
        add(&long, 1),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: member_id: must be at most 128 bytes, got 129
            xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: no events"#]],
    );
    check(
        &[],
        add("", 1),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: member_id: is required and may not be blank
            : no events"#]],
    );
    check(
        &[],
        add("m1", 1).program(&long),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: program_id: must be at most 128 bytes, got 129
            m1: no events"#]],
    );
    check(
        &[],
        add("m1", 1).reference(&long),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: reference: must be at most 128 bytes, got 129
            m1: no events"#]],
    );
    check(
        &[],
        spend("m1", 1).reward(&long),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: reward_id: must be at most 128 bytes, got 129
            m1: no events"#]],
    );
    check(
        &[],
        add("m1", 1).cost("1", &long),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: formula_id: must be at most 128 bytes, got 129
            m1: no events"#]],
    );
    check(
        &[],
        create_program(&long),
        expect!["rejected INVALID_FIELD InvalidArgument: program_id: must be at most 128 bytes, got 129"],
    );
    check(
        &[],
        formula(&long, "2"),
        expect!["rejected INVALID_FIELD InvalidArgument: formula_id: must be at most 128 bytes, got 129"],
    );
    check(
        &[],
        add("m\u{7}", 1),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: member_id: may not contain control characters
            m\u{7}: no events"#]],
    );
}

// Reasons (SPEC §13): every problem of a request at once; a bulk's unreadable item.

fn add_with(member: &str, points: i64, remark: &str, reference: &str) -> Step {
    Step::Run(Command::AddPoints(AddPoints {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        points,
        remark: remark.to_owned(),
        reference: reference.to_owned(),
        ..AddPoints::default()
    }))
}

#[test]
fn an_add_names_every_bad_field_at_once() {
    check(
        &[],
        add_with(&"m".repeat(200), 0, " ", ""),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: 3 problems: member_id: must be at most 128 bytes, got 200; remark: is required and may not be blank; points: must be 1..=1000000, got 0
            mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm: no events"#]],
    );
}

#[test]
fn a_repeated_reference_is_answered_before_its_amount_is_checked() {
    check(
        &[add_with("m1", 5, "first", "r1")],
        add_with("m1", 0, "again", "r1"),
        expect![[r#"
            tx 2: 5 points, balance 5, duplicate
            m1: points 5, live 5, lots [0:5]"#]],
    );
    check(
        &[add_with("m1", 5, "first", "r1")],
        add_with("m1", 0, "", "r1"),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: 2 problems: remark: is required and may not be blank; points: must be 1..=1000000, got 0
            m1: points 5, live 5, lots [0:5]"#]],
    );
}

#[test]
fn a_bulk_stops_at_an_item_the_edge_could_not_read() {
    let items = vec![add("m1", 1), add("m2", 2), add("m3", 3), add("m4", 4)];
    let Step::Run(Command::BulkAddPoints(mut bulk)) = bulk_add(items) else { unreachable!("a bulk add") };
    bulk.malformed = Some(MalformedItem {
        index: 2,
        rejection: Rejection::Invalid { field: FieldPath::new("occurred_at"), rule: "out of range".to_owned() },
    });
    check(
        &[],
        Step::Run(Command::BulkAddPoints(bulk.clone())),
        expect![[r#"
        applied 2, fail_at 2 INVALID_FIELD InvalidArgument: items[2].occurred_at: out of range, tx 2..3, balances [m1=1 m2=2], duplicates []
        #2 m1 add 1
        #3 m2 add 2
        m1: points 1, live 1, lots [0:1]
        m2: points 2, live 2, lots [0:2]"#]],
    );
    bulk.atomic = true;
    check(
        &[],
        Step::Run(Command::BulkAddPoints(bulk)),
        expect![
            "applied 0, fail_at 2 INVALID_FIELD InvalidArgument: items[2].occurred_at: out of range, tx 0..0, balances [], duplicates []"
        ],
    );
}

#[test]
fn a_bulk_item_out_of_range_fails_with_the_same_reason_as_a_single_add() {
    check(
        &[],
        bulk_add(vec![add("m1", 1), add("m2", 2), add("m3", 0)]),
        expect![[r#"
        applied 2, fail_at 2 INVALID_FIELD InvalidArgument: items[2].points: must be 1..=1000000, got 0, tx 2..3, balances [m1=1 m2=2], duplicates []
        #2 m1 add 1
        #3 m2 add 2
        m1: points 1, live 1, lots [0:1]
        m2: points 2, live 2, lots [0:2]"#]],
    );
}

#[test]
fn a_card_and_a_batch_of_levels_name_every_bad_field() {
    let card = CreateMemberCard {
        program: PROGRAM.to_owned(),
        name: " ".to_owned(),
        benefit: String::new(),
        lowest_amount: -1,
        image_url: "u".repeat(1_025),
    };
    check(
        &[],
        Step::Run(Command::CreateMemberCard(card)),
        expect![
            "rejected INVALID_FIELD InvalidArgument: 3 problems: name: is required and may not be blank; image_url: must be at most 1024 bytes, got 1025; lowest_amount: must be 0..=9223372036854775807, got -1"
        ],
    );
    let levels = SetMemberLevels {
        program: PROGRAM.to_owned(),
        levels: vec![(String::new(), 1), ("ok".to_owned(), 0), ("m\u{7}".to_owned(), 0)],
    };
    check(
        &[],
        Step::Run(Command::SetMemberLevels(levels)),
        expect![
            "rejected INVALID_FIELD InvalidArgument: 2 problems: levels[0].member_id: is required and may not be blank; levels[2].member_id: may not contain control characters"
        ],
    );
}
