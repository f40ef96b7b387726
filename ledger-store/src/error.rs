//! Errors at the store's boundary: `StoreError` is the store's own trouble (I/O,
//! corruption), `LedgerError` what a caller of `Ledger` can get.

use ledger_core::Rejection;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("the data directory {path} is in use by another process (stop ledgerd first): {source}")]
    Locked { path: String, source: sled::Error },
    #[error("corrupt log at sequence {sequence}: {reason}")]
    Corrupt { sequence: u64, reason: String },
    #[error("corrupt projection row {key}: {reason}")]
    CorruptProjection { key: String, reason: String },
    #[error("unsupported format {found} of {what} (this build reads up to {supported})")]
    UnsupportedFormat { what: &'static str, found: u16, supported: u16 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// An error opening a data directory: sled says "lock" when another process
    /// (a running ledgerd) holds it, which deserves words a user can act on.
    pub fn from_open(path: &std::path::Path, error: sled::Error) -> StoreError {
        if error.to_string().contains("lock") {
            StoreError::Locked { path: path.display().to_string(), source: error }
        } else {
            StoreError::Sled(error)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The command was refused; nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Storage failed; the caller may retry once the ledger is back.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Something the caller named does not exist (reads).
    #[error("{0}")]
    NotFound(String),
    /// A read's input was wrong (page tokens, filters).
    #[error("{field}: {rule}")]
    InvalidArgument { field: String, rule: String },
}

impl From<StoreError> for LedgerError {
    fn from(error: StoreError) -> LedgerError {
        LedgerError::Unavailable(error.to_string())
    }
}
