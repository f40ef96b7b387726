//! The Connect protocol's JSON forms of every RPC (SPEC §17): unary
//! `POST /ledger.v1.<Service>/<Method>` and server-streaming `StreamEvents`.

/// Routes for the Connect forms; `grpc` is the tonic services they call.
pub fn router(_grpc: axum::Router) -> axum::Router {
    axum::Router::new()
}
