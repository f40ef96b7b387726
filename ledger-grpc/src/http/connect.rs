//! The Connect protocol's forms of every RPC (SPEC §17): unary
//! `POST /ledger.v1.<Service>/<Method>` with `application/json` (or
//! `application/proto`, Connect clients' default), and server-streaming
//! `StreamEvents` with `application/connect+json` (or `+proto`).
//!
//! No RPC has code of its own here. The routes come from the descriptor set the
//! build makes (`pb::FILE_DESCRIPTOR_SET`); a request's JSON becomes a
//! `DynamicMessage` of the method's input type, is encoded to protobuf and sent
//! in-process to the tonic services as a gRPC request, with the caller's headers
//! (the token) and the connection's extensions (its address, its busy marker). So
//! an HTTP call passes the very auth, quota, validation and error mapping a gRPC
//! call does; only the wire differs. The answer's frames become JSON the same
//! way, and any `tonic::Status` (code, message and every `google.rpc` detail in
//! `grpc-status-details-bin`) becomes the Connect error JSON.

use crate::status::ApiError;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt as _;
use ledger_core::limits::JSON_REQUEST_BYTES_MAX;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, ServiceDescriptor};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use tonic::{Code, Status};
use tower::ServiceExt as _;

/// The proto package every Connect route belongs to.
pub const PACKAGE: &str = "ledger.v1";

/// Unary requests and answers, and every unary error.
const JSON: &str = "application/json";
const PROTO: &str = "application/proto";
/// Streaming requests and answers: enveloped messages.
const CONNECT_JSON: &str = "application/connect+json";
const CONNECT_PROTO: &str = "application/connect+proto";
/// A streaming envelope's prefix: one byte of flags, four of big-endian length.
const ENVELOPE_PREFIX_BYTES: usize = 5;
/// Envelope flag: the payload is compressed (refused: we offer no compression).
const FLAG_COMPRESSED: u8 = 0x01;
/// Envelope flag: the last envelope of a stream, holding its outcome.
const FLAG_END_STREAM: u8 = 0x02;

/// Every message the routes carry (`ledger.v1` and its imports) and the
/// `google.rpc` error details, for the JSON of both.
pub fn descriptors() -> &'static DescriptorPool {
    static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
        let mut pool = DescriptorPool::new();
        // Both sets are compiled into this binary; a failure is a build bug.
        pool.decode_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET).expect("ledger.v1 descriptor set decodes");
        pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .expect("google.rpc descriptor set decodes");
        pool
    });
    &POOL
}

/// The services with Connect routes, in the descriptor set's order.
pub fn services() -> impl Iterator<Item = ServiceDescriptor> {
    descriptors().services().filter(|service| service.package_name() == PACKAGE)
}

/// A method's route: `/ledger.v1.PointsService/AddPoints`.
pub fn path(method: &MethodDescriptor) -> String {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
}

/// Routes for the Connect forms of every unary and server-streaming method;
/// `grpc` is the tonic services they call.
pub fn router(grpc: Router) -> Router {
    let mut router = Router::new();
    for method in services().flat_map(|service| service.methods().collect::<Vec<_>>()) {
        let path = path(&method);
        let grpc = grpc.clone();
        // Client and bidirectional streaming have no JSON form here; no RPC uses them.
        let handler = match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => axum::routing::post(move |request| unary(method.clone(), grpc.clone(), request)),
            (false, true) => axum::routing::post(move |request| streaming(method.clone(), grpc.clone(), request)),
            (true, _) => continue,
        };
        router = router.route(&path, handler);
    }
    router
}

/// Any route nobody serves: Connect's `unimplemented`, HTTP 404.
pub async fn unknown_route(request: http::Request<Body>) -> Response {
    let message = format!(
        "no route {} {}: RPCs are POST /{PACKAGE}.<Service>/<Method> (GET /openapi.json lists every route)",
        request.method(),
        request.uri().path()
    );
    error_response(&unimplemented(message), StatusCode::NOT_FOUND)
}

async fn unary(method: MethodDescriptor, grpc: Router, request: http::Request<Body>) -> Response {
    match unary_call(&method, grpc, request).await {
        Ok(response) => response,
        Err(failure) => failure.into_response(),
    }
}

