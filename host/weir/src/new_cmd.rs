//! `weir plugin new NAME`: a working Rust transformer plugin project with a
//! passing test and fixtures for `weir plugin test` and bundles.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

/// Where the SDK lives: this checkout's `sdk/rust` (the SDK is not
/// published to a registry yet).
fn sdk_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust")
}

pub fn new(dir: &Path, lang: &str) -> anyhow::Result<ExitCode> {
    if lang != "rust" {
        bail!("`--lang {lang}`: only `rust` plugins can be scaffolded by this version of weir");
    }
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        })
        .with_context(|| {
            format!(
                "`{}`: the directory name is the plugin's crate name: lower-case letters, \
                 digits, `-` and `_`",
                dir.display()
            )
        })?;
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = std::path::absolute(sdk_path())?;
    let sdk = sdk.canonicalize().unwrap_or(sdk);
    let type_name: String = name
        .split(['-', '_'])
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("fixtures"))?;
    let files: [(&str, String); 6] = [
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
weir-plugin-sdk = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}

# A plugin is its own workspace, even inside another one.
[workspace]
"#,
                sdk = sdk.display()
            ),
        ),
        (
            "src/lib.rs",
            format!(
                r##"//! {name}: upper-cases one text column of every event's after image.
//!
//! Config: {{"column": "name"}}.

use serde::Deserialize;
use weir_plugin_sdk::{{Config, Event, Outcome, Transformer, Value}};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {{
    column: String,
}}

pub struct {type_name} {{
    column: String,
}}

impl Transformer for {type_name} {{
    fn new(config: Config) -> Result<Self, String> {{
        let settings: Settings = config.parse()?;
        Ok({type_name} {{
            column: settings.column,
        }})
    }}

    fn transform(&mut self, event: &mut Event<'_>) -> Outcome {{
        if let Some(text) = event.after_text(&self.column) {{
            let upper = text.to_uppercase();
            event.set_after(&self.column, Value::Text(upper));
        }}
        Outcome::Keep
    }}
}}

weir_plugin_sdk::export_transformer!({type_name});

#[cfg(test)]
mod tests {{
    use super::*;
    use weir_plugin_sdk::testing::{{new_plugin, transform}};
    use weir_plugin_sdk::{{ChangeEvent, Column, Op, SourceInfo}};

    #[test]
    fn upper_cases_the_configured_column_only() {{
        let mut plugin: {type_name} = new_plugin(r#"{{"column": "name"}}"#).unwrap();
        let event = ChangeEvent {{
            op: Op::Create,
            source: SourceInfo {{
                table: "customers".into(),
                ..SourceInfo::default()
            }},
            key: vec![Column::new("id", Value::Int(1))],
            before: None,
            after: Some(vec![
                Column::new("id", Value::Int(1)),
                Column::new("name", Value::Text("ada".into())),
                Column::new("city", Value::Text("london".into())),
            ]),
        }};
        let out = transform(&mut plugin, &[event]).remove(0).unwrap();
        let after = out[0].after.as_ref().unwrap();
        assert_eq!(after[1].value, Value::Text("ADA".into()));
        assert_eq!(after[2].value, Value::Text("london".into()));
    }}

    #[test]
    fn a_bad_config_is_refused() {{
        assert!(new_plugin::<{type_name}>(r#"{{"colum": "x"}}"#).is_err());
    }}
}}
"##
            ),
        ),
        ("fixtures/config.json", "{\"column\": \"name\"}\n".to_owned()),
        (
            "fixtures/input.jsonl",
            r#"{"op":"c","source":{"schema":"public","table":"customers"},"key":{"id":1},"after":{"id":1,"name":"ada","city":"london"}}
"#
            .to_owned(),
        ),
        (
            "fixtures/expected.jsonl",
            r#"{"op":"c","after":{"id":1,"name":"ADA","city":"london"}}
"#
            .to_owned(),
        ),
        (
            "README.md",
            format!(
                "# {name}\n\n\
                 ```sh\n\
                 cargo test                                   # the logic, natively\n\
                 weir plugin build .                          # -> target/wasm32-wasip2/release/{crate_file}.wasm\n\
                 weir plugin test target/wasm32-wasip2/release/{crate_file}.wasm \\\n    \
                 --config fixtures/config.json --input fixtures/input.jsonl\n\
                 weir plugin pack target/wasm32-wasip2/release/{crate_file}.wasm \\\n    \
                 --name {name} --version 0.1.0 --fixtures fixtures\n\
                 ```\n",
                crate_file = name.replace('-', "_")
            ),
        ),
    ];
    for (file, text) in files {
        std::fs::write(dir.join(file), text).with_context(|| format!("writing {file}"))?;
    }
    println!("created {} (a Rust transformer plugin)", dir.display());
    println!(
        "next: cd {} && cargo test && weir plugin build .",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
