//! Reversals (`reversals.rs`, SPEC §15), rule by rule: what each kind's reversal
//! undoes, that it applies once, what cannot be reversed, and its reference.
//! Refresh the snapshots with `UPDATE_EXPECT=1`.

mod support;

use expect_test::{Expect, expect};
use ledger_core::command::{
    CreditsChangeCommand, DefineCredit, GrantCoupons, HoldPoints, ReverseTransaction, UseCoupon,
};
use ledger_core::{Command, Outcome, Timestamp};
use std::fmt::Write;
use support::*;

/// As the other areas' `check`, plus the reversal's member's qualifying amount
/// and reversed transactions, which the shared rendering leaves out.
fn check(given: &[Step], when: Step, expect: Expect) {
    let mut out = render(given, &when);
    let mut store = Store::new();
    for step in given.iter().chain([&when]) {
        let _ = store.step(step);
    }
    for (member_id, member) in &store.state.program(PROGRAM).expect("the test program").members {
        let reversed: Vec<String> = member.reversed.iter().map(|(tx, by)| format!("{tx}<-{by}")).collect();
        let _ =
            write!(out, "\n{member_id}: qualifying {}, reversed [{}]", member.qualifying_amount, reversed.join(" "));
    }
    expect.assert_eq(&out);
}

fn reverse(transaction_id: u64) -> Step {
    Step::Run(Command::ReverseTransaction(ReverseTransaction {
        program: PROGRAM.to_owned(),
        transaction_id,
        remark: "cashier mistake".to_owned(),
        reference: String::new(),
        target: None,
    }))
}

fn reverse_ref(transaction_id: u64, reference: &str) -> Step {
    let Step::Run(Command::ReverseTransaction(mut command)) = reverse(transaction_id) else { unreachable!() };
    command.reference = reference.to_owned();
    Step::Run(Command::ReverseTransaction(command))
}

fn define_credit() -> Step {
    Step::Run(Command::DefineCredit(DefineCredit {
        program: PROGRAM.to_owned(),
        credit_id: "c".to_owned(),
        name: "Cash".to_owned(),
        unit: "TWD".to_owned(),
    }))
}

fn credits(member: &str, amount: &str, add: bool) -> Step {
    let change = CreditsChangeCommand {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        credit_id: "c".to_owned(),
        amount: decimal(amount),
        remark: "wallet".to_owned(),
        reference: String::new(),
    };
    Step::Run(if add { Command::AddCredits(change) } else { Command::UseCredits(change) })
}

fn grant(member: &str, count: u32) -> Step {
    Step::Run(Command::GrantCoupons(GrantCoupons {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        coupon_id: "k".to_owned(),
        name: "Coffee".to_owned(),
        count,
        reference: String::new(),
    }))
}

fn use_coupon(member: &str) -> Step {
    Step::Run(Command::UseCoupon(UseCoupon {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        coupon_id: "k".to_owned(),
        remark: String::new(),
        reference: String::new(),
    }))
}

// Points.

