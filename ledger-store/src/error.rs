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

/// How long an open waits for sled's lock. sled lets go of a directory some time
/// after its last handle drops (crossbeam's epoch garbage collection), so a
/// process that closes a ledger and opens it again at once (a library user, an
/// audit after a close, the tests) would otherwise be told it is in use.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens sled with `config`, waiting up to `LOCK_WAIT` for a lock that is being let go of.
pub fn open_sled(config: &sled::Config, path: &std::path::Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open().map_err(|error| StoreError::from_open(path, error)) {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => return opened,
        }
    }
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
    /// The command or read was refused (a bad field, something the caller named
    /// that does not exist, a rule of state); nothing changed. Reads refuse with
    /// the core's rejections too, so that every refusal is typed and the edge
    /// never parses a message back.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Storage failed; the caller may retry once the ledger is back.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The ledger is closed or closing (the server is shutting down); the caller
    /// may retry against the restarted server.
    #[error("the ledger is shutting down: {0}")]
    Closed(&'static str),
}

impl From<StoreError> for LedgerError {
    fn from(error: StoreError) -> LedgerError {
        LedgerError::Unavailable(error.to_string())
    }
}
