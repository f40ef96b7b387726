//! The examples of `docs/API.md` and `README.md` run as written.
//!
//! Every fenced block whose info string is `sh` is an example. Each document gets
//! its own fresh `ledgerd`; its blocks run in order, each with `sh -e` in one
//! working directory, with `LEDGER` (the base URL) and `TOKEN` (the admin token)
//! set, so a later example may rely on what an earlier one created or wrote.
//!
//! A block must exit 0. Its `curl` calls must carry `-f` (curl then exits non-zero
//! on any status of 400 and above), unless the block shows an error (or an answer
//! whose status matters): such a block starts with `# expect: STATUS WORD…`, shows
//! its call's answer with `curl -i` without `-f`, and the last status it printed
//! must be STATUS, with every WORD somewhere in its output (the Connect code and
//! the reason, for example). Without `curl` the test says so and passes: it is
//! installed on CI machines.

mod support;

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{Server, fresh_dir};

/// The longest one example may take; the streaming example takes about two seconds.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn api_md_examples_run_as_written() {
    if !have_curl() {
        return;
    }
    let examples = examples_of("docs/API.md");
    // One example per service at least, the seeds' endpoints and the stream: a
    // change of fence style must not make the test run nothing.
    let all: String = examples.iter().map(|example| example.script.as_str()).collect();
    for route in [
        "/ledger.v1.AdminService/",
        "/ledger.v1.PointsService/",
        "/ledger.v1.CreditsService/",
        "/ledger.v1.CouponsService/",
        "/ledger.v1.VouchersService/",
        "/ledger.v1.TiersService/",
        "/ledger.v1.TransactionsService/ReverseTransaction",
        "/ledger.v1.MembersService/",
        "/ledger.v1.HoldsService/",
        "/ledger.v1.AuditService/StreamEvents",
        "/api/external/voucher_statements",
        "/api/point_statements",
        "/api/points/bulk_add_point",
        "/openapi.json",
    ] {
        assert!(all.contains(route), "docs/API.md has no example calling {route}");
    }
    assert!(examples.iter().any(|example| example.expect.is_some()), "docs/API.md shows no error example");
    run_all("docs-api", &examples);
}

#[test]
fn readme_examples_run_as_written() {
    if !have_curl() {
        return;
    }
    let examples = examples_of("README.md");
    assert!(!examples.is_empty(), "README.md has no example to run (```sh blocks)");
    run_all("docs-readme", &examples);
}

/// One fenced `sh` block.
#[derive(Debug)]
struct Example {
    /// `docs/API.md:123`, the line of the opening fence.
    place: String,
    script: String,
    /// For an error example: the HTTP status and the words its output must hold.
    expect: Option<(u16, Vec<String>)>,
}

fn have_curl() -> bool {
    let found = Command::new("curl").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: `curl` is not installed, so the documentation's curl examples cannot run here");
    }
    found
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace holds ledger-grpc").to_owned()
}

fn examples_of(document: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(repository().join(document)).expect("read the document");
    let examples = parse(document, &text);
    for example in &examples {
        check_curl_flags(example);
    }
    examples
}

fn parse(document: &str, text: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut open: Option<(usize, String, Vec<&str>)> = None;
    for (index, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = fence.strip_prefix("```") {
                    open = Some((index + 1, info.trim().to_owned(), Vec::new()));
                }
            }
            Some((start, info, lines)) => {
                if fence.starts_with("```") {
                    if info == "sh" {
                        examples.push(example(format!("{document}:{start}"), lines));
                    }
                    open = None;
                } else {
                    lines.push(line);
                }
            }
        }
    }
    assert!(open.is_none(), "{document}: a code block is not closed");
    examples
}

fn example(place: String, lines: &[&str]) -> Example {
    let expect = lines.first().and_then(|line| line.strip_prefix("# expect:")).map(|rest| {
        let mut words = rest.split_whitespace();
        let status = words.next().and_then(|word| word.parse().ok());
        let status = status.unwrap_or_else(|| panic!("{place}: `# expect:` needs an HTTP status first"));
        (status, words.map(str::to_owned).collect())
    });
    Example { place, script: lines.join("\n") + "\n", expect }
}

