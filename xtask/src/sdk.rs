//! `cargo xtask build-sdk`: the browser SDK, in `sdk/dist/`. Two wasm modules: the SDK
//! (`portrait-sdk` → `portrait.wasm`, on the start-up path) and the interest module
//! (`portrait-sdk-interests` → `portrait-interests.wasm`, fetched after `ready`).
//!
//! 1. `cargo build --release --target wasm32-unknown-unknown` of both crates into their own
//!    target directory, with the standard library rebuilt for size, for the wasm MVP and the
//!    few later features every current browser has ([`FEATURES`]);
//! 2. for each: wasm-bindgen (as a library, pinned by Cargo.lock) with `--target web`, then
//!    binaryen's `wasm-opt -Oz` (npm `binaryen`; Debian's is too old, see TOOLCHAIN.md) and
//!    `wasm2js` of a copy lowered to the MVP: the fallback for pages whose CSP forbids
//!    compiling WebAssembly, and for browsers without those features;
//! 3. esbuild bundles `sdk/js/` with the glue: `portrait.js` (the script tag's file),
//!    `portrait-interests.js`, and the npm package in `dist/npm/`; the snippet is minified
//!    into `snippet.min.js`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{node_bin, output_of, run};

/// The two modules: crate, the file name wasm-bindgen's output takes from it, and the name
/// in `dist/`.
const MODULES: [(&str, &str, &str); 2] = [
    ("portrait-sdk", "portrait_sdk", "portrait"),
    ("portrait-sdk-interests", "portrait_sdk_interests", "portrait-interests"),
];

/// The wasm features beyond the MVP that the modules use: bulk memory (`memory.copy` and
/// `memory.fill` instead of compiled `memcpy`), sign extension and mutable globals. Every
/// browser with WebAssembly since 2021 has them (Safari 15); an older one fails to compile the
/// module, and the loader falls back to the wasm2js translation, which is made from a copy
/// lowered to the MVP. Not saturating float-to-int conversions: binaryen lowers them for
/// wasm2js with LLVM's out-of-range results (`INT_MIN`, 0), not Rust's saturating `as`, so
/// the fallback would read `Infinity` options differently (+0.3 KB brotli to keep them out).
const FEATURES: &[&str] = &["--enable-bulk-memory", "--enable-sign-ext", "--enable-mutable-globals"];