async fn unary_call(
    method: &MethodDescriptor,
    grpc: Router,
    request: http::Request<Body>,
) -> Result<Response, Failure> {
    let (parts, body) = request.into_parts();
    // Read first, whatever follows: an HTTP/1.1 server that answers before it
    // read the body closes the connection, and the client, still sending, sees
    // a broken pipe instead of the answer.
    let bytes = read_body(body).await?;
    let codec = Codec::of(&parts.headers, Codec::UNARY)?;
    check_protocol(&parts.headers)?;
    if let Some(encoding) = parts.headers.get(header::CONTENT_ENCODING).filter(|value| *value != "identity") {
        let message = format!("content-encoding {encoding:?} is not supported: send the request uncompressed");
        return Err(Failure::Status(unimplemented(message)));
    }
    let input = codec.decode(&method.input(), &bytes)?;
    let Some(timeout) = timeout(&parts.headers)? else {
        return answer(method, codec, call_grpc(grpc, parts, input).await?).await;
    };
    // As a gRPC deadline: the caller stops waiting; a write already queued may still commit.
    let answered = async { answer(method, codec, call_grpc(grpc, parts, input).await?).await };
    tokio::time::timeout(timeout, answered).await.unwrap_or_else(|_| {
        let message = format!("no answer within connect-timeout-ms ({} ms)", timeout.as_millis());
        Err(deadline_exceeded(message).into())
    })
}

/// A unary call's timeout, from `connect-timeout-ms` (at most 10 digits, as Connect says).
fn timeout(headers: &HeaderMap) -> Result<Option<std::time::Duration>, Failure> {
    let Some(value) = headers.get("connect-timeout-ms") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    match text.parse::<u64>() {
        Ok(ms) if text.len() <= 10 => Ok(Some(std::time::Duration::from_millis(ms))),
        _ => {
            let rule = format!("must be a whole number of milliseconds, 1 to 10 digits, got {value:?}");
            Err(crate::status::invalid_field("connect-timeout-ms", rule).into())
        }
    }
}

/// The service's answer to a unary call, in the caller's codec.
async fn answer(method: &MethodDescriptor, codec: Codec, response: Response) -> Result<Response, Failure> {
    let (head, body) = response.into_parts();
    let collected = body.collect().await.map_err(|error| internal(format!("reading the answer: {error}")))?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    if let Some(status) = failed(&trailers) {
        return Err(status.into());
    }
    let mut frames = collected.to_bytes();
    let Some(message) = take_message(&mut frames)? else {
        return Err(internal("the service answered no message").into());
    };
    let answer = codec.encode(&method.output(), message)?;
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, codec.media_type)], answer).into_response();
    copy_metadata(&head.headers, "", response.headers_mut());
    copy_metadata(&trailers, "trailer-", response.headers_mut());
    Ok(response)
}

async fn streaming(method: MethodDescriptor, grpc: Router, request: http::Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    // Read first, as for a unary call. Before the stream starts, a protocol error
    // may use the HTTP status; after, errors go in the end-of-stream message of a
    // 200. `connect-timeout-ms` is not applied: an event stream follows the log
    // for as long as its caller reads.
    let envelope = read_body(body).await;
    let codec = match Codec::of(&parts.headers, Codec::STREAMING).and_then(|codec| {
        check_protocol(&parts.headers)?;
        Ok(codec)
    }) {
        Ok(codec) => codec,
        Err(failure) => return failure.into_response(),
    };
    let opened = async {
        let envelope = envelope?;
        let message = open_envelope(&envelope)?;
        let input = codec.decode(&method.input(), message)?;
        call_grpc(grpc, parts, input).await
    };
    let body = match opened.await {
        Ok(response) => Body::new(ServerStream {
            grpc: response.into_body(),
            output: method.output(),
            codec,
            pending: Bytes::new(),
            finished: false,
        }),
        Err(failure) => Body::from(end_of_stream(&failure.into_status())),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, codec.media_type)], body).into_response()
}

/// Why a request got no answer from the service, before the service was asked
/// or from its status.
enum Failure {
    /// A content type the route does not take: HTTP 415, code `invalid_argument`.
    ContentType(Status),
    Status(Status),
}

impl Failure {
    fn into_status(self) -> Status {
        match self {
            Failure::ContentType(status) | Failure::Status(status) => status,
        }
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Failure {
        Failure::Status(status)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::ContentType(status) => error_response(&status, StatusCode::UNSUPPORTED_MEDIA_TYPE),
            Failure::Status(status) => {
                let http = http_status(status.code());
                error_response(&status, http)
            }
        }
    }
}

