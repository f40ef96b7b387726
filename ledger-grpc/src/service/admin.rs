//! AdminService: programs and tokens.

use super::{Api, blocking};
use crate::auth::{self, Access, AuthError};
use crate::mapping::{Reading, to_timestamp};
use crate::pb::{self, admin_service_server::AdminService};
use crate::status::{ApiError, from_ledger, status};
use ledger_core::limits::NAME_BYTES_MAX;
use ledger_core::{FieldPath, Outcome, Rejection, Timestamp, validate};
use ledger_store::tokens::{Quota, Role, TokenError};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl AdminService for Api {
    async fn create_program(
        &self,
        request: Request<pb::CreateProgramRequest>,
    ) -> Result<Response<pb::Program>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Admin)?;
        let request = request.into_inner();
        let outcome = self.ledger.create_program(&request.program_id, &request.name, &caller.token_id).await;
        match outcome.map_err(from_ledger)? {
            Outcome::ProgramCreated { program, name, created_at } => {
                Ok(Response::new(pb::Program { program_id: program, name, created_at: Some(to_timestamp(created_at)) }))
            }
            other => Err(status(ApiError::Internal(format!("CreateProgram answered {other:?}")))),
        }
    }

    async fn list_programs(
        &self,
        request: Request<pb::ListProgramsRequest>,
    ) -> Result<Response<pb::ListProgramsResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Admin)?;
        let programs = self
            .ledger
            .read(|state| {
                state
                    .programs
                    .iter()
                    .map(|(id, program)| pb::Program {
                        program_id: id.clone(),
                        name: program.name.clone(),
                        created_at: Some(to_timestamp(program.created_at)),
                    })
                    .collect()
            })
            .await
            .map_err(from_ledger)?;
        Ok(Response::new(pb::ListProgramsResponse { programs }))
    }

    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Admin)?;
        let request = request.into_inner();
        let mut reading = Reading::new();
        let invalid =
            |field: &str, rule: &str| Rejection::Invalid { field: FieldPath::new(field), rule: rule.to_owned() };
        let role = match pb::Role::try_from(request.role) {
            Ok(pb::Role::Admin) => Some(Role::Admin),
            Ok(pb::Role::Operator) => Some(Role::Operator),
            Ok(pb::Role::Viewer) => Some(Role::Viewer),
            Ok(pb::Role::Unspecified) | Err(_) => {
                reading.push(invalid("role", "must be ADMIN, OPERATOR or VIEWER"));
                None
            }
        };
        let program = if role == Some(Role::Admin) { String::new() } else { request.program_id.clone() };
        if role.is_some_and(|role| role != Role::Admin) && program.is_empty() {
            reading.push(invalid("program_id", "an OPERATOR or VIEWER token needs its program"));
        }
        reading.check(validate::optional_id("program_id", &program));
        reading.check(validate::max_bytes("name", &request.name, NAME_BYTES_MAX));
        if request.max_requests == Some(0) {
            reading.push(invalid("max_requests", "must be at least 1 when given"));
        }
        let expires_at = reading.time("expires_at", request.expires_at);
        let now = Timestamp::from_chrono(chrono::Utc::now());
        if expires_at.is_some_and(|expires_at| expires_at <= now) {
            reading.push(invalid("expires_at", "must be in the future"));
        }
        reading.finish()?;
        let role = role.expect("a role that did not read was refused above");
        if role != Role::Admin {
            let exists = self.ledger.read(|state| state.program(&program).is_some()).await.map_err(from_ledger)?;
            if !exists {
                let field = FieldPath::new("program_id");
                return Err(status(Rejection::UnknownProgram { field, program }));
            }
        }
        let ledger = self.ledger.clone();
        let name = request.name;
        let max_requests = request.max_requests;
        let issued = blocking(move || ledger.tokens().issue(role, &program, &name, expires_at, max_requests, now))
            .await?
            .map_err(token_error)?;
        Ok(Response::new(pb::IssueTokenResponse {
            token: issued.secret,
            token_id: issued.info.token_id,
            role: request.role,
            program_id: issued.info.program,
            expires_at: issued.info.expires_at.map(to_timestamp),
            max_requests: issued.info.max_requests,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Admin)?;
        let token_id = request.into_inner().token_id;
        let ledger = self.ledger.clone();
        let lookup = token_id.clone();
        let revoked = blocking(move || ledger.tokens().revoke(&lookup)).await?.map_err(token_error)?;
        if !revoked {
            return Err(status(AuthError::UnknownTokenId { token_id }));
        }
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    type BackupStream = super::backup::BackupStream;

    async fn backup(&self, request: Request<pb::BackupRequest>) -> Result<Response<Self::BackupStream>, Status> {
        self.backup_stream(&request)
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Admin)?;
        // Built field by field from the public info: the secret is stored nowhere and its
        // hash never leaves the store.
        let tokens = self
            .ledger
            .tokens()
            .list_with_quota()
            .into_iter()
            .map(|(info, quota)| pb::TokenSummary {
                token_id: info.token_id,
                name: info.name,
                role: match info.role {
                    Role::Admin => pb::Role::Admin,
                    Role::Operator => pb::Role::Operator,
                    Role::Viewer => pb::Role::Viewer,
                }
                .into(),
                program_id: info.program,
                expires_at: info.expires_at.map(to_timestamp),
                max_requests: info.max_requests,
                requests_left: quota.map(Quota::remaining),
                revoked: info.revoked,
            })
            .collect();
        Ok(Response::new(pb::ListTokensResponse { tokens }))
    }
}

/// Issuing and revoking fail only when the token store does (STORAGE_UNAVAILABLE).
fn token_error(error: TokenError) -> Status {
    status(AuthError::Token(error))
}