pub fn build(root: &Path) -> Result<PathBuf, String> {
    let target_dir = root.join("target/sdk");
    // The standard library rebuilt for size: panics abort at once (no message formatting, no
    // locations), and for the wasm MVP plus `FEATURES` (not reference types, which keeps
    // wasm-bindgen off externref tables). `-Z` flags on stable via RUSTC_BOOTSTRAP: the
    // usual way to build size-critical wasm; see BENCHMARKS.md for what it saves.
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--release", "--target", "wasm32-unknown-unknown"])
        .args(MODULES.iter().flat_map(|(package, _, _)| ["-p", package]))
        .args(["-Zbuild-std=std,panic_abort", "-Zbuild-std-features=optimize_for_size"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "RUSTFLAGS",
            "-Ctarget-cpu=mvp -Ctarget-feature=+bulk-memory,+sign-ext,+mutable-globals -Zlocation-detail=none -Zfmt-debug=none -Zunstable-options -Cpanic=immediate-abort",
        )
        .current_dir(root)
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err("building the SDK's wasm modules failed".into());
    }
    let dist = root.join("sdk/dist");
    let npm = dist.join("npm");
    fs::create_dir_all(&npm).map_err(|e| format!("{}: {e}", npm.display()))?;
    let esbuild = node_bin(root, "esbuild");
    let out = |name: &str| format!("--outfile={}", dist.join(name).display());
    let common = ["--bundle", "--minify", "--target=es2020", "--log-level=warning"];
    for (_, lib, name) in MODULES {
        let fallback = wasm_module(root, &target_dir, lib, &dist.join(format!("{name}.wasm")))?;
        let fallback = fallback.to_string_lossy();
        let global = format!("--global-name=__{}Wasm2js", name.replace('-', "_"));
        let script_fallback = [&*fallback, "--format=iife", &global, &out(&format!("{name}.wasm2js.js"))];
        let package_fallback = [&*fallback, "--format=esm", &out(&format!("npm/{name}.wasm2js.mjs"))];
        for args in [&script_fallback[..], &package_fallback] {
            run(root, &esbuild, &[args, &common[..]].concat())?;
        }
    }
    let script = ["sdk/js/script.js", "--format=iife", &out("portrait.js")];
    let script_interests = ["sdk/js/script-interests.js", "--format=iife", &out("portrait-interests.js")];
    // The npm entries import their wasm2js fallbacks, and the SDK the interest module, as
    // separate files: a bundler splits them off and fetches them only when needed.
    let package = [
        "sdk/js/npm.js",
        "--format=esm",
        "--loader:.wasm=binary",
        "--external:./portrait.wasm2js.mjs",
        "--external:./interests.js",
        &out("npm/index.js"),
    ];
    let package_interests = [
        "sdk/js/npm-interests.js",
        "--format=esm",
        "--loader:.wasm=binary",
        "--loader:.bin=binary",
        "--external:./portrait-interests.wasm2js.mjs",
        &out("npm/interests.js"),
    ];
    for args in [&script[..], &script_interests, &package, &package_interests] {
        run(root, &esbuild, &[args, &common[..]].concat())?;
    }
    run(root, &esbuild, &["sdk/js/snippet.js", "--minify", "--log-level=warning", &out("snippet.min.js")])?;
    // The topic model, fetched by the script tag's loader after `ready` (the npm package
    // inlines it in `interests.js`).
    fs::copy(root.join("core/topics/model.bin"), dist.join("portrait-topics.bin"))
        .map_err(|e| format!("core/topics/model.bin: {e}"))?;
    for file in ["package.json", "index.d.ts", "README.md"] {
        fs::copy(root.join("sdk/npm").join(file), npm.join(file))
            .map_err(|e| format!("sdk/npm/{file}: {e}"))?;
    }
    let size = |name: &str| fs::metadata(dist.join(name)).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: SDK built in {}: portrait.js {} B, portrait.wasm {} B, portrait-interests.wasm {} B, snippet {} B",
        dist.display(),
        size("portrait.js"),
        size("portrait.wasm"),
        size("portrait-interests.wasm"),
        size("snippet.min.js")
    );
    Ok(dist)
}

/// wasm-bindgen, `wasm-opt -Oz` into `wasm`, and `wasm2js`; answers the fallback's path.
/// The glue (`target/sdk/bindgen/{lib}.js`) also exports what the fallback needs.
fn wasm_module(root: &Path, target_dir: &Path, lib: &str, wasm: &Path) -> Result<PathBuf, String> {
    let bindgen_out = target_dir.join("bindgen");
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(target_dir.join(format!("wasm32-unknown-unknown/release/{lib}.wasm")))
        .typescript(false);
    bindgen.web(true).map_err(|e| format!("wasm-bindgen: {e}"))?;
    bindgen.generate(&bindgen_out).map_err(|e| format!("wasm-bindgen: {e:#}"))?;
    let raw = bindgen_out.join(format!("{lib}_bg.wasm"));
    let (raw, optimised) = (raw.to_string_lossy(), wasm.to_string_lossy());
    let wasm_opt = node_bin(root, "wasm-opt");
    // Also renames every import (now all from module `a`) and export to one or two letters,
    // and prints the renaming, which `short_names` applies to the glue: wasm-bindgen's names
    // carry 16-hex-digit hashes (~1 KB brotli in the wasm, more in the glue).
    // Functions with one caller are inlined only up to 40 instructions: a bigger wasm, but
    // fewer huge bodies, and 1 KB less after brotli (measured from 0 to unlimited; BENCHMARKS.md).
    let minify = [
        "-Oz",
        "--one-caller-inline-max-function-size=40",
        "--minify-imports-and-exports-and-modules",
        "--strip-debug",
        "--strip-producers",
    ];
    let renaming =
        output_of(root, &wasm_opt, &[&minify[..], FEATURES, &[&raw, "-o", &optimised]].concat(), false)?;
    let glue = bindgen_out.join(format!("{lib}.js"));
    edit(&glue, |glue| short_names(glue, &renaming))?;
    // wasm2js translates only the MVP: lower the features first.
    let mvp = target_dir.join(format!("{lib}.mvp.wasm"));
    let mvp = mvp.to_string_lossy();
    let lowering = ["--llvm-memory-copy-fill-lowering", "--signext-lowering"];
    run(root, &wasm_opt, &[FEATURES, &lowering, &[&optimised, "-o", &mvp]].concat())?;
    let fallback = target_dir.join(format!("{lib}.wasm2js.mjs"));
    run(
        root,
        &node_bin(root, "wasm2js"),
        &["-Oz", "--enable-mutable-globals", &mvp, "-o", &fallback.to_string_lossy()],
    )?;
    edit(&fallback, instantiable)?;
    edit(&glue, |glue| {
        Ok(format!(
            "{glue}\n// For the wasm2js fallback (added by xtask).\nexport {{ __wbg_get_imports, __wbg_finalize_init }};\n"
        ))
    })?;
    Ok(fallback)
}

