//! `chatus admin …`: user administration against a data directory or a
//! PostgreSQL database.

use std::io::IsTerminal as _;

use chatus_client::protocol::Password;
use serde_json::json;

use crate::CliError;
use crate::args::{AdminCommand, AdminUserCommand};
use crate::commands::say;
use crate::connect::parse_user;

/// Runs an admin command.
pub async fn run(cmd: AdminCommand) -> Result<(), CliError> {
    match cmd {
        AdminCommand::User(AdminUserCommand::Add(a)) => {
            let json = a.data.json;
            let name = parse_user(&a.name)?;
            let password = if a.password_stdin || !std::io::stdin().is_terminal() {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| CliError::Local(format!("Cannot read standard input: {e}.")))?;
                line.trim_end_matches(['\n', '\r']).to_owned()
            } else {
                let pw =
                    rpassword::prompt_password(format!("Password for {name}: ")).map_err(|e| {
                        CliError::Local(format!(
                            "Cannot ask for a password ({e}); use --password-stdin."
                        ))
                    })?;
                let again = rpassword::prompt_password("Repeat it: ")
                    .map_err(|e| CliError::Local(format!("Cannot ask for a password: {e}.")))?;
                if pw != again {
                    return Err(CliError::Usage("The passwords differ.".into()));
                }
                pw
            };
            let password = Password::parse(password).map_err(|e| CliError::Usage(e.message))?;
            let row = chatus_server::admin::add_user(&a.data.location(), &name, &password, a.admin)
                .await?;
            if json {
                say(&json!({"user": row.name.as_str(), "admin": row.is_admin}).to_string());
            } else {
                say(&format!(
                    "Added user {}{}.",
                    row.name,
                    if row.is_admin { " (administrator)" } else { "" }
                ));
            }
            Ok(())
        }
        AdminCommand::User(AdminUserCommand::ResetPassword(a)) => {
            crate::account::reset_password(&a).await
        }
        AdminCommand::User(AdminUserCommand::List(d)) => {
            let json = d.json;
            for u in chatus_server::admin::list_users(&d.location()).await? {
                if json {
                    say(&json!({"user": u.name.as_str(), "admin": u.is_admin}).to_string());
                } else {
                    say(&format!(
                        "{}{}",
                        u.name,
                        if u.is_admin { " (administrator)" } else { "" }
                    ));
                }
            }
            Ok(())
        }
    }
}
