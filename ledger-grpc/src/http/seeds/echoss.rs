//! Echoss `POST /api/external/voucher_statements` and `POST /api/point_statements`
//! (also under `/api/external/`), answered as Echoss (Laravel) answers: 200
//! `{"data": {"message": "Successfully created."}}`, 401 with its fixed message,
//! 422 `{"message": "The given data was invalid.", "errors": {"data.0.line_id":
//! [...]}}` with every problem, any other error `{"message": ...}` with its HTTP
//! status, and `X-RateLimit-Limit` / `X-RateLimit-Remaining` from the token's
//! request quota when it has one.

use super::{bearer_secret, grpc_request, http_status, reason, renamed_head, violations};
use crate::auth;
use crate::echoss::{self, FileError, Problem};
use crate::pb::vouchers_service_server::VouchersService;
use crate::service::Api;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde::ser::SerializeMap;

/// Echoss's success messages differ by route, a full stop or not; answered as the seed shows.
const VOUCHERS_CREATED: &str = "Successfully created.";
const POINTS_CREATED: &str = "Successfully created";
/// Laravel's answers to a failed authentication and to failed validation.
const UNAUTHENTICATED: &str = "These credentials do not match our records.";
const INVALID: &str = "The given data was invalid.";

pub async fn voucher_statements(State(api): State<Api>, parts: http::request::Parts, body: Bytes) -> Response {
    let secret = bearer_secret(&parts.headers);
    let answer = match read(&body, echoss::vouchers_from_json) {
        Ok(items) => {
            let request = grpc_request(parts, echoss::voucher_request(items));
            match VouchersService::import_voucher_statements(&api, request).await {
                Ok(_) => created(VOUCHERS_CREATED),
                Err(status) => failed(&status),
            }
        }
        Err(problems) => refused(&api, parts, problems),
    };
    with_rate_limit(&api, secret.as_deref(), answer)
}

pub async fn point_statements(State(api): State<Api>, parts: http::request::Parts, body: Bytes) -> Response {
    let secret = bearer_secret(&parts.headers);
    let answer = match read(&body, echoss::point_statements_from_json) {
        Ok(items) => {
            let request = grpc_request(parts, echoss::point_request(items));
            match VouchersService::import_point_statements(&api, request).await {
                Ok(_) => created(POINTS_CREATED),
                Err(status) => failed(&status),
            }
        }
        Err(problems) => refused(&api, parts, problems),
    };
    with_rate_limit(&api, secret.as_deref(), answer)
}

/// The body's items, or every problem with it, named `data.0.line_id`. A body
/// that is not JSON at all is one problem of `data`, as Laravel finds no `data`
/// in it.
fn read<T>(body: &[u8], parse: impl FnOnce(&str) -> Result<Vec<T>, FileError>) -> Result<Vec<T>, Vec<Problem>> {
    let text = std::str::from_utf8(body).map_err(|error| {
        vec![Problem { field: "data".to_owned(), description: format!("the body is not UTF-8 text: {error}") }]
    })?;
    parse(text).map_err(|error| match error {
        FileError::Problems(problems) => problems,
        FileError::Unreadable(reason) => vec![Problem { field: "data".to_owned(), description: reason }],
    })
}

/// A body the parser refused. Laravel authenticates before it validates, so a
/// caller with a bad token learns nothing of its body, and the call counts
/// against the token's quota like any other; the same auth code as the
/// service's decides. The brands inside a broken body are not known, so the
/// token must only be one that may write somewhere; the service checks each
/// brand once the body reads.
fn refused(api: &Api, parts: http::request::Parts, problems: Vec<Problem>) -> Response {
    let request = grpc_request(parts, ());
    if let Err(status) = auth::check_writes(&api.ledger, &request, &[]) {
        return failed(&status);
    }
    invalid(problems.into_iter().map(|problem| (problem.field, problem.description)).collect())
}

fn created(message: &'static str) -> Response {
    Json(Created { data: Message { message } }).into_response()
}

/// Any error of the service: 401 with Laravel's message, 422 with every field
/// violation, otherwise its message (and reason) with its HTTP status.
fn failed(status: &tonic::Status) -> Response {
    match status.code() {
        // The seed's body exactly: Echoss clients match on it.
        tonic::Code::Unauthenticated => {
            (StatusCode::UNAUTHORIZED, Json(Failed { message: UNAUTHENTICATED.to_owned(), reason: None }))
                .into_response()
        }
        tonic::Code::InvalidArgument => {
            let mut problems: Vec<(String, String)> = violations(status)
                .into_iter()
                .map(|(field, description)| (echoss::dotted(&field), description))
                .collect();
            if problems.is_empty() {
                problems.push(("data".to_owned(), status.message().to_owned()));
            }
            invalid(problems)
        }
        code => {
            // Named as the caller sent them: `data.0.brand_id`, not `data[0].brand_id`.
            let message = renamed_head(status.message(), |field| match field {
                "program_id" => Some("brand_id".to_owned()),
                field if field.starts_with("data[") => Some(echoss::dotted(field)),
                _ => None,
            });
            (http_status(code), Json(Failed { message, reason: reason(status) })).into_response()
        }
    }
}

/// 422 with every problem, grouped by field in the order they were found.
fn invalid(problems: Vec<(String, String)>) -> Response {
    let mut errors: Vec<(String, Vec<String>)> = Vec::new();
    for (field, description) in problems {
        let message = format!("{field}: {description}");
        match errors.iter_mut().find(|(known, _)| *known == field) {
            Some((_, messages)) => messages.push(message),
            None => errors.push((field, vec![message])),
        }
    }
    (StatusCode::UNPROCESSABLE_ENTITY, Json(Invalid { message: INVALID, errors: Errors(errors) })).into_response()
}

/// `X-RateLimit-Limit` and `X-RateLimit-Remaining`, as Echoss sends them, when
/// the token presented has a request quota; read after the call counted.
fn with_rate_limit(api: &Api, secret: Option<&str>, mut answer: Response) -> Response {
    let Some(quota) = secret.and_then(|secret| api.ledger.tokens().quota(secret)) else { return answer };
    let headers = answer.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(quota.max_requests));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(quota.remaining()));
    answer
}

#[derive(Serialize)]
struct Created {
    data: Message,
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[derive(Serialize)]
struct Failed {
    message: String,
    /// The SPEC §13 reason, so that a program can branch on it; Echoss has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct Invalid {
    message: &'static str,
    errors: Errors,
}

/// Laravel's `errors` object: field → messages, in the order found (a map type
/// would sort `data.10` before `data.2`).
struct Errors(Vec<(String, Vec<String>)>);

impl Serialize for Errors {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (field, messages) in &self.0 {
            map.serialize_entry(field, messages)?;
        }
        map.end()
    }
}
