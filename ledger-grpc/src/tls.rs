//! TLS for the one port (SPEC §18): rustls, offering both HTTP/2 and HTTP/1.1.
//!
//! tonic's own TLS (`ServerTlsConfig`) offers ALPN `h2` alone, so a client that
//! offers only `http/1.1` (curl --http1.1, Python's urllib3, Java's HttpClient on
//! HTTP/1.1) fails the handshake with `no_application_protocol`, though the
//! server speaks HTTP/1.1 (SPEC §17). Here the handshake is ours: ALPN `h2` and
//! `http/1.1`, each handshake on its own task so that a slow one delays no other,
//! bounded by the preface timeout as a plaintext client's first bytes are.

use crate::listener::{Connection, ConnectionInfo};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// The server's certificate chain and private key, PEM (`--tls-cert`, `--tls-key`).
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Why the identity cannot serve, naming the flag whose file is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert: not a PEM certificate chain ({0})")]
    Certificate(rustls::pki_types::pem::Error),
    #[error("--tls-key: not a PEM private key ({0})")]
    Key(rustls::pki_types::pem::Error),
    #[error("--tls-cert, --tls-key: {0}")]
    Config(rustls::Error),
}

/// An acceptor offering ALPN `h2` then `http/1.1`.
pub fn acceptor(identity: &TlsIdentity) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_slice_iter(&identity.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::Certificate)?;
    let key = PrivateKeyDer::from_pem_slice(&identity.key_pem).map_err(TlsError::Key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The connections of `plain` once their handshake is done; a handshake that
/// fails or takes longer than `handshake_timeout` closes its connection.
pub fn incoming(
    mut plain: ReceiverStream<io::Result<Connection>>,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
) -> ReceiverStream<io::Result<TlsConnection>> {
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut handshakes = JoinSet::new();
        loop {
            tokio::select! {
                next = plain.next() => match next {
                    Some(Ok(connection)) => {
                        let accept = acceptor.accept(connection);
                        handshakes.spawn(tokio::time::timeout(handshake_timeout, accept));
                    }
                    Some(Err(error)) => {
                        if sender.send(Err(error)).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                Some(done) = handshakes.join_next() => match done {
                    Ok(Ok(Ok(stream))) => {
                        if sender.send(Ok(TlsConnection(stream))).await.is_err() {
                            return;
                        }
                    }
                    // The peer's problem (a plaintext client, an unknown CA, a
                    // stalled handshake): its connection closes, the server goes on.
                    Ok(Ok(Err(error))) => tracing::debug!(%error, "TLS handshake failed"),
                    Ok(Err(_)) => tracing::debug!("TLS handshake timed out"),
                    Err(error) => tracing::warn!(%error, "TLS handshake task failed"),
                },
                () = sender.closed() => return,
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// A connection after its handshake; it tells tonic the same connection info as
/// a plaintext one, so the per-connection accounting (`limits`) sees it alike.
pub struct TlsConnection(tokio_rustls::server::TlsStream<Connection>);

impl Connected for TlsConnection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
