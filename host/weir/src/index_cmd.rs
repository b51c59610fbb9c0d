//! `weir plugin publish / yank / search / install`: a static index of
//! signed bundles, and the local plugin store pipelines resolve
//! `plugin = "name@req"` from (`weir_plugin::index`).

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use weir_plugin::bundle::{Bundle, PublicKey, TrustPolicy};
use weir_plugin::index::{INDEX_FILE, Index, Requirement, Store};

/// Largest `index.json` fetched.
const MAX_INDEX_BYTES: u64 = 16 << 20;
/// Largest bundle fetched (a Python plugin's component is ~40 MB).
const MAX_BUNDLE_BYTES: u64 = 256 << 20;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The signed bundle (.weirpkg).
    bundle: PathBuf,
    /// The index directory (created if missing).
    #[arg(long)]
    index: PathBuf,
}

#[derive(Debug, Args)]
pub struct YankArgs {
    /// NAME@VERSION, e.g. pii-mask@1.2.0.
    plugin: String,
    /// The index directory.
    #[arg(long)]
    index: PathBuf,
    /// Un-yank the version.
    #[arg(long)]
    undo: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Show only plugins whose name or description contains this.
    query: Option<String>,
    /// The index: a directory or an http(s) URL.
    #[arg(long)]
    index: String,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// NAME, NAME@VERSION or NAME@REQ (e.g. pii-mask@^1.2): the newest
    /// version the index has that matches and is not yanked.
    plugin: String,
    /// The index: a directory or an http(s) URL.
    #[arg(long)]
    index: String,
    /// A trusted public key (`ed25519:...`, or a .pub file); may repeat.
    #[arg(long = "trusted-key")]
    trusted_keys: Vec<String>,
    /// Trust the keys of this pipeline's (or worker's) `[trust]` section.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The plugin store (default: $WEIR_PLUGIN_STORE, else
    /// $XDG_DATA_HOME/weir/plugins, else ~/.local/share/weir/plugins).
    #[arg(long)]
    store: Option<PathBuf>,
}

/// Where an index is read from.
enum Source {
    Dir(PathBuf),
    Http(String),
}

impl Source {
    fn parse(text: &str) -> Source {
        if text.starts_with("http://") || text.starts_with("https://") {
            Source::Http(text.trim_end_matches('/').to_owned())
        } else {
            Source::Dir(PathBuf::from(text))
        }
    }

    /// The file at `rel` (a path the index names), at most `limit` bytes.
    fn fetch(&self, rel: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
        // An index names files under its root, never elsewhere.
        let inside = Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            bail!("the index names `{rel}`, which is not a path inside the index; refusing it");
        }
        match self {
            Source::Dir(dir) => {
                let path = dir.join(rel);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if bytes.len() as u64 > limit {
                    bail!("{} is larger than {limit} bytes", path.display());
                }
                Ok(bytes)
            }
            Source::Http(base) => {
                let url = format!("{base}/{rel}");
                let mut reply = ureq::get(&url)
                    .call()
                    .with_context(|| format!("cannot fetch {url}"))?;
                reply
                    .body_mut()
                    .with_config()
                    .limit(limit)
                    .read_to_vec()
                    .with_context(|| format!("cannot read {url} (at most {limit} bytes)"))
            }
        }
    }

    fn index(&self) -> anyhow::Result<Index> {
        let bytes = self.fetch(INDEX_FILE, MAX_INDEX_BYTES)?;
        Index::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", self.describe()))
    }

    fn describe(&self) -> String {
        match self {
            Source::Dir(d) => d.join(INDEX_FILE).display().to_string(),
            Source::Http(base) => format!("{base}/{INDEX_FILE}"),
        }
    }
}

