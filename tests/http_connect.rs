//! HTTP/JSON beside gRPC on the same port (SPEC §17): the real `ledgerd` over
//! TCP, called with a plain HTTP client (hyper's; no gRPC library) in the
//! Connect protocol's JSON forms, as curl or a Connect client in any language
//! would call it.

mod support;

use axum::body::Bytes;
use http::{StatusCode, Version};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ledger_grpc::pb;
use prost::Message as _;
use serde_json::{Value, json};
use support::Server;
use tokio_rustls::rustls;

/// A plain HTTP client of one server.
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

/// What a call answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    version: Version,
    json: Value,
}

impl Http {
    fn new(server: &Server, token: &str) -> Http {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Http { client, base: format!("http://{}", server.address), token: Some(token.to_owned()) }
    }

    /// HTTP/2 with prior knowledge (h2c): no upgrade, the preface straight away.
    fn http2(server: &Server, token: &str) -> Http {
        let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
        Http { client, base: format!("http://{}", server.address), token: Some(token.to_owned()) }
    }

    fn anonymous(server: &Server) -> Http {
        Http { token: None, ..Http::new(server, "") }
    }

    fn request(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> http::Request<Full<Bytes>> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(http::header::CONTENT_TYPE, content_type);
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(Full::new(Bytes::from(body))).expect("a valid request")
    }

    async fn send(&self, request: http::Request<Full<Bytes>>) -> Answer {
        let response = self.client.request(request).await.expect("an HTTP answer");
        let (status, version) = (response.status(), response.version());
        let body = response.into_body().collect().await.expect("the whole body").to_bytes();
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&body)));
        Answer { status, version, json }
    }

    /// `POST /ledger.v1.<service>/<method>` with `body` as JSON.
    async fn call(&self, route: &str, body: Value) -> Answer {
        let body = serde_json::to_vec(&body).expect("JSON");
        self.send(self.request(http::Method::POST, &format!("/ledger.v1.{route}"), "application/json", body)).await
    }

    /// A call that must succeed: its answer's JSON.
    async fn ok(&self, route: &str, body: Value) -> Value {
        let answer = self.call(route, body).await;
        assert_eq!(answer.status, StatusCode::OK, "{route}: {answer:?}");
        answer.json
    }
}

/// Asserts a Connect error: the HTTP status, the code, and a readable
/// `google.rpc.BadRequest` or other detail when there is one; returns the JSON.
#[track_caller]
fn assert_error(answer: &Answer, status: StatusCode, code: &str) -> Value {
    assert_eq!((answer.status, answer.json["code"].as_str()), (status, Some(code)), "{answer:?}");
    assert!(answer.json["message"].as_str().is_some_and(|message| !message.is_empty()), "{answer:?}");
    for detail in answer.json["details"].as_array().into_iter().flatten() {
        assert!(detail["type"].as_str().is_some_and(|name| name.starts_with("google.rpc.")), "{detail}");
        assert!(detail["value"].as_str().is_some_and(|value| !value.is_empty()), "{detail}");
        assert!(detail["debug"].is_object(), "every detail is readable: {detail}");
    }
    answer.json.clone()
}

/// The `debug` of the error's detail of type `name`.
fn detail<'a>(error: &'a Value, name: &str) -> Option<&'a Value> {
    error["details"].as_array()?.iter().find(|detail| detail["type"] == name).map(|detail| &detail["debug"])
}

