//! Active-active between PostgreSQL regions: one throwaway server per
//! region (`track_commit_timestamp = on`), a `weir run` per direction with
//! a `conflicts` section and the bundled resolvers, and every region
//! taking deliberately conflicting writes to the same rows while one
//! direction is killed with `kill -9` and restarted. After the writes stop
//! and the pipelines drain, every region must hold the same rows (compared
//! by a checksum of every row), each sink must have been handed exactly
//! the changes its source region made (no ping-pong), and with the counter
//! resolver every counter must equal the sum of the increments made
//! anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use weir_tests::{ThrowawayPostgres, components};

use crate::pipeline::{BlockingClient, scratch_dir};
use crate::weir;

/// Rows every region writes to: few, so that writes collide.
const SHARED_ROWS: i64 = 8;

struct Region {
    name: &'static str,
    server: ThrowawayPostgres,
}

impl Region {
    fn start(name: &'static str) -> Region {
        let server = ThrowawayPostgres::start(&[("track_commit_timestamp", "on")])
            .unwrap_or_else(|e| panic!("{e}"));
        server.psql("postgres", "CREATE DATABASE app").unwrap();
        server
            .psql(
                "app",
                &format!(
                    "CREATE TABLE items (id bigint PRIMARY KEY, v text NOT NULL, \
                       n bigint NOT NULL DEFAULT 0);
                     ALTER TABLE items REPLICA IDENTITY FULL;
                     INSERT INTO items SELECT i, 'seed', 0 FROM generate_series(1, {SHARED_ROWS}) i;"
                ),
            )
            .unwrap();
        Region { name, server }
    }

    fn sql(&self, sql: &str) -> String {
        self.server
            .psql("app", sql)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    /// A checksum of every row, and the rows themselves for a failure.
    fn checksum(&self) -> (String, String) {
        (
            self.sql("SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM items t")
                .trim()
                .to_owned(),
            self.sql("SELECT id, v, n FROM items ORDER BY id"),
        )
    }
}

/// One direction: `weir run` from `from` into `to`.
struct Direction {
    config: PathBuf,
    name: String,
    child: Option<Child>,
}

impl Direction {
    fn new(dir: &Path, from: &Region, to: &Region, resolver: &str) -> Direction {
        Direction::with_resolver(dir, from, to, components::RESOLVERS, resolver)
    }

