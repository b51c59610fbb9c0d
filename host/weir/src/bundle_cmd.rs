//! `weir plugin keygen / pack / sign / verify`, and `inspect` of bundles.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use weir_plugin::bundle::{Bundle, Fixtures, Manifest, PublicKey, SecretKey, TrustPolicy};
use weir_plugin::{PluginEngine, PluginLimits};

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The component (.wasm) to pack.
    component: PathBuf,
    /// The plugin's name.
    #[arg(long)]
    name: String,
    /// The plugin's version.
    #[arg(long)]
    version: String,
    #[arg(long, default_value = "")]
    description: String,
    #[arg(long, default_value = "")]
    author: String,
    /// A directory with input.jsonl, expected.jsonl and optionally
    /// config.json: the bundle's self-test.
    #[arg(long)]
    fixtures: Option<PathBuf>,
    /// Recommended memory limit in MiB.
    #[arg(long, default_value_t = PluginLimits::default().memory_mb)]
    memory_mb: u64,
    /// Recommended per-batch deadline in milliseconds.
    #[arg(long, default_value_t = PluginLimits::default().deadline_ms)]
    deadline_ms: u64,
    /// Where to write the bundle (default: NAME-VERSION.weirpkg).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `weir plugin keygen PREFIX`: PREFIX.key (secret, mode 0600) and
/// PREFIX.pub.
pub fn keygen(prefix: &Path) -> anyhow::Result<ExitCode> {
    let key = SecretKey::generate()?;
    let secret = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    if secret.exists() {
        bail!("{} exists; refusing to overwrite a key", secret.display());
    }
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret)
            .with_context(|| format!("creating {}", secret.display()))?;
        f.write_all(key.to_file_text().as_bytes())?;
    }
    std::fs::write(&public, format!("{}\n", key.public()))?;
    println!("secret key: {} (keep it private)", secret.display());
    println!("public key: {}", public.display());
    println!("{}", key.public());
    Ok(ExitCode::SUCCESS)
}

/// `weir plugin pack`: an unsigned bundle from a component.
pub fn pack(engine: &PluginEngine, args: PackArgs) -> anyhow::Result<ExitCode> {
    let info = engine.inspect(&args.name, &args.component)?;
    let (Some(world), Some(contract)) = (info.world, info.contract.clone()) else {
        bail!(
            "{} is not a Weir plugin (it exports no Weir world)",
            args.component.display()
        );
    };
    let component = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let fixtures = match &args.fixtures {
        Some(dir) => {
            let read = |name: &str| {
                std::fs::read(dir.join(name))
                    .with_context(|| format!("reading fixture {}", dir.join(name).display()))
            };
            Some(Fixtures {
                config: read("config.json").unwrap_or_else(|_| b"{}".to_vec()),
                input: read("input.jsonl")?,
                expected: read("expected.jsonl")?,
            })
        }
        None => None,
    };
    let manifest = Manifest {
        name: args.name.clone(),
        version: args.version.clone(),
        world: world.name().to_owned(),
        contract,
        wire_version: weir_core::wire::WIRE_VERSION,
        component_sha256: String::new(),
        capabilities: info.needs.iter().map(|c| c.name().to_owned()).collect(),
        limits: PluginLimits {
            memory_mb: args.memory_mb,
            deadline_ms: args.deadline_ms,
            fuel: None,
        },
        description: args.description,
        author: args.author,
    };
    let bundle = Bundle::new(manifest, component, fixtures);
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}-{}.weirpkg", args.name, args.version)));
    bundle.write(&out)?;
    println!("packed {} ({}, unsigned)", out.display(), bundle.digest());
    Ok(ExitCode::SUCCESS)
}

/// `weir plugin sign BUNDLE --key KEY`: signs in place.
pub fn sign(bundle_path: &Path, key_path: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let key = SecretKey::from_file_text(&text)?;
    let mut bundle = Bundle::read(bundle_path)?;
    if let Err(e) = bundle.verify() {
        bail!("refusing to sign {}: {e}", bundle_path.display());
    }
    bundle.sign(&key);
    bundle.write(bundle_path)?;
    println!("signed {} with {}", bundle_path.display(), key.public());
    Ok(ExitCode::SUCCESS)
}

/// `weir plugin verify BUNDLE [--trusted-key K]...`: prints signer, digest
/// and capabilities, or why the bundle is not to be trusted (exit 1).
/// Public keys given as `ed25519:...` or as the path of a `.pub` file.
pub fn trusted_keys(trusted: &[String]) -> anyhow::Result<Vec<PublicKey>> {
    Ok(trusted
        .iter()
        .map(|k| match std::fs::read_to_string(k) {
            Ok(text) => PublicKey::parse(&text),
            Err(_) => PublicKey::parse(k),
        })
        .collect::<Result<Vec<_>, _>>()?)
}