/// How a route's messages travel: JSON (the proto3 JSON mapping) or protobuf.
#[derive(Clone, Copy)]
struct Codec {
    media_type: &'static str,
    json: bool,
}

impl Codec {
    const UNARY: [Codec; 2] = [Codec { media_type: JSON, json: true }, Codec { media_type: PROTO, json: false }];
    const STREAMING: [Codec; 2] =
        [Codec { media_type: CONNECT_JSON, json: true }, Codec { media_type: CONNECT_PROTO, json: false }];

    /// The codec the request's content type names, among `offered`.
    fn of(headers: &HeaderMap, offered: [Codec; 2]) -> Result<Codec, Failure> {
        let given = headers.get(header::CONTENT_TYPE).map(|value| value.to_str().unwrap_or("(not text)"));
        // Parameters such as `; charset=utf-8` are allowed: JSON is UTF-8 anyway.
        let media_type = given.and_then(|value| value.split(';').next()).map(str::trim).unwrap_or_default();
        if let Some(codec) = offered.into_iter().find(|codec| media_type.eq_ignore_ascii_case(codec.media_type)) {
            return Ok(codec);
        }
        let [json, proto] = offered.map(|codec| codec.media_type);
        let rule = format!("must be {json} (or {proto}), got {}", given.unwrap_or("none"));
        Err(Failure::ContentType(crate::status::invalid_field("content-type", rule)))
    }

    /// The request as protobuf. Protobuf passes as it came: the service's own
    /// codec decodes and checks it, as for a gRPC call.
    fn decode(self, input: &MessageDescriptor, bytes: &[u8]) -> Result<Bytes, Failure> {
        if self.json { from_json(input, bytes) } else { Ok(Bytes::copy_from_slice(bytes)) }
    }

    fn encode(self, output: &MessageDescriptor, message: Bytes) -> Result<Bytes, Status> {
        if self.json { to_json(output, &message).map(Bytes::from) } else { Ok(message) }
    }
}

/// Connect clients may name the protocol version; only version 1 exists.
fn check_protocol(headers: &HeaderMap) -> Result<(), Failure> {
    match headers.get("connect-protocol-version") {
        Some(version) if version != "1" => {
            let rule = format!("must be 1, got {version:?}");
            Err(crate::status::invalid_field("connect-protocol-version", rule).into())
        }
        _ => Ok(()),
    }
}

async fn read_body(body: Body) -> Result<Bytes, Failure> {
    axum::body::to_bytes(body, JSON_REQUEST_BYTES_MAX).await.map_err(|error| {
        // The only error besides the limit is a connection gone mid-body, whose
        // answer nobody reads.
        let message = format!("request: the body must be at most {JSON_REQUEST_BYTES_MAX} bytes ({error})");
        Failure::Status(crate::limits::exhausted(
            ledger_core::reason::REQUEST_TOO_LARGE,
            message,
            JSON_REQUEST_BYTES_MAX,
            "request",
        ))
    })
}

/// The message of a streaming request's one envelope.
fn open_envelope(envelope: &[u8]) -> Result<&[u8], Failure> {
    let invalid = |rule: &str| Failure::Status(crate::status::invalid_field("request", rule));
    let Some((prefix, json)) = envelope.split_first_chunk::<ENVELOPE_PREFIX_BYTES>() else {
        return Err(invalid("a streaming request is one envelope: a flags byte, a 4-byte length, the message"));
    };
    let [flags, length @ ..] = *prefix;
    if flags & FLAG_COMPRESSED != 0 {
        let message = "the request envelope is compressed: send it uncompressed".to_owned();
        return Err(unimplemented(message).into());
    }
    if usize::try_from(u32::from_be_bytes(length)).ok() != Some(json.len()) {
        return Err(invalid("the envelope's length is not the length of the message that follows it"));
    }
    Ok(json)
}

fn from_json(input: &MessageDescriptor, json: &[u8]) -> Result<Bytes, Failure> {
    let invalid = |error: serde_json::Error| {
        let rule = format!("not the proto3 JSON of {} ({error})", input.full_name());
        Failure::Status(crate::status::invalid_field("request", rule))
    };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let message = DynamicMessage::deserialize(input.clone(), &mut deserializer).map_err(invalid)?;
    deserializer.end().map_err(invalid)?;
    Ok(message.encode_to_vec().into())
}

