//! Holds (SPEC §14, `holds.rs`), rule by rule: given events, when a hold, a
//! capture, a void or the sweep, then the answer, the events and the member.
//! Refresh the snapshots with `UPDATE_EXPECT=1`.

mod support;

use expect_test::{Expect, expect};
use ledger_core::command::{CaptureHold, CreditsChangeCommand, DefineCredit, HoldCredits, HoldPoints, VoidHold};
use ledger_core::{Command, Timestamp};
use support::*;

fn check(given: &[Step], when: Step, expect: Expect) {
    expect.assert_eq(&render(given, &when));
}

const MINUTE: i64 = 60_000_000;
const DAY: i64 = 24 * 60 * MINUTE;

fn hold(member: &str, points: i64) -> HoldPoints {
    HoldPoints {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        points,
        remark: "ticket".to_owned(),
        ..HoldPoints::default()
    }
}

fn hold_points(member: &str, points: i64) -> Step {
    Step::Run(Command::HoldPoints(hold(member, points)))
}

fn hold_with(command: HoldPoints) -> Step {
    Step::Run(Command::HoldPoints(command))
}

/// A capture of hold `hold_id` of `member` (the store fills the member in from
/// the hold's event); `amount` empty captures all.
fn capture(member: &str, hold_id: &str, amount: &str, reference: &str) -> Step {
    Step::Run(Command::CaptureHold(CaptureHold {
        program: PROGRAM.to_owned(),
        hold_id: hold_id.to_owned(),
        member: member.to_owned(),
        amount: (!amount.is_empty()).then(|| decimal(amount)),
        remark: String::new(),
        reference: reference.to_owned(),
    }))
}

fn void(member: &str, hold_id: &str) -> Step {
    Step::Run(Command::VoidHold(VoidHold {
        program: PROGRAM.to_owned(),
        hold_id: hold_id.to_owned(),
        member: member.to_owned(),
        remark: "cancelled".to_owned(),
    }))
}

fn define_credit() -> Step {
    Step::Run(Command::DefineCredit(DefineCredit {
        program: PROGRAM.to_owned(),
        credit_id: "c".to_owned(),
        name: "Cash".to_owned(),
        unit: "TWD".to_owned(),
    }))
}

fn add_credits(member: &str, amount: &str) -> Step {
    Step::Run(Command::AddCredits(CreditsChangeCommand {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        credit_id: "c".to_owned(),
        amount: decimal(amount),
        remark: "top up".to_owned(),
        reference: String::new(),
    }))
}

fn use_credits(member: &str, amount: &str) -> Step {
    Step::Run(Command::UseCredits(CreditsChangeCommand {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        credit_id: "c".to_owned(),
        amount: decimal(amount),
        remark: "spent".to_owned(),
        reference: String::new(),
    }))
}

fn hold_credits(member: &str, amount: &str, reference: &str) -> Step {
    Step::Run(Command::HoldCredits(HoldCredits {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        credit_id: "c".to_owned(),
        amount: decimal(amount),
        remark: "remote QR".to_owned(),
        reference: reference.to_owned(),
        expires_at: None,
    }))
}

// A hold takes from the available balance as a use would.

