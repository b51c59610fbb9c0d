//! `weir demo` end to end, on each database and sink it offers: the
//! README's first command must work on a fresh machine.

use std::path::Path;

use weir_tests::components;

use crate::{succeeds, weir};

fn demo(source: &str, sink: &str) -> String {
    let plugins = Path::new(components::PII_MASK).parent().unwrap();
    assert!(
        plugins.join("table_router.wasm").is_file(),
        "the build script puts the bundled plugins side by side"
    );
    let out = succeeds(
        weir()
            .args(["demo", "--seconds", "2", "--source", source, "--sink", sink])
            .arg("--plugins")
            .arg(plugins),
    );
    let captured = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("all "))
        .unwrap_or_else(|| panic!("no summary line:\n{out}"));
    // "all N events captured (7000 snapshot rows + M changes)"
    let numbers: Vec<u64> = captured
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{captured}");
    assert_eq!(numbers[0], numbers[1] + numbers[2], "{captured}");
    assert!(numbers[2] > 0, "the workload made changes: {captured}");
    assert!(out.contains("customers-eu"), "routed output:\n{out}");
    assert!(
        !out.contains("4111 1111 1111 1111"),
        "the sample shows masked cards only"
    );
    out
}

#[test]
fn demo_on_postgres() {
    demo("postgres", "files");
}

#[test]
fn demo_into_kafka() {
    let out = demo("postgres", "kafka");
    assert!(out.contains("demo.customers-eu"), "{out}");
    assert!(out.contains("key={\"id\":"), "records read back:\n{out}");
    assert!(out.contains("Stopped the Kafka-protocol broker"), "{out}");
}

#[test]
fn demo_on_mariadb() {
    demo("mariadb", "files");
}

#[test]
fn demo_active_active() {
    let plugins = Path::new(components::RESOLVERS).parent().unwrap();
    let out = succeeds(
        weir()
            .args(["demo", "--active-active", "--seconds", "2"])
            .arg("--plugins")
            .arg(plugins),
    );
    assert!(
        out.contains("conflicts, each settled by the resolver plugin"),
        "{out}"
    );
    assert!(out.contains("update_differs   merged"), "{out}");
    assert!(
        out.contains("converged: both regions hold identical rows"),
        "{out}"
    );
}
