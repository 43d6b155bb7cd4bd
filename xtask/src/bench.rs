//! `cargo xtask bench [--quick] [--only a,b]`: reruns the benchmarks and writes their tables
//! into BENCHMARKS.md.
//!
//! BENCHMARKS.md is hand-written prose around tables of figures. Each table that a command
//! produces sits between two markers, `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; this
//! command replaces what is between them, and nothing else, so the prose stays as written.
//! Each generated block starts with a one-line stamp: the command that produced it and the
//! UTC date of the run. The "Machine" block at the top describes the machine of the last run.
//!
//! Steps:
//! 1. what the chosen benchmarks need, built or installed once (npm packages, Chromium, the
//!    collector Worker, `portrait-cli`, the SDK) with the same functions as `cargo xtask
//!    test`;
//! 2. each benchmark in turn, never two at once (their timings are meant for a 2-core
//!    machine), its stdout captured; its block written into BENCHMARKS.md as soon as it is
//!    done, so that a later failure or Ctrl-C keeps what was measured;
//! 3. a summary; the exit status is non-zero when any benchmark failed. A failed benchmark
//!    leaves its block as it was: old figures stay until a run replaces them with real ones.
//!
//! What goes into a block: the Markdown tables the command printed (lines starting with `|`),
//! never its other lines, so progress output cannot leak into the document. Where a command
//! prints no table (criterion, the profile-size test, `train-topics --cv-only`, the build
//! sizes), the table is made here from its figures.
//!
//! `--quick` runs each benchmark briefly to check the pipeline; its stamps say "(quick run: not
//! for comparison)". `--only wire-size,core` runs a subset (`_` and `-` are the same in names).

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{install_chromium, install_npm_packages, install_toolchain, run, sdk, worker};

const DOCUMENT: &str = "BENCHMARKS.md";
const QUICK_NOTE: &str = " (quick run: not for comparison)";

/// What a benchmark needs built or installed before it runs. Prepared in this order: the
/// SDK build uses tools from the npm packages.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Need {
    Npm,
    Chromium,
    Worker,
    Cli,
    Sdk,
}

const NEEDS_IN_ORDER: [Need; 5] = [Need::Npm, Need::Chromium, Need::Worker, Need::Cli, Need::Sdk];

