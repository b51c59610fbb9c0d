//! `weir demo --active-active`: two throwaway PostgreSQL regions, `east`
//! and `west`, both taking writes to the same products at once, and a
//! pipeline per direction whose sink settles every conflict with the
//! bundled `resolvers` plugin (stock and likes add up, the other columns
//! follow the last writer). Prints the conflicts and the converged state.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::watch;
use tokio_postgres::NoTls;
use weir_connect::Phase;
use weir_pipeline::{PipelineConfig, Stats};
use weir_throwaway::ThrowawayPostgres;

const REGIONS: [&str; 2] = ["east", "west"];
const PRODUCTS: i64 = 20;
const STOCK: i64 = 1000;

const SCHEMA: &str = "
CREATE TABLE products (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    price numeric(10,2) NOT NULL,
    stock bigint NOT NULL,
    likes bigint NOT NULL DEFAULT 0,
    updated_in text NOT NULL
);
-- Conflict detection compares the change's whole before image.
ALTER TABLE products REPLICA IDENTITY FULL;
";

/// One region: its server and what its users did.
struct Region {
    name: &'static str,
    server: ThrowawayPostgres,
}

pub fn run(plugins: &Path, seconds: u64) -> anyhow::Result<()> {
    let resolver = plugins.join("resolvers.wasm");
    if !resolver.exists() {
        bail!(
            "{} is missing: build it first with `weir plugin build plugins/resolvers` \
             (scripts/demo does this), or point --plugins at it",
            resolver.display()
        );
    }
    let mut regions = Vec::new();
    for name in REGIONS {
        println!(
            "==> Starting region `{name}`: a throwaway PostgreSQL (track_commit_timestamp=on)"
        );
        let server = ThrowawayPostgres::start(&[("track_commit_timestamp", "on")])
            .with_context(|| format!("starting region {name}"))?;
        server.psql("postgres", "CREATE DATABASE shop")?;
        server.psql(
            "shop",
            &format!(
                "{SCHEMA} INSERT INTO products SELECT i, 'Product ' || i, 9.99, {STOCK}, 0, 'seed' \
                 FROM generate_series(1, {PRODUCTS}) i;"
            ),
        )?;
        regions.push(Region { name, server });
    }
    println!(
        "    both hold {PRODUCTS} products with {STOCK} in stock; each region sells, likes and \
         reprices the same products at the same moments"
    );
    let work = super::tempdir()?;
    let mut configs = Vec::new();
    for (from, to) in [(&regions[0], &regions[1]), (&regions[1], &regions[0])] {
        let path = work.join(format!("{}-to-{}.toml", from.name, to.name));
        std::fs::write(&path, pipeline_toml(from, to, &work, &resolver))?;
        configs.push(PipelineConfig::from_file(&path).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(drive(&regions, configs, seconds, &work));
    let _ = std::fs::remove_dir_all(&work);
    drop(regions);
    println!("==> Stopped both regions and removed their files.");
    result
}

/// A pipeline from `from` into `to`, its sink resolving conflicts.
fn pipeline_toml(from: &Region, to: &Region, work: &Path, resolver: &Path) -> String {
    format!(
        r#"name = "{from_name}-to-{to_name}"
state_dir = "{state}"

[source]
kind = "postgres"
host = "127.0.0.1"
port = {from_port}
user = "postgres"
database = "shop"
tables = ["public.products"]
# The regions start alike; only new changes cross.
snapshot = "never"

[[sinks]]
name = "{to_name}"
kind = "postgres"
host = "127.0.0.1"
port = {to_port}
user = "postgres"
database = "shop"

[sinks.conflicts]
region = "{to_name}"
source_region = "{from_name}"

[sinks.conflicts.resolver]
name = "resolvers"
path = "{resolver}"
config = {{ strategy = "counter", columns = ["stock", "likes"] }}

# The demo's resolver is built from source here, not a signed bundle.
[trust]
allow_unsigned = true
"#,
        from_name = from.name,
        to_name = to.name,
        from_port = from.server.port,
        to_port = to.server.port,
        state = work.join(format!("{}-to-{}", from.name, to.name)).display(),
        resolver = resolver.display(),
    )
}

/// What one region's users did.
#[derive(Debug, Default, Clone, Copy)]
struct Done {
    sold: i64,
    liked: i64,
    repriced: i64,
}

impl Done {
    fn changes(self) -> u64 {
        (self.sold + self.liked + self.repriced) as u64
    }
}

async fn drive(
    regions: &[Region],
    configs: Vec<PipelineConfig>,
    seconds: u64,
    work: &Path,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut pipelines = Vec::new();
    let mut stats = Vec::new();
    for config in configs {
        let s = Arc::new(Stats::default());
        stats.push(Arc::clone(&s));
        let stop = stop_rx.clone();
        pipelines.push(tokio::spawn(async move {
            weir_pipeline::run(&config, stop, s).await
        }));
    }
    println!("==> Pipelines: east -> west and west -> east, each sink resolving conflicts with");
    println!(
        "    the bundled `resolvers` plugin: stock and likes add up, other columns: last writer wins\n"
    );
    for s in &stats {
        let mut progress = s.source.subscribe();
        let streaming = tokio::time::timeout(
            Duration::from_secs(60),
            progress.wait_for(|p| p.phase == Phase::Streaming),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if !streaming {
            let _ = stop_tx.send(true);
            for p in pipelines {
                p.await??;
            }
            bail!("a pipeline did not start streaming within a minute");
        }
    }

    // Both regions write at once, to the same few products.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut writers = Vec::new();
    for (r, region) in regions.iter().enumerate() {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname=shop",
                region.server.port
            ),
            NoTls,
        )
        .await?;
        tokio::spawn(connection);
        let name = region.name;
        writers.push(tokio::spawn(async move {
            let mut done = Done::default();
            let mut n = 0i64;
            while Instant::now() < deadline {
                let id = (n * (r as i64 + 2) + r as i64) % 5 + 1;
                match n % 3 {
                    0 => {
                        client
                            .execute(
                                "UPDATE products SET stock = stock - 1 WHERE id = $1",
                                &[&id],
                            )
                            .await?;
                        done.sold += 1;
                    }
                    1 => {
                        client
                            .execute(
                                "UPDATE products SET likes = likes + 1 WHERE id = $1",
                                &[&id],
                            )
                            .await?;
                        done.liked += 1;
                    }
                    _ => {
                        client
                            .execute(
                                "UPDATE products SET price = $1::text::numeric, updated_in = $2 \
                                 WHERE id = $3",
                                &[&format!("{}.{:02}", 10 + n % 90, n % 100), &name, &id],
                            )
                            .await?;
                        done.repriced += 1;
                    }
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, anyhow::Error>(done)
        }));
    }
    let mut last_print = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            print_live(&stats, started, work);
        }
    }
    let mut done = Vec::new();
    for w in writers {
        done.push(w.await??);
    }
    for (region, d) in regions.iter().zip(&done) {
        println!(
            "\n==> `{}` made {} changes: sold {}, liked {}, repriced {}",
            region.name,
            d.changes(),
            d.sold,
            d.liked,
            d.repriced
        );
    }
    // East's changes are west's pipeline's input, and the other way round.
    let wait_until = Instant::now() + Duration::from_secs(60);
    let caught_up = |stats: &[Arc<Stats>]| {
        stats
            .iter()
            .zip(&done)
            .all(|(s, d)| s.events_out.load(Ordering::Relaxed) >= d.changes())
    };
    while !caught_up(&stats) && Instant::now() < wait_until {
        if pipelines.iter().any(|p| p.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last changes are written; let their transactions commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    for p in pipelines {
        p.await??;
    }
    print_live(&stats, started, work);
    for (s, d) in stats.iter().zip(&done) {
        let out = s.events_out.load(Ordering::Relaxed);
        if out != d.changes() {
            bail!(
                "a pipeline applied {out} changes, but its region made {}",
                d.changes()
            );
        }
    }
    show_conflicts(work)?;
    show_state(regions, &done).await
}

fn print_live(stats: &[Arc<Stats>], started: Instant, work: &Path) {
    let conflicts: usize = conflict_lines(work).len();
    println!(
        "    t={:>4.1}s  east -> west applied {:>6}  west -> east applied {:>6}  conflicts {:>5}",
        started.elapsed().as_secs_f64(),
        stats[0].events_out.load(Ordering::Relaxed),
        stats[1].events_out.load(Ordering::Relaxed),
        conflicts,
    );
}

/// Every conflict both sinks logged.
fn conflict_lines(work: &Path) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    for (from, to) in [("east", "west"), ("west", "east")] {
        let path = work
            .join(format!("{from}-to-{to}"))
            .join(format!("conflicts-{to}.jsonl"));
        if let Ok(text) = std::fs::read_to_string(path) {
            lines.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    lines
}

fn show_conflicts(work: &Path) -> anyhow::Result<()> {
    let lines = conflict_lines(work);
    let mut by: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in &lines {
        let key = (
            l["kind"].as_str().unwrap_or("?").to_owned(),
            l["decision"].as_str().unwrap_or("?").to_owned(),
        );
        *by.entry(key).or_default() += 1;
    }
    println!(
        "\n==> {} conflicts, each settled by the resolver plugin (logged in conflicts-<sink>.jsonl):",
        lines.len()
    );
    for ((kind, decision), n) in &by {
        println!("    {kind:<16} {decision:<14} {n:>6}");
    }
    if let Some(c) = lines.iter().find(|l| l["decision"] == "merged") {
        let pick = |row: &serde_json::Value| {
            format!(
                "stock={} likes={} price={} updated_in={}",
                row["stock"], row["likes"], row["price"], row["updated_in"]
            )
        };
        println!(
            "\n==> One of them, on product {} in region `{}`:",
            c["key"]["id"], c["local"]["region"]
        );
        println!("    local row      {}", pick(&c["local"]["row"]));
        println!(
            "    incoming from `{}`: {} -> {}",
            c["incoming"]["region"].as_str().unwrap_or("?"),
            pick(&c["incoming"]["before"]),
            pick(&c["incoming"]["after"])
        );
        println!("    merged         {}", pick(&c["merged"]));
    }
    Ok(())
}

/// Prints both regions' rows side by side and checks they converged.
async fn show_state(regions: &[Region], done: &[Done]) -> anyhow::Result<()> {
    let mut sums = Vec::new();
    for r in regions {
        let out = r.server.psql(
            "shop",
            "SELECT md5(string_agg(p::text, ',' ORDER BY id)), sum(stock), sum(likes) FROM products p",
        )?;
        sums.push(out.trim().to_owned());
    }
    println!("\n==> The converged state (the products both regions wrote to):");
    println!("    id  region  stock  likes  price   updated_in");
    for r in regions {
        let rows = r.server.psql(
            "shop",
            "SELECT id, stock, likes, price, updated_in FROM products WHERE id <= 5 ORDER BY id",
        )?;
        for line in rows.lines() {
            let f: Vec<&str> = line.split('|').collect();
            if f.len() == 5 {
                println!(
                    "    {:>2}  {:<6} {:>6} {:>6}  {:>6}  {}",
                    f[0], r.name, f[1], f[2], f[3], f[4]
                );
            }
        }
    }
    let sold: i64 = done.iter().map(|d| d.sold).sum();
    let liked: i64 = done.iter().map(|d| d.liked).sum();
    let want_stock = PRODUCTS * STOCK - sold;
    for (r, s) in regions.iter().zip(&sums) {
        let f: Vec<&str> = s.split('|').collect();
        if f.len() != 3 || f[1] != want_stock.to_string() || f[2] != liked.to_string() {
            bail!(
                "region `{}` holds stock {} and likes {}, but {sold} sales and {liked} likes \
                 were made: expected stock {want_stock}",
                r.name,
                f.get(1).unwrap_or(&"?"),
                f.get(2).unwrap_or(&"?")
            );
        }
    }
    if sums[0] != sums[1] {
        bail!(
            "the regions did not converge: east {} and west {}",
            sums[0],
            sums[1]
        );
    }
    println!(
        "\n    converged: both regions hold identical rows (md5 {}); stock {} = {} - {sold} sold, \
         likes {liked} = every like made in either region",
        sums[0].split('|').next().unwrap_or(""),
        want_stock,
        PRODUCTS * STOCK
    );
    Ok(())
}
