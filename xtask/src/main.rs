//! Project automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! - `test`: everything CI checks — formatting, lints, `portrait-core` for wasm32, and every
//!   test in the workspace; ends with one `N passed, M failed` line.
//! - `demo`: the main job. Until the collector and demo site exist it says so.
//! - `build-worker`: the collector Worker into `collector/build/` (see [`worker`]).
//!
//! Each command installs what it needs first (today: the pinned toolchain and its wasm32
//! target), so a fresh clone needs nothing but rustup.

mod worker;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(),
        Some("build-worker") => worker::build(&project_root()).map(|_| ()),
        _ => Err("usage: cargo xtask test | demo | build-worker".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn test() -> Result<(), String> {
    let root = project_root();
    install_toolchain(&root)?;
    run(&root, "cargo", &["fmt", "--all", "--check"])?;
    run(&root, "cargo", &["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"])?;
    run(&root, "cargo", &["build", "--quiet", "-p", "portrait-core", "--target", "wasm32-unknown-unknown"])?;
    let totals = run_counting_tests(&root, &["test", "--workspace"])?;
    println!("{} passed, {} failed", totals.passed, totals.failed);
    match totals.failed {
        0 => Ok(()),
        n => Err(format!("{n} tests failed")),
    }
}

fn demo() -> Result<(), String> {
    install_toolchain(&project_root())?;
    println!(
        "Nothing to run yet: the collector (issue 3) and the demo site (issue 8) are not built.\n\
         Meanwhile, `cargo run -p portrait-cli -- decode core/tests/data/beacon_v1.bin` shows a beacon."
    );
    Ok(())
}

/// `rustup` reads `rust-toolchain.toml` but only installs a missing target on request.
fn install_toolchain(root: &Path) -> Result<(), String> {
    match Command::new("rustup").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => run(root, "rustup", &["toolchain", "install", "--no-self-update"]),
        Err(_) => {
            eprintln!("xtask: rustup not found; assuming the toolchain in rust-toolchain.toml is installed");
            Ok(())
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: {program} {}", args.join(" "));
    let status =
        Command::new(program).args(args).current_dir(dir).status().map_err(|e| format!("{program}: {e}"))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("`{program} {}` failed ({status})", args.join(" "))),
    }
}

#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
}

/// Runs `cargo <args>`, echoing its output, and adds up its `test result:` lines.
fn run_counting_tests(dir: &Path, args: &[&str]) -> Result<Totals, String> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut child = Command::new("cargo")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo: {e}"))?;
    let mut totals = Totals::default();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("reading cargo output: {e}"))?;
        println!("{line}");
        if let Some(summary) = line.strip_prefix("test result: ") {
            totals.passed += count_before(summary, " passed");
            totals.failed += count_before(summary, " failed");
        }
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() && totals.failed == 0 {
        return Err(format!("`cargo {}` failed ({status}) before reporting a failed test", args.join(" ")));
    }
    Ok(totals)
}

/// In `ok. 7 passed; 0 failed; …`, the number before `label`.
fn count_before(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .find_map(|part| {
            part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(label)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