/// How a benchmark runs.
enum Runner {
    /// `node bench/<script> <args>` (`quick` args under `--quick`); the block named like the
    /// benchmark gets the Markdown tables the script prints.
    Node { script: &'static str, full: &'static [&'static str], quick: &'static [&'static str] },
    /// A function below that runs the benchmark and makes its blocks (given the root and
    /// whether the run is quick).
    Custom(fn(&Path, bool) -> Result<Vec<Block>, String>),
}

struct Benchmark {
    name: &'static str,
    needs: &'static [Need],
    runner: Runner,
}

/// Every benchmark, in the order BENCHMARKS.md presents them and they run.
const BENCHMARKS: &[Benchmark] = &[
    Benchmark { name: "wire-size", needs: &[], runner: Runner::Custom(wire_size) },
    Benchmark { name: "core", needs: &[], runner: Runner::Custom(core_micro) },
    Benchmark { name: "profile-size", needs: &[], runner: Runner::Custom(profile_size) },
    Benchmark {
        name: "collector-load",
        needs: &[Need::Npm, Need::Worker, Need::Cli],
        runner: Runner::Node {
            script: "bench/collector-load.mjs",
            full: &["--seconds", "20", "--profiles", "1000"],
            quick: &["--seconds", "3", "--profiles", "1000"],
        },
    },
    Benchmark {
        name: "collector-reload",
        needs: &[Need::Npm, Need::Worker, Need::Cli],
        runner: Runner::Node {
            script: "bench/collector-reload.mjs",
            full: &["--profiles", "1000", "--rows", "40", "--rounds", "5"],
            quick: &["--profiles", "100", "--rows", "3", "--rounds", "1"],
        },
    },
    Benchmark { name: "worker-size", needs: &[Need::Worker], runner: Runner::Custom(worker_size) },
    Benchmark {
        name: "identity-merge",
        needs: &[Need::Npm, Need::Worker, Need::Cli],
        runner: Runner::Node {
            script: "bench/identity-merge.mjs",
            full: &["--runs", "15"],
            quick: &["--runs", "3"],
        },
    },
    Benchmark {
        name: "collector-audiences",
        needs: &[Need::Npm, Need::Worker, Need::Cli],
        runner: Runner::Node {
            script: "bench/collector-load.mjs",
            full: &["--seconds", "15", "--profiles", "1000", "--audiences", "50"],
            quick: &["--seconds", "3", "--profiles", "1000", "--audiences", "50"],
        },
    },
    Benchmark {
        name: "sdk-browser",
        needs: &[Need::Npm, Need::Chromium, Need::Worker, Need::Cli, Need::Sdk],
        runner: Runner::Node {
            script: "bench/sdk-browser.mjs",
            full: &["--loads", "15", "--runs", "3"],
            quick: &["--loads", "1", "--runs", "1"],
        },
    },
    Benchmark { name: "sdk-size", needs: &[Need::Npm, Need::Sdk], runner: Runner::Custom(sdk_size) },
    Benchmark { name: "topics-cv", needs: &[], runner: Runner::Custom(topics_cv) },
    Benchmark {
        name: "topics-browser",
        needs: &[Need::Npm, Need::Chromium, Need::Sdk],
        runner: Runner::Node {
            script: "bench/topics-browser.mjs",
            full: &["--runs", "1000"],
            quick: &["--runs", "50"],
        },
    },
    // Written separately; until `bench/reliability.mjs` exists this one is skipped (loudly).
    // What it drives is not known here, so it gets everything the others use.
    Benchmark {
        name: "reliability",
        needs: &[Need::Npm, Need::Chromium, Need::Worker, Need::Cli, Need::Sdk],
        runner: Runner::Node {
            script: "bench/reliability.mjs",
            full: &["--seconds", "60"],
            quick: &["--seconds", "5", "--hot-seconds", "3"],
        },
    },
];

/// One generated block of BENCHMARKS.md: what goes between its markers, after the stamp.
struct Block {
    marker: &'static str,
    /// The command as a reader would type it, for the stamp.
    command: String,
    body: String,
}

pub fn bench(root: &Path, args: &[String]) -> Result<(), String> {
    let (quick, chosen) = parse_args(args)?;
    let mut failed: Vec<String> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut to_run: Vec<&Benchmark> = Vec::new();
    for benchmark in chosen {
        if let Runner::Node { script, .. } = benchmark.runner
            && !root.join(script).exists()
        {
            eprintln!(
                "xtask: SKIPPED benchmark `{}`: {script} does not exist; its block is left unchanged",
                benchmark.name
            );
            skipped.push(benchmark.name.to_owned());
            continue;
        }
        to_run.push(benchmark);
    }

    install_toolchain(root)?;
    let mut unavailable: HashMap<Need, String> = HashMap::new();
    for need in NEEDS_IN_ORDER {
        if to_run.iter().any(|b| b.needs.contains(&need))
            && let Err(message) = prepare(root, need)
        {
            eprintln!("xtask: preparing {need:?} failed: {message}");
            unavailable.insert(need, message);
        }
    }

    write_blocks(root, &[machine_block(root, quick)])?;
    for benchmark in to_run {
        if let Some(need) = benchmark.needs.iter().find(|need| unavailable.contains_key(need)) {
            failed.push(format!("{} (needs {need:?}: {})", benchmark.name, unavailable[need]));
            continue;
        }
        eprintln!("xtask: benchmark `{}`{}", benchmark.name, if quick { " (quick)" } else { "" });
        let started = std::time::Instant::now();
        let blocks = match &benchmark.runner {
            Runner::Node { script, full, quick: quick_args } => {
                node_tables(root, benchmark.name, script, if quick { quick_args } else { full })
            }
            Runner::Custom(function) => function(root, quick),
        };
        match blocks.and_then(|blocks| {
            let stamped: Vec<(&str, String)> = blocks.iter().map(|b| (b.marker, stamped(b, quick))).collect();
            write_blocks(root, &stamped)
        }) {
            Ok(()) => eprintln!(
                "xtask: benchmark `{}` done in {:.0} s",
                benchmark.name,
                started.elapsed().as_secs_f64()
            ),
            Err(message) => {
                eprintln!("xtask: benchmark `{}` FAILED: {message}", benchmark.name);
                failed.push(format!("{} ({message})", benchmark.name));
            }
        }
    }

    if !skipped.is_empty() {
        eprintln!("xtask: SKIPPED (blocks unchanged): {}", skipped.join(", "));
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(format!("benchmarks failed (their blocks are unchanged): {}", failed.join("; "))),
    }
}

/// `--quick` and `--only a,b`; the chosen benchmarks in their usual order.
fn parse_args(args: &[String]) -> Result<(bool, Vec<&'static Benchmark>), String> {
    let names: Vec<&str> = BENCHMARKS.iter().map(|b| b.name).collect();
    let usage = format!("usage: cargo xtask bench [--quick] [--only NAME,…]; names: {}", names.join(", "));
    let mut quick = false;
    let mut only: Option<Vec<String>> = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--only" => {
                let list = rest.next().ok_or_else(|| usage.clone())?;
                only = Some(list.split(',').map(|name| name.trim().replace('_', "-")).collect());
            }
            _ => return Err(usage),
        }
    }
    let Some(only) = only else {
        return Ok((quick, BENCHMARKS.iter().collect()));
    };
    if let Some(unknown) = only.iter().find(|name| !names.contains(&name.as_str())) {
        return Err(format!("no benchmark named `{unknown}`; {usage}"));
    }
    Ok((quick, BENCHMARKS.iter().filter(|b| only.iter().any(|name| name == b.name)).collect()))
}

