//! Plugins in Python, JavaScript and C: a project directory built into a
//! component with componentize-py, componentize-js, or clang (wasm32-wasi)
//! plus C bindings and component encoding done here (wit-bindgen-c,
//! wit-component).
//!
//! A Python project says what it is in `pyproject.toml`:
//!
//! ```toml
//! [project]
//! name = "pii-mask-py"
//! [tool.weir]
//! world = "transformer"   # transformer | router | resolver
//! module = "app"          # the module defining `WitWorld` (default "app")
//! ```
//!
//! A JavaScript project in `package.json`: `name`, `main` (the entry
//! module, default `index.js`) and `"weir": {"world": "transformer"}`.
//!
//! A C project in `weir-plugin.toml`: `name` and `world`; every `*.c` file
//! in the project's top directory but `test_*.c` is compiled, together
//! with the generated bindings (`<world>.h`, `<world>.c`).
//!
//! Both are built against this build's own copy of the contract
//! (`wit/weir-plugin.wit`), and the component lands in
//! `target/weir/<name>.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The contract guests are built against: the one this host implements.
pub const CONTRACT_WIT: &str = include_str!("../../../wit/weir-plugin.wit");

/// The componentize-py release the SDK and examples are tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The componentize-js release the SDK and examples are tested with.
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

const WORLDS: &[&str] = &["transformer", "router", "resolver"];

/// The language of a plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
    C,
}

impl Lang {
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::C => "c",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "rust" | "rs" => Some(Lang::Rust),
            "python" | "py" => Some(Lang::Python),
            "js" | "javascript" => Some(Lang::Js),
            "c" => Some(Lang::C),
            _ => None,
        }
    }
}

/// What a project directory holds: `Cargo.toml` (Rust), `pyproject.toml`
/// (Python), `package.json` (JavaScript) or `weir-plugin.toml` (C), looked
/// for in that order.
pub fn detect(dir: &Path) -> Result<Lang, String> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Lang::Rust)
    } else if dir.join("pyproject.toml").is_file() {
        Ok(Lang::Python)
    } else if dir.join("package.json").is_file() {
        Ok(Lang::Js)
    } else if dir.join("weir-plugin.toml").is_file() {
        Ok(Lang::C)
    } else if dir.is_dir() {
        Err(format!(
            "{} is not a plugin project: it has no Cargo.toml (Rust), pyproject.toml \
             (Python), package.json (JavaScript) or weir-plugin.toml (C)",
            dir.display()
        ))
    } else {
        Err(format!("{}: no such directory", dir.display()))
    }
}

/// A Python or JavaScript plugin project, read from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestProject {
    pub lang: Lang,
    pub dir: PathBuf,
    pub name: String,
    pub world: String,
    /// The Python module defining `WitWorld`, or the JS entry file.
    pub entry: String,
}

