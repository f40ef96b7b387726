//! The TLS commands of docs/OPERATIONS.md ("Deploying", "TLS"), run exactly as
//! written: the certificate they make serves a real `ledgerd --tls-cert
//! --tls-key`, to the `ledger` client over gRPC (ALPN h2) with `--ca`, and to
//! curl over HTTP/1.1 (ALPN http/1.1).

mod support;

use std::path::Path;
use std::process::Command;
use support::{Server, fresh_dir};

/// The shell block of docs/OPERATIONS.md that makes the test CA and the server's certificate.
fn documented_commands() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/OPERATIONS.md");
    let operations = std::fs::read_to_string(&path).expect("read docs/OPERATIONS.md");
    operations
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(block, _)| block))
        .find(|block| block.contains("openssl req -x509"))
        .expect("a ```sh block with the openssl commands")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_made_by_the_documented_commands_serves_grpc_and_http1() {
    let certificates = fresh_dir("ops-tls-certificates");
    let made = Command::new("sh")
        .args(["-e", "-c", &documented_commands()])
        .current_dir(&certificates)
        .output()
        .expect("run sh");
    assert!(made.status.success(), "the documented commands: {}", String::from_utf8_lossy(&made.stderr));
    let path = |name: &str| certificates.join(name).to_str().expect("a UTF-8 path").to_owned();

    let server =
        Server::start_in(fresh_dir("ops-tls"), &["--tls-cert", &path("server.pem"), "--tls-key", &path("server.key")]);
    let port = server.address.rsplit(':').next().expect("a port");
    let https = format!("https://localhost:{port}");
    let token_file = server.data_dir.join("admin.token");

    // gRPC over HTTP/2: the `ledger` client trusting the test CA.
    let listed = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["--addr", &https, "--ca", &path("ca.pem"), "--token-file"])
        .arg(&token_file)
        .args(["token", "list"])
        .output()
        .expect("run ledger");
    let text = format!("{}{}", String::from_utf8_lossy(&listed.stdout), String::from_utf8_lossy(&listed.stderr));
    assert!(listed.status.success(), "ledger --ca token list over TLS: {text}");
    assert!(text.contains("tok_"), "the admin token is listed: {text}");

    // HTTP/JSON over HTTP/1.1, as a client that offers only http/1.1 in ALPN.
    let authorization = format!("authorization: Bearer {}", server.admin_token);
    let url = format!("{https}/ledger.v1.AdminService/ListPrograms");
    let called = Command::new("curl")
        .args(["--silent", "--show-error", "--http1.1", "--cacert", &path("ca.pem"), &url])
        .args(["-H", &authorization, "-H", "content-type: application/json", "-d", "{}"])
        .args(["--write-out", "\n%{http_code} HTTP/%{http_version}"])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&called.stdout).into_owned();
    assert!(called.status.success(), "curl over TLS: {text}{}", String::from_utf8_lossy(&called.stderr));
    assert!(text.ends_with("\n200 HTTP/1.1"), "{text}");
    server.stop();
}