fn prepare(root: &Path, need: Need) -> Result<(), String> {
    match need {
        Need::Npm => install_npm_packages(root),
        Need::Chromium => install_chromium(root),
        Need::Worker => worker::build(root).map(|_| ()),
        Need::Cli => run(root, "cargo", &["build", "--quiet", "-p", "portrait-cli"]),
        Need::Sdk => sdk::build(root).map(|_| ()),
    }
}

/// The stamp line, a blank line, the body.
fn stamped(block: &Block, quick: bool) -> String {
    let note = if quick { QUICK_NOTE } else { "" };
    format!("*`{}` — run {} UTC{note}.*\n\n{}", block.command, utc_date(), block.body.trim_end())
}

/// Replaces each named block of BENCHMARKS.md; all or none (one write).
fn write_blocks(root: &Path, blocks: &[(&str, String)]) -> Result<(), String> {
    let path = root.join(DOCUMENT);
    let mut document = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (marker, content) in blocks {
        document = splice(&document, marker, content)?;
    }
    fs::write(&path, document).map_err(|e| format!("{}: {e}", path.display()))
}

/// `document` with what is between the lines `<!-- bench:MARKER -->` and
/// `<!-- /bench:MARKER -->` replaced by `content`. Each marker must occur exactly once, on a
/// line of its own, opening before closing: anything else is an error, not a guess.
fn splice(document: &str, marker: &str, content: &str) -> Result<String, String> {
    let open = format!("<!-- bench:{marker} -->\n");
    let close = format!("\n<!-- /bench:{marker} -->");
    let find_once = |needle: &str| -> Result<usize, String> {
        let found: Vec<usize> = document.match_indices(needle).map(|(at, _)| at).collect();
        match found[..] {
            [at] => Ok(at),
            [] => Err(format!("{DOCUMENT} has no `{}` line", needle.trim())),
            _ => Err(format!("{DOCUMENT} has `{}` more than once", needle.trim())),
        }
    };
    let start = find_once(&open)? + open.len();
    let end = find_once(&close)?;
    if end + 1 < start {
        return Err(format!("{DOCUMENT}: the markers of `{marker}` are in the wrong order"));
    }
    let at_line_start = start - open.len() == 0 || document[..start - open.len()].ends_with('\n');
    if !at_line_start {
        return Err(format!("{DOCUMENT}: `<!-- bench:{marker} -->` must start a line"));
    }
    // Blank lines around the content: a Markdown table must not run into the marker lines.
    Ok(format!("{}\n{}\n{}", &document[..start], content.trim(), &document[end..]))
}