    /// A direction whose resolver is the component at `path`.
    fn with_resolver(
        dir: &Path,
        from: &Region,
        to: &Region,
        path: &str,
        resolver: &str,
    ) -> Direction {
        let name = format!("{}-to-{}", from.name, to.name);
        let dir = dir.join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("pipeline.toml");
        std::fs::write(
            &config,
            format!(
                "name = \"{name}\"\nstate_dir = \"state\"\n\n\
                 [source]\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {from_port}\n\
                 user = \"postgres\"\ndatabase = \"app\"\ntables = [\"public.items\"]\n\
                 snapshot = \"never\"\n\n\
                 [[sinks]]\nname = \"{to_name}\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\n\
                 port = {to_port}\nuser = \"postgres\"\ndatabase = \"app\"\n\n\
                 [sinks.conflicts]\nregion = \"{to_name}\"\nsource_region = \"{from_name}\"\n\n\
                 [sinks.conflicts.resolver]\nname = \"resolver\"\npath = \"{path}\"\n\
                 config = {resolver}\n\n[trust]\nallow_unsigned = true\n",
                from_port = from.server.port,
                to_port = to.server.port,
                to_name = to.name,
                from_name = from.name,
            ),
        )
        .unwrap();
        let mut d = Direction {
            config,
            name,
            child: None,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.config.with_extension("log"))
            .unwrap();
        self.child = Some(
            weir()
                .args(["run", "--config"])
                .arg(&self.config)
                .env("WEIR_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }

    fn kill_9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn conflicts(&self) -> Vec<Json> {
        let path = self.config.parent().unwrap().join("state");
        let Ok(entries) = std::fs::read_dir(path) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("conflicts-"))
            .flat_map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect::<Vec<Json>>()
            })
            .collect()
    }
}

impl Drop for Direction {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// What the workload changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// `v` set to a value naming the region and the write.
    Values,
    /// `n = n + 1`, and every third write `v` as for `Values` instead.
    Increments,
}

/// Writes to the shared rows from every region at once until `stop`;
/// returns each region's number of writes (each a transaction changing
/// one row).
fn workload(regions: &[Region], writes: Writes, stop: Arc<AtomicBool>) -> Vec<u64> {
    let threads: Vec<_> = regions
        .iter()
        .enumerate()
        .map(|(r, region)| {
            let (port, name) = (region.server.port, region.name);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut client = BlockingClient::connect(port, "app");
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Each region walks the rows in its own order, so they
                    // meet on the same rows at the same moments.
                    let id = ((n * (r as u64 + 1) + r as u64) % SHARED_ROWS as u64 + 1) as i64;
                    let result = match writes {
                        Writes::Values => client.execute(
                            "UPDATE items SET v = $1 WHERE id = $2",
                            &[&format!("{name}-{n}"), &id],
                        ),
                        Writes::Increments if n % 3 == 2 => client.execute(
                            "UPDATE items SET v = $1 WHERE id = $2",
                            &[&format!("{name}-{n}"), &id],
                        ),
                        Writes::Increments => {
                            client.execute("UPDATE items SET n = n + 1 WHERE id = $1", &[&id])
                        }
                    };
                    result.unwrap();
                    n += 1;
                    std::thread::sleep(Duration::from_millis(4));
                }
                n
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Runs a full mesh between `names` with `resolver` under `writes`, kills
/// one direction mid-load, and checks convergence; returns the regions and
/// the directions for further checks.
fn converge(
    names: &[&'static str],
    resolver: &str,
    writes: Writes,
) -> (Vec<Region>, Vec<Direction>, Vec<u64>) {
    let dir = scratch_dir("weir-active-active");
    let regions: Vec<Region> = names.iter().map(|n| Region::start(n)).collect();
    let mut directions = Vec::new();
    for from in &regions {
        for to in &regions {
            if from.name != to.name {
                directions.push(Direction::new(&dir, from, to, resolver));
            }
        }
    }
    wait(
        "every direction to stream",
        || {
            directions
                .iter()
                .all(|d| d.log().contains("Streaming changes"))
        },
        &directions,
    )
    .expect("every direction streams");
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let regions = &regions;
        std::thread::scope(|s| {
            let writers = Arc::clone(&stop);
            let load = s.spawn(move || workload(regions, writes, writers));
            // One direction dies mid-load and comes back.
            std::thread::sleep(Duration::from_millis(1500));
            directions[0].kill_9();
            std::thread::sleep(Duration::from_millis(500));
            directions[0].spawn();
            std::thread::sleep(Duration::from_millis(2500));
            stop.store(true, Ordering::Relaxed);
            load.join().unwrap()
        })
    };
    // Every sink was handed exactly its source region's changes.
    let delivered = |d: &Direction, to: &Region| {
        to.sql(&format!(
            "SELECT delivered FROM weir_checkpoints WHERE pipeline = '{}'",
            d.name
        ))
        .trim()
        .to_owned()
    };
    let expected = |d: &Direction| {
        let from = d.name.split("-to-").next().unwrap();
        let i = regions.iter().position(|r| r.name == from).unwrap();
        load[i].to_string()
    };
    let target = |d: &Direction| {
        let to = d.name.split("-to-").nth(1).unwrap();
        regions.iter().find(|r| r.name == to).unwrap()
    };
    wait(
        "every sink to apply its source region's changes",
        || {
            directions
                .iter()
                .all(|d| delivered(d, target(d)) == expected(d))
        },
        &directions,
    )
    .unwrap_or_else(|| {
        let counts: Vec<String> = directions
            .iter()
            .map(|d| {
                format!(
                    "{}: delivered {}, made {}",
                    d.name,
                    delivered(d, target(d)),
                    expected(d)
                )
            })
            .collect();
        panic!("a sink did not apply its source region's changes: {counts:?}")
    });
    wait(
        "every region to hold the same rows",
        || {
            let first = regions[0].checksum().0;
            regions.iter().all(|r| r.checksum().0 == first)
        },
        &directions,
    )
    .unwrap_or_else(|| {
        let states: Vec<String> = regions
            .iter()
            .map(|r| format!("{}:\n{}", r.name, r.checksum().1))
            .collect();
        panic!("regions diverged:\n{}", states.join("\n"));
    });
    // Still so after a pause: nothing bounces back and forth.
    std::thread::sleep(Duration::from_secs(2));
    for d in &directions {
        assert_eq!(delivered(d, target(d)), expected(d), "{}", d.name);
    }
    let first = regions[0].checksum();
    for r in &regions {
        assert_eq!(
            r.checksum(),
            first,
            "{} against {}",
            r.name,
            regions[0].name
        );
    }
    (regions, directions, load)
}

/// Waits up to a minute for `done`; `None` on a timeout (the caller says
/// what went wrong), with every direction's log printed.
fn wait(what: &str, mut done: impl FnMut() -> bool, directions: &[Direction]) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if Instant::now() > deadline {
            for d in directions {
                eprintln!("--- {} ---\n{}", d.name, d.log());
            }
            eprintln!("timed out waiting for {what}");
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(())
}

/// Checks that every region's counters add up to the increments made in
/// all regions (`load`: each region's writes under [`Writes::Increments`],
/// of which every third set `v` instead).
fn assert_counters_add_up(regions: &[Region], load: &[u64]) {
    let total: u64 = load.iter().map(|&w| w - w / 3).sum();
    for r in regions {
        assert_eq!(
            r.sql("SELECT sum(n) FROM items").trim(),
            total.to_string(),
            "{}",
            r.name
        );
    }
}

/// The conflicts every direction logged, by decision.
fn decisions(directions: &[Direction]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for d in directions {
        for c in d.conflicts() {
            *by.entry(c["decision"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    by
}

#[test]
fn two_regions_converge_under_last_writer_wins() {
    let (regions, directions, _) = converge(
        &["east", "west"],
        "{ strategy = \"last-writer-wins\" }",
        Writes::Values,
    );
    let by = decisions(&directions);
    // Concurrent writes to 8 rows from both sides: conflicts happened, and
    // each was settled one way or the other.
    assert!(
        by.get("take_incoming").copied().unwrap_or(0) + by.get("keep_local").copied().unwrap_or(0)
            > 0,
        "{by:?}"
    );
    assert_eq!(by.get("review"), None, "{by:?}");
    // A logged conflict has both versions and the resolver.
    let c = &directions[0].conflicts()[0];
    assert_eq!(c["kind"], "update_differs", "{c}");
    assert!(c["local"]["commit_time_us"].as_i64().unwrap() > 0, "{c}");
    assert!(c["incoming"]["commit_time_us"].as_i64().unwrap() > 0, "{c}");
    assert!(
        c["resolver"].as_str().unwrap().starts_with("resolvers+"),
        "{c}"
    );
    // Every row ended with the version committed last anywhere: its value
    // names a region, and that region's own write.
    for line in regions[0].sql("SELECT v FROM items").lines() {
        assert!(
            line.starts_with("east-") || line.starts_with("west-"),
            "{line}"
        );
    }
}

#[test]
fn two_regions_converge_under_region_priority() {
    let (regions, directions, _) = converge(
        &["east", "west"],
        "{ strategy = \"region-priority\", priority = [\"east\", \"west\"] }",
        Writes::Values,
    );
    let by = decisions(&directions);
    assert!(!by.is_empty(), "no conflicts happened");
    // East wins every conflict: west's sink takes east's change, east's
    // sink keeps its own row.
    for d in &directions {
        for c in d.conflicts() {
            let want = if d.name == "east-to-west" {
                "take_incoming"
            } else {
                "keep_local"
            };
            assert_eq!(c["decision"], want, "{}: {c}", d.name);
        }
    }
    drop(regions);
}

#[test]
fn two_regions_add_up_counters() {
    let (regions, directions, load) = converge(
        &["east", "west"],
        "{ strategy = \"counter\", columns = [\"n\"] }",
        Writes::Increments,
    );
    let by = decisions(&directions);
    assert!(by.get("merged").copied().unwrap_or(0) > 0, "{by:?}");
    assert_counters_add_up(&regions, &load);
}

#[test]
fn three_regions_converge_under_last_writer_wins() {
    let (_regions, directions, _) = converge(
        &["east", "west", "north"],
        "{ strategy = \"last-writer-wins\" }",
        Writes::Values,
    );
    assert!(!decisions(&directions).is_empty());
}

#[test]
fn three_regions_add_up_counters() {
    let (regions, _directions, load) = converge(
        &["east", "west", "north"],
        "{ strategy = \"counter\", columns = [\"n\"] }",
        Writes::Increments,
    );
    assert_counters_add_up(&regions, &load);
}

/// Waits for `done`, panicking with the direction's log on a timeout.
fn wait_for(what: &str, done: impl FnMut() -> bool, direction: &Direction) {
    wait(what, done, std::slice::from_ref(direction)).unwrap_or_else(|| panic!("{what}"));
}

#[test]
fn a_resolver_that_traps_sets_the_change_aside_and_the_sink_goes_on() {
    let dir = scratch_dir("weir-active-active");
    let (east, west) = (Region::start("east"), Region::start("west"));
    let mut d = Direction::with_resolver(&dir, &east, &west, components::TRAP_RESOLVER, "{}");
    wait_for("streaming", || d.log().contains("Streaming changes"), &d);
    // West changed rows 1 and 2 on its own (no pipeline brings them east):
    // east's next changes to them are conflicts.
    west.sql("UPDATE items SET v = 'west-local' WHERE id IN (1, 2)");
    east.sql("UPDATE items SET v = 'trap-1' WHERE id = 1");
    east.sql("UPDATE items SET v = 'taken-2' WHERE id = 2");
    east.sql("UPDATE items SET v = 'plain-3' WHERE id = 3");
    let rows = || west.sql("SELECT id, v FROM items WHERE id <= 3 ORDER BY id");
    wait_for(
        "the changes after the trap to be applied",
        || rows() == "1|west-local\n2|taken-2\n3|plain-3\n",
        &d,
    );
    // The change the resolver trapped on is a dead letter, with the reason;
    // the target kept its row, and the resolver went on (row 2).
    let letters =
        std::fs::read_to_string(d.config.parent().unwrap().join("state/dead-letters.jsonl"))
            .unwrap();
    let letters: Vec<Json> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = letters[0].to_string();
    assert!(letter.contains("trap-1"), "{letter}");
    assert!(
        letter.contains("resolver") && letter.contains("trap"),
        "{letter}"
    );
    assert!(
        d.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "still running"
    );
    d.kill_9();
}

#[test]
fn a_resolver_of_another_world_stops_the_pipeline_with_the_reason() {
    let dir = scratch_dir("weir-active-active");
    let (east, west) = (Region::start("east"), Region::start("west"));
    let mut d = Direction::with_resolver(&dir, &east, &west, components::PII_MASK, "{}");
    let mut child = d.child.take().unwrap();
    wait_for("weir to stop", || child.try_wait().unwrap().is_some(), &d);
    assert!(!child.wait().unwrap().success());
    let log = d.log();
    assert!(log.contains("resolver"), "{log}");
    assert!(
        log.contains("transformer") || log.contains("resolve"),
        "{log}"
    );
}
