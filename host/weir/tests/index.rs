//! The plugin index end to end: bundles published into a directory served
//! over HTTP by a real web server (Python's `http.server`), searched,
//! installed into a store with their signatures and digests checked, and
//! named by requirement in a pipeline that pins them in `weir.lock`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use weir_plugin::bundle::{Bundle, SecretKey};
use weir_tests::components;

use crate::pipeline::{bundle_as, scratch_dir};
use crate::weir;

/// `python3 -m http.server` on a free port, serving `dir`.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = crate::admin::free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (the test command installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `weir plugin ARGS` with the store at `store`; asserts the exit
/// code and returns stdout and stderr.
fn plugin(store: &Path, args: &[&str], code: i32) -> String {
    let out = weir()
        .arg("plugin")
        .args(args)
        .env("WEIR_PLUGIN_STORE", store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out));
    text(&out)
}

struct Rig {
    dir: PathBuf,
    index: PathBuf,
    store: PathBuf,
    key: SecretKey,
}

impl Rig {
    fn new() -> Rig {
        let dir = scratch_dir("weir-index-test");
        Rig {
            index: dir.join("index"),
            store: dir.join("store"),
            key: SecretKey::generate().unwrap(),
            dir,
        }
    }

    /// A signed bundle of `component` as `filter` `version`.
    fn bundle(&self, version: &str, component: &str) -> PathBuf {
        let path = self.dir.join(format!("filter-{version}.weirpkg"));
        bundle_as(
            "filter",
            "transformer",
            component,
            version,
            &self.key,
            &path,
        );
        path
    }

    fn publish(&self, version: &str) {
        let bundle = self.bundle(version, components::FILTER);
        let out = plugin(
            &self.store,
            &[
                "publish",
                bundle.to_str().unwrap(),
                "--index",
                self.index.to_str().unwrap(),
            ],
            0,
        );
        assert!(
            out.contains(&format!("published filter {version}")),
            "{out}"
        );
    }

    fn install(&self, url: &str, req: &str, key: &str, code: i32) -> String {
        plugin(
            &self.store,
            &["install", req, "--index", url, "--trusted-key", key],
            code,
        )
    }

    fn installed(&self, version: &str) -> bool {
        self.store
            .join(format!("filter/{version}/filter-{version}.weirpkg"))
            .is_file()
    }

