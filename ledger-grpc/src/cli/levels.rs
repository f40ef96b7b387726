//! `ledger member levels`: manual tiers (Cardbo `user_level`, Loga `level`),
//! pinned until set back to 0. The batch is all-or-nothing on the server, so
//! the pairs are all read and checked first and every bad one reported, before
//! anything is sent.

use super::connect::Server;
use super::output::{Failure, Reply, fields};
use crate::pb;
use clap::Args;
use serde_json::json;
use std::path::Path;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  ledger member levels --program shop1 alice=2 bob=0\n  \
                        ledger member levels --program shop1 levels.txt   (lines of MEMBER=LEVEL; # comments)")]
pub struct LevelsArgs {
    #[arg(long, value_name = "ID")]
    pub program: String,
    /// MEMBER=LEVEL pairs (level 0 unpins: the tier follows amounts again); an argument
    /// without `=` is a file of such pairs, separated by spaces or lines, `#` starting a comment.
    #[arg(value_name = "FILE_OR_PAIRS", required = true)]
    pub entries: Vec<String>,
}

/// Reads every pair from the arguments and files named; all problems at once.
pub fn prepare(args: LevelsArgs) -> Result<pb::SetMemberLevelsRequest, Failure> {
    let mut levels = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in args.entries.iter().enumerate() {
        if entry.contains('=') {
            push_pair(&format!("argument {}", index + 1), entry, &mut levels, &mut problems);
            continue;
        }
        let text = std::fs::read_to_string(entry)
            .map_err(|error| Failure::message(format!("{entry}: {error} (a pair is MEMBER=LEVEL)")))?;
        from_text(Path::new(entry), &text, &mut levels, &mut problems);
    }
    if !problems.is_empty() {
        let plural = if problems.len() == 1 { "" } else { "s" };
        let mut text = format!("{} problem{plural}; nothing was sent", problems.len());
        for problem in &problems {
            text.push_str(&format!("\n  {problem}"));
        }
        return Err(Failure::Message(text));
    }
    Ok(pb::SetMemberLevelsRequest { program_id: args.program, levels })
}

pub async fn run(server: &Server, request: pb::SetMemberLevelsRequest) -> Result<Reply, Failure> {
    let sent = request.levels.len();
    let reply = server.members().set_member_levels(request).await?.into_inner();
    let text = fields(&[("members", sent.to_string()), ("updated", reply.updated.to_string())]);
    Ok(Reply::new(text, json!({ "members": sent, "updated": reply.updated })))
}

fn from_text(path: &Path, text: &str, levels: &mut Vec<pb::MemberLevel>, problems: &mut Vec<String>) {
    for (index, line) in text.lines().enumerate() {
        let line = line.split_once('#').map_or(line, |(before, _)| before);
        for pair in line.split_whitespace() {
            push_pair(&format!("{} line {}", path.display(), index + 1), pair, levels, problems);
        }
    }
}

/// The last `=` parts the pair, so that a member id may hold one.
fn push_pair(place: &str, pair: &str, levels: &mut Vec<pb::MemberLevel>, problems: &mut Vec<String>) {
    let Some((member_id, level)) = pair.rsplit_once('=') else {
        problems.push(format!("{place}: {pair:?} is not MEMBER=LEVEL"));
        return;
    };
    if member_id.is_empty() {
        problems.push(format!("{place}: {pair:?} names no member"));
        return;
    }
    match level.parse::<u32>() {
        Ok(level) => levels.push(pb::MemberLevel { member_id: member_id.to_owned(), level }),
        Err(_) => problems.push(format!("{place}: {pair:?}: the level must be a whole number, 0 to unpin")),
    }
}

#[cfg(test)]
mod tests {
    use super::{from_text, push_pair};
    use std::path::Path;

    #[test]
    fn pairs_come_from_lines_and_spaces_and_every_bad_one_is_named() {
        let (mut levels, mut problems) = (Vec::new(), Vec::new());
        push_pair("argument 1", "a=b=3", &mut levels, &mut problems);
        from_text(Path::new("l.txt"), "alice=2 bob=0  # vip\n\n# all\ncarol=x =1 dave\n", &mut levels, &mut problems);
        let read: Vec<(String, u32)> = levels.into_iter().map(|level| (level.member_id, level.level)).collect();
        assert_eq!(read, [("a=b".to_owned(), 3), ("alice".to_owned(), 2), ("bob".to_owned(), 0)]);
        assert_eq!(
            problems,
            [
                "l.txt line 4: \"carol=x\": the level must be a whole number, 0 to unpin",
                "l.txt line 4: \"=1\" names no member",
                "l.txt line 4: \"dave\" is not MEMBER=LEVEL",
            ]
        );
    }
}
