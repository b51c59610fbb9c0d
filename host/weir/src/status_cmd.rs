//! `weir status --config FILE`: asks a running `weir run` for its status
//! through the admin API (`[admin]` in the same file) and prints it as a
//! table.

use std::path::Path;
use std::process::ExitCode;

use secrecy::ExposeSecret;
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
    let tokens = admin.tokens().map_err(|e| anyhow::anyhow!(e))?;
    let token = tokens
        .read
        .or(tokens.admin)
        .expect("validated: the section has a token");
    let mut address = admin.socket_addr();
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{address}/v1/status");
    let reply = ureq::get(&url)
        .header(
            "Authorization",
            &format!("Bearer {}", token.expose_secret()),
        )
        .call();
    let mut reply = match reply {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(code)) => anyhow::bail!(
            "the admin API at {address} refused the token in {} (HTTP {code}); is it the \
             running pipeline's?",
            path.display()
        ),
        Err(e) => anyhow::bail!(
            "no admin API answers at {address} ({e}); is `weir run --config {}` running?",
            path.display()
        ),
    };
    let status: Json = serde_json::from_str(&reply.body_mut().read_to_string()?)?;
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
    let lag = s["lag_seconds"]
        .as_f64()
        .map_or("-".to_owned(), |l| format!("{l:.1} s"));
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
    rows.iter().map(|(k, v)| format!("{k:<14}{v}\n")).collect()
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
        });
        assert_eq!(
            table(&s),
            "pipeline      shop\nphase         streaming\nposition      0/16B3748\n\
             lag           0.2 s\nsnapshot      -\nevents in     10\nevents out    9\n\
             dead letters  1\ncheckpoints   3\nuptime        42 s\n"
        );
    }
}
