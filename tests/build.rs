//! Compiles the bundled plugins and the hostile test guests to Wasm
//! components from source, and exports their paths as `WEIR_WASM_<NAME>`
//! constants for the tests. A nested cargo with its own target directory
//! avoids waiting on the outer build's lock.

use std::path::PathBuf;

const COMPONENTS: &[&str] = &[
    "pii-mask",
    "filter",
    "table-router",
    "outbox-router",
    "resolvers",
    "misbehave",
    "net-client",
    "fs-reader",
    "refuse-router",
    "trap-resolver",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in [
        "wit",
        "sdk",
        "plugins",
        "tests/guests",
        "host/weir-core/src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    let req = weir_plugin_build::BuildRequest {
        manifest: root.join("Cargo.toml"),
        packages: COMPONENTS.iter().map(|s| s.to_string()).collect(),
        target_dir: Some(root.join("target").join("wasm")),
        release: true,
    };
    let built = match weir_plugin_build::build(&req) {
        Ok(b) => b,
        Err(e) => panic!("building the test components failed: {e}"),
    };
    for name in COMPONENTS {
        let b = built
            .iter()
            .find(|b| b.package == *name)
            .unwrap_or_else(|| panic!("no component was built for {name}"));
        let var = format!("WEIR_WASM_{}", name.to_uppercase().replace('-', "_"));
        println!("cargo:rustc-env={var}={}", b.wasm.display());
    }
}
