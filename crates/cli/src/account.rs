//! Account recovery commands: `chatus passwd`, `chatus logout
//! [--everywhere]` and `chatus admin user reset-password`.
//!
//! `passwd` changes the password on the server, which logs out every other
//! session of the user; this session (and its saved token) stays. Without a
//! saved token (or with one the server refused) it logs in with the current
//! password first and saves the token it got.

use std::io::IsTerminal as _;

use chatus_client::protocol::{Password, Username};
use chatus_client::{Client, Config, Credentials, Reconnect, Resume, ServerUrl};

use crate::args::{ClientArgs, DataArg};
use crate::connect::{Ctx, Mode, parse_user};
use clap::Args;
use serde_json::json;

use crate::CliError;
use crate::commands::{prompt_password, read_line_stdin, say};

/// `logout` options.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Log out every session of the account (every device), not only this
    /// one.
    #[arg(long)]
    pub everywhere: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `passwd` options.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the current and the new password from standard input, one per
    /// line, instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `admin user reset-password` options.
#[derive(Debug, Args)]
pub struct ResetPasswordArgs {
    /// The user.
    pub name: String,
    /// Read the new password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub data: DataArg,
}

fn password(s: String) -> Result<Password, CliError> {
    Password::parse(s).map_err(|e| CliError::Usage(e.message))
}

/// The current and the new password, from standard input or asked for
/// without echo (the new one twice).
fn read_passwords(args: &PasswdArgs) -> Result<(Password, Password), CliError> {
    if args.password_stdin {
        let current = read_line_stdin()?;
        let new = read_line_stdin()?;
        return Ok((password(current)?, password(new)?));
    }
    let current = prompt_password("Current password: ")?;
    let new = prompt_password("New password: ")?;
    if prompt_password("Repeat the new password: ")? != new {
        return Err(CliError::Usage("The new passwords differ.".into()));
    }
    Ok((password(current)?, password(new)?))
}

/// A client logged in with the saved token, or else (none saved, or the
/// server refused it) with `current`; the token to save when it is new.
async fn connect(
    ctx: &Ctx,
    server: &ServerUrl,
    current: &Password,
) -> Result<(Client, Username, Option<chatus_client::protocol::Token>), CliError> {
    match ctx.connect(Mode::OneShot).await {
        Ok((client, _, connected)) => return Ok((client, connected.user, None)),
        Err(CliError::NotLoggedIn(_)) => {}
        Err(e) => return Err(e),
    }
    let Some(username) = ctx.named_user()? else {
        return Err(CliError::NotLoggedIn(format!(
            "Nobody is logged in on {server}; say which account with --user NAME."
        )));
    };
    let mut config = Config::new(
        server.clone(),
        Credentials::Login {
            username,
            password: current.clone(),
        },
    );
    config.trust = ctx.trust(server).await?;
    config.resume = Resume::Off;
    config.presence = false;
    config.reconnect = Reconnect::never();
    let (client, _, connected) = Client::connect(config).await?;
    Ok((client, connected.user, connected.token))
}

/// `passwd`.
pub async fn passwd(ctx: &Ctx, args: &PasswdArgs) -> Result<(), CliError> {
    let server = ctx.server()?;
    let (current, new) = read_passwords(args)?;
    let (client, user, token) = connect(ctx, &server, &current).await?;
    let result = client.change_password(current, new).await;
    client.quit().await;
    if let Some(token) = &token {
        // This session survives the change: keep it for later commands.
        ctx.sessions.remember(&server, &user, token)?;
    }
    // A wrong current password is `bad_credentials`: exit status 4.
    result?;
    if ctx.json {
        say(&json!({
            "user": user.as_str(),
            "server": server.to_string(),
            "password_changed": true,
        })
        .to_string());
    } else {
        say(&format!(
            "Changed the password of {user} on {server}; every other session was logged out."
        ));
    }
    Ok(())
}

/// `logout`, and `logout --everywhere`.
pub async fn logout(ctx: &Ctx, args: &LogoutArgs) -> Result<(), CliError> {
    if !args.everywhere {
        return crate::commands::logout(ctx).await;
    }
    let server = ctx.server()?;
    let (client, _, connected) = ctx.connect(Mode::OneShot).await?;
    let user = connected.user;
    let result = client.logout_everywhere().await;
    client.quit().await;
    result?;
    ctx.sessions.forget(&server, &user)?;
    if ctx.json {
        say(&json!({
            "user": user.as_str(),
            "server": server.to_string(),
            "logged_out": true,
            "everywhere": true,
        })
        .to_string());
    } else {
        say(&format!("Logged out every session of {user} on {server}."));
    }
    Ok(())
}

/// `admin user reset-password`.
pub async fn reset_password(args: &ResetPasswordArgs) -> Result<(), CliError> {
    let json = args.data.json;
    let name = parse_user(&args.name)?;
    let pw = if args.password_stdin || !std::io::stdin().is_terminal() {
        read_line_stdin()?
    } else {
        let pw = prompt_password(&format!("New password for {name}: "))?;
        if prompt_password("Repeat it: ")? != pw {
            return Err(CliError::Usage("The passwords differ.".into()));
        }
        pw
    };
    let row =
        chatus_server::admin::reset_password(&args.data.location(), &name, &password(pw)?).await?;
    if json {
        say(&json!({"user": row.name.as_str(), "password_reset": true}).to_string());
    } else {
        say(&format!(
            "Set a new password for {}; all their sessions were logged out.",
            row.name
        ));
    }
    Ok(())
}
