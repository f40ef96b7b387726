//! MembersService: one member (now or as of a time), a page of members, the lots
//! that expire soon, manual levels.

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, members_service_server::MembersService};
use crate::status::{from_ledger, from_rejection};
use ledger_core::{Command, Outcome};
use tonic::{Request, Response, Status};

/// ListMembers pages (SPEC §10); the limits live with the others in `ledger_core::limits`.
pub use ledger_core::limits::{
    MEMBERS_PAGE_SIZE_DEFAULT as MEMBERS_PAGE_DEFAULT, MEMBERS_PAGE_SIZE_MAX as MEMBERS_PAGE_MAX,
};

#[tonic::async_trait]
impl MembersService for Api {
    async fn get_member(&self, request: Request<pb::GetMemberRequest>) -> Result<Response<pb::Member>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let request = request.into_inner();
        mapping::read_id("member_id", &request.member_id)?;
        let as_of = mapping::timestamp("as_of", request.as_of).map_err(from_rejection)?;
        let view = match as_of {
            Some(at) => self.ledger.member_as_of(&request.program_id, &request.member_id, at).await,
            None => self.ledger.member(&request.program_id, &request.member_id).await,
        };
        let view = view.map_err(from_ledger)?;
        Ok(Response::new(mapping::member(view)))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let request = request.into_inner();
        let page = mapping::members_page(&request)?;
        let listed = self.ledger.members(&request.program_id, page).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListMembersResponse {
            members: listed.members.into_iter().map(mapping::member).collect(),
            next_page_token: listed.next_after.map(|after| mapping::encode_member_token(&after)).unwrap_or_default(),
            total_size: listed.total,
        }))
    }

    async fn list_expiring_points(
        &self,
        request: Request<pb::ListExpiringPointsRequest>,
    ) -> Result<Response<pb::ListExpiringPointsResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let query = mapping::expiring_query(request.get_ref())?;
        let page = self.ledger.expiring_points(query).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListExpiringPointsResponse {
            lots: page.lots.into_iter().map(mapping::expiring_lot).collect(),
            next_page_token: page.next_after.as_ref().map(mapping::encode_expiring_token).unwrap_or_default(),
        }))
    }

    async fn set_member_levels(
        &self,
        request: Request<pb::SetMemberLevelsRequest>,
    ) -> Result<Response<pb::SetMemberLevelsResponse>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::set_member_levels(request.into_inner());
        match self.ledger.execute(Command::SetMemberLevels(command), &caller.token_id).await.map_err(from_ledger)? {
            Outcome::LevelsSet { updated } => Ok(Response::new(pb::SetMemberLevelsResponse { updated })),
            other => unreachable!("SetMemberLevels answers with a count, got {other:?}"),
        }
    }
}
