//! Balances at the edge of their types (issue 11, hostile input): a change that
//! would take a balance past what it may hold is refused naming the field, never
//! wrapped, clamped or left to `State::apply`, which would stop the server. Given
//! steps put a member at the edge with an applied event, since no sequence of
//! commands gets there in a test's time. Refresh with `UPDATE_EXPECT=1`.

mod support;

use expect_test::{Expect, expect};
use ledger_core::command::{
    CreditsChangeCommand, DefineCredit, GrantCoupons, ImportPointStatements, PointStatementItem,
};
use ledger_core::event::{ChangeReason, CreditsChange, PointStatementApplied, PointsAdded};
use ledger_core::limits::POINTS_BALANCE_MAX;
use ledger_core::{Command, Event, EventBody, Timestamp};
use support::*;

fn check(given: &[Step], when: Step, expect: Expect) {
    expect.assert_eq(&render(given, &when));
}

/// Member `member` of `program` holding `points`, with a qualifying amount as large.
fn holding(program: &str, member: &str, points: u64) -> Step {
    Step::Apply(Event {
        program: program.to_owned(),
        member: member.to_owned(),
        occurred_at: None,
        body: EventBody::PointsAdded(PointsAdded {
            points,
            remark: "edge".to_owned(),
            private_remark: String::new(),
            reference: String::new(),
            branch_code: String::new(),
            expires_at: None,
            cost: None,
            formula_id: String::new(),
        }),
    })
}

/// The same without a qualifying amount: a positive REDEEM statement raises the
/// balance alone, so the balance, not the qualifying amount, is what meets the limit.
fn holding_unqualified(member: &str, points: u64) -> Step {
    Step::Apply(Event {
        program: PROGRAM.to_owned(),
        member: member.to_owned(),
        occurred_at: None,
        body: EventBody::PointStatementApplied(PointStatementApplied {
            promotion_id: 1,
            change_reason: ChangeReason::Redeem,
            points: i64::try_from(points).expect("an i64 balance"),
            brand_manager_id: 0,
            reference: String::new(),
            taken: Vec::new(),
        }),
    })
}

fn edge() -> Step {
    holding(PROGRAM, "edge", POINTS_BALANCE_MAX - 5)
}

