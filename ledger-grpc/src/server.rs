//! Builds the tonic server: the ledger's services, gRPC health (the whole server as
//! service `""` and each service by name) and reflection (v1 and v1alpha).

use crate::pb;
use crate::service::Api;
use ledger_store::Ledger;
use std::future::Future;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

pub use ledger_core::limits::REQUEST_BYTES_MAX;

/// How long a shutdown waits for in-flight calls and connected clients.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn serve(
    ledger: Ledger,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let api = Api { ledger };
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
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(admin)
        .add_service(points)
        .add_service(members)
        .add_service(credits)
        .add_service(coupons)
        .add_service(vouchers)
        .add_service(tiers)
        .add_service(audit)
        // `tcp_nodelay` above applies only to `serve()`: the accepted connections
        // need it here, or every reply of more than a few KB (a bulk's balances)
        // waits for a delayed ACK, about 40 ms.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal);
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
