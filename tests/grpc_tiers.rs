//! TiersService and member levels over gRPC (SPEC §8, §10, §11): member cards in
//! level order, a member's tier from its qualifying amount, SetMemberLevels pins, who
//! may change cards, and what survives a restart. Every refusal changes nothing.

mod support;

use ledger_grpc::pb;
use support::{Clients, Server, assert_invalid_field, refused, started};
use tonic::Code;

const PROGRAM: &str = "cafe";
const OTHER: &str = "bakery";

fn card(name: &str, lowest_amount: i64) -> pb::CreateMemberCardRequest {
    pb::CreateMemberCardRequest {
        program_id: PROGRAM.into(),
        name: name.into(),
        benefit: format!("{name} perks"),
        lowest_amount,
        image_url: format!("https://img.example/{name}.png"),
    }
}

fn update(card_id: &str) -> pb::UpdateMemberCardRequest {
    pb::UpdateMemberCardRequest { program_id: PROGRAM.into(), card_id: card_id.into(), ..Default::default() }
}

fn raise(card_id: &str, lowest_amount: i64) -> pb::UpdateMemberCardRequest {
    pb::UpdateMemberCardRequest { lowest_amount: Some(lowest_amount), ..update(card_id) }
}

fn delete(card_id: &str) -> pb::DeleteMemberCardRequest {
    pb::DeleteMemberCardRequest { program_id: PROGRAM.into(), card_id: card_id.into() }
}

fn pin(levels: &[(&str, u32)]) -> pb::SetMemberLevelsRequest {
    pb::SetMemberLevelsRequest {
        program_id: PROGRAM.into(),
        levels: levels
            .iter()
            .map(|(member, level)| pb::MemberLevel { member_id: (*member).into(), level: *level })
            .collect(),
    }
}

fn list(program: &str) -> pb::ListMemberCardsRequest {
    pb::ListMemberCardsRequest { program_id: program.into() }
}

async fn create(client: &mut Clients, name: &str, lowest_amount: i64) -> pb::MemberCard {
    client.tiers.create_member_card(card(name, lowest_amount)).await.expect("create card").into_inner()
}

async fn cards(client: &mut Clients) -> Vec<pb::MemberCard> {
    client.tiers.list_member_cards(list(PROGRAM)).await.expect("list cards").into_inner().cards
}

/// The cards as (name, lowest_amount, highest_amount, level), in list order.
async fn ladder(client: &mut Clients) -> Vec<(String, i64, Option<i64>, u32)> {
    cards(client).await.into_iter().map(|c| (c.name, c.lowest_amount, c.highest_amount, c.level)).collect()
}

fn rungs(expected: &[(&str, i64, Option<i64>, u32)]) -> Vec<(String, i64, Option<i64>, u32)> {
    expected.iter().map(|(name, lowest, highest, level)| ((*name).to_owned(), *lowest, *highest, *level)).collect()
}

/// Each member's (level, level_name, level_pinned).
async fn tiers(client: &mut Clients, members: &[&str]) -> Vec<(u32, String, bool)> {
    let mut found = Vec::new();
    for member in members {
        let member = client.member(PROGRAM, member).await;
        found.push((member.level, member.level_name, member.level_pinned));
    }
    found
}

fn expect_tiers(expected: &[(u32, &str, bool)]) -> Vec<(u32, String, bool)> {
    expected.iter().map(|(level, name, pinned)| (*level, (*name).to_owned(), *pinned)).collect()
}

