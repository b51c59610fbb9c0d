//! `weir plugin new --lang rust|python|js DIR`: a working transformer
//! plugin project with a passing test and fixtures for `weir plugin test`
//! and bundles. Python and JavaScript projects get their own copy of the
//! SDK this weir was built with, so they need nothing but the
//! componentizer to build.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use weir_plugin_build::guest::{COMPONENTIZE_JS, COMPONENTIZE_PY, Lang};

/// Where the SDK lives: this checkout's `sdk/rust` (the SDK is not
/// published to a registry yet).
fn sdk_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust")
}

/// The Python SDK (`sdk/python/weir_plugin`), file by file.
const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../sdk/python/weir_plugin/__init__.py"),
    ),
    (
        "_export.py",
        include_str!("../../../sdk/python/weir_plugin/_export.py"),
    ),
    (
        "event.py",
        include_str!("../../../sdk/python/weir_plugin/event.py"),
    ),
    (
        "log.py",
        include_str!("../../../sdk/python/weir_plugin/log.py"),
    ),
    (
        "testing.py",
        include_str!("../../../sdk/python/weir_plugin/testing.py"),
    ),
    (
        "wire.py",
        include_str!("../../../sdk/python/weir_plugin/wire.py"),
    ),
];

/// The JavaScript SDK (`sdk/js/weir-plugin.js`).
const JS_SDK: &str = include_str!("../../../sdk/js/weir-plugin.js");

/// Every scaffold's fixtures: upper-case the `name` column.
const FIXTURES: [(&str, &str); 3] = [
    ("fixtures/config.json", "{\"column\": \"name\"}\n"),
    (
        "fixtures/input.jsonl",
        r#"{"op":"c","source":{"schema":"public","table":"customers"},"key":{"id":1},"after":{"id":1,"name":"ada","city":"london"}}
"#,
    ),
    (
        "fixtures/expected.jsonl",
        r#"{"op":"c","after":{"id":1,"name":"ADA","city":"london"}}
"#,
    ),
];

pub fn new(dir: &Path, lang: &str) -> anyhow::Result<ExitCode> {
    let lang = Lang::parse(lang)
        .with_context(|| format!("`--lang {lang}`: expected rust, python or js"))?;
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
                "`{}`: the directory name is the plugin's name: lower-case letters, \
                 digits, `-` and `_`",
                dir.display()
            )
        })?;
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let (mut files, next) = match lang {
        Lang::Rust => rust_files(name)?,
        Lang::Python => python_files(name),
        Lang::Js => js_files(name),
        Lang::C => bail!(
            "C plugins are not scaffolded; start from examples/plugins/c/pii-mask \
             (docs/plugins.md, \"C\")"
        ),
    };
    files.extend(FIXTURES.iter().map(|(f, t)| (f.to_string(), t.to_string())));
    for (file, text) in &files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {} (a {} transformer plugin)",
        dir.display(),
        lang.name()
    );
    println!("next: cd {} && {next}", dir.display());
    Ok(ExitCode::SUCCESS)
}

type Files = Vec<(String, String)>;

/// A scaffold's README: how to test, build, try and pack it.
fn readme(name: &str, first: &[&str], component: &str, note: &str) -> String {
    let mut text = format!("# {name}\n\n```sh\n");
    for line in first {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!(
        "weir plugin build .                          # -> {component}\n\
         weir plugin test {component} \\\n    \
         --config fixtures/config.json --input fixtures/input.jsonl \\\n    \
         --expect fixtures/expected.jsonl\n\
         weir plugin pack {component} \\\n    \
         --name {name} --version 0.1.0 --fixtures fixtures\n```\n\n\
         `weir` comes from the Weir checkout: `cargo install --path host/weir` puts it \
         on your `PATH` (in `~/.cargo/bin`).\n"
    ));
    if !note.is_empty() {
        text.push('\n');
        text.push_str(note);
        text.push('\n');
    }
    text
}

/// `shout-names` -> `ShoutNames`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A Python project: the logic in `<module>.py` (natively testable), the
/// component's entry in `app.py`, and a copy of the SDK.
fn python_files(name: &str) -> (Files, &'static str) {
    let module = name.replace('-', "_");
    let class = type_name(name);
    let mut files: Files = vec![
        (
            "pyproject.toml".into(),
            format!(
                r#"[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"

# What `weir plugin build` needs: the world and the module defining WitWorld.
[tool.weir]
world = "transformer"
module = "app"
"#
            ),
        ),
        (
            "app.py".into(),
            format!(
                r#""""The component's entry point (`weir plugin build` builds from here)."""

import weir_plugin
from {module} import {class}

WitWorld = weir_plugin.export_transformer({class})
"#
            ),
        ),
        (
            format!("{module}.py"),
            format!(
                r#""""{name}: upper-cases one text column of every event's after image.

Config: {{"column": "name"}}.
"""

from weir_plugin import KEEP


class {class}:
    def __init__(self, config):
        unknown = set(config) - {{"column"}}
        if unknown:
            raise ValueError("invalid plugin config: unknown field(s) %s" % ", ".join(sorted(unknown)))
        column = config.get("column")
        if not isinstance(column, str) or not column:
            raise ValueError("invalid plugin config: `column` must name a column")
        self.column = column

    def transform(self, event):
        text = event.after.get(self.column) if event.after else None
        if type(text) is str:
            event.set_after(self.column, text.upper())
        return KEEP
"#
            ),
        ),
        (
            format!("test_{module}.py"),
            format!(
                r#""""Runs natively: python3 -m unittest"""

import unittest

from weir_plugin import testing

from {module} import {class}


class Test{class}(unittest.TestCase):
    def test_upper_cases_the_configured_column_only(self):
        plugin = {class}({{"column": "name"}})
        event = testing.event(
            table="customers",
            key={{"id": 1}},
            after={{"id": 1, "name": "ada", "city": "london"}},
        )
        [[out]] = testing.transform(plugin, [event])
        self.assertEqual(out["after"], {{"id": 1, "name": "ADA", "city": "london"}})

    def test_a_bad_config_is_refused(self):
        with self.assertRaises(ValueError):
            {class}({{"colum": "x"}})


if __name__ == "__main__":
    unittest.main()
"#
            ),
        ),
        (".gitignore".into(), "target/\n__pycache__/\n".into()),
        (
            "README.md".into(),
            readme(
                name,
                &[
                    "python3 -m unittest                          # the logic, natively",
                    &format!("pip install {COMPONENTIZE_PY}         # once"),
                ],
                &format!("target/weir/{name}.wasm"),
                "`weir_plugin/` is the Weir Python SDK, copied here by `weir plugin new`.",
            ),
        ),
    ];
    files.extend(
        PYTHON_SDK
            .iter()
            .map(|(f, t)| (format!("weir_plugin/{f}"), t.to_string())),
    );
    (files, "python3 -m unittest && weir plugin build .")
}

