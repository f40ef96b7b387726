//! TiersService: member cards (SPEC §8). Levels themselves are read with the
//! member (MembersService), pinned with SetMemberLevels.

use super::Api;
use crate::auth::{self, Access};
use crate::mapping;
use crate::pb::{self, tiers_service_server::TiersService};
use crate::status::from_ledger;
use ledger_core::{Command, Outcome};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl TiersService for Api {
    async fn create_member_card(
        &self,
        request: Request<pb::CreateMemberCardRequest>,
    ) -> Result<Response<pb::MemberCard>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::create_member_card(request.into_inner());
        self.card(Command::CreateMemberCard(command), &caller.token_id).await
    }

    async fn update_member_card(
        &self,
        request: Request<pb::UpdateMemberCardRequest>,
    ) -> Result<Response<pb::MemberCard>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::update_member_card(request.into_inner());
        self.card(Command::UpdateMemberCard(command), &caller.token_id).await
    }

    async fn delete_member_card(
        &self,
        request: Request<pb::DeleteMemberCardRequest>,
    ) -> Result<Response<pb::DeleteMemberCardResponse>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::delete_member_card(request.into_inner());
        self.ledger.delete_member_card(command, &caller.token_id).await.map_err(from_ledger)?;
        Ok(Response::new(pb::DeleteMemberCardResponse {}))
    }

    async fn list_member_cards(
        &self,
        request: Request<pb::ListMemberCardsRequest>,
    ) -> Result<Response<pb::ListMemberCardsResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let cards = self.ledger.member_cards(&request.get_ref().program_id).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListMemberCardsResponse { cards: cards.into_iter().map(mapping::card).collect() }))
    }
}

impl Api {
    async fn card(&self, command: Command, actor: &str) -> Result<Response<pb::MemberCard>, Status> {
        match self.ledger.execute(command, actor).await.map_err(from_ledger)? {
            Outcome::MemberCard(card) => Ok(Response::new(mapping::card(card))),
            other => unreachable!("a card change answers with the card, got {other:?}"),
        }
    }
}