impl GuestProject {
    /// Reads the project in `dir` (`lang` Python or Js).
    pub fn read(dir: &Path, lang: Lang) -> Result<GuestProject, String> {
        let (file, name, world, entry) = match lang {
            Lang::Rust => return Err("Rust plugin crates are built with cargo".into()),
            Lang::Python => {
                let file = dir.join("pyproject.toml");
                let text = read(&file)?;
                let doc: toml::Table =
                    toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
                let get = |table: &str, key: &str| -> Option<String> {
                    let mut v = doc.get(table)?;
                    if table == "tool" {
                        v = v.get("weir")?;
                    }
                    v.get(key)?.as_str().map(str::to_owned)
                };
                (
                    file,
                    get("project", "name"),
                    get("tool", "world"),
                    get("tool", "module").unwrap_or_else(|| "app".into()),
                )
            }
            Lang::C => {
                let file = dir.join("weir-plugin.toml");
                let text = read(&file)?;
                let doc: toml::Table =
                    toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
                let get = |key: &str| doc.get(key).and_then(|v| v.as_str()).map(str::to_owned);
                (file, get("name"), get("world"), String::new())
            }
            Lang::Js => {
                let file = dir.join("package.json");
                let text = read(&file)?;
                let doc: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
                let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
                (
                    file,
                    s(&doc["name"]),
                    s(&doc["weir"]["world"]),
                    s(&doc["main"]).unwrap_or_else(|| "index.js".into()),
                )
            }
        };
        let where_world = match lang {
            Lang::Python => "`world` under [tool.weir]",
            Lang::C => "`world`",
            _ => "`weir.world`",
        };
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("{}: the project has no `name`", file.display()))?;
        let world = world.ok_or_else(|| {
            format!(
                "{}: say which world the plugin targets with {where_world} \
                 (one of {})",
                file.display(),
                WORLDS.join(", ")
            )
        })?;
        if !WORLDS.contains(&world.as_str()) {
            return Err(format!(
                "{}: unknown world {world:?}; expected one of {}",
                file.display(),
                WORLDS.join(", ")
            ));
        }
        Ok(GuestProject {
            lang,
            dir: dir.to_path_buf(),
            name,
            world,
            entry,
        })
    }

    /// Where the component is written.
    pub fn output(&self) -> PathBuf {
        self.dir
            .join("target")
            .join("weir")
            .join(format!("{}.wasm", self.name))
    }

    /// Builds the component; returns its path.
    ///
    /// The componentizers read sources inside a sandbox rooted at the
    /// directory they run in, where symlinks out of it do not resolve; so
    /// every build runs in a copy of the project with links resolved
    /// (`target/weir/src`), which also holds the contract.
    pub fn build(&self) -> Result<PathBuf, String> {
        let work = self.dir.join("target").join("weir");
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        // Two builds of one project at once would share the staged copy.
        let lock = std::fs::File::create(work.join("build.lock"))
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| format!("cannot lock {}: {e}", work.display()))?;
        let built = self.build_locked(&work);
        drop(lock);
        built
    }

    fn build_locked(&self, work: &Path) -> Result<PathBuf, String> {
        let stage = work.join("src");
        let _ = std::fs::remove_dir_all(&stage);
        copy_sources(&self.dir, &stage)?;
        let wit = stage.join(".weir-wit");
        std::fs::create_dir_all(&wit)
            .and_then(|()| std::fs::write(wit.join("weir-plugin.wit"), CONTRACT_WIT))
            .map_err(|e| format!("cannot write the contract to {}: {e}", wit.display()))?;
        let out = std::path::absolute(self.output()).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&out);
        let mut cmd = match self.lang {
            Lang::Python => {
                let mut cmd = tool("WEIR_COMPONENTIZE_PY", "componentize-py", &self.dir)?;
                // CPython links all of WASI; a plugin is granted none of
                // it, so every WASI import becomes a trapping stub and the
                // component imports the Weir host alone. (The price: the
                // seed of Python's `random` is fixed at build time.)
                cmd.args(["-d", ".weir-wit", "-w", &self.world]).args([
                    "componentize",
                    "--stub-wasi",
                    &self.entry,
                    "-p",
                    ".",
                ]);
                cmd
            }
            Lang::Js => {
                let mut cmd = tool("WEIR_COMPONENTIZE_JS", "componentize-js", &self.dir)?;
                cmd.args([&self.entry, "-w", ".weir-wit", "-n", &self.world])
                    // Left on, these features import WASI (HTTP, stdio,
                    // randomness, clocks, and the filesystem through the
                    // adapter), which a plugin is not granted; off, the
                    // component imports the Weir host alone.
                    .args(["-d", "http", "fetch-event", "stdio", "random", "clocks"]);
                cmd
            }
            Lang::C => return self.build_c(&stage, &out),
            Lang::Rust => unreachable!("read refuses Rust projects"),
        };
        cmd.arg("-o").arg(&out).current_dir(&stage);
        let output = cmd
            .output()
            .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
        if !output.status.success() || !out.is_file() {
            return Err(format!(
                "building {} failed:\n{}{}",
                self.dir.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(out)
    }

    /// C: generate the bindings, compile everything with clang for
    /// wasm32-wasi (a reactor: no `main`), and encode the core module as a
    /// component. Nothing links WASI unless the code calls into it (and
    /// then the encoder refuses the module: plugins are granted none).
    fn build_c(&self, stage: &Path, out: &Path) -> Result<PathBuf, String> {
        let mut resolve = wit_parser::Resolve::default();
        let package = resolve
            .push_str("weir-plugin.wit", CONTRACT_WIT)
            .map_err(|e| format!("the contract does not parse: {e:#}"))?;
        let world = resolve
            .select_world(&[package], Some(&self.world))
            .map_err(|e| format!("{e:#}"))?;
        let mut files = wit_bindgen_core::Files::default();
        wit_bindgen_c::Opts::default()
            .build()
            .generate(&mut resolve, world, &mut files)
            .map_err(|e| format!("generating C bindings: {e:#}"))?;
        let mut inputs = Vec::new();
        for (name, bytes) in files.iter() {
            std::fs::write(stage.join(name), bytes).map_err(|e| format!("{name}: {e}"))?;
            if name.ends_with(".c") || name.ends_with(".o") {
                inputs.push(PathBuf::from(name));
            }
        }
        let mut sources: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".c") && !n.starts_with("test_"))
            .map(PathBuf::from)
            .collect();
        sources.sort();
        inputs.extend(sources);
        let core = stage.join("core.wasm");
        let mut cmd = c_compiler()?;
        cmd.args([
            "--target=wasm32-wasi",
            "-O2",
            "-std=c11",
            "-Wall",
            "-Werror",
            "-mexec-model=reactor",
            "-fuse-ld=lld",
            "-I.",
            "-o",
            "core.wasm",
        ])
        .args(&inputs)
        .current_dir(stage);
        let output = cmd
            .output()
            .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
        if !output.status.success() {
            return Err(format!(
                "compiling {} failed:\n{}{}",
                self.dir.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let module = std::fs::read(&core).map_err(|e| format!("{}: {e}", core.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .and_then(|e| e.encode())
            .map_err(|e| {
                format!(
                    "encoding {} as a component failed (a plugin may import only the \
                     Weir host; does the code call into WASI, e.g. printf or fopen?): {e:#}",
                    self.dir.display()
                )
            })?;
        std::fs::write(out, component).map_err(|e| format!("{}: {e}", out.display()))?;
        Ok(out.to_path_buf())
    }
}

/// `$WEIR_CC`, else `clang-14` or `clang` on the PATH (with the
/// wasm32-wasi libc, compiler builtins and lld installed: Debian's `clang`,
/// `lld`, `wasi-libc` and `libclang-rt-dev-wasm32`).
fn c_compiler() -> Result<Command, String> {
    if let Some(cc) = std::env::var_os("WEIR_CC") {
        return Ok(Command::new(cc));
    }
    for name in ["clang-14", "clang"] {
        if on_path(name) {
            return Ok(Command::new(name));
        }
    }
    Err(
        "clang is not installed: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32, \
         or point WEIR_CC at a clang that targets wasm32-wasi"
            .into(),
    )
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

fn read(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// The componentizer: `$env_var` if set, else the project's own
/// `node_modules/.bin`, else `name` on the PATH.
fn tool(env_var: &str, name: &str, dir: &Path) -> Result<Command, String> {
    if let Some(path) = std::env::var_os(env_var) {
        return Ok(Command::new(path));
    }
    let local = dir.join("node_modules").join(".bin").join(name);
    if local.is_file() {
        return Ok(Command::new(
            std::path::absolute(local).map_err(|e| e.to_string())?,
        ));
    }
    if on_path(name) {
        return Ok(Command::new(name));
    }
    let install = match name {
        "componentize-py" => format!("pip install {COMPONENTIZE_PY}"),
        _ => format!("npm install --save-dev {COMPONENTIZE_JS} (in the project)"),
    };
    Err(format!(
        "{name} is not installed: {install}, or point {env_var} at it"
    ))
}

/// Copies a project's files into `to`, resolving symlinks and leaving out
/// dependencies, build output, caches and version control.
fn copy_sources(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let entries = std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        if [".git", "node_modules", "target", "__pycache__"]
            .contains(&name.to_string_lossy().as_ref())
        {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        // `metadata` follows symlinks.
        let meta = std::fs::metadata(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        if meta.is_dir() {
            copy_sources(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("weir-guest-{}-{}", std::process::id(), files.len()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in files {
            std::fs::write(dir.join(f), text).unwrap();
        }
        dir
    }

    #[test]
    fn manifests_are_read_and_their_mistakes_named() {
        let dir = project(&[(
            "pyproject.toml",
            "[project]\nname = \"p\"\n[tool.weir]\nworld = \"transformer\"\n",
        )]);
        assert_eq!(detect(&dir), Ok(Lang::Python));
        let p = GuestProject::read(&dir, Lang::Python).unwrap();
        assert_eq!((p.name.as_str(), p.world.as_str()), ("p", "transformer"));
        assert_eq!(p.entry, "app");

        let dir = project(&[
            (
                "package.json",
                r#"{"name": "j", "weir": {"world": "mixer"}}"#,
            ),
            ("x", ""),
        ]);
        assert_eq!(detect(&dir), Ok(Lang::Js));
        let err = GuestProject::read(&dir, Lang::Js).unwrap_err();
        assert!(err.contains("unknown world \"mixer\""), "{err}");

        let dir = project(&[("package.json", r#"{"name": "j"}"#), ("x", ""), ("y", "")]);
        let err = GuestProject::read(&dir, Lang::Js).unwrap_err();
        assert!(err.contains("`weir.world`"), "{err}");

        let dir = project(&[("README", ""), ("x", ""), ("y", ""), ("z", "")]);
        assert!(detect(&dir).unwrap_err().contains("not a plugin project"));
    }
}
