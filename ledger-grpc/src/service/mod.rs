//! The gRPC services: each checks the caller (`auth`), converts the request
//! (`mapping`), calls the `Ledger` and maps the answer or error (`status`).

pub mod admin;
pub mod audit;
pub mod coupons;
pub mod credits;
pub mod members;
pub mod points;
pub mod tiers;
pub mod vouchers;

use ledger_store::Ledger;

/// What every service holds: the ledger (cheap to clone).
#[derive(Clone)]
pub struct Api {
    pub ledger: Ledger,
}

/// Runs blocking store work (flushing token writes, verifying the log) off the
/// async workers.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, tonic::Status> {
    tokio::task::spawn_blocking(work).await.map_err(|error| tonic::Status::internal(format!("task failed: {error}")))
}