/// Runs `node <script> <args>` and keeps the tables it prints, for the block `marker`.
fn node_tables(root: &Path, marker: &'static str, script: &str, args: &[&str]) -> Result<Vec<Block>, String> {
    let mut all = vec![script];
    all.extend(args);
    let output = capture(root, "node", &all, false)?;
    Ok(vec![Block { marker, command: crate::command_text("node", &all), body: tables(&output)? }])
}

/// The Markdown tables in `output` (runs of lines starting with `|`), one blank line apart.
fn tables(output: &str) -> Result<String, String> {
    let mut found: Vec<Vec<&str>> = Vec::new();
    let mut in_table = false;
    for line in output.lines() {
        let is_row = line.trim_start().starts_with('|');
        match (is_row, in_table) {
            (true, true) => found.last_mut().expect("in a table").push(line.trim()),
            (true, false) => found.push(vec![line.trim()]),
            _ => {}
        }
        in_table = is_row;
    }
    if found.is_empty() {
        return Err("the command printed no Markdown table".to_owned());
    }
    Ok(found.iter().map(|rows| rows.join("\n")).collect::<Vec<_>>().join("\n\n"))
}

/// [`crate::output_of`], echoing the captured output when the command ends (the benchmarks'
/// own tables and figures).
fn capture(root: &Path, program: &str, args: &[&str], with_stderr: bool) -> Result<String, String> {
    let text = crate::output_of(root, program, args, with_stderr)?;
    println!("{text}");
    Ok(text)
}

/// `cargo bench -p portrait-core --bench wire_size`: prints its own table.
fn wire_size(root: &Path, _quick: bool) -> Result<Vec<Block>, String> {
    let args = ["bench", "-p", "portrait-core", "--bench", "wire_size"];
    let output = capture(root, "cargo", &args, false)?;
    Ok(vec![Block {
        marker: "wire-size",
        command: crate::command_text("cargo", &args),
        body: tables(&output)?,
    }])
}

/// The rows of the `core` block: criterion id, what the row says, events per iteration (for
/// the per-event column; 0 when the row is not per event).
const CORE_ROWS: &[(&str, &str, u32)] = &[
    ("decode/beacon, 20 events", "decode + validate a beacon of 20 events", 20),
    ("decode/beacon, 500 events", "decode + validate a beacon of 500 events", 500),
    ("decode/segment json, 20 events", "decode + validate Segment JSON, 20 events", 20),
    ("decode/segment json, 500 events", "decode + validate Segment JSON, 500 events", 500),
    ("apply one event to a 200-event profile", "apply one event to a 200-event profile", 0),
    ("merge two 200-event profiles", "merge two 200-event profiles", 0),
    ("encode + decode a 200-event profile state", "encode + decode a 200-event profile state (postcard)", 0),
    (
        "object pipeline, 20 events/decode + validate",
        "object pipeline, one-person beacon of 20 events: decode + validate",
        20,
    ),
    ("object pipeline, 20 events/enrich (one user agent)", "object pipeline: enrich (one user agent)", 20),
    ("object pipeline, 20 events/apply", "object pipeline: apply", 20),
    (
        "object pipeline, 20 events/encode the batch for storage",
        "object pipeline: encode the batch for storage",
        20,
    ),
];

