//! HoldsService: points and credits held now, captured or voided later (SPEC §14).

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, holds_service_server::HoldsService};
use crate::status::from_ledger;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl HoldsService for Api {
    async fn hold_points(&self, request: Request<pb::HoldPointsRequest>) -> Result<Response<pb::Hold>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::hold_points(request.into_inner())?;
        let view = self.ledger.hold_points(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::hold(view)))
    }

    async fn hold_credits(&self, request: Request<pb::HoldCreditsRequest>) -> Result<Response<pb::Hold>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::hold_credits(request.into_inner())?;
        let view = self.ledger.hold_credits(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::hold(view)))
    }

    async fn capture_hold(&self, request: Request<pb::CaptureHoldRequest>) -> Result<Response<pb::Hold>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::capture_hold(request.into_inner())?;
        let view = self.ledger.capture_hold(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::hold(view)))
    }

    async fn void_hold(&self, request: Request<pb::VoidHoldRequest>) -> Result<Response<pb::Hold>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::void_hold(request.into_inner());
        let view = self.ledger.void_hold(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::hold(view)))
    }

    async fn get_hold(&self, request: Request<pb::GetHoldRequest>) -> Result<Response<pb::Hold>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let request = request.into_inner();
        mapping::read_id("hold_id", &request.hold_id)?;
        let view = self.ledger.hold(&request.program_id, &request.hold_id).await.map_err(from_ledger)?;
        Ok(Response::new(mapping::hold(view)))
    }

    async fn list_holds(
        &self,
        request: Request<pb::ListHoldsRequest>,
    ) -> Result<Response<pb::ListHoldsResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let query = mapping::holds_query(request.into_inner())?;
        let page = self.ledger.holds(query).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListHoldsResponse {
            holds: page.holds.into_iter().map(mapping::hold).collect(),
            next_page_token: mapping::holds_page_token(page.next_after),
        }))
    }
}
