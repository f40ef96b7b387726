//! VouchersService over gRPC (SPEC §6, §7, §10, §11): Echoss voucher and point
//! statement imports, shops and the voucher-statement report, against the real
//! `ledgerd`. An import is validated whole: one bad item refuses it all, with
//! every problem named `data[i].field`, and nothing is written.

mod support;

use ledger_grpc::pb;
use support::{Clients, refused, started, violations};
use tonic::Code;

/// 2021-02-17T02:06:55Z, the seed's time.
const SENT: i64 = 1_613_527_615;

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn voucher(brand_id: i64, identifier: &str, name: &str, line_id: &str) -> pb::VoucherStatementData {
    pb::VoucherStatementData {
        brand_id,
        promotion_id: 2,
        voucher_identifier: identifier.into(),
        voucher_number: format!("V00A004S{identifier}"),
        voucher_name: name.into(),
        line_id: line_id.into(),
        sent_at: at(SENT),
        used_at: None,
        cancelled_at: None,
        brand_manager_id: 0,
    }
}

fn point(brand_id: i64, line_id: &str, reason: &str, change: i64) -> pb::PointStatementData {
    pb::PointStatementData {
        brand_id,
        promotion_id: 0,
        line_id: line_id.into(),
        change_reason: reason.into(),
        point_change_record: change,
        changed_at: at(SENT),
        brand_manager_id: 0,
        reference: String::new(),
    }
}

async fn import(client: &mut Clients, data: Vec<pb::VoucherStatementData>) -> pb::ImportVoucherStatementsResponse {
    let request = pb::ImportVoucherStatementsRequest { data };
    client.vouchers.import_voucher_statements(request).await.expect("import vouchers").into_inner()
}

fn report(brand_id: i64) -> pb::ListVoucherStatementsRequest {
    pb::ListVoucherStatementsRequest { brand_id, ..Default::default() }
}

async fn list(client: &mut Clients, request: pb::ListVoucherStatementsRequest) -> pb::ListVoucherStatementsResponse {
    client.vouchers.list_voucher_statements(request).await.expect("report").into_inner()
}

