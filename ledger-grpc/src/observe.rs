//! What an operator sees of the server (SPEC §18): per-call metrics and one
//! request log line per call, from one layer around the gRPC routes, and the
//! Prometheus listener of `ledgerd --metrics`.
//!
//! The layer wraps the gRPC routes, not the HTTP ones: the Connect routes
//! (`http::connect`) answer each HTTP call by calling those gRPC routes, so an
//! HTTP call and a gRPC call are counted and logged alike, once, by the RPC's
//! name and the gRPC code and ErrorInfo reason of its Status. The series are
//! listed, with what to alert on, in docs/OPERATIONS.md.

use axum::body::Body;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tonic::Code;

tokio::task_local! {
    /// Who made the call being served, noted by `auth` once the token is known:
    /// the layer sees only the request's bytes, never the secret's owner.
    static CALLER: RefCell<CallerNote>;
}

/// Whether `install_recorder` ran: without it the layer builds no labels.
static RECORDING: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct CallerNote {
    token_id: Option<String>,
    program: Option<String>,
}

/// Notes the authenticated token (and the program, when the call names one) of
/// the call being served, for its log line. Outside a call it does nothing.
pub fn note_caller(token_id: &str, program: Option<&str>) {
    let _ = CALLER.try_with(|note| {
        let mut note = note.borrow_mut();
        note.token_id = Some(token_id.to_owned());
        if let Some(program) = program.filter(|program| !program.is_empty()) {
            note.program = Some(program.to_owned());
        }
    });
}

/// The layer: `axum::middleware::from_fn(observe::call)` around the gRPC routes.
pub async fn call(request: axum::extract::Request, next: Next) -> Response {
    let started = Instant::now();
    let rpc = request.uri().path().trim_start_matches('/').to_owned();
    let (response, caller) = CALLER
        .scope(RefCell::new(CallerNote::default()), async move {
            let response = next.run(request).await;
            (response, CALLER.with(|note| std::mem::take(&mut *note.borrow_mut())))
        })
        .await;
    let elapsed = started.elapsed();
    // A call that fails before its first message answers trailers-only, so its
    // Status is in the headers. Any other call's Status comes in the trailers
    // after its messages: OK for a unary answer, but a stream (StreamEvents,
    // ReadEvents) may still fail after it sent events, so those calls are
    // finished when their body ends.
    let Some(status) = tonic::Status::from_header_map(response.headers()) else {
        let rpc = rpc_label(&rpc, Code::Ok);
        if RECORDING.load(Ordering::Relaxed) {
            record_call(&rpc, elapsed);
        }
        let end = CallEnd { rpc, caller, started };
        return response.map(|body| Body::new(Observed { body, end: Some(end) }));
    };
    let rpc = rpc_label(&rpc, status.code());
    if RECORDING.load(Ordering::Relaxed) {
        record_call(&rpc, elapsed);
    }
    CallEnd { rpc, caller, started }.finish(&status);
    response
}

/// The label of a call's RPC. Any path reaches the layer, and each label value
/// is a series kept for the process's life: a path no service has
/// (UNIMPLEMENTED) is counted under one label, so that a client cannot grow the
/// series without bound.
fn rpc_label(rpc: &str, code: Code) -> String {
    if code == Code::Unimplemented { "unknown".to_owned() } else { rpc.to_owned() }
}

/// What a call's end records: its error, if any, and its log line.
struct CallEnd {
    rpc: String,
    caller: CallerNote,
    started: Instant,
}

impl CallEnd {
    fn finish(self, status: &tonic::Status) {
        let code = status.code();
        let reason = error_reason(status).unwrap_or_default();
        self.finish_with(code, &reason);
    }

    fn finish_with(self, code: Code, reason: &str) {
        let code_name = crate::status::code_name(code);
        if code != Code::Ok && RECORDING.load(Ordering::Relaxed) {
            record_error(&self.rpc, code, code_name, reason);
        }
        let elapsed = self.started.elapsed();
        tracing::info!(
            target: "ledgerd::request",
            rpc = %self.rpc,
            program = self.caller.program.as_deref(),
            code = code_name,
            reason = (!reason.is_empty()).then_some(reason),
            duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            token_id = self.caller.token_id.as_deref(),
            "request"
        );
    }
}

/// A response body that finishes its call when the trailers pass with its
/// Status, or, when the client goes away first (the body is dropped before its
/// end), logs it CANCELLED: no status was sent, so no error is counted.
struct Observed {
    body: Body,
    end: Option<CallEnd>,
}

impl http_body::Body for Observed {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(std::pin::Pin::new(&mut this.body).poll_frame(cx));
        let trailers = match &frame {
            Some(Ok(frame)) => frame.trailers_ref(),
            _ => None,
        };
        if let Some(trailers) = trailers
            && let Some(end) = this.end.take()
        {
            match tonic::Status::from_header_map(trailers) {
                Some(status) => end.finish(&status),
                // A gRPC answer always ends with its Status; one without is the server's fault.
                None => end.finish_with(Code::Internal, ""),
            }
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            end.finish_with(Code::Cancelled, "");
        }
    }
}

fn record_call(rpc: &str, elapsed: std::time::Duration) {
    metrics::counter!("ledger_requests_total", "rpc" => rpc.to_owned()).increment(1);
    metrics::histogram!("ledger_request_seconds", "rpc" => rpc.to_owned()).record(elapsed.as_secs_f64());
}

fn record_error(rpc: &str, code: Code, code_name: &'static str, reason: &str) {
    let reason = reason.to_owned();
    metrics::counter!("ledger_request_errors_total", "rpc" => rpc.to_owned(), "code" => code_name, "reason" => reason.clone())
        .increment(1);
    if code == Code::Unauthenticated {
        metrics::counter!("ledger_token_rejections_total", "reason" => reason).increment(1);
    }
}

fn error_reason(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    status.get_details_error_info().map(|info| info.reason)
}

/// Installs the Prometheus recorder for the whole process. Call it before the
/// ledger opens: the writer registers its series when it starts.
pub fn install_recorder() -> Result<PrometheusHandle, Box<dyn std::error::Error + Send + Sync>> {
    // Without buckets the exporter renders summaries, which cannot be summed
    // across servers; these span a sync on a fast disk to a stalled one.
    const SECONDS_BUCKETS: [f64; 14] =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
    const GROUP_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full("ledger_commit_group_commands".into()), &GROUP_BUCKETS)?
        .install_recorder()?;
    RECORDING.store(true, Ordering::Relaxed);
    Ok(handle)
}

/// Serves `GET /metrics` on its own listener until the process ends.
pub async fn serve_metrics(listener: tokio::net::TcpListener, handle: PrometheusHandle) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                record_process();
                handle.run_upkeep();
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], Body::from(handle.render()))
            }
        }),
    );
    axum::serve(listener, router).await
}

/// Process CPU and memory, read from /proc at each scrape (Linux; elsewhere
/// the series are absent).
fn record_process() {
    // /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 for
    // user space whatever the kernel's own tick.
    const TICKS_PER_SECOND: f64 = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        // utime and stime are fields 14 and 15 of the line; field 3 (the state) is index 0 here.
        let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            metrics::gauge!("ledger_process_cpu_seconds_total").set((user + system) / TICKS_PER_SECOND);
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let resident_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
        if let Some(resident_kib) = resident_kib {
            metrics::gauge!("ledger_process_resident_memory_bytes").set(resident_kib * 1024.0);
        }
    }
}
