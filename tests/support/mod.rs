//! Starts the real `ledgerd` binary on a free port and connects real gRPC
//! clients to it over TCP, as a user would.
//!
//! Tests that stop a server while holding clients run on the multi-thread
//! runtime (`#[tokio::test(flavor = "multi_thread")]`): `Server::stop` blocks
//! while the server says goodbye to its connections, and a client can only
//! answer that from another worker thread.

#![allow(dead_code)]

use ledger_grpc::pb;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A running `ledgerd` with its own data directory.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub data_dir: PathBuf,
    pub admin_token: String,
    /// Everything the server wrote to stdout and stderr so far (stderr is also
    /// echoed to the test's stderr): tests look in it for what must never be logged.
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty directory under the target directory for one test.
pub fn fresh_dir(name: &str) -> PathBuf {
    let unique = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{unique}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

impl Server {
    /// Starts `ledgerd` on a fresh data directory.
    pub fn start(name: &str) -> Server {
        Server::start_in(fresh_dir(name), &[])
    }

    /// Starts `ledgerd` on `data_dir` (which may hold a ledger already) and waits
    /// until it prints the address it bound.
    pub fn start_in(data_dir: PathBuf, extra: &[&str]) -> Server {
        Server::start_logging(data_dir, extra, "warn")
    }

    /// `start_in` with `RUST_LOG` set to `rust_log` (`trace` logs the most).
    pub fn start_logging(data_dir: PathBuf, extra: &[&str], rust_log: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledgerd"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ledgerd");
        let output = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("ledgerd stderr");
        let stderr_output = Arc::clone(&output);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(mut line) = line else { break };
                line.push(b'\n');
                eprint!("{}", String::from_utf8_lossy(&line));
                lock(&stderr_output).extend_from_slice(&line);
            }
        });
        let stdout = child.stdout.take().expect("ledgerd stdout");
        let mut lines = BufReader::new(stdout).split(b'\n');
        let address = loop {
            let line = lines.next().expect("ledgerd exited before listening").expect("read ledgerd stdout");
            lock(&output).extend_from_slice(&line);
            lock(&output).push(b'\n');
            if let Some(address) = String::from_utf8_lossy(&line).strip_prefix("ledgerd listening on ") {
                break address.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        let stdout_output = Arc::clone(&output);
        let stdout_reader = std::thread::spawn(move || {
            for line in lines {
                let Ok(mut line) = line else { break };
                line.push(b'\n');
                lock(&stdout_output).extend_from_slice(&line);
            }
        });
        let admin_token = read_token(&data_dir.join("admin.token"));
        Server { child, address, data_dir, admin_token, output, readers: vec![stderr_reader, stdout_reader] }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("valid uri")
            .connect()
            .await
            .expect("connect to ledgerd")
    }

    /// Clients authenticated with the admin token.
    pub async fn admin(&self) -> Clients {
        self.clients(&self.admin_token).await
    }

    pub async fn clients(&self, token: &str) -> Clients {
        Clients::new(self.channel().await, token)
    }

    /// Stops the server with SIGTERM and waits for it to exit; returns its status.
    pub fn stop(self) -> std::process::ExitStatus {
        self.stop_with_output().0
    }

    /// Stops the server with SIGTERM, waits for it to exit and for its output to be
    /// read to the end; returns its status and everything it wrote.
    pub fn stop_with_output(mut self) -> (std::process::ExitStatus, Vec<u8>) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        signal(pid, "TERM");
        let status = self.child.wait().expect("wait for ledgerd");
        for reader in std::mem::take(&mut self.readers) {
            reader.join().expect("ledgerd output reader");
        }
        (status, self.output())
    }

    /// What the server wrote to stdout and stderr so far.
    pub fn output(&self) -> Vec<u8> {
        lock(&self.output).clone()
    }

    /// Kills the server with SIGKILL: no shutdown code runs.
    pub fn kill(mut self) -> PathBuf {
        self.child.kill().expect("kill ledgerd");
        self.child.wait().expect("wait for ledgerd");
        self.data_dir.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with `programs` created and an admin client.
pub async fn started(name: &str, programs: &[&str]) -> (Server, Clients) {
    let server = Server::start(name);
    let mut client = server.admin().await;
    for program in programs {
        client.create_program(program).await;
    }
    (server, client)
}

pub fn get_member(program: &str, member: &str) -> pb::GetMemberRequest {
    pb::GetMemberRequest { program_id: program.into(), member_id: member.into(), as_of: None }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn signal(pid: i32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

pub fn read_token(path: &Path) -> String {
    std::fs::read_to_string(path).expect("admin.token exists after first start").trim().to_owned()
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// One client of each service, all presenting the same token.
#[derive(Clone)]
pub struct Clients {
    pub admin: pb::admin_service_client::AdminServiceClient<Authed>,
    pub points: pb::points_service_client::PointsServiceClient<Authed>,
    pub members: pb::members_service_client::MembersServiceClient<Authed>,
    pub audit: pb::audit_service_client::AuditServiceClient<Authed>,
    pub credits: pb::credits_service_client::CreditsServiceClient<Authed>,
    pub coupons: pb::coupons_service_client::CouponsServiceClient<Authed>,
    pub vouchers: pb::vouchers_service_client::VouchersServiceClient<Authed>,
    pub tiers: pb::tiers_service_client::TiersServiceClient<Authed>,
    pub holds: pb::holds_service_client::HoldsServiceClient<Authed>,
    pub transactions: pb::transactions_service_client::TransactionsServiceClient<Authed>,
}

impl Clients {
    pub fn new(channel: Channel, token: &str) -> Clients {
        Clients::with_authorization(channel, &format!("Bearer {token}"))
    }

    /// Clients that send `value` as the whole `authorization` header, well-formed or not.
    pub fn with_authorization(channel: Channel, value: &str) -> Clients {
        let bearer = Bearer(value.parse().expect("ascii authorization header"));
        Clients {
            admin: pb::admin_service_client::AdminServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            points: pb::points_service_client::PointsServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            members: pb::members_service_client::MembersServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            audit: pb::audit_service_client::AuditServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            credits: pb::credits_service_client::CreditsServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            coupons: pb::coupons_service_client::CouponsServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            vouchers: pb::vouchers_service_client::VouchersServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            tiers: pb::tiers_service_client::TiersServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            holds: pb::holds_service_client::HoldsServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            transactions: pb::transactions_service_client::TransactionsServiceClient::with_interceptor(channel, bearer),
        }
    }

    pub async fn create_program(&mut self, program: &str) {
        let request = pb::CreateProgramRequest { program_id: program.into(), name: format!("Program {program}") };
        self.admin.create_program(request).await.expect("create program");
    }

    pub async fn add(&mut self, program: &str, member: &str, points: i64) -> pb::PointsReceipt {
        let request = pb::AddPointsRequest {
            program_id: program.into(),
            member_id: member.into(),
            points,
            remark: "test".into(),
            ..Default::default()
        };
        self.points.add_points(request).await.expect("add points").into_inner()
    }

    pub async fn member(&mut self, program: &str, member: &str) -> pb::Member {
        let request = pb::GetMemberRequest { program_id: program.into(), member_id: member.into(), as_of: None };
        self.members.get_member(request).await.expect("get member").into_inner()
    }

    /// Issues a token and returns its secret.
    pub async fn token(&mut self, role: pb::Role, program: &str) -> String {
        let request = pb::IssueTokenRequest {
            role: role.into(),
            program_id: program.into(),
            name: "test".into(),
            ..Default::default()
        };
        self.admin.issue_token(request).await.expect("issue token").into_inner().token
    }
}

/// The field violations of a `google.rpc.BadRequest` in an error, as (field, description).
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|bad| bad.field_violations.iter().map(|v| (v.field.clone(), v.description.clone())).collect())
        .unwrap_or_default()
}

/// Asserts that a call failed with `code` and returns its status.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: tonic::Code,
) -> tonic::Status {
    match result {
        Ok(response) => panic!("expected {code:?}, got {:?}", response.into_inner()),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            status
        }
    }
}

