//! HTTP/JSON beside gRPC on the same listener (SPEC §17).
//!
//! One port serves both: a request whose `content-type` is `application/grpc…`
//! goes to the tonic services, anything else to the HTTP routes: the Connect
//! protocol's JSON form of every RPC (`connect`), the seeds' own endpoints
//! (`seeds`) and `GET /openapi.json` (`openapi`). The HTTP routes call the same
//! service code as gRPC, so auth, roles, quotas, validation and error reasons
//! are one copy.

pub mod connect;
pub mod openapi;
pub mod seeds;

use crate::service::Api;
use axum::body::Body;
use tower::ServiceExt as _;

/// The whole application: gRPC by content type, HTTP otherwise.
pub fn app(grpc: axum::Router, api: Api) -> axum::Router {
    let http = connect::router(grpc.clone())
        .merge(seeds::router(api))
        .merge(openapi::router())
        .fallback(connect::unknown_route);
    axum::Router::new().fallback_service(tower::service_fn(move |request: http::Request<Body>| {
        let target = if is_grpc(&request) { grpc.clone() } else { http.clone() };
        target.oneshot(request)
    }))
}

/// gRPC (and gRPC-Web) requests say so in their content type.
fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}
