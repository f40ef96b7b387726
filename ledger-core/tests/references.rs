//! References across kinds (`references.rs`), rule by rule: a repeat of each kind
//! answers its original result, another kind's reference is refused, a reference
//! is unique per program, and `replace_duplicate` replaces only a points add or
//! use. Points alone are in `points.rs`. Refresh the snapshots with `UPDATE_EXPECT=1`.

mod support;

use expect_test::{Expect, expect};
use ledger_core::command::{
    CreditsChangeCommand, DefineCredit, GrantCoupons, ImportPointStatements, PointStatementItem, UseCoupon,
};
use ledger_core::{Command, Timestamp};
use support::*;

fn check(given: &[Step], when: Step, expect: Expect) {
    expect.assert_eq(&render(given, &when));
}

/// Credit type `c` in program `p`.
fn define_credit() -> Step {
    Step::Run(Command::DefineCredit(DefineCredit {
        program: PROGRAM.to_owned(),
        credit_id: "c".to_owned(),
        name: "Cash".to_owned(),
        unit: "TWD".to_owned(),
    }))
}

fn credits(member: &str, amount: &str, reference: &str) -> CreditsChangeCommand {
    CreditsChangeCommand {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        credit_id: "c".to_owned(),
        amount: decimal(amount),
        remark: "wallet".to_owned(),
        reference: reference.to_owned(),
    }
}

fn add_credits(member: &str, amount: &str, reference: &str) -> Step {
    Step::Run(Command::AddCredits(credits(member, amount, reference)))
}

fn use_credits(member: &str, amount: &str, reference: &str) -> Step {
    Step::Run(Command::UseCredits(credits(member, amount, reference)))
}

/// A grant of `count` coupons `k` to `member` of `program`.
fn grant_in(program: &str, member: &str, count: u32, reference: &str) -> Step {
    Step::Run(Command::GrantCoupons(GrantCoupons {
        program: program.to_owned(),
        member: member.to_owned(),
        coupon_id: "k".to_owned(),
        name: "Coffee".to_owned(),
        count,
        reference: reference.to_owned(),
    }))
}

fn grant(member: &str, count: u32, reference: &str) -> Step {
    grant_in(PROGRAM, member, count, reference)
}

fn use_coupon(member: &str, reference: &str) -> Step {
    Step::Run(Command::UseCoupon(UseCoupon {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        coupon_id: "k".to_owned(),
        remark: String::new(),
        reference: reference.to_owned(),
    }))
}

/// One point statement item of brand 1 (program `1`) for `member`.
fn statement_item(member: &str, points: i64, reference: &str) -> PointStatementItem {
    PointStatementItem {
        brand_id: 1,
        promotion_id: 7,
        line_id: member.to_owned(),
        change_reason: "COLLECT".to_owned(),
        point_change_record: points,
        changed_at: Some(Timestamp::from_micros(0)),
        brand_manager_id: 0,
        reference: reference.to_owned(),
    }
}

fn statements(items: Vec<PointStatementItem>) -> Step {
    Step::Run(Command::ImportPointStatements(ImportPointStatements { items }))
}

// A repeat answers the original result, whatever changed since.

