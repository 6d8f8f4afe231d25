//! Tidy checks over the whole repository: every Rust file opens with a `//!`
//! comment saying what lives there, no file grows past the size where it
//! should be split, the README's `cargo run` finds the `chatus` binary, and
//! ARCHITECTURE.md's codemap names files that exist and every module of the
//! protocol, client and server crates.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&repo_root().join("crates"), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading //! doc: {missing:?}"
    );
}

#[test]
fn no_file_is_too_long() {
    let mut files = Vec::new();
    rust_files(&repo_root().join("crates"), &mut files);
    let long: Vec<_> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > 1000)
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

/// The README's first command, `cargo run --release -- serve`, works only if
/// the workspace's default members hold exactly one binary.
#[test]
fn cargo_run_from_the_root_finds_one_binary() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let defaults: Vec<&str> = meta["workspace_default_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let bins: Vec<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| defaults.contains(&p["id"].as_str().unwrap()))
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(bins, ["chatus"], "binaries among the default members");
}

/// Every file path in backquotes (`name.rs`, `tests/it/authz.rs`, …) in
/// `text`.
fn quoted_paths(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|q| {
            [".rs", ".md", ".toml"]
                .iter()
                .any(|ext| q.len() > ext.len() && q.ends_with(ext) && !q.starts_with('.'))
                && q.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        })
        .collect()
}

/// Every path under `dir`, relative to it, `target` and hidden entries
/// aside.
fn all_paths(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            all_paths(root, &path, out);
        }
        out.push(rel);
    }
}

/// The codemap names files by their path inside the repository or inside
/// the crate or module the paragraph is about; each must exist somewhere
/// as such, so a file renamed or removed takes its codemap line with it.
#[test]
fn the_codemap_names_files_that_exist() {
    let root = repo_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut paths = Vec::new();
    all_paths(&root, &root, &mut paths);
    let quoted = quoted_paths(&map);
    assert!(quoted.len() > 30, "found only {} paths", quoted.len());
    let missing: Vec<&str> = quoted
        .into_iter()
        .filter(|q| {
            !paths
                .iter()
                .any(|p| p == q || p.ends_with(&format!("/{q}")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names files that do not exist: {missing:?}"
    );
}

/// Every module of the protocol, client and server crates (each file or
/// directory in their `src/`) is named in ARCHITECTURE.md's codemap.
#[test]
fn the_codemap_names_every_module() {
    let root = repo_root();
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut unnamed = Vec::new();
    for krate in ["protocol", "client", "server"] {
        assert!(
            map.contains(&format!("### `crates/{krate}`")),
            "no codemap section for crates/{krate}"
        );
        for entry in std::fs::read_dir(root.join("crates").join(krate).join("src")).unwrap() {
            let file = entry.unwrap().file_name().to_string_lossy().into_owned();
            if file == "lib.rs" {
                continue;
            }
            let module = file.strip_suffix(".rs").unwrap_or(&file);
            // A directory beside `module.rs` holds that module's children.
            if !file.ends_with(".rs") && map.contains(&format!("`{module}.rs`")) {
                continue;
            }
            let named = [
                format!("`{file}`"),
                format!("`{module}`"),
                format!("`{module}/"),
                format!("/{file}`"),
            ]
            .iter()
            .any(|n| map.contains(n.as_str()));
            if !named {
                unnamed.push(format!("crates/{krate}/src/{file}"));
            }
        }
    }
    assert!(
        unnamed.is_empty(),
        "modules ARCHITECTURE.md does not name: {unnamed:?}"
    );
}
