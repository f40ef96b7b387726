//! AdminService: programs and tokens.

use super::{Api, blocking};
use crate::auth::{self, Access};
use crate::mapping::{self, to_timestamp};
use crate::pb::{self, admin_service_server::AdminService};
use crate::status::{bad_request, from_ledger};
use ledger_core::{Outcome, Timestamp};
use ledger_store::tokens::{Role, TokenError};
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
            other => Err(Status::internal(format!("unexpected outcome {other:?}"))),
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
        let role = match pb::Role::try_from(request.role) {
            Ok(pb::Role::Admin) => Role::Admin,
            Ok(pb::Role::Operator) => Role::Operator,
            Ok(pb::Role::Viewer) => Role::Viewer,
            Ok(pb::Role::Unspecified) | Err(_) => {
                return Err(bad_request("role", "role: must be ADMIN, OPERATOR or VIEWER"));
            }
        };
        let program = if role == Role::Admin { String::new() } else { request.program_id.clone() };
        if role != Role::Admin {
            let exists = self.ledger.read(|state| state.program(&program).is_some()).await.map_err(from_ledger)?;
            if program.is_empty() {
                return Err(bad_request("program_id", "program_id: an OPERATOR or VIEWER token needs its program"));
            }
            if !exists {
                return Err(Status::not_found(format!("program_id: program {program:?} does not exist")));
            }
        }
        if request.name.len() > ledger_core::limits::NAME_BYTES_MAX {
            return Err(bad_request("name", "name: must be at most 255 bytes"));
        }
        if request.max_requests == Some(0) {
            return Err(bad_request("max_requests", "max_requests: must be at least 1 when given"));
        }
        let expires_at = mapping::timestamp("expires_at", request.expires_at)?;
        let now = Timestamp::from_chrono(chrono::Utc::now());
        if expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(bad_request("expires_at", "expires_at: must be in the future"));
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
            return Err(Status::not_found(format!("token_id: no token has id {token_id:?}")));
        }
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }
}

fn token_error(error: TokenError) -> Status {
    Status::unavailable(error.to_string())
}
