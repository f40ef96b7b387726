//! `ledger card create|update|delete|list`: a program's member cards (tiers),
//! levels 1..5 ordered by their lowest qualifying amount.

use super::connect::Server;
use super::output::{Failure, Reply, fields, or_dash, table};
use crate::pb;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub enum CardCommand {
    /// Appends a card at the next level (at most 5).
    Create {
        #[arg(long, value_name = "ID")]
        program: String,
        /// Required, unique within the program.
        #[arg(long)]
        name: String,
        /// The qualifying amount from which a member holds this card: at least 0 on level 1,
        /// above the level below on the others.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        lowest_amount: i64,
        #[arg(long, default_value = "", hide_default_value = true)]
        benefit: String,
        #[arg(long, value_name = "URL", default_value = "", hide_default_value = true)]
        image_url: String,
    },
    /// Changes the fields given; the others stay as they are.
    Update {
        #[arg(long, value_name = "ID")]
        program: String,
        /// The card_id that create or list printed.
        #[arg(long, value_name = "ID")]
        card: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        benefit: Option<String>,
        /// Must stay above the level below and below the level above.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        lowest_amount: Option<i64>,
        #[arg(long, value_name = "URL")]
        image_url: Option<String>,
    },
    /// Deletes a card; level 1 cannot be deleted.
    ///
    /// The card's lowest amount passes to the card above, and every card above moves down a level.
    Delete {
        #[arg(long, value_name = "ID")]
        program: String,
        #[arg(long, value_name = "ID")]
        card: String,
    },
    /// Lists a program's cards by level.
    List {
        #[arg(long, value_name = "ID")]
        program: String,
    },
}

pub async fn run(server: &Server, command: CardCommand) -> Result<Reply, Failure> {
    match command {
        CardCommand::Create { program, name, lowest_amount, benefit, image_url } => {
            let request = pb::CreateMemberCardRequest { program_id: program, name, benefit, lowest_amount, image_url };
            let card = server.tiers().create_member_card(request).await?.into_inner();
            Ok(Reply::new(card_text(&card), card_json(&card)))
        }
        CardCommand::Update { program, card, name, benefit, lowest_amount, image_url } => {
            let request = pb::UpdateMemberCardRequest {
                program_id: program,
                card_id: card,
                name,
                benefit,
                lowest_amount,
                image_url,
            };
            let card = server.tiers().update_member_card(request).await?.into_inner();
            Ok(Reply::new(card_text(&card), card_json(&card)))
        }
        CardCommand::Delete { program, card } => {
            let request = pb::DeleteMemberCardRequest { program_id: program, card_id: card.clone() };
            server.tiers().delete_member_card(request).await?;
            Ok(Reply::new(format!("deleted card {card}"), json!({ "deleted": card })))
        }
        CardCommand::List { program } => {
            let cards = server.tiers().list_member_cards(pb::ListMemberCardsRequest { program_id: program }).await?;
            let cards = cards.into_inner().cards;
            let rows: Vec<Vec<String>> = cards
                .iter()
                .map(|card| {
                    vec![
                        card.level.to_string(),
                        card.card_id.clone(),
                        card.name.clone(),
                        card.lowest_amount.to_string(),
                        // Blank on the top card: it has no upper bound.
                        card.highest_amount.map(|highest| highest.to_string()).unwrap_or_default(),
                        or_dash(&card.benefit),
                    ]
                })
                .collect();
            let text = table(&["LEVEL", "CARD", "NAME", "LOWEST", "HIGHEST", "BENEFIT"], &rows, "no member cards");
            Ok(Reply::new(text, json!({ "cards": cards.iter().map(card_json).collect::<Vec<_>>() })))
        }
    }
}

fn card_text(card: &pb::MemberCard) -> String {
    fields(&[
        ("card_id", card.card_id.clone()),
        ("level", card.level.to_string()),
        ("name", card.name.clone()),
        ("lowest_amount", card.lowest_amount.to_string()),
        (
            "highest_amount",
            card.highest_amount.map_or_else(|| "- (the top card)".to_owned(), |highest| highest.to_string()),
        ),
        ("benefit", or_dash(&card.benefit)),
        ("image_url", or_dash(&card.image_url)),
    ])
}

fn card_json(card: &pb::MemberCard) -> Value {
    json!({
        "card_id": card.card_id,
        "name": card.name,
        "benefit": card.benefit,
        "lowest_amount": card.lowest_amount,
        "highest_amount": card.highest_amount,
        "level": card.level,
        "image_url": card.image_url,
    })
}