#[test]
fn reversing_an_add_takes_its_points_back_and_lowers_the_qualifying_amount() {
    check(
        &[add("m1", 100), add("m1", 30).expires(50)],
        reverse(3),
        expect![[r#"
        Reversal(Reversal { transaction_id: 4, reversed_transaction_id: 3, kind: Points, member: "m1", amount: -30, balance_after: 100, duplicate: false })
        #4 m1 reverse #3 add: 30 from [3:30], earned 30
        m1: points 100, live 100, lots [0:100]
        m1: qualifying 100, reversed [3<-4]"#]],
    );
    check(
        &[add("m1", 100), add("m1", 30)],
        reverse(2),
        expect![[r#"
        Reversal(Reversal { transaction_id: 4, reversed_transaction_id: 2, kind: Points, member: "m1", amount: -100, balance_after: 30, duplicate: false })
        #4 m1 reverse #2 add: 100 from [0:100], earned 100
        m1: points 30, live 30, lots [0:30]
        m1: qualifying 30, reversed [2<-4]"#]],
    );
}

#[test]
fn reversing_an_add_some_of_whose_points_were_spent_is_not_reversible() {
    check(
        &[add("m1", 30).expires(50), add("m1", 100), spend("m1", 10)],
        reverse(2),
        expect![[r#"
        rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 2 added 30 points, but only 20 of them are left in its lot (the rest were spent or expired), so it cannot be undone
        m1: qualifying 130, reversed []"#]],
    );
    // A lot that expired, swept or not, has nothing left to take back.
    check(
        &[add("m1", 30).expires(50), at(60)],
        reverse(2),
        expect![[r#"
        rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 2 added 30 points, but only 0 of them are left in its lot (the rest were spent or expired), so it cannot be undone
        m1: qualifying 30, reversed []"#]],
    );
    check(
        &[add("m1", 30).expires(50), at(60), expire(10)],
        reverse(2),
        expect![[r#"
        rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 2 added 30 points, but only 0 of them are left in its lot (the rest were spent or expired), so it cannot be undone
        m1: qualifying 30, reversed []"#]],
    );
}

#[test]
fn reversing_an_add_counts_the_points_a_hold_past_its_time_gave_back() {
    // Given a hold of 10 of the add's 30 whose time came (not swept): every read
    // shows the 30 back in the lot, so the add is whole and its reversal takes
    // them, recording the hold's expiry first as a use would.
    let hold = Step::Run(Command::HoldPoints(HoldPoints {
        program: PROGRAM.to_owned(),
        member: "m1".to_owned(),
        points: 10,
        remark: "ticket".to_owned(),
        reference: String::new(),
        expires_at: Some(Timestamp::from_micros(20)),
    }));
    check(
        &[add("m1", 30).expires(50), hold, at(20)],
        reverse(2),
        expect![[r#"
            Reversal(Reversal { transaction_id: 5, reversed_transaction_id: 2, kind: Points, member: "m1", amount: -30, balance_after: 0, duplicate: false })
            #4 m1 HoldExpired #3: captured 0, released 10 to [2:10]
            #5 m1 reverse #2 add: 30 from [2:30], earned 30
            m1: points 0, live 0, lots [], held 0, holds [3:EXPIRED 10]
            m1: qualifying 0, reversed [2<-5]"#]],
    );
}

#[test]
fn reversing_a_use_gives_the_points_back_to_their_lots_with_their_expiry() {
    check(
        &[add("m1", 30).expires(50), add("m1", 100), spend("m1", 40)],
        reverse(4),
        expect![[r#"
            Reversal(Reversal { transaction_id: 5, reversed_transaction_id: 4, kind: Points, member: "m1", amount: 40, balance_after: 130, duplicate: false })
            #5 m1 reverse #4 use: 40 to [2:30 0:10]
            m1: points 130, live 130, lots [2:30@50 0:100]
            m1: qualifying 130, reversed [4<-5]"#]],
    );
    // A lot that expired meanwhile gets its points back, and stays expired.
    check(
        &[add("m1", 30).expires(50), add("m1", 100), spend("m1", 40), at(60)],
        reverse(4),
        expect![[r#"
        Reversal(Reversal { transaction_id: 5, reversed_transaction_id: 4, kind: Points, member: "m1", amount: 40, balance_after: 100, duplicate: false })
        #5 m1 reverse #4 use: 40 to [2:30 0:10]
        m1: points 130, live 100, lots [2:30@50 0:100]
        m1: qualifying 130, reversed [4<-5]"#]],
    );
}

#[test]
fn one_item_of_a_bulk_is_reversed_by_its_own_transaction_id() {
    check(
        &[add("m1", 100), add("m2", 100), bulk_use(vec![spend("m1", 10), spend("m2", 20)])],
        reverse(5),
        expect![[r#"
            Reversal(Reversal { transaction_id: 6, reversed_transaction_id: 5, kind: Points, member: "m2", amount: 20, balance_after: 100, duplicate: false })
            #6 m2 reverse #5 use: 20 to [0:20]
            m2: points 100, live 100, lots [0:100]
            m1: qualifying 100, reversed []
            m2: qualifying 100, reversed [5<-6]"#]],
    );
}

// Credits and coupons.

#[test]
fn reversing_credits_restores_exactly_the_change() {
    check(
        &[define_credit(), credits("m1", "10.5", true)],
        reverse(3),
        expect![[r#"
        Reversal(Reversal { transaction_id: 4, reversed_transaction_id: 3, kind: Credits, member: "m1", amount: -10.5, balance_after: 0, duplicate: false })
        #4 m1 reverse #3 CreditsAdd { credit_id: "c", amount: 10.5 }
        m1: points 0, live 0, lots []
        m1: qualifying 0, reversed [3<-4]"#]],
    );
    check(
        &[define_credit(), credits("m1", "10.5", true), credits("m1", "2.25", false)],
        reverse(4),
        expect![[r#"
        Reversal(Reversal { transaction_id: 5, reversed_transaction_id: 4, kind: Credits, member: "m1", amount: 2.25, balance_after: 10.5, duplicate: false })
        #5 m1 reverse #4 CreditsUse { credit_id: "c", amount: 2.25 }
        m1: points 0, live 0, lots []
        m1: qualifying 0, reversed [4<-5]"#]],
    );
    check(
        &[define_credit(), credits("m1", "10.5", true), credits("m1", "2.25", false)],
        reverse(3),
        expect![[r#"
        rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 3 added 10.5 credits "c", but the balance is 8.25, so it cannot be undone
        m1: qualifying 0, reversed []"#]],
    );
}

#[test]
fn reversing_coupons_restores_exactly_the_change() {
    check(
        &[grant("m1", 3)],
        reverse(2),
        expect![[r#"
        Reversal(Reversal { transaction_id: 3, reversed_transaction_id: 2, kind: Coupons, member: "m1", amount: -3, balance_after: 0, duplicate: false })
        #3 m1 reverse #2 CouponsGrant { coupon_id: "k", count: 3 }
        m1: points 0, live 0, lots []
        m1: qualifying 0, reversed [2<-3]"#]],
    );
    check(
        &[grant("m1", 3), use_coupon("m1")],
        reverse(3),
        expect![[r#"
        Reversal(Reversal { transaction_id: 4, reversed_transaction_id: 3, kind: Coupons, member: "m1", amount: 1, balance_after: 3, duplicate: false })
        #4 m1 reverse #3 CouponUse { coupon_id: "k" }
        m1: points 0, live 0, lots []
        m1: qualifying 0, reversed [3<-4]"#]],
    );
    check(
        &[grant("m1", 3), use_coupon("m1")],
        reverse(2),
        expect![[r#"
        rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 2 granted 3 coupons "k", but only 2 are left, so it cannot be undone
        m1: qualifying 0, reversed []"#]],
    );
}

// Once, and only what can be.

#[test]
fn a_second_reversal_is_already_reversed() {
    check(
        &[add("m1", 100), reverse(2)],
        reverse(2),
        expect![[r#"
        rejected ALREADY_REVERSED FailedPrecondition: transaction_id: transaction 2 was already reversed by transaction 3
        m1: qualifying 0, reversed [2<-3]"#]],
    );
    // A replacement reverses the transaction it replaces.
    check(
        &[add("m1", 100).reference("r"), add("m1", 50).reference("r").replace()],
        reverse(2),
        expect![[r#"
        rejected ALREADY_REVERSED FailedPrecondition: transaction_id: transaction 2 was already reversed by transaction 4
        m1: qualifying 50, reversed [2<-4]"#]],
    );
}

#[test]
fn a_replacement_of_a_reversed_transaction_records_only_the_new_one() {
    check(
        &[add("m1", 100).reference("r"), reverse(2)],
        add("m1", 50).reference("r").replace(),
        expect![[r#"
        tx 4: 50 points, balance 50, replaced
        #4 m1 add 50 ref r
        m1: points 50, live 50, lots [0:50]
        m1: qualifying 50, reversed [2<-3]"#]],
    );
}

#[test]
fn reversals_expiries_and_definitions_are_not_reversible() {
    check(
        &[add("m1", 100), reverse(2)],
        reverse(3),
        expect![[r#"
        rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 3 is a TransactionReversed, which cannot be reversed: only points adds and uses, credits adds and uses, coupon grants and coupon uses can
        m1: qualifying 0, reversed [2<-3]"#]],
    );
    check(
        &[add("m1", 30).expires(50), at(60), expire(10)],
        reverse(3),
        expect![[r#"
        rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 3 is a PointsExpired, which cannot be reversed: only points adds and uses, credits adds and uses, coupon grants and coupon uses can
        m1: qualifying 30, reversed []"#]],
    );
    check(
        &[formula("f", "1.5")],
        reverse(2),
        expect![
            "rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 2 is a FormulaDefined, which cannot be reversed: only points adds and uses, credits adds and uses, coupon grants and coupon uses can"
        ],
    );
    check(
        &[],
        reverse(1),
        expect![
            "rejected NOT_REVERSIBLE FailedPrecondition: transaction_id: transaction 1 is a ProgramCreated, which cannot be reversed: only points adds and uses, credits adds and uses, coupon grants and coupon uses can"
        ],
    );
}

#[test]
fn an_unknown_transaction_or_one_of_another_program_is_not_found() {
    check(
        &[add("m1", 100)],
        reverse(9),
        expect![[r#"
        rejected TRANSACTION_NOT_FOUND NotFound: transaction_id: transaction 9 does not exist in program "p"
        m1: qualifying 100, reversed []"#]],
    );
    check(
        &[create_program("q"), add("m1", 100).program("q")],
        reverse(3),
        expect![[
            r#"rejected TRANSACTION_NOT_FOUND NotFound: transaction_id: transaction 3 does not exist in program "p""#
        ]],
    );
    check(
        &[],
        reverse(0),
        expect!["rejected INVALID_FIELD InvalidArgument: transaction_id: is required and may not be blank"],
    );
}

#[test]
fn a_reversal_applies_once_by_its_reference() {
    check(
        &[add("m1", 100), reverse_ref(2, "undo-1")],
        reverse_ref(2, "undo-1"),
        expect![[r#"
        Reversal(Reversal { transaction_id: 3, reversed_transaction_id: 2, kind: Points, member: "m1", amount: -100, balance_after: 0, duplicate: true })
        m1: qualifying 0, reversed [2<-3]"#]],
    );
    // Another kind's reference is refused.
    check(
        &[add("m1", 100).reference("undo-1"), add("m1", 5)],
        reverse_ref(3, "undo-1"),
        expect![[r#"
        rejected REFERENCE_IN_USE AlreadyExists: reference: reference "undo-1" was used by transaction 2, a points add, so it cannot name a reversal
        m1: qualifying 105, reversed []"#]],
    );
}

#[test]
fn a_reversal_answers_what_it_did() {
    let mut store = Store::new();
    store.step(&add("m1", 100)).expect("add");
    let Ok(Outcome::Reversal(reversal)) = store.step(&reverse_ref(2, "r")) else { panic!("a reversal") };
    expect![[r#"
        Reversal {
            transaction_id: 3,
            reversed_transaction_id: 2,
            kind: Points,
            member: "m1",
            amount: -100,
            balance_after: 0,
            duplicate: false,
        }
    "#]]
    .assert_debug_eq(&reversal);
}
