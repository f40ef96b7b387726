//! `GET /openapi.json`: an OpenAPI 3.1 document of every HTTP route (SPEC §17).
//!
//! The Connect routes and their schemas are generated from the descriptor set
//! the build makes, at the first request, so a new RPC, message or field shows
//! up with no edit here; summaries and descriptions are the protos' comments.
//! The schemas follow the proto3 JSON mapping the routes speak: lowerCamelCase
//! names (parsers also take the proto names), 64-bit integers as strings,
//! enums by name, timestamps as RFC 3339. The seeds' endpoints are listed with a
//! summary and a generic body: their bodies are the seeds', not protos.

use super::connect;
use axum::body::Bytes;
use axum::response::IntoResponse;
use http::header;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::LazyLock;

/// The seeds' own endpoints (`seeds`): path and summary.
const SEED_ROUTES: [(&str, &str); 5] = [
    ("/api/external/voucher_statements", "Echoss: import voucher statements (the seed's body and answers)"),
    ("/api/point_statements", "Echoss: import point statements (the seed's body and answers)"),
    ("/api/external/point_statements", "Echoss: import point statements (the same as /api/point_statements)"),
    ("/api/points/bulk_add_point", "Loga: add points to many members (the seed's parallel arrays)"),
    ("/api/points/bulk_use_point", "Loga: use points of many members (the seed's parallel arrays)"),
];

/// The route.
pub fn router() -> axum::Router {
    axum::Router::new().route("/openapi.json", axum::routing::get(openapi_json))
}

async fn openapi_json() -> impl IntoResponse {
    static DOCUMENT: LazyLock<Bytes> =
        LazyLock::new(|| serde_json::to_vec_pretty(&document()).unwrap_or_default().into());
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.clone())
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut messages = Schemas::default();
    for service in connect::services() {
        for method in service.methods() {
            if method.is_client_streaming() {
                continue;
            }
            messages.want(&method.input());
            messages.want(&method.output());
            paths.insert(connect::path(&method), json!({ "post": operation(&method) }));
        }
    }
    for (path, summary) in SEED_ROUTES {
        paths.insert(path.to_owned(), json!({ "post": seed_operation(summary) }));
    }
    let mut schemas = messages.build();
    schemas.insert("connect.Error".to_owned(), connect_error());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ledger",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The points and voucher ledger over HTTP/JSON: every gRPC method in the Connect \
                protocol's JSON form (POST /ledger.v1.<Service>/<Method>), and the seeds' own endpoints. \
                Every route needs `Authorization: Bearer <token>`.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearerAuth": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas,
        },
    })
}

fn operation(method: &MethodDescriptor) -> Value {
    let service = method.parent_service();
    let summary = comment(method.parent_file(), method.path()).unwrap_or_else(|| method.name().to_owned());
    let (media_type, answer) = if method.is_server_streaming() {
        (
            "application/connect+json",
            "A stream of enveloped messages (a flags byte, a 4-byte big-endian length, the JSON), ending with \
             the end-of-stream envelope (flags 0x02): {} or {\"error\": …}",
        )
    } else {
        ("application/json", "The answer")
    };
    json!({
        "operationId": format!("{}.{}", service.full_name(), method.name()),
        "tags": [service.name()],
        "summary": summary,
        "parameters": [{
            "name": "Connect-Protocol-Version",
            "in": "header",
            "required": false,
            "schema": { "type": "string", "enum": ["1"] },
        }],
        "requestBody": {
            "required": true,
            "content": { media_type: { "schema": reference(&method.input()) } },
        },
        "responses": {
            "200": { "description": answer, "content": { media_type: { "schema": reference(&method.output()) } } },
            "default": {
                "description": "A Connect error; its HTTP status follows Connect's table (400 invalid_argument, \
                    failed_precondition and out_of_range, 401 unauthenticated, 403 permission_denied, 404 \
                    not_found, 409 already_exists, 429 resource_exhausted, 503 unavailable, …)",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/connect.Error" } } },
            },
        },
    })
}

