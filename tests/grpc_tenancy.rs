//! Tenancy and tokens (issue 11 §7, SPEC §11), over TCP against the real `ledgerd`.
//!
//! The matrix is generated, not listed: every RPC of every `ledger.v1` service is
//! read from the compiled protos (`pb::FILE_DESCRIPTOR_SET`), its request encoded
//! by hand from the descriptor (naming the program under test in every `program_id`
//! and `brand_id`, nested ones included) and sent through a raw tonic client, once
//! per kind of caller. An RPC added to the protos joins the matrix by itself.
//! Also here: a token's request quota under 1,000 concurrent calls, and no secret in
//! the data directory, the server's output or any error message.

mod support;

use ledger_grpc::pb;
use prost::Message;
use prost::bytes::{Buf, BufMut};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::{Clients, Patience, Server, fresh_dir, get_member, seconds_from_now, started};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The program under test, and another. Numeric, so that the vouchers service's
/// `brand_id: int64` can name them too.
const HOME: &str = "7001";
const OTHER: &str = "7002";
const PACKAGE: &str = "ledger.v1";

/// One RPC as the protos declare it.
#[derive(Clone, Debug)]
struct Rpc {
    service: String,
    method: String,
    input: DescriptorProto,
    /// The request's repeated message fields (a bulk's items, an import's data), by
    /// field number, with the descriptor of their items.
    lists: Vec<(i32, DescriptorProto)>,
    server_streaming: bool,
}

impl Rpc {
    fn path(&self) -> String {
        format!("/{PACKAGE}.{}/{}", self.service, self.method)
    }