fn identifiers(page: &pb::ListVoucherStatementsResponse) -> Vec<String> {
    page.statements.iter().map(|statement| statement.voucher_identifier.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voucher_statements_upsert_by_triple_and_keep_every_version_in_the_log() {
    let (_server, mut client) = started("vouchers-upsert", &["1"]).await;
    let first =
        import(&mut client, vec![voucher(1, "2223", "瓦城 288元", "alice"), voucher(1, "222", "瓦城", "bob")]).await;
    assert_eq!((first.created, first.updated), (2, 0));

    // The same triple again replaces the statement whole: used now, another member.
    let mut used = voucher(1, "2223", "瓦城 288元 平日好運金", "carol");
    used.used_at = at(SENT + 60);
    used.brand_manager_id = 3;
    let second = import(&mut client, vec![used, voucher(1, "9", "新", "dave")]).await;
    assert_eq!((second.created, second.updated), (1, 1));

    let request = pb::GetVoucherStatementRequest { brand_id: 1, promotion_id: 2, voucher_identifier: "2223".into() };
    let got = client.vouchers.get_voucher_statement(request).await.expect("get").into_inner();
    assert_eq!(got.version, 2, "the version counts the upserts");
    assert_eq!(got.state(), pb::VoucherState::Used);
    let statement = got.statement.expect("statement");
    assert_eq!(statement.line_id, "carol");
    assert_eq!(statement.voucher_name, "瓦城 288元 平日好運金");
    assert_eq!(statement.used_at, at(SENT + 60));
    assert_eq!(statement.version, 2);

    // Another promotion is another triple.
    let mut other = voucher(1, "2223", "x", "erin");
    other.promotion_id = 3;
    let third = import(&mut client, vec![other]).await;
    assert_eq!((third.created, third.updated), (1, 0));

    // Each version is a VOUCHERS activity of its member; balance_after is the version.
    let request = pb::ListActivitiesRequest {
        program_id: "1".into(),
        kinds: vec!["VOUCHERS".into()],
        page_size: 100,
        ..Default::default()
    };
    let activities = client.audit.list_activities(request).await.expect("activities").into_inner().activities;
    assert_eq!(activities.len(), 5);
    assert_eq!((activities[0].member_id.as_str(), activities[0].balance_after.as_str()), ("erin", "1"));
    let carol = activities.iter().find(|activity| activity.member_id == "carol").expect("carol's version");
    assert_eq!((carol.balance_after.as_str(), carol.source_id.as_str()), ("2", "2/2223"));

    let missing = pb::GetVoucherStatementRequest { brand_id: 1, promotion_id: 9, voucher_identifier: "2223".into() };
    refused(client.vouchers.get_voucher_statement(missing).await, Code::NotFound);

    // Both versions of the triple are in the log.
    let mut feed = client
        .audit
        .stream_events(pb::StreamEventsRequest { from_sequence: 1, program_id: "1".into() })
        .await
        .expect("feed")
        .into_inner();
    let mut versions = Vec::new();
    while versions.len() < 5 {
        let event = feed.message().await.expect("event").expect("more events");
        if event.kind != "VoucherRecorded" {
            continue;
        }
        if event.payload_json.contains("\"voucher_identifier\":\"9\"") {
            break;
        }
        if event.payload_json.contains("\"2223\"") {
            versions.push(event.payload_json);
        }
    }
    assert_eq!(versions.len(), 2, "the log keeps every version: {versions:?}");
    assert!(versions[0].contains("\"version\":1") && versions[1].contains("\"version\":2"), "{versions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_import_lists_every_problem_by_field_and_writes_nothing() {
    let (_server, mut client) = started("vouchers-invalid", &["1", "0"]).await;
    import(&mut client, vec![voucher(1, "keep", "瓦城", "alice")]).await;
    let before = list(&mut client, report(1)).await;

    let mut broken_time = voucher(1, "b", "瓦城", "bob");
    broken_time.sent_at = None;
    let data = vec![
        voucher(1, "fine", "瓦城", "carol"),
        voucher(1, "", "瓦城", ""),
        broken_time,
        pb::VoucherStatementData { promotion_id: -1, ..voucher(1, "c", "瓦城", "dave") },
    ];
    let status = refused(
        client.vouchers.import_voucher_statements(pb::ImportVoucherStatementsRequest { data }).await,
        Code::InvalidArgument,
    );
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(
        fields,
        ["data[1].voucher_identifier", "data[1].line_id", "data[2].sent_at", "data[3].promotion_id"],
        "{status:?}"
    );
    assert_eq!(list(&mut client, report(1)).await, before, "nothing of a refused import is written");

    // Point statements: an unknown change reason and a zero change, both listed.
    let data = vec![point(0, "alice", "集點", 5), point(0, "bob", "贈送", 5), point(0, "carol", "兌換", 0)];
    let status = refused(
        client.vouchers.import_point_statements(pb::ImportPointStatementsRequest { data }).await,
        Code::InvalidArgument,
    );
    let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, ["data[1].change_reason", "data[2].point_change_record"], "{status:?}");
    let alice = pb::GetMemberRequest { program_id: "0".into(), member_id: "alice".into(), as_of: None };
    refused(client.members.get_member(alice).await, Code::NotFound);

    // An unknown brand is NOT_FOUND, naming the item.
    let status = refused(
        client
            .vouchers
            .import_voucher_statements(pb::ImportVoucherStatementsRequest {
                data: vec![voucher(1, "x", "瓦城", "alice"), voucher(5, "y", "瓦城", "bob")],
            })
            .await,
        Code::NotFound,
    );
    assert!(status.message().contains("data[1].brand_id"), "{status:?}");
    let empty = pb::ImportVoucherStatementsRequest { data: Vec::new() };
    refused(client.vouchers.import_voucher_statements(empty).await, Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_program_7_cannot_import_or_read_statements_of_brand_8() {
    let (server, mut admin) = started("vouchers-scope", &["7", "8"]).await;
    let operator = admin.token(pb::Role::Operator, "7").await;
    let viewer = admin.token(pb::Role::Viewer, "7").await;
    let mut operator = server.clients(&operator).await;
    let mut viewer = server.clients(&viewer).await;

    import(&mut operator, vec![voucher(7, "a", "瓦城", "alice")]).await;
    let foreign = pb::ImportVoucherStatementsRequest { data: vec![voucher(8, "a", "瓦城", "alice")] };
    refused(operator.vouchers.import_voucher_statements(foreign).await, Code::PermissionDenied);
    // One foreign item among its own refuses the whole import.
    let mixed = pb::ImportVoucherStatementsRequest {
        data: vec![voucher(7, "b", "瓦城", "bob"), voucher(8, "b", "瓦城", "bob")],
    };
    refused(operator.vouchers.import_voucher_statements(mixed).await, Code::PermissionDenied);
    let points = pb::ImportPointStatementsRequest { data: vec![point(8, "alice", "集點", 5)] };
    refused(operator.vouchers.import_point_statements(points).await, Code::PermissionDenied);
    refused(operator.vouchers.list_voucher_statements(report(8)).await, Code::PermissionDenied);
    let shop = pb::DefineShopRequest { brand_id: 8, shop_id: 3, name: "x".into() };
    refused(operator.vouchers.define_shop(shop).await, Code::PermissionDenied);

    // A viewer reads its brand's report but may not import.
    assert_eq!(identifiers(&list(&mut viewer, report(7)).await), ["a"]);
    let write = pb::ImportVoucherStatementsRequest { data: vec![voucher(7, "c", "瓦城", "carol")] };
    refused(viewer.vouchers.import_voucher_statements(write).await, Code::PermissionDenied);

    assert_eq!(list(&mut admin, report(8)).await.total_size, 0, "nothing reached brand 8");
    assert_eq!(list(&mut admin, report(7)).await.total_size, 1, "only the operator's own import was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_filters_sorts_pages_and_counts() {
    let (_server, mut client) = started("vouchers-report", &["1"]).await;
    for (shop_id, name) in [(3, "信義店"), (4, "大安店")] {
        let shop = pb::DefineShopRequest { brand_id: 1, shop_id, name: name.into() };
        client.vouchers.define_shop(shop).await.expect("define shop");
    }
    // Five statements sent a day apart; two used at shop 3 or 4, one cancelled.
    let mut data = Vec::new();
    for day in 0..5i64 {
        let name = if day % 2 == 0 { "瓦城 288元" } else { "星巴克 100元" };
        let mut item = voucher(1, &format!("v{day}"), name, &format!("m{day}"));
        item.sent_at = at(SENT + day * 86_400);
        data.push(item);
    }
    data[1].used_at = at(SENT + 10 * 86_400);
    data[1].brand_manager_id = 4;
    data[3].used_at = at(SENT + 9 * 86_400);
    data[3].brand_manager_id = 3;
    data[4].cancelled_at = at(SENT + 8 * 86_400);
    import(&mut client, data).await;

    let page = list(&mut client, report(1)).await;
    assert_eq!(identifiers(&page), ["v4", "v3", "v2", "v1", "v0"], "newest sent first by default");
    assert_eq!(page.total_size, 5);
    assert!(page.next_page_token.is_empty());
    let states: Vec<i32> = page.statements.iter().map(|s| s.state).collect();
    let expected = [pb::VoucherState::Cancelled, pb::VoucherState::Used, pb::VoucherState::Issued];
    assert_eq!(states[..3], expected.map(i32::from));
    assert_eq!(page.statements[1].shop_name, "信義店");

    let ascending = list(&mut client, pb::ListVoucherStatementsRequest { ascending: true, ..report(1) }).await;
    assert_eq!(identifiers(&ascending), ["v0", "v1", "v2", "v3", "v4"]);
    let by_used = list(&mut client, pb::ListVoucherStatementsRequest { order_by: "used_at".into(), ..report(1) }).await;
    assert_eq!(identifiers(&by_used)[..2], ["v1", "v3"], "latest used first; unused after");
    let by_shop = list(
        &mut client,
        pb::ListVoucherStatementsRequest { order_by: "shop_name".into(), ascending: true, ..report(1) },
    )
    .await;
    let shops: Vec<&str> = by_shop.statements.iter().map(|s| s.shop_name.as_str()).collect();
    assert_eq!(shops[3..], ["信義店", "大安店"], "shops sort by name after statements without one: {shops:?}");

    let named = list(&mut client, pb::ListVoucherStatementsRequest { voucher_name: "瓦城".into(), ..report(1) }).await;
    assert_eq!((identifiers(&named), named.total_size), (vec!["v4".into(), "v2".into(), "v0".into()], 3));
    let shop = list(&mut client, pb::ListVoucherStatementsRequest { shop_id: Some(3), ..report(1) }).await;
    assert_eq!(identifiers(&shop), ["v3"]);
    // v2 was sent 2021-02-19 02:06:55Z, which is still the 19th at +08:00; v1 on the 18th.
    let day =
        pb::ListVoucherStatementsRequest { sent_on: "2021-02-19".into(), utc_offset: "+08:00".into(), ..report(1) };
    assert_eq!(identifiers(&list(&mut client, day).await), ["v2"]);
    let used_day = pb::ListVoucherStatementsRequest { used_on: "2021-02-27".into(), ..report(1) };
    assert_eq!(identifiers(&list(&mut client, used_day).await), ["v1"]);

    // Pages of two walk every statement once, and carry the total.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListVoucherStatementsRequest { page_size: 2, page_token: token, ..report(1) };
        let page = list(&mut client, request).await;
        assert_eq!(page.total_size, 5);
        seen.extend(identifiers(&page));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ["v4", "v3", "v2", "v1", "v0"]);

    for (field, request) in [
        ("order_by", pb::ListVoucherStatementsRequest { order_by: "price".into(), ..report(1) }),
        ("sent_on", pb::ListVoucherStatementsRequest { sent_on: "2021/02/19".into(), ..report(1) }),
        (
            "utc_offset",
            pb::ListVoucherStatementsRequest { sent_on: "2021-02-19".into(), utc_offset: "8".into(), ..report(1) },
        ),
        ("page_token", pb::ListVoucherStatementsRequest { page_token: "garbage".into(), ..report(1) }),
    ] {
        let status = refused(client.vouchers.list_voucher_statements(request).await, Code::InvalidArgument);
        let fields: Vec<String> = violations(&status).into_iter().map(|(field, _)| field).collect();
        assert_eq!(fields, [field], "{status:?}");
    }
    refused(client.vouchers.list_voucher_statements(report(99)).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_statements_apply_in_order_once_and_move_the_qualifying_amount_by_reason() {
    let (_server, mut client) = started("point-statements", &["0"]).await;
    // The seed's body: brand 0, two changes of -2 (集點 and 取消), once both members
    // hold at least 2 points.
    let seed = vec![
        pb::PointStatementData { changed_at: at(1_614_528_000), ..point(0, "b70c3e08", "集點", -2) },
        point(0, "91d1d21e", "取消", -2),
    ];
    let status = refused(
        client.vouchers.import_point_statements(pb::ImportPointStatementsRequest { data: seed.clone() }).await,
        Code::InvalidArgument,
    );
    let found = violations(&status);
    assert_eq!(found.len(), 2, "{status:?}");
    assert_eq!(found[0].0, "data[0].point_change_record");
    assert!(found[0].1.contains("-2"), "the violation names the balance it would leave: {found:?}");
    for member in ["b70c3e08", "91d1d21e"] {
        client.add("0", member, 5).await;
    }
    let applied = client.vouchers.import_point_statements(pb::ImportPointStatementsRequest { data: seed }).await;
    assert_eq!(applied.expect("the seed imports").into_inner().applied, 2);
    let member = client.member("0", "b70c3e08").await;
    assert_eq!((member.points, member.qualifying_amount), (3, 3), "a negative collect lowers both");

    // Items apply in order: a later redeem spends what an earlier collect brought.
    let data = vec![point(0, "new", "COLLECT", 10), point(0, "new", "兌換", -7), point(0, "new", "cancel", -1)];
    let applied = client.vouchers.import_point_statements(pb::ImportPointStatementsRequest { data }).await;
    assert_eq!(applied.expect("import").into_inner().applied, 3);
    let member = client.member("0", "new").await;
    assert_eq!(member.points, 2);
    assert_eq!(member.qualifying_amount, 9, "collect and cancel move it, redeem does not");

    // A reference makes a re-import apply once.
    let with_reference =
        |reference: &str| pb::PointStatementData { reference: reference.into(), ..point(0, "r", "集點", 4) };
    let file = pb::ImportPointStatementsRequest { data: vec![with_reference("s-1"), with_reference("s-2")] };
    let first = client.vouchers.import_point_statements(file.clone()).await.expect("first").into_inner();
    let again = client.vouchers.import_point_statements(file).await.expect("again").into_inner();
    assert_eq!((first.applied, again.applied), (2, 0));
    assert_eq!(client.member("0", "r").await.points, 8);

    // Activities show the statements as points activities.
    let request = pb::ListActivitiesRequest {
        program_id: "0".into(),
        member_id: "new".into(),
        kinds: vec!["POINTS".into()],
        ..Default::default()
    };
    let activities = client.audit.list_activities(request).await.expect("activities").into_inner().activities;
    let amounts: Vec<&str> = activities.iter().map(|activity| activity.amount.as_str()).collect();
    assert_eq!(amounts, ["-1", "-7", "10"]);
    assert_eq!(activities[0].balance_after, "2");
}