/// Reads the index in `dir`, or an empty one if it has none yet.
fn read_index_dir(dir: &Path) -> anyhow::Result<Index> {
    match std::fs::read(dir.join(INDEX_FILE)) {
        Ok(bytes) => Index::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Writes `index.json` aside and renames it over, so a server never
/// serves half of it.
fn write_index_dir(dir: &Path, index: &Index) -> anyhow::Result<()> {
    write_atomically(&dir.join(INDEX_FILE), index.to_json().as_bytes())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    weir_plugin::local::write_whole(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `weir plugin publish BUNDLE --index DIR`.
pub fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let bundle = Bundle::read(&args.bundle)?;
    let signer = match bundle.verify() {
        Ok(Some(key)) => key,
        Ok(None) => bail!(
            "{} is not signed; an index carries signed bundles only: sign it with `weir plugin \
             sign {} --key KEY`",
            args.bundle.display(),
            args.bundle.display()
        ),
        Err(e) => bail!("{}: {e}", args.bundle.display()),
    };
    let m = &bundle.manifest;
    let mut index = read_index_dir(&args.index)?;
    let file = Index::bundle_file(&m.name, &m.version);
    if !index.add(&bundle, &signer.to_string(), file.clone())? {
        println!("{} {} is already published, unchanged", m.name, m.version);
        return Ok(ExitCode::SUCCESS);
    }
    let bytes = std::fs::read(&args.bundle)
        .with_context(|| format!("cannot read {}", args.bundle.display()))?;
    // The bundle first, then the index that names it.
    write_atomically(&args.index.join(&file), &bytes)?;
    write_index_dir(&args.index, &index)?;
    println!(
        "published {} {} ({}, {}, signed by {signer}) in {}",
        m.name,
        m.version,
        m.world,
        bundle.digest(),
        args.index.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `weir plugin yank NAME@VERSION --index DIR [--undo]`.
pub fn yank(args: YankArgs) -> anyhow::Result<ExitCode> {
    let Some((name, version)) = args.plugin.split_once('@') else {
        bail!("name the version to yank as NAME@VERSION, e.g. pii-mask@1.2.0");
    };
    let mut index = read_index_dir(&args.index)?;
    index.set_yanked(name, version, !args.undo)?;
    write_index_dir(&args.index, &index)?;
    println!(
        "{name} {version} {}",
        if args.undo {
            "is no longer yanked"
        } else {
            "yanked: new installs skip it; pipelines that pinned it keep it"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `weir plugin search [QUERY] --index URL_OR_DIR`: each plugin's newest
/// version that is not yanked.
pub fn search(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let index = Source::parse(&args.index).index()?;
    let query = args.query.as_deref().unwrap_or_default().to_lowercase();
    let mut shown = 0;
    for name in index.plugins.keys() {
        let Some(e) = index.select(&Requirement::parse(name)?) else {
            continue;
        };
        if !(name.contains(&query) || e.description.to_lowercase().contains(&query)) {
            continue;
        }
        shown += 1;
        println!(
            "{name} {} ({}, contract {}) signed by {}{}",
            e.version,
            e.world,
            e.contract,
            e.signer,
            if e.description.is_empty() {
                String::new()
            } else {
                format!(": {}", e.description)
            }
        );
    }
    if shown == 0 {
        eprintln!("no plugin matches");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `weir plugin install NAME@REQ --index URL_OR_DIR`: the newest matching
/// version, its signature checked against the trusted keys and its digest
/// against the index, placed in the store.
pub fn install(args: InstallArgs) -> anyhow::Result<ExitCode> {
    let req = Requirement::parse(&args.plugin)?;
    let keys = install_keys(&args)?;
    let store = match &args.store {
        Some(root) => Store { root: root.clone() },
        None => Store::from_env(&|k| std::env::var(k).ok())
            .context("no plugin store: set WEIR_PLUGIN_STORE or HOME, or give --store")?,
    };
    let source = Source::parse(&args.index);
    let index = source.index()?;
    let Some(entry) = index.select(&req) else {
        let listed: Vec<String> = (index.plugins.get(&req.name).into_iter().flatten())
            .map(|e| {
                if e.yanked {
                    format!("{} (yanked)", e.version)
                } else {
                    e.version.clone()
                }
            })
            .collect();
        bail!(
            "{} has no version of {} that matches `{}` (it has: {})",
            source.describe(),
            req.name,
            req.req,
            if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join(", ")
            }
        );
    };
    let bytes = source.fetch(&entry.file, MAX_BUNDLE_BYTES)?;
    // Read from a file beside its final place; renamed in once trusted.
    let staging = store
        .root
        .join(format!(".install-{}.weirpkg", std::process::id()));
    write_atomically(&staging, &bytes)?;
    let checked = check(&staging, &req.name, entry, &keys);
    let _ = std::fs::remove_file(&staging);
    let (bundle, signer) = checked.with_context(|| {
        format!(
            "{} {} from {} refused",
            req.name,
            entry.version,
            source.describe()
        )
    })?;
    let path = store
        .put(&req.name, &entry.version, &bytes)
        .with_context(|| {
            format!(
                "cannot write into the plugin store {}",
                store.root.display()
            )
        })?;
    println!(
        "installed {} {} ({}, signed by {signer}) at {}",
        req.name,
        entry.version,
        bundle.digest(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The keys an install trusts: `--trusted-key`s and the `[trust]` keys of
/// `--config`; at least one.
fn install_keys(args: &InstallArgs) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = crate::bundle_cmd::trusted_keys(&args.trusted_keys)?;
    if let Some(config) = &args.config {
        use weir_pipeline::config::ConfigFile;
        let trust = match ConfigFile::from_file(config).map_err(|e| anyhow::anyhow!("{e}"))? {
            ConfigFile::Pipeline(p) => p.trust,
            ConfigFile::Worker(w) => w.trust,
        };
        keys.extend(trust.policy().keys);
    }
    if keys.is_empty() {
        bail!(
            "say whose signatures to trust: --trusted-key ed25519:... (or a .pub file), or \
             --config with the pipeline whose [trust] keys apply"
        );
    }
    Ok(keys)
}

/// Checks a fetched bundle: what the index says it is, its integrity,
/// its signature by a trusted key (the one the index names), and its
/// digest against the index. Returns it and its signer.
fn check(
    path: &Path,
    name: &str,
    entry: &weir_plugin::index::Entry,
    keys: &[PublicKey],
) -> anyhow::Result<(Bundle, PublicKey)> {
    let bundle = Bundle::read(path)?;
    let m = &bundle.manifest;
    if m.name != name || m.version != entry.version {
        bail!(
            "the index lists it as {name} {}, but the bundle says {} {}",
            entry.version,
            m.name,
            m.version
        );
    }
    let grants: Vec<_> = (m.capabilities.iter())
        .filter_map(|c| weir_plugin::Capability::parse(c))
        .collect();
    let policy = TrustPolicy {
        keys: keys.to_vec(),
        ..TrustPolicy::default()
    };
    let signer = policy
        .admit(&bundle, &grants)?
        .context("the bundle is not signed")?;
    if signer.to_string() != entry.signer {
        bail!(
            "signed by {signer}, but the index says {}; the index and the bundle disagree",
            entry.signer
        );
    }
    let digest = bundle.digest();
    if digest != entry.digest {
        bail!(
            "its component's digest is {digest}, but the index lists {}; the bundle is not the \
             one published",
            entry.digest
        );
    }
    Ok((bundle, signer))
}
