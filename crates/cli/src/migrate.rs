//! `chatus migrate --from DATA_DIR --to postgres://…`: moves a single-node
//! deployment into PostgreSQL (see `chatus_server::migrate`), saying what
//! it copied, what was there already, and what it verified.

use chatus_server::migrate::TableReport;
use chatus_server::store::postgres::redact_url;
use serde_json::json;

use crate::CliError;
use crate::args::MigrateArgs;
use crate::commands::say;

/// `migrate`.
pub async fn migrate(args: &MigrateArgs) -> Result<(), CliError> {
    if !chatus_server::store::postgres::is_postgres_url(&args.to) {
        return Err(CliError::Usage(
            "--to must be a postgres:// URL, e.g. postgres://chatus@db.example/chatus".into(),
        ));
    }
    let json = args.json;
    let mut progress = move |t: &TableReport| {
        if json {
            say(&json!({"table": t.table, "copied": t.copied, "present": t.present}).to_string());
        } else {
            say(&format!(
                "{:<14} {:>9} copied, {:>9} already there",
                t.table, t.copied, t.present
            ));
        }
    };
    let report = chatus_server::migrate::migrate(&args.from, &args.to, &mut progress).await?;
    let to = redact_url(&args.to);
    if json {
        say(&json!({
            "verified": true,
            "unchanged": report.unchanged(),
            "conversations": report.conversations,
            "messages": report.messages,
        })
        .to_string());
    } else if report.unchanged() {
        say(&format!(
            "Nothing to copy: {to} already holds everything in {}. Verified: every table's \
             rows, and {} conversations with {} messages, match.",
            args.from.display(),
            report.conversations,
            report.messages
        ));
    } else {
        say(&format!(
            "Verified: every table's rows, and {} conversations with {} messages, match. \
             Start the server with --store {to} (and keep {} as a backup).",
            report.conversations,
            report.messages,
            args.from.display()
        ));
    }
    Ok(())
}