fn to_json(output: &MessageDescriptor, encoded: &[u8]) -> Result<Vec<u8>, Status> {
    let message = DynamicMessage::decode(output.clone(), encoded)
        .map_err(|error| internal(format!("the service's answer does not decode: {error}")))?;
    // The canonical proto3 JSON: lowerCamelCase names, defaults left out, 64-bit
    // integers as strings, enums by name.
    serde_json::to_vec(&message).map_err(|error| internal(format!("the answer as JSON: {error}")))
}

/// Sends `message` to the tonic services as a gRPC request carrying the
/// caller's headers and the connection's extensions; the answer's head and body,
/// or its status when the answer is headers only.
async fn call_grpc(grpc: Router, mut parts: http::request::Parts, message: Bytes) -> Result<Response, Failure> {
    parts.headers.retain_metadata();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    parts.headers.insert(header::TE, HeaderValue::from_static("trailers"));
    let length = u32::try_from(message.len()).map_err(|_| internal("a message of more than 4 GiB"))?;
    let mut frame = Vec::with_capacity(ENVELOPE_PREFIX_BYTES + message.len());
    frame.push(0);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&message);
    let request = http::Request::from_parts(parts, Body::from(frame));
    let response = match grpc.oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    if let Some(status) = failed(response.headers()) {
        return Err(status.into());
    }
    Ok(response)
}

/// Drops what only the HTTP or Connect layer reads, keeping the caller's
/// metadata (`authorization` first of all).
trait RetainMetadata {
    fn retain_metadata(&mut self);
}

impl RetainMetadata for HeaderMap {
    fn retain_metadata(&mut self) {
        let protocol = |name: &HeaderName| {
            let name = name.as_str();
            name.starts_with("connect-")
                || name.starts_with("grpc-")
                || matches!(
                    name,
                    "content-type"
                        | "content-length"
                        | "content-encoding"
                        | "accept-encoding"
                        | "connection"
                        | "keep-alive"
                        | "transfer-encoding"
                        | "upgrade"
                        | "te"
                        | "host"
                )
        };
        let names: Vec<HeaderName> = self.keys().filter(|name| protocol(name)).cloned().collect();
        for name in names {
            self.remove(name);
        }
    }
}

/// The status in `headers` (trailers, or the head of a headers-only answer)
/// when it is not OK.
fn failed(headers: &HeaderMap) -> Option<Status> {
    let status = Status::from_header_map(headers)?;
    (status.code() != Code::Ok).then_some(status)
}

/// The service's metadata for the caller, under `prefix` (Connect puts a unary
/// call's trailers in headers named `trailer-…`).
fn copy_metadata(from: &HeaderMap, prefix: &str, to: &mut HeaderMap) {
    for (name, value) in from {
        let name = name.as_str();
        if name.starts_with("grpc-") || name == "content-type" || name == "content-length" {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(format!("{prefix}{name}").as_bytes()) {
            to.append(name, value.clone());
        }
    }
}

/// One gRPC length-prefixed message off the front of `frames`, if whole.
fn take_message(frames: &mut Bytes) -> Result<Option<Bytes>, Status> {
    let Some(prefix) = frames.first_chunk::<ENVELOPE_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let [flags, length @ ..] = *prefix;
    if flags & FLAG_COMPRESSED != 0 {
        return Err(internal("the service compressed a message nobody asked it to compress"));
    }
    let length = usize::try_from(u32::from_be_bytes(length)).map_err(|_| internal("message too long"))?;
    if frames.len() < ENVELOPE_PREFIX_BYTES + length {
        return Ok(None);
    }
    let mut message = frames.split_to(ENVELOPE_PREFIX_BYTES + length);
    Ok(Some(message.split_off(ENVELOPE_PREFIX_BYTES)))
}

/// Connect's HTTP status for each code (connectrpc.com/docs/protocol, "Error
/// codes"; `failed_precondition` is 400, no longer 412).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// Connect's name of each code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The Connect error JSON: `{"code", "message", "details": [{"type", "value",
/// "debug"}]}`.
#[derive(serde::Serialize)]
struct ConnectError {
    code: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<ConnectDetail>,
}

#[derive(serde::Serialize)]
struct ConnectDetail {
    /// The detail's full message name, `google.rpc.ErrorInfo`.
    #[serde(rename = "type")]
    type_name: String,
    /// The encoded detail, base64 (standard alphabet, no padding).
    value: String,
    /// The detail as proto3 JSON, for people and for clients that do not decode `value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    debug: Option<serde_json::Value>,
}

impl ConnectError {
    fn of(status: &Status) -> ConnectError {
        ConnectError { code: code_name(status.code()), message: status.message().to_owned(), details: details(status) }
    }
}

/// Every detail of `status` (a `google.rpc.Status` in `grpc-status-details-bin`),
/// whatever its type; `debug` for the types the descriptor pool knows.
fn details(status: &Status) -> Vec<ConnectDetail> {
    let Ok(rpc_status) = tonic_types::pb::Status::decode(status.details()) else {
        return Vec::new();
    };
    let base64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    rpc_status
        .details
        .into_iter()
        .map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default().to_owned();
            let debug = descriptors()
                .get_message_by_name(&type_name)
                .and_then(|descriptor| DynamicMessage::decode(descriptor, any.value.as_slice()).ok())
                .and_then(|message| serde_json::to_value(&message).ok());
            ConnectDetail { type_name, value: base64.encode(&any.value), debug }
        })
        .collect()
}

