//! Project automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! - `test`: everything CI checks — formatting, lints, `portrait-core` for wasm32, every Rust
//!   test, the topic model retrained and compared with the committed one, then the
//!   collector built for workerd, the SDK built, and the Node suites in
//!   `tests/` run against them (the SDK's in headless Chromium); ends with one
//!   `N passed, M failed` line.
//! - `demo [--seed]`: the collector on local workerd, the demo pages and the profile viewer
//!   (`demo-site/serve.mjs`); `--seed` replays a few synthetic visitor journeys.
//! - `build-worker`: the collector Worker into `collector/build/` (see [`worker`]).
//! - `build-sdk`: the browser SDK into `sdk/dist/` (see [`sdk`]).
//! - `train-topics [--cv-only | --check]`: the topic model into `core/topics/model.bin` (see
//!   [`topics`]).
//! - `bench [--quick] [--only a,b]`: reruns the benchmarks and writes their tables into
//!   BENCHMARKS.md between its `<!-- bench:NAME -->` markers (see [`bench`]).
//!
//! Each command installs what it needs first (the pinned toolchain and its wasm32 target, the
//! npm packages in `package-lock.json`), so a fresh clone needs only rustup and Node.js ≥ 20.

mod bench;
mod sdk;
mod topics;
mod worker;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(&args[1..]),
        Some("build-worker") => {
            let root = project_root();
            install_npm_packages(&root).and_then(|()| worker::build(&root)).map(|_| ())
        }
        Some("build-sdk") => sdk::build(&project_root()).map(|_| ()),
        Some("train-topics") => topics::train(&project_root(), &args[1..]),
        Some("bench") => bench::bench(&project_root(), &args[1..]),
        _ => Err(
            "usage: cargo xtask test | demo [--seed] | build-worker | build-sdk | train-topics [--cv-only | --check] \
                  | bench [--quick] [--only NAME,…]"
                .to_owned(),
        ),
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
    let mut totals = count_tests(&root, "cargo", &["test", "--workspace"], RUST_SUMMARY)?;
    check_topic_model(&root)?;
    install_npm_packages(&root)?; // the Worker and SDK builds use binaryen from npm
    worker::build(&root)?;
    run(&root, "cargo", &["build", "--quiet", "-p", "portrait-cli"])?;
    sdk::build(&root)?;
    install_chromium(&root)?;
    // A test that would wait forever (a callback never called) fails instead of hanging CI.
    // The limit bounds each file too, and the longest file takes about 3 minutes here.
    let node_args = ["--test", "--test-reporter=spec", "--test-timeout=900000", "tests/"];
    totals.add(count_tests(&root, "node", &node_args, NODE_SUMMARY)?);
    println!("{} passed, {} failed", totals.passed, totals.failed);
    match totals.failed {
        0 => Ok(()),
        n => Err(format!("{n} tests failed")),
    }
}

/// The shipped topic model must be what its sources make, byte for byte. A checkout without
/// the labelled pages beside it cannot retrain, and says so.
fn check_topic_model(root: &Path) -> Result<(), String> {
    if !root.join(topics::DATA_DIR).is_dir() {
        println!("xtask: {} is missing: the topic model was not retrained and compared", topics::DATA_DIR);
        return Ok(());
    }
    topics::train(root, &["--check".to_owned()])
}

/// Builds the collector and the SDK and runs the collector on local workerd with the demo
/// pages and the viewer until Ctrl-C; state in `.state/`. `--seed` adds synthetic visitors.
fn demo(options: &[String]) -> Result<(), String> {
    let root = project_root();
    install_toolchain(&root)?;
    install_npm_packages(&root)?;
    worker::build(&root)?;
    sdk::build(&root)?;
    // Ctrl-C reaches node too (same process group); it disposes of workerd before exiting.
    let mut command = vec!["demo-site/serve.mjs"];
    command.extend(options.iter().map(String::as_str));
    run(&root, "node", &command)
}

