//! CreditsService: credit types and stored-value wallets (SPEC §4).

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, credits_service_server::CreditsService};
use crate::status::from_ledger;
use ledger_core::{Command, Outcome};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl CreditsService for Api {
    async fn define_credit(&self, request: Request<pb::DefineCreditRequest>) -> Result<Response<pb::Credit>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::define_credit(request.into_inner());
        let credit = pb::Credit {
            program_id: command.program.clone(),
            credit_id: command.credit_id.clone(),
            name: command.name.clone(),
            unit: command.unit.clone(),
        };
        self.ledger.define_credit(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(credit))
    }

    async fn add_credits(
        &self,
        request: Request<pb::AddCreditsRequest>,
    ) -> Result<Response<pb::CreditsReceipt>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let r = request.into_inner();
        let command =
            mapping::credits_change(r.program_id, r.member_id, r.credit_id, &r.amount, r.remark, r.reference)?;
        self.change(Command::AddCredits(command), &caller.token_id).await
    }

    async fn use_credits(
        &self,
        request: Request<pb::UseCreditsRequest>,
    ) -> Result<Response<pb::CreditsReceipt>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let r = request.into_inner();
        let command =
            mapping::credits_change(r.program_id, r.member_id, r.credit_id, &r.amount, r.remark, r.reference)?;
        self.change(Command::UseCredits(command), &caller.token_id).await
    }
}

impl Api {
    async fn change(&self, command: Command, actor: &str) -> Result<Response<pb::CreditsReceipt>, Status> {
        match self.ledger.execute(command, actor).await.map_err(from_ledger)? {
            Outcome::Credits(receipt) => Ok(Response::new(mapping::credits_receipt(receipt))),
            other => unreachable!("a credits change answers with a receipt, got {other:?}"),
        }
    }
}
