//! `weir plugin new DIR --lang rust|python|js|c --world
//! transformer|router|resolver`: a working plugin project with a passing
//! test and fixtures for `weir plugin test` and bundles. The projects are
//! made from `host/weir/templates/` (`@@NAME@@`-style placeholders).
//! Python, JavaScript and C projects get their own copy of the SDK this
//! weir was built with, so they need nothing but the componentizer (or
//! clang) to build.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use weir_plugin::World;
use weir_plugin_build::guest::{COMPONENTIZE_JS, COMPONENTIZE_PY, Lang};

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

/// The C SDK (`sdk/c`), file by file.
const C_SDK: &[(&str, &str)] = &[
    (
        "weir_plugin.h",
        include_str!("../../../sdk/c/weir_plugin.h"),
    ),
    (
        "weir_plugin.c",
        include_str!("../../../sdk/c/weir_plugin.c"),
    ),
    ("weir_json.h", include_str!("../../../sdk/c/weir_json.h")),
    ("weir_json.c", include_str!("../../../sdk/c/weir_json.c")),
];

/// A template file: where it goes in the project (placeholders allowed)
/// and its text.
type Template = (&'static str, &'static str);

macro_rules! template {
    ($dest:expr, $file:expr) => {
        ($dest, include_str!(concat!("../templates/", $file)))
    };
}

/// `$make!("transformer")`, `$make!("router")` or `$make!("resolver")`
/// for `$world`: template paths are literals, so each world is spelled out.
macro_rules! per_world {
    ($world:expr, $make:ident) => {
        match $world {
            World::Transformer => $make!("transformer"),
            World::Router => $make!("router"),
            World::Resolver => $make!("resolver"),
        }
    };
}

/// Each world's fixtures, the same in every language.
fn fixtures(world: World) -> [Template; 3] {
    macro_rules! fixtures_of {
        ($w:literal) => {
            [
                template!(
                    "fixtures/config.json",
                    concat!("fixtures/", $w, "/config.json")
                ),
                template!(
                    "fixtures/input.jsonl",
                    concat!("fixtures/", $w, "/input.jsonl")
                ),
                template!(
                    "fixtures/expected.jsonl",
                    concat!("fixtures/", $w, "/expected.jsonl")
                ),
            ]
        };
    }
    per_world!(world, fixtures_of)
}

/// A language's templates for a world.
fn templates(lang: Lang, world: World) -> Vec<Template> {
    macro_rules! rust {
        ($w:literal) => {
            vec![
                template!("Cargo.toml", "rust/Cargo.toml"),
                template!("src/lib.rs", concat!("rust/", $w, ".rs")),
            ]
        };
    }
    macro_rules! python {
        ($w:literal) => {
            vec![
                template!("pyproject.toml", "python/pyproject.toml"),
                template!("app.py", "python/app.py"),
                template!("@@MODULE@@.py", concat!("python/", $w, ".py")),
                template!("test_@@MODULE@@.py", concat!("python/test_", $w, ".py")),
                (".gitignore", "target/\n__pycache__/\n"),
            ]
        };
    }
    macro_rules! c {
        ($w:literal) => {
            vec![
                template!("weir-plugin.toml", "c/weir-plugin.toml"),
                template!("@@MODULE@@.c", concat!("c/", $w, ".c")),
                (".gitignore", "target/\n"),
            ]
        };
    }
    macro_rules! js {
        ($w:literal) => {
            vec![
                template!("package.json", "js/package.json"),
                template!("plugin.js", "js/plugin.js"),
                template!("@@NAME@@.js", concat!("js/", $w, ".js")),
                template!("test/@@NAME@@.test.js", concat!("js/", $w, ".test.js")),
                ("weir-plugin.js", JS_SDK),
                (".gitignore", "target/\nnode_modules/\n"),
            ]
        };
    }
    match lang {
        Lang::Rust => per_world!(world, rust),
        Lang::Python => per_world!(world, python),
        Lang::Js => per_world!(world, js),
        Lang::C => per_world!(world, c),
    }
}

/// What a language's project runs and how it is described: the README's
/// first lines, the built component, a README note, and the next step.
struct Steps {
    first: Vec<String>,
    component: String,
    note: &'static str,
    next: &'static str,
}

