//! Online backup and restore against the real servers (SPEC §18, issue 15 item 3):
//! `ledger backup` runs while several clients write (single adds, bulks, holds)
//! to a `ledgerd` that checkpoints every few events; `ledger restore` makes a new
//! directory; a second `ledgerd` on it serves exactly the events 1..S with the
//! first server's hashes, VerifyLog agrees with the backup's head hash, and its
//! members are the first ledger's replayed to S. A damaged file is refused by
//! name and writes nothing; a token that is not ADMIN is refused.

mod support;

use ledger_grpc::pb;
use ledger_store::Until;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{Clients, Server, fresh_dir, refused};
use tonic::Code;

const PROGRAM: &str = "cafe";

/// Runs `ledger` with `args` and no LEDGER_* of the caller's environment.
fn ledger(args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"));
    for name in ["LEDGER_ADDR", "LEDGER_TOKEN", "LEDGER_TOKEN_FILE"] {
        command.env_remove(name);
    }
    command.args(args).output().expect("run ledger")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Writes until `stop`: single adds, bulks of 20, or holds (every other one voided).
async fn load(mut client: Clients, kind: usize, stop: Arc<AtomicBool>) -> u64 {
    let mut writes = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let n = writes;
        match kind {
            0 => {
                client.add(PROGRAM, &format!("m{}", n % 50), 7).await;
            }
            1 => {
                let items = (0..20)
                    .map(|i| pb::BulkAddItem {
                        member_id: format!("b{}", (n * 20 + i) % 80),
                        points: 2,
                        remark: "bulk".into(),
                        reference: format!("bulk-{n}-{i}"),
                        ..Default::default()
                    })
                    .collect();
                let bulk = pb::BulkAddPointsRequest { program_id: PROGRAM.into(), items, atomic: false };
                client.points.bulk_add_points(bulk).await.expect("bulk");
            }
            _ => {
                let hold = pb::HoldPointsRequest {
                    program_id: PROGRAM.into(),
                    member_id: format!("m{}", n % 50),
                    points: 1,
                    remark: "pending".into(),
                    reference: format!("hold-{n}"),
                    expires_at: None,
                };
                let held = client.holds.hold_points(hold).await.expect("hold").into_inner();
                if n.is_multiple_of(2) {
                    let void = pb::VoidHoldRequest {
                        program_id: PROGRAM.into(),
                        hold_id: held.hold_id,
                        remark: "voided".into(),
                    };
                    client.holds.void_hold(void).await.expect("void");
                }
            }
        }
        writes += 1;
    }
    writes
}

async fn head(client: &mut Clients) -> pb::VerifyLogResponse {
    client.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify log").into_inner()
}

/// Every event the server has, through ReadEvents.
async fn events(client: &mut Clients) -> Vec<pb::Event> {
    let request = pb::StreamEventsRequest { from_sequence: 1, program_id: String::new() };
    let mut stream = client.audit.read_events(request).await.expect("read events").into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.expect("event") {
        events.push(event);
    }
    events
}

/// (points, held points, qualifying amount) by member, through ListMembers.
async fn members(client: &mut Clients) -> BTreeMap<String, (i64, i64, i64)> {
    let mut found = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListMembersRequest { program_id: PROGRAM.into(), page_size: 100, page_token, offset: 0 };
        let page = client.members.list_members(request).await.expect("list members").into_inner();
        for member in page.members {
            found.insert(member.member_id, (member.points, member.held_points, member.qualifying_amount));
        }
        if page.next_page_token.is_empty() {
            return found;
        }
        page_token = page.next_page_token;
    }
}

