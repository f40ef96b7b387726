//! Finds the `ledgerd` process behind `ledger bench --addr` on this machine and reads its
//! resident memory, both from `/proc` (Linux). Elsewhere, or for a server on another machine,
//! every look fails with a reason the bench prints instead of a figure.
//!
//! The server is the process holding the socket that listens on the address's port: its inode
//! is in `/proc/net/tcp` or `/proc/net/tcp6`, and the process has a descriptor linking to
//! `socket:[INODE]`. A server elsewhere can listen on the same port as an unrelated process
//! here, so the address must be this machine's first: a loopback address, or one that a socket
//! here has as its local address (the server's side of the bench's own connections has it).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Why the server's process was not found.
#[derive(Debug, thiserror::Error)]
pub enum NotFound {
    #[error("--addr {addr}: does not resolve: {source}")]
    Unresolved { addr: String, source: io::Error },
    #[error("reading {path}: {source}")]
    Proc { path: &'static str, source: io::Error },
    #[error("--addr {addr}: not an address of this machine (a remote server; pass --server-pid if it runs here)")]
    Remote { addr: String },
    #[error("--addr {addr}: no socket here listens on port {port}")]
    NoListener { addr: String, port: u16 },
    #[error(
        "--addr {addr}: no process this user may inspect holds the socket listening on port {port} \
         (another user's server? pass --server-pid)"
    )]
    NoOwner { addr: String, port: u16 },
}

/// The process id of the server listening on `addr` (HOST:PORT) on this machine.
pub fn find(addr: &str) -> Result<u32, NotFound> {
    let unresolved = |source| NotFound::Unresolved { addr: addr.to_owned(), source };
    let targets: Vec<SocketAddr> =
        addr.to_socket_addrs().map_err(unresolved)?.map(|target| canonical(target.ip(), target.port())).collect();
    let port = targets.first().map_or(0, SocketAddr::port);
    let sockets = read_sockets()?;
    let local_ips: HashSet<IpAddr> = sockets.iter().map(|socket| socket.local.ip()).collect();
    let local: Vec<SocketAddr> =
        targets.into_iter().filter(|target| target.ip().is_loopback() || local_ips.contains(&target.ip())).collect();
    if local.is_empty() {
        return Err(NotFound::Remote { addr: addr.to_owned() });
    }
    let inodes: HashSet<u64> = sockets
        .iter()
        .filter(|socket| socket.state == TCP_LISTEN && local.iter().any(|target| accepts(socket.local, *target)))
        .map(|socket| socket.inode)
        .collect();
    if inodes.is_empty() {
        return Err(NotFound::NoListener { addr: addr.to_owned(), port });
    }
    owner_of(&inodes).ok_or_else(|| NotFound::NoOwner { addr: addr.to_owned(), port })
}

/// A process's resident memory now and its high-water mark, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    /// The most the process was resident at any moment of its life (the kernel's `VmHWM`),
    /// including moments between the bench's samples.
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` from `/proc/PID/status`.
pub fn memory(pid: u32) -> io::Result<Memory> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_memory(&status).ok_or_else(|| io::Error::other("no VmRSS and VmHWM lines (has the process exited?)"))
}

/// `TCP_LISTEN` in the `st` column of /proc/net/tcp (the kernel's include/net/tcp_states.h).
const TCP_LISTEN: u8 = 0x0A;

/// One row of /proc/net/tcp or /proc/net/tcp6.
#[derive(Debug, PartialEq, Eq)]
struct Socket {
    local: SocketAddr,
    state: u8,
    inode: u64,
}

fn read_sockets() -> Result<Vec<Socket>, NotFound> {
    let mut sockets = Vec::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            // A kernel without IPv6 has no tcp6 table.
            Err(error) if error.kind() == io::ErrorKind::NotFound && path.ends_with('6') => continue,
            Err(source) => return Err(NotFound::Proc { path, source }),
        };
        // The first line names the columns.
        sockets.extend(text.lines().skip(1).filter_map(parse_socket));
    }
    Ok(sockets)
}

/// Columns: `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
/// timeout inode ...`.
fn parse_socket(line: &str) -> Option<Socket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local = parse_address(fields.get(1)?)?;
    let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
    let inode = fields.get(9)?.parse().ok()?;
    Some(Socket { local, state, inode })
}

