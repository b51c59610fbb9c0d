//! Publishing and installing signed bundles: the static plugin index, the
//! local plugin store, and plugin requirements (`pii-mask@^1.2`).
//!
//! - An **index** is a directory any web server can serve: `index.json`
//!   lists each plugin's versions (world, contract, component digest,
//!   signer, capabilities, yanked or not, the bundle's file), and the
//!   bundles sit beside it under `bundles/<name>/`. `weir plugin publish`
//!   writes it; a version, once published, never changes.
//! - The **store** holds installed bundles, one directory per plugin and
//!   version: `<store>/<name>/<version>/<name>-<version>.weirpkg`.
//!   `weir plugin install` fills it after checking each bundle's
//!   signature against the trust policy and its digest against the index;
//!   pipelines name plugins in it by requirement.
//!
//! Fetching (files or HTTP) is the caller's business: nothing here does
//! network I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

use crate::bundle::{BUNDLE_EXTENSION, Bundle};
use crate::local::{UserDir, user_dir, write_whole};

/// The index's file name in its directory.
pub const INDEX_FILE: &str = "index.json";

/// The index format this host writes and reads.
pub const INDEX_FORMAT: u32 = 1;

/// `index.json`: every published version of every plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    /// By plugin name, versions in the order published.
    pub plugins: BTreeMap<String, Vec<Entry>>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            format: INDEX_FORMAT,
            plugins: BTreeMap::new(),
        }
    }
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub version: String,
    /// `transformer`, `router` or `resolver`.
    pub world: String,
    /// The contract version the component was built against.
    pub contract: String,
    /// `sha256:<hex>` of the component, as `weir plugin verify` prints it
    /// and `trust.pinned` lists it.
    pub digest: String,
    /// The key that signed the bundle (`ed25519:...`).
    pub signer: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// The bundle, relative to the index's root.
    pub file: String,
    /// A yanked version is never chosen for a new install.
    #[serde(default)]
    pub yanked: bool,
}

/// What is wrong with an index, a requirement or an operation on them.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the index is not valid: {0}")]
    Format(String),
    #[error(
        "the index has format {found}; this weir reads format {INDEX_FORMAT}: use a newer weir"
    )]
    UnknownFormat { found: u32 },
    #[error(
        "`{text}` is not a plugin requirement: write NAME, NAME@VERSION or NAME@REQ (e.g. \
         pii-mask@^1.2): {reason}"
    )]
    Requirement { text: String, reason: String },
    #[error(
        "{name} {version} is already published with digest {published}; a published version \
         never changes: give the new build a new version"
    )]
    Republished {
        name: String,
        version: String,
        published: String,
    },
    #[error("`{version}` is not a semantic version (e.g. 1.2.0): {reason}")]
    Version { version: String, reason: String },
    #[error("{name} {version} is not in the index")]
    NotPublished { name: String, version: String },
}