fn spend(member: &str, points: i64) -> pb::UsePointsRequest {
    pb::UsePointsRequest {
        program_id: PROGRAM.into(),
        member_id: member.into(),
        points,
        remark: "cookie".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_take_the_next_level_with_strictly_rising_lowest_amounts_and_at_most_five() {
    let (_server, mut client) = started("tiers-create", &[PROGRAM]).await;
    assert_eq!(cards(&mut client).await, []);
    let rejected = [
        ("name", card(" ", 0)),
        ("name", card(&"n".repeat(256), 0)),
        ("lowest_amount", card("Bronze", -1)),
        ("benefit", pb::CreateMemberCardRequest { benefit: "b".repeat(1_025), ..card("Bronze", 0) }),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.tiers.create_member_card(request).await, Code::InvalidArgument), field);
    }
    assert_eq!(cards(&mut client).await, []);

    let bronze = create(&mut client, "Bronze", 0).await;
    assert!(!bronze.card_id.is_empty(), "the ledger assigns the card id");
    let expected = pb::MemberCard {
        card_id: bronze.card_id.clone(),
        name: "Bronze".into(),
        benefit: "Bronze perks".into(),
        lowest_amount: 0,
        highest_amount: None,
        level: 1,
        image_url: "https://img.example/Bronze.png".into(),
    };
    assert_eq!(bronze, expected);

    for lowest in [0, -3] {
        let status = refused(client.tiers.create_member_card(card("Silver", lowest)).await, Code::InvalidArgument);
        assert_invalid_field(&status, "lowest_amount");
    }
    let silver = create(&mut client, "Silver", 100).await;
    assert_eq!((silver.level, silver.lowest_amount, silver.highest_amount), (2, 100, None));
    let status = refused(client.tiers.create_member_card(card("Silver", 200)).await, Code::AlreadyExists);
    assert!(status.message().contains("Silver"), "{status:?}");
    assert_invalid_field(
        &refused(client.tiers.create_member_card(card("Gold", 50)).await, Code::InvalidArgument),
        "lowest_amount",
    );
    let gold = create(&mut client, "Gold", 500).await;
    let platinum = create(&mut client, "Platinum", 1_000).await;
    let diamond = create(&mut client, "Diamond", 5_000).await;
    assert_eq!((gold.level, platinum.level, diamond.level), (3, 4, 5));
    let mut ids: Vec<&str> =
        [&bronze, &silver, &gold, &platinum, &diamond].iter().map(|c| c.card_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every card has its own id");

    let before = cards(&mut client).await;
    let status = refused(client.tiers.create_member_card(card("Ultra", 10_000)).await, Code::FailedPrecondition);
    assert!(status.message().contains('5'), "the message gives the limit: {status:?}");
    assert_eq!(cards(&mut client).await, before, "a sixth card is not made");
    let expected = rungs(&[
        ("Bronze", 0, Some(99), 1),
        ("Silver", 100, Some(499), 2),
        ("Gold", 500, Some(999), 3),
        ("Platinum", 1_000, Some(4_999), 4),
        ("Diamond", 5_000, None, 5),
    ]);
    assert_eq!(ladder(&mut client).await, expected);
    assert_eq!(before[0], pb::MemberCard { highest_amount: Some(99), ..bronze }, "the list shows what create answered");
    assert_eq!(before[4], diamond);

    // Cards are per program; level 1 may start above 0.
    client.create_program(OTHER).await;
    let elsewhere = pb::CreateMemberCardRequest { program_id: OTHER.into(), ..card("Bronze", 250) };
    let other = client.tiers.create_member_card(elsewhere).await.expect("same name, other program").into_inner();
    assert_eq!((other.level, other.lowest_amount, other.highest_amount), (1, 250, None));
    let listed = client.tiers.list_member_cards(list(OTHER)).await.expect("list").into_inner().cards;
    assert_eq!(listed, std::slice::from_ref(&other));

    // A card id names a card in its own program only.
    refused(client.tiers.update_member_card(raise(&other.card_id, 10)).await, Code::NotFound);
    refused(client.tiers.delete_member_card(delete(&other.card_id)).await, Code::NotFound);
    let nowhere = pb::CreateMemberCardRequest { program_id: "nowhere".into(), ..card("Bronze", 0) };
    refused(client.tiers.create_member_card(nowhere).await, Code::NotFound);
    refused(client.tiers.list_member_cards(list("nowhere")).await, Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_stays_between_its_neighbours_and_a_delete_moves_the_cards_above_down() {
    let (_server, mut client) = started("tiers-update-delete", &[PROGRAM]).await;
    let bronze = create(&mut client, "Bronze", 0).await;
    let silver = create(&mut client, "Silver", 100).await;
    let gold = create(&mut client, "Gold", 500).await;
    let platinum = create(&mut client, "Platinum", 1_000).await;

    let before = cards(&mut client).await;
    let rejected = [
        ("lowest_amount", raise(&silver.card_id, 0)),
        ("lowest_amount", raise(&silver.card_id, 500)),
        ("lowest_amount", raise(&silver.card_id, 800)),
        ("lowest_amount", raise(&bronze.card_id, 100)),
        ("lowest_amount", raise(&bronze.card_id, -1)),
        ("lowest_amount", raise(&platinum.card_id, 500)),
        ("name", pb::UpdateMemberCardRequest { name: Some(" ".into()), ..update(&silver.card_id) }),
        ("card_id", update("")),
    ];
    for (field, request) in rejected {
        assert_invalid_field(&refused(client.tiers.update_member_card(request).await, Code::InvalidArgument), field);
    }
    let taken = pb::UpdateMemberCardRequest { name: Some("Gold".into()), ..update(&silver.card_id) };
    let status = refused(client.tiers.update_member_card(taken).await, Code::AlreadyExists);
    assert!(status.message().contains("Gold"), "{status:?}");
    let status = refused(client.tiers.update_member_card(raise("nope", 200)).await, Code::NotFound);
    assert!(status.message().contains("nope"), "{status:?}");
    assert_eq!(cards(&mut client).await, before, "a refused update changes nothing");

    let updated = client.tiers.update_member_card(raise(&silver.card_id, 499)).await.expect("update").into_inner();
    assert_eq!(updated, pb::MemberCard { lowest_amount: 499, highest_amount: Some(499), ..silver.clone() });
    // Absent fields stay as they were; a card may keep its own name.
    let perks = pb::UpdateMemberCardRequest {
        name: Some("Silver".into()),
        benefit: Some("Free cake".into()),
        ..update(&silver.card_id)
    };
    let updated = client.tiers.update_member_card(perks).await.expect("update").into_inner();
    assert_eq!(
        updated,
        pb::MemberCard { benefit: "Free cake".into(), lowest_amount: 499, highest_amount: Some(499), ..silver.clone() }
    );
    let renamed = pb::UpdateMemberCardRequest { image_url: Some(String::new()), ..raise(&platinum.card_id, 1_000_000) };
    let updated = client.tiers.update_member_card(renamed).await.expect("update the top card").into_inner();
    assert_eq!(
        (updated.level, updated.lowest_amount, updated.highest_amount, updated.image_url.as_str()),
        (4, 1_000_000, None, "")
    );
    client.tiers.update_member_card(raise(&bronze.card_id, 10)).await.expect("level 1 may rise below level 2");
    let expected = rungs(&[
        ("Bronze", 10, Some(498), 1),
        ("Silver", 499, Some(499), 2),
        ("Gold", 500, Some(999_999), 3),
        ("Platinum", 1_000_000, None, 4),
    ]);
    assert_eq!(ladder(&mut client).await, expected);

    let before = cards(&mut client).await;
    let status = refused(client.tiers.delete_member_card(delete(&bronze.card_id)).await, Code::FailedPrecondition);
    assert!(status.message().contains("level 1"), "{status:?}");
    refused(client.tiers.delete_member_card(delete("nope")).await, Code::NotFound);
    assert_eq!(cards(&mut client).await, before, "a refused delete changes nothing");

    // Deleting level 2 gives its lowest_amount to Gold, which moves down a level, and
    // every card above with it.
    client.tiers.delete_member_card(delete(&silver.card_id)).await.expect("delete level 2");
    let expected =
        rungs(&[("Bronze", 10, Some(498), 1), ("Gold", 499, Some(999_999), 2), ("Platinum", 1_000_000, None, 3)]);
    assert_eq!(ladder(&mut client).await, expected);
    let listed = cards(&mut client).await;
    assert_eq!(
        listed[1],
        pb::MemberCard { lowest_amount: 499, highest_amount: Some(999_999), level: 2, ..gold.clone() }
    );
    refused(client.tiers.update_member_card(raise(&silver.card_id, 450)).await, Code::NotFound);
    refused(client.tiers.delete_member_card(delete(&silver.card_id)).await, Code::NotFound);

    // Deleting the top card leaves the one below on top, with no highest_amount.
    client.tiers.delete_member_card(delete(&platinum.card_id)).await.expect("delete the top card");
    assert_eq!(ladder(&mut client).await, rungs(&[("Bronze", 10, Some(498), 1), ("Gold", 499, None, 2)]));

    // New cards are appended with ids never used before; a deleted card's name is free.
    let ruby = create(&mut client, "Ruby", 600).await;
    let silver_again = create(&mut client, "Silver", 700).await;
    assert_eq!((ruby.level, silver_again.level), (3, 4));
    for old in [&bronze, &silver, &gold, &platinum] {
        assert_ne!(ruby.card_id, old.card_id);
        assert_ne!(silver_again.card_id, old.card_id);
    }
    let expected = rungs(&[
        ("Bronze", 10, Some(498), 1),
        ("Gold", 499, Some(599), 2),
        ("Ruby", 600, Some(699), 3),
        ("Silver", 700, None, 4),
    ]);
    assert_eq!(ladder(&mut client).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_level_follows_its_qualifying_amount_and_every_card_change() {
    let (_server, mut client) = started("tiers-levels", &[PROGRAM]).await;
    let members = ["alice", "bob", "carol", "dave"];
    for (member, points) in [("alice", 500), ("bob", 50), ("carol", 1_500), ("dave", 99)] {
        client.add(PROGRAM, member, points).await;
    }
    let none = (0, "", false);
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&[none; 4]), "no cards, no tiers");

    let bronze = create(&mut client, "Bronze", 100).await;
    let silver = create(&mut client, "Silver", 500).await;
    let gold = create(&mut client, "Gold", 1_000).await;
    let expected = [(2, "Silver", false), none, (3, "Gold", false), none];
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&expected), "cards apply to members at once");

    // Earning raises the qualifying amount; spending does not lower it.
    client.add(PROGRAM, "bob", 50).await;
    client.points.use_points(spend("bob", 80)).await.expect("use");
    let bob = client.member(PROGRAM, "bob").await;
    assert_eq!((bob.points, bob.qualifying_amount, bob.level, bob.level_name.as_str()), (20, 100, 1, "Bronze"));

    // Lowering a threshold raises members; raising one lowers them.
    client.tiers.update_member_card(raise(&bronze.card_id, 99)).await.expect("lower Bronze");
    client.tiers.update_member_card(raise(&silver.card_id, 501)).await.expect("raise Silver");
    let expected = [(1, "Bronze", false), (1, "Bronze", false), (3, "Gold", false), (1, "Bronze", false)];
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&expected));
    let renamed = pb::UpdateMemberCardRequest { name: Some("Copper".into()), ..update(&bronze.card_id) };
    client.tiers.update_member_card(renamed).await.expect("rename");
    assert_eq!(client.member(PROGRAM, "dave").await.level_name, "Copper", "the level name is the card's name now");

    // Deleting Silver hands its threshold (501) to Gold, now level 2.
    client.tiers.delete_member_card(delete(&silver.card_id)).await.expect("delete Silver");
    client.add(PROGRAM, "alice", 1).await;
    let expected = [(2, "Gold", false), (1, "Copper", false), (2, "Gold", false), (1, "Copper", false)];
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&expected));

    let platinum = create(&mut client, "Platinum", 1_200).await;
    assert_eq!(tiers(&mut client, &["carol"]).await, expect_tiers(&[(3, "Platinum", false)]));
    let request = pb::ListMembersRequest { program_id: PROGRAM.into(), ..Default::default() };
    let listed = client.members.list_members(request).await.expect("list members").into_inner();
    let levels: Vec<(String, u32)> = listed.members.into_iter().map(|m| (m.member_id, m.level)).collect();
    let expected: Vec<(String, u32)> = members.iter().map(|m| (*m).to_owned()).zip([2, 1, 3, 1]).collect();
    assert_eq!(levels, expected, "ListMembers shows the same levels");

    client.tiers.delete_member_card(delete(&platinum.card_id)).await.expect("delete the top card");
    assert_eq!(tiers(&mut client, &["carol"]).await, expect_tiers(&[(2, "Gold", false)]));
    client.tiers.update_member_card(raise(&gold.card_id, 1_501)).await.expect("raise Gold");
    assert_eq!(tiers(&mut client, &["carol"]).await, expect_tiers(&[(1, "Copper", false)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_member_levels_pins_until_unpinned_and_a_batch_naming_a_missing_level_changes_nothing() {
    let (_server, mut client) = started("tiers-pins", &[PROGRAM]).await;
    create(&mut client, "Bronze", 0).await;
    let silver = create(&mut client, "Silver", 100).await;
    create(&mut client, "Gold", 1_000).await;
    client.add(PROGRAM, "alice", 50).await;
    client.add(PROGRAM, "bob", 500).await;
    let members = ["alice", "bob"];
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&[(1, "Bronze", false), (2, "Silver", false)]));

    let set = client.members.set_member_levels(pin(&[("alice", 3)])).await.expect("pin").into_inner();
    assert_eq!(set.updated, 1);
    client.members.set_member_levels(pin(&[("bob", 1)])).await.expect("pin");
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&[(3, "Gold", true), (1, "Bronze", true)]));
    // A pinned level stays put when amounts change.
    client.add(PROGRAM, "bob", 1_000).await;
    client.tiers.update_member_card(raise(&silver.card_id, 60)).await.expect("lower Silver");
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&[(3, "Gold", true), (1, "Bronze", true)]));
    assert_eq!(client.member(PROGRAM, "bob").await.qualifying_amount, 1_500);

    // All or nothing: a level that does not exist refuses the batch, earlier items too.
    let before = (client.member(PROGRAM, "alice").await, client.member(PROGRAM, "bob").await);
    let status = refused(client.members.set_member_levels(pin(&[("alice", 2), ("bob", 4)])).await, Code::NotFound);
    assert!(status.message().contains("levels[1].level"), "the message names the item: {status:?}");
    assert_invalid_field(&refused(client.members.set_member_levels(pin(&[])).await, Code::InvalidArgument), "levels");
    assert_invalid_field(
        &refused(client.members.set_member_levels(pin(&[("alice", 2), ("", 1)])).await, Code::InvalidArgument),
        "levels[1].member_id",
    );
    let crowd: Vec<(String, u32)> = (0..1_001).map(|index| (format!("m{index:04}"), 1)).collect();
    let crowd: Vec<(&str, u32)> = crowd.iter().map(|(member, level)| (member.as_str(), *level)).collect();
    assert_invalid_field(
        &refused(client.members.set_member_levels(pin(&crowd)).await, Code::InvalidArgument),
        "levels",
    );
    let after = (client.member(PROGRAM, "alice").await, client.member(PROGRAM, "bob").await);
    assert_eq!(after, before, "a refused batch changes nothing");
    refused(
        client
            .members
            .get_member(pb::GetMemberRequest { program_id: PROGRAM.into(), member_id: "m0000".into(), as_of: None })
            .await,
        Code::NotFound,
    );

    // 0 unpins: the tier follows amounts again.
    let set = client.members.set_member_levels(pin(&[("alice", 0), ("bob", 0)])).await.expect("unpin").into_inner();
    assert_eq!(set.updated, 2);
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&[(1, "Bronze", false), (3, "Gold", false)]));
    client.members.set_member_levels(pin(&[("alice", 2), ("bob", 3)])).await.expect("pin");
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&[(2, "Silver", true), (3, "Gold", true)]));
    // Deleting Silver: Gold takes its place at level 2, and the pins go with the cards.
    client.tiers.delete_member_card(delete(&silver.card_id)).await.expect("delete Silver");
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&[(2, "Gold", true), (2, "Gold", true)]));

    let request = pb::ListActivitiesRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        kinds: vec!["TIERS".into()],
        page_size: 100,
        ..Default::default()
    };
    let listed = client.audit.list_activities(request.clone()).await.expect("list").into_inner();
    let rows: Vec<(String, String, String, String)> =
        listed.activities.into_iter().map(|a| (a.kind, a.amount, a.balance_after, a.remark)).collect();
    let row =
        |amount: &str, remark: &str| ("TIERS".to_owned(), amount.to_owned(), amount.to_owned(), remark.to_owned());
    assert_eq!(rows, [row("2", "level pinned at 2"), row("0", "level unpinned"), row("3", "level pinned at 3")]);
    let all = pb::ListActivitiesRequest { member_id: String::new(), ..request };
    let listed = client.audit.list_activities(all).await.expect("list").into_inner();
    assert_eq!(listed.activities.len(), 6, "one activity per level set, none for the refused batches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_member_levels_takes_at_most_1000_members_and_says_so() {
    let (_server, mut client) = started("tiers-levels-limit", &[PROGRAM]).await;
    create(&mut client, "Bronze", 0).await;
    let crowd: Vec<(String, u32)> = (0..1_001).map(|index| (format!("m{index:04}"), 1)).collect();
    let crowd: Vec<(&str, u32)> = crowd.iter().map(|(member, level)| (member.as_str(), *level)).collect();
    let status = refused(client.members.set_member_levels(pin(&crowd)).await, Code::InvalidArgument);
    assert_invalid_field(&status, "levels");
    assert!(status.message().contains("1000") && status.message().contains("1001"), "{status:?}");
    assert!(!status.message().contains("bytes"), "a count of members is not a size in bytes: {status:?}");
    let set = client.members.set_member_levels(pin(&crowd[..1_000])).await.expect("1,000 levels").into_inner();
    assert_eq!(set.updated, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_lists_cards_but_changes_none_and_a_token_of_another_program_is_denied() {
    let (server, mut admin) = started("tiers-roles", &[PROGRAM]).await;
    admin.create_program(OTHER).await;
    create(&mut admin, "Bronze", 0).await;
    let silver = create(&mut admin, "Silver", 100).await;
    admin.add(PROGRAM, "alice", 150).await;
    let mut viewer = server.clients(&admin.token(pb::Role::Viewer, PROGRAM).await).await;
    let mut stranger = server.clients(&admin.token(pb::Role::Operator, OTHER).await).await;
    let mut operator = server.clients(&admin.token(pb::Role::Operator, PROGRAM).await).await;
    let (cards_before, alice_before) = (cards(&mut admin).await, admin.member(PROGRAM, "alice").await);

    for (who, client) in [("viewer", &mut viewer), ("operator of bakery", &mut stranger)] {
        let calls = [
            ("CreateMemberCard", client.tiers.create_member_card(card("Gold", 1_000)).await.map(|_| ())),
            ("UpdateMemberCard", client.tiers.update_member_card(raise(&silver.card_id, 120)).await.map(|_| ())),
            ("DeleteMemberCard", client.tiers.delete_member_card(delete(&silver.card_id)).await.map(|_| ())),
            ("SetMemberLevels", client.members.set_member_levels(pin(&[("alice", 1)])).await.map(|_| ())),
        ];
        for (name, call) in calls {
            let status = call.expect_err("refused");
            assert_eq!(status.code(), Code::PermissionDenied, "{who} {name}: {status:?}");
        }
    }
    let status = refused(stranger.tiers.list_member_cards(list(PROGRAM)).await, Code::PermissionDenied);
    assert!(status.message().contains(PROGRAM), "{status:?}");
    assert_eq!(cards(&mut admin).await, cards_before, "refused calls change no card");
    assert_eq!(admin.member(PROGRAM, "alice").await, alice_before, "refused calls change no level");
    assert_eq!(cards(&mut viewer).await, cards_before, "a viewer lists the cards");
    assert_eq!((alice_before.level, alice_before.level_name.as_str()), (2, "Silver"));

    let gold = operator.tiers.create_member_card(card("Gold", 1_000)).await.expect("an operator creates a card");
    assert_eq!(gold.into_inner().level, 3);
    operator.members.set_member_levels(pin(&[("alice", 3)])).await.expect("an operator pins a level");
    let alice = viewer.member(PROGRAM, "alice").await;
    assert_eq!((alice.level, alice.level_name.as_str(), alice.level_pinned), (3, "Gold", true));
    let elsewhere = pb::CreateMemberCardRequest { program_id: OTHER.into(), ..card("Bronze", 0) };
    refused(operator.tiers.create_member_card(elsewhere).await, Code::PermissionDenied);
    assert_eq!(admin.tiers.list_member_cards(list(OTHER)).await.expect("list").into_inner().cards, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_coupons_cards_and_pinned_levels_survive_a_restart() {
    let (server, mut client) = started("tiers-restart", &[PROGRAM]).await;
    let credit = pb::DefineCreditRequest {
        program_id: PROGRAM.into(),
        credit_id: "gift-card".into(),
        name: "Gift card".into(),
        unit: "TWD".into(),
    };
    client.credits.define_credit(credit).await.expect("define");
    let top_up = |amount: &str, reference: &str| pb::AddCreditsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        credit_id: "gift-card".into(),
        amount: amount.into(),
        remark: "top-up".into(),
        reference: reference.into(),
    };
    let topped = client.credits.add_credits(top_up("12.5", "top-up-1")).await.expect("add").into_inner();
    let grant = pb::GrantCouponsRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        coupon_id: "coffee".into(),
        name: "Coffee".into(),
        count: 3,
        reference: String::new(),
    };
    client.coupons.grant_coupons(grant).await.expect("grant");
    let redeem = pb::UseCouponRequest {
        program_id: PROGRAM.into(),
        member_id: "alice".into(),
        coupon_id: "coffee".into(),
        remark: String::new(),
        reference: String::new(),
    };
    client.coupons.use_coupon(redeem.clone()).await.expect("use");

    let mut old_ids = Vec::new();
    for (name, lowest) in [("Bronze", 0), ("Silver", 100), ("Gold", 1_000), ("Platinum", 5_000)] {
        old_ids.push(create(&mut client, name, lowest).await.card_id);
    }
    for (member, points) in [("alice", 200), ("bob", 10), ("carol", 10)] {
        client.add(PROGRAM, member, points).await;
    }
    client.members.set_member_levels(pin(&[("bob", 4), ("carol", 2)])).await.expect("pin");
    // carol was pinned to Silver, which is deleted: Gold takes its place at level 2.
    client.tiers.delete_member_card(delete(&old_ids[1])).await.expect("delete Silver");
    let members = ["alice", "bob", "carol"];
    let expected = [(2, "Gold", false), (3, "Platinum", true), (2, "Gold", true)];
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&expected));
    let mut before = Vec::new();
    for member in members {
        before.push(client.member(PROGRAM, member).await);
    }
    let cards_before = cards(&mut client).await;
    assert_eq!(before[0].credits[0].amount, "12.5");
    assert_eq!(before[0].coupons, [pb::MemberCoupon { coupon_id: "coffee".into(), name: "Coffee".into(), count: 2 }]);

    let data_dir = server.data_dir.clone();
    drop(client);
    assert!(server.stop().success(), "a clean stop");
    // An auditor's replay of the stopped ledger rebuilds the same projections.
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_ledger"))
        .arg("replay")
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("run ledger replay");
    let report = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success() && report.contains("projections match the replay"), "{report}");
    let server = Server::start_in(data_dir, &[]);
    let mut client = server.admin().await;

    let mut after = Vec::new();
    for member in members {
        after.push(client.member(PROGRAM, member).await);
    }
    assert_eq!(after, before, "credits, coupons, amounts and pinned levels survive");
    assert_eq!(cards(&mut client).await, cards_before, "cards survive");
    let listed = pb::ListMemberCouponsRequest { program_id: PROGRAM.into(), member_id: "alice".into() };
    assert_eq!(client.coupons.list_member_coupons(listed).await.expect("list").into_inner().coupons, before[0].coupons);

    // And go on from where they were.
    let repeat = client.credits.add_credits(top_up("1", "top-up-1")).await.expect("repeat").into_inner();
    assert_eq!(repeat, pb::CreditsReceipt { duplicate: true, ..topped }, "references survive");
    let receipt = client.credits.add_credits(top_up("0.25", "top-up-2")).await.expect("add").into_inner();
    assert_eq!(receipt.balance, "12.75");
    assert_eq!(client.coupons.use_coupon(redeem).await.expect("use").into_inner().remaining, 1);
    let ruby = create(&mut client, "Ruby", 7_000).await;
    assert_eq!(ruby.level, 4);
    assert!(!old_ids.contains(&ruby.card_id), "a new card id is new after a restart: {ruby:?} {old_ids:?}");
    client.add(PROGRAM, "alice", 800).await;
    let expected = [(2, "Gold", false), (3, "Platinum", true), (2, "Gold", true)];
    assert_eq!(tiers(&mut client, &members).await, expect_tiers(&expected));
    client.members.set_member_levels(pin(&[("carol", 0)])).await.expect("unpin");
    assert_eq!(tiers(&mut client, &["carol"]).await, expect_tiers(&[(1, "Bronze", false)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_make_more_than_five_cards_or_two_of_a_name() {
    let (_server, client) = started("tiers-concurrent", &[PROGRAM]).await;
    let mut creates = Vec::new();
    for index in 0..10 {
        let mut tiers = client.tiers.clone();
        let request = card(&format!("Card {index}"), index * 100);
        creates.push(tokio::spawn(async move { tiers.create_member_card(request).await }));
    }
    for _ in 0..4 {
        let mut tiers = client.tiers.clone();
        creates.push(tokio::spawn(async move { tiers.create_member_card(card("Twin", 1_000_000)).await }));
    }
    let mut made = 0;
    for task in creates {
        match task.await.expect("task") {
            Ok(_) => made += 1,
            Err(status) => assert!(
                matches!(status.code(), Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists),
                "{status:?}"
            ),
        }
    }
    let mut client = client;
    let listed = cards(&mut client).await;
    assert_eq!(listed.len(), made, "every card made is listed");
    assert!((1..=5).contains(&made), "{listed:?}");
    assert!(listed.iter().filter(|card| card.name == "Twin").count() <= 1, "names stay unique: {listed:?}");
    for (index, card) in listed.iter().enumerate() {
        assert_eq!(card.level as usize, index + 1, "{listed:?}");
        let next = listed.get(index + 1);
        assert!(next.is_none_or(|next| next.lowest_amount > card.lowest_amount), "strictly rising: {listed:?}");
        assert_eq!(card.highest_amount, next.map(|next| next.lowest_amount - 1), "{listed:?}");
    }
}