pub fn verify(bundle_path: &Path, trusted: &[String]) -> anyhow::Result<ExitCode> {
    let bundle = Bundle::read(bundle_path)?;
    let keys = trusted_keys(trusted)?;
    let result = if keys.is_empty() {
        bundle.verify().and_then(|signer| match signer {
            Some(key) => Ok(Some(key)),
            None => Err(weir_plugin::bundle::TrustError::Unsigned),
        })
    } else {
        let grants: Vec<_> = bundle
            .manifest
            .capabilities
            .iter()
            .filter_map(|c| weir_plugin::Capability::parse(c))
            .collect();
        TrustPolicy {
            keys,
            ..TrustPolicy::default()
        }
        .admit(&bundle, &grants)
    };
    match result {
        Ok(signer) => {
            let m = &bundle.manifest;
            println!("bundle:       {} {} ({})", m.name, m.version, m.world);
            println!(
                "signer:       {}",
                signer.map_or("unsigned".to_owned(), |k| k.to_string())
            );
            println!("digest:       {}", bundle.digest());
            println!("capabilities: {}", list(&m.capabilities));
            println!("verified");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}: not verified: {e}", bundle_path.display());
            Ok(ExitCode::from(1))
        }
    }
}

/// A bundle's component written to a temporary file (the engine loads
/// components from files), removed when dropped.
pub struct Extracted(pub PathBuf);

impl Extracted {
    /// Writes `bundle`'s component; `purpose` names the file.
    pub fn write(bundle: &Bundle, purpose: &str) -> anyhow::Result<Extracted> {
        let path = std::env::temp_dir().join(format!(
            "weir-{purpose}-{}-{}.wasm",
            std::process::id(),
            bundle.manifest.name
        ));
        std::fs::write(&path, &bundle.component)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Extracted(path))
    }
}

/// A plugin file as the engine loads it: a bare component, or a bundle
/// with its component extracted (removed when this drops).
pub struct PluginFile {
    /// The bundle's plugin name, or the component file's stem.
    pub name: String,
    /// The component to load.
    pub component: PathBuf,
    pub bundle: Option<Bundle>,
    _extracted: Option<Extracted>,
}

impl PluginFile {
    /// Opens `file`; a bundle's component is extracted, `purpose` naming
    /// the temporary file.
    pub fn open(file: &Path, purpose: &str) -> anyhow::Result<PluginFile> {
        if !weir_plugin::bundle::is_bundle(file) {
            return Ok(PluginFile {
                name: crate::plugin_cmd::plugin_name(file),
                component: file.to_owned(),
                bundle: None,
                _extracted: None,
            });
        }
        let bundle = Bundle::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let extracted = Extracted::write(&bundle, purpose)?;
        Ok(PluginFile {
            name: bundle.manifest.name.clone(),
            component: extracted.0.clone(),
            bundle: Some(bundle),
            _extracted: Some(extracted),
        })
    }
}

impl Drop for Extracted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The manifest part of `weir plugin inspect` for a bundle; returns the
/// component, extracted for the component part.
pub fn inspect_bundle(path: &Path) -> anyhow::Result<Extracted> {
    let bundle = Bundle::read(path)?;
    let m = &bundle.manifest;
    println!("bundle:       {}", path.display());
    println!("name:         {} {}", m.name, m.version);
    println!("world:        {}", m.world);
    println!("contract:     weir:plugin@{}", m.contract);
    println!("wire version: {}", m.wire_version);
    println!("digest:       {}", m.component_sha256);
    println!("capabilities: {}", list(&m.capabilities));
    println!(
        "limits:       {} MiB, {} ms per batch",
        m.limits.memory_mb, m.limits.deadline_ms
    );
    if !m.description.is_empty() {
        println!("description:  {}", m.description);
    }
    if !m.author.is_empty() {
        println!("author:       {}", m.author);
    }
    println!(
        "fixtures:     {}",
        if bundle.fixtures.is_some() {
            "yes"
        } else {
            "none"
        }
    );
    match bundle.verify() {
        Ok(Some(key)) => println!("signature:    valid, by {key}"),
        Ok(None) => println!("signature:    none (unsigned)"),
        Err(e) => println!("signature:    INVALID: {e}"),
    }
    println!();
    Extracted::write(&bundle, "inspect")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