const PROGRAM: &str = "1001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_answers_json_over_http1_and_http2_with_connect_errors() {
    let server = Server::start("http-services");
    let http = Http::new(&server, &server.admin_token);

    // Admin: the canonical output is lowerCamelCase; parsers take both spellings.
    let program = http.ok("AdminService/CreateProgram", json!({"programId": PROGRAM, "name": "Cafe"})).await;
    assert_eq!((program["programId"].as_str(), program["name"].as_str()), (Some(PROGRAM), Some("Cafe")));
    assert!(program["createdAt"].as_str().is_some_and(|at| at.ends_with('Z')), "{program}");
    let listed = http.ok("AdminService/ListPrograms", json!({})).await;
    assert_eq!(listed["programs"][0]["programId"], PROGRAM);

    // Points, with snake_case input; 64-bit integers come back as strings.
    let add = json!({"program_id": PROGRAM, "member_id": "alice", "points": 120, "remark": "visit"});
    let receipt = http.ok("PointsService/AddPoints", add).await;
    assert_eq!((receipt["points"].as_str(), receipt["balance"].as_str()), (Some("120"), Some("120")), "{receipt}");

    // Credits.
    let credit = json!({"programId": PROGRAM, "creditId": "gift", "name": "Gift card", "unit": "TWD"});
    http.ok("CreditsService/DefineCredit", credit).await;
    let top_up =
        json!({"programId": PROGRAM, "memberId": "alice", "creditId": "gift", "amount": "7.25", "remark": "top-up"});
    assert_eq!(http.ok("CreditsService/AddCredits", top_up).await["balance"], "7.25");

    // Coupons.
    let grant = json!({"programId": PROGRAM, "memberId": "alice", "couponId": "coffee", "name": "Coffee", "count": 2});
    assert_eq!(http.ok("CouponsService/GrantCoupons", grant).await["count"], 2);

    // Vouchers: the program is the brand id.
    let shop = json!({"brandId": PROGRAM, "shopId": 7, "name": "Main street"});
    assert_eq!(http.ok("VouchersService/DefineShop", shop).await["name"], "Main street");

    // Tiers: enums and nested messages.
    let card = json!({"programId": PROGRAM, "name": "Bronze", "benefit": "coffee", "lowestAmount": "0"});
    http.ok("TiersService/CreateMemberCard", card).await;
    let cards = http.ok("TiersService/ListMemberCards", json!({"programId": PROGRAM})).await;
    assert_eq!(cards["cards"][0]["name"], "Bronze");

    // Audit.
    let verified = http.ok("AuditService/VerifyLog", json!({})).await;
    assert_eq!(verified["ok"], true, "{verified}");
    let activities = http.ok("AuditService/ListActivities", json!({"programId": PROGRAM, "memberId": "alice"})).await;
    assert!(!activities["activities"].as_array().expect("activities").is_empty(), "{activities}");

    // Members, over HTTP/2 (h2c, prior knowledge) this time.
    let http2 = Http::http2(&server, &server.admin_token);
    let answer = http2.call("MembersService/GetMember", json!({"programId": PROGRAM, "memberId": "alice"})).await;
    assert_eq!((answer.status, answer.version), (StatusCode::OK, Version::HTTP_2), "{answer:?}");
    assert_eq!(answer.json["points"], "120");
    assert_eq!(answer.json["coupons"][0]["count"], 2);

    // FAILED_PRECONDITION: an overspend is 400 failed_precondition, over both versions.
    let overspend = json!({"programId": PROGRAM, "memberId": "alice", "points": "5000", "remark": "tv"});
    for client in [&http, &http2] {
        let answer = client.call("PointsService/UsePoints", overspend.clone()).await;
        let error = assert_error(&answer, StatusCode::BAD_REQUEST, "failed_precondition");
        // The reason a program branches on, with what it is about (SPEC §13).
        let info = detail(&error, "google.rpc.ErrorInfo").expect("an ErrorInfo detail");
        assert_eq!(
            (info["reason"].as_str(), info["domain"].as_str()),
            (Some("INSUFFICIENT_POINTS"), Some("ledger.v1"))
        );
        assert_eq!(
            (info["metadata"]["available"].as_str(), info["metadata"]["requested"].as_str()),
            (Some("120"), Some("5000"))
        );
    }

    // INVALID_ARGUMENT with its field violations, readable under `debug`.
    let zero = json!({"programId": PROGRAM, "memberId": "alice", "points": 0, "remark": "none"});
    let error =
        assert_error(&http.call("PointsService/AddPoints", zero).await, StatusCode::BAD_REQUEST, "invalid_argument");
    let bad_request = detail(&error, "google.rpc.BadRequest").expect("a BadRequest detail");
    let fields: Vec<&str> =
        bad_request["fieldViolations"].as_array().into_iter().flatten().filter_map(|v| v["field"].as_str()).collect();
    assert!(fields.contains(&"points"), "{error}");
    let info = detail(&error, "google.rpc.ErrorInfo").expect("an ErrorInfo detail");
    assert_eq!(info["reason"], "INVALID_FIELD", "{error}");

    // UNAUTHENTICATED without a token and with a wrong one.
    let get = json!({"programId": PROGRAM, "memberId": "alice"});
    let anonymous = Http::anonymous(&server).call("MembersService/GetMember", get.clone()).await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthenticated");
    let wrong = Http::new(&server, "not-a-token").call("MembersService/GetMember", get.clone()).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");

    // NOT_FOUND and ALREADY_EXISTS follow Connect's table too.
    let nobody = json!({"programId": PROGRAM, "memberId": "nobody"});
    assert_error(&http.call("MembersService/GetMember", nobody).await, StatusCode::NOT_FOUND, "not_found");
    let again = json!({"programId": PROGRAM, "name": "Cafe"});
    assert_error(&http.call("AdminService/CreateProgram", again).await, StatusCode::CONFLICT, "already_exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_are_not_the_protocol_are_refused_naming_the_problem() {
    let server = Server::start("http-protocol");
    let http = Http::new(&server, &server.admin_token);

    let unknown = http.call("PointsService/GivePoints", json!({})).await;
    let error = assert_error(&unknown, StatusCode::NOT_FOUND, "unimplemented");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("GivePoints")), "{error}");

    let form = http.request(http::Method::POST, "/ledger.v1.AdminService/ListPrograms", "text/plain", b"{}".to_vec());
    let error = assert_error(&http.send(form).await, StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_argument");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("application/json")), "{error}");

    let broken =
        http.request(http::Method::POST, "/ledger.v1.AdminService/ListPrograms", "application/json", b"{".to_vec());
    let error = assert_error(&http.send(broken).await, StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("ListProgramsRequest")), "{error}");

    let misspelt = http.call("AdminService/CreateProgram", json!({"programme_id": "p"})).await;
    let error = assert_error(&misspelt, StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("programme_id")), "{error}");

    let charset = http.request(
        http::Method::POST,
        "/ledger.v1.AdminService/ListPrograms",
        "application/json; charset=utf-8",
        b"{}".to_vec(),
    );
    assert_eq!(http.send(charset).await.status, StatusCode::OK, "a charset parameter is fine");

    let mut late =
        http.request(http::Method::POST, "/ledger.v1.AdminService/ListPrograms", "application/json", b"{}".to_vec());
    late.headers_mut().insert("connect-timeout-ms", http::HeaderValue::from_static("soon"));
    let error = assert_error(&http.send(late).await, StatusCode::BAD_REQUEST, "invalid_argument");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("connect-timeout-ms")), "{error}");
    let mut patient =
        http.request(http::Method::POST, "/ledger.v1.AdminService/ListPrograms", "application/json", b"{}".to_vec());
    patient.headers_mut().insert("connect-timeout-ms", http::HeaderValue::from_static("60000"));
    assert_eq!(http.send(patient).await.status, StatusCode::OK);

    // Connect clients send protobuf unless told otherwise: it passes as it came.
    let created = pb::CreateProgramRequest { program_id: PROGRAM.into(), name: "Cafe".into() };
    let binary = http.request(
        http::Method::POST,
        "/ledger.v1.AdminService/CreateProgram",
        "application/proto",
        created.encode_to_vec(),
    );
    let response = http.client.request(binary).await.expect("an HTTP answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[http::header::CONTENT_TYPE], "application/proto");
    let body = response.into_body().collect().await.expect("the whole body").to_bytes();
    assert_eq!(pb::Program::decode(body).expect("a Program").program_id, PROGRAM);
}

