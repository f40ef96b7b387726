//! The ledger's storage: an append-only, hash-chained event log in sled, the
//! projections kept in step with it, group commit, recovery, replay and
//! verification. [`Ledger`] is the library API.

pub mod activities;
pub mod activity;
pub mod audit;
pub mod disk;
pub mod durable;
pub mod envelope;
pub mod error;
pub mod fold;
pub mod history;
pub mod integrity;
pub mod ledger;
pub mod log;
pub mod projections;
pub mod rebuild;
pub mod replay;
pub mod resident;
pub mod salvage;
pub mod sweep;
pub mod tokens;
pub mod views;
pub mod writer;

pub use error::{LedgerError, StoreError};
pub use integrity::Integrity;
pub use ledger::{Health, Ledger, Options};
pub use replay::Until;