/// `ADDR:PORT` in hex. The kernel prints each 32-bit word of the address with `%08X` of its
/// value in host byte order, so the word's native-endian bytes are the address bytes in
/// network order; the port is a plain `%04X`.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for start in (0..address.len()).step_by(8) {
        let word = u32::from_str_radix(address.get(start..start + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some(canonical(ip, port))
}

/// IPv4 addresses that a dual-stack socket shows mapped into IPv6 (`::ffff:127.0.0.1`) as
/// plain IPv4, so that they compare equal to what `--addr` resolves to.
fn canonical(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip.to_canonical(), port)
}

/// Whether a socket listening on `listen` takes connections to `target`: same port, and the
/// same address or the wildcard (IPv6's `::` takes IPv4 too unless the socket is v6-only,
/// which this table does not show; the port match makes a wrong guess unlikely).
fn accepts(listen: SocketAddr, target: SocketAddr) -> bool {
    let wildcard = match listen.ip() {
        IpAddr::V4(ip) => ip.is_unspecified() && target.is_ipv4(),
        IpAddr::V6(ip) => ip == Ipv6Addr::UNSPECIFIED,
    };
    listen.port() == target.port() && (listen.ip() == target.ip() || wildcard)
}

/// The first process with a descriptor on one of the sockets `inodes`. Processes whose
/// descriptors this user may not read (another user's) are skipped.
fn owner_of(inodes: &HashSet<u64>) -> Option<u32> {
    let links: HashSet<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    for process in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(descriptors) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for descriptor in descriptors.flatten() {
            let Ok(link) = fs::read_link(descriptor.path()) else {
                continue;
            };
            if link.to_str().is_some_and(|link| links.contains(link)) {
                return Some(pid);
            }
        }
    }
    None
}

fn parse_memory(status: &str) -> Option<Memory> {
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find_map(|line| line.strip_prefix(key))?;
        line.trim().strip_suffix("kB")?.trim().parse().ok()
    };
    Some(Memory { rss_kib: kib("VmRSS:")?, hwm_kib: kib("VmHWM:")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_row_of_tcp_and_tcp6_parses() {
        let v4 = "   0: 0100007F:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0";
        let socket = parse_socket(v4).expect("a tcp row");
        assert_eq!(socket, Socket { local: "127.0.0.1:50000".parse().unwrap(), state: TCP_LISTEN, inode: 123456 });

        // ::1 is three zero words and a last word whose bytes are 00 00 00 01.
        let one = u32::from_ne_bytes([0, 0, 0, 1]);
        let v6 = format!(
            "   1: 000000000000000000000000{one:08X}:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1 0000000000000000 100 0 0 10 0"
        );
        let socket = parse_socket(&v6).expect("a tcp6 row");
        assert_eq!(socket.local, "[::1]:8080".parse().unwrap());
        assert_eq!(socket.inode, 77);
    }

    #[test]
    fn an_ipv4_address_mapped_into_ipv6_compares_as_ipv4() {
        let ffff = u32::from_ne_bytes([0, 0, 0xff, 0xff]);
        let loopback = u32::from_ne_bytes([127, 0, 0, 1]);
        let text = format!("0000000000000000{ffff:08X}{loopback:08X}:0050");
        assert_eq!(parse_address(&text), Some("127.0.0.1:80".parse().unwrap()));
    }

    #[test]
    fn a_wildcard_listener_takes_its_port_only() {
        let any_v4: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        let any_v6: SocketAddr = "[::]:9000".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert!(accepts(any_v4, loopback));
        assert!(accepts(any_v6, loopback));
        assert!(accepts(loopback, loopback));
        assert!(!accepts(any_v4, "[::1]:9000".parse().unwrap()));
        assert!(!accepts(any_v4, "127.0.0.1:9001".parse().unwrap()));
        assert!(!accepts("127.0.0.2:9000".parse().unwrap(), loopback));
    }

    #[test]
    fn memory_comes_from_vmrss_and_vmhwm() {
        let status = "Name:\tledgerd\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_memory(status), Some(Memory { rss_kib: 1024, hwm_kib: 2048 }));
        assert_eq!(parse_memory("Name:\tzombie\n"), None);
    }

    #[test]
    fn this_process_is_found_by_its_listening_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr").to_string();
        assert_eq!(find(&addr).expect("found"), std::process::id());
        assert!(memory(std::process::id()).expect("own status").rss_kib > 0);
        drop(listener);
        assert!(matches!(find(&addr), Err(NotFound::NoListener { .. })), "{:?}", find(&addr));
    }

    #[test]
    fn an_address_of_another_machine_is_not_looked_for_here() {
        // TEST-NET-1 (RFC 5737): documentation only, never this machine's.
        assert!(matches!(find("192.0.2.1:50051"), Err(NotFound::Remote { .. })), "{:?}", find("192.0.2.1:50051"));
    }
}
