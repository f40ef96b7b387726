//! Member cards between proto and domain.

use super::signed;
use crate::pb;
use ledger_core::tiers::CardView;

pub fn card(view: CardView) -> pb::MemberCard {
    pb::MemberCard {
        card_id: view.card.card_id,
        name: view.card.name,
        benefit: view.card.benefit,
        lowest_amount: signed(view.card.lowest_amount),
        highest_amount: view.highest_amount.map(signed),
        level: view.level,
        image_url: view.card.image_url,
    }
}