fn error_response(status: &Status, http: StatusCode) -> Response {
    let json = serde_json::to_vec(&ConnectError::of(status)).unwrap_or_default();
    (http, [(header::CONTENT_TYPE, JSON)], json).into_response()
}

/// The end-of-stream envelope: `{}` when the stream ended well, else
/// `{"error": …}`.
fn end_of_stream(status: &Status) -> Bytes {
    #[derive(serde::Serialize)]
    struct EndOfStream {
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ConnectError>,
    }
    let error = (status.code() != Code::Ok).then(|| ConnectError::of(status));
    envelope(FLAG_END_STREAM, &serde_json::to_vec(&EndOfStream { error }).unwrap_or_default())
}

fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    // A payload beyond 4 GiB cannot be framed; our messages are far smaller.
    let length = u32::try_from(payload.len()).expect("an envelope's payload fits 4 GiB");
    let mut bytes = Vec::with_capacity(ENVELOPE_PREFIX_BYTES + payload.len());
    bytes.push(flags);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes.into()
}

/// A gRPC server stream's answer as Connect's: each message as an enveloped
/// JSON message when it arrives, then the end-of-stream envelope with the status
/// from the trailers. Dropping it (the caller went away) drops the gRPC stream.
struct ServerStream {
    grpc: Body,
    output: MessageDescriptor,
    codec: Codec,
    /// Bytes of gRPC frames not yet whole.
    pending: Bytes,
    finished: bool,
}

impl ServerStream {
    fn finish(&mut self, status: &Status) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.finished = true;
        Poll::Ready(Some(Ok(Frame::data(end_of_stream(status)))))
    }
}

impl http_body::Body for ServerStream {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            match take_message(&mut this.pending) {
                Ok(Some(message)) => {
                    return match this.codec.encode(&this.output, message) {
                        Ok(encoded) => Poll::Ready(Some(Ok(Frame::data(envelope(0, &encoded))))),
                        Err(status) => this.finish(&status),
                    };
                }
                Ok(None) => {}
                Err(status) => return this.finish(&status),
            }
            let frame = match Pin::new(&mut this.grpc).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if this.pending.is_empty() => this.pending = data,
                    Ok(data) => {
                        // A message split across frames: rare, so joined by copying.
                        let mut joined = Vec::with_capacity(this.pending.len() + data.len());
                        joined.extend_from_slice(&this.pending);
                        joined.extend_from_slice(&data);
                        this.pending = joined.into();
                    }
                    Err(frame) => {
                        let trailers = frame.into_trailers().unwrap_or_default();
                        let status = Status::from_header_map(&trailers)
                            .unwrap_or_else(|| internal("the stream ended without a status"));
                        return this.finish(&status);
                    }
                },
                Some(Err(error)) => return this.finish(&internal(format!("the stream broke: {error}"))),
                None => return this.finish(&internal("the stream ended without a status")),
            }
        }
    }
}

/// A fault of the server's own (a status it cannot read, an answer that does not decode).
fn internal(what: impl Into<String>) -> Status {
    crate::status::status(ApiError::Internal(what.into()))
}

fn unimplemented(message: impl Into<String>) -> Status {
    crate::status::status(ApiError::Unimplemented(message.into()))
}

fn deadline_exceeded(message: impl Into<String>) -> Status {
    crate::status::status(ApiError::DeadlineExceeded(message.into()))
}
