//! The `ledger` client as people use it (issue 15, item 5), against the real `ledgerd`:
//! the server and token from the environment instead of flags.

mod support;

use std::process::Output;
use support::Server;

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
