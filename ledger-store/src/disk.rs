//! What makes a write durable.
//!
//! `sled::Db::flush` writes sled's buffers and then, on Linux, calls
//! `sync_file_range`, which neither flushes the device's write cache nor commits
//! the file's metadata (sled issue #1452). And sled writes a page larger than a
//! quarter of a segment (a leaf of the log holding a few bulk records, a big
//! checkpoint row) to a file of its own under `blobs/`, with no sync at all. A
//! flush alone therefore survives a crash of the process, not of the machine.
//!
//! So every flush here is followed by a sync of exactly what sled wrote: each
//! blob file created since the last sync and the `blobs/` directory that names
//! them, then `fdatasync` on sled's main file (its data, its size, the device
//! cache). The blob files are named by inotify: sled writes a blob while it
//! reserves the log message that points to it, so by the time a flush covering
//! that message returns, the kernel has queued the file's creation for us. If
//! the queue overflowed, or where there is no inotify, one `syncfs` covers the
//! whole file system instead.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// A sled database and the handles that make its flushes durable.
pub struct Disk {
    db: sled::Db,
    /// The data directory, whose file system's free space `short_of_space` reads.
    dir: PathBuf,
    /// sled's main file: its log and page table.
    main: File,
    blobs: Blobs,
    faults: Faults,
    /// The first real flush or sync error. Never retried: Linux reports a failed
    /// write-back once and drops the pages that failed, so a later sync that
    /// succeeds proves nothing about them (PostgreSQL's fsync lesson), and sled
    /// keeps its own first I/O error until it is reopened. Every later flush and
    /// sync answers this, and the ledger fails until a restart.
    broken: Mutex<Option<String>>,
}

impl Disk {
    pub fn open(db: sled::Db, dir: &Path) -> std::io::Result<Disk> {
        Disk::open_with_faults(db, dir, Faults::default())
    }

    /// As `open`, with a fault seam tests (and `ledgerd --fault-file`) arm.
    pub fn open_with_faults(db: sled::Db, dir: &Path, faults: Faults) -> std::io::Result<Disk> {
        let main = File::open(dir.join("db"))?;
        let blobs = Blobs::watch(dir.join("blobs"))?;
        // Whatever sled wrote before the watch began (creating the directory,
        // recovering) is covered once, as a whole.
        sync_file_system(&main)?;
        Ok(Disk { db, dir: dir.to_owned(), main, blobs, faults, broken: Mutex::new(None) })
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Why writes should stop: the file system holding the data has fewer than
    /// `free_min_bytes` bytes free for us, or that cannot be read. `None` when
    /// there is room (or `free_min_bytes` is 0).
    pub fn short_of_space(&self, free_min_bytes: u64) -> Option<String> {
        if free_min_bytes == 0 {
            return None;
        }
        let free = free_bytes(&self.dir);
        match free {
            Ok(free) if free >= free_min_bytes => None,
            Ok(free) => Some(format!(
                "the disk holding {} is nearly full: {free} bytes free, below the reserve of {free_min_bytes} \
                 (No space left on device for writes until space is freed)",
                self.dir.display()
            )),
            Err(error) => Some(format!("reading the free space of {} failed: {error}", self.dir.display())),
        }
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Flushes sled, then makes what it wrote durable. When this returns `Ok`,
    /// every write sled took before the call survives a power loss.
    pub fn flush(&self) -> Result<(), String> {
        self.flush_sled()?;
        self.sync().map(|_| ())
    }

    /// sled's flush alone: what it wrote survives a crash of the process only,
    /// until a `sync` that starts after it returns.
    pub fn flush_sled(&self) -> Result<(), String> {
        self.check_broken()?;
        self.faults.check().map_err(|error| format!("flushing sled failed: {error}"))?;
        let flushed = self.db.flush().map_err(|error| format!("flushing sled failed: {error}"));
        flushed.map(|_| ()).map_err(|reason| self.break_with(reason))
    }

    /// Makes durable everything sled wrote before the call; returns how it did.
    pub fn sync(&self) -> Result<Synced, String> {
        self.check_broken()?;
        self.faults.check().map_err(|error| format!("syncing sled's files failed: {error}"))?;
        let synced = self.blobs.sync(&self.main).map_err(|error| {
            let reason = format!("syncing sled's blob files failed: {error}");
            // Out of descriptors to open a blob file with: nothing was synced and
            // nothing failed to write back, so the next sync (of the whole file
            // system, since the names were taken) covers it.
            if matches!(error.raw_os_error(), Some(EMFILE | ENFILE)) { reason } else { self.break_with(reason) }
        })?;
        self.faults
            .check_sync()
            .and_then(|()| self.main.sync_data())
            .map_err(|error| self.break_with(format!("syncing sled's main file failed: {error}")))?;
        Ok(synced)
    }

    /// The real flush or sync error that broke this disk for the rest of the process.
    pub fn broken(&self) -> Option<String> {
        self.broken.lock().expect("broken lock").clone()
    }

    fn check_broken(&self) -> Result<(), String> {
        self.broken().map_or(Ok(()), Err)
    }

    fn break_with(&self, reason: String) -> String {
        self.broken.lock().expect("broken lock").get_or_insert(reason).clone()
    }
}

/// The fault seam: while armed, every flush and sync fails with the armed error
/// before touching the disk, as a full disk (ENOSPC), a failing one (EIO) or a
/// file system remounted read-only (EROFS) would fail them, and so the fault
/// clears once disarmed. `arm_sync` instead fails the sync after sled wrote,
/// which breaks the disk for the rest of the process. Clones share one seam.
/// With a file (`ledgerd --fault-file`), the fault is armed while that file exists
/// and names it, so a test can break a running server's disk from outside.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    armed: Arc<AtomicI32>,
    /// An error the sync of sled's main file itself returns, after sled wrote:
    /// what a failed write-back looks like.
    sync_armed: Arc<AtomicI32>,
    file: Option<Arc<PathBuf>>,
}

impl Faults {
    /// A seam armed while `file` exists, holding `ENOSPC`, `EIO` or `EROFS`.
    pub fn from_file(file: PathBuf) -> Faults {
        Faults { file: Some(Arc::new(file)), ..Faults::default() }
    }

