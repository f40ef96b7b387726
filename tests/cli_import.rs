//! The `ledger` command line against the real `ledgerd`: the two example request
//! bodies of the Echoss seed import as they are, and broken copies of them print
//! every problem by field (`data.0.line_id`, the seed's way) and write nothing.

mod support;

use ledger_grpc::pb;
use std::path::{Path, PathBuf};
use std::process::Output;
use support::Server;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/echoss").join(name)
}

/// Runs `ledger` against the server with its admin token.
fn ledger(server: &Server, args: &[&str]) -> Output {
    let token_file = server.data_dir.join("admin.token");
    std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("--addr")
        .arg(&server.address)
        .arg("--token-file")
        .arg(&token_file)
        .args(args)
        .output()
        .expect("run ledger")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn import(server: &Server, kind: &str, file: &Path) -> Output {
    ledger(server, &["import", kind, file.to_str().expect("utf-8 path")])
}

async fn statements(client: &mut support::Clients, brand_id: i64) -> u64 {
    let request = pb::ListVoucherStatementsRequest { brand_id, ..Default::default() };
    client.vouchers.list_voucher_statements(request).await.expect("report").into_inner().total_size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_voucher_statements_import_as_they_are_and_a_broken_copy_writes_nothing() {
    let server = Server::start("cli-import-vouchers");
    let mut client = server.admin().await;
    client.create_program("1").await;

    let broken = import(&server, "vouchers", &fixture("voucher_statements_broken.json"));
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    let printed = text(&broken);
    for field in ["data.0.brand_id", "data.0.line_id", "data.0.used_at", "data.1.voucher_number", "data.1.sent_at"] {
        assert!(printed.contains(field), "the problems name {field}: {printed}");
    }
    assert_eq!(statements(&mut client, 1).await, 0, "a broken file writes nothing");

    let imported = import(&server, "vouchers", &fixture("voucher_statements.json"));
    assert!(imported.status.success(), "{}", text(&imported));
    assert_eq!(statements(&mut client, 1).await, 2);
    let request = pb::GetVoucherStatementRequest { brand_id: 1, promotion_id: 2, voucher_identifier: "2223".into() };
    let got = client.vouchers.get_voucher_statement(request).await.expect("get").into_inner();
    assert_eq!(got.state(), pb::VoucherState::Cancelled, "cancelled_at wins over used_at");

    // The same file again updates both statements: version 2, still two statements.
    let again = import(&server, "vouchers", &fixture("voucher_statements.json"));
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(statements(&mut client, 1).await, 2);
    let request = pb::GetVoucherStatementRequest { brand_id: 1, promotion_id: 2, voucher_identifier: "222".into() };
    assert_eq!(client.vouchers.get_voucher_statement(request).await.expect("get").into_inner().version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_point_statements_import_once_program_0_and_its_members_hold_two_points() {
    let server = Server::start("cli-import-points");
    let mut client = server.admin().await;
    client.create_program("0").await;
    let seed = fixture("point_statements.json");
    let members = ["b70c3e08-57a0-4a57-87a8-d32cb9677a1f", "91d1d21e-3213-4930-9429-96de5fca67e2"];

    let broken = import(&server, "point-statements", &fixture("point_statements_broken.json"));
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    let printed = text(&broken);
    for field in ["data.0.line_id", "data.0.change_reason", "data.1.brand_id", "data.1.point_change_record"] {
        assert!(printed.contains(field), "the problems name {field}: {printed}");
    }

    // Before the members hold points, the server refuses the seed by field.
    let early = import(&server, "point-statements", &seed);
    assert_eq!(early.status.code(), Some(1), "{}", text(&early));
    let printed = text(&early);
    assert!(
        printed.contains("data.0.point_change_record") && printed.contains("data.1.point_change_record"),
        "{printed}"
    );
    let request = pb::GetMemberRequest { program_id: "0".into(), member_id: members[0].into(), as_of: None };
    assert!(client.members.get_member(request).await.is_err(), "a refused import creates no member");

    for member in members {
        client.add("0", member, 2).await;
    }
    let imported = import(&server, "point-statements", &seed);
    assert!(imported.status.success(), "{}", text(&imported));
    for member in members {
        let found = client.member("0", member).await;
        assert_eq!(found.points, 0, "{member}: the -2 applied");
    }
}
