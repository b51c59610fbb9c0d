//! The status page in a real browser: Debian's chromium, driven by
//! playwright-core (`tests/status_page.mjs`, run by Node.js), against a
//! `weir run` with `[admin]` under a steady load. Screenshots go to
//! `target/status-page/`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::admin::start_with_admin;
use crate::pipeline::{BlockingClient, Setup, terminate};

/// Where `scripts/test` installed playwright-core.
fn playwright() -> PathBuf {
    std::env::var_os("WEIR_PLAYWRIGHT_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| weir_tests::repo_root().join("target/tools/browser/node_modules"))
}

#[test]
fn the_status_page_shows_the_pipeline_live_in_a_browser() {
    let modules = playwright();
    assert!(
        modules.join("playwright-core").is_dir()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "playwright-core ({}) or /usr/bin/chromium is missing; scripts/test installs both",
        modules.display()
    );
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY, v text)");
    let (read, admin) = ("page-read-token-0123456789", "page-admin-token-0123456789");
    let (child, port, _) = start_with_admin(
        &setup,
        &format!("read_token = \"{read}\"\nadmin_token = \"{admin}\""),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = Arc::clone(&stop);
        let port = setup.server.port;
        std::thread::spawn(move || {
            let mut client = BlockingClient::connect(port, "db");
            let mut id = 0i64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                client
                    .execute("INSERT INTO items VALUES ($1, 'x')", &[&id])
                    .unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let shots = weir_tests::repo_root().join("target/status-page");
    std::fs::create_dir_all(&shots).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/status_page.mjs");
    // An ES module resolves packages from its own directory upwards, so it
    // runs from a copy next to the installed node_modules.
    let runner = modules.parent().unwrap().join("status_page.mjs");
    std::fs::copy(&script, &runner).unwrap();
    let out = Command::new("node")
        .arg(&runner)
        .env("WEIR_URL", format!("http://127.0.0.1:{port}"))
        .env("WEIR_READ", read)
        .env("WEIR_ADMIN", admin)
        .env("WEIR_SHOTS", &shots)
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    terminate(child, &setup);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\nweir log:\n{}", setup.log());
    assert!(
        text.contains("wrong token: The token was refused"),
        "{text}"
    );
    assert!(text.contains("paused: paused"), "{text}");
    assert!(text.trim_end().ends_with("OK"), "{text}");
    for shot in ["wrong-token", "streaming", "paused"] {
        assert!(
            shots.join(format!("status-page-{shot}.png")).is_file(),
            "{shot}"
        );
    }
}
