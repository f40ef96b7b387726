//! `ledger coupons grant|use|list`: a member's count of available coupons per
//! coupon id.

use super::connect::Server;
use super::output::{Failure, Reply, fields, table};
use super::time;
use crate::pb;
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum CouponsCommand {
    /// Grants coupons to a member, adding to the count.
    Grant {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(long, value_name = "ID")]
        member: String,
        #[arg(long, value_name = "ID")]
        coupon: String,
        /// The coupon's name, shown in lists.
        #[arg(long)]
        name: String,
        /// Coupons to add.
        #[arg(long, value_name = "N")]
        count: u32,
        /// Idempotency key, unique per program: a repeat is answered with the original result.
        #[arg(long, default_value = "", hide_default_value = true)]
        reference: String,
    },
    /// Uses one coupon; fails when none is left.
    Use {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(long, value_name = "ID")]
        member: String,
        #[arg(long, value_name = "ID")]
        coupon: String,
        #[arg(long, default_value = "", hide_default_value = true)]
        remark: String,
        /// Idempotency key, unique per program: a repeat is answered with the original result.
        #[arg(long, default_value = "", hide_default_value = true)]
        reference: String,
    },
    /// Lists a member's coupons.
    List {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(long, value_name = "ID")]
        member: String,
    },
}

pub async fn run(server: &Server, command: CouponsCommand) -> Result<Reply, Failure> {
    match command {
        CouponsCommand::Grant { program, member, coupon, name, count, reference } => {
            let request = pb::GrantCouponsRequest {
                program_id: program,
                member_id: member,
                coupon_id: coupon,
                name,
                count,
                reference,
            };
            let granted = server.coupons().grant_coupons(request).await?.into_inner();
            let text =
                fields(&[("transaction_id", granted.transaction_id.to_string()), ("count", granted.count.to_string())]);
            Ok(Reply::new(text, json!({ "transaction_id": granted.transaction_id, "count": granted.count })))
        }
        CouponsCommand::Use { program, member, coupon, remark, reference } => {
            let request =
                pb::UseCouponRequest { program_id: program, member_id: member, coupon_id: coupon, remark, reference };
            let used = server.coupons().use_coupon(request).await?.into_inner();
            let text = fields(&[
                ("transaction_id", used.transaction_id.to_string()),
                ("remaining", used.remaining.to_string()),
                ("used_at", time::show(used.used_at)),
            ]);
            let json = json!({
                "transaction_id": used.transaction_id,
                "remaining": used.remaining,
                "used_at": time::json(used.used_at),
            });
            Ok(Reply::new(text, json))
        }
        CouponsCommand::List { program, member } => {
            let request = pb::ListMemberCouponsRequest { program_id: program, member_id: member };
            let coupons = server.coupons().list_member_coupons(request).await?.into_inner().coupons;
            let rows: Vec<Vec<String>> = coupons
                .iter()
                .map(|coupon| vec![coupon.coupon_id.clone(), coupon.name.clone(), coupon.count.to_string()])
                .collect();
            let text = table(&["COUPON", "NAME", "COUNT"], &rows, "no coupons");
            let json = json!({
                "coupons": coupons.iter().map(|coupon| json!({
                    "coupon_id": coupon.coupon_id,
                    "name": coupon.name,
                    "count": coupon.count,
                })).collect::<Vec<_>>(),
            });
            Ok(Reply::new(text, json))
        }
    }
}