/// The rows of the `core-tags` block, as [`CORE_ROWS`].
const TAG_ROWS: &[(&str, &str, u32)] = &[
    (
        "tags/all tags of a 200-event profile",
        "all tags of a 200-event profile (factual, analytical, predictive, at one time)",
        0,
    ),
    (
        "tags/50 audience rules",
        "50 audience rules over those tags (five shapes: scores, interests, lists, traits)",
        0,
    ),
    ("apply one event to a 200-event profile", "for scale: apply one event to a 200-event profile", 0),
    ("merge two 200-event profiles", "merge two 200-event profiles", 0),
];

/// `core`: one criterion run for the two blocks that cite it, `core` (decoding, profiles, the
/// object pipeline) and `core-tags` (in the tag-system section, with two rows for scale).
fn core_micro(root: &Path, quick: bool) -> Result<Vec<Block>, String> {
    let mut args = vec!["bench", "-p", "portrait-core", "--bench", "core"];
    if quick {
        // Criterion's defaults are 3 s of warm-up and 5 s of measurement per benchmark.
        args.extend(["--", "--warm-up-time", "1", "--measurement-time", "2"]);
    }
    let times = criterion_times(&capture(root, "cargo", &args, false)?);
    let command = crate::command_text("cargo", &args);
    Ok(vec![
        Block { marker: "core", command: command.clone(), body: criterion_table(&times, CORE_ROWS)? },
        Block { marker: "core-tags", command, body: criterion_table(&times, TAG_ROWS)? },
    ])
}

/// Criterion's results in its stdout: each benchmark id, then `time:   [low median high]`, on
/// the id's line when the id is short and on the next line when it is long. A `time:` line
/// under `change:` compares with the previous run (percentages) and is not a result.
fn criterion_times(output: &str) -> HashMap<String, [f64; 3]> {
    let mut times = HashMap::new();
    let mut previous = "";
    for line in output.lines() {
        if let Some((before, after)) = line.split_once("time:")
            && !after.contains('%')
        {
            let id = if before.trim().is_empty() { previous.trim() } else { before.trim() };
            let values: Vec<&str> =
                after.trim().trim_start_matches('[').trim_end_matches(']').split_whitespace().collect();
            if let [low, low_unit, mid, mid_unit, high, high_unit] = values[..]
                && let (Some(low), Some(mid), Some(high)) =
                    (nanoseconds(low, low_unit), nanoseconds(mid, mid_unit), nanoseconds(high, high_unit))
            {
                times.insert(id.to_owned(), [low, mid, high]);
            }
        }
        previous = line;
    }
    times
}

