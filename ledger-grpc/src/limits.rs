//! What one caller may cost the server: calls in flight (the whole server), event
//! streams (the whole server and per token), and the connection limits the
//! listener enforces. The defaults are `ledger_core::limits`; `ledgerd`'s flags
//! change them. A call beyond a cap gets RESOURCE_EXHAUSTED with a
//! `google.rpc.ErrorInfo` (domain `ledger.v1`) whose reason says which cap.

use crate::listener::{Busy, ConnectionInfo, ConnectionLimits};
use ledger_core::limits;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::codegen::{Bytes, http};

/// `google.rpc.ErrorInfo` reason: the server has `requests_max` calls in flight.
pub const REASON_TOO_MANY_REQUESTS: &str = ledger_core::reason::TOO_MANY_REQUESTS;
/// `google.rpc.ErrorInfo` reason: the server, or this token, has every event
/// stream it may have open.
pub const REASON_TOO_MANY_STREAMS: &str = ledger_core::reason::TOO_MANY_STREAMS;
pub use crate::status::ERROR_DOMAIN;

/// Every cap of the server, with `ledger_core::limits`' values by default.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connections_max: usize,
    pub requests_max: usize,
    pub requests_per_connection_max: u32,
    pub streams_max: usize,
    pub streams_per_token_max: usize,
    pub preface_timeout: Duration,
    pub idle_timeout: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            connections_max: limits::CONNECTIONS_MAX,
            requests_max: limits::REQUESTS_MAX,
            requests_per_connection_max: limits::REQUESTS_PER_CONNECTION_MAX,
            streams_max: limits::STREAMS_MAX,
            streams_per_token_max: limits::STREAMS_PER_TOKEN_MAX,
            preface_timeout: Duration::from_millis(limits::PREFACE_TIMEOUT_MS),
            idle_timeout: Duration::from_millis(limits::CONNECTION_IDLE_TIMEOUT_MS),
            keepalive_interval: Duration::from_millis(limits::KEEPALIVE_INTERVAL_MS),
            keepalive_timeout: Duration::from_millis(limits::KEEPALIVE_TIMEOUT_MS),
        }
    }
}

impl Limits {
    pub fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            connections_max: self.connections_max,
            preface_timeout: self.preface_timeout,
            idle_timeout: self.idle_timeout,
        }
    }
}

/// RESOURCE_EXHAUSTED with an ErrorInfo naming `reason` and the cap (`status`).
pub fn exhausted(reason: &'static str, message: String, limit: usize, scope: &'static str) -> Status {
    crate::status::status(crate::status::Exhausted { reason, message, limit, scope })
}

/// Counts open event streams, in total and per token.
#[derive(Clone, Debug)]
pub struct StreamCaps {
    counts: Arc<Mutex<StreamCounts>>,
    streams_max: usize,
    per_token_max: usize,
}

#[derive(Debug, Default)]
struct StreamCounts {
    total: usize,
    per_token: HashMap<String, usize>,
}

/// One open event stream; it stops counting when dropped (the client went away
/// or the stream ended).
#[derive(Debug)]
pub struct StreamPermit {
    caps: StreamCaps,
    token_id: String,
}

impl StreamCaps {
    pub fn new(limits: &Limits) -> StreamCaps {
        StreamCaps {
            counts: Arc::default(),
            streams_max: limits.streams_max,
            per_token_max: limits.streams_per_token_max,
        }
    }

    /// A permit for one more stream of `token_id`, or RESOURCE_EXHAUSTED
    /// `TOO_MANY_STREAMS` naming the cap it would pass.
    pub fn acquire(&self, token_id: &str) -> Result<StreamPermit, Status> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.streams_max {
            let message = format!(
                "the server has {} event streams open, its limit (--streams-max): close one or retry later",
                self.streams_max
            );
            return Err(exhausted(REASON_TOO_MANY_STREAMS, message, self.streams_max, "server"));
        }
        let of_token = counts.per_token.get(token_id).copied().unwrap_or(0);
        if of_token >= self.per_token_max {
            let message = format!(
                "this token has {} event streams open, the limit per token (--streams-per-token-max): close one first",
                self.per_token_max
            );
            return Err(exhausted(REASON_TOO_MANY_STREAMS, message, self.per_token_max, "token"));
        }
        counts.total += 1;
        counts.per_token.insert(token_id.to_owned(), of_token + 1);
        Ok(StreamPermit { caps: self.clone(), token_id: token_id.to_owned() })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut counts = self.caps.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total -= 1;
        if let Some(count) = counts.per_token.get_mut(&self.token_id) {
            *count -= 1;
            if *count == 0 {
                counts.per_token.remove(&self.token_id);
            }
        }
    }
}

