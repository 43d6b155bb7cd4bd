//! `cargo xtask build-sdk`: the browser SDK, in `sdk/dist/`.
//!
//! 1. `cargo build -p portrait-sdk --release --target wasm32-unknown-unknown` into its own
//!    target directory, with the standard library rebuilt for size and for the wasm MVP
//!    feature set (which `wasm2js` can translate);
//! 2. wasm-bindgen (as a library, pinned by Cargo.lock) with `--target web`;
//! 3. binaryen's `wasm-opt -Oz` (npm `binaryen`; Debian's is too old, see TOOLCHAIN.md) →
//!    `portrait.wasm`, and `wasm2js` → `portrait.wasm.js`, the fallback for pages whose CSP
//!    forbids compiling WebAssembly;
//! 4. esbuild bundles `sdk/js/` with the glue: `portrait.js` (the script tag's file) and the
//!    npm package in `dist/npm/`; the snippet is minified into `snippet.min.js`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{node_bin, run};

pub fn build(root: &Path) -> Result<PathBuf, String> {
    let target_dir = root.join("target/sdk");
    // The standard library rebuilt for size: panics abort at once (no message formatting, no
    // locations), and for the wasm MVP feature set, which `wasm2js` translates and which
    // keeps wasm-bindgen off externref tables. `-Z` flags on stable via RUSTC_BOOTSTRAP: the
    // usual way to build size-critical wasm; see BENCHMARKS.md for what it saves.
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--release", "-p", "portrait-sdk", "--target", "wasm32-unknown-unknown"])
        .args(["-Zbuild-std=std,panic_abort", "-Zbuild-std-features=optimize_for_size"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "RUSTFLAGS",
            "-Ctarget-cpu=mvp -Zlocation-detail=none -Zfmt-debug=none -Zunstable-options -Cpanic=immediate-abort",
        )
        .current_dir(root)
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err("building portrait-sdk for wasm32 failed".into());
    }
    let bindgen_out = target_dir.join("bindgen");
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen.input_path(target_dir.join("wasm32-unknown-unknown/release/portrait_sdk.wasm")).typescript(false);
    bindgen.web(true).map_err(|e| format!("wasm-bindgen: {e}"))?;
    bindgen.generate(&bindgen_out).map_err(|e| format!("wasm-bindgen: {e:#}"))?;
    let dist = root.join("sdk/dist");
    fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    let bin = |name: &str| node_bin(root, name);
    let wasm = dist.join("portrait.wasm");
    let (raw, optimised) = (bindgen_out.join("portrait_sdk_bg.wasm"), wasm.to_string_lossy().into_owned());
    let raw = raw.to_string_lossy();
    run(root, &bin("wasm-opt"), &["-Oz", "--strip-debug", "--strip-producers", &raw, "-o", &optimised])?;
    let fallback = target_dir.join("portrait.wasm2js.mjs");
    run(root, &bin("wasm2js"), &["-Oz", &optimised, "-o", &fallback.to_string_lossy()])?;
    edit(&fallback, instantiable)?;
    edit(&bindgen_out.join("portrait_sdk.js"), |glue| {
        Ok(format!(
            "{glue}\n// For the wasm2js fallback (added by xtask).\nexport {{ __wbg_get_imports, __wbg_finalize_init }};\n"
        ))
    })?;
    let npm = dist.join("npm");
    fs::create_dir_all(&npm).map_err(|e| format!("{}: {e}", npm.display()))?;
    let esbuild = bin("esbuild");
    let out = |name: &str| format!("--outfile={}", dist.join(name).display());
    let common = ["--bundle", "--minify", "--target=es2020", "--log-level=warning"];
    let script = ["sdk/js/script.js", "--format=iife", &out("portrait.js")];
    let script_fallback = [
        &*fallback.to_string_lossy(),
        "--format=iife",
        "--global-name=__portraitWasm2js",
        &out("portrait.wasm2js.js"),
    ];
    let package = [
        "sdk/js/npm.js",
        "--format=esm",
        "--loader:.wasm=binary",
        "--loader:.bin=binary",
        "--external:./portrait.wasm2js.mjs",
        &out("npm/index.js"),
    ];
    let package_fallback = [&*fallback.to_string_lossy(), "--format=esm", &out("npm/portrait.wasm2js.mjs")];
    for args in [&script[..], &script_fallback, &package, &package_fallback] {
        run(root, &esbuild, &[args, &common[..]].concat())?;
    }
    run(root, &esbuild, &["sdk/js/snippet.js", "--minify", "--log-level=warning", &out("snippet.min.js")])?;
    // The topic model, fetched by the script tag's loader after `ready` (the npm package
    // inlines it).
    fs::copy(root.join("core/topics/model.bin"), dist.join("portrait-topics.bin"))
        .map_err(|e| format!("core/topics/model.bin: {e}"))?;
    for file in ["package.json", "index.d.ts", "README.md"] {
        fs::copy(root.join("sdk/npm").join(file), npm.join(file))
            .map_err(|e| format!("sdk/npm/{file}: {e}"))?;
    }
    let size = |name: &str| fs::metadata(dist.join(name)).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: SDK built in {}: portrait.js {} B, portrait.wasm {} B, snippet {} B",
        dist.display(),
        size("portrait.js"),
        size("portrait.wasm"),
        size("snippet.min.js")
    );
    Ok(dist)
}

fn edit(path: &Path, change: impl FnOnce(String) -> Result<String, String>) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::write(path, change(text)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// wasm2js writes a module that imports the glue by name and instantiates itself at once;
/// the loaders need a function to call with the glue's imports instead.
///
/// Also makes memory growth detach the old buffer (`ArrayBuffer.prototype.transfer`, where the
/// browser has it): wasm-bindgen's glue caches views of the memory and re-reads
/// `memory.buffer` only when its view is detached; wasm2js's own growth copies into a new
/// buffer and leaves the old one intact, so without this the glue would keep writing to the
/// old memory after the first growth.
fn instantiable(module: String) -> Result<String, String> {
    let body = module.split_once('\n').map_or("", |(_, rest)| rest);
    let end = body.find("var retasmFunc = asmFunc(").ok_or("wasm2js output changed: no `retasmFunc`")?;
    let copying_growth = "var newBuffer = new ArrayBuffer(newPages << 16);\n   var newHEAP8 = new Int8Array(newBuffer);\n   newHEAP8.set(HEAP8);";
    let detaching_growth = "var newBuffer = buffer.transfer ? buffer.transfer(newPages << 16) : new ArrayBuffer(newPages << 16);\n   if (!buffer.transfer) new Int8Array(newBuffer).set(HEAP8);";
    if !body.contains(copying_growth) {
        return Err("wasm2js output changed: no memory growth to patch".to_owned());
    }
    Ok(format!(
        "{}export {{ asmFunc as instantiate }};\n",
        body[..end].replacen(copying_growth, detaching_growth, 1)
    ))
}