impl Index {
    /// Parses `index.json`.
    pub fn parse(bytes: &[u8]) -> Result<Index, IndexError> {
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| IndexError::Format(e.to_string()))?;
        if head.format != INDEX_FORMAT {
            return Err(IndexError::UnknownFormat { found: head.format });
        }
        serde_json::from_slice(bytes).map_err(|e| IndexError::Format(e.to_string()))
    }

    /// The index's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an index serializes") + "\n"
    }

    /// Where a version's bundle goes, relative to the index's root.
    pub fn bundle_file(name: &str, version: &str) -> String {
        format!("bundles/{name}/{name}-{version}.{BUNDLE_EXTENSION}")
    }

    /// Adds a signed bundle's version (its file at `file`); `false` if
    /// that very version (same digest) is already there.
    pub fn add(&mut self, bundle: &Bundle, signer: &str, file: String) -> Result<bool, IndexError> {
        let m = &bundle.manifest;
        parse_version(&m.version)?;
        let versions = self.plugins.entry(m.name.clone()).or_default();
        let digest = bundle.digest();
        if let Some(e) = versions.iter().find(|e| e.version == m.version) {
            if e.digest == digest {
                return Ok(false);
            }
            return Err(IndexError::Republished {
                name: m.name.clone(),
                version: m.version.clone(),
                published: e.digest.clone(),
            });
        }
        versions.push(Entry {
            version: m.version.clone(),
            world: m.world.clone(),
            contract: m.contract.clone(),
            digest,
            signer: signer.to_owned(),
            capabilities: m.capabilities.clone(),
            description: m.description.clone(),
            file,
            yanked: false,
        });
        Ok(true)
    }

    /// Marks a version yanked (or not): installs skip it, pipelines that
    /// locked it keep it.
    pub fn set_yanked(
        &mut self,
        name: &str,
        version: &str,
        yanked: bool,
    ) -> Result<(), IndexError> {
        let entry = (self.plugins.get_mut(name).into_iter().flatten())
            .find(|e| e.version == version)
            .ok_or_else(|| IndexError::NotPublished {
                name: name.to_owned(),
                version: version.to_owned(),
            })?;
        entry.yanked = yanked;
        Ok(())
    }

    /// The newest version of `req`'s plugin that it accepts and that is
    /// not yanked.
    pub fn select(&self, req: &Requirement) -> Option<&Entry> {
        (self.plugins.get(&req.name).into_iter().flatten())
            .filter(|e| !e.yanked)
            .filter_map(|e| Some((Version::parse(&e.version).ok()?, e)))
            .filter(|(v, _)| req.matches(v))
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, e)| e)
    }
}

fn parse_version(text: &str) -> Result<Version, IndexError> {
    Version::parse(text).map_err(|e| IndexError::Version {
        version: text.to_owned(),
        reason: e.to_string(),
    })
}

/// A plugin by name and acceptable versions: `pii-mask` (any),
/// `pii-mask@1.2.0` (that version, as Cargo's `=1.2.0`), `pii-mask@^1.2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub name: String,
    pub req: VersionReq,
    /// As written.
    pub text: String,
}

impl Requirement {
    pub fn parse(text: &str) -> Result<Requirement, IndexError> {
        let bad = |reason: &str| IndexError::Requirement {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (name, req) = match text.split_once('@') {
            Some((name, req)) => (name, req.trim()),
            None => (text, "*"),
        };
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(bad("the name is lower-case letters, digits, `-` and `_`"));
        }
        // A bare version means exactly that version.
        let req = if Version::parse(req).is_ok() {
            VersionReq::parse(&format!("={req}"))
        } else {
            VersionReq::parse(req)
        }
        .map_err(|e| bad(&e.to_string()))?;
        Ok(Requirement {
            name: name.to_owned(),
            req,
            text: text.to_owned(),
        })
    }

    pub fn matches(&self, version: &Version) -> bool {
        self.req.matches(version)
    }
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The local plugin store (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    /// The store at `$WEIR_PLUGIN_STORE`, else
    /// `$XDG_DATA_HOME/weir/plugins`, else `$HOME/.local/share/weir/plugins`
    /// (variables read through `env`).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<Store> {
        let var = |name: &str| env(name).map(std::ffi::OsString::from);
        let root = match var("WEIR_PLUGIN_STORE").filter(|v| !v.is_empty()) {
            Some(root) => PathBuf::from(root),
            None => user_dir(UserDir::Data, &var)?.join("weir/plugins"),
        };
        Some(Store { root })
    }

    /// Where the bundle of `name` `version` is (or goes).
    pub fn bundle_path(&self, name: &str, version: &str) -> PathBuf {
        self.root
            .join(name)
            .join(version)
            .join(format!("{name}-{version}.{BUNDLE_EXTENSION}"))
    }

