//! CreditsService and CouponsService over gRPC (SPEC §4, §5, §10, §11): exact decimal
//! wallets per credit type, coupon counts, references shared across kinds, who may
//! call what, and how both show in GetMember and the activities. Every refusal
//! leaves the member as it was.

mod support;

use ledger_grpc::pb;
use support::{assert_invalid_field, get_member, refused, seconds_from_now, started};
use tonic::Code;

const PROGRAM: &str = "cafe";
const OTHER: &str = "bakery";

fn define(credit_id: &str, name: &str, unit: &str) -> pb::DefineCreditRequest {
    pb::DefineCreditRequest {
        program_id: PROGRAM.into(),
        credit_id: credit_id.into(),
        name: name.into(),
        unit: unit.into(),
    }
}

fn top_up(member: &str, credit_id: &str, amount: &str) -> pb::AddCreditsRequest {
    pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        credit_id: credit_id.into(),
        amount: amount.into(),
        remark: "top-up".into(),
        reference: String::new(),
    }
}

fn pay(member: &str, credit_id: &str, amount: &str) -> pb::UseCreditsRequest {
    pb::UseCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        credit_id: credit_id.into(),
        amount: amount.into(),
        remark: "flat white".into(),
        reference: String::new(),
    }
}

fn grant(member: &str, coupon_id: &str, count: u32) -> pb::GrantCouponsRequest {
    pb::GrantCouponsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        coupon_id: coupon_id.into(),
        name: name_of(coupon_id),
        count,
        reference: String::new(),
    }
}

fn redeem(member: &str, coupon_id: &str) -> pb::UseCouponRequest {
    pb::UseCouponRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        coupon_id: coupon_id.into(),
        remark: "monday".into(),
        reference: String::new(),
    }
}