/// `npm ci` when `node_modules` is missing, else a no-op-if-current `npm install`; both
/// follow `package-lock.json`.
fn install_npm_packages(root: &Path) -> Result<(), String> {
    let command = if root.join("node_modules").exists() { "install" } else { "ci" };
    run(root, "npm", &[command, "--no-audit", "--no-fund", "--loglevel=error"])
}

/// The SDK's tests drive Debian's Chromium (`CHROMIUM` overrides the path); on a fresh
/// machine it is installed with apt (CI runs as root).
fn install_chromium(root: &Path) -> Result<(), String> {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Path::new(&path).exists() {
        return Ok(());
    }
    for args in [&["update", "-qq"][..], &["install", "-y", "-qq", "--no-install-recommends", "chromium"]] {
        eprintln!("xtask: apt-get {}", args.join(" "));
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .current_dir(root)
            .status()
            .map_err(|e| format!("apt-get (installing chromium for the SDK tests): {e}"))?;
        if !status.success() {
            return Err(format!(
                "apt-get {} failed ({status}); set CHROMIUM to a Chromium binary",
                args.join(" ")
            ));
        }
    }
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

/// A tool installed by `npm ci` (`node_modules/.bin`).
fn node_bin(root: &Path, name: &str) -> String {
    root.join("node_modules/.bin").join(name).to_string_lossy().into_owned()
}

/// Runs `program args` in `dir` and returns its stdout (and its stderr when `with_stderr`;
/// otherwise stderr goes to the terminal as it comes). A failure is an error, with the output
/// lost: the terminal has what the command said on stderr.
fn output_of(dir: &Path, program: &str, args: &[&str], with_stderr: bool) -> Result<String, String> {
    eprintln!("xtask: {}", command_text(program, args));
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(if with_stderr { Stdio::piped() } else { Stdio::inherit() })
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    match output.status.success() {
        true => Ok(text),
        false => Err(format!("`{}` failed ({})", command_text(program, args), output.status)),
    }
}

fn command_text(program: &str, args: &[&str]) -> String {
    format!("{program} {}", args.join(" "))
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: {}", command_text(program, args));
    let status =
        Command::new(program).args(args).current_dir(dir).status().map_err(|e| format!("{program}: {e}"))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("`{}` failed ({status})", command_text(program, args))),
    }
}

#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
}

impl Totals {
    fn add(&mut self, other: Totals) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// How a runner reports its counts: the line prefix and the labels of the numbers, those
/// that count as failed included.
struct Summary {
    prefix: &'static str,
    passed: &'static str,
    failed: &'static [&'static str],
}

/// cargo: `test result: ok. 7 passed; 0 failed; …` (one line per test binary).
const RUST_SUMMARY: Summary = Summary { prefix: "test result: ", passed: " passed", failed: &[" failed"] };
/// node --test (spec reporter): `ℹ pass 36`, `ℹ fail 0` and `ℹ cancelled 0` (a test that
/// timed out or never settled).
const NODE_SUMMARY: Summary = Summary { prefix: "ℹ ", passed: "pass ", failed: &["fail ", "cancelled "] };

/// Runs `program args`, echoing its output, and adds up the counts in its summary lines.
fn count_tests(dir: &Path, program: &str, args: &[&str], summary: Summary) -> Result<Totals, String> {
    eprintln!("xtask: {program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut totals = Totals::default();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("reading {program} output: {e}"))?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix(summary.prefix) {
            totals.passed += count(rest, summary.passed);
            totals.failed += summary.failed.iter().map(|label| count(rest, label)).sum::<u64>();
        }
    }
    let status = child.wait().map_err(|e| format!("{program}: {e}"))?;
    if !status.success() && totals.failed == 0 {
        return Err(format!(
            "`{program} {}` failed ({status}) before reporting a failed test",
            args.join(" ")
        ));
    }
    Ok(totals)
}

/// The number next to `label` in a summary: `7 passed` (label after) or `pass 7` (before).
fn count(summary: &str, label: &str) -> u64 {
    summary
        .split(';')
        .map(|part| part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. "))
        .find_map(|part| part.strip_suffix(label).or_else(|| part.strip_prefix(label)))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