    /// The installed versions of `name`, newest first.
    pub fn installed(&self, name: &str) -> Vec<Version> {
        let mut versions: Vec<Version> = std::fs::read_dir(self.root.join(name))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| Version::parse(&d.file_name().to_string_lossy()).ok())
            .filter(|v| self.bundle_path(name, &v.to_string()).is_file())
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions
    }

    /// The newest installed version `req` accepts.
    pub fn resolve(&self, req: &Requirement) -> Option<Version> {
        self.installed(&req.name)
            .into_iter()
            .find(|v| req.matches(v))
    }

    /// Places a bundle file's bytes at its store path (written aside, then
    /// renamed, so a reader never sees half a bundle).
    pub fn put(&self, name: &str, version: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let target = self.bundle_path(name, version);
        write_whole(&target, bytes)?;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Manifest;

    fn bundle(version: &str, component: &[u8]) -> Bundle {
        Bundle::new(
            Manifest {
                name: "mask".into(),
                version: version.into(),
                world: "transformer".into(),
                contract: "0.1.0".into(),
                wire_version: weir_core::wire::WIRE_VERSION,
                component_sha256: String::new(),
                capabilities: vec![],
                limits: Default::default(),
                description: "masks".into(),
                author: String::new(),
            },
            component.to_vec(),
            None,
        )
    }

    #[test]
    fn requirements_parse_like_cargo_and_a_bare_version_is_exact() {
        let r = Requirement::parse("pii-mask@^1.2").unwrap();
        assert_eq!(r.name, "pii-mask");
        assert!(r.matches(&Version::new(1, 9, 0)) && !r.matches(&Version::new(2, 0, 0)));
        let exact = Requirement::parse("pii-mask@1.2.0").unwrap();
        assert!(exact.matches(&Version::new(1, 2, 0)) && !exact.matches(&Version::new(1, 2, 1)));
        assert!(
            Requirement::parse("pii-mask")
                .unwrap()
                .matches(&Version::new(7, 0, 0))
        );
        for bad in ["", "@1", "Mask@1", "mask@not-a-version"] {
            assert!(Requirement::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_newest_matching_version_not_yanked_is_selected() {
        let mut index = Index::default();
        for v in ["1.0.0", "1.1.0", "1.2.0", "2.0.0"] {
            let b = bundle(v, v.as_bytes());
            assert!(
                index
                    .add(&b, "ed25519:k", Index::bundle_file("mask", v))
                    .unwrap()
            );
        }
        index.set_yanked("mask", "1.2.0", true).unwrap();
        let pick = |r: &str| {
            index
                .select(&Requirement::parse(r).unwrap())
                .map(|e| e.version.clone())
        };
        assert_eq!(pick("mask@^1").as_deref(), Some("1.1.0"));
        assert_eq!(pick("mask").as_deref(), Some("2.0.0"));
        assert_eq!(pick("mask@1.2.0"), None);
        assert_eq!(pick("other"), None);
        let text = index.to_json();
        assert_eq!(Index::parse(text.as_bytes()).unwrap(), index);
    }

    #[test]
    fn a_published_version_never_changes() {
        let mut index = Index::default();
        let file = Index::bundle_file("mask", "1.0.0");
        assert!(
            index
                .add(&bundle("1.0.0", b"a"), "k", file.clone())
                .unwrap()
        );
        assert!(
            !index
                .add(&bundle("1.0.0", b"a"), "k", file.clone())
                .unwrap()
        );
        let err = index.add(&bundle("1.0.0", b"b"), "k", file).unwrap_err();
        assert!(err.to_string().contains("never changes"), "{err}");
        assert!(index.add(&bundle("one", b"c"), "k", "x".into()).is_err());
        assert!(matches!(
            Index::parse(br#"{"format": 9, "plugins": {}}"#),
            Err(IndexError::UnknownFormat { found: 9 })
        ));
    }

    #[test]
    fn the_store_resolves_the_newest_installed_match() {
        let root = std::env::temp_dir().join(format!("weir-store-test-{}", std::process::id()));
        let store = Store { root: root.clone() };
        for v in ["1.0.0", "1.3.0", "2.0.0"] {
            store.put("mask", v, b"bundle").unwrap();
        }
        std::fs::create_dir_all(root.join("mask/9.9.9")).unwrap(); // no bundle inside
        let resolve = |r: &str| store.resolve(&Requirement::parse(r).unwrap());
        assert_eq!(resolve("mask@^1"), Some(Version::new(1, 3, 0)));
        assert_eq!(resolve("mask"), Some(Version::new(2, 0, 0)));
        assert_eq!(resolve("mask@^3"), None);
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            Store::from_env(&env).unwrap().root,
            PathBuf::from("/home/u/.local/share/weir/plugins")
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
