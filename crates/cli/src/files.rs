//! `upload`, `download` and `files`: file transfer from the command line.
//!
//! The transfers themselves are the client library's
//! ([`chatus_client::transfer`], run as a task); this shows their progress (a bar with
//! bytes, rate and time left when stdout is a terminal, nothing otherwise)
//! and their results (a sentence, or one JSON object per file with
//! `--json`). `upload` exits 0 only once every file is stored and its
//! message acknowledged; run again after an interruption (Ctrl-C cancels
//! the transfer and keeps its resume state), it resumes.
//!
//! In an end-to-end encrypted conversation `upload` encrypts each file on
//! this device first and shares it with its name, type and key inside the
//! message's ciphertext; `download` of such a file finds that message
//! (through `list_files` and `history`), checks the ciphertext's hash and
//! decrypts it.

use std::io::IsTerminal as _;

use chatus_client::protocol::{Conversation, FileId};
use chatus_client::transfer::{self, Action, Endpoint, TransferError, Update};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::CliError;
use crate::args::{DownloadArgs, FilesArgs, UploadArgs};
use crate::commands::{parse_room, say};
use crate::connect::{Ctx, Mode, note, parse_user};
use crate::output;

/// A progress bar when stdout is a terminal (and no JSON is wanted),
/// else nothing.
fn bar(ctx: &Ctx, label: &str) -> Option<ProgressBar> {
    if ctx.json || !std::io::stdout().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(output::clean(label).into_owned());
    Some(pb)
}

/// Where an upload's resume state goes when it cannot be written beside
/// the file: `uploads/` in this command's config directory (which
/// `--config-dir` may name).
fn uploads_dir(ctx: &Ctx) -> std::path::PathBuf {
    ctx.sessions.dir().join("uploads")
}

/// New starts of a transfer that failed in a way that may pass (it
/// resumes each time), besides its own retries: about 13 s of waits
/// ([`transfer::backoff`]), so a command rides out a cluster node dying
/// under it.
const NEW_STARTS: u32 = 6;

/// Runs one transfer as a task, showing its progress, until it ends or
/// Ctrl-C cancels it (its resume state stays, so the same command goes
/// on where it stopped); a failure that may pass starts it again, up to
/// [`NEW_STARTS`] times.
async fn run(ctx: &Ctx, to: &Endpoint, action: Action, label: &str) -> Result<Update, CliError> {
    let pb = bar(ctx, label);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut starts = 0;
    let result = 'transfer: loop {
        let (handle, mut updates) =
            transfer::spawn_with(to.clone(), action.clone(), Some(uploads_dir(ctx)));
        let failed = loop {
            tokio::select! {
                u = updates.recv() => match u {
                    Some(Update::Progress(p)) => {
                        if let Some(pb) = &pb {
                            pb.set_length(p.total);
                            pb.set_position(p.done);
                        }
                    }
                    Some(Update::Failed(e)) => break e,
                    Some(done) => break 'transfer Ok(done),
                    None => {
                        break 'transfer Err(CliError::Local(
                            "The transfer stopped unexpectedly.".into(),
                        ));
                    }
                },
                _ = &mut ctrl_c => {
                    handle.cancel();
                    break 'transfer Err(CliError::Local(
                        "Interrupted; run the same command again to go on where it stopped.".into(),
                    ));
                }
            }
        };
        starts += 1;
        if !failed.is_retryable() || starts > NEW_STARTS {
            break Err(failed.into());
        }
        tracing::debug!(cause = %failed, starts, "transfer failed; starting it again");
        tokio::select! {
            () = tokio::time::sleep(transfer::backoff(starts)) => {}
            _ = &mut ctrl_c => {
                break Err(CliError::Local(
                    "Interrupted; run the same command again to go on where it stopped.".into(),
                ));
            }
        }
    };
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    result
}

fn conversation(room: Option<&str>, user: Option<&str>) -> Result<Conversation, CliError> {
    match (room, user) {
        (Some(r), None) => Ok(Conversation::Room(parse_room(r)?)),
        (None, Some(u)) => Ok(Conversation::Peer(parse_user(u)?)),
        _ => Err(CliError::Usage(
            "Give exactly one of --room and a user.".into(),
        )),
    }
}

/// `upload --cancel`: removes each file's upload on the server and its
/// resume state.
async fn cancel(ctx: &Ctx, args: &UploadArgs) -> Result<(), CliError> {
    let server = ctx.server()?;
    let saved = ctx.account(&server).await?;
    let endpoint = Endpoint {
        trust: ctx.trust(&server).await?,
        server,
        token: saved.token,
    };
    let fallback = uploads_dir(ctx);
    for path in &args.files {
        let found = transfer::upload::discard(&endpoint, path, Some(&fallback)).await?;
        if ctx.json {
            say(&json!({"file": path.display().to_string(), "cancelled": found}).to_string());
        } else if found {
            say(&format!("Cancelled the upload of {}.", path.display()));
        } else {
            say(&format!("{} has no upload under way.", path.display()));
        }
    }
    Ok(())
}

