//! `weir status --config FILE`: asks a running `weir run` for its status
//! through the admin API (`[admin]` in the same file) and prints it as a
//! table.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value as Json;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let Some(config) = crate::run_cmd::load(path) else {
        return Ok(ExitCode::from(1));
    };
    let Some(admin) = &config.admin else {
        anyhow::bail!(
            "{} has no [admin] section: `weir status` asks the admin API of the running \
             pipeline (docs/operations.md)",
            path.display()
        );
    };
    let client = crate::admin_client::AdminClient::new(admin, path, false)?;
    let status = client.get("/v1/status")?;
    print!("{}", table(&status));
    Ok(ExitCode::SUCCESS)
}

/// The status as aligned `name  value` lines.
fn table(s: &Json) -> String {
    let text = |v: &Json| match v {
        Json::Null => "-".to_owned(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    let snapshot = match &s["snapshot"] {
        Json::Null => "-".to_owned(),
        p => format!(
            "{}/{} tables, {} rows",
            p["tables_done"], p["tables_total"], p["rows"]
        ),
    };
    let mut lag = s["lag_seconds"]
        .as_f64()
        .map_or("-".to_owned(), |l| format!("{l:.1} s"));
    if let Some(bytes) = s["lag_bytes"].as_u64() {
        lag.push_str(&format!(", {bytes} bytes of log behind"));
    }
    let rows = [
        ("pipeline", text(&s["pipeline"])),
        ("phase", text(&s["phase"])),
        ("position", text(&s["acknowledged"])),
        ("lag", lag),
        ("snapshot", snapshot),
        ("events in", text(&s["events_in"])),
        ("events out", text(&s["events_out"])),
        ("dead letters", text(&s["dead_letters"])),
        ("checkpoints", text(&s["checkpoints"])),
        ("uptime", format!("{} s", text(&s["uptime_seconds"]))),
    ];
    let mut out: String = rows.iter().map(|(k, v)| format!("{k:<14}{v}\n")).collect();
    if s["paused"].as_bool() == Some(true) {
        out.push_str("paused        yes: no changes are taken from the source\n");
    }
    if let Some(e) = s["last_error"].as_object() {
        out.push_str(&format!(
            "last error    {} {}\n",
            text(&e["at"]),
            text(&e["message"])
        ));
    }
    for p in s["plugins"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "plugin        {} ({}) {}{}{}\n",
            text(&p["name"]),
            text(&p["role"]),
            text(&p["version"]),
            p["signer"]
                .as_str()
                .map_or(String::new(), |k| format!(", signed by {k}")),
            if p["probation"].as_bool() == Some(true) {
                ", on probation"
            } else {
                ""
            },
        ));
    }
    for k in s["sinks"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "sink          {}: {} events, {} errors, {} retries, at {}\n",
            text(&k["name"]),
            text(&k["events"]),
            text(&k["errors"]),
            text(&k["retries"]),
            text(&k["position"]),
        ));
    }
    for a in s["anomalies"].as_array().into_iter().flatten() {
        out.push_str(&format!("anomaly       {}\n", text(a)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_every_field() {
        let s = serde_json::json!({
            "pipeline": "shop", "phase": "streaming", "acknowledged": "0/16B3748",
            "lag_seconds": 0.25, "snapshot": null, "events_in": 10, "events_out": 9,
            "dead_letters": 1, "checkpoints": 3, "uptime_seconds": 42,
            "plugins": [{"name": "mask", "role": "transformer", "version": "pii-mask@1.2.0+abc",
                         "signer": "ed25519:XYZ", "probation": true}],
            "sinks": [{"name": "files", "events": 9, "errors": 0, "retries": 1,
                       "position": {"segment": 2}}],
            "anomalies": ["throughput"],
        });
        assert_eq!(
            table(&s),
            "pipeline      shop\nphase         streaming\nposition      0/16B3748\n\
             lag           0.2 s\nsnapshot      -\nevents in     10\nevents out    9\n\
             dead letters  1\ncheckpoints   3\nuptime        42 s\n\
             plugin        mask (transformer) pii-mask@1.2.0+abc, signed by ed25519:XYZ, on probation\n\
             sink          files: 9 events, 0 errors, 1 retries, at {\"segment\":2}\n\
             anomaly       throughput\n"
        );
    }
}
