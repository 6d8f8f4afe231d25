//! Throwaway databases for tests and benchmarks: [`ScratchDb::create`]
//! makes `chatus_test_<random>` on the server named by
//! `CHATUS_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! and dropping the [`ScratchDb`] drops the database, also when a test
//! fails (drop runs while a panic unwinds).
//!
//! Where no PostgreSQL answers, `create` prints `SKIPPED: PostgreSQL not
//! reachable at …` and returns `None`, so that a developer without one
//! still gets a passing suite; with `CI=true` (set by `.ci/run`) it is an
//! error instead, so that CI never skips these tests.

use tokio_postgres::NoTls;

/// The server used when `CHATUS_TEST_POSTGRES` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists while this value does.
#[derive(Debug)]
pub struct ScratchDb {
    admin: String,
    name: String,
    url: String,
}

/// The administrative URL: from `CHATUS_TEST_POSTGRES`, or the default.
fn admin_url() -> String {
    std::env::var("CHATUS_TEST_POSTGRES")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned())
}

/// The URL of database `name` on the same server as `admin`.
fn url_of(admin: &str, name: &str) -> Result<String, String> {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let start = base
        .find("://")
        .ok_or_else(|| format!("{} is not a postgres:// URL", super::redact_url(admin)))?
        + 3;
    let host_end = base[start..].find('/').map_or(base.len(), |i| start + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Ok(url)
}

async fn admin_client(admin: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = admin.parse()?;
    config.connect_timeout(std::time::Duration::from_secs(3));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl ScratchDb {
    /// Creates a fresh database. `Ok(None)` (after printing `SKIPPED: …`)
    /// when PostgreSQL is not reachable outside CI; `Err` when it is not
    /// reachable in CI, or refuses.
    pub async fn create() -> Result<Option<ScratchDb>, String> {
        let admin = admin_url();
        let client = match admin_client(&admin).await {
            Ok(c) => c,
            Err(e) => {
                let shown = super::redact_url(&admin);
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    return Err(format!(
                        "PostgreSQL is not reachable at {shown} ({e}), and CI must not skip \
                         its tests: start it (see .ci/run)"
                    ));
                }
                println!("SKIPPED: PostgreSQL not reachable at {shown} ({e})");
                eprintln!("SKIPPED: PostgreSQL not reachable at {shown} ({e})");
                return Ok(None);
            }
        };
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
        let name = format!(
            "chatus_test_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        // Commits skip the wait for PostgreSQL's own fsync (7 ms a commit
        // on this disk): what tests check is the server's behaviour, not
        // PostgreSQL's crash safety, and a server still hears "committed"
        // only after the commit. Benchmarks measure with `durable`.
        for sql in [
            format!("CREATE DATABASE {name}"),
            format!("ALTER DATABASE {name} SET synchronous_commit = off"),
        ] {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| format!("could not create a scratch database: {e}"))?;
        }
        let url = url_of(&admin, &name)?;
        Ok(Some(ScratchDb { admin, name, url }))
    }

    /// Makes commits wait for PostgreSQL's fsync again, as in production
    /// (for measurements). Affects connections made after the call.
    pub async fn durable(&self) -> Result<(), String> {
        let client = admin_client(&self.admin).await.map_err(|e| e.to_string())?;
        client
            .batch_execute(&format!(
                "ALTER DATABASE {} SET synchronous_commit = on",
                self.name
            ))
            .await
            .map_err(|e| e.to_string())
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop cannot await, and may run inside a runtime: a thread of its
        // own with a small runtime drops the database, and is waited for.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let client = admin_client(&admin).await.map_err(|e| e.to_string())?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the scratch database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop the scratch database {}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_name_the_database() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/x",
            ),
            (
                "postgres://u:p@h/postgres?sslmode=disable",
                "postgres://u:p@h/x?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/x"),
        ];
        for (admin, want) in cases {
            assert_eq!(super::url_of(admin, "x").unwrap(), want, "{admin}");
        }
    }
}