/// `61.042`, `µs` → 61042.0.
fn nanoseconds(value: &str, unit: &str) -> Option<f64> {
    let scale = match unit {
        "ps" => 0.001,
        "ns" => 1.0,
        "µs" | "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    value.parse::<f64>().ok().map(|v| v * scale)
}

/// A duration with three significant digits in the unit that keeps it between 1 and 1000:
/// `61.0 µs`, `1.44 ms`.
fn duration(ns: f64) -> String {
    let (value, unit) = match ns {
        ns if ns >= 1e9 => (ns / 1e9, "s"),
        ns if ns >= 1e6 => (ns / 1e6, "ms"),
        ns if ns >= 1e3 => (ns / 1e3, "µs"),
        ns => (ns, "ns"),
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// A table of criterion results: median, criterion's confidence interval, and per event
/// where the row has events. An id missing from the output is an error (a renamed benchmark
/// must be renamed here too), not an empty cell.
fn criterion_table(times: &HashMap<String, [f64; 3]>, rows: &[(&str, &str, u32)]) -> Result<String, String> {
    let mut table = vec![
        "| operation | median | 95 % interval | per event |".to_owned(),
        "|---|---:|---:|---:|".to_owned(),
    ];
    for (id, label, events) in rows {
        let [low, mid, high] =
            times.get(*id).ok_or_else(|| format!("criterion printed no time for `{id}`"))?;
        let per_event = if *events > 0 { duration(mid / f64::from(*events)) } else { String::new() };
        table.push(format!(
            "| {label} | {} | {} – {} | {per_event} |",
            duration(*mid),
            duration(*low),
            duration(*high)
        ));
    }
    Ok(table.join("\n"))
}

/// The profile-size test prints `profile state after 200 varied events: N bytes` (and
/// asserts the budget); the proptest suites in the same file are filtered out.
fn profile_size(root: &Path, _quick: bool) -> Result<Vec<Block>, String> {
    let args = [
        "test",
        "-p",
        "portrait-core",
        "--test",
        "profile_laws",
        "--",
        "--nocapture",
        "state_after_200_varied_events",
    ];
    let output = capture(root, "cargo", &args, true)?;
    let prefix = "profile state after 200 varied events: ";
    let bytes: u64 = output
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix)?.strip_suffix(" bytes")?.parse().ok())
        .ok_or_else(|| format!("the test printed no `{prefix}N bytes` line"))?;
    let body = format!(
        "| profile | postcard bytes | budget |\n|---|---:|---:|\n| B2B visitor, 200 varied events (`scenarios::varied_visitor(200)`) | {} | ≤ 4,096 |",
        thousands(bytes)
    );
    Ok(vec![Block { marker: "profile-size", command: crate::command_text("cargo", &args), body }])
}

/// The collector Worker's wasm, as `cargo xtask build-worker` left it (built in step 1).
fn worker_size(root: &Path, _quick: bool) -> Result<Vec<Block>, String> {
    let sizes = compressed_sizes(root, &["collector/build/index_bg.wasm"])?;
    let [raw, gzip, brotli] = sizes[0];
    let body = format!(
        "| build | wasm | gzip -9 | brotli 11 |\n|---|---:|---:|---:|\n| collector (`collector/build/index_bg.wasm`) | {} B | {} B | {} B |",
        thousands(raw),
        thousands(gzip),
        thousands(brotli)
    );
    Ok(vec![Block { marker: "worker-size", command: "cargo xtask build-worker".to_owned(), body }])
}

/// The SDK's files, as `cargo xtask build-sdk` left them (built in step 1).
fn sdk_size(root: &Path, _quick: bool) -> Result<Vec<Block>, String> {
    let files = [
        ("sdk/dist/snippet.min.js", "`snippet.min.js` (inline in the page)"),
        ("sdk/dist/portrait.js", "`portrait.js` (loader, API, wasm-bindgen glue)"),
        ("sdk/dist/portrait.wasm", "`portrait.wasm`"),
        (
            "sdk/dist/portrait-interests.js",
            "`portrait-interests.js` (the interest module's glue, fetched after `ready`)",
        ),
        ("sdk/dist/portrait-interests.wasm", "`portrait-interests.wasm` (fetched after `ready`)"),
        ("sdk/dist/portrait-topics.bin", "`portrait-topics.bin` (the topic model, fetched after `ready`)"),
        (
            "sdk/dist/portrait.wasm2js.js",
            "`portrait.wasm2js.js` (only under a strict CSP or in a pre-2021 browser)",
        ),
        (
            "sdk/dist/portrait-interests.wasm2js.js",
            "`portrait-interests.wasm2js.js` (only under a strict CSP or in a pre-2021 browser)",
        ),
        ("sdk/dist/npm/index.js", "`npm/index.js` (wasm inlined)"),
        ("sdk/dist/npm/interests.js", "`npm/interests.js` (wasm and model inlined; imported after `ready`)"),
    ];
    let paths: Vec<&str> = files.iter().map(|(path, _)| *path).collect();
    let sizes = compressed_sizes(root, &paths)?;
    let mut table =
        vec!["| file | raw | gzip -9 | brotli 11 |".to_owned(), "|---|---:|---:|---:|".to_owned()];
    for ((_, label), [raw, gzip, brotli]) in files.iter().zip(sizes) {
        table.push(format!(
            "| {label} | {} B | {} B | {} B |",
            thousands(raw),
            thousands(gzip),
            thousands(brotli)
        ));
    }
    Ok(vec![Block {
        marker: "sdk-size",
        command: "cargo xtask build-sdk".to_owned(),
        body: table.join("\n"),
    }])
}

/// Raw, gzip level 9 and brotli quality 11 sizes of each file, by Node's zlib (as
/// `topics::brotli_size`): the same compressors a server would use, and no extra tools.
fn compressed_sizes(root: &Path, files: &[&str]) -> Result<Vec<[u64; 3]>, String> {
    let script = "const z=require('zlib'),fs=require('fs');for(const f of process.argv.slice(1)){const b=fs.readFileSync(f);\
        console.log(b.length,z.gzipSync(b,{level:9}).length,\
        z.brotliCompressSync(b,{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}}).length)}";
    let output = Command::new("node")
        .arg("-e")
        .arg(script)
        .args(files)
        .current_dir(root)
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "measuring {}: {}",
            files.join(", "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let sizes: Vec<[u64; 3]> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let numbers: Vec<u64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            numbers.try_into().ok()
        })
        .collect();
    match sizes.len() == files.len() {
        true => Ok(sizes),
        false => Err("node printed fewer sizes than files".to_owned()),
    }
}

