//! TLS end to end (issue 11, item 8): `ledgerd --tls-cert --tls-key` with a
//! certificate this test makes (rcgen), a tonic client trusting the test's CA, a
//! plaintext client refused, and the `ledger` CLI with `--ca` and `https://`.

mod support;

use std::path::Path;
use support::{Clients, Server, fresh_dir, get_member};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const PROGRAM: &str = "cafe";

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1, written as
/// PEM files into `dir`: (ca.pem, server.pem, server.key).
fn make_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "ledger test CA");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

    let server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("server params");
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let server_cert = server_params.signed_by(&server_key, &ca).expect("server certificate");

    let paths = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&paths.0, ca.pem()).expect("write ca.pem");
    std::fs::write(&paths.1, server_cert.pem()).expect("write server.pem");
    std::fs::write(&paths.2, server_key.serialize_pem()).expect("write server.key");
    (paths.0, paths.1, paths.2)
}

fn port(server: &Server) -> &str {
    server.address.rsplit(':').next().expect("address has a port")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_server_answers_clients_that_trust_its_ca_and_refuses_plaintext() {
    let certificates = fresh_dir("tls-certificates");
    let (ca, cert, key) = make_certificates(&certificates);
    let server = Server::start_in(
        fresh_dir("tls"),
        &["--tls-cert", cert.to_str().expect("utf-8 path"), "--tls-key", key.to_str().expect("utf-8 path")],
    );
    let https = format!("https://localhost:{}", port(&server));

    // A tonic client trusting the test's CA: create a program, add, read back.
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(&ca).expect("read ca.pem")));
    let channel = Channel::from_shared(https.clone())
        .expect("valid uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS");
    let mut client = Clients::new(channel, &server.admin_token);
    client.create_program(PROGRAM).await;
    client.add(PROGRAM, "m1", 42).await;
    let member = client.members.get_member(get_member(PROGRAM, "m1")).await.expect("GetMember over TLS");
    assert_eq!(member.into_inner().points, 42);

    // Plaintext HTTP/2 to the TLS port never gets an answer.
    let plain = Channel::from_shared(format!("http://{}", server.address)).expect("valid uri").connect().await;
    if let Ok(channel) = plain {
        let mut plain = Clients::new(channel, &server.admin_token);
        let refused = plain.members.get_member(get_member(PROGRAM, "m1")).await;
        assert!(refused.is_err(), "a plaintext call to a TLS port must fail: {refused:?}");
    }

    // The CLI over TLS with --ca.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("--addr")
            .arg(&https)
            .arg("--token-file")
            .arg(server.data_dir.join("admin.token"))
            .args(args)
            .output()
            .expect("run ledger")
    };
    let shown = cli(&["--ca", ca.to_str().expect("utf-8 path"), "member", "show", "--program", PROGRAM, "m1"]);
    let text = format!("{}{}", String::from_utf8_lossy(&shown.stdout), String::from_utf8_lossy(&shown.stderr));
    assert!(shown.status.success(), "ledger --ca over https: {text}");
    assert!(text.contains("42"), "the member's 42 points: {text}");

    // Without --ca the system's roots do not trust the test's CA.
    let untrusted = cli(&["member", "show", "--program", PROGRAM, "m1"]);
    let text = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success() && text.contains("certificate"), "an unknown CA must be refused: {text}");
    // --ca with a plaintext address is a mistake worth naming.
    let mixed = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["--addr", &server.address, "--ca", ca.to_str().expect("utf-8 path"), "member", "show"])
        .args(["--program", PROGRAM, "m1", "--token", "x"])
        .output()
        .expect("run ledger");
    let text = String::from_utf8_lossy(&mixed.stderr);
    assert!(!mixed.status.success() && text.contains("https://"), "{text}");
}
