//! A real Connect client from another ecosystem against the real `ledgerd`:
//! connect-es on Node.js (`tests/connect-node/client.mjs`), its services and
//! messages loaded at run time from the descriptor set, calls AddPoints, an
//! overspend whose error it reads, and StreamEvents over HTTP/2.
//!
//! The test installs the script's pinned packages (`package-lock.json`) with
//! `npm ci` into the target directory, once: later runs reuse them while the
//! lock file is unchanged. It is skipped, saying so, only when `node` or `npm`
//! is missing.

mod support;

use prost::Message as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAM: &str = "cafe";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_es_client_adds_points_reads_an_error_reason_and_streams() {
    for tool in ["node", "npm"] {
        if !runs(tool) {
            eprintln!("SKIPPED connect_node: `{tool}` is not installed; install Node.js 20+ and npm to run this test");
            return;
        }
    }
    let script_dir = install();
    let descriptors = support::fresh_dir("connect-node").join("descriptors.binpb");
    std::fs::write(&descriptors, descriptor_set()).expect("write the descriptor set");

    let (server, _client) = support::started("connect-node", &[PROGRAM]).await;
    let output = Command::new("node")
        .arg(script_dir.join("client.mjs"))
        .arg(&descriptors)
        .arg(format!("http://{}", server.address))
        .arg(&server.admin_token)
        .arg(PROGRAM)
        .current_dir(&script_dir)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "client.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"added points=100 balance=100"), "{stdout}");
    let refused = lines.get(1).copied().unwrap_or_default();
    let reason = refused.strip_prefix("refused code=FailedPrecondition reason=").unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(reason, "INSUFFICIENT_POINTS", "{stdout}");
    assert_eq!(lines.get(2), Some(&"streamed 1:- 2:node"), "{stdout}");
}

fn runs(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|output| output.status.success())
}

/// The script and its packages in the target directory; `npm ci` only when the
/// lock file changed since the last install.
fn install() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/connect-node");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("connect-node");
    std::fs::create_dir_all(&dir).expect("create the install directory");
    for file in ["package.json", "package-lock.json", "client.mjs"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap_or_else(|error| panic!("copy {file}: {error}"));
    }
    let lock = std::fs::read(dir.join("package-lock.json")).expect("read package-lock.json");
    let stamp = dir.join("node_modules/.installed-from-lock");
    if std::fs::read(&stamp).ok().as_ref() != Some(&lock) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        assert!(status.success(), "npm ci in {} failed", dir.display());
        std::fs::write(&stamp, &lock).expect("write the install stamp");
    }
    dir
}

/// `ledger.v1` and the `google.rpc` error details in one descriptor set, each
/// file once.
fn descriptor_set() -> Vec<u8> {
    let decode = |bytes: &[u8]| prost_types::FileDescriptorSet::decode(bytes).expect("a descriptor set");
    let mut set = decode(ledger_grpc::pb::FILE_DESCRIPTOR_SET);
    for file in decode(tonic_types::pb::FILE_DESCRIPTOR_SET).file {
        if !set.file.iter().any(|known| known.name == file.name) {
            set.file.push(file);
        }
    }
    set.encode_to_vec()
}