/// One Connect envelope: flags, big-endian length, payload.
fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![flags];
    bytes.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Reads a Connect server stream envelope by envelope as it arrives.
struct Envelopes {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
}

impl Envelopes {
    /// The next envelope's flags and JSON.
    async fn next(&mut self) -> (u8, Value) {
        loop {
            if let Some(prefix) = self.buffer.first_chunk::<5>() {
                let [flags, length @ ..] = *prefix;
                let length = usize::try_from(u32::from_be_bytes(length)).expect("fits");
                if self.buffer.len() >= 5 + length {
                    let rest = self.buffer.split_off(5 + length);
                    let json = serde_json::from_slice(&self.buffer[5..]).expect("an envelope holds JSON");
                    self.buffer = rest;
                    return (flags, json);
                }
            }
            let frame = self.body.frame().await.expect("the stream goes on").expect("a frame");
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}

async fn open_stream(http: &Http, request: Value) -> (StatusCode, Envelopes) {
    let body = envelope(0, &serde_json::to_vec(&request).expect("JSON"));
    let request =
        http.request(http::Method::POST, "/ledger.v1.AuditService/StreamEvents", "application/connect+json", body);
    let response = http.client.request(request).await.expect("an HTTP answer");
    let content_type = response.headers().get(http::header::CONTENT_TYPE).cloned();
    assert_eq!(content_type.as_ref().and_then(|value| value.to_str().ok()), Some("application/connect+json"));
    (response.status(), Envelopes { body: response.into_body(), buffer: Vec::new() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_events_sends_the_existing_events_then_follows_the_log() {
    let server = Server::start("http-stream");
    let http = Http::new(&server, &server.admin_token);
    http.ok("AdminService/CreateProgram", json!({"programId": PROGRAM, "name": "Cafe"})).await;
    for points in [10, 20] {
        let add = json!({"programId": PROGRAM, "memberId": "alice", "points": points, "remark": "visit"});
        http.ok("PointsService/AddPoints", add).await;
    }

    let (status, mut stream) = open_stream(&http, json!({"fromSequence": "1", "programId": PROGRAM})).await;
    assert_eq!(status, StatusCode::OK);
    let mut sequences = Vec::new();
    for _ in 0..3 {
        let (flags, event) = stream.next().await;
        assert_eq!(flags, 0, "a message, not the end: {event}");
        assert_eq!(event["programId"], PROGRAM, "{event}");
        sequences.push(event["sequence"].as_str().expect("a sequence").parse::<u64>().expect("a number"));
    }
    assert_eq!(sequences, [1, 2, 3]);

    // Written after the stream opened: the stream follows the log.
    let add = json!({"programId": PROGRAM, "memberId": "bob", "points": 5, "remark": "later"});
    let receipt = http.ok("PointsService/AddPoints", add).await;
    let (flags, event) = stream.next().await;
    assert_eq!((flags, &event["sequence"]), (0, &receipt["transactionId"]), "{event}");
    assert_eq!(event["memberId"], "bob");

    // An error ends the stream in its end-of-stream envelope, in a 200.
    let (status, mut refused) = open_stream(&Http::anonymous(&server), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (flags, end) = refused.next().await;
    assert_eq!((flags, end["error"]["code"].as_str()), (2, Some("unauthenticated")), "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_quota_counts_grpc_and_http_calls_together() {
    const QUOTA: usize = 5;
    let server = Server::start("http-quota");
    let admin = Http::new(&server, &server.admin_token);
    admin.ok("AdminService/CreateProgram", json!({"programId": PROGRAM, "name": "Cafe"})).await;
    let issue = json!({"role": "VIEWER", "programId": PROGRAM, "name": "kiosk", "maxRequests": QUOTA.to_string()});
    let token = admin.ok("AdminService/IssueToken", issue).await["token"].as_str().expect("a token").to_owned();

    let http = Http::new(&server, &token);
    let mut grpc = server.clients(&token).await;
    let mut accepted = 0;
    for call in 0..2 * QUOTA {
        let ok = if call % 2 == 0 {
            let answer = http.call("TiersService/ListMemberCards", json!({"programId": PROGRAM})).await;
            if answer.status != StatusCode::OK {
                assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthenticated");
            }
            answer.status == StatusCode::OK
        } else {
            let request = pb::ListMemberCardsRequest { program_id: PROGRAM.into() };
            match grpc.tiers.list_member_cards(request).await {
                Ok(_) => true,
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
                    false
                }
            }
        };
        accepted += usize::from(ok);
    }
    assert_eq!(accepted, QUOTA, "exactly the token's max_requests calls succeed, whichever the transport");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_rpc_of_every_service() {
    let server = Server::start("http-openapi");
    let http = Http::anonymous(&server);
    let answer = http.send(http.request(http::Method::GET, "/openapi.json", "application/json", Vec::new())).await;
    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.json;
    assert!(document["openapi"].as_str().is_some_and(|version| version.starts_with("3.")), "an OpenAPI 3 document");
    assert_eq!(document["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");

    // Every method of every ledger.v1 service in the descriptor set the build made.
    let descriptors = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut methods = 0;
    for file in descriptors.file.iter().filter(|file| file.package() == "ledger.v1") {
        for service in &file.service {
            for method in &service.method {
                methods += 1;
                let path = format!("/ledger.v1.{}/{}", service.name(), method.name());
                let operation = &document["paths"][&path]["post"];
                assert!(operation.is_object(), "{path} is in /openapi.json");
                let input = method.input_type().trim_start_matches('.');
                let schema =
                    operation["requestBody"]["content"].as_object().and_then(|content| content.values().next());
                let reference = schema.and_then(|schema| schema["schema"]["$ref"].as_str()).unwrap_or_default();
                assert_eq!(reference, format!("#/components/schemas/{input}"), "{path}");
                let name = reference.rsplit('/').next().unwrap_or_default();
                assert!(document["components"]["schemas"][name]["properties"].is_object(), "{name} has a schema");
            }
        }
    }
    assert!(methods >= 30, "the descriptor set has the services: {methods} methods");
    for seed in ["/api/external/voucher_statements", "/api/point_statements", "/api/points/bulk_add_point"] {
        assert!(document["paths"][seed]["post"]["summary"].is_string(), "{seed} is listed");
    }
    assert!(document["components"]["schemas"]["connect.Error"]["properties"]["code"].is_object());
}

/// One call over TLS with ALPN offering only `alpn`: the protocol agreed and the answer.
async fn call_over_tls(
    server: &Server,
    ca: &rustls::pki_types::CertificateDer<'static>,
    alpn: &str,
) -> (Version, Value) {
    use hyper_util::rt::TokioIo;
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("the test's certificate as a root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    let tcp = tokio::net::TcpStream::connect(&server.address).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("the handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn.as_bytes()), "the server agreed to {alpn}");
    let request = http::Request::post("/ledger.v1.AdminService/ListPrograms")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {}", server.admin_token))
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("a request");
    let response = if alpn == "h2" {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.expect("h2");
        tokio::spawn(connection);
        let mut request = request;
        *request.uri_mut() = format!("https://localhost{}", request.uri()).parse().expect("an absolute URI");
        sender.send_request(request).await.expect("an answer")
    } else {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.expect("http/1.1");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("an answer")
    };
    assert_eq!(response.status(), StatusCode::OK);
    let version = response.version();
    let body = response.into_body().collect().await.expect("the whole body").to_bytes();
    (version, serde_json::from_slice(&body).expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_clients_of_http1_alone_and_of_http2_are_both_served() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let dir = support::fresh_dir("http-tls-certificates");
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert, certified.cert.pem()).expect("write server.pem");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write server.key");
    let flags = ["--tls-cert", cert.to_str().expect("utf-8 path"), "--tls-key", key.to_str().expect("utf-8 path")];
    let server = Server::start_in(support::fresh_dir("http-tls"), &flags);
    // tonic's own TLS offers h2 alone, and a client offering only http/1.1 (curl
    // --http1.1, urllib3) failed its handshake.
    for (alpn, version) in [("http/1.1", Version::HTTP_11), ("h2", Version::HTTP_2)] {
        let (agreed, answer) = call_over_tls(&server, certified.cert.der(), alpn).await;
        assert_eq!(agreed, version);
        assert!(answer.is_object(), "{answer}");
    }
}
