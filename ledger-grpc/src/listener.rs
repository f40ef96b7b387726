//! The accept loop: at most `connections_max` connections open, and none that
//! costs the server anything once its client stops talking.
//!
//! Losses this prevents, and how each could happen without it:
//! - A flood of connections (or idle ones piling up) uses every descriptor, so the
//!   store can no longer open a file and `accept` fails with EMFILE. Here the cap
//!   keeps connections below the descriptor limit (`fit_to_descriptors`), and an
//!   accept error is logged once and retried after a pause: it never ends the
//!   accept loop, and never spins it.
//! - A client that opens a connection and says nothing holds a descriptor and a
//!   slot for ever. Here a connection must send HTTP/2's preface within
//!   `preface_timeout` and is closed once no call has been in flight on it for
//!   `idle_timeout`; HTTP/2 keepalive pings (`server`) close the ones whose peer
//!   vanished while a call was open.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// What bounds a connection's life.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub connections_max: usize,
    pub preface_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Accepts connections from `listener` while fewer than `connections_max` are
/// open, for tonic's `serve_with_incoming_shutdown`. The loop ends, and the
/// listening socket closes, when the server drops the stream.
pub fn incoming(listener: TcpListener, limits: ConnectionLimits) -> ReceiverStream<io::Result<Connection>> {
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(accept_loop(listener, limits, sender));
    ReceiverStream::new(receiver)
}

/// `connections_max`, lowered when the process's descriptor limit could not hold
/// that many connections besides `reserved` descriptors for the store and logs.
pub fn fit_to_descriptors(connections_max: usize, reserved: u64) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let Some(limit) = limit else { return connections_max };
    let room = usize::try_from(limit.saturating_sub(reserved)).unwrap_or(usize::MAX).max(1);
    if room < connections_max {
        tracing::warn!(
            descriptor_limit = limit,
            connections_max = room,
            "the descriptor limit leaves room for {room} connections, not {connections_max}: \
             capping there (raise `ulimit -n` for more)"
        );
        return room;
    }
    connections_max
}

/// How long the loop pauses after an accept error that is not one client's
/// problem (EMFILE, ENFILE, ENOBUFS): long enough not to spin on a full
/// descriptor table, short enough that clients barely notice once it clears.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bytes of HTTP/2's client preface, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
const PREFACE_BYTES: usize = 24;

async fn accept_loop(listener: TcpListener, limits: ConnectionLimits, sender: mpsc::Sender<io::Result<Connection>>) {
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let mut failures = Failures::default();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = sender.closed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = sender.closed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Without it every reply of more than a few KB (a bulk's balances)
                // waits for a delayed ACK, about 40 ms.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %error, "TCP_NODELAY");
                }
                if sender.send(Ok(Connection::new(stream, peer, slot, limits))).await.is_err() {
                    return;
                }
            }
            // The client gave up between its SYN and our accept: nothing to wait for.
            Err(error) if one_client(&error) => {}
            Err(error) => {
                failures.log(&error);
                drop(slot);
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {},
                    () = sender.closed() => return,
                }
            }
        }
    }
}

/// Accept errors, logged once a minute at most: while descriptors run out they
/// come and go with every connection that closes, and one line says enough.
#[derive(Default)]
struct Failures {
    unlogged: u64,
    logged_at: Option<Instant>,
}

/// How often a run of accept errors is logged.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

impl Failures {
    fn log(&mut self, error: &io::Error) {
        self.unlogged += 1;
        if self.logged_at.is_some_and(|at| at.elapsed() < ACCEPT_ERROR_LOG_INTERVAL) {
            return;
        }
        tracing::warn!(
            %error,
            failures = self.unlogged,
            "accepting a connection failed; the server pauses {ACCEPT_BACKOFF:?} after each failure and \
             goes on (too many open files? see --connections-max and `ulimit -n`)"
        );
        self.unlogged = 0;
        self.logged_at = Some(Instant::now());
    }
}

fn one_client(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// What the calls of one connection tell its [`Connection`]: how many are in
/// flight, and since when the count last changed.
#[derive(Debug)]
pub struct Activity {
    calls: AtomicUsize,
    since: Mutex<Instant>,
}

impl Activity {
    /// Marks a call in flight until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.touch();
        Busy(Arc::clone(self))
    }

    fn touch(&self) {
        *self.since.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn since(&self) -> Instant {
        *self.since.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A call in flight on a connection.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What tonic puts in every request's extensions for a [`Connection`].
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub activity: Arc<Activity>,
}

/// An accepted TCP connection that closes itself (its reads fail) when its
/// client sent no HTTP/2 preface in time, or no call has been in flight on it
/// for the idle timeout. It holds one of the listener's slots until dropped.
pub struct Connection {
    stream: TcpStream,
    info: ConnectionInfo,
    limits: ConnectionLimits,
    preface_left: usize,
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    fn new(stream: TcpStream, peer: SocketAddr, slot: OwnedSemaphorePermit, limits: ConnectionLimits) -> Connection {
        let now = Instant::now();
        let activity = Arc::new(Activity { calls: AtomicUsize::new(0), since: Mutex::new(now) });
        Connection {
            stream,
            info: ConnectionInfo { peer, activity },
            limits,
            preface_left: PREFACE_BYTES,
            deadline: Box::pin(tokio::time::sleep_until(now + limits.preface_timeout)),
            _slot: slot,
        }
    }

    /// Pending until the connection must close, then the error that closes it.
    /// When the deadline passes but the connection may live on (it spoke, or a
    /// call is in flight), it moves the deadline to the next time to look.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let peer = self.info.peer;
            if self.preface_left > 0 {
                tracing::debug!(%peer, "closing a connection that sent no HTTP/2 preface");
                let message = format!("no HTTP/2 preface within {:?}", self.limits.preface_timeout);
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, message));
            }
            let activity = &self.info.activity;
            let now = Instant::now();
            let next = if activity.calls.load(Ordering::SeqCst) > 0 {
                now + self.limits.idle_timeout
            } else {
                activity.since() + self.limits.idle_timeout
            };
            if next <= now {
                tracing::debug!(%peer, "closing a connection idle for {:?}", self.limits.idle_timeout);
                let message = format!("no call for {:?}", self.limits.idle_timeout);
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, message));
            }
            self.deadline.as_mut().reset(next);
        }
    }
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        self.info.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if let Poll::Ready(read) = Pin::new(&mut this.stream).poll_read(cx, buf) {
            this.preface_left = this.preface_left.saturating_sub(buf.filled().len() - before);
            return Poll::Ready(read);
        }
        this.poll_deadline(cx).map(Err)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