/// Caps the calls being handled in the whole server, and marks each call busy on
/// its connection (so the listener does not close it as idle). A call counts
/// against the cap until its handler answers (for a stream: opens it), and is busy
/// until its response body is dropped. Open streams are not counted here: event
/// streams have their own caps, and a cap that long-lived streams (unauthenticated
/// health watches among them) could fill would let a few callers refuse everyone.
#[derive(Clone, Debug)]
pub struct CallLimitLayer {
    calls: Arc<Semaphore>,
    calls_max: usize,
}

impl CallLimitLayer {
    pub fn new(calls_max: usize) -> CallLimitLayer {
        CallLimitLayer { calls: Arc::new(Semaphore::new(calls_max)), calls_max }
    }
}

impl<S> tower::Layer<S> for CallLimitLayer {
    type Service = CallLimit<S>;

    fn layer(&self, inner: S) -> CallLimit<S> {
        CallLimit { inner, calls: Arc::clone(&self.calls), calls_max: self.calls_max }
    }
}

#[derive(Clone, Debug)]
pub struct CallLimit<S> {
    inner: S,
    calls: Arc<Semaphore>,
    calls_max: usize,
}

type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for CallLimit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Ok(permit) = Arc::clone(&self.calls).try_acquire_owned() else {
            let message =
                format!("the server has {} calls in flight, its limit (--requests-max): retry later", self.calls_max);
            let status = exhausted(REASON_TOO_MANY_REQUESTS, message, self.calls_max, "server");
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let busy = request.extensions().get::<ConnectionInfo>().map(|info| info.activity.begin());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(permit);
            Ok(response?.map(|body| tonic::body::Body::new(Counted { body, _busy: busy })))
        })
    }
}

/// A response body that keeps its call's connection busy until dropped.
struct Counted {
    body: tonic::body::Body,
    _busy: Option<Busy>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;
    use tonic_types::StatusExt;
    use tower::{Layer, Service};

    /// A handler that answers only when its test says so.
    #[derive(Clone)]
    struct Held(Arc<tokio::sync::Notify>);

    impl Service<http::Request<()>> for Held {
        type Response = http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let release = Arc::clone(&self.0);
            Box::pin(async move {
                release.notified().await;
                Ok(http::Response::new(tonic::body::Body::empty()))
            })
        }
    }

    fn reason(response: &http::Response<tonic::body::Body>) -> Option<(Code, String)> {
        let status = Status::from_header_map(response.headers())?;
        let info = status.get_error_details().error_info()?.clone();
        assert_eq!(info.domain, ERROR_DOMAIN);
        Some((status.code(), info.reason))
    }

    #[tokio::test]
    async fn a_call_beyond_the_servers_cap_is_resource_exhausted_until_one_is_answered() {
        let release = Arc::new(tokio::sync::Notify::new());
        let mut service = CallLimitLayer::new(1).layer(Held(Arc::clone(&release)));
        let first = tokio::spawn(service.call(http::Request::new(())));
        tokio::task::yield_now().await;
        let refused = service.call(http::Request::new(())).await.expect("an answer");
        assert_eq!(reason(&refused), Some((Code::ResourceExhausted, REASON_TOO_MANY_REQUESTS.to_owned())));
        release.notify_one();
        first.await.expect("first call").expect("first answer");
        let second = tokio::spawn(service.call(http::Request::new(())));
        release.notify_one();
        let answered = second.await.expect("second call").expect("second answer");
        assert_eq!(reason(&answered), None);
    }

    #[test]
    fn streams_are_capped_per_token_and_in_total_and_free_their_slot_when_dropped() {
        let limits = Limits { streams_max: 3, streams_per_token_max: 2, ..Limits::default() };
        let caps = StreamCaps::new(&limits);
        let a1 = caps.acquire("a").expect("a's first");
        let _a2 = caps.acquire("a").expect("a's second");
        let per_token = caps.acquire("a").expect_err("a's third passes the per-token cap");
        assert_eq!(per_token.code(), Code::ResourceExhausted);
        let info = per_token.get_error_details().error_info().cloned().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.metadata["scope"].as_str()), (REASON_TOO_MANY_STREAMS, "token"));
        let _b1 = caps.acquire("b").expect("b's first");
        let total = caps.acquire("b").expect_err("the fourth passes the server's cap");
        let info = total.get_error_details().error_info().cloned().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.metadata["scope"].as_str()), (REASON_TOO_MANY_STREAMS, "server"));
        drop(a1);
        caps.acquire("b").expect("a dropped stream's slot is free again");
    }
}