fn seed_operation(summary: &str) -> Value {
    json!({
        "tags": ["seeds"],
        "summary": summary,
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": { "type": "object" } } },
        },
        "responses": {
            "200": { "description": "Done", "content": { "application/json": { "schema": { "type": "object" } } } },
            "default": {
                "description": "Refused, in the seed's own form",
                "content": { "application/json": { "schema": { "type": "object" } } },
            },
        },
    })
}

/// The Connect error JSON.
fn connect_error() -> Value {
    let codes: Vec<&str> = (1..=16).map(|code| connect::code_name(tonic::Code::from_i32(code))).collect();
    json!({
        "type": "object",
        "required": ["code"],
        "properties": {
            "code": { "type": "string", "enum": codes },
            "message": { "type": "string" },
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {
                            "type": "string",
                            "description": "The detail's message name: google.rpc.ErrorInfo, google.rpc.BadRequest, …",
                        },
                        "value": { "type": "string", "description": "The encoded detail, base64" },
                        "debug": { "type": "object", "description": "The detail as proto3 JSON" },
                    },
                },
            },
        },
    })
}

fn reference(message: &MessageDescriptor) -> Value {
    match well_known(message) {
        Some(schema) => schema,
        None => json!({ "$ref": format!("#/components/schemas/{}", message.full_name()) }),
    }
}

/// Messages whose proto3 JSON is not an object of their fields.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    match message.full_name() {
        "google.protobuf.Timestamp" => Some(json!({ "type": "string", "format": "date-time" })),
        "google.protobuf.Duration" => Some(json!({ "type": "string", "description": "seconds, as \"1.5s\"" })),
        "google.protobuf.Empty" => Some(json!({ "type": "object" })),
        _ => None,
    }
}

/// The messages a route reaches, each once, in name order.
#[derive(Default)]
struct Schemas {
    queue: VecDeque<MessageDescriptor>,
    built: BTreeMap<String, Value>,
}

impl Schemas {
    fn want(&mut self, message: &MessageDescriptor) {
        self.queue.push_back(message.clone());
    }

    fn build(mut self) -> Map<String, Value> {
        while let Some(message) = self.queue.pop_front() {
            if well_known(&message).is_some() || self.built.contains_key(message.full_name()) {
                continue;
            }
            let mut properties = Map::new();
            for field in message.fields() {
                properties.insert(field.json_name().to_owned(), self.field(&field));
            }
            let mut schema = json!({ "type": "object", "properties": properties });
            if let Some(description) = comment(message.parent_file(), message.path()) {
                schema["description"] = Value::String(description);
            }
            self.built.insert(message.full_name().to_owned(), schema);
        }
        self.built.into_iter().collect()
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        let mut schema = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { unreachable!("a map field's kind is its entry message") };
            json!({ "type": "object", "additionalProperties": self.single(&entry.map_entry_value_field()) })
        } else if field.is_list() {
            json!({ "type": "array", "items": self.single(field) })
        } else {
            self.single(field)
        };
        if let Some(description) = comment(field.parent_file(), field.path()) {
            schema["description"] = Value::String(description);
        }
        schema
    }

    /// The schema of one value of `field`'s kind.
    fn single(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::Double | Kind::Float => json!({ "type": "number" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({ "type": "integer", "format": "int32" }),
            Kind::Uint32 | Kind::Fixed32 => json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX }),
            // The proto3 JSON mapping writes 64-bit integers as strings (JavaScript
            // numbers lose precision past 2^53) and reads either.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({ "type": ["string", "integer"], "format": "int64" }),
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": ["string", "integer"], "format": "uint64" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Enum(values) => {
                let names: Vec<String> = values.values().map(|value| value.name().to_owned()).collect();
                json!({ "type": "string", "enum": names })
            }
            Kind::Message(message) => {
                self.queue.push_back(message.clone());
                reference(&message)
            }
        }
    }
}

/// The leading comment of the element at `path` in `file`, if the descriptor
/// set kept source info.
fn comment(file: prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|location| location.path == path)?;
    let text = location.leading_comments.as_deref()?.trim();
    let joined: Vec<&str> = text.lines().map(str::trim).collect();
    (!text.is_empty()).then(|| joined.join(" "))
}
