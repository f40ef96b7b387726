//! CouponsService: grant, use one, list a member's (SPEC §5).

use super::Api;
use crate::auth::{self, Access};
use crate::mapping::{self, to_timestamp};
use crate::pb::{self, coupons_service_server::CouponsService};
use crate::status::from_ledger;
use ledger_core::{Command, Outcome};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl CouponsService for Api {
    async fn grant_coupons(
        &self,
        request: Request<pb::GrantCouponsRequest>,
    ) -> Result<Response<pb::GrantCouponsResponse>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::grant_coupons(request.into_inner());
        match self.ledger.execute(Command::GrantCoupons(command), &caller.token_id).await.map_err(from_ledger)? {
            Outcome::CouponsGranted { transaction_id, count } => {
                Ok(Response::new(pb::GrantCouponsResponse { transaction_id, count }))
            }
            other => unreachable!("a grant answers with its count, got {other:?}"),
        }
    }

    async fn use_coupon(
        &self,
        request: Request<pb::UseCouponRequest>,
    ) -> Result<Response<pb::UseCouponResponse>, Status> {
        let caller = auth::check(&self.ledger, &request, Access::Write(&request.get_ref().program_id))?;
        let command = mapping::use_coupon(request.into_inner());
        match self.ledger.execute(Command::UseCoupon(command), &caller.token_id).await.map_err(from_ledger)? {
            Outcome::CouponUsed { transaction_id, remaining, used_at } => Ok(Response::new(pb::UseCouponResponse {
                transaction_id,
                remaining,
                used_at: Some(to_timestamp(used_at)),
            })),
            other => unreachable!("a coupon use answers with what remains, got {other:?}"),
        }
    }

    async fn list_member_coupons(
        &self,
        request: Request<pb::ListMemberCouponsRequest>,
    ) -> Result<Response<pb::ListMemberCouponsResponse>, Status> {
        auth::check(&self.ledger, &request, Access::Read(&request.get_ref().program_id))?;
        let r = request.into_inner();
        mapping::read_id("member_id", &r.member_id)?;
        let coupons = self.ledger.member_coupons(&r.program_id, &r.member_id).await.map_err(from_ledger)?;
        Ok(Response::new(pb::ListMemberCouponsResponse {
            coupons: coupons.into_iter().map(mapping::member_coupon).collect(),
        }))
    }
}