/// A JavaScript project: the logic in `<name>.js` (natively testable),
/// the component's entry in `plugin.js`, and a copy of the SDK.
fn js_files(name: &str) -> (Files, &'static str) {
    let class = type_name(name);
    let (tool, version) = COMPONENTIZE_JS
        .rsplit_once('@')
        .expect("the pin names a version");
    let files: Files = vec![
        (
            "package.json".into(),
            format!(
                r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "type": "module",
  "main": "plugin.js",
  "private": true,
  "scripts": {{
    "test": "node --test"
  }},
  "weir": {{
    "world": "transformer"
  }},
  "devDependencies": {{
    "{tool}": "{version}"
  }}
}}
"#
            ),
        ),
        (
            "plugin.js".into(),
            format!(
                r#"// The component's entry module (`weir plugin build` builds from here).
import * as host from 'weir:plugin/host@0.1.0';
import {{ exportTransformer }} from './weir-plugin.js';
import {{ {class} }} from './{name}.js';

export const {{ init, transform }} = exportTransformer({class}, host);
"#
            ),
        ),
        (
            format!("{name}.js"),
            format!(
                r#"// {name}: upper-cases one text column of every event's after image.
// Config: {{"column": "name"}}.
import {{ KEEP }} from './weir-plugin.js';

export class {class} {{
  constructor(config) {{
    const unknown = Object.keys(config).filter((k) => k !== 'column');
    if (unknown.length) throw new Error(`invalid plugin config: unknown field(s) ${{unknown.join(', ')}}`);
    if (typeof config.column !== 'string' || !config.column) {{
      throw new Error('invalid plugin config: `column` must name a column');
    }}
    this.column = config.column;
  }}

  transform(event) {{
    const text = event.after?.get(this.column);
    if (typeof text === 'string') event.setAfter(this.column, text.toUpperCase());
    return KEEP;
  }}
}}
"#
            ),
        ),
        (
            format!("test/{name}.test.js"),
            format!(
                r#"// Runs natively: node --test
import {{ test }} from 'node:test';
import assert from 'node:assert/strict';

import {{ makeEvent, runTransform }} from '../weir-plugin.js';
import {{ {class} }} from '../{name}.js';

test('upper-cases the configured column only', () => {{
  const plugin = new {class}({{ column: 'name' }});
  const event = makeEvent({{ table: 'customers', key: {{ id: 1n }}, after: {{ id: 1n, name: 'ada', city: 'london' }} }});
  const [[out]] = runTransform(plugin, [event]);
  assert.deepEqual(out.after, {{ id: 1n, name: 'ADA', city: 'london' }});
}});

test('a bad config is refused', () => {{
  assert.throws(() => new {class}({{ colum: 'x' }}));
}});
"#
            ),
        ),
        ("weir-plugin.js".into(), JS_SDK.to_owned()),
        (".gitignore".into(), "target/\nnode_modules/\n".into()),
        (
            "README.md".into(),
            readme(
                name,
                &[
                    "node --test                                  # the logic, natively",
                    "npm install                                  # once: componentize-js",
                ],
                &format!("target/weir/{name}.wasm"),
                "`weir-plugin.js` is the Weir JavaScript SDK, copied here by `weir plugin new`.",
            ),
        ),
    ];
    (files, "node --test && npm install && weir plugin build .")
}

/// A Rust crate depending on this checkout's SDK.
fn rust_files(name: &str) -> anyhow::Result<(Files, &'static str)> {
    let sdk = std::path::absolute(sdk_path())?;
    let sdk = sdk.canonicalize().unwrap_or(sdk);
    let type_name = type_name(name);
    let files: [(&str, String); 3] = [
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
        (
            "README.md",
            readme(
                name,
                &["cargo test                                   # the logic, natively"],
                &format!(
                    "target/wasm32-wasip2/release/{}.wasm",
                    name.replace('-', "_")
                ),
                "",
            ),
        ),
    ];
    Ok((
        files.into_iter().map(|(f, t)| (f.to_owned(), t)).collect(),
        "cargo test && weir plugin build .",
    ))
}

#[cfg(test)]
mod tests {
    use super::PYTHON_SDK;

    /// A file added to `sdk/python/weir_plugin` must be added to the copy
    /// that `weir plugin new` writes.
    #[test]
    fn the_embedded_python_sdk_has_every_module() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/python/weir_plugin");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".py"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = PYTHON_SDK.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
