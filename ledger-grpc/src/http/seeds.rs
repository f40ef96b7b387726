//! The seeds' own endpoints (SPEC §17): Echoss statements and Loga bulks, with
//! their bodies and answers as the seed documents show them, so that an existing
//! integration changes only its base URL.
//!
//! Each route reads the seed's body, builds the gRPC request and calls the
//! service trait method gRPC calls (`VouchersService`, `PointsService` on
//! `Api`) with a `tonic::Request` carrying the HTTP headers (the caller's
//! `authorization` among them) and the connection's extensions: auth, roles,
//! the token quota, validation and error reasons are that one copy. This module
//! only translates bodies and answers.

mod echoss;
mod loga;

use crate::service::Api;
// Errors answer with the Connect protocol's table of HTTP statuses, as the JSON
// form of every RPC does (Echoss answers INVALID_ARGUMENT 422, Laravel's
// validation status, on its own).
use super::connect::http_status;
use axum::routing::post;
use ledger_core::limits::REQUEST_BYTES_MAX;

/// Routes for the seeds' endpoints.
pub fn router(api: Api) -> axum::Router {
    axum::Router::new()
        .route("/api/external/voucher_statements", post(echoss::voucher_statements))
        .route("/api/point_statements", post(echoss::point_statements))
        .route("/api/external/point_statements", post(echoss::point_statements))
        .route("/api/points/bulk_add_point", post(loga::bulk_add_point))
        .route("/api/points/bulk_use_point", post(loga::bulk_use_point))
        // A body may be as large as a gRPC request; axum's default is 2 MiB. A larger
        // one is answered 413 before a handler runs.
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .with_state(api)
}

/// The gRPC request the service code takes: the HTTP headers become its
/// metadata and the connection's extensions (the peer address) stay, as tonic
/// does for a gRPC call.
fn grpc_request<T>(parts: http::request::Parts, message: T) -> tonic::Request<T> {
    tonic::Request::from_http(http::Request::from_parts(parts, message))
}

/// The secret of an `authorization: Bearer <token>` header, to read the
/// token's quota after the call (the service authenticated it already).
fn bearer_secret(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let secret = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    Some(secret.trim().to_owned())
}

/// The `google.rpc.ErrorInfo` reason of an error (SPEC §13), when it has one.
fn reason(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    status.get_error_details().error_info().map(|info| info.reason.clone())
}

/// The `google.rpc.BadRequest` field violations of an error, as (field, description).
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt as _;
    status
        .get_error_details()
        .bad_request()
        .map(|bad| bad.field_violations.iter().map(|v| (v.field.clone(), v.description.clone())).collect())
        .unwrap_or_default()
}

/// A message that starts with a field path (`program_id: program "x" does not
/// exist`, as the service's do) with that path renamed to the caller's name for
/// it; `rename` answers `None` for a path it keeps. Other messages are kept.
fn renamed_head(message: &str, rename: impl FnOnce(&str) -> Option<String>) -> String {
    match message.split_once(": ") {
        Some((field, rest)) => match rename(field) {
            Some(renamed) => format!("{renamed}: {rest}"),
            None => message.to_owned(),
        },
        None => message.to_owned(),
    }
}
