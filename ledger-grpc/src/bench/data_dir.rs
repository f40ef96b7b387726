//! The size of the server's data directory, for the disk each event costs.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes under a directory, counted two ways: sled's files can be sparse or preallocated, so
/// what the disk holds (`du`) and what the files say they hold (`du --apparent-size`) differ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Size {
    /// Blocks allocated, `st_blocks * 512`.
    pub allocated_bytes: u64,
    /// The files' lengths.
    pub apparent_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("--data-dir: reading {path}: {source}")]
pub struct SizeError {
    path: PathBuf,
    source: io::Error,
}

/// Sums every file and directory under `dir`, without following symbolic links. Files the
/// server deletes while the walk runs (sled removes blobs and old snapshots) are skipped.
pub fn size(dir: &Path) -> Result<Size, SizeError> {
    let failed = |path: &Path| {
        let path = path.to_owned();
        move |source| SizeError { path, source }
    };
    let mut total = Size::default();
    // An explicit stack, not recursion: a deep tree cannot exhaust ours.
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let metadata = match fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound && path != dir => continue,
            Err(error) => return Err(failed(&path)(error)),
        };
        total.allocated_bytes += metadata.blocks() * 512;
        total.apparent_bytes += metadata.len();
        if metadata.is_dir() {
            let entries = match fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(error) if error.kind() == io::ErrorKind::NotFound && path != dir => continue,
                Err(error) => return Err(failed(&path)(error)),
            };
            for entry in entries {
                pending.push(entry.map_err(failed(&path))?.path());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_in_nested_directories_are_all_counted() {
        let dir = std::env::temp_dir().join(format!("ledger-bench-size-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("a/b")).expect("create dirs");
        fs::write(dir.join("top"), [1u8; 10]).expect("write");
        fs::write(dir.join("a/b/deep"), [2u8; 5000]).expect("write");
        let size = size(&dir).expect("size");
        let directories: u64 = ["", "a", "a/b"].iter().map(|sub| fs::metadata(dir.join(sub)).unwrap().len()).sum();
        assert_eq!(size.apparent_bytes, 5010 + directories);
        assert!(size.allocated_bytes > 0, "5,000 bytes take blocks: {size:?}");
        fs::remove_dir_all(&dir).expect("clean up");

        let missing = super::size(&dir).expect_err("a missing directory is an error");
        assert!(missing.to_string().starts_with("--data-dir: reading "), "{missing}");
    }
}