#[test]
fn a_hold_takes_soonest_expiring_lots_first_and_expires_in_15_minutes_by_default() {
    let given = [add("m1", 50), add("m1", 30).expires(DAY), add("m1", 20).expires(2 * DAY)];
    check(
        &given,
        hold_points("m1", 40),
        expect![[r#"
            hold 5 of m1: PENDING 40, captured 0, expires 900000000, settled by 0
            #5 m1 hold 40 from [3:30 4:10] until 900000000
            m1: points 60, live 60, lots [4:10@172800000000 0:50], held 40, holds [5:PENDING 40]"#]],
    );
}

#[test]
fn a_hold_of_more_than_is_available_is_insufficient_points() {
    let given = [add("m1", 50), hold_points("m1", 30)];
    check(
        &given,
        hold_points("m1", 30),
        expect!["rejected INSUFFICIENT_POINTS FailedPrecondition: points: balance 20 is less than 30"],
    );
}

#[test]
fn a_hold_may_expire_at_most_30_days_ahead_and_never_in_the_past() {
    let given = [add("m1", 50), at(1_000)];
    let mut late = hold("m1", 10);
    late.expires_at = Some(Timestamp::from_micros(1_000 + 30 * DAY + 1));
    check(
        &given,
        hold_with(late),
        expect![
            "rejected INVALID_FIELD InvalidArgument: expires_at: must be later than now (1970-01-01T00:00:00.001Z) and at most 30 days ahead (1970-01-31T00:00:00.001Z), got 1970-01-31T00:00:00.001001Z"
        ],
    );
    let mut past = hold("m1", 10);
    past.expires_at = Some(Timestamp::from_micros(1_000));
    check(
        &given,
        hold_with(past),
        expect![
            "rejected INVALID_FIELD InvalidArgument: expires_at: must be later than now (1970-01-01T00:00:00.001Z) and at most 30 days ahead (1970-01-31T00:00:00.001Z), got 1970-01-01T00:00:00.001Z"
        ],
    );
    let mut last = hold("m1", 10);
    last.expires_at = Some(Timestamp::from_micros(1_000 + 30 * DAY));
    check(
        &given,
        hold_with(last),
        expect![[r#"
        hold 3 of m1: PENDING 10, captured 0, expires 2592000001000, settled by 0
        #3 m1 hold 10 from [0:10] until 2592000001000
        m1: points 40, live 40, lots [0:40], held 10, holds [3:PENDING 10]"#]],
    );
}

#[test]
fn every_problem_of_a_hold_is_named_at_once() {
    check(
        &[],
        hold_with(HoldPoints { program: PROGRAM.to_owned(), ..HoldPoints::default() }),
        expect![
            "rejected INVALID_FIELD InvalidArgument: 3 problems: member_id: is required and may not be blank; remark: is required and may not be blank; points: must be 1..=9223372036854775807, got 0"
        ],
    );
}

// A capture spends what is held, whole or in part, and never fails for balance.

#[test]
fn a_whole_capture_spends_the_hold_and_leaves_the_qualifying_amount() {
    let given = [add("m1", 50), hold_points("m1", 40), spend("m1", 10)];
    check(
        &given,
        capture("m1", "3", "", ""),
        expect![[r#"
        hold 3 of m1: CAPTURED 40, captured 40, expires 900000000, settled by 5
        #5 m1 HoldCaptured #3: captured 40, released 0 to []
        m1: points 0, live 0, lots [], held 0, holds [3:CAPTURED 40 captured 40]"#]],
    );
}

#[test]
fn a_partial_capture_gives_the_rest_back_to_the_lots_it_came_from() {
    let given = [add("m1", 50), add("m1", 30).expires(DAY), hold_points("m1", 60)];
    check(
        &given,
        capture("m1", "4", "25", ""),
        expect![[r#"
        hold 4 of m1: CAPTURED 60, captured 25, expires 900000000, settled by 5
        #5 m1 HoldCaptured #4: captured 25, released 35 to [3:5 0:30]
        m1: points 55, live 55, lots [3:5@86400000000 0:50], held 0, holds [4:CAPTURED 60 captured 25]"#]],
    );
}

#[test]
fn a_capture_of_more_than_held_or_of_part_of_a_point_is_invalid() {
    let given = [add("m1", 50), hold_points("m1", 40)];
    check(
        &given,
        capture("m1", "3", "41", ""),
        expect![
            "rejected INVALID_FIELD InvalidArgument: amount: must be more than 0 and at most the 40 held (whole points), got 41"
        ],
    );
    check(
        &given,
        capture("m1", "3", "1.5", ""),
        expect![
            "rejected INVALID_FIELD InvalidArgument: amount: must be more than 0 and at most the 40 held (whole points), got 1.5"
        ],
    );
}

// A void and an expiry give everything back, with each lot's expiry.

#[test]
fn a_void_gives_the_points_back_to_their_lots() {
    let given = [add("m1", 50), add("m1", 30).expires(DAY), hold_points("m1", 60)];
    check(
        &given,
        void("m1", "4"),
        expect![[r#"
        hold 4 of m1: VOIDED 60, captured 0, expires 900000000, settled by 5
        #5 m1 HoldVoided #4: captured 0, released 60 to [3:30 0:30]
        m1: points 80, live 80, lots [3:30@86400000000 0:50], held 0, holds [4:VOIDED 60]"#]],
    );
}

#[test]
fn a_lot_that_expired_while_held_comes_back_expired_and_the_sweep_takes_it() {
    let mut long = hold("m1", 60);
    long.expires_at = Some(Timestamp::from_micros(2 * DAY));
    let given = [add("m1", 50), add("m1", 30).expires(DAY), hold_with(long), at(DAY + 1), void("m1", "4")];
    check(
        &given,
        expire(10),
        expect![[r#"
        expired 1 lots
        #6 m1 lot 3 expired: 30
        m1: points 50, live 50, lots [0:50], held 0, holds [4:VOIDED 60]"#]],
    );
}

#[test]
fn a_sweep_expires_all_a_lot_holds_when_a_hold_it_expires_first_gave_some_back() {
    // Given a hold of 10 of a lot's 30 that expires before the lot: by the time
    // both are due, one sweep gives the 10 back and then expires the lot whole,
    // leaving no expired point behind.
    let mut short = hold("m1", 10);
    short.expires_at = Some(Timestamp::from_micros(MINUTE));
    let given = [add("m1", 30).expires(DAY), hold_with(short), at(DAY)];
    check(
        &given,
        expire(10),
        expect![[r#"
            expired 2 lots
            #4 m1 HoldExpired #3: captured 0, released 10 to [2:10]
            #5 m1 lot 2 expired: 30
            m1: points 0, live 0, lots [], held 0, holds [3:EXPIRED 10]"#]],
    );
}

#[test]
fn a_hold_past_its_time_is_not_held_for_reads_before_the_sweep() {
    let given = [add("m1", 50), hold_points("m1", 40), at(15 * MINUTE)];
    check(
        &given,
        expire(10),
        expect![[r#"
        expired 1 lots
        #4 m1 HoldExpired #3: captured 0, released 40 to [0:40]
        m1: points 50, live 50, lots [0:50], held 0, holds [3:EXPIRED 40]"#]],
    );
}

#[test]
fn a_use_may_spend_what_a_hold_past_its_time_gave_back() {
    let given = [add("m1", 50), hold_points("m1", 40), at(15 * MINUTE)];
    check(
        &given,
        spend("m1", 50),
        expect![[r#"
        tx 5: 50 points, balance 0
        #4 m1 HoldExpired #3: captured 0, released 40 to [0:40]
        #5 m1 use 50 from [0:50]
        m1: points 0, live 0, lots [], held 0, holds [3:EXPIRED 40]"#]],
    );
}

// Only a pending hold is captured or voided; an unknown hold is not found.

#[test]
fn a_settled_or_lapsed_hold_is_not_pending() {
    let given = [add("m1", 50), hold_points("m1", 40), void("m1", "3")];
    check(
        &given,
        capture("m1", "3", "", ""),
        expect![
            "rejected HOLD_NOT_PENDING FailedPrecondition: hold_id: hold 3 is VOIDED, not pending: only a pending hold is captured or voided"
        ],
    );
    check(
        &given,
        void("m1", "3"),
        expect![
            "rejected HOLD_NOT_PENDING FailedPrecondition: hold_id: hold 3 is VOIDED, not pending: only a pending hold is captured or voided"
        ],
    );
    let lapsed = [add("m1", 50), hold_points("m1", 40), at(15 * MINUTE)];
    check(
        &lapsed,
        capture("m1", "3", "", ""),
        expect![
            "rejected HOLD_NOT_PENDING FailedPrecondition: hold_id: hold 3 is EXPIRED, not pending: only a pending hold is captured or voided"
        ],
    );
}

#[test]
fn an_unknown_hold_is_not_found() {
    let given = [add("m1", 50), hold_points("m1", 40)];
    // Transaction 2 is an add, "x" no number, and an empty member no hold's event.
    check(
        &given,
        capture("m1", "2", "", ""),
        expect![[r#"rejected HOLD_NOT_FOUND NotFound: hold_id: hold "2" does not exist in program "p""#]],
    );
    check(
        &given,
        void("m1", "x"),
        expect![[r#"rejected HOLD_NOT_FOUND NotFound: hold_id: hold "x" does not exist in program "p""#]],
    );
    check(
        &given,
        void("", "3"),
        expect![[r#"rejected HOLD_NOT_FOUND NotFound: hold_id: hold "3" does not exist in program "p""#]],
    );
}

// References make a hold and a capture apply once.

#[test]
fn a_repeated_hold_or_capture_answers_the_hold_as_it_stands() {
    let mut first = hold("m1", 40);
    first.reference = "h".to_owned();
    let given = [add("m1", 50), hold_with(first.clone()), capture("m1", "3", "30", "c")];
    check(
        &given,
        hold_with(first),
        expect!["hold 3 of m1: CAPTURED 40, captured 30, expires 900000000, settled by 4, duplicate"],
    );
    check(
        &given,
        capture("m1", "3", "", "c"),
        expect!["hold 3 of m1: CAPTURED 40, captured 30, expires 900000000, settled by 4, duplicate"],
    );
    // Another kind's reference is refused.
    check(
        &given,
        capture("m1", "3", "", "h"),
        expect![[
            r#"rejected REFERENCE_IN_USE AlreadyExists: reference: reference "h" was used by transaction 3, a hold, so it cannot name a hold capture"#
        ]],
    );
}

// Credits.

#[test]
fn a_credits_hold_takes_from_the_wallet_and_a_partial_capture_gives_the_rest_back() {
    let given = [define_credit(), add_credits("m1", "10.5"), hold_credits("m1", "7.25", "")];
    check(
        &given,
        capture("m1", "4", "5.1", ""),
        expect![[r#"
        hold 4 of m1: CAPTURED 7.25 c, captured 5.1, expires 900000000, settled by 5
        #5 m1 HoldCaptured #4: captured 5.1, released 2.15 to []
        m1: points 0, live 0, lots [], held 0, holds [4:CAPTURED 7.25 captured 5.1], credits c 5.4 held 0"#]],
    );
}

#[test]
fn a_credits_hold_of_more_than_the_wallet_is_insufficient_credits() {
    let given = [define_credit(), add_credits("m1", "10"), hold_credits("m1", "7", "")];
    check(
        &given,
        use_credits("m1", "4"),
        expect!["rejected INSUFFICIENT_CREDITS FailedPrecondition: amount: balance 3 is less than 4"],
    );
    check(
        &given,
        hold_credits("m1", "3.0001", ""),
        expect!["rejected INSUFFICIENT_CREDITS FailedPrecondition: amount: balance 3 is less than 3.0001"],
    );
}

#[test]
fn a_credits_hold_past_its_time_is_swept_back_to_the_wallet() {
    let given = [define_credit(), add_credits("m1", "10"), hold_credits("m1", "7", ""), at(15 * MINUTE)];
    check(
        &given,
        expire(10),
        expect![[r#"
        expired 1 lots
        #5 m1 HoldExpired #4: captured 0, released 7 to []
        m1: points 0, live 0, lots [], held 0, holds [4:EXPIRED 7], credits c 10 held 0"#]],
    );
}

#[test]
fn a_capture_counts_as_a_use_and_leaves_the_qualifying_amount() {
    let mut store = Store::new();
    for step in [add("m1", 50), hold_points("m1", 40), capture("m1", "3", "", "")] {
        store.step(&step).expect("each step applies");
    }
    let member = store.state.member(PROGRAM, "m1").expect("m1 has events");
    assert_eq!(member.qualifying_amount, 50, "spending a hold never lowers the qualifying amount");
    assert_eq!(member.live_points(store.at), 10);
    check_invariants(&store);
}

#[test]
fn a_bulk_use_item_spends_what_a_hold_past_its_time_gives_back() {
    // A read shows m1 with 50 once the hold's time came; a bulk item may spend
    // them. The expiry is recorded before the first item, so the items' ids stay
    // consecutive.
    let given = [add("m1", 50), add("m2", 50), hold_points("m1", 40), at(15 * MINUTE)];
    check(
        &given,
        bulk_use(vec![spend("m2", 5), spend("m1", 50)]),
        expect![[r#"
            applied 2, tx 6..7, balances [m2=45 m1=0], duplicates []
            #5 m1 HoldExpired #4: captured 0, released 40 to [0:40]
            #6 m2 use 5 from [0:5]
            #7 m1 use 50 from [0:50]
            m1: points 0, live 0, lots [], held 0, holds [4:EXPIRED 40]
            m2: points 45, live 45, lots [0:45]"#]],
    );
}

#[test]
fn a_bulk_use_that_applies_nothing_records_no_release() {
    let given = [add("m1", 50), hold_points("m1", 40), at(15 * MINUTE)];
    check(
        &given,
        bulk_use(vec![spend("m1", 500)]),
        expect![
            "applied 0, fail_at 0 INSUFFICIENT_POINTS FailedPrecondition: items[0].points: balance 50 is less than 500, tx 0..0, balances [], duplicates []"
        ],
    );
}
