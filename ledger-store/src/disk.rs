//! What makes a write durable.
//!
//! `sled::Db::flush` writes sled's buffers and then, on Linux, calls
//! `sync_file_range`, which neither flushes the device's write cache nor commits
//! the file's metadata (sled issue #1452). And sled writes a value larger than a
//! quarter of a segment (a 1,000-item bulk's record, a big checkpoint row) to a
//! file of its own under `blobs/`, with no sync at all. A flush alone therefore
//! survives a crash of the process, not of the machine.
//!
//! So every flush here is followed by `syncfs` on the file system that holds the
//! data directory: every dirty file of it (the log, blobs, their directory
//! entries) reaches stable storage and the device cache is flushed before a write
//! is acknowledged. One call covers whatever files sled touched, which no list of
//! ours could name.

use std::fs::File;
use std::path::Path;

/// A sled database and a handle on its file system.
pub struct Disk {
    db: sled::Db,
    /// sled's main file, opened only to name the file system to sync.
    anchor: File,
}

impl Disk {
    pub fn open(db: sled::Db, dir: &Path) -> std::io::Result<Disk> {
        let anchor = File::open(dir.join("db"))?;
        Ok(Disk { db, anchor })
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes sled, then makes what it wrote durable. When this returns `Ok`,
    /// every write sled took before the call survives a power loss.
    pub fn flush(&self) -> Result<(), String> {
        self.flush_sled()?;
        self.sync()
    }

    /// sled's flush alone: what it wrote survives a crash of the process only,
    /// until a `sync` that starts after it returns.
    pub fn flush_sled(&self) -> Result<(), String> {
        self.db.flush().map(|_| ()).map_err(|error| format!("flushing sled failed: {error}"))
    }

    pub fn sync(&self) -> Result<(), String> {
        sync_file_system(&self.anchor)
            .map_err(|error| format!("syncing the data directory's file system failed: {error}"))
    }
}

#[cfg(target_os = "linux")]
fn sync_file_system(anchor: &File) -> std::io::Result<()> {
    rustix::fs::syncfs(anchor).map_err(std::io::Error::from)
}

/// Elsewhere sled's flush calls `fsync` itself; syncing its main file again also
/// covers the metadata.
#[cfg(not(target_os = "linux"))]
fn sync_file_system(anchor: &File) -> std::io::Result<()> {
    anchor.sync_all()
}
