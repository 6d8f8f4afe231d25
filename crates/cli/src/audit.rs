//! `chatus audit ROOM`: a room's moderation events, newest first, for its
//! owner (the server's `audit_log`, paged until `--limit` entries).

use chatus_client::protocol::Seq;
use chatus_client::protocol::event::Change;
use clap::Args;

use crate::CliError;
use crate::args::ClientArgs;
use crate::commands::{parse_room, say};
use crate::connect::{Ctx, Mode};
use crate::output;

/// Most entries the server gives a page.
const PAGE: u32 = 100;

/// `audit` options.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The room (you must be its owner).
    #[arg(value_name = "ROOM")]
    pub room: String,
    /// Most entries to print, newest first.
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: u32,
    /// Only entries before this seq (to go on from an earlier listing).
    #[arg(long)]
    pub before: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Prints the audit log: one line per event (`[seq date time] <actor>
/// banned bob (spam)`), or with `--json` one object per event with the
/// fields of `tail --json`'s `moderated` lines.
pub async fn audit(ctx: &Ctx, args: &AuditArgs) -> Result<(), CliError> {
    let room = parse_room(&args.room)?;
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1.".into()));
    }
    let (client, _, _) = ctx.connect(Mode::OneShot).await?;
    let mut before = args.before.map(Seq);
    let mut left = args.limit;
    let mut printed = 0u32;
    let mut more = false;
    let result: Result<(), CliError> = async {
        while left > 0 {
            let page = client
                .audit_log(room.clone(), before, Some(left.min(PAGE)))
                .await?;
            more = page.more;
            for m in &page.entries {
                before = Some(m.seq);
                if ctx.json {
                    say(&output::change_json(&Change::Moderated(m.clone())).to_string());
                } else {
                    say(&format!(
                        "[{} {}] <{}> {}",
                        m.seq,
                        output::date_time(m.time),
                        m.actor,
                        output::moderation_text(&m.action)
                    ));
                }
            }
            let n = u32::try_from(page.entries.len()).unwrap_or(u32::MAX);
            printed = printed.saturating_add(n);
            left = left.saturating_sub(n);
            if !page.more || n == 0 {
                break;
            }
        }
        Ok(())
    }
    .await;
    client.quit().await;
    result?;
    if !ctx.json {
        if printed == 0 {
            say(&format!("No moderation events in #{room}."));
        } else if more && let Some(b) = before {
            say(&format!(
                "Older events remain: chatus audit {room} --before {b}"
            ));
        }
    }
    Ok(())
}
