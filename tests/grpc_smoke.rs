//! The server end to end in its simplest use: first start, a program, an add, a read.

mod support;

use ledger_grpc::pb;
use support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_writes_an_admin_token_that_can_create_programs_and_add_points() {
    let server = Server::start("smoke");
    let mode = std::fs::metadata(server.data_dir.join("admin.token")).expect("admin.token").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "admin.token is readable only by its owner"
    );

    let mut client = server.admin().await;
    client.create_program("cafe").await;
    let receipt = client.add("cafe", "alice", 120).await;
    assert_eq!((receipt.transaction_id, receipt.points, receipt.balance), (2, 120, 120));
    let alice = client.member("cafe", "alice").await;
    assert_eq!(alice.points, 120);
    let programs = client.admin.list_programs(pb::ListProgramsRequest {}).await.expect("list").into_inner();
    assert_eq!(programs.programs.len(), 1);
    assert!(server.stop().success(), "SIGTERM stops ledgerd cleanly");
}
