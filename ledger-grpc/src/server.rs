//! Builds the tonic server: the ledger's services, gRPC health (the whole server as
//! service `""` and each service by name) and reflection (v1 and v1alpha), over
//! the capped listener (`listener`, `limits`), in TLS when given an identity
//! (`tls`); HTTP/1.1 and HTTP/2 JSON on the same port (`http`).

use crate::limits::{CallLimitLayer, Limits};
use crate::pb;
use crate::service::Api;
use ledger_store::{Health, Ledger};
use std::future::Future;
use std::pin::Pin;
use tokio::net::TcpListener;
use tonic_health::ServingStatus;

pub use ledger_core::limits::REQUEST_BYTES_MAX;

/// How long a shutdown waits for in-flight calls and connected clients.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often the health of the write path is looked at.
const HEALTH_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Keeps gRPC health in step with the ledger's write path: while a storage fault,
/// a failure or a broken hash chain (the background integrity check) refuses
/// writes, the services that write report NOT_SERVING; the server as a whole
/// (`""`) and the read services (Members, Audit) stay SERVING, since reads go on.
async fn report_writes(ledger: Ledger, reporter: tonic_health::server::HealthReporter) {
    let mut writable = true;
    loop {
        let health = ledger.health();
        if (health == Health::Writable) != writable {
            writable = !writable;
            match &health {
                Health::Writable => tracing::warn!("writes resume: health SERVING"),
                Health::Faulted(reason) | Health::Failed(reason) => {
                    tracing::error!(%reason, "writes refused: health NOT_SERVING for the services that write");
                }
            }
            let status = if writable { ServingStatus::Serving } else { ServingStatus::NotServing };
            for name in WRITE_SERVICES {
                reporter.set_service_status(name, status).await;
            }
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}

/// The services whose calls write.
const WRITE_SERVICES: [&str; 8] = [
    <pb::admin_service_server::AdminServiceServer<Api> as tonic::server::NamedService>::NAME,
    <pb::points_service_server::PointsServiceServer<Api> as tonic::server::NamedService>::NAME,
    <pb::credits_service_server::CreditsServiceServer<Api> as tonic::server::NamedService>::NAME,
    <pb::coupons_service_server::CouponsServiceServer<Api> as tonic::server::NamedService>::NAME,
    <pb::vouchers_service_server::VouchersServiceServer<Api> as tonic::server::NamedService>::NAME,
    <pb::tiers_service_server::TiersServiceServer<Api> as tonic::server::NamedService>::NAME,
    <pb::holds_service_server::HoldsServiceServer<Api> as tonic::server::NamedService>::NAME,
    <pb::transactions_service_server::TransactionsServiceServer<Api> as tonic::server::NamedService>::NAME,
];

/// How the server meets its clients.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub limits: Limits,
    /// The server's certificate chain and key; plaintext without one.
    pub tls: Option<crate::tls::TlsIdentity>,
}

/// Serves with the default limits, in plaintext.
pub async fn serve(
    ledger: Ledger,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_with(ledger, listener, Config::default(), shutdown).await
}

pub async fn serve_with(
    ledger: Ledger,
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let limits = config.limits;
    let api_ledger = ledger.clone();
    let api = Api::new(ledger, &limits);
    let admin =
        pb::admin_service_server::AdminServiceServer::new(api.clone()).max_decoding_message_size(REQUEST_BYTES_MAX);
    let points =
        pb::points_service_server::PointsServiceServer::new(api.clone()).max_decoding_message_size(REQUEST_BYTES_MAX);
    let members = pb::members_service_server::MembersServiceServer::new(api.clone());
    let credits = pb::credits_service_server::CreditsServiceServer::new(api.clone());
    let coupons = pb::coupons_service_server::CouponsServiceServer::new(api.clone());
    let vouchers = pb::vouchers_service_server::VouchersServiceServer::new(api.clone())
        .max_decoding_message_size(REQUEST_BYTES_MAX);
    let tiers = pb::tiers_service_server::TiersServiceServer::new(api.clone());
    let holds = pb::holds_service_server::HoldsServiceServer::new(api.clone());
    let transactions = pb::transactions_service_server::TransactionsServiceServer::new(api.clone());
    let http_api = api.clone();
    let audit = pb::audit_service_server::AuditServiceServer::new(api);

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<pb::admin_service_server::AdminServiceServer<Api>>().await;
    reporter.set_serving::<pb::points_service_server::PointsServiceServer<Api>>().await;
    reporter.set_serving::<pb::members_service_server::MembersServiceServer<Api>>().await;
    reporter.set_serving::<pb::audit_service_server::AuditServiceServer<Api>>().await;
    reporter.set_serving::<pb::credits_service_server::CreditsServiceServer<Api>>().await;
    reporter.set_serving::<pb::coupons_service_server::CouponsServiceServer<Api>>().await;
    reporter.set_serving::<pb::vouchers_service_server::VouchersServiceServer<Api>>().await;
    reporter.set_serving::<pb::tiers_service_server::TiersServiceServer<Api>>().await;
    reporter.set_serving::<pb::holds_service_server::HoldsServiceServer<Api>>().await;
    reporter.set_serving::<pb::transactions_service_server::TransactionsServiceServer<Api>>().await;
    tokio::spawn(report_writes(api_ledger.clone(), reporter.clone()));

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(());
    };
    let builder = tonic::transport::Server::builder()
        .max_concurrent_streams(limits.requests_per_connection_max)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout));
    let acceptor = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    if acceptor.is_none() {
        tracing::info!("serving plaintext gRPC and HTTP: tokens cross the network readable (--tls-cert, --tls-key)")
    }
    let connections = crate::listener::ConnectionLimits {
        connections_max: crate::listener::fit_to_descriptors(
            limits.connections_max,
            ledger_core::limits::DESCRIPTORS_RESERVED,
        ),
        ..limits.connections()
    };
    let grpc = tonic::service::Routes::new(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(admin)
        .add_service(points)
        .add_service(members)
        .add_service(credits)
        .add_service(coupons)
        .add_service(vouchers)
        .add_service(tiers)
        .add_service(holds)
        .add_service(transactions)
        .add_service(audit)
        .prepare()
        .into_axum_router()
        // Around the gRPC routes, which the HTTP routes call in turn (`observe`).
        .layer(axum::middleware::from_fn(crate::observe::call));
    let app = crate::http::app(grpc, http_api);
    let router = builder
        .accept_http1(true)
        .layer(CallLimitLayer::new(limits.requests_max))
        .add_routes(tonic::service::Routes::from(app));
    let incoming = crate::listener::incoming(listener, connections);
    let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match acceptor {
        // A handshake gets as long as a plaintext client has to send its preface.
        Some(acceptor) => Box::pin(
            router
                .serve_with_incoming_shutdown(crate::tls::incoming(incoming, acceptor, limits.preface_timeout), signal),
        ),
        None => Box::pin(router.serve_with_incoming_shutdown(incoming, signal)),
    };
    // A graceful shutdown waits for clients to hang up; one that never does must
    // not keep the server up. Whatever was acknowledged is durable already.
    let grace = async {
        if stopped.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        () = grace => tracing::warn!("clients still connected after {SHUTDOWN_GRACE:?}: closing their connections"),
    }
    Ok(())
}