    /// What SPEC §11 says the RPC needs, rule for rule: AdminService is the admin's,
    /// VerifyLog any valid token's, `Get*`, `List*` and StreamEvents (of one
    /// program; ReadEvents is the same feed ended at the head) are reads, everything
    /// else is a write.
    fn needs(&self) -> Needs {
        if self.service == "AdminService" {
            Needs::Admin
        } else if self.method == "VerifyLog" {
            Needs::AnyToken
        } else if self.method.starts_with("Get")
            || self.method.starts_with("List")
            || matches!(self.method.as_str(), "StreamEvents" | "ReadEvents")
        {
            Needs::Read
        } else {
            Needs::Write
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Needs {
    Admin,
    Write,
    Read,
    AnyToken,
}

/// Every kind of caller the matrix tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    NoToken,
    Unknown,
    Expired,
    Revoked,
    UsedUp,
    Admin,
    Operator,
    Viewer,
    OtherOperator,
}

const EVERYONE: [Who; 9] = [
    Who::NoToken,
    Who::Unknown,
    Who::Expired,
    Who::Revoked,
    Who::UsedUp,
    Who::Admin,
    Who::Operator,
    Who::Viewer,
    Who::OtherOperator,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Refused(Code),
    /// Past auth: any code but UNAUTHENTICATED and PERMISSION_DENIED (the minimal
    /// request may well be INVALID_ARGUMENT or NOT_FOUND).
    Allowed,
}

/// SPEC §11's table: who may call what, in which program. Every request names HOME.
fn verdict(who: Who, needs: Needs) -> Verdict {
    let denied = Verdict::Refused(Code::PermissionDenied);
    match (who, needs) {
        (Who::NoToken | Who::Unknown | Who::Expired | Who::Revoked | Who::UsedUp, _) => {
            Verdict::Refused(Code::Unauthenticated)
        }
        (Who::Admin, _) | (_, Needs::AnyToken) => Verdict::Allowed,
        (Who::Operator | Who::Viewer | Who::OtherOperator, Needs::Admin) => denied,
        (Who::Operator, Needs::Write | Needs::Read) | (Who::Viewer, Needs::Read) => Verdict::Allowed,
        (Who::Viewer, Needs::Write) | (Who::OtherOperator, Needs::Write | Needs::Read) => denied,
    }
}

/// Every RPC of every `ledger.v1` service, with its request's descriptor.
fn rpcs() -> Vec<Rpc> {
    let set = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("the compiled descriptor set decodes");
    let files: Vec<_> = set.file.iter().filter(|file| file.package() == PACKAGE).collect();
    // Messages of other packages (google.protobuf.Timestamp) carry no program: `None`.
    let message = |full_name: &str| -> Option<DescriptorProto> {
        let name = full_name.strip_prefix(&format!(".{PACKAGE}."))?;
        files.iter().flat_map(|file| file.message_type.iter()).find(|message| message.name() == name).cloned()
    };
    let mut rpcs = Vec::new();
    for file in &files {
        for service in &file.service {
            for method in &service.method {
                assert!(!method.client_streaming(), "{}: the matrix sends one request", method.name());
                let input = message(method.input_type()).expect("a request is a ledger.v1 message");
                let lists = input
                    .field
                    .iter()
                    .filter(|field| field.r#type() == Type::Message && field.label() == Label::Repeated)
                    .filter_map(|field| Some((field.number(), message(field.type_name())?)))
                    .collect();
                rpcs.push(Rpc {
                    service: service.name().to_owned(),
                    method: method.name().to_owned(),
                    input,
                    lists,
                    server_streaming: method.server_streaming(),
                });
            }
        }
    }
    rpcs
}

/// The request for `rpc`, encoded by hand from its descriptor: HOME in every
/// `program_id` and `brand_id`, `token_id` naming `token_id`, and one item in every
/// repeated message field, itself naming HOME, so that a program named only in
/// nested items (Echoss imports name brands per item) is the one under test.
fn request_for(rpc: &Rpc, token_id: &str) -> Vec<u8> {
    let mut body = scalar_fields(&rpc.input, token_id);
    for (number, item) in &rpc.lists {
        put_bytes(&mut body, *number, &scalar_fields(item, token_id));
    }
    body
}

/// The fields of `message` that name a program or a token, set; the rest default.
fn scalar_fields(message: &DescriptorProto, token_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for field in &message.field {
        match (field.name(), field.r#type()) {
            ("program_id", Type::String) => put_bytes(&mut body, field.number(), HOME.as_bytes()),
            ("token_id", Type::String) => put_bytes(&mut body, field.number(), token_id.as_bytes()),
            ("brand_id", Type::Int64) => {
                put_key(&mut body, field.number(), 0);
                put_varint(&mut body, HOME.parse().expect("HOME is numeric"));
            }
            _ => {}
        }
    }
    body
}

fn put_key(body: &mut Vec<u8>, number: i32, wire_type: u64) {
    let number = u64::try_from(number).expect("field numbers are positive");
    put_varint(body, (number << 3) | wire_type);
}

fn put_varint(body: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        body.push(u8::try_from(value & 0x7f).expect("seven bits") | 0x80);
        value >>= 7;
    }
    body.push(u8::try_from(value).expect("below 0x80"));
}

/// A length-delimited field: a string, or an embedded message.
fn put_bytes(body: &mut Vec<u8>, number: i32, bytes: &[u8]) {
    put_key(body, number, 2);
    put_varint(body, u64::try_from(bytes.len()).expect("small"));
    body.extend_from_slice(bytes);
}

/// Sends and receives protobuf bytes as they are: the matrix encodes its own requests
/// and only looks at the status.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// Calls `rpc` with `body`, presenting `authorization` if any; a stream counts as
/// answered once its headers come.
async fn call(channel: Channel, rpc: &Rpc, body: Vec<u8>, authorization: Option<&str>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| Status::unavailable(format!("channel not ready: {error}")))?;
    let mut request = tonic::Request::new(body);
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value.parse().expect("ascii header"));
    }
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(rpc.path()).expect("a valid path");
    if rpc.server_streaming {
        grpc.server_streaming(request, path, RawCodec).await.map(drop)
    } else {
        grpc.unary(request, path, RawCodec).await.map(drop)
    }
}

fn issue(role: pb::Role, program: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest { role: role.into(), program_id: program.into(), name: "matrix".into(), ..Default::default() }
}

async fn issued(admin: &mut Clients, request: pb::IssueTokenRequest) -> pb::IssueTokenResponse {
    admin.admin.issue_token(request).await.expect("issue token").into_inner()
}

/// A secret an admin never issued that looks like one: `secret` with its last digit changed.
fn near_miss(secret: &str) -> String {
    let last = if secret.ends_with('0') { "1" } else { "0" };
    format!("{}{last}", &secret[..secret.len() - 1])
}

/// One token of every kind the matrix tries, and every secret issued for them.
struct Callers {
    headers: Vec<(Who, Option<String>)>,
    secrets: Vec<String>,
    /// A VIEWER of HOME whose id every `token_id` field names: a RevokeToken wrongly
    /// let through would end it.
    victim: pb::IssueTokenResponse,
}