#[test]
fn a_repeated_credits_add_or_use_answers_its_original_receipt() {
    let given = [
        define_credit(),
        add_credits("m1", "10.50", "a"),
        add_credits("m1", "2", ""),
        use_credits("m1", "3.25", "u"),
        add_credits("m1", "100", ""),
    ];
    // The balance is the one right after the original, not today's.
    check(
        &given,
        add_credits("m1", "99", "a"),
        expect![[r#"
            Credits(CreditsReceipt { transaction_id: 3, amount: 10.5, balance: 10.5, duplicate: true })"#]],
    );
    check(
        &given,
        use_credits("m2", "1", "u"),
        expect![[r#"
            Credits(CreditsReceipt { transaction_id: 5, amount: 3.25, balance: 9.25, duplicate: true })"#]],
    );
}

#[test]
fn a_repeated_coupon_grant_or_use_answers_its_original_result() {
    let given =
        [grant("m1", 3, "g"), grant("m1", 2, ""), at(100), use_coupon("m1", "u"), at(500), use_coupon("m1", "")];
    check(
        &given,
        grant("m1", 9, "g"),
        expect![[r#"
            CouponsGranted { transaction_id: 2, count: 3 }"#]],
    );
    // When it was used, and what was left then.
    check(
        &given,
        use_coupon("m1", "u"),
        expect![[r#"
            CouponUsed { transaction_id: 4, remaining: 4, used_at: Timestamp(100) }"#]],
    );
}

#[test]
fn a_repeated_point_statement_is_skipped() {
    let given = [create_program("1"), statements(vec![statement_item("m1", 5, "s")])];
    check(
        &given,
        statements(vec![statement_item("m1", 5, "s"), statement_item("m1", 1, "t")]),
        expect![[r#"
            PointStatementsImported { applied: 1 }
            #4 m1 PointStatementApplied
            m1: no events"#]],
    );
}

// Another kind's reference is refused, never answered.

#[test]
fn a_reference_another_kind_used_is_refused() {
    let given = [define_credit(), add_credits("m1", "10", "x"), grant("m1", 2, "g"), add("m1", 10).reference("r")];
    check(
        &given,
        use_credits("m1", "1", "x"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "x" was used by transaction 3, a credits add, so it cannot name a credits use"#]],
    );
    check(
        &given,
        use_coupon("m1", "g"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "g" was used by transaction 4, a coupon grant, so it cannot name a coupon use"#]],
    );
    check(
        &given,
        add_credits("m1", "1", "r"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "r" was used by transaction 5, a points add, so it cannot name a credits add"#]],
    );
    check(
        &given,
        spend("m1", 1).reference("g"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "g" was used by transaction 4, a coupon grant, so it cannot name a points use
            m1: points 10, live 10, lots [0:10]"#]],
    );
    check(
        &given,
        grant("m1", 1, "x"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "x" was used by transaction 3, a credits add, so it cannot name a coupon grant"#]],
    );
}

#[test]
fn a_point_statement_and_another_kind_never_share_a_reference() {
    let given = [create_program("1"), statements(vec![statement_item("m1", 5, "s")])];
    check(
        &given,
        add("m1", 1).reference("s").program("1"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "s" was used by transaction 3, a point statement, so it cannot name a points add
            m1: no events"#]],
    );
    let given = [create_program("1"), add("m1", 1).reference("r").program("1")];
    check(
        &given,
        statements(vec![statement_item("m1", 5, "r")]),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: 1 problems: data[0].reference: reference "r" was used by transaction 3, a points add, so it cannot name a point statement"#]],
    );
}

#[test]
fn replace_duplicate_replaces_only_a_points_add_or_use() {
    let given = [define_credit(), add("m1", 50), add_credits("m1", "10", "x"), grant("m1", 1, "g")];
    check(
        &given,
        add("m1", 5).reference("x").replace(),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "x" was used by transaction 4, a credits add, so it cannot name a points add
            m1: points 50, live 50, lots [0:50]"#]],
    );
    check(
        &given,
        spend("m1", 5).reference("g").replace(),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "g" was used by transaction 5, a coupon grant, so it cannot name a points use
            m1: points 50, live 50, lots [0:50]"#]],
    );
}

// Per program, for ever.

#[test]
fn a_reference_is_unique_per_program_for_ever() {
    let given = [create_program("q"), grant("m1", 1, "g"), use_coupon("m1", ""), grant("m1", 4, "")];
    check(
        &given,
        grant_in("q", "m1", 2, "g"),
        expect![[r#"
            CouponsGranted { transaction_id: 6, count: 2 }
            #6 m1 CouponsGranted
            m1: points 0, live 0, lots []"#]],
    );
    check(
        &given,
        use_coupon("m1", "g"),
        expect![[r#"
            rejected REFERENCE_IN_USE AlreadyExists: reference: reference "g" was used by transaction 3, a coupon grant, so it cannot name a coupon use"#]],
    );
}

// replace_duplicate of a use.

#[test]
fn replacing_a_use_gives_its_points_back_to_the_lots_they_came_from() {
    let given = [add("m1", 10).expires(100), add("m1", 50), spend("m1", 30).reference("r")];
    check(
        &given,
        spend("m1", 5).reference("r").replace(),
        expect![[r#"
            tx 6: 5 points, balance 55, replaced
            #5 m1 use #4 reversed: 30 to [2:10 0:20]
            #6 m1 use 5 from [2:5] ref r
            m1: points 55, live 55, lots [2:5@100 0:50]"#]],
    );
    // A lot that expired meanwhile comes back expired: the use's replacement cannot spend it.
    let mut expired = given.to_vec();
    expired.push(at(100));
    check(
        &expired,
        spend("m1", 45).reference("r").replace(),
        expect![[r#"
            tx 6: 45 points, balance 5, replaced
            #5 m1 use #4 reversed: 30 to [2:10 0:20]
            #6 m1 use 45 from [0:45] ref r
            m1: points 15, live 5, lots [2:10@100 0:5]"#]],
    );
}
