//! The connection to `ledgerd`: one HTTP/2 channel, and the bearer token sent as
//! `authorization` metadata on every call.

use super::Global;
use super::output::{Failure, with_causes};
use crate::pb::admin_service_client::AdminServiceClient;
use crate::pb::audit_service_client::AuditServiceClient;
use crate::pb::coupons_service_client::CouponsServiceClient;
use crate::pb::credits_service_client::CreditsServiceClient;
use crate::pb::holds_service_client::HoldsServiceClient;
use crate::pb::members_service_client::MembersServiceClient;
use crate::pb::points_service_client::PointsServiceClient;
use crate::pb::tiers_service_client::TiersServiceClient;
use crate::pb::transactions_service_client::TransactionsServiceClient;
use crate::pb::vouchers_service_client::VouchersServiceClient;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// A wrong address should fail fast rather than hang the command.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub type Authed = InterceptedService<Channel, Bearer>;

/// A connected server and the token to present to it.
pub struct Server {
    channel: Channel,
    bearer: Bearer,
}

impl Server {
    pub async fn connect(global: &Global) -> Result<Server, Failure> {
        let bearer = Bearer::new(&token(global)?)?;
        let addr = &global.addr;
        let channel = endpoint(global)?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .map_err(|error| Failure::message(format!("connecting to {addr}: {}", with_causes(&error))))?;
        Ok(Server { channel, bearer })
    }

    pub fn admin(&self) -> AdminServiceClient<Authed> {
        AdminServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn points(&self) -> PointsServiceClient<Authed> {
        PointsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn members(&self) -> MembersServiceClient<Authed> {
        MembersServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn audit(&self) -> AuditServiceClient<Authed> {
        AuditServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn credits(&self) -> CreditsServiceClient<Authed> {
        CreditsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn coupons(&self) -> CouponsServiceClient<Authed> {
        CouponsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn vouchers(&self) -> VouchersServiceClient<Authed> {
        VouchersServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn holds(&self) -> HoldsServiceClient<Authed> {
        HoldsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn tiers(&self) -> TiersServiceClient<Authed> {
        TiersServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn transactions(&self) -> TransactionsServiceClient<Authed> {
        TransactionsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

/// The endpoint `--addr` names: `https://` speaks TLS, trusting `--ca` (or the
/// system's roots without it); HOST:PORT and `http://` speak plaintext.
fn endpoint(global: &Global) -> Result<Endpoint, Failure> {
    let addr = &global.addr;
    let Some(rest) = addr.strip_prefix("https://") else {
        if let Some(ca) = &global.ca {
            return Err(Failure::message(format!(
                "--ca {} is for TLS: give --addr as https://HOST:PORT, not {addr:?}",
                ca.display()
            )));
        }
        let bare = bare_addr(addr)?;
        return Endpoint::from_shared(format!("http://{bare}"))
            .map_err(|error| Failure::message(format!("--addr {addr:?}: {error}")));
    };
    if rest.trim_end_matches('/').is_empty() {
        return Err(Failure::message("--addr https:// names no server: give https://HOST:PORT"));
    }
    let tls = match &global.ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|error| Failure::message(format!("reading the CA file --ca {}: {error}", path.display())))?;
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
        }
        None => ClientTlsConfig::new().with_native_roots(),
    };
    Endpoint::from_shared(addr.trim_end_matches('/').to_owned())
        .and_then(|endpoint| endpoint.tls_config(tls))
        .map_err(|error| Failure::message(format!("--addr {addr:?}: {}", with_causes(&error))))
}

/// `--addr` with or without `http://`; HOST:PORT is what a plaintext transport needs.
pub fn bare_addr(addr: &str) -> Result<&str, Failure> {
    if addr.starts_with("https://") {
        return Err(Failure::message(format!(
            "--addr {addr}: this command speaks plaintext HTTP/2 only; use http:// or HOST:PORT"
        )));
    }
    let bare = addr.strip_prefix("http://").unwrap_or(addr).trim_end_matches('/');
    if bare.is_empty() {
        return Err(Failure::message("--addr is empty: give HOST:PORT"));
    }
    Ok(bare)
}

/// `--token` (or LEDGER_TOKEN) wins over `--token-file` (or LEDGER_TOKEN_FILE): a
/// token given directly is the more deliberate choice. A file's trailing newline
/// is not part of the token.
fn token(global: &Global) -> Result<String, Failure> {
    let token = match &global.token {
        Some(token) => token.trim().to_owned(),
        None => std::fs::read_to_string(&global.token_file)
            .map_err(|error| {
                Failure::message(format!(
                    "reading the token file {}: {error} (give --token-file FILE or LEDGER_TOKEN_FILE, \
                     or the token itself as --token or LEDGER_TOKEN)",
                    global.token_file.display()
                ))
            })?
            .trim()
            .to_owned(),
    };
    if token.is_empty() {
        return Err(Failure::message(
            "the token is empty (give --token-file FILE or LEDGER_TOKEN_FILE, or --token or LEDGER_TOKEN)",
        ));
    }
    Ok(token)
}

#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    fn new(token: &str) -> Result<Bearer, Failure> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Failure::message("the token holds characters not allowed in a header"))?;
        Ok(Bearer(value))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}
