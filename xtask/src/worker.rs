//! `cargo xtask build-worker`: what `worker-build` does, without downloading tools.
//!
//! 1. `cargo build -p portrait-collector --profile worker --target wasm32-unknown-unknown`;
//! 2. wasm-bindgen (as a library, so Cargo.lock pins it to the collector's `wasm-bindgen`),
//!    `--target module`, into `collector/build/index.js` + `index_bg.wasm`;
//! 3. binaryen's `wasm-opt -O3` (npm `binaryen`, installed first) over the module, keeping
//!    function names for profiles: 5 % less CPU per request in `bench/collector-load.mjs`
//!    than LLVM's output alone;
//! 4. `collector/js/entry.mjs` (the Workers entrypoint and Durable Object classes) next to it.
//!
//! wrangler (`main = "build/entry.mjs"`) and Miniflare load the result as ES modules.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{node_bin, run};

pub fn build(root: &Path) -> Result<PathBuf, String> {
    run(
        root,
        "cargo",
        &[
            "build",
            "--quiet",
            "--profile",
            "worker",
            "-p",
            "portrait-collector",
            "--target",
            "wasm32-unknown-unknown",
        ],
    )?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let wasm = target_dir.join("wasm32-unknown-unknown/worker/portrait_collector.wasm");
    let out = root.join("collector/build");
    if out.exists() {
        fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&wasm)
        .out_name("index")
        .typescript(false)
        .demangle(true)
        .omit_default_module_path(false)
        .reset_state_function(true)
        .force_enable_abort_handler(true);
    bindgen.module(true).map_err(|e| format!("wasm-bindgen: {e}"))?;
    bindgen.generate(&out).map_err(|e| format!("wasm-bindgen: {e:#}"))?;
    // wasm-bindgen imports the module in the source phase (`import source`); workerd accepts
    // it, but the plain import is what wrangler's bundler and every runtime version take.
    let index = out.join("index.js");
    let glue = fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
    fs::write(&index, glue.replace("import source ", "import "))
        .map_err(|e| format!("{}: {e}", index.display()))?;
    let module = out.join("index_bg.wasm").to_string_lossy().into_owned();
    // The features rustc's wasm32 target emits (the module carries no features section).
    let features = [
        "--enable-exception-handling",
        "--enable-reference-types",
        "--enable-bulk-memory",
        "--enable-nontrapping-float-to-int",
        "--enable-sign-ext",
        "--enable-mutable-globals",
        "--enable-multivalue",
    ];
    let mut args = vec!["-O3", "--debuginfo", &module, "-o", &module];
    args.extend(features);
    run(root, &node_bin(root, "wasm-opt"), &args)?;
    fs::copy(root.join("collector/js/entry.mjs"), out.join("entry.mjs"))
        .map_err(|e| format!("entry.mjs: {e}"))?;
    let size = fs::metadata(out.join("index_bg.wasm")).map(|m| m.len()).unwrap_or(0);
    eprintln!("xtask: collector built in {} ({size} bytes of wasm)", out.display());
    Ok(out)
}