#[test]
fn an_add_may_fill_a_balance_to_the_limit_and_no_further() {
    check(
        &[edge()],
        add("edge", 5),
        expect![[r#"
            tx 3: 5 points, balance 9223372036854775807
            #3 edge add 5
            edge: points 9223372036854775807, live 9223372036854775807, lots [0:9223372036854775807]"#]],
    );
    check(
        &[edge()],
        add("edge", 6),
        expect![[r#"
            rejected BALANCE_LIMIT FailedPrecondition: points: adding 6 points would take member "edge" (balance 9223372036854775802, qualifying amount 9223372036854775802) beyond 9223372036854775807, the most a balance may hold
            edge: points 9223372036854775802, live 9223372036854775802, lots [0:9223372036854775802]"#]],
    );
}

#[test]
fn a_bulk_add_stops_at_the_item_that_would_pass_the_limit() {
    check(
        &[edge()],
        bulk_add(vec![add("edge", 3), add("edge", 3)]),
        expect![[r#"
            applied 1, fail_at 1 BALANCE_LIMIT FailedPrecondition: items[1].points: adding 3 points would take member "edge" (balance 9223372036854775805, qualifying amount 9223372036854775805) beyond 9223372036854775807, the most a balance may hold, tx 3..3, balances [edge=9223372036854775805], duplicates []
            #3 edge add 3
            edge: points 9223372036854775805, live 9223372036854775805, lots [0:9223372036854775805]"#]],
    );
    check(
        &[edge()],
        bulk_add(vec![add("m1", 7), add("edge", 3), add("edge", 3)]).atomic(),
        expect![[
            r#"applied 0, fail_at 2 BALANCE_LIMIT FailedPrecondition: items[2].points: adding 3 points would take member "edge" (balance 9223372036854775805, qualifying amount 9223372036854775805) beyond 9223372036854775807, the most a balance may hold, tx 0..0, balances [], duplicates []"#
        ]],
    );
}

#[test]
fn a_replaced_use_cannot_give_back_past_the_limit() {
    check(
        &[holding_unqualified("edge", POINTS_BALANCE_MAX - 5), spend("edge", 10).reference("u"), add("edge", 12)],
        spend("edge", 1).reference("u").replace(),
        expect![[r#"
            rejected BALANCE_LIMIT FailedPrecondition: replace_duplicate: adding 10 points would take member "edge" (balance 9223372036854775804, qualifying amount 12) beyond 9223372036854775807, the most a balance may hold
            edge: points 9223372036854775804, live 9223372036854775804, lots [0:9223372036854775804]"#]],
    );
}

#[test]
fn a_use_of_more_than_any_balance_is_insufficient_not_wrapped() {
    check(
        &[edge()],
        spend("edge", i64::MAX),
        expect![[r#"
        rejected INSUFFICIENT_POINTS FailedPrecondition: points: balance 9223372036854775802 is less than 9223372036854775807
        edge: points 9223372036854775802, live 9223372036854775802, lots [0:9223372036854775802]"#]],
    );
    check(
        &[edge()],
        spend("edge", i64::MIN),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: points: must be 1..=9223372036854775807, got -9223372036854775808
            edge: points 9223372036854775802, live 9223372036854775802, lots [0:9223372036854775802]"#]],
    );
}

#[test]
fn a_formula_product_beyond_decimal_range_names_the_cost() {
    check(
        &[formula("f", "2.5")],
        add("m1", 0).cost("79228162514264337593543950335", "f"),
        expect![[r#"
            rejected INVALID_FIELD InvalidArgument: cost: cost 79228162514264337593543950335 × multiplier 2.5 of formula "f" must give 1..=1000000 points, got more than a decimal holds
            m1: no events"#]],
    );
}

#[test]
fn a_point_statement_past_the_limit_names_its_item() {
    let statement = |points: i64| {
        Step::Run(Command::ImportPointStatements(ImportPointStatements {
            items: vec![PointStatementItem {
                brand_id: 1,
                promotion_id: 2,
                line_id: "edge".to_owned(),
                change_reason: "COLLECT".to_owned(),
                point_change_record: points,
                changed_at: Some(Timestamp::from_micros(0)),
                brand_manager_id: 0,
                reference: String::new(),
            }],
        }))
    };
    let given = [create_program("1"), holding("1", "edge", POINTS_BALANCE_MAX - 5)];
    check(
        &given,
        statement(5),
        expect![[r#"
        PointStatementsImported { applied: 1 }
        #4 edge PointStatementApplied
        edge: no events"#]],
    );
    check(
        &given,
        statement(6),
        expect![[
            r#"rejected INVALID_FIELD InvalidArgument: 1 problems: data[0].point_change_record: adding 6 points would take member "edge" (balance 9223372036854775802, qualifying amount 9223372036854775802) beyond 9223372036854775807, the most a balance may hold"#
        ]],
    );
}

#[test]
fn coupons_at_the_u32_edge_are_refused_naming_count() {
    let granted = Step::Apply(Event {
        program: PROGRAM.to_owned(),
        member: "edge".to_owned(),
        occurred_at: None,
        body: EventBody::CouponsGranted {
            coupon_id: "k".to_owned(),
            name: "K".to_owned(),
            count: u32::MAX - 5,
            reference: String::new(),
        },
    });
    let grant = |count: u32| {
        Step::Run(Command::GrantCoupons(GrantCoupons {
            program: PROGRAM.to_owned(),
            member: "edge".to_owned(),
            coupon_id: "k".to_owned(),
            name: "K".to_owned(),
            count,
            reference: String::new(),
        }))
    };
    check(
        std::slice::from_ref(&granted),
        grant(5),
        expect![[r#"
        CouponsGranted { transaction_id: 3, count: 4294967295 }
        #3 edge CouponsGranted
        edge: points 0, live 0, lots []"#]],
    );
    check(
        &[granted],
        grant(6),
        expect![
            "rejected INVALID_FIELD InvalidArgument: count: would take the member's 4294967290 coupons beyond 4294967295"
        ],
    );
}

#[test]
fn credits_at_the_wallet_edge_are_refused_naming_amount() {
    let define = Step::Run(Command::DefineCredit(DefineCredit {
        program: PROGRAM.to_owned(),
        credit_id: "c".to_owned(),
        name: "C".to_owned(),
        unit: "TWD".to_owned(),
    }));
    // The most a wallet holds is (2^63 - 1) units of 10^-4: 922337203685477.5807.
    let filled = Step::Apply(Event {
        program: PROGRAM.to_owned(),
        member: "edge".to_owned(),
        occurred_at: None,
        body: EventBody::CreditsAdded(CreditsChange {
            credit_id: "c".to_owned(),
            amount: decimal("922337203685477"),
            remark: String::new(),
            reference: String::new(),
        }),
    });
    let add_credits = |amount: &str| {
        Step::Run(Command::AddCredits(CreditsChangeCommand {
            program: PROGRAM.to_owned(),
            member: "edge".to_owned(),
            credit_id: "c".to_owned(),
            amount: decimal(amount),
            remark: "top up".to_owned(),
            reference: String::new(),
        }))
    };
    check(
        &[define.clone(), filled.clone()],
        add_credits("0.5807"),
        expect![[r#"
        Credits(CreditsReceipt { transaction_id: 4, amount: 0.5807, balance: 922337203685477.5807, duplicate: false })
        #4 edge CreditsAdded
        edge: points 0, live 0, lots []"#]],
    );
    check(
        &[define, filled],
        add_credits("0.5808"),
        expect![
            "rejected INVALID_FIELD InvalidArgument: amount: would take the balance 922337203685477 beyond what a wallet holds"
        ],
    );
}