/// "coffee" → "Coffee": the name tests give a coupon or credit type.
fn name_of(id: &str) -> String {
    let mut chars = id.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn coupon(coupon_id: &str, count: u32) -> pb::MemberCoupon {
    pb::MemberCoupon { coupon_id: coupon_id.into(), name: name_of(coupon_id), count }
}

fn credit(credit_id: &str, name: &str, unit: &str, amount: &str) -> pb::MemberCredit {
    pb::MemberCredit {
        credit_id: credit_id.into(),
        name: name.into(),
        unit: unit.into(),
        amount: amount.into(),
        held: "0".into(),
    }
}

fn list_coupons(program: &str, member: &str) -> pb::ListMemberCouponsRequest {
    pb::ListMemberCouponsRequest { program_id: program.into(), member_id: member.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_are_exact_decimals_of_at_most_four_places_of_a_defined_credit_type() {
    let (_server, mut client) = started("wallets-credits-amounts", &[PROGRAM]).await;
    let status = refused(client.credits.add_credits(top_up("alice", "gift-card", "10")).await, Code::NotFound);
    assert!(status.message().contains("gift-card"), "{status:?}");
    refused(client.members.get_member(get_member(PROGRAM, "alice")).await, Code::NotFound);

    let rejected = [
        ("credit_id", define("", "Gift card", "TWD")),
        ("credit_id", define(&"c".repeat(129), "Gift card", "TWD")),
        ("name", define("gift-card", " ", "TWD")),
        ("name", define("gift-card", &"n".repeat(256), "TWD")),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.credits.define_credit(request).await, Code::InvalidArgument), field);
    }
    let defined = client.credits.define_credit(define("gift-card", "Gift card", "TWD")).await.expect("define");
    let expected = pb::Credit {
        program_id: PROGRAM.into(),
        credit_id: "gift-card".into(),
        name: "Gift card".into(),
        unit: "TWD".into(),
    };
    assert_eq!(defined.into_inner(), expected);

    let rejected = [
        ("amount", top_up("alice", "gift-card", "0")),
        ("amount", top_up("alice", "gift-card", "-1")),
        ("amount", top_up("alice", "gift-card", "0.00001")),
        ("amount", top_up("alice", "gift-card", "1.23456")),
        ("amount", top_up("alice", "gift-card", "1000000.0001")),
        ("amount", top_up("alice", "gift-card", "ten")),
        ("amount", top_up("alice", "gift-card", "1e2")),
        ("amount", top_up("alice", "gift-card", "1_000")),
        ("amount", top_up("alice", "gift-card", ".5")),
        ("amount", top_up("alice", "gift-card", "5.")),
        ("amount", top_up("alice", "gift-card", "")),
        ("remark", pb::AddCreditsRequest { remark: " ".into(), ..top_up("alice", "gift-card", "1") }),
        ("remark", pb::AddCreditsRequest { remark: "r".repeat(1_025), ..top_up("alice", "gift-card", "1") }),
        ("member_id", top_up("", "gift-card", "1")),
        ("member_id", top_up(&"m".repeat(129), "gift-card", "1")),
        ("credit_id", top_up("alice", "", "1")),
        ("reference", pb::AddCreditsRequest { reference: "r".repeat(129), ..top_up("alice", "gift-card", "1") }),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.credits.add_credits(request).await, Code::InvalidArgument), field);
    }
    refused(client.members.get_member(get_member(PROGRAM, "alice")).await, Code::NotFound);

    // (amount sent, amount answered, balance): exact, normalized without trailing zeros.
    let adds = [
        ("7.25", "7.25", "7.25"),
        ("2.750", "2.75", "10"),
        ("0.1235", "0.1235", "10.1235"),
        ("0.0001", "0.0001", "10.1236"),
        ("1000000", "1000000", "1000010.1236"),
        ("1000000.0000", "1000000", "2000010.1236"),
    ];
    let mut last = 0;
    for (sent, amount, balance) in adds {
        let receipt = client.credits.add_credits(top_up("alice", "gift-card", sent)).await.expect("add").into_inner();
        assert_eq!((receipt.amount.as_str(), receipt.balance.as_str(), receipt.duplicate), (amount, balance, false));
        assert!(receipt.transaction_id > last, "each add is a new transaction");
        last = receipt.transaction_id;
    }
    // Binary floats would give 0.30000000000000004.
    for amount in ["0.1", "0.2"] {
        client.credits.add_credits(top_up("bob", "gift-card", amount)).await.expect("add");
    }
    assert_eq!(client.member(PROGRAM, "bob").await.credits, [credit("gift-card", "Gift card", "TWD", "0.3")]);

    // Each credit type is its own wallet; credits are not points and do not qualify for tiers.
    client.credits.define_credit(define("stamps", "Stamps", "stamp")).await.expect("define");
    let receipt = client.credits.add_credits(top_up("alice", "stamps", "3")).await.expect("add").into_inner();
    assert_eq!((receipt.amount.as_str(), receipt.balance.as_str()), ("3", "3"));
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!(
        alice.credits,
        [credit("gift-card", "Gift card", "TWD", "2000010.1236"), credit("stamps", "Stamps", "stamp", "3")]
    );
    assert_eq!((alice.points, alice.qualifying_amount, alice.level), (0, 0, 0));

    let nowhere = pb::AddCreditsRequest { program_id: "nowhere".into(), ..top_up("alice", "gift-card", "1") };
    let status = refused(client.credits.add_credits(nowhere).await, Code::NotFound);
    assert!(status.message().contains("nowhere"), "{status:?}");
    let nowhere = pb::DefineCreditRequest { program_id: "nowhere".into(), ..define("gift-card", "Gift card", "TWD") };
    refused(client.credits.define_credit(nowhere).await, Code::NotFound);
    assert_eq!(client.member(PROGRAM, "alice").await, alice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credits_use_may_not_take_the_wallet_below_zero() {
    let (_server, mut client) = started("wallets-credits-use", &[PROGRAM]).await;
    for (credit_id, name, unit) in [("gift-card", "Gift card", "TWD"), ("stamps", "Stamps", "stamp")] {
        client.credits.define_credit(define(credit_id, name, unit)).await.expect("define");
    }
    let added = client.credits.add_credits(top_up("alice", "gift-card", "10")).await.expect("add").into_inner();
    let used = client.credits.use_credits(pay("alice", "gift-card", "2.5")).await.expect("use").into_inner();
    assert_eq!((used.amount.as_str(), used.balance.as_str(), used.duplicate), ("2.5", "7.5", false));
    assert!(used.transaction_id > added.transaction_id);

    let before = client.member(PROGRAM, "alice").await;
    assert_eq!(before.credits, [credit("gift-card", "Gift card", "TWD", "7.5")]);
    let status =
        refused(client.credits.use_credits(pay("alice", "gift-card", "7.5001")).await, Code::FailedPrecondition);
    assert!(
        status.message().contains("balance 7.5 ") && status.message().contains("7.5001"),
        "the message gives the balance and the amount wanted: {status:?}"
    );
    let referenced = pb::UseCreditsRequest { reference: "pay-9".into(), ..pay("alice", "gift-card", "8") };
    refused(client.credits.use_credits(referenced).await, Code::FailedPrecondition);
    // A wallet never credited holds 0; an undefined type is not found.
    refused(client.credits.use_credits(pay("alice", "stamps", "1")).await, Code::FailedPrecondition);
    refused(client.credits.use_credits(pay("carol", "stamps", "1")).await, Code::FailedPrecondition);
    let status = refused(client.credits.use_credits(pay("alice", "nope", "1")).await, Code::NotFound);
    assert!(status.message().contains("nope"), "{status:?}");
    let rejected = [
        ("amount", pay("alice", "gift-card", "0")),
        ("amount", pay("alice", "gift-card", "-2.5")),
        ("amount", pay("alice", "gift-card", "0.00005")),
        ("remark", pb::UseCreditsRequest { remark: String::new(), ..pay("alice", "gift-card", "1") }),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.credits.use_credits(request).await, Code::InvalidArgument), field);
    }
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a refused use changes nothing");
    refused(client.members.get_member(get_member(PROGRAM, "carol")).await, Code::NotFound);

    // The refused use did not take its reference: the same reference works once funds suffice.
    let referenced = pb::UseCreditsRequest { reference: "pay-9".into(), ..pay("alice", "gift-card", "7.5") };
    let receipt = client.credits.use_credits(referenced).await.expect("use all").into_inner();
    assert_eq!((receipt.amount.as_str(), receipt.balance.as_str(), receipt.duplicate), ("7.5", "0", false));
    refused(client.credits.use_credits(pay("alice", "gift-card", "0.0001")).await, Code::FailedPrecondition);
    assert_eq!(client.member(PROGRAM, "alice").await.credits, [credit("gift-card", "Gift card", "TWD", "0")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_reference_answers_the_original_and_a_reference_of_another_kind_is_refused() {
    let (_server, mut client) = started("wallets-references", &[PROGRAM]).await;
    client.create_program(OTHER).await;
    client.credits.define_credit(define("gift-card", "Gift card", "TWD")).await.expect("define");
    let referenced_add = |reference: &str, amount: &str| pb::AddCreditsRequest {
        reference: reference.into(),
        ..top_up("alice", "gift-card", amount)
    };
    let referenced_use = |reference: &str, amount: &str| pb::UseCreditsRequest {
        reference: reference.into(),
        ..pay("alice", "gift-card", amount)
    };

    // Credits: a repeat of the same kind answers the original receipt, marked duplicate.
    let first = client.credits.add_credits(referenced_add("top-up-1", "10")).await.expect("add").into_inner();
    client.credits.add_credits(top_up("alice", "gift-card", "5")).await.expect("add");
    let paid = client.credits.use_credits(referenced_use("pay-1", "2.5")).await.expect("use").into_inner();
    assert_eq!(paid.balance, "12.5");
    let before = client.member(PROGRAM, "alice").await;
    let repeat = client.credits.add_credits(referenced_add("top-up-1", "99")).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::CreditsReceipt { duplicate: true, ..first.clone() });
    let repeat = client.credits.use_credits(referenced_use("pay-1", "1")).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::CreditsReceipt { duplicate: true, ..paid });
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a duplicate changes nothing");

    // Coupons: a repeated grant answers its transaction and count; a repeated use its
    // transaction, what remained and when.
    let granted = pb::GrantCouponsRequest { reference: "grant-1".into(), ..grant("alice", "coffee", 3) };
    let first_grant = client.coupons.grant_coupons(granted.clone()).await.expect("grant").into_inner();
    assert_eq!(first_grant.count, 3);
    let used = pb::UseCouponRequest { reference: "use-1".into(), ..redeem("alice", "coffee") };
    let first_use = client.coupons.use_coupon(used.clone()).await.expect("use").into_inner();
    assert_eq!(first_use.remaining, 2);
    let before = client.member(PROGRAM, "alice").await;
    let again = pb::GrantCouponsRequest { count: 7, ..granted };
    assert_eq!(client.coupons.grant_coupons(again).await.expect("repeat").into_inner(), first_grant);
    assert_eq!(client.coupons.use_coupon(used).await.expect("repeat").into_inner(), first_use);
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a duplicate changes nothing");
    assert_eq!(before.coupons, [coupon("coffee", 2)]);

    // A reference one kind used cannot name another kind in the same program.
    client
        .points
        .add_points(pb::AddPointsRequest {
            program_id: PROGRAM.into(),
            member_id: "alice".into(),
            points: 10,
            remark: "latte".into(),
            reference: "order-1".into(),
            ..Default::default()
        })
        .await
        .expect("add points");
    let before = client.member(PROGRAM, "alice").await;
    let clashes = [
        ("top-up-1", client.credits.use_credits(referenced_use("top-up-1", "1")).await.map(|_| ())),
        ("pay-1", client.credits.add_credits(referenced_add("pay-1", "1")).await.map(|_| ())),
        ("order-1", client.credits.add_credits(referenced_add("order-1", "1")).await.map(|_| ())),
        ("use-1", client.credits.add_credits(referenced_add("use-1", "1")).await.map(|_| ())),
        (
            "top-up-1",
            client
                .coupons
                .grant_coupons(pb::GrantCouponsRequest { reference: "top-up-1".into(), ..grant("alice", "coffee", 1) })
                .await
                .map(|_| ()),
        ),
        (
            "grant-1",
            client
                .coupons
                .use_coupon(pb::UseCouponRequest { reference: "grant-1".into(), ..redeem("alice", "coffee") })
                .await
                .map(|_| ()),
        ),
        (
            "pay-1",
            client
                .points
                .add_points(pb::AddPointsRequest {
                    program_id: PROGRAM.into(),
                    member_id: "alice".into(),
                    points: 10,
                    remark: "latte".into(),
                    reference: "pay-1".into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        ),
    ];
    for (reference, result) in clashes {
        let status = result.expect_err("a reference of another kind is refused");
        assert_eq!(status.code(), Code::AlreadyExists, "{reference}: {status:?}");
        assert!(status.message().contains(reference), "{status:?}");
    }
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a refused clash changes nothing");

    // Credit types and references are per program.
    let undefined = pb::AddCreditsRequest { program_id: OTHER.into(), ..top_up("alice", "gift-card", "4") };
    refused(client.credits.add_credits(undefined).await, Code::NotFound);
    let elsewhere = pb::DefineCreditRequest { program_id: OTHER.into(), ..define("gift-card", "Gift card", "TWD") };
    client.credits.define_credit(elsewhere).await.expect("define");
    let elsewhere = pb::AddCreditsRequest { program_id: OTHER.into(), ..referenced_add("top-up-1", "4") };
    let receipt = client.credits.add_credits(elsewhere).await.expect("same reference, other program").into_inner();
    assert_eq!((receipt.duplicate, receipt.balance.as_str()), (false, "4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupons_are_granted_1_to_10_000_at_a_time_and_used_one_at_a_time() {
    let (_server, mut client) = started("wallets-coupons", &[PROGRAM]).await;
    let rejected = [
        ("count", grant("alice", "coffee", 0)),
        ("count", grant("alice", "coffee", 10_001)),
        ("name", pb::GrantCouponsRequest { name: " ".into(), ..grant("alice", "coffee", 1) }),
        ("name", pb::GrantCouponsRequest { name: "n".repeat(256), ..grant("alice", "coffee", 1) }),
        ("coupon_id", pb::GrantCouponsRequest { coupon_id: String::new(), ..grant("alice", "coffee", 1) }),
        ("coupon_id", grant("alice", &"c".repeat(129), 1)),
        ("member_id", grant("", "coffee", 1)),
        ("reference", pb::GrantCouponsRequest { reference: "r".repeat(129), ..grant("alice", "coffee", 1) }),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.coupons.grant_coupons(request).await, Code::InvalidArgument), field);
    }
    refused(client.members.get_member(get_member(PROGRAM, "alice")).await, Code::NotFound);

    let first = client.coupons.grant_coupons(grant("alice", "coffee", 3)).await.expect("grant").into_inner();
    assert_eq!(first.count, 3);
    let second = client.coupons.grant_coupons(grant("alice", "coffee", 2)).await.expect("grant").into_inner();
    assert_eq!(second.count, 5, "a grant adds to the count");
    assert!(second.transaction_id > first.transaction_id);
    let most = client.coupons.grant_coupons(grant("alice", "cake", 10_000)).await.expect("grant").into_inner();
    assert_eq!(most.count, 10_000);
    assert_eq!(client.coupons.grant_coupons(grant("bob", "coffee", 1)).await.expect("grant").into_inner().count, 1);

    let listed = client.coupons.list_member_coupons(list_coupons(PROGRAM, "alice")).await.expect("list").into_inner();
    assert_eq!(listed.coupons, [coupon("cake", 10_000), coupon("coffee", 5)]);
    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!(alice.coupons, listed.coupons);
    assert_eq!((alice.points, alice.qualifying_amount, alice.credits.len()), (0, 0, 0));

    let mut last = most.transaction_id;
    for remaining in (0..5).rev() {
        let (earliest, latest) = (seconds_from_now(-5), seconds_from_now(5));
        let used = client.coupons.use_coupon(redeem("alice", "coffee")).await.expect("use").into_inner();
        assert_eq!(used.remaining, remaining);
        assert!(used.transaction_id > last, "each use is a new transaction");
        last = used.transaction_id;
        let used_at = used.used_at.expect("used_at");
        assert!(earliest.seconds <= used_at.seconds && used_at.seconds <= latest.seconds, "used now: {used_at:?}");
    }

    let before = client.member(PROGRAM, "alice").await;
    let status = refused(client.coupons.use_coupon(redeem("alice", "coffee")).await, Code::FailedPrecondition);
    assert!(status.message().contains("coffee"), "the message names the coupon: {status:?}");
    refused(client.coupons.use_coupon(redeem("alice", "muffin")).await, Code::FailedPrecondition);
    refused(client.coupons.use_coupon(redeem("carol", "coffee")).await, Code::FailedPrecondition);
    let long_remark = pb::UseCouponRequest { remark: "r".repeat(1_025), ..redeem("alice", "cake") };
    assert_invalid_field(&refused(client.coupons.use_coupon(long_remark).await, Code::InvalidArgument), "remark");
    assert_invalid_field(
        &refused(client.coupons.use_coupon(redeem("alice", "")).await, Code::InvalidArgument),
        "coupon_id",
    );
    assert_eq!(client.member(PROGRAM, "alice").await, before, "a refused use changes nothing");
    refused(client.members.get_member(get_member(PROGRAM, "carol")).await, Code::NotFound);

    let listed = client.coupons.list_member_coupons(list_coupons(PROGRAM, "alice")).await.expect("list").into_inner();
    let held: Vec<_> = listed.coupons.iter().filter(|coupon| coupon.count > 0).cloned().collect();
    assert_eq!(held, [coupon("cake", 10_000)]);
    assert!(listed.coupons.iter().all(|c| c.coupon_id == "cake" || c == &coupon("coffee", 0)), "{listed:?}");

    // Each member has its own count; a coupon use needs no remark.
    let used = pb::UseCouponRequest { remark: String::new(), ..redeem("bob", "coffee") };
    assert_eq!(client.coupons.use_coupon(used).await.expect("use").into_inner().remaining, 0);
    assert_eq!(client.member(PROGRAM, "alice").await, before);

    let nowhere = "nowhere".to_owned();
    let calls = [
        client
            .coupons
            .grant_coupons(pb::GrantCouponsRequest { program_id: nowhere.clone(), ..grant("alice", "coffee", 1) })
            .await
            .map(|_| ()),
        client
            .coupons
            .use_coupon(pb::UseCouponRequest { program_id: nowhere.clone(), ..redeem("alice", "cake") })
            .await
            .map(|_| ()),
        client.coupons.list_member_coupons(list_coupons(&nowhere, "alice")).await.map(|_| ()),
    ];
    for (index, call) in calls.into_iter().enumerate() {
        let status = call.expect_err("a call naming an unknown program fails");
        assert_eq!(status.code(), Code::NotFound, "call {index}: {status:?}");
        assert!(status.message().contains("nowhere"), "call {index}: {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_wallets_and_a_token_of_another_program_is_denied() {
    let (server, mut admin) = started("wallets-roles", &[PROGRAM]).await;
    admin.create_program(OTHER).await;
    admin.credits.define_credit(define("gift-card", "Gift card", "TWD")).await.expect("define");
    admin.credits.add_credits(top_up("alice", "gift-card", "10")).await.expect("add");
    admin.coupons.grant_coupons(grant("alice", "coffee", 2)).await.expect("grant");
    let mut viewer = server.clients(&admin.token(pb::Role::Viewer, PROGRAM).await).await;
    let mut stranger = server.clients(&admin.token(pb::Role::Operator, OTHER).await).await;
    let mut operator = server.clients(&admin.token(pb::Role::Operator, PROGRAM).await).await;
    let before = admin.member(PROGRAM, "alice").await;

    for (who, client) in [("viewer", &mut viewer), ("operator of bakery", &mut stranger)] {
        let calls = [
            ("DefineCredit", client.credits.define_credit(define("stamps", "Stamps", "stamp")).await.map(|_| ())),
            ("AddCredits", client.credits.add_credits(top_up("alice", "gift-card", "1")).await.map(|_| ())),
            ("UseCredits", client.credits.use_credits(pay("alice", "gift-card", "1")).await.map(|_| ())),
            ("GrantCoupons", client.coupons.grant_coupons(grant("alice", "coffee", 1)).await.map(|_| ())),
            ("UseCoupon", client.coupons.use_coupon(redeem("alice", "coffee")).await.map(|_| ())),
        ];
        for (name, call) in calls {
            let status = call.expect_err("refused");
            assert_eq!(status.code(), Code::PermissionDenied, "{who} {name}: {status:?}");
        }
    }
    let status =
        refused(stranger.coupons.list_member_coupons(list_coupons(PROGRAM, "alice")).await, Code::PermissionDenied);
    assert!(status.message().contains(PROGRAM), "{status:?}");
    refused(stranger.members.get_member(get_member(PROGRAM, "alice")).await, Code::PermissionDenied);
    assert_eq!(admin.member(PROGRAM, "alice").await, before, "refused calls change nothing");

    let listed = viewer.coupons.list_member_coupons(list_coupons(PROGRAM, "alice")).await.expect("a viewer lists");
    assert_eq!(listed.into_inner().coupons, [coupon("coffee", 2)]);
    assert_eq!(viewer.member(PROGRAM, "alice").await, before, "a viewer reads the wallets");

    let receipt = operator.credits.add_credits(top_up("alice", "gift-card", "1.5")).await.expect("operator adds");
    assert_eq!(receipt.into_inner().balance, "11.5");
    assert_eq!(
        operator.coupons.use_coupon(redeem("alice", "coffee")).await.expect("operator uses").into_inner().remaining,
        1
    );
    let elsewhere = pb::GrantCouponsRequest { program_id: OTHER.into(), ..grant("bob", "coffee", 1) };
    refused(operator.coupons.grant_coupons(elsewhere).await, Code::PermissionDenied);
    let alice = admin.member(PROGRAM, "alice").await;
    assert_eq!(alice.credits, [credit("gift-card", "Gift card", "TWD", "11.5")]);
    assert_eq!(alice.coupons, [coupon("coffee", 1)]);
    refused(admin.members.get_member(get_member(OTHER, "bob")).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_show_credits_and_coupons_as_signed_changes_with_the_balance_after() {
    let (_server, mut client) = started("wallets-activities", &[PROGRAM]).await;
    client.credits.define_credit(define("gift-card", "Gift card", "TWD")).await.expect("define");
    let topped = pb::AddCreditsRequest { reference: "top-up".into(), ..top_up("alice", "gift-card", "10") };
    let topped = client.credits.add_credits(topped).await.expect("add").into_inner();
    let paid = client.credits.use_credits(pay("alice", "gift-card", "2.5")).await.expect("use").into_inner();
    let granted = client.coupons.grant_coupons(grant("alice", "coffee", 3)).await.expect("grant").into_inner();
    let used = client.coupons.use_coupon(redeem("alice", "coffee")).await.expect("use").into_inner();
    client.add(PROGRAM, "alice", 5).await;
    client.credits.add_credits(top_up("bob", "gift-card", "1")).await.expect("add");

    let list = |member: &str, kinds: &[&str]| pb::ListActivitiesRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        kinds: kinds.iter().map(|kind| (*kind).to_owned()).collect(),
        page_size: 100,
        ..Default::default()
    };
    // (transaction, kind, member, amount, balance after, remark, reference, source)
    let row = |activity: &pb::Activity| {
        (
            activity.transaction_id,
            activity.kind.clone(),
            activity.member_id.clone(),
            activity.amount.clone(),
            activity.balance_after.clone(),
            activity.remark.clone(),
            activity.reference.clone(),
            activity.source_id.clone(),
        )
    };
    let expect = |id: u64, kind: &str, amount: &str, after: &str, remark: &str, reference: &str, source: &str| {
        (
            id,
            kind.to_owned(),
            "alice".to_owned(),
            amount.to_owned(),
            after.to_owned(),
            remark.to_owned(),
            reference.to_owned(),
            source.to_owned(),
        )
    };
    let credits_rows = [
        expect(paid.transaction_id, "CREDITS", "-2.5", "7.5", "flat white", "", "gift-card"),
        expect(topped.transaction_id, "CREDITS", "10", "10", "top-up", "top-up", "gift-card"),
    ];
    let coupon_rows = [
        expect(used.transaction_id, "COUPONS", "-1", "2", "monday", "", "coffee"),
        expect(granted.transaction_id, "COUPONS", "3", "3", "Coffee", "", "coffee"),
    ];

    let listed = client.audit.list_activities(list("alice", &["CREDITS"])).await.expect("list").into_inner();
    assert_eq!(listed.activities.iter().map(row).collect::<Vec<_>>(), credits_rows);
    let listed = client.audit.list_activities(list("alice", &["COUPONS"])).await.expect("list").into_inner();
    assert_eq!(listed.activities.iter().map(row).collect::<Vec<_>>(), coupon_rows);
    let listed = client.audit.list_activities(list("alice", &["CREDITS", "COUPONS"])).await.expect("list").into_inner();
    let expected: Vec<_> = coupon_rows.iter().chain(&credits_rows).cloned().collect();
    assert_eq!(listed.activities.iter().map(row).collect::<Vec<_>>(), expected, "newest first");
    let listed = client.audit.list_activities(list("", &["CREDITS"])).await.expect("list").into_inner();
    let members: Vec<&str> = listed.activities.iter().map(|activity| activity.member_id.as_str()).collect();
    assert_eq!(members, ["bob", "alice", "alice"]);
    let listed = client.audit.list_activities(list("alice", &[])).await.expect("list").into_inner();
    assert_eq!(listed.activities.len(), 5, "every kind when none is named");

    let by_reference =
        pb::GetActivityRequest { program_id: PROGRAM.into(), transaction_id: 0, reference: "top-up".into() };
    let found = client.audit.get_activity(by_reference).await.expect("get by reference").into_inner();
    assert_eq!(row(&found), credits_rows[1]);
    let by_id = pb::GetActivityRequest {
        program_id: PROGRAM.into(),
        transaction_id: used.transaction_id,
        reference: String::new(),
    };
    assert_eq!(row(&client.audit.get_activity(by_id).await.expect("get by id").into_inner()), coupon_rows[0]);

    let unknown = list("alice", &["WALLETS"]);
    assert_invalid_field(&refused(client.audit.list_activities(unknown).await, Code::InvalidArgument), "kinds[0]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uses_never_overdraw_and_a_concurrent_reference_applies_once() {
    let (_server, mut client) = started("wallets-concurrent", &[PROGRAM]).await;
    client.credits.define_credit(define("gift-card", "Gift card", "TWD")).await.expect("define");
    client.credits.add_credits(top_up("alice", "gift-card", "5")).await.expect("add");
    client.coupons.grant_coupons(grant("alice", "coffee", 3)).await.expect("grant");

    let mut credit_uses = Vec::new();
    let mut coupon_uses = Vec::new();
    let mut repeats = Vec::new();
    for _ in 0..12 {
        let mut credits = client.credits.clone();
        credit_uses.push(tokio::spawn(async move { credits.use_credits(pay("alice", "gift-card", "1")).await }));
        let mut coupons = client.coupons.clone();
        coupon_uses.push(tokio::spawn(async move { coupons.use_coupon(redeem("alice", "coffee")).await }));
    }
    for _ in 0..8 {
        let mut credits = client.credits.clone();
        let request = pb::AddCreditsRequest { reference: "till-7".into(), ..top_up("bob", "gift-card", "2") };
        repeats.push(tokio::spawn(async move { credits.add_credits(request).await }));
    }

    let mut balances = Vec::new();
    for task in credit_uses {
        match task.await.expect("task") {
            Ok(receipt) => balances.push(receipt.into_inner().balance),
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    balances.sort();
    assert_eq!(balances, ["0", "1", "2", "3", "4"], "exactly the 5 credits held were used, each once");
    let mut remaining = Vec::new();
    for task in coupon_uses {
        match task.await.expect("task") {
            Ok(used) => remaining.push(used.into_inner().remaining),
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2], "exactly the 3 coupons held were used, each once");
    let mut receipts = Vec::new();
    for task in repeats {
        receipts.push(task.await.expect("task").expect("add with a reference").into_inner());
    }
    let originals: Vec<_> = receipts.iter().filter(|receipt| !receipt.duplicate).collect();
    assert_eq!(originals.len(), 1, "one add applied, the rest answered as duplicates: {receipts:?}");
    assert!(receipts.iter().all(|receipt| receipt.transaction_id == originals[0].transaction_id), "{receipts:?}");

    let alice = client.member(PROGRAM, "alice").await;
    assert_eq!(alice.credits, [credit("gift-card", "Gift card", "TWD", "0")]);
    assert_eq!(alice.coupons, [coupon("coffee", 0)]);
    assert_eq!(client.member(PROGRAM, "bob").await.credits, [credit("gift-card", "Gift card", "TWD", "2")]);
}
