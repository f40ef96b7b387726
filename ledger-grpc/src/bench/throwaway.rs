//! `ledger bench --throwaway`: a `ledgerd` of the bench's own on a new temporary data
//! directory, so that a trial run never writes into a real ledger. It is the `ledgerd`
//! installed beside this `ledger` (same build), listening on a free loopback port; it is
//! killed and its directory removed when the bench is done, whatever the outcome.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The running server; dropping it stops the server and removes its directory.
pub struct Throwaway {
    child: Child,
    pub dir: PathBuf,
    /// HOST:PORT it listens on.
    pub addr: String,
    /// Its first-start admin token.
    pub token: String,
}

impl Throwaway {
    /// Starts the server and waits until it says where it listens. Blocks: ledgerd
    /// prints its address within a moment of starting, and the bench has nothing else
    /// to do until then.
    pub fn start() -> Result<Throwaway, String> {
        let exe = std::env::current_exe().map_err(|error| format!("finding this program: {error}"))?;
        let ledgerd = exe.with_file_name(format!("ledgerd{}", std::env::consts::EXE_SUFFIX));
        if !ledgerd.is_file() {
            return Err(format!(
                "--throwaway starts the ledgerd beside this ledger, and {} is missing",
                ledgerd.display()
            ));
        }
        let dir = new_dir()?;
        let spawned = Command::new(&ledgerd)
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen", "127.0.0.1:0"])
            // Its warnings only: request logs would drown the bench's progress lines.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                remove(&dir);
                return Err(format!("starting {}: {error}", ledgerd.display()));
            }
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        // From here on, dropping `server` stops the child and removes the directory.
        let mut server = Throwaway { child, dir, addr: String::new(), token: String::new() };
        let mut lines = BufReader::new(stdout).lines();
        server.addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("ledgerd listening on ") {
                        break addr.trim().to_owned();
                    }
                }
                Some(Err(error)) => return Err(format!("reading ledgerd's output: {error}")),
                None => return Err("the throwaway ledgerd exited before it listened (its stderr is above)".into()),
            }
        };
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let token_file = server.dir.join("admin.token");
        server.token = std::fs::read_to_string(&token_file)
            .map_err(|error| format!("reading {}: {error}", token_file.display()))?
            .trim()
            .to_owned();
        eprintln!("throwaway server: process {} on {}, data in {}", server.pid(), server.addr, server.dir.display());
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        // Its data is thrown away, so there is nothing a clean shutdown would save.
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove(&self.dir);
        eprintln!("throwaway server: stopped, {} removed", self.dir.display());
    }
}

/// A new directory under the system's temporary directory (`TMPDIR`), named for this
/// process and the time so that two benches never share one.
fn new_dir() -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let dir = std::env::temp_dir().join(format!("ledger-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|error| format!("creating {}: {error}", dir.display()))?;
    Ok(dir)
}

fn remove(dir: &Path) {
    if let Err(error) = std::fs::remove_dir_all(dir) {
        eprintln!("throwaway server: removing {}: {error}", dir.display());
    }
}