/// `cargo xtask train-topics --cv-only`, run as a child of this same binary so that its
/// output can be read: the cross-validation table it prints, and its fold model's size and
/// the thresholds it chose as a second table.
fn topics_cv(root: &Path, _quick: bool) -> Result<Vec<Block>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding xtask's own binary: {e}"))?;
    let output = capture(root, &exe.to_string_lossy(), &["train-topics", "--cv-only"], false)?;
    let scores = tables(&output)?;
    // `a fold's model: 2773 terms, 3727 weights, 25946 bytes, 13988 brotli`
    let model = output
        .lines()
        .find_map(|line| line.strip_prefix("a fold's model: "))
        .ok_or("train-topics printed no `a fold's model:` line")?;
    let numbers: Vec<u64> =
        model.split(", ").filter_map(|part| part.split(' ').next()?.parse().ok()).collect();
    let [terms, weights, bytes, brotli] = numbers[..] else {
        return Err(format!("unexpected model line: {model}"));
    };
    let thresholds = output
        .lines()
        .find_map(|line| line.strip_prefix("thresholds: "))
        .ok_or("train-topics printed no `thresholds:` line")?;
    let body = format!(
        "{scores}\n\n| a fold's model | terms | weights | raw | brotli 11 | decision thresholds (chosen by the CV) |\n\
         |---|---:|---:|---:|---:|---|\n| `i8`, L1 | {} | {} | {} B | {} B | {thresholds} |",
        thousands(terms),
        thousands(weights),
        thousands(bytes),
        thousands(brotli)
    );
    Ok(vec![Block { marker: "topics-cv", command: "cargo xtask train-topics --cv-only".to_owned(), body }])
}