/// `upload`.
pub async fn upload(ctx: &Ctx, args: &UploadArgs) -> Result<(), CliError> {
    if args.cancel {
        return cancel(ctx, args).await;
    }
    let to = conversation(args.target.room.as_deref(), args.target.to.as_deref())?;
    for f in &args.files {
        if !f.is_file() {
            return Err(CliError::Usage(format!(
                "{} is not a file that can be read.",
                f.display()
            )));
        }
    }
    let server = ctx.server()?;
    let saved = ctx.account(&server).await?;
    let endpoint = Endpoint {
        server: server.clone(),
        token: saved.token.clone(),
        trust: ctx.trust(&server).await?,
    };
    let (client, _, me) = ctx.connect_as(Mode::OneShot, server, saved).await?;
    let result = async {
        // An end-to-end encrypted conversation gets each file encrypted on
        // this device; its name, type and key go inside the message.
        let encrypt = client.encrypts(&to).await?;
        for path in &args.files {
            let label = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let action = if encrypt {
                Action::UploadEncrypted(path.clone())
            } else {
                Action::Upload(path.clone())
            };
            let up = match run(ctx, &endpoint, action, &label).await? {
                Update::Uploaded(up) => up,
                other => {
                    return Err(CliError::Local(format!(
                        "The upload ended unexpectedly: {other:?}."
                    )));
                }
            };
            let sent = client.share_upload(to.clone(), None, &up).await?;
            // Stored and acknowledged: nothing is left to resume.
            up.forget()?;
            if ctx.json {
                let mut v = json!({
                    "id": up.id.as_str(),
                    "name": up.name.as_str(),
                    "size": up.size,
                    "media_type": up.media_type.as_str(),
                    "sha256": up.sha256.as_str(),
                    "seq": sent.seq.0,
                    "duplicate": sent.duplicate,
                    "encrypted": encrypt,
                    "sender": me.user.as_str(),
                });
                match &sent.conv {
                    Conversation::Room(r) => v["room"] = json!(r.as_str()),
                    Conversation::Peer(p) => v["peer"] = json!(p.as_str()),
                }
                say(&v.to_string());
            } else {
                say(&format!(
                    "Sent {}{} ({}) to {} as {} (seq {}); download it with `chatus download {}`.",
                    if encrypt { "end-to-end encrypted " } else { "" },
                    output::clean(up.name.as_str()),
                    output::human_size(up.size),
                    output::place(&sent.conv),
                    me.user,
                    sent.seq,
                    up.id
                ));
            }
        }
        Ok::<(), CliError>(())
    }
    .await;
    client.quit().await;
    result
}

/// `download`.
pub async fn download(ctx: &Ctx, args: &DownloadArgs) -> Result<(), CliError> {
    let id = FileId::parse(args.id.trim()).map_err(|_| {
        CliError::Usage(format!(
            "{:?} is not a file id (32 lowercase hexadecimal digits).",
            args.id
        ))
    })?;
    let server = ctx.server()?;
    let saved = ctx.account(&server).await?;
    let endpoint = Endpoint {
        trust: ctx.trust(&server).await?,
        server,
        token: saved.token,
    };
    let action = Action::Download {
        id: id.clone(),
        dest: args.output.clone(),
        force: args.force,
    };
    let mut encrypted = false;
    let got = match run(ctx, &endpoint, action, id.as_str()).await {
        // End-to-end encrypted: its key is in the message that shares it,
        // which this device opens.
        Err(CliError::Transfer(TransferError::Encrypted(_))) => {
            encrypted = true;
            let (client, _, _) = ctx.connect(Mode::OneShot).await?;
            let found = client.find_encrypted_file(&id, None).await;
            client.quit().await;
            let action = Action::DownloadEncrypted {
                file: Box::new(found?),
                dest: args.output.clone(),
                force: args.force,
            };
            run(ctx, &endpoint, action, id.as_str()).await?
        }
        other => other?,
    };
    let got = match got {
        Update::Downloaded(got) => got,
        other => {
            return Err(CliError::Local(format!(
                "The download ended unexpectedly: {other:?}."
            )));
        }
    };
    if ctx.json {
        say(&json!({
            "id": id.as_str(),
            "name": got.name.as_str(),
            "size": got.size,
            "media_type": got.media_type.as_str(),
            "sha256": got.sha256.as_str(),
            "path": got.path.display().to_string(),
            "encrypted": encrypted,
        })
        .to_string());
    } else {
        say(&format!(
            "Saved {} ({}, {}) as {}; SHA-256 checked{}.",
            output::clean(got.name.as_str()),
            output::human_size(got.size),
            got.media_type,
            got.path.display(),
            if encrypted {
                ", then decrypted on this device"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

/// `files`.
pub async fn list(ctx: &Ctx, args: &FilesArgs) -> Result<(), CliError> {
    let conv = conversation(args.room(), args.with.as_deref())?;
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1.".into()));
    }
    let (client, _, _) = ctx.connect(Mode::OneShot).await?;
    let result = client.list_files(conv, Some(args.limit)).await;
    // Encrypted files show their real names, from the messages that
    // shared them.
    let result = match result {
        Ok(mut list) => match client.open_files(&mut list).await {
            Ok(closed) => Ok((list, closed)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    client.quit().await;
    let (list, closed) = result?;
    for (id, why) in &closed {
        note(&format!(
            "File {id} is encrypted and could not be opened here: {why}."
        ));
    }
    for f in &list.files {
        if ctx.json {
            let mut v = output::file_json(&f.file);
            v["seq"] = json!(f.seq.0);
            v["sender"] = json!(f.sender.as_str());
            v["time"] = json!(output::rfc3339(f.time));
            say(&v.to_string());
        } else {
            say(&format!(
                "[{}] <{}> {}",
                output::date_time(f.time),
                f.sender,
                output::file_text(&f.file)
            ));
        }
    }
    if list.files.is_empty() && !ctx.json {
        say(&format!("No files in {}.", output::place(&list.conv)));
    }
    Ok(())
}
