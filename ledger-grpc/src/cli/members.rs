//! `ledger member show|list|levels`: members as the projections hold them, and
//! their manual tiers.

use super::connect::Server;
use super::levels;
use super::output::{Failure, Reply, fields, or_dash, table};
use super::time;
use crate::pb;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Shows one member: points, lots, tier, credits, coupons.
    Show {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(value_name = "MEMBER")]
        member_id: String,
        /// The member as it stood at this time (RFC 3339 or Unix seconds): every event
        /// recorded at or before it.
        #[arg(long, value_name = "TIME", value_parser = time::parse_proto)]
        as_of: Option<prost_types::Timestamp>,
    },
    /// Lists a program's members, a page at a time.
    List {
        #[arg(long, value_name = "ID")]
        program: String,
        /// Default 10, at most 100.
        #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
        page_size: u32,
        /// The next_page_token of the previous page.
        #[arg(long, value_name = "TOKEN", default_value = "", hide_default_value = true)]
        page_token: String,
        /// Members to skip; used only without --page-token.
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: u32,
    },
    /// Pins members' tier levels (0 unpins); all or nothing if any level does not exist.
    Levels(levels::LevelsArgs),
}

pub async fn run(server: &Server, command: MemberCommand) -> Result<Reply, Failure> {
    match command {
        MemberCommand::Show { program, member_id, as_of } => {
            let request = pb::GetMemberRequest { program_id: program, member_id, as_of };
            let member = server.members().get_member(request).await?.into_inner();
            Ok(Reply::new(member_text(&member), member_json(&member)))
        }
        MemberCommand::List { program, page_size, page_token, offset } => {
            let request = pb::ListMembersRequest { program_id: program, page_size, page_token, offset };
            let page = server.members().list_members(request).await?.into_inner();
            let rows: Vec<Vec<String>> = page
                .members
                .iter()
                .map(|member| {
                    vec![
                        member.member_id.clone(),
                        member.points.to_string(),
                        member.qualifying_amount.to_string(),
                        member.level.to_string(),
                        time::show(member.last_activity_at),
                    ]
                })
                .collect();
            let mut text = table(&["MEMBER", "POINTS", "QUALIFYING", "LEVEL", "LAST_ACTIVITY_AT"], &rows, "no members");
            text.push_str(&fields(&[
                ("total_size", page.total_size.to_string()),
                ("next_page_token", or_dash(&page.next_page_token)),
            ]));
            let json = json!({
                "members": page.members.iter().map(member_json).collect::<Vec<_>>(),
                "next_page_token": page.next_page_token,
                "total_size": page.total_size,
            });
            Ok(Reply::new(text, json))
        }
        // `dispatch` reads the pairs before connecting; this is the same, later.
        MemberCommand::Levels(args) => levels::run(server, levels::prepare(args)?).await,
    }
}

fn member_text(member: &pb::Member) -> String {
    let level = match (member.level, member.level_pinned) {
        (0, _) => "0 (no tier)".to_owned(),
        (level, false) => format!("{level} {}", member.level_name),
        (level, true) => format!("{level} {} (pinned)", member.level_name),
    };
    let mut text = fields(&[
        ("program_id", member.program_id.clone()),
        ("member_id", member.member_id.clone()),
        ("points", member.points.to_string()),
        ("qualifying_amount", member.qualifying_amount.to_string()),
        ("level", level),
        ("first_seen_at", time::show(member.first_seen_at)),
        ("last_activity_at", time::show(member.last_activity_at)),
    ]);
    let lots: Vec<Vec<String>> =
        member.lots.iter().map(|lot| vec![lot.points.to_string(), time::show(lot.expires_at)]).collect();
    text.push_str("lots:\n");
    text.push_str(&indent(&table(&["POINTS", "EXPIRES_AT"], &lots, "none")));
    // Credits and coupons print even when empty, so that the layout does not depend on the member.
    let credits: Vec<Vec<String>> = member
        .credits
        .iter()
        .map(|credit| vec![credit.credit_id.clone(), credit.name.clone(), credit.amount.clone(), credit.unit.clone()])
        .collect();
    text.push_str("credits:\n");
    text.push_str(&indent(&table(&["CREDIT", "NAME", "AMOUNT", "UNIT"], &credits, "none")));
    let coupons: Vec<Vec<String>> = member
        .coupons
        .iter()
        .map(|coupon| vec![coupon.coupon_id.clone(), coupon.name.clone(), coupon.count.to_string()])
        .collect();
    text.push_str("coupons:\n");
    text.push_str(&indent(&table(&["COUPON", "NAME", "COUNT"], &coupons, "none")));
    text
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

fn member_json(member: &pb::Member) -> Value {
    json!({
        "program_id": member.program_id,
        "member_id": member.member_id,
        "points": member.points,
        "lots": member.lots.iter().map(|lot| json!({
            "points": lot.points,
            "expires_at": time::json(lot.expires_at),
        })).collect::<Vec<_>>(),
        "qualifying_amount": member.qualifying_amount,
        "level": member.level,
        "level_name": member.level_name,
        "level_pinned": member.level_pinned,
        "credits": member.credits.iter().map(|credit| json!({
            "credit_id": credit.credit_id,
            "name": credit.name,
            "unit": credit.unit,
            "amount": credit.amount,
        })).collect::<Vec<_>>(),
        "coupons": member.coupons.iter().map(|coupon| json!({
            "coupon_id": coupon.coupon_id,
            "name": coupon.name,
            "count": coupon.count,
        })).collect::<Vec<_>>(),
        "first_seen_at": time::json(member.first_seen_at),
        "last_activity_at": time::json(member.last_activity_at),
    })
}
