//! The admin API of `weir run` end to end: a pipeline from a throwaway
//! PostgreSQL into files with `[admin]` on a free port, asked over plain
//! HTTP/1.1 what a load balancer, Prometheus and an operator ask.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use serde_json::Value as Json;

use crate::pipeline::{Setup, terminate, wait_until};

const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP response: status code, headers and body.
pub(crate) struct Reply {
    pub(crate) code: u16,
    head: String,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends one request; `None` when nothing listens yet.
pub(crate) fn request(port: u16, method: &str, path: &str, token: Option<&str>) -> Option<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    Some(Reply {
        code,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// The value of the series `name{pipeline="test"}` in a metrics text.
fn series(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{pipeline=\"test\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

/// Starts weir on `setup`'s database into files, with `[admin]` on a free
/// port plus `admin` (tokens, settings), and waits until it streams.
/// `/ready` already answers 200 while the (here empty) snapshot runs, so
/// waiting for 200 alone races the switch to streaming.
/// Returns weir, its port and the config's path.
pub(crate) fn start_with_admin(setup: &Setup, admin: &str) -> (Child, u16, PathBuf) {
    let port = free_port();
    let config = setup.config_with_sink(
        "",
        "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"",
        &format!("[admin]\naddress = \"127.0.0.1:{port}\"\n{admin}\n"),
    );
    let child = setup.start(&config);
    wait_until(
        "the pipeline to be ready and streaming",
        Duration::from_secs(60),
        || {
            request(port, "GET", "/ready", None)
                .is_some_and(|r| r.code == 200 && r.json()["phase"] == "streaming")
        },
        setup,
    );
    (child, port, config)
}

#[test]
fn the_admin_api_answers_health_metrics_and_status_behind_tokens() {
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY, v text)");
    let (child, port, config) = start_with_admin(
        &setup,
        &format!(
            "read_token = \"{READ}\"\nadmin_token = \"{ADMIN}\"\n\n[[plugins]]\nname = \"mask\"\n\
             path = \"{}\"\n\n[trust]\nallow_unsigned = true",
            weir_tests::components::PII_MASK
        ),
    );
    // No token for the probes a load balancer and Prometheus make.
    let health = request(port, "GET", "/health", None).unwrap();
    assert_eq!(
        (health.code, health.json()["status"].clone()),
        (200, "ok".into())
    );
    assert_eq!(
        request(port, "GET", "/ready", None).unwrap().json()["phase"],
        "streaming"
    );

    setup.sql("INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, 25) i");
    let mut metrics = String::new();
    wait_until(
        "the metrics to count the changes",
        Duration::from_secs(60),
        || {
            metrics = request(port, "GET", "/metrics", None).unwrap().body;
            // Written, and durable: the checkpoint feeds the histogram.
            series(&metrics, "weir_events_out_total") == Some(25.0)
                && series(&metrics, "weir_end_to_end_latency_seconds_count") == Some(25.0)
                && series(&metrics, "weir_source_lag_bytes").is_some()
        },
        &setup,
    );
    assert_eq!(
        series(&metrics, "weir_events_in_total"),
        Some(25.0),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, "weir_dead_letters_total"),
        Some(0.0),
        "{metrics}"
    );
    assert!(
        series(&metrics, "weir_checkpoints_total").unwrap() >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_source_phase{pipeline=\"test\",phase=\"streaming\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE weir_events_out counter"),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    // The 25 changes reached the files within the histogram's buckets; the
    // last of them committed a moment ago.
    assert_eq!(
        series(&metrics, "weir_end_to_end_latency_seconds_count"),
        Some(25.0),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("weir_end_to_end_latency_seconds_bucket{le=\"+Inf\",pipeline=\"test\"} 25")
            || metrics.contains(
                "weir_end_to_end_latency_seconds_bucket{pipeline=\"test\",le=\"+Inf\"} 25"
            ),
        "{metrics}"
    );
    // The plugin's calls and state.
    let plugin = |name: &str| {
        let prefix = format!("{name}{{pipeline=\"test\",plugin=\"mask\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse::<f64>().unwrap())
    };
    assert!(
        plugin("weir_plugin_call_seconds_count").unwrap() >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_plugin_probation{pipeline=\"test\",plugin=\"mask\",role=\"transformer\",version=\"pii_mask+"),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, "weir_plugin_reloads_total"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        series(&metrics, "weir_plugin_rollbacks_total"),
        Some(0.0),
        "{metrics}"
    );
    // Bytes, destinations, the sink's writes and flushes, the queues and
    // the checkpoint's age.
    assert!(
        series(&metrics, "weir_bytes_in_total").unwrap() > 0.0,
        "{metrics}"
    );
    assert!(
        series(&metrics, "weir_bytes_out_total").unwrap() > 0.0,
        "{metrics}"
    );
    let labelled = |name: &str, labels: &str| {
        let prefix = format!("{name}{{pipeline=\"test\",{labels}}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse::<f64>().unwrap())
    };
    assert_eq!(
        labelled(
            "weir_destination_events_total",
            "destination=\"public.items\""
        ),
        Some(25.0),
        "{metrics}"
    );
    assert_eq!(
        labelled("weir_sink_events_total", "sink=\"files\""),
        Some(25.0),
        "{metrics}"
    );
    assert!(
        labelled("weir_sink_write_seconds_count", "sink=\"files\"").unwrap() >= 1.0,
        "{metrics}"
    );
    assert!(
        labelled("weir_sink_flush_seconds_count", "sink=\"files\"").unwrap() >= 1.0,
        "{metrics}"
    );
    for kind in ["event", "transient", "operator"] {
        assert_eq!(
            labelled(
                "weir_sink_errors_total",
                &format!("sink=\"files\",kind=\"{kind}\"")
            ),
            Some(0.0),
            "{metrics}"
        );
    }
    assert_eq!(
        labelled("weir_sink_retries_total", "sink=\"files\""),
        Some(0.0),
        "{metrics}"
    );
    for between in ["source_plugins", "plugins_sinks"] {
        let queued = labelled("weir_queued_bytes", &format!("between=\"{between}\""));
        assert!(queued.is_some_and(|q| q >= 0.0), "{between}: {metrics}");
    }
    let age = series(&metrics, "weir_checkpoint_age_seconds").expect("a checkpoint's age");
    assert!((0.0..60.0).contains(&age), "{metrics}");
    assert_eq!(
        series(&metrics, "weir_pipeline_restarts_total"),
        Some(0.0),
        "{metrics}"
    );
    let behind = series(&metrics, "weir_source_lag_bytes").expect("the WAL distance");
    assert!(behind >= 0.0, "{metrics}");
    let lag = series(&metrics, "weir_source_lag_seconds").expect("a lag once changes are durable");
    assert!((0.0..60.0).contains(&lag), "{metrics}");

    // `/v1` needs a token, the right one, of the right scope.
    let none = request(port, "GET", "/v1/status", None).unwrap();
    assert_eq!(none.code, 401, "{}", none.body);
    assert!(
        none.head
            .to_lowercase()
            .contains("www-authenticate: bearer"),
        "{}",
        none.head
    );
    let wrong = request(port, "GET", "/v1/status", Some("not-the-token-at-all")).unwrap();
    assert_eq!(wrong.code, 401, "{}", wrong.body);
    let status = request(port, "GET", "/v1/status", Some(READ)).unwrap();
    assert_eq!(status.code, 200, "{}", status.body);
    let status = status.json();
    assert_eq!(status["pipeline"], "test");
    assert_eq!(status["phase"], "streaming");
    assert_eq!(status["events_out"], 25);
    assert_eq!(status["plugins"][0]["name"], "mask", "{status}");
    assert_eq!(status["plugins"][0]["probation"], false, "{status}");
    assert_eq!(status["stages"]["sinks"][0]["kind"], "file", "{status}");
    assert!(
        status["acknowledged"].as_str().unwrap().contains('/'),
        "{status}"
    );
    assert!(status["lag_seconds"].as_f64().is_some(), "{status}");
    assert!(
        status["plugins"][0]["version"]
            .as_str()
            .unwrap()
            .starts_with("pii_mask+")
    );
    assert_eq!(status["plugins"][0]["signer"], Json::Null, "{status}");
    let files = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "files")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(files["events"], 25, "{status}");
    assert!(files["position"].is_object(), "{status}");
    assert_eq!(status["restarts"], 0, "{status}");
    assert_eq!(status["last_error"], Json::Null, "{status}");
    let forbidden = request(port, "POST", "/v1/reload", Some(READ)).unwrap();
    assert_eq!(forbidden.code, 403, "{}", forbidden.body);
    let reload = request(port, "POST", "/v1/reload", Some(ADMIN)).unwrap();
    assert_eq!(reload.code, 200, "{}", reload.body);
    assert!(
        reload.json()["result"]
            .as_str()
            .unwrap()
            .starts_with("mask: unchanged"),
        "{}",
        reload.body
    );
    // `weir plugin reload` goes through the API when the file has `[admin]`.
    let out = crate::succeeds(
        crate::weir()
            .args(["plugin", "reload", "--config"])
            .arg(&config),
    );
    assert!(out.starts_with("mask: unchanged"), "{out}");

    // The OpenAPI document describes every endpoint, from the code.
    assert_eq!(
        request(port, "GET", "/v1/openapi.json", None).unwrap().code,
        401
    );
    let doc = request(port, "GET", "/v1/openapi.json", Some(READ)).unwrap();
    assert_eq!(doc.code, 200, "{}", doc.body);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/v1/status", "get"),
        ("/v1/reload", "post"),
        ("/v1/pause", "post"),
        ("/v1/resume", "post"),
        ("/v1/dead-letters", "get"),
        ("/v1/openapi.json", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{path} {method}: {doc}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{doc}"
    );
    // Every field of the status answer is in the document's schema.
    let documented = doc["components"]["schemas"]["Status"]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{doc}"));
    for field in status.as_object().unwrap().keys() {
        assert!(
            documented.contains_key(field),
            "{field} undocumented: {doc}"
        );
    }

    // Paused, the pipeline takes nothing from the source; resumed, it
    // catches up. Only the admin token may do either.
    let denied = request(port, "POST", "/v1/pause", Some(READ)).unwrap();
    assert_eq!(denied.code, 403, "{}", denied.body);
    let paused = request(port, "POST", "/v1/pause", Some(ADMIN)).unwrap();
    assert_eq!(
        (paused.code, paused.json()["paused"].clone()),
        (200, true.into())
    );
    setup.sql("INSERT INTO items SELECT i, 'p' || i FROM generate_series(26, 30) i");
    std::thread::sleep(Duration::from_secs(2));
    let status = request(port, "GET", "/v1/status", Some(READ))
        .unwrap()
        .json();
    assert_eq!(
        (status["paused"].clone(), status["events_out"].clone()),
        (true.into(), 25.into()),
        "{status}"
    );
    let resumed = request(port, "POST", "/v1/resume", Some(ADMIN)).unwrap();
    assert_eq!(resumed.json()["paused"], false);
    wait_until(
        "the changes made while paused",
        Duration::from_secs(30),
        || {
            request(port, "GET", "/v1/status", Some(READ))
                .unwrap()
                .json()["events_out"]
                == 30
        },
        &setup,
    );
    let letters = request(port, "GET", "/v1/dead-letters", Some(READ)).unwrap();
    assert_eq!(letters.code, 200, "{}", letters.body);
    assert_eq!(letters.json()["total"], 0, "{}", letters.body);

    // `weir status` asks the same API, with the token from the config.
    let out = crate::succeeds(crate::weir().args(["status", "--config"]).arg(&config));
    assert!(out.contains("pipeline      test"), "{out}");
    assert!(out.contains("phase         streaming"), "{out}");
    assert!(out.contains("events out    30"), "{out}");

    // A paused pipeline still stops cleanly.
    request(port, "POST", "/v1/pause", Some(ADMIN)).unwrap();
    setup.sql("INSERT INTO items VALUES (31, 'late')");
    terminate(child, &setup);
    let stopped = crate::weir()
        .args(["status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!stopped.status.success());
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(stderr.contains("no admin API answers"), "{stderr}");
    let log = setup.log();
    assert!(log.contains("Admin API listening."), "{log}");
    assert!(
        !log.contains(READ) && !log.contains(ADMIN),
        "a token was logged:\n{log}"
    );
}

/// A GET over HTTPS by Python's standard library (an independent TLS
/// client), trusting only `ca`: the status code and body, or the error.
fn https_get(
    port: u16,
    path: &str,
    token: &str,
    ca: &std::path::Path,
) -> Result<(u16, String), String> {
    let script = r#"
import ssl, sys, urllib.request, urllib.error
port, path, token, ca = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": "Bearer " + token})
try:
    r = urllib.request.urlopen(req, context=ctx, timeout=10)
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string(), path, token])
        .arg(ca)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let (code, body) = stdout.split_once('\n').unwrap();
    Ok((code.parse().unwrap(), body.trim_end().to_owned()))
}

#[test]
fn with_tls_the_admin_api_serves_only_https_and_weir_status_trusts_its_certificate() {
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY, v text)");
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = setup.dir.clone();
    std::fs::write(dir.join("admin.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("admin.key"), cert.signing_key.serialize_pem()).unwrap();
    let port = free_port();
    let config = setup.config_with_sink(
        "",
        "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"",
        &format!(
            "[admin]\naddress = \"127.0.0.1:{port}\"\nread_token = \"{READ}\"\n\
             admin_token = \"{ADMIN}\"\n[admin.tls]\ncert = \"admin.crt\"\nkey = \"admin.key\"\n"
        ),
    );
    let child = setup.start(&config);
    let ca = dir.join("admin.crt");
    wait_until(
        "the pipeline to be ready over HTTPS",
        Duration::from_secs(60),
        || https_get(port, "/ready", READ, &ca).is_ok_and(|(code, _)| code == 200),
        &setup,
    );
    setup.sql("INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, 5) i");
    wait_until(
        "the changes in the status",
        Duration::from_secs(60),
        || {
            https_get(port, "/v1/status", READ, &ca).is_ok_and(|(code, body)| {
                code == 200 && serde_json::from_str::<Json>(&body).unwrap()["events_out"] == 5
            })
        },
        &setup,
    );
    let (code, _) = https_get(port, "/v1/status", "not-the-token-at-all", &ca).unwrap();
    assert_eq!(code, 401);
    // Plain HTTP gets no HTTP answer.
    let plain = std::panic::catch_unwind(|| request(port, "GET", "/health", None));
    assert!(
        !matches!(plain, Ok(Some(ref r)) if r.code == 200),
        "plain HTTP was served"
    );
    // A client that does not trust the certificate is refused.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("other.crt"), other.cert.pem()).unwrap();
    let refused = https_get(port, "/health", READ, &dir.join("other.crt")).unwrap_err();
    assert!(refused.contains("CERTIFICATE_VERIFY_FAILED"), "{refused}");
    // `weir status` trusts the configured certificate.
    let out = crate::succeeds(crate::weir().args(["status", "--config"]).arg(&config));
    assert!(out.contains("events out    5"), "{out}");
    terminate(child, &setup);
    let log = setup.log();
    assert!(
        log.contains("scheme=\"https\"") || log.contains("scheme=https"),
        "{log}"
    );
}

#[test]
fn a_bad_tls_setting_stops_weir_naming_the_file() {
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY, v text)");
    std::fs::write(setup.dir.join("bad.crt"), "not a certificate\n").unwrap();
    std::fs::write(setup.dir.join("bad.key"), "not a key\n").unwrap();
    let port = free_port();
    // What `weir run` says on standard error with this cert and key.
    let refused = |cert: &str, key: &str| {
        let config = setup.config_with_sink(
            "",
            "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"",
            &format!(
                "[admin]\naddress = \"127.0.0.1:{port}\"\nadmin_token = \"{ADMIN}\"\n\
                 [admin.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n"
            ),
        );
        let out = crate::weir()
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A missing file fails the config check, naming the field and file.
    let stderr = refused("bad.crt", "missing.key");
    assert!(
        stderr.contains("admin.tls.key") && stderr.contains("missing.key"),
        "{stderr}"
    );
    // A file that is not PEM stops the start, naming the file.
    let stderr = refused("bad.crt", "bad.key");
    assert!(
        stderr.contains("the admin API cannot listen") && stderr.contains("bad.crt"),
        "{stderr}"
    );
}

#[test]
fn an_admin_address_in_use_stops_weir_with_the_reason() {
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY)");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = setup.config_with_sink(
        "",
        "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"",
        &format!("[admin]\naddress = \"127.0.0.1:{port}\"\nadmin_token = \"{ADMIN}\"\n"),
    );
    let mut child = setup.start(&config);
    wait_until(
        "weir to stop",
        Duration::from_secs(30),
        || child.try_wait().unwrap().is_some(),
        &setup,
    );
    assert!(!child.wait().unwrap().success());
    let log = setup.log();
    assert!(
        log.contains(&format!("the admin API cannot listen on 127.0.0.1:{port}")),
        "{log}"
    );
}

#[test]
fn json_logs_name_the_pipeline_and_position_on_every_line() {
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY)");
    let config = setup.config_with_sink(
        "",
        "[[sinks]]\nname = \"files\"\nkind = \"file\"\ndir = \"out\"",
        "",
    );
    let log_path = setup.dir.join("weir.log");
    let child = crate::weir()
        .args(["run", "--config"])
        .arg(&config)
        .env("WEIR_LOG", "info")
        .env("WEIR_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_until(
        "streaming",
        Duration::from_secs(60),
        || setup.log().contains("Streaming changes"),
        &setup,
    );
    setup.sql("INSERT INTO items SELECT generate_series(1, 5)");
    wait_until(
        "a line with a durable position",
        Duration::from_secs(60),
        || setup.log().contains("\"position\""),
        &setup,
    );
    terminate(child, &setup);
    let log = setup.log();
    let lines: Vec<Json> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 3, "{log}");
    for line in &lines {
        assert_eq!(line["pipeline"], "test", "{line}");
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(
            line["level"].is_string() && line["message"].is_string(),
            "{line}"
        );
    }
    let streaming = lines
        .iter()
        .find(|l| l["message"] == "Streaming changes.")
        .expect("the streaming line");
    assert!(streaming["slot"].is_string(), "{streaming}");

    let bad = crate::weir()
        .args(["validate"])
        .arg(&config)
        .env("WEIR_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("WEIR_LOG_FORMAT is `xml`"), "{stderr}");
}

#[test]
fn a_stalled_pipeline_under_a_steady_load_raises_the_throughput_anomaly() {
    let setup = Setup::new("CREATE TABLE items (id bigint PRIMARY KEY, v text)");
    let (child, port, _) = start_with_admin(
        &setup,
        &format!("admin_token = \"{ADMIN}\"\nanomaly_interval_ms = 500"),
    );
    // A steady load: a row every 5 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = std::sync::Arc::clone(&stop);
        let port = setup.server.port;
        std::thread::spawn(move || {
            let mut client = crate::pipeline::BlockingClient::connect(port, "db");
            let mut id = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                id += 1;
                client
                    .execute("INSERT INTO items VALUES ($1, 'x')", &[&id])
                    .unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let anomaly = |signal: &str| {
        let text = request(port, "GET", "/metrics", None).unwrap().body;
        let prefix = format!("weir_anomaly{{pipeline=\"test\",signal=\"{signal}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v == "1")
            .unwrap_or_else(|| panic!("no {signal} anomaly series in:\n{text}"))
    };
    // Learning the steady level (12 samples of 500 ms), and nothing raised
    // while it holds. Samples of half a second, not less: on a machine
    // busy with other tests a pipeline can write nothing for a quarter of
    // a second, and two such samples in a row would be a real stall.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        assert!(!anomaly("throughput"), "{}", setup.log());
        assert!(!anomaly("lag"), "{}", setup.log());
    }
    // The pipeline stalls (paused) while changes keep coming.
    let paused = request(port, "POST", "/v1/pause", Some(ADMIN)).unwrap();
    assert_eq!(paused.code, 200);
    wait_until(
        "the throughput anomaly",
        Duration::from_secs(10),
        || anomaly("throughput"),
        &setup,
    );
    request(port, "POST", "/v1/resume", Some(ADMIN)).unwrap();
    wait_until(
        "the anomaly to clear",
        Duration::from_secs(30),
        || !anomaly("throughput"),
        &setup,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    terminate(child, &setup);
    let log = setup.log();
    assert!(
        log.contains("Anomaly raised") && log.contains("signal=\"throughput\""),
        "{log}"
    );
    assert!(log.contains("Anomaly cleared"), "{log}");
}
