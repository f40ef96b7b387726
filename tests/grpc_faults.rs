//! Storage faults of a running `ledgerd`, from outside: the server's hidden
//! `--fault-file` makes every flush and sync fail while the file names an error.
//! Writes get UNAVAILABLE naming the cause, reads keep answering, health says the
//! write services are NOT_SERVING, writes resume by themselves once the fault
//! clears, and SIGTERM ends the server whatever state its disk is in.

mod support;

use ledger_grpc::pb;
use support::{Clients, Server};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const PROGRAM: &str = "cafe";

fn add(member: &str, points: i64, reference: &str) -> pb::AddPointsRequest {
    pb::AddPointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "visit".into(),
        reference: reference.into(),
        ..Default::default()
    }
}

async fn status(server: &Server, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(server.channel().await);
    let reply = health.check(HealthCheckRequest { service: service.into() }).await.expect("health check");
    reply.into_inner().status()
}

/// Waits until the health of `service` is `wanted`.
async fn until_status(server: &Server, service: &str, wanted: ServingStatus) {
    let patience = support::Patience::new(&format!("health of {service:?} {wanted:?}"));
    while status(server, service).await != wanted {
        patience.next().await;
    }
}

/// A member's points; retried while the server folds its state back after a fault.
async fn points(clients: &mut Clients, member: &str) -> i64 {
    let patience = support::Patience::new("a read during a fault");
    loop {
        match clients.members.get_member(support::get_member(PROGRAM, member)).await {
            Ok(reply) => return reply.into_inner().points,
            Err(status) if status.code() == Code::Unavailable => patience.next().await,
            Err(status) => panic!("get member {member}: {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_reports_health_and_clears_by_itself() {
    let dir = support::fresh_dir("faults");
    let fault = dir.with_extension("fault");
    let fault_flag = fault.to_str().expect("utf-8 path").to_owned();
    let flags = ["--fault-file", fault_flag.as_str(), "--fault-probe-ms", "20", "--expiry-sweep-secs", "0"];
    let server = Server::start_in(dir, &flags);
    let mut clients = server.admin().await;
    clients.create_program(PROGRAM).await;
    clients.add(PROGRAM, "alice", 100).await;
    clients.add(PROGRAM, "bob", 50).await;
    let points_service = "ledger.v1.PointsService";
    assert_eq!(status(&server, points_service).await, ServingStatus::Serving);

    std::fs::write(&fault, "ENOSPC").expect("break the disk");
    let refused = clients.points.add_points(add("alice", 10, "a2")).await.expect_err("a write on a full disk");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("No space left on device"), "names the cause: {refused:?}");
    assert_eq!(points(&mut clients, "bob").await, 50, "a member no failed write touched");
    assert_eq!(points(&mut clients, "alice").await, 100, "the refused add is not there");
    until_status(&server, points_service, ServingStatus::NotServing).await;
    assert_eq!(status(&server, "").await, ServingStatus::Serving, "the server serves reads");
    assert_eq!(status(&server, "ledger.v1.MembersService").await, ServingStatus::Serving);

    std::fs::remove_file(&fault).expect("mend the disk");
    until_status(&server, points_service, ServingStatus::Serving).await;
    let receipt = clients.points.add_points(add("alice", 10, "a2")).await.expect("writes resume").into_inner();
    assert_eq!((receipt.balance, receipt.duplicate), (110, false));

    // A stop while the disk is broken ends the process; the next start has
    // every acknowledged write.
    std::fs::write(&fault, "EIO").expect("break the disk again");
    let refused = clients.points.add_points(add("carol", 1, "c1")).await.expect_err("a write on a failing disk");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let dir = server.data_dir.clone();
    drop(clients);
    tokio::task::spawn_blocking(move || server.stop()).await.expect("stop");
    std::fs::remove_file(&fault).expect("mend the disk");
    let server = Server::start_in(dir, &["--expiry-sweep-secs", "0"]);
    let mut clients = server.admin().await;
    assert_eq!(points(&mut clients, "alice").await, 110);
    assert_eq!(points(&mut clients, "bob").await, 50);
    let verified = clients.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify").into_inner();
    assert!(verified.ok, "{}", verified.first_mismatch);
    assert_eq!(verified.events, 4, "the program and three acknowledged adds, nothing refused");
}

/// A small file system the test mounts (tmpfs; root only): when it can, the
/// real thing. Unmounted on drop.
struct SmallFileSystem(std::path::PathBuf);

impl SmallFileSystem {
    /// `None` where mounting is not allowed (not root, a sandbox).
    fn mount(name: &str, size: &str) -> Option<SmallFileSystem> {
        let point = support::fresh_dir(name);
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&point)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(SmallFileSystem(point))
    }

    /// Takes all but `left` bytes of what is free with a file of its own, so that
    /// what the ledger frees on a restart (sled reclaims segments as it opens)
    /// cannot lift the disk back over the ledger's reserve.
    fn fill_to(&self, left: u64) {
        let stats = rustix::fs::statvfs(&self.0).expect("statvfs");
        let free = stats.f_bavail * stats.f_frsize;
        let ballast = std::fs::File::create(self.0.join("ballast")).expect("ballast file");
        let bytes = vec![1u8; usize::try_from(free.saturating_sub(left)).expect("fits")];
        // tmpfs allocates what is written; a sparse length would take nothing.
        std::io::Write::write_all(&mut &ballast, &bytes).expect("ballast written");
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("remount");
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The real full disk, with the server's reserve (4 MiB of a 16 MiB tmpfs): writes
/// are refused before sled itself meets ENOSPC, reads answer (also from a server
/// started on the full disk), and once the file system grows, writes resume
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_file_system_refuses_writes_and_writes_resume_when_it_grows() {
    let Some(small) = SmallFileSystem::mount("faults-tmpfs", "16m") else {
        println!("faults: cannot mount a tmpfs here (not root?): only the fault seam is tested");
        return;
    };
    let flags = ["--disk-free-min-mib", "4", "--fault-probe-ms", "20", "--expiry-sweep-secs", "0"];
    let server = Server::start_in(small.0.join("data"), &flags);
    let mut clients = server.admin().await;
    clients.create_program(PROGRAM).await;
    clients.add(PROGRAM, "alice", 100).await;
    let refused = fill(&mut clients).await;
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("nearly full"), "names the cause: {refused:?}");
    let points_service = "ledger.v1.PointsService";
    until_status(&server, points_service, ServingStatus::NotServing).await;
    assert_eq!(points(&mut clients, "alice").await, 100, "reads answer on a full disk");

    // A server started on the full disk serves reads too. The disk is held full
    // across the restart: a clean stop and sled's open free a little, which must
    // not decide what this test sees.
    drop(clients);
    small.fill_to(1 << 20);
    let (server, mut clients, _) = restart(server, &flags).await;
    until_status(&server, points_service, ServingStatus::NotServing).await;
    assert_eq!(points(&mut clients, "alice").await, 100, "reads after a start on a full disk");
    let refused = clients.points.add_points(add("alice", 10, "after")).await.expect_err("still full");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    small.resize("64m");
    until_status(&server, points_service, ServingStatus::Serving).await;
    let receipt = clients.points.add_points(add("alice", 10, "after")).await.expect("writes resume").into_inner();
    assert_eq!(receipt.balance, 110);
    let verified = clients.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify").into_inner();
    assert!(verified.ok, "{}", verified.first_mismatch);
    drop(clients);
    let flags = ["--disk-free-min-mib", "4", "--expiry-sweep-secs", "0"];
    let (server, mut clients, stopped) = restart(server, &flags).await;
    assert!(stopped.success());
    assert_eq!(points(&mut clients, "alice").await, 110, "after a restart");
    drop(clients);
    tokio::task::spawn_blocking(move || server.stop()).await.expect("stop");
}

/// Without the reserve sled itself meets ENOSPC, which sled 0.34 never gets
/// over in a running process: writes stay refused with the cause named, health
/// says so, SIGTERM still ends the server (within its close grace), and a
/// restart once there is room has every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_meeting_a_full_disk_needs_a_restart_and_a_stop_still_ends() {
    let Some(small) = SmallFileSystem::mount("faults-tmpfs-sled", "4m") else {
        println!("faults: cannot mount a tmpfs here (not root?): only the fault seam is tested");
        return;
    };
    let flags = ["--disk-free-min-mib", "0", "--fault-probe-ms", "20", "--expiry-sweep-secs", "0"];
    let server = Server::start_in(small.0.join("data"), &flags);
    let mut clients = server.admin().await;
    clients.create_program(PROGRAM).await;
    clients.add(PROGRAM, "alice", 100).await;
    let refused = fill(&mut clients).await;
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("No space left on device"), "names the cause: {refused:?}");
    until_status(&server, "ledger.v1.PointsService", ServingStatus::NotServing).await;
    let dir = server.data_dir.clone();
    drop(clients);
    tokio::task::spawn_blocking(move || server.stop()).await.expect("a stop ends");
    small.resize("64m");
    let server = Server::start_in(dir, &["--expiry-sweep-secs", "0"]);
    let mut clients = server.admin().await;
    assert_eq!(points(&mut clients, "alice").await, 100, "after a restart");
    let verified = clients.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify").into_inner();
    assert!(verified.ok, "{}", verified.first_mismatch);
    drop(clients);
    tokio::task::spawn_blocking(move || server.stop()).await.expect("stop");
}

/// Stops `server` with SIGTERM (which must end it, whatever its disk) and starts
/// it again on the same directory with `flags`.
/// Returns how the stopped server exited.
async fn restart(server: Server, flags: &[&str]) -> (Server, Clients, std::process::ExitStatus) {
    let dir = server.data_dir.clone();
    let status = tokio::task::spawn_blocking(move || server.stop()).await.expect("a stop ends");
    let server = Server::start_in(dir, flags);
    let clients = server.admin().await;
    (server, clients, status)
}

/// Adds bulks of 100 items with long remarks until one is refused; returns why.
async fn fill(clients: &mut Clients) -> tonic::Status {
    let remark = "r".repeat(1_000);
    for round in 0..2_000 {
        let items = (0..100)
            .map(|item| pb::BulkAddItem {
                member_id: format!("m{item}"),
                points: 1,
                remark: remark.clone(),
                reference: format!("fill-{round}-{item}"),
                ..Default::default()
            })
            .collect();
        let request = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items, atomic: true };
        if let Err(status) = clients.points.bulk_add_points(request).await {
            return status;
        }
    }
    panic!("the small file system never filled up");
}