/// Asserts INVALID_ARGUMENT with one `google.rpc.BadRequest` field violation, naming
/// `field`, and a message that names it too.
#[track_caller]
pub fn assert_invalid_field(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = violations(status).into_iter().map(|(field, _)| field).collect();
    assert_eq!(fields, [field], "{status:?}");
    assert!(status.message().contains(field), "the message names {field}: {status:?}");
}

/// Now plus `seconds` (negative: in the past), in whole seconds: the server keeps
/// microseconds, so a whole second comes back exactly as it was sent.
pub fn seconds_from_now(seconds: i64) -> prost_types::Timestamp {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    let now = i64::try_from(now.as_secs()).expect("seconds fit i64");
    prost_types::Timestamp { seconds: now + seconds, nanos: 0 }
}

/// How long a test waits for something to happen before it fails. Generous: a
/// passing test never waits it out, and a loaded machine is slow.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// A bounded wait for a condition: look, and `patience.next().await` between looks,
/// as in `while !done(&mut client).await { patience.next().await }`.
pub struct Patience {
    what: String,
    deadline: tokio::time::Instant,
}

impl Patience {
    pub fn new(what: &str) -> Patience {
        Patience { what: what.to_owned(), deadline: tokio::time::Instant::now() + PATIENCE }
    }

    /// Pauses briefly before the next look; fails the test once the deadline passed.
    #[track_caller]
    pub fn next(&self) -> tokio::time::Sleep {
        assert!(tokio::time::Instant::now() < self.deadline, "gave up after {PATIENCE:?} waiting for {}", self.what);
        tokio::time::sleep(std::time::Duration::from_millis(20))
    }
}
