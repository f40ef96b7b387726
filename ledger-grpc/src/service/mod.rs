//! The gRPC services: each checks the caller (`auth`), converts the request
//! (`mapping`), calls the `Ledger` and maps the answer or error (`status`).

pub mod admin;
pub mod audit;
pub mod backup;
pub mod coupons;
pub mod credits;
pub mod holds;
pub mod members;
pub mod points;
pub mod tiers;
pub mod transactions;
pub mod vouchers;

use crate::limits::{Limits, StreamCaps};
use ledger_store::Ledger;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What every service holds (cheap to clone): the ledger, and what bounds the
/// event streams.
#[derive(Clone)]
pub struct Api {
    pub ledger: Ledger,
    /// Open event streams, in total and per token.
    pub streams: StreamCaps,
    /// Event streams reading the log at once (`FEED_READS_MAX`).
    pub feed_reads: Arc<Semaphore>,
}

impl Api {
    pub fn new(ledger: Ledger, limits: &Limits) -> Api {
        Api {
            ledger,
            streams: StreamCaps::new(limits),
            feed_reads: Arc::new(Semaphore::new(ledger_core::limits::FEED_READS_MAX)),
        }
    }
}

/// Runs blocking store work (flushing token writes, verifying the log) off the
/// async workers.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, tonic::Status> {
    let failed = |error: tokio::task::JoinError| {
        crate::status::status(crate::status::ApiError::Internal(format!("a blocking task failed: {error}")))
    };
    tokio::task::spawn_blocking(work).await.map_err(failed)
}