/// Makes wasm-bindgen's glue use the short names `wasm-opt
/// --minify-imports-and-exports-and-modules` gave the module's imports and exports; `renaming`
/// is what it printed: `{"imports": [[module, name, short], …], "exports": [[name, short], …]}`.
///
/// - Exports: the glue reads them as `wasm.NAME` (a glue that read one otherwise would fail
///   every SDK test at once).
/// - Imports of the glue's own object (`import0`, wasm-bindgen's functions): renamed where
///   they are defined, after the exports (so `wasm.__wbindgen_malloc` is gone before an
///   import of a similar name is looked for), each matched as a whole identifier.
/// - Imports straight from a snippet (`import * as importN from "./snippets/…"`): added to
///   that object under their short names.
///
/// `__wbg_get_imports` then answers `{a: import0}`. A glue import not found to rename is an
/// error, not a module that fails to link.
fn short_names(mut glue: String, renaming: &str) -> Result<String, String> {
    let renaming: serde_json::Value =
        serde_json::from_str(renaming).map_err(|e| format!("wasm-opt's renaming: {e}"))?;
    let list = |key: &str| renaming[key].as_array().cloned().unwrap_or_default();
    let strings = |entry: &serde_json::Value| -> Vec<String> {
        entry.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    for export in list("exports") {
        let [name, short] = &strings(&export)[..] else { return Err(format!("renaming: {export}")) };
        // Exports the glue does not read (wasm-bindgen's abort globals) are no matter.
        glue = replace_name(&glue, &format!("wasm.{name}"), &format!("wasm.{short}")).0;
    }
    // The glue's `return { __proto__: null, "MODULE": importN, … };` in `__wbg_get_imports`.
    let start = glue
        .find("    return {\n        __proto__: null,\n        \"./")
        .ok_or("glue changed: no import object")?;
    let end = start
        + glue[start..].find("\n    };").ok_or("glue changed: import object unclosed")?
        + "\n    };".len();
    let objects: Vec<(String, String)> = glue[start..end]
        .lines()
        .filter_map(|line| {
            let (module, object) = line.trim().trim_end_matches(',').split_once(": ")?;
            Some((module.trim_matches('"').to_owned(), object.to_owned()))
        })
        .collect();
    let object_of =
        |module: &str| objects.iter().find(|(m, _)| m == module).map(|(_, object)| object.clone());
    let mut from_snippets = Vec::new();
    let mut own = Vec::new();
    for import in list("imports") {
        let [module, name, short] = &strings(&import)[..] else { return Err(format!("renaming: {import}")) };
        match object_of(module).as_deref() {
            Some("import0") => own.push((name.clone(), short.clone())),
            Some(object) => from_snippets.push(format!("{short}: {object}.{name}")),
            None => return Err(format!("glue changed: no import object for {module}")),
        }
    }
    let imports = match from_snippets.is_empty() {
        true => "    return { a: import0 };".to_owned(),
        false => format!("    return {{ a: Object.assign(import0, {{ {} }}) }};", from_snippets.join(", ")),
    };
    glue.replace_range(start..end, &imports);
    for (name, short) in own {
        let renamed;
        (glue, renamed) = replace_name(&glue, &name, &short);
        if renamed == 0 {
            return Err(format!("glue changed: {name} not found"));
        }
    }
    Ok(glue)
}

/// `text` with every `name` that is not part of a longer identifier replaced by `short`, and
/// how many were.
fn replace_name(text: &str, name: &str, short: &str) -> (String, usize) {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let (mut out, mut replaced) = (String::with_capacity(text.len()), 0);
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let before = match at {
            0 => out.chars().last(),
            _ => rest[..at].chars().last(),
        };
        let after = rest[at + name.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(ident) || after.is_some_and(ident) {
            out.push_str(name);
        } else {
            out.push_str(short);
            replaced += 1;
        }
        rest = &rest[at + name.len()..];
    }
    out.push_str(rest);
    (out, replaced)
}

fn edit(path: &Path, change: impl FnOnce(String) -> Result<String, String>) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::write(path, change(text)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// wasm2js writes a module that imports the glue (and snippets) by name and instantiates itself at once;
/// the loaders need a function to call with the glue's imports instead.
///
/// Also makes memory growth detach the old buffer (`ArrayBuffer.prototype.transfer`, where the
/// browser has it): wasm-bindgen's glue caches views of the memory and re-reads
/// `memory.buffer` only when its view is detached; wasm2js's own growth copies into a new
/// buffer and leaves the old one intact, so without this the glue would keep writing to the
/// old memory after the first growth.
fn instantiable(module: String) -> Result<String, String> {
    // Its first lines import the glue and the `inline_js` snippets the module calls directly;
    // the loaders pass all of them in (`__wbg_get_imports`).
    let mut body = module.as_str();
    while body.starts_with("import ") {
        body = body.split_once('\n').map_or("", |(_, rest)| rest);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of wasm-bindgen 0.2.129's glue, cut down to what `short_names` touches.
    const GLUE: &str = r#"import * as import1 from "./snippets/m-0123/inline0.js"
function __wbg_get_imports() {
    const import0 = {
        __proto__: null,
        __wbg_after_0123456789abcdef: function(arg0) { after(arg0); },
        __wbg_after_0123456789abcdef_extra: function() {},
    };
    return {
        __proto__: null,
        "./m_bg.js": import0,
        "./snippets/m-0123/inline0.js": import1,
    };
}
function run() { wasm.sdk_set(1); wasm.sdk_setConsent(2); return wasm.memory; }
"#;

    #[test]
    fn the_glue_takes_the_short_names_and_one_import_object() {
        let renaming = r#"{"imports": [["./m_bg.js", "__wbg_after_0123456789abcdef", "A"],
                                       ["./snippets/m-0123/inline0.js", "local_available", "B"]],
                           "exports": [["sdk_set", "a"], ["sdk_setConsent", "b"], ["memory", "c"], ["unused", "d"]]}"#;
        let glue = short_names(GLUE.to_owned(), renaming).unwrap();
        for expected in [
            "        A: function(arg0) { after(arg0); },",
            // A longer name that starts with a renamed one keeps its name.
            "        __wbg_after_0123456789abcdef_extra: function() {},",
            "    return { a: Object.assign(import0, { B: import1.local_available }) };\n}",
            "wasm.a(1); wasm.b(2); return wasm.c;",
        ] {
            assert!(glue.contains(expected), "no `{expected}` in:\n{glue}");
        }
        assert!(!glue.contains("\"./m_bg.js\""));
    }

    #[test]
    fn a_glue_import_it_cannot_find_is_an_error() {
        let renaming = r#"{"imports": [["./m_bg.js", "__wbg_gone_0123456789abcdef", "A"]], "exports": []}"#;
        assert_eq!(
            short_names(GLUE.to_owned(), renaming).unwrap_err(),
            "glue changed: __wbg_gone_0123456789abcdef not found"
        );
        let renaming = r#"{"imports": [["./elsewhere.js", "f", "A"]], "exports": []}"#;
        assert!(short_names(GLUE.to_owned(), renaming).unwrap_err().contains("no import object"));
    }
}