/// The "Machine" block: what the figures were measured on, read when the run starts.
fn machine_block(root: &Path, quick: bool) -> (&'static str, String) {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")?.split_once(':').map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown (no model name in /proc/cpuinfo)".to_owned());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:")?.trim().strip_suffix(" kB")?.parse::<f64>().ok())
        .map_or_else(|| "unknown".to_owned(), |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let load = fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned());
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let package_version = |name: &str| -> String {
        let path = root.join("node_modules").join(name).join("package.json");
        fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|json| json["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("unknown (no {})", path.display()))
    };
    let rows = [
        ("CPU", format!("{cpu}, {} cores (`nproc`)", version_of(root, "nproc", &[]))),
        ("memory", memory),
        ("load average when the run started (1, 5, 15 min)", load),
        ("kernel", version_of(root, "uname", &["-srm"])),
        ("Rust", version_of(root, "rustc", &["--version"])),
        ("Node.js", version_of(root, "node", &["--version"])),
        ("Chromium", version_of(root, &chromium, &["--version"])),
        ("workerd (npm `workerd`)", package_version("workerd")),
        ("Miniflare", package_version("miniflare")),
    ];
    let mut body = vec![
        format!(
            "*Written by `cargo xtask bench` on {} UTC{}; each table below names its own run and date.*",
            utc_date(),
            if quick { QUICK_NOTE } else { "" }
        ),
        String::new(),
        "| | |".to_owned(),
        "|---|---|".to_owned(),
    ];
    body.extend(rows.iter().map(|(what, value)| format!("| {what} | {value} |")));
    ("machine", body.join("\n"))
}

/// The first line `program args` prints, or why there is none (the block says so rather
/// than failing the run: a missing Chromium only matters to the browser benchmarks).
fn version_of(root: &Path, program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).current_dir(root).stderr(Stdio::null()).output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or("").trim().to_owned()
        }
        Ok(output) => format!("unknown (`{}` failed: {})", crate::command_text(program, args), output.status),
        Err(e) => format!("unknown (`{program}`: {e})"),
    }
}

/// Today's date in UTC, `YYYY-MM-DD`, from the system clock (no date crate for one line):
/// Howard Hinnant's `civil_from_days`.
fn utc_date() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// `2834669` → `2,834,669`, as the hand-written tables write numbers.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_only_between_markers() {
        let document = "intro\n<!-- bench:a -->\nold\ntable\n<!-- /bench:a -->\nprose\n";
        let expected = "intro\n<!-- bench:a -->\n\nnew\n\n<!-- /bench:a -->\nprose\n";
        assert_eq!(splice(document, "a", "new\n").unwrap(), expected);
        assert_eq!(splice(expected, "a", "new").unwrap(), expected);
        let empty = "<!-- bench:a -->\n<!-- /bench:a -->\n";
        assert_eq!(splice(empty, "a", "x").unwrap(), "<!-- bench:a -->\n\nx\n\n<!-- /bench:a -->\n");
        assert!(splice(document, "b", "x").is_err());
        assert!(splice(&format!("{document}{document}"), "a", "x").is_err());
    }

    #[test]
    fn reads_criterion_times_on_one_or_two_lines() {
        let output = "decode/beacon, 20 events\n                        time:   [38.651 µs 38.856 µs 39.142 µs]\n\
                      \x20                change:\n                        time:   [+1.2964% +1.6201% +2.0312%] (p = 0.00 < 0.05)\n\
                      tags/50 audience rules  time:   [8.1947 µs 8.2998 µs 8.4362 µs]\n";
        let times = criterion_times(output);
        assert_eq!(times.len(), 2);
        assert_eq!(times["decode/beacon, 20 events"], [38_651.0, 38_856.0, 39_142.0]);
        assert_eq!(duration(times["tags/50 audience rules"][1]), "8.30 µs");
        assert_eq!(duration(1_440_000.0), "1.44 ms");
    }

    #[test]
    fn keeps_only_tables() {
        let output = "warming up\n| a | b |\n|---|---|\n| 1 | 2 |\n\nratio: 2×\n| c |\n";
        assert_eq!(tables(output).unwrap(), "| a | b |\n|---|---|\n| 1 | 2 |\n\n| c |");
        assert!(tables("no table").is_err());
    }

    #[test]
    fn dates_and_numbers() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(thousands(2_834_669), "2,834,669");
        assert_eq!(thousands(733), "733");
    }
}
