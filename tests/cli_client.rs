//! The `ledger` client as people use it (issue 15, item 5), against the real `ledgerd`:
//! the server and token from the environment instead of flags, and the token list
//! (AdminService/ListTokens) that shows ids, roles, programs and requests left but never
//! a secret.

mod support;

use ledger_grpc::pb;
use std::process::Output;
use support::{Server, refused};
use tonic::Code;
use tonic_types::StatusExt;

/// Runs `ledger` with `args` and only the environment `env` names (no LEDGER_* of the
/// caller leaks in).
fn ledger_env(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"));
    for name in ["LEDGER_ADDR", "LEDGER_TOKEN", "LEDGER_TOKEN_FILE"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).args(args).output().expect("run ledger")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn token_file(server: &Server) -> String {
    server.data_dir.join("admin.token").to_str().expect("utf-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_names_the_server_and_the_token_and_a_flag_or_a_direct_token_wins() {
    let server = Server::start("cli-client-env");
    let file = token_file(&server);

    let by_file = ledger_env(
        &[("LEDGER_ADDR", &server.address), ("LEDGER_TOKEN_FILE", &file)],
        &["program", "create", "cafe", "Cafe"],
    );
    assert!(by_file.status.success(), "{}", text(&by_file));

    let by_token =
        ledger_env(&[("LEDGER_ADDR", &server.address), ("LEDGER_TOKEN", &server.admin_token)], &["program", "list"]);
    assert!(by_token.status.success(), "{}", text(&by_token));
    assert!(text(&by_token).contains("cafe"), "{}", text(&by_token));

    // A token given directly wins over a file, even a file that does not exist.
    let both = ledger_env(
        &[
            ("LEDGER_ADDR", &server.address),
            ("LEDGER_TOKEN", &server.admin_token),
            ("LEDGER_TOKEN_FILE", "/nonexistent/admin.token"),
        ],
        &["program", "list"],
    );
    assert!(both.status.success(), "{}", text(&both));

    // The flag wins over its variable: a wrong LEDGER_ADDR is not used.
    let flag = ledger_env(
        &[("LEDGER_ADDR", "127.0.0.1:1"), ("LEDGER_TOKEN_FILE", &file)],
        &["--addr", &server.address, "program", "list"],
    );
    assert!(flag.status.success(), "{}", text(&flag));

    // No token anywhere: the error names both ways to give one.
    let none = ledger_env(
        &[("LEDGER_ADDR", &server.address), ("LEDGER_TOKEN_FILE", "/nonexistent/admin.token")],
        &["program", "list"],
    );
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    let printed = text(&none);
    for way in ["--token-file", "LEDGER_TOKEN_FILE", "--token", "LEDGER_TOKEN"] {
        assert!(printed.contains(way), "the error names {way}: {printed}");
    }

    let help = ledger_env(&[], &["--help"]);
    let help = text(&help);
    for name in ["LEDGER_ADDR", "LEDGER_TOKEN", "LEDGER_TOKEN_FILE", "Precedence"] {
        assert!(help.contains(name), "--help names {name}: {help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tokens_shows_roles_programs_and_requests_left_never_a_secret() {
    let server = Server::start("cli-client-list-tokens");
    let mut admin = server.admin().await;
    admin.create_program("cafe").await;
    let issue = |role: pb::Role, name: &str, max_requests: Option<u64>| pb::IssueTokenRequest {
        role: role.into(),
        program_id: "cafe".into(),
        name: name.into(),
        expires_at: None,
        max_requests,
    };
    let operator =
        admin.admin.issue_token(issue(pb::Role::Operator, "till 1", Some(10))).await.expect("issue").into_inner();
    let viewer = admin.admin.issue_token(issue(pb::Role::Viewer, "dashboard", None)).await.expect("issue").into_inner();
    admin.admin.revoke_token(pb::RevokeTokenRequest { token_id: viewer.token_id.clone() }).await.expect("revoke");
    let listed = admin.admin.list_tokens(pb::ListTokensRequest {}).await.expect("list").into_inner().tokens;
    let roles: Vec<(pb::Role, &str, &str, bool)> =
        listed.iter().map(|t| (t.role(), t.program_id.as_str(), t.name.as_str(), t.revoked)).collect();
    assert_eq!(
        roles,
        [
            (pb::Role::Admin, "", "admin (first start)", false),
            (pb::Role::Operator, "cafe", "till 1", false),
            (pb::Role::Viewer, "cafe", "dashboard", true),
        ]
    );
    assert_eq!(listed[1].token_id, operator.token_id);
    assert_eq!((listed[1].max_requests, listed[1].requests_left), (Some(10), Some(10)));
    assert_eq!((listed[0].max_requests, listed[0].requests_left), (None, None));

    // Every call presented with the token counts, so requests left count down.
    let mut till = server.clients(&operator.token).await;
    for _ in 0..3 {
        till.add("cafe", "alice", 1).await;
    }
    let listed = admin.admin.list_tokens(pb::ListTokensRequest {}).await.expect("list").into_inner().tokens;
    assert_eq!(listed[1].requests_left, Some(7));

    // No secret, nor anything of it, in the answer.
    let debug = format!("{listed:?}");
    for secret in [&server.admin_token, &operator.token, &viewer.token] {
        assert!(!debug.contains(secret.as_str()), "a secret in {debug}");
        assert!(!debug.contains(&secret[secret.len() - 16..]), "part of a secret in {debug}");
    }

    // ADMIN only: a VIEWER is refused for its role.
    let viewer_secret = admin.token(pb::Role::Viewer, "cafe").await;
    let mut as_viewer = server.clients(&viewer_secret).await;
    let status = refused(as_viewer.admin.list_tokens(pb::ListTokensRequest {}).await, Code::PermissionDenied);
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, "ROLE_TOO_LOW", "{status:?}");

    // `ledger token list` prints the same, as a table and as JSON.
    let file = token_file(&server);
    let env = [("LEDGER_ADDR", server.address.as_str()), ("LEDGER_TOKEN_FILE", file.as_str())];
    let table = ledger_env(&env, &["token", "list"]);
    assert!(table.status.success(), "{}", text(&table));
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let till_row = table.lines().find(|line| line.contains(&operator.token_id)).unwrap_or_else(|| panic!("{table}"));
    for cell in ["OPERATOR", "cafe", "till 1", "7", "active"] {
        assert!(till_row.contains(cell), "{cell} in {till_row}");
    }
    let revoked_row = table.lines().find(|line| line.contains(&viewer.token_id)).unwrap_or_else(|| panic!("{table}"));
    assert!(revoked_row.contains("revoked"), "{revoked_row}");
    assert!(!table.contains(&operator.token), "{table}");

    let json = ledger_env(&env, &["--json", "token", "list"]);
    assert!(json.status.success(), "{}", text(&json));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON line");
    let tokens = json["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 4);
    assert_eq!(tokens[1]["token_id"], operator.token_id.as_str());
    assert_eq!(tokens[1]["requests_left"], 7);
    assert_eq!(tokens[2]["revoked"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_events_prints_one_line_per_event_up_to_now_or_as_json_lines() {
    let server = Server::start("cli-client-events");
    let mut admin = server.admin().await;
    admin.create_program("cafe").await;
    admin.create_program("deli").await;
    admin.add("cafe", "alice", 10).await;
    admin.add("deli", "bob", 5).await;
    admin.add("cafe", "carol", 7).await;
    let file = token_file(&server);
    let env = [("LEDGER_ADDR", server.address.as_str()), ("LEDGER_TOKEN_FILE", file.as_str())];

    // Without --follow the command ends after the events recorded so far: the last of
    // the log is deli's, so a feed of cafe alone must still end.
    let cafe = ledger_env(&env, &["events", "--program", "cafe"]);
    assert!(cafe.status.success(), "{}", text(&cafe));
    let lines: Vec<String> = String::from_utf8_lossy(&cafe.stdout).lines().map(str::to_owned).collect();
    let members: Vec<&str> = lines.iter().filter_map(|line| line.split(' ').nth(3)).collect();
    assert!(lines.iter().all(|line| line.split(' ').nth(2) == Some("cafe")), "{lines:?}");
    assert!(members.contains(&"alice") && members.contains(&"carol") && !members.contains(&"bob"), "{lines:?}");

    let all = ledger_env(&env, &["--json", "events"]);
    assert!(all.status.success(), "{}", text(&all));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&all.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}")))
        .collect();
    let sequences: Vec<u64> = events.iter().map(|event| event["sequence"].as_u64().expect("sequence")).collect();
    assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>(), "every event once, in order");
    let points_added: Vec<(&str, &str)> = events
        .iter()
        .filter(|event| event["kind"] == "PointsAdded")
        .map(|event| (event["program_id"].as_str().unwrap_or(""), event["member_id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(points_added, [("cafe", "alice"), ("deli", "bob"), ("cafe", "carol")]);
    assert!(events.iter().all(|event| event["payload"].is_object()), "payloads are nested JSON: {events:?}");

    // --from starts where it says.
    let last = *sequences.last().expect("events");
    let from = ledger_env(&env, &["--json", "events", "--from", &last.to_string()]);
    let from = String::from_utf8_lossy(&from.stdout).into_owned();
    assert_eq!(from.lines().count(), 1, "{from}");

    // --follow prints what exists, then new events as they are recorded.
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .envs(env)
        .args(["events", "--follow", "--program", "deli", "--from", &last.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run ledger events --follow");
    admin.add("deli", "dave", 3).await;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follow.stdout.take().expect("stdout")));
    let line = tokio::task::spawn_blocking(move || lines.next().expect("a line").expect("read")).await.expect("reader");
    assert!(line.contains(" deli dave PointsAdded "), "{line}");
    follow.kill().expect("stop ledger events --follow");
    follow.wait().expect("wait");
}

fn bench(env: &[(&str, &str)], flags: &str) -> Output {
    ledger_env(env, &["bench"].into_iter().chain(flags.split_whitespace()).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_bench_refuses_a_program_it_did_not_create_unless_told_yes() {
    let server = Server::start("cli-client-bench");
    let mut admin = server.admin().await;
    admin.create_program("cafe").await;
    admin.add("cafe", "alice", 10).await;
    let file = token_file(&server);
    let env = [("LEDGER_ADDR", server.address.as_str()), ("LEDGER_TOKEN_FILE", file.as_str())];
    let members = |admin: &mut support::Clients| {
        let mut admin = admin.clone();
        async move {
            let request = pb::ListMembersRequest { program_id: "cafe".into(), ..Default::default() };
            admin.members.list_members(request).await.expect("list members").into_inner()
        }
    };
    let before = members(&mut admin).await;
    let head = admin.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify").into_inner().events;

    let refused = bench(&env, "--program cafe --op bulk-add --distinct --members 5 --items 5 --clients 1");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("--yes"), "{}", text(&refused));
    assert_eq!(members(&mut admin).await, before, "a refused bench writes nothing");
    assert_eq!(admin.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify").into_inner().events, head);

    // A program the bench created is its own: a second run needs no --yes.
    for _ in 0..2 {
        let own = bench(&env, "--program fresh --op bulk-add --distinct --members 5 --items 5 --clients 1");
        assert!(own.status.success(), "{}", text(&own));
    }

    let told = bench(&env, "--program cafe --op bulk-add --distinct --members 5 --items 5 --clients 1 --yes");
    assert!(told.status.success(), "{}", text(&told));
    let report: serde_json::Value = serde_json::from_slice(&told.stdout).expect("one JSON line");
    assert_eq!(report["items"], 5, "{report}");
}

#[test]
fn ledger_bench_throwaway_benches_its_own_server_and_removes_its_directory() {
    let tmp = support::fresh_dir("cli-client-throwaway");
    let tmp = tmp.to_str().expect("utf-8 path");
    // No server and no token: the throwaway server is all it uses.
    let output = bench(
        &[("TMPDIR", tmp), ("LEDGER_ADDR", "127.0.0.1:1")],
        "--throwaway --program p --op bulk-add --distinct --members 5 --items 5 --clients 1",
    );
    assert!(output.status.success(), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    assert_eq!(report["items"], 5, "{report}");
    let left: Vec<_> = std::fs::read_dir(tmp).expect("read TMPDIR").collect();
    assert!(left.is_empty(), "the throwaway directory is removed: {left:?}");
}