    /// Makes every flush and sync fail with `errno` until `clear`.
    pub fn arm(&self, errno: i32) {
        self.armed.store(errno, Ordering::SeqCst);
    }

    /// Makes the `fdatasync` of sled's main file fail with `errno`, after sled
    /// wrote its pages, until `clear`: a failed write-back, which is never retried.
    pub fn arm_sync(&self, errno: i32) {
        self.sync_armed.store(errno, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.armed.store(0, Ordering::SeqCst);
        self.sync_armed.store(0, Ordering::SeqCst);
    }

    fn check_sync(&self) -> std::io::Result<()> {
        match self.sync_armed.load(Ordering::SeqCst) {
            0 => Ok(()),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }

    fn check(&self) -> std::io::Result<()> {
        let errno = match &self.file {
            Some(file) => match std::fs::read_to_string(&**file) {
                Ok(named) => errno_named(named.trim()),
                Err(_) => 0,
            },
            None => self.armed.load(Ordering::SeqCst),
        };
        match errno {
            0 => Ok(()),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }
}

const ENFILE: i32 = 23;
const EMFILE: i32 = 24;

/// The errno a fault file names; anything else is an I/O error.
fn errno_named(name: &str) -> i32 {
    match name {
        "" => 0,
        "ENOSPC" => 28,
        "EROFS" => 30,
        "EMFILE" => EMFILE,
        _ => 5,
    }
}

/// How a sync covered sled's blob files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// Each blob file created since the last sync (this many) was synced.
    Blobs(usize),
    /// The creations were not all known; the whole file system was synced.
    FileSystem,
}

/// The `blobs/` directory and the watch that names the files sled creates in it.
struct Blobs {
    path: PathBuf,
    directory: File,
    /// Held for the whole blob sync, so that a sync that finds no new names
    /// cannot return while another is still syncing files it took from the queue.
    watch: Mutex<Watch>,
    /// Set while a sync is under way and left set if it fails.
    lost: AtomicBool,
}

impl Blobs {
    fn watch(path: PathBuf) -> std::io::Result<Blobs> {
        std::fs::create_dir_all(&path)?;
        let directory = File::open(&path)?;
        let watch = Mutex::new(Watch::new(&path)?);
        Ok(Blobs { path, directory, watch, lost: AtomicBool::new(false) })
    }

    fn sync(&self, main: &File) -> std::io::Result<Synced> {
        let mut watch = self.watch.lock().expect("blob watch lock");
        // A sync that failed took names off the queue without syncing them all:
        // until one whole sync succeeds, sync everything.
        let lost = self.lost.swap(true, Ordering::SeqCst);
        let created = watch.created()?;
        let Some(created) = created.filter(|_| !lost) else {
            sync_file_system(main)?;
            self.lost.store(false, Ordering::SeqCst);
            return Ok(Synced::FileSystem);
        };
        let mut synced = 0;
        for name in &created {
            match File::open(self.path.join(name)) {
                Ok(file) => {
                    file.sync_data()?;
                    synced += 1;
                }
                // sled removed it already: nothing of it is needed.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        if !created.is_empty() {
            // The files' names, so that a recovered log finds its blobs.
            self.directory.sync_all()?;
        }
        self.lost.store(false, Ordering::SeqCst);
        Ok(Synced::Blobs(synced))
    }
}

/// `None` where inotify could not be had (the per-user limit of 128 instances
/// by default, a sandbox): every sync is then a `syncfs`.
#[cfg(target_os = "linux")]
struct Watch(Option<Inotify>);

#[cfg(target_os = "linux")]
struct Inotify {
    fd: rustix::fd::OwnedFd,
    buffer: Vec<std::mem::MaybeUninit<u8>>,
}

#[cfg(target_os = "linux")]
impl Watch {
    fn new(path: &Path) -> std::io::Result<Watch> {
        use rustix::fs::inotify::{CreateFlags, WatchFlags, add_watch, init};
        let watched = init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .and_then(|fd| add_watch(&fd, path, WatchFlags::CREATE | WatchFlags::MOVED_TO).map(|_| fd));
        match watched {
            Ok(fd) => Ok(Watch(Some(Inotify { fd, buffer: vec![std::mem::MaybeUninit::uninit(); 64 * 1024] }))),
            Err(error) => {
                tracing::warn!(%error, "no inotify watch on sled's blobs: every commit syncs the whole file system");
                Ok(Watch(None))
            }
        }
    }

    /// The names created since the last call, or `None` if some were lost.
    fn created(&mut self) -> std::io::Result<Option<Vec<std::ffi::OsString>>> {
        use rustix::fs::inotify::{ReadFlags, Reader};
        use std::os::unix::ffi::OsStrExt;
        let Some(inotify) = &mut self.0 else { return Ok(None) };
        let mut reader = Reader::new(&inotify.fd, &mut inotify.buffer);
        let mut names = Vec::new();
        loop {
            match reader.next() {
                Ok(event) => {
                    if event.events().contains(ReadFlags::QUEUE_OVERFLOW) {
                        // Drain the rest; the caller syncs everything.
                        while reader.next().is_ok() {}
                        return Ok(None);
                    }
                    if let Some(name) = event.file_name() {
                        names.push(std::ffi::OsStr::from_bytes(name.to_bytes()).to_owned());
                    }
                }
                Err(rustix::io::Errno::AGAIN) => return Ok(Some(names)),
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// Without inotify the creations are never known.
#[cfg(not(target_os = "linux"))]
struct Watch;

#[cfg(not(target_os = "linux"))]
impl Watch {
    fn new(_path: &Path) -> std::io::Result<Watch> {
        Ok(Watch)
    }

    fn created(&mut self) -> std::io::Result<Option<Vec<std::ffi::OsString>>> {
        Ok(None)
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stats = rustix::fs::statvfs(dir)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ledger-disk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_sync_names_each_blob_file_sled_created_and_only_those() {
        let dir = temp_dir("blobs");
        let db = sled::Config::new().path(&dir).flush_every_ms(None).open().unwrap();
        let disk = Disk::open(db.clone(), &dir).unwrap();

        db.insert(b"small", vec![1_u8; 100]).unwrap();
        disk.flush_sled().unwrap();
        assert_eq!(disk.sync().unwrap(), Synced::Blobs(0), "a small value makes no blob");

        // Over a quarter of sled's default 512 KiB segment: a blob of its own.
        db.insert(b"big", vec![2_u8; 300 * 1024]).unwrap();
        disk.flush_sled().unwrap();
        let created = std::fs::read_dir(dir.join("blobs")).unwrap().count();
        assert!(created >= 1, "sled wrote the big value to a blob file");
        assert_eq!(disk.sync().unwrap(), Synced::Blobs(created), "every new blob file is synced");
        assert_eq!(disk.sync().unwrap(), Synced::Blobs(0), "and only once");

        drop(disk);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_watch_every_sync_covers_the_whole_file_system() {
        let dir = temp_dir("unwatched");
        let db = sled::Config::new().path(&dir).flush_every_ms(None).open().unwrap();
        let path = dir.join("blobs");
        let directory = File::open(&path).unwrap();
        let blobs = Blobs { path, directory, watch: Mutex::new(Watch(None)), lost: AtomicBool::new(false) };
        let main = File::open(dir.join("db")).unwrap();
        assert_eq!(blobs.sync(&main).unwrap(), Synced::FileSystem);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Helps the epoch collector free what sled left for it: `rounds` collections.
///
/// sled 0.34 changes a tree node by copying it and hands the old copy to
/// crossbeam-epoch, which frees a few hundred objects per collection and collects
/// only when a thread pins it; a checkpoint's batch holds one pin for all its
/// rows. The loss this prevents: copies (about 3.6 KB per checkpointed row)
/// waiting for pins that an idle or bulk-loading ledger never makes, so that
/// resident memory grew by gigabytes per million members and stayed there.
pub fn collect_sled_garbage(rounds: usize) {
    for _ in 0..rounds {
        crossbeam_epoch::pin().flush();
    }
}