/// A success example must make curl fail on an error status (`-f`). An error
/// example shows the status of its call (`-i`, without `-f`); any call that
/// prepares it (a token to present) fails on an error status as above.
fn check_curl_flags(example: &Example) {
    let mut shown = 0;
    for call in example.script.split("curl ").skip(1) {
        let flags: Vec<&str> =
            call.split_whitespace().take_while(|word| word.starts_with('-') && !word.starts_with("--")).collect();
        let has = |flag: char| flags.iter().any(|word| word.contains(flag)) || call.contains(long(flag));
        let place = &example.place;
        match (example.expect.is_some(), has('f'), has('i')) {
            (_, true, false) => {}
            (true, false, true) => shown += 1,
            (false, _, _) => panic!("{place}: a curl call without -f (or with -i) would hide an error status"),
            (true, _, _) => panic!("{place}: an error example's curl calls take -f, or -i without -f"),
        }
    }
    assert!(
        example.expect.is_none() || shown > 0,
        "{}: an error example shows its answer with curl -sS -i",
        example.place
    );
}

fn long(flag: char) -> &'static str {
    match flag {
        'f' => "--fail",
        'i' => "--include",
        _ => unreachable!("only -f and -i are checked"),
    }
}

fn run_all(name: &str, examples: &[Example]) {
    let server = Server::start(name);
    let workdir = fresh_dir(&format!("{name}-work"));
    let base = format!("http://{}", server.address);
    for example in examples {
        let output = run(example, &workdir, &base, &server.admin_token);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let report = format!(
            "{}: the example failed\n--- script\n{}--- stdout\n{stdout}\n--- stderr\n{stderr}",
            example.place, example.script
        );
        assert!(output.status.success(), "{report}\nexit status: {}", output.status);
        if let Some((status, words)) = &example.expect {
            assert_eq!(last_status(&stdout), Some(*status), "{report}\nthe example answered another status");
            for word in words {
                assert!(stdout.contains(word.as_str()), "{report}\nthe answer does not mention {word:?}");
            }
        }
    }
    let status = server.stop();
    assert!(status.success(), "ledgerd exited with {status}");
}

fn run(example: &Example, workdir: &Path, base: &str, token: &str) -> Output {
    let mut child = Command::new("sh")
        .arg("-e")
        .current_dir(workdir)
        .env("LEDGER", base)
        .env("TOKEN", token)
        // A proxy of the machine's must not stand between curl and the local server.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a hung example is killed with its curl.
        .process_group(0)
        .spawn()
        .expect("start sh");
    let pid = child.id();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("sh stdin");
        stdin.write_all(example.script.as_bytes()).expect("write the example to sh");
    }
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        child.stdout.take().expect("sh stdout").read_to_end(&mut stdout).expect("read stdout");
        child.stderr.take().expect("sh stderr").read_to_end(&mut stderr).expect("read stderr");
        let status = child.wait().expect("wait for sh");
        let _ = done.send(Output { status, stdout, stderr });
    });
    match finished.recv_timeout(EXAMPLE_TIMEOUT) {
        Ok(output) => output,
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(format!("-{pid}")).status();
            panic!("{}: the example did not finish within {EXAMPLE_TIMEOUT:?}\n{}", example.place, example.script);
        }
    }
}

/// The status of the last response `curl -i` printed (`HTTP/1.1 400 Bad Request`,
/// `HTTP/2 400`), after any interim `100 Continue`.
fn last_status(stdout: &str) -> Option<u16> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("HTTP/"))
        .filter_map(|rest| rest.split_whitespace().nth(1)?.parse().ok())
        .next_back()
}

#[test]
fn error_examples_are_parsed_with_their_status_and_words() {
    let text = "x\n```sh\n# expect: 404 not_found MEMBER_NOT_FOUND\ncurl -sS -i \"$LEDGER/x\"\n```\n\
                ```text\nnot run\n```\n```sh\ncurl -fsS \"$LEDGER/y\"\n```\n";
    let examples = parse("doc", text);
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[0].place, "doc:2");
    assert_eq!(examples[0].expect, Some((404, vec!["not_found".to_owned(), "MEMBER_NOT_FOUND".to_owned()])));
    assert_eq!(examples[1].expect, None);
    for example in &examples {
        check_curl_flags(example);
    }
    assert_eq!(last_status("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\n"), Some(400));
}