/// One line `name: value` of the CLI's text reply.
fn field<'a>(output: &'a str, name: &str) -> &'a str {
    let line = output.lines().find(|line| line.trim_start().starts_with(&format!("{name}:")));
    let line = line.unwrap_or_else(|| panic!("no {name} in {output}"));
    line.split_once(':').map(|(_, value)| value.trim()).expect("name: value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_to_exactly_its_sequence_and_verifies() {
    let first_dir = fresh_dir("backup-first");
    // A checkpoint every few events, so that they run while the backup copies.
    let small = ["--checkpoint-events", "20", "--checkpoint-interval-ms", "5", "--expiry-sweep-secs", "0"];
    let first = Server::start_in(first_dir.clone(), &small);
    let mut admin = first.admin().await;
    admin.create_program(PROGRAM).await;
    for n in 0..50 {
        admin.add(PROGRAM, &format!("m{n}"), 100).await;
    }
    let viewer = admin.token(pb::Role::Viewer, PROGRAM).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for kind in 0..3 {
        writers.push(tokio::spawn(load(first.admin().await, kind, stop.clone())));
    }
    // Under way before the backup starts.
    let started = head(&mut admin).await.events;
    while head(&mut admin).await.events < started + 300 {
        tokio::task::yield_now().await;
    }
    let outputs = fresh_dir("backup-files");
    let file = outputs.join("ledger.backup");
    let token_file = first.data_dir.join("admin.token");
    let address = first.address.clone();
    let (file_arg, token_arg) = (path(&file).to_owned(), path(&token_file).to_owned());
    let backed_up = tokio::task::spawn_blocking(move || {
        ledger(&["--addr", &address, "--token-file", &token_arg, "backup", &file_arg])
    })
    .await
    .expect("ledger backup");
    assert!(backed_up.status.success(), "{}", text(&backed_up));
    let printed = text(&backed_up);
    let s: u64 = field(&printed, "sequence").parse().expect("a sequence");
    let backup_hash = field(&printed, "head_hash").to_owned();
    assert_eq!(field(&printed, "bytes"), std::fs::metadata(&file).expect("the file").len().to_string());
    assert!(!outputs.join("ledger.backup.partial").exists(), "the partial file was renamed");
    // More writes after the backup, then the load stops.
    while head(&mut admin).await.events < s + 200 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        assert!(writer.await.expect("writer") > 0, "every kind of writer wrote");
    }

    // Only ADMIN may take a backup.
    let mut as_viewer = first.clients(&viewer).await;
    let stream = as_viewer.admin.backup(pb::BackupRequest {}).await;
    refused(stream.map(|response| response.map(|_| ())), Code::PermissionDenied);

    let original = events(&mut admin).await;
    assert!(original.len() > usize::try_from(s).expect("fits"), "the first ledger went on past the backup");
    drop((admin, as_viewer));
    assert!(first.stop().success());
    let replayed = ledger_store::audit::replay_dir(&first_dir, Until::Sequence(s), |_| {}).expect("replay to S");
    assert_eq!(replayed.events, s);
    assert_eq!(replayed.head_hash, backup_hash);

    // A flipped byte: refused by name, nothing written.
    let damaged = outputs.join("damaged.backup");
    let mut bytes = std::fs::read(&file).expect("read the backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&damaged, &bytes).expect("write the damaged copy");
    let refused_dir = outputs.join("refused");
    let refused_restore = ledger(&["restore", path(&damaged), "--data-dir", path(&refused_dir)]);
    assert!(!refused_restore.status.success(), "{}", text(&refused_restore));
    assert!(text(&refused_restore).contains("damaged"), "{}", text(&refused_restore));
    assert!(!refused_dir.exists(), "nothing written for a damaged backup");

    let second_dir = outputs.join("restored");
    let restored = ledger(&["restore", path(&file), "--data-dir", path(&second_dir)]);
    assert!(restored.status.success(), "{}", text(&restored));
    assert_eq!(field(&text(&restored), "sequence"), s.to_string());
    assert_eq!(field(&text(&restored), "head_hash"), backup_hash);
    // The backup holds token hashes, not admin.token: its operator keeps that.
    std::fs::copy(&token_file, second_dir.join("admin.token")).expect("put admin.token back");

    let second = Server::start_in(second_dir, &["--expiry-sweep-secs", "0"]);
    let mut admin = second.admin().await;
    let verified = head(&mut admin).await;
    assert!(verified.ok, "{}", verified.first_mismatch);
    assert_eq!(verified.events, s);
    assert_eq!(verified.head_hash, backup_hash);
    let restored_events = events(&mut admin).await;
    assert_eq!(restored_events.len(), usize::try_from(s).expect("fits"), "exactly the events 1..=S");
    assert_eq!(restored_events[..], original[..restored_events.len()], "the first server's events and hashes");

    let now = ledger_core::Timestamp::from_chrono(chrono::Utc::now());
    let program = replayed.state.program(PROGRAM).expect("the program");
    let expected: BTreeMap<String, (i64, i64, i64)> = program
        .members
        .iter()
        .map(|(id, member)| {
            let view = ledger_store::views::view(PROGRAM, program, id, member, now);
            let signed = |value: u64| i64::try_from(value).expect("fits");
            (id.clone(), (signed(view.points), signed(view.held_points), signed(view.qualifying_amount)))
        })
        .collect();
    assert_eq!(members(&mut admin).await, expected, "members as the first ledger replayed to S");
    let mut as_viewer = second.clients(&viewer).await;
    assert_eq!(head(&mut as_viewer).await.events, s, "the viewer's token works on the restored server");
    drop((admin, as_viewer));
    assert!(second.stop().success());
}
