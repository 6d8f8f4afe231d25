//! `chatus admin …`: user and file administration against a data
//! directory or a PostgreSQL database: adding and listing users, password
//! resets, server-wide bans, a user's sessions, files, removing a room.

use std::io::IsTerminal as _;

use chatus_client::protocol::{FileId, Password};
use chatus_server::admin::FileRemoval;
use chatus_server::store::{Removal, SharedIn, UserFileRow};
use serde_json::json;

use crate::CliError;
use crate::args::{
    AdminCommand, AdminFilesArgs, AdminFilesCommand, AdminRoomCommand, AdminUserCommand,
};
use crate::commands::say;
use crate::connect::parse_user;
use crate::output::{date_time, human_size};

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
        AdminCommand::User(AdminUserCommand::Ban(a)) => ban(a, true).await,
        AdminCommand::User(AdminUserCommand::Unban(a)) => ban(a, false).await,
        AdminCommand::User(AdminUserCommand::Sessions(a)) => {
            let name = parse_user(&a.name)?;
            let (sessions, banned) =
                chatus_server::admin::user_sessions(&a.data.location(), &name).await?;
            if a.data.json {
                for s in &sessions {
                    say(&json!({
                        "user": name.as_str(),
                        "session": s.id,
                        "created": crate::output::rfc3339(s.created),
                        "expires": crate::output::rfc3339(s.expires),
                    })
                    .to_string());
                }
            } else {
                if banned {
                    say(&format!("{name} is banned from the server."));
                }
                if sessions.is_empty() {
                    say(&format!("{name} has no sessions."));
                }
                for s in &sessions {
                    say(&format!(
                        "{}  created {}  expires {}",
                        s.id,
                        date_time(s.created),
                        date_time(s.expires)
                    ));
                }
            }
            Ok(())
        }
        AdminCommand::Files(a) => files(a).await,
        AdminCommand::Room(AdminRoomCommand::Rm(a)) => remove_room(a).await,
    }
}

/// `admin room rm`.
async fn remove_room(a: crate::args::AdminRoomRmArgs) -> Result<(), CliError> {
    let room = crate::commands::parse_room(&a.room)?;
    let reason = a
        .reason
        .map(chatus_client::protocol::moderation::Reason::parse)
        .transpose()
        .map_err(|e| CliError::Usage(e.message))?;
    let r =
        chatus_server::admin::remove_room(&a.data.location(), &a.data.data, &room, reason).await?;
    let files: Vec<&str> = r.files.iter().map(|f| f.id.as_str()).collect();
    if a.data.json {
        say(&json!({
            "room": r.room.as_str(),
            "removed": true,
            "reason": r.reason.as_ref().map(|x| x.as_str()),
            "messages": r.messages,
            "members": r.members,
            "last_seq": r.last_seq.0,
            "files_removed": files,
        })
        .to_string());
    } else {
        let plural = |n: u64, one: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {one}s")
            }
        };
        say(&format!(
            "Removed room {} with {} and {}, and {} shared only there. \
             A running server tells its members within about a second.",
            r.room,
            plural(r.messages, "message"),
            plural(r.members, "member"),
            plural(files.len() as u64, "file"),
        ));
    }
    Ok(())
}

/// `admin user ban` (`banned`) and `admin user unban`.
async fn ban(a: crate::args::AdminNameArgs, banned: bool) -> Result<(), CliError> {
    let name = parse_user(&a.name)?;
    let changed = chatus_server::admin::ban_user(&a.data.location(), &name, banned).await?;
    let what = match (banned, changed) {
        (true, true) => "Banned {name} from the server; their sessions are logged out.",
        (true, false) => "{name} was banned already.",
        (false, true) => "Lifted the ban on {name}.",
        (false, false) => "{name} was not banned.",
    };
    let text = what.replace("{name}", name.as_str());
    if a.data.json {
        say(&json!({"user": name.as_str(), "banned": banned, "changed": changed}).to_string());
    } else {
        say(&text);
    }
    Ok(())
}