impl Callers {
    async fn issue(server: &Server, admin: &mut Clients) -> Callers {
        let expiring = pb::IssueTokenRequest { expires_at: Some(seconds_from_now(2)), ..issue(pb::Role::Viewer, HOME) };
        let expired = issued(admin, expiring).await;
        let revoked = issued(admin, issue(pb::Role::Operator, HOME)).await;
        admin.admin.revoke_token(pb::RevokeTokenRequest { token_id: revoked.token_id.clone() }).await.expect("revoke");
        let limited = pb::IssueTokenRequest { max_requests: Some(1), ..issue(pb::Role::Operator, HOME) };
        let used_up = issued(admin, limited).await;
        let mut spend = server.clients(&used_up.token).await;
        spend
            .members
            .list_members(pb::ListMembersRequest { program_id: HOME.into(), ..Default::default() })
            .await
            .expect("the one call");
        let admin_token = issued(admin, issue(pb::Role::Admin, "")).await;
        let operator = issued(admin, issue(pb::Role::Operator, HOME)).await;
        let viewer = issued(admin, issue(pb::Role::Viewer, HOME)).await;
        let other = issued(admin, issue(pb::Role::Operator, OTHER)).await;
        let victim = issued(admin, issue(pb::Role::Viewer, HOME)).await;

        let mut waiting = server.clients(&expired.token).await;
        let patience = Patience::new("the expiring token to expire");
        while waiting.audit.verify_log(pb::VerifyLogRequest {}).await.is_ok() {
            patience.next().await;
        }
        let bearer = |token: &pb::IssueTokenResponse| Some(format!("Bearer {}", token.token));
        let headers = vec![
            (Who::NoToken, None),
            (Who::Unknown, Some(format!("Bearer {}", near_miss(&operator.token)))),
            (Who::Expired, bearer(&expired)),
            (Who::Revoked, bearer(&revoked)),
            (Who::UsedUp, bearer(&used_up)),
            (Who::Admin, bearer(&admin_token)),
            (Who::Operator, bearer(&operator)),
            (Who::Viewer, bearer(&viewer)),
            (Who::OtherOperator, bearer(&other)),
        ];
        assert_eq!(headers.iter().map(|(who, _)| *who).collect::<Vec<_>>(), EVERYONE);
        let secrets = [&expired, &revoked, &used_up, &admin_token, &operator, &viewer, &other, &victim]
            .iter()
            .map(|token| token.token.clone())
            .chain([server.admin_token.clone(), near_miss(&operator.token)])
            .collect();
        Callers { headers, secrets, victim }
    }
}

/// The log's head: refused calls must leave it where it was.
async fn head(admin: &mut Clients) -> pb::VerifyLogResponse {
    admin.audit.verify_log(pb::VerifyLogRequest {}).await.expect("verify log").into_inner()
}