fn steps(lang: Lang, name: &str) -> Steps {
    match lang {
        Lang::Rust => Steps {
            first: vec![
                "cargo test                                   # the logic, natively".into(),
            ],
            component: format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            ),
            note: "`weir plugin build` compiles in a build cache shared by every Rust plugin \
                   project (`$CARGO_TARGET_DIR` when set, else `~/.cache/weir/rust-target`), so \
                   the SDK compiles once, and copies the component here. The SDK itself is \
                   written once per version to `~/.local/share/weir/sdk/` (or `$WEIR_SDK_DIR`), \
                   outside any checkout, so moving this project breaks nothing.",
            next: "cargo test && weir plugin build .",
        },
        Lang::Python => Steps {
            first: vec![
                "python3 -m unittest                          # the logic, natively".into(),
                format!("pip install {COMPONENTIZE_PY}         # once"),
            ],
            component: format!("target/weir/{name}.wasm"),
            note: "`weir_plugin/` is the Weir Python SDK, copied here by `weir plugin new`.",
            next: "python3 -m unittest && weir plugin build .",
        },
        Lang::Js => Steps {
            first: vec![
                "node --test                                  # the logic, natively".into(),
                "npm install                                  # once: componentize-js".into(),
            ],
            component: format!("target/weir/{name}.wasm"),
            note: "`weir-plugin.js` is the Weir JavaScript SDK, copied here by `weir plugin new`.",
            next: "node --test && npm install && weir plugin build .",
        },
        Lang::C => Steps {
            first: vec![
                "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32   # once".into(),
            ],
            component: format!("target/weir/{name}.wasm"),
            note: "`weir_plugin.[ch]` and `weir_json.[ch]` are the Weir C SDK, copied here by \
                   `weir plugin new`. The fixtures are the test: `weir plugin test --expect` \
                   checks the built component against them.",
            next: "weir plugin build . && weir plugin test target/weir/*.wasm --config fixtures/config.json --input fixtures/input.jsonl --expect fixtures/expected.jsonl",
        },
    }
}

pub fn new(dir: &Path, lang: &str, world: &str) -> anyhow::Result<ExitCode> {
    let lang = Lang::parse(lang)
        .with_context(|| format!("`--lang {lang}`: expected rust, python, js or c"))?;
    let world = match world {
        "transformer" => World::Transformer,
        "router" => World::Router,
        "resolver" => World::Resolver,
        other => bail!("`--world {other}`: expected transformer, router or resolver"),
    };
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
    let mut files = templates(lang, world);
    files.extend(fixtures(world));
    let (componentizer, componentizer_version) = COMPONENTIZE_JS
        .rsplit_once('@')
        .expect("the pin names a version");
    let sdk = if lang == Lang::Rust {
        crate::rust_sdk::install()?.display().to_string()
    } else {
        String::new()
    };
    let (export, call) = match (lang, world) {
        (Lang::Python, World::Transformer) => ("export_transformer", ""),
        (Lang::Python, World::Router) => ("export_router", ""),
        (Lang::Python, World::Resolver) => ("export_resolver", ""),
        (_, World::Transformer) => ("exportTransformer", "transform"),
        (_, World::Router) => ("exportRouter", "route"),
        (_, World::Resolver) => ("exportResolver", "resolve"),
    };
    let vars = [
        ("@@NAME@@", name.to_owned()),
        ("@@MODULE@@", name.replace('-', "_")),
        ("@@TYPE@@", type_name(name)),
        ("@@WORLD@@", world.name().to_owned()),
        ("@@SDK@@", sdk),
        ("@@EXPORT@@", export.to_owned()),
        ("@@CALL@@", call.to_owned()),
        ("@@COMPONENTIZER@@", componentizer.to_owned()),
        (
            "@@COMPONENTIZER_VERSION@@",
            componentizer_version.to_owned(),
        ),
    ];
    let fill = |text: &str| {
        vars.iter()
            .fold(text.to_owned(), |t, (from, to)| t.replace(from, to))
    };
    let steps = steps(lang, name);
    let first: Vec<&str> = steps.first.iter().map(String::as_str).collect();
    let mut written: Files = files
        .iter()
        .map(|(dest, text)| (fill(dest), fill(text)))
        .collect();
    written.push((
        "README.md".into(),
        readme(name, &first, &steps.component, steps.note),
    ));
    match lang {
        Lang::Python => written.extend(
            PYTHON_SDK
                .iter()
                .map(|(f, t)| (format!("weir_plugin/{f}"), t.to_string())),
        ),
        Lang::C => written.extend(C_SDK.iter().map(|(f, t)| (f.to_string(), t.to_string()))),
        _ => {}
    }
    for (file, text) in &written {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {} (a {} {} plugin)",
        dir.display(),
        lang.name(),
        world.name()
    );
    println!("next: cd {} && {}", dir.display(), steps.next);
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
