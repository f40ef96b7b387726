//! TransactionsService: undo one transaction by its id (SPEC §15).

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, transactions_service_server::TransactionsService};
use crate::status::from_ledger;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl TransactionsService for Api {
    async fn reverse_transaction(
        &self,
        request: Request<pb::ReverseTransactionRequest>,
    ) -> Result<Response<pb::Reversal>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::reverse_transaction(request.into_inner());
        let reversal = self.ledger.reverse_transaction(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::reversal(reversal)))
    }
}