/// A mismatch in the matrix: who called what, what SPEC §11 gives, what came.
#[derive(Debug)]
#[allow(dead_code)] // Read through Debug in the failure message.
struct Wrong {
    who: Who,
    rpc: String,
    expected: Verdict,
    got: Code,
    message: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_every_caller_as_spec_11_says_and_refused_calls_change_nothing() {
    let (server, mut admin) = started("tenancy-matrix", &[HOME, OTHER]).await;
    admin.add(HOME, "alice", 100).await;
    admin.add(OTHER, "bob", 50).await;
    let rpcs = rpcs();
    let names: Vec<String> = rpcs.iter().map(Rpc::path).collect();
    for expected in ["/ledger.v1.PointsService/AddPoints", "/ledger.v1.VouchersService/ImportPointStatements"] {
        assert!(names.iter().any(|name| name == expected), "the protos have {expected}: {names:?}");
    }
    assert!(rpcs.len() >= 34, "the 34 RPCs of SPEC §10 at least: {names:?}");
    let imports: Vec<&Rpc> = rpcs.iter().filter(|rpc| rpc.method.starts_with("Import")).collect();
    assert!(imports.len() >= 2, "{names:?}");
    assert!(imports.iter().all(|rpc| rpc.lists.len() == 1), "imports name their brands in items: {imports:?}");
    let callers = Callers::issue(&server, &mut admin).await;
    let channel = server.channel().await;
    let mut wrong = Vec::new();
    let mut messages = Vec::new();

    // First every call SPEC §11 refuses, then the log's head must be where it was.
    let before = head(&mut admin).await;
    let mut refused_calls = 0;
    for (who, header) in &callers.headers {
        for rpc in &rpcs {
            let Verdict::Refused(code) = verdict(*who, rpc.needs()) else { continue };
            let body = request_for(rpc, &callers.victim.token_id);
            let got = call(channel.clone(), rpc, body, header.as_deref())
                .await
                .map_or_else(|status| status, |()| Status::ok(""));
            refused_calls += 1;
            messages.push(got.message().to_owned());
            if got.code() != code {
                let expected = Verdict::Refused(code);
                wrong.push(Wrong {
                    who: *who,
                    rpc: rpc.path(),
                    expected,
                    got: got.code(),
                    message: got.message().into(),
                });
            }
        }
    }
    assert_eq!(head(&mut admin).await, before, "{refused_calls} refused calls changed the log");
    let mut victim = server.clients(&callers.victim.token).await;
    victim.members.get_member(get_member(HOME, "alice")).await.expect("no refused RevokeToken ended the victim");
    assert_eq!(admin.member(HOME, "alice").await.points, 100);
    assert_eq!(admin.member(OTHER, "bob").await.points, 50);

    // Then every call it allows: past auth, whatever the minimal request then gets.
    for (who, header) in &callers.headers {
        for rpc in &rpcs {
            if verdict(*who, rpc.needs()) != Verdict::Allowed {
                continue;
            }
            let body = request_for(rpc, &callers.victim.token_id);
            let Err(got) = call(channel.clone(), rpc, body, header.as_deref()).await else { continue };
            messages.push(got.message().to_owned());
            if matches!(got.code(), Code::Unauthenticated | Code::PermissionDenied) {
                let message = got.message().to_owned();
                wrong.push(Wrong { who: *who, rpc: rpc.path(), expected: Verdict::Allowed, got: got.code(), message });
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {} cells wrong: {wrong:#?}", wrong.len(), rpcs.len() * EVERYONE.len());
    for secret in &callers.secrets {
        for message in &messages {
            assert!(!message.contains(secret.as_str()), "an error message carries a secret: {message}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_quota_holds_under_a_thousand_concurrent_calls() {
    // More than one lease of calls (`USED_LEASE_CALLS`, 256), so that the quota is
    // also extended durably while the calls race.
    const MAX_REQUESTS: u64 = 300;
    const CALLS: usize = 1_000;
    // Twenty calls a connection: well under any per-connection cap on concurrent streams.
    const CONNECTIONS: usize = 50;
    let (server, mut admin) = started("tenancy-quota", &[HOME]).await;
    admin.add(HOME, "alice", 1).await;
    let request = pb::IssueTokenRequest { max_requests: Some(MAX_REQUESTS), ..issue(pb::Role::Operator, HOME) };
    let token = issued(&mut admin, request).await;
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        clients.push(server.clients(&token.token).await);
    }
    // Half the calls read, half add a point: the points added count the writes let in.
    let start = Arc::new(tokio::sync::Barrier::new(CALLS));
    let mut tasks = Vec::with_capacity(CALLS);
    for index in 0..CALLS {
        let mut client = clients[index % CONNECTIONS].clone();
        let start = Arc::clone(&start);
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            if index.is_multiple_of(2) {
                client.members.get_member(get_member(HOME, "alice")).await.map(drop)
            } else {
                let add = pb::AddPointsRequest {
                    program_id: HOME.into(),
                    member_id: "alice".into(),
                    points: 1,
                    remark: "quota".into(),
                    ..Default::default()
                };
                client.points.add_points(add).await.map(drop)
            }
        }));
    }
    let (mut accepted, mut accepted_adds, mut unauthenticated, mut other) = (0u64, 0i64, 0u64, Vec::new());
    for (index, task) in tasks.into_iter().enumerate() {
        match task.await.expect("caller task") {
            Ok(()) => {
                accepted += 1;
                accepted_adds += i64::from(!index.is_multiple_of(2));
            }
            Err(status) if status.code() == Code::Unauthenticated => unauthenticated += 1,
            Err(status) => other.push(status),
        }
    }
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((accepted, unauthenticated), (MAX_REQUESTS, 1_000 - MAX_REQUESTS));
    assert_eq!(admin.member(HOME, "alice").await.points, 1 + accepted_adds, "every add let in applied, no other");
    let mut spent = server.clients(&token.token).await;
    let status = spent.members.get_member(get_member(HOME, "alice")).await.expect_err("the quota is spent");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the data directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read a data file");
                files.push((path, bytes));
            }
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// What would give a secret away: the whole of it, its hex digits, their first half,
/// and the 32 bytes they spell.
fn tells(secret: &str) -> Vec<Vec<u8>> {
    let digits = secret.strip_prefix("ldg_").unwrap_or(secret);
    let mut tells = vec![secret.as_bytes().to_vec(), digits.as_bytes().to_vec()];
    tells.push(digits.as_bytes()[..digits.len() / 2].to_vec());
    if digits.len() == 64 && digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        tells.push((0..32).map(|at| u8::from_str_radix(&digits[2 * at..2 * at + 2], 16).expect("hex")).collect());
    }
    tells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_the_data_directory_the_server_output_or_any_error() {
    // The most the server can log, to give a leak every chance to show.
    let server = Server::start_logging(fresh_dir("tenancy-secrets"), &[], "trace");
    let mut admin = server.admin().await;
    for program in [HOME, OTHER] {
        admin.create_program(program).await;
    }
    admin.add(HOME, "alice", 100).await;
    let callers = Callers::issue(&server, &mut admin).await;
    let channel = server.channel().await;
    let mut errors = Vec::new();
    // Good and bad tokens, accepted and refused calls: a write and a read of each kind
    // of caller, in both programs, and headers mangled around a real secret.
    let mut headers: Vec<Option<String>> = callers.headers.iter().map(|(_, header)| header.clone()).collect();
    let real = callers.headers.iter().find(|(who, _)| *who == Who::Operator).and_then(|(_, h)| h.clone()).expect("op");
    let secret = real.strip_prefix("Bearer ").expect("bearer").to_owned();
    headers.extend(
        [format!("Basic {secret}"), format!("Bearer {secret}x"), secret.clone(), format!("Bearer  {secret} extra")]
            .map(Some),
    );
    for header in &headers {
        let mut client = match header {
            Some(header) => Clients::with_authorization(channel.clone(), header),
            None => Clients::with_authorization(channel.clone(), "none"),
        };
        for program in [HOME, OTHER] {
            let add = pb::AddPointsRequest {
                program_id: program.into(),
                member_id: "alice".into(),
                points: 1,
                remark: "secrets".into(),
                ..Default::default()
            };
            let results = [
                client.points.add_points(add).await.map(drop),
                client.members.get_member(get_member(program, "alice")).await.map(drop),
                client.admin.list_programs(pb::ListProgramsRequest {}).await.map(drop),
            ];
            errors.extend(results.into_iter().filter_map(Result::err));
        }
    }
    assert!(errors.len() > 40, "most of these calls fail: {}", errors.len());
    let (data_dir, first_admin) = (server.data_dir.clone(), server.admin_token.clone());
    let (status, output) = server.stop_with_output();
    assert!(status.success(), "{status:?}");

    let files = files_under(&data_dir);
    let paths: Vec<&PathBuf> = files.iter().map(|(path, _)| path).collect();
    let admin_file = data_dir.join("admin.token");
    assert!(paths.contains(&&admin_file), "{paths:?}");
    // Sanity: the scan does see the token records (they hold the token id).
    let token_id = callers.victim.token_id.as_bytes();
    assert!(files.iter().any(|(_, bytes)| contains(bytes, token_id)), "no token record in {paths:?}");
    for secret in &callers.secrets {
        for tell in tells(secret) {
            assert!(!contains(&output, &tell), "the server's output gives away {secret}");
            for (path, bytes) in &files {
                // The first admin token is written to DIR/admin.token on purpose (SPEC §11).
                if *path == admin_file && *secret == first_admin {
                    continue;
                }
                assert!(!contains(bytes, &tell), "{} gives away {secret}", path.display());
            }
            for error in &errors {
                assert!(!contains(error.message().as_bytes(), &tell), "an error gives away {secret}: {error:?}");
                assert!(!contains(error.details(), &tell), "error details give away {secret}: {error:?}");
            }
        }
    }
}
