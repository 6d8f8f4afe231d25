//! `chatus profile`: the account's display name. `--display-name NAME`
//! sets it, `--clear` removes it, neither shows it. It is always printed
//! beside the user name (`Alice Smith (@alice)`); `--json` prints
//! `{"user", "display_name"}` (`null` when none).

use chatus_client::protocol::Username;
use chatus_client::protocol::profile::DisplayName;
use clap::Args;
use serde_json::json;

use crate::CliError;
use crate::args::ClientArgs;
use crate::commands::say;
use crate::connect::{Ctx, Mode};
use crate::output;

/// `profile` options.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Set your display name, shown beside your user name (1 to 64
    /// characters, one line).
    #[arg(long, value_name = "NAME", conflicts_with = "clear")]
    pub display_name: Option<String>,
    /// Remove your display name.
    #[arg(long)]
    pub clear: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `profile`.
pub async fn profile(ctx: &Ctx, args: &ProfileArgs) -> Result<(), CliError> {
    // Checked before connecting, so a bad name costs no round trip.
    let wanted = args
        .display_name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()
        .map_err(|e| CliError::Usage(e.message))?;
    let change = args.clear || wanted.is_some();
    let (client, _, me) = ctx.connect(Mode::OneShot).await?;
    let now = if change {
        let result = client.set_display_name(wanted.clone()).await;
        client.quit().await;
        result?;
        wanted
    } else {
        client.quit().await;
        me.display_name
    };
    print(ctx, &me.user, now.as_ref(), change);
    Ok(())
}

fn print(ctx: &Ctx, user: &Username, name: Option<&DisplayName>, changed: bool) {
    if ctx.json {
        say(
            &json!({"user": user.as_str(), "display_name": name.map(DisplayName::as_str)})
                .to_string(),
        );
        return;
    }
    let shown = output::person(user, name);
    say(&match (name, changed) {
        (Some(_), true) => format!("You are now shown as {shown}."),
        (Some(_), false) => format!("You are shown as {shown}."),
        (None, true) => format!("{user} has no display name now."),
        (None, false) => format!("{user} has no display name; set one with --display-name."),
    });
}