async fn files(a: AdminFilesArgs) -> Result<(), CliError> {
    let data = crate::args::DataArg::from(a.data);
    if let Some(AdminFilesCommand::Rm(rm)) = a.command {
        if a.user.is_some() {
            return Err(CliError::Usage(
                "`admin files rm` takes file ids, not --user.".into(),
            ));
        }
        let ids = rm
            .ids
            .iter()
            .map(|id| FileId::parse(id.as_str()).map_err(|e| CliError::Usage(e.message)))
            .collect::<Result<Vec<_>, _>>()?;
        let done = chatus_server::admin::remove_files(&data.location(), &data.data, &ids).await?;
        let missing = done.iter().filter(|r| r.outcome.is_none()).count();
        for r in &done {
            say(&removal_line(r, data.json || rm.json));
        }
        if missing > 0 {
            return Err(CliError::Local(format!(
                "{missing} of the files did not exist."
            )));
        }
        return Ok(());
    }
    let json = data.json;
    if let Some(user) = &a.user {
        let name = parse_user(user)?;
        for f in chatus_server::admin::user_files(&data.location(), &name).await? {
            say(&file_line(&f, json));
        }
        return Ok(());
    }
    for u in chatus_server::admin::file_usage(&data.location()).await? {
        if json {
            say(&json!({
                "user": u.user.as_str(), "files": u.files, "bytes": u.bytes, "unshared": u.unshared,
            })
            .to_string());
        } else {
            say(&format!(
                "{}: {} file{}, {}, {} unshared",
                u.user,
                u.files,
                if u.files == 1 { "" } else { "s" },
                human_size(u.bytes),
                u.unshared
            ));
        }
    }
    Ok(())
}

fn shared_in(s: &SharedIn) -> String {
    match s {
        SharedIn::Room(name) => format!("#{name}"),
        SharedIn::Direct(a, b) => format!("{a} & {b}"),
    }
}

fn file_line(f: &UserFileRow, json: bool) -> String {
    let up = &f.upload;
    let shared: Vec<String> = f.shared_in.iter().map(shared_in).collect();
    if json {
        return json!({
            "id": up.id.as_str(),
            "name": up.name.as_str(),
            "size": up.length,
            "media_type": up.media_type.as_str(),
            "sha256": up.sha256.as_ref().map(|s| s.as_str()),
            "created": up.created.0,
            "finished": up.sha256.is_some(),
            "removed": f.removed,
            "shared_in": shared,
        })
        .to_string();
    }
    let state = if f.removed {
        " (removed)"
    } else if up.sha256.is_none() {
        " (unfinished)"
    } else {
        ""
    };
    format!(
        "{}  {}  {}  {}  {}  {}{}",
        up.id.as_str(),
        up.name.as_str(),
        human_size(up.length),
        up.media_type.as_str(),
        date_time(up.created),
        if shared.is_empty() {
            "not shared".to_owned()
        } else {
            format!("shared in {}", shared.join(", "))
        },
        state
    )
}

fn removal_line(r: &FileRemoval, json: bool) -> String {
    let what = match &r.outcome {
        None => "unknown",
        Some(Removal::Deleted(_)) => "deleted",
        Some(Removal::Marked(_)) => "removed",
        Some(Removal::AlreadyRemoved) => "already_removed",
    };
    if json {
        return json!({"id": r.id.as_str(), "result": what, "bytes_deleted": r.bytes_deleted})
            .to_string();
    }
    let id = r.id.as_str();
    let bytes = if r.bytes_deleted {
        "its bytes deleted"
    } else {
        "its bytes kept (another upload has the same content)"
    };
    match &r.outcome {
        None => format!("{id}: no such file."),
        Some(Removal::Deleted(_)) => format!("{id}: deleted (it was not shared), {bytes}."),
        Some(Removal::Marked(_)) => {
            format!("{id}: removed (its messages stay; downloads answer 404), {bytes}.")
        }
        Some(Removal::AlreadyRemoved) => format!("{id}: already removed."),
    }
}