    /// `weir validate` of a pipeline naming `filter@^1`; the lock file's
    /// text after it.
    fn validate(&self, code: i32) -> (String, String) {
        let config = self.dir.join("pipeline.toml");
        std::fs::write(
            &config,
            format!(
                r#"name = "indexed"
state_dir = "state"
[source]
kind = "postgres"
host = "127.0.0.1"
user = "postgres"
database = "db"
[[plugins]]
name = "keep"
plugin = "filter@^1"
[[sinks]]
name = "out"
kind = "stdout"
[trust]
keys = ["{}"]
"#,
                self.key.public()
            ),
        )
        .unwrap();
        let out = weir()
            .arg("validate")
            .arg(&config)
            .env("WEIR_PLUGIN_STORE", &self.store)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", text(&out));
        let lock = std::fs::read_to_string(self.dir.join("weir.lock")).unwrap_or_default();
        (text(&out), lock)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn plugins_are_published_searched_installed_upgraded_and_pinned() {
    let rig = Rig::new();
    for v in ["1.0.0", "1.1.0", "1.2.0"] {
        rig.publish(v);
    }
    // Publishing the same version again changes nothing; another build
    // under a published version is refused.
    let again = rig.bundle("1.0.0", components::FILTER);
    let out = plugin(
        &rig.store,
        &[
            "publish",
            again.to_str().unwrap(),
            "--index",
            rig.index.to_str().unwrap(),
        ],
        0,
    );
    assert!(out.contains("already published, unchanged"), "{out}");
    let other = rig.bundle("1.0.0", components::MISBEHAVE);
    let out = plugin(
        &rig.store,
        &[
            "publish",
            other.to_str().unwrap(),
            "--index",
            rig.index.to_str().unwrap(),
        ],
        2,
    );
    assert!(out.contains("a published version never changes"), "{out}");
    plugin(
        &rig.store,
        &[
            "yank",
            "filter@1.2.0",
            "--index",
            rig.index.to_str().unwrap(),
        ],
        0,
    );

    let server = Server::start(&rig.index);
    let key = rig.key.public().to_string();
    let found = plugin(&rig.store, &["search", "filt", "--index", &server.url], 0);
    assert!(
        found.starts_with(&format!(
            "filter 1.1.0 (transformer, contract 0.1.0) signed by {key}"
        )),
        "{found}"
    );

    // Installed by exact version, then upgraded within ^1: the yanked
    // 1.2.0 is skipped.
    let out = rig.install(&server.url, "filter@1.0.0", &key, 0);
    assert!(out.starts_with("installed filter 1.0.0 (sha256:"), "{out}");
    let (_, lock) = rig.validate(0);
    assert!(
        lock.contains("requirement = \"filter@^1\"") && lock.contains("version = \"1.0.0\""),
        "{lock}"
    );
    let out = rig.install(&server.url, "filter@^1", &key, 0);
    assert!(out.starts_with("installed filter 1.1.0"), "{out}");
    assert!(!rig.installed("1.2.0"));
    // The lock file keeps the pipeline on what it pinned until its entry
    // goes.
    let (_, lock) = rig.validate(0);
    assert!(lock.contains("version = \"1.0.0\""), "{lock}");
    std::fs::remove_file(rig.dir.join("weir.lock")).unwrap();
    let (_, lock) = rig.validate(0);
    assert!(lock.contains("version = \"1.1.0\""), "{lock}");

    // The store's file changed after it was pinned: refused at admission.
    let changed = rig.bundle("1.1.0", components::MISBEHAVE);
    std::fs::copy(
        &changed,
        rig.store.join("filter/1.1.0/filter-1.1.0.weirpkg"),
    )
    .unwrap();
    let (out, _) = rig.validate(1);
    assert!(out.contains("weir.lock pins sha256:"), "{out}");

    // A signer the installer does not trust.
    let stranger = SecretKey::generate().unwrap().public().to_string();
    let out = rig.install(&server.url, "filter@1.1.0", &stranger, 2);
    assert!(out.contains("not among the trusted keys"), "{out}");

    // A bundle changed after it was signed.
    rig.publish("1.3.0");
    let served = rig.index.join("bundles/filter/filter-1.3.0.weirpkg");
    let mut tampered = Bundle::read(&served).unwrap();
    tampered.component.extend_from_slice(b"\0\0");
    tampered.write(&served).unwrap();
    let out = rig.install(&server.url, "filter@1.3.0", &key, 2);
    assert!(
        out.contains("refused") && out.contains("changed after the bundle was packed"),
        "{out}"
    );
    assert!(!rig.installed("1.3.0"));

    // A bundle well signed by the trusted key, but not the one the index
    // lists.
    rig.publish("1.4.0");
    let swapped = rig.bundle("1.4.0", components::MISBEHAVE);
    std::fs::copy(
        &swapped,
        rig.index.join("bundles/filter/filter-1.4.0.weirpkg"),
    )
    .unwrap();
    let out = rig.install(&server.url, "filter@1.4.0", &key, 2);
    assert!(out.contains("is not the one published"), "{out}");
    assert!(!rig.installed("1.4.0"));

    // Nothing matches: the versions there are, yanked ones marked.
    let out = rig.install(&server.url, "filter@^2", &key, 2);
    assert!(
        out.contains("it has: 1.0.0, 1.1.0, 1.2.0 (yanked), 1.3.0, 1.4.0"),
        "{out}"
    );
    // No trusted key at all.
    let out = plugin(
        &rig.store,
        &["install", "filter", "--index", &server.url],
        2,
    );
    assert!(out.contains("say whose signatures to trust"), "{out}");
}

#[test]
fn a_pipeline_runs_a_plugin_from_the_store_stamped_with_its_version() {
    let rig = Rig::new();
    rig.publish("1.1.0");
    let key = rig.key.public().to_string();
    rig.install(rig.index.to_str().unwrap(), "filter@1.1.0", &key, 0);
    let setup = crate::pipeline::Setup::new("CREATE TABLE items (id bigint PRIMARY KEY)");
    let config = setup.config_with_sink(
        "snapshot = \"never\"",
        "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"",
        &format!(
            "[[plugins]]\nname = \"keep\"\nplugin = \"filter@^1\"\n\
             config = {{ mode = \"drop\", ops = [\"truncate\"] }}\n\
             [trust]\nkeys = [\"{key}\"]\n"
        ),
    );
    let child = crate::pipeline::Running(Some(
        weir()
            .args(["run", "--config"])
            .arg(&config)
            .env("WEIR_PLUGIN_STORE", &rig.store)
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(setup.dir.join("weir.log")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    ));
    setup.wait_for_slot();
    setup.sql("INSERT INTO items VALUES (1)");
    let out = setup.dir.join("out");
    crate::pipeline::wait_until(
        "the row",
        Duration::from_secs(60),
        || crate::pipeline::count_output(&out) >= 1,
        &setup,
    );
    let events: Vec<_> = crate::pipeline::read_output(&out)
        .into_values()
        .flatten()
        .collect();
    assert!(
        events[0]["source"]["plugins"]
            .as_str()
            .unwrap()
            .starts_with("keep=filter@1.1.0+"),
        "{}",
        events[0]
    );
    let lock = std::fs::read_to_string(setup.dir.join("weir.lock")).unwrap();
    assert!(lock.contains("version = \"1.1.0\""), "{lock}");
    child.terminate(&setup);
}
