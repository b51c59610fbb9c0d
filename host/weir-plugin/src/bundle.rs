//! Plugin bundles (`.weirpkg`): a manifest, the component, optional test
//! fixtures, and an ed25519 signature over the manifest.
//!
//! The manifest pins the component by its SHA-256, and the signature covers
//! the manifest's exact bytes, so one signature vouches for the component,
//! its requested capabilities and its default limits together. A bundle is
//! an uncompressed tar archive:
//!
//! ```text
//! manifest.json            the Manifest, as signed
//! component.wasm           the component
//! fixtures/config.json     optional: the config the fixtures run with
//! fixtures/input.jsonl     optional: input events
//! fixtures/expected.jsonl  optional: the expected output
//! signature.json           optional: {"key": "ed25519:...", "signature": "..."}
//! ```
//!
//! Whether a bundle may load is the [`TrustPolicy`]'s decision.

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::inspect::{Capability, SUPPORTED_CONTRACTS};
use crate::limits::PluginLimits;

/// The file extension of bundles.
pub const BUNDLE_EXTENSION: &str = "weirpkg";

const MANIFEST: &str = "manifest.json";
const COMPONENT: &str = "component.wasm";
const SIGNATURE: &str = "signature.json";
const FIXTURE_CONFIG: &str = "fixtures/config.json";
const FIXTURE_INPUT: &str = "fixtures/input.jsonl";
const FIXTURE_EXPECTED: &str = "fixtures/expected.jsonl";

/// What a bundle says about its plugin. Signed as serialized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// `transformer`, `router` or `resolver`.
    pub world: String,
    /// The contract version the component was built against (`0.1.0`).
    pub contract: String,
    /// The batch wire version the component reads.
    pub wire_version: u8,
    /// `sha256:<hex>` of `component.wasm`.
    pub component_sha256: String,
    /// Capabilities the plugin needs (clock, random, filesystem, network).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Limits the author recommends; the pipeline config may override them.
    #[serde(default)]
    pub limits: PluginLimits,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub author: String,
}

/// Test fixtures carried by a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixtures {
    pub config: Vec<u8>,
    pub input: Vec<u8>,
    pub expected: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    key: String,
    signature: String,
}

/// A bundle read into memory.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    /// The manifest exactly as stored (and signed).
    manifest_bytes: Vec<u8>,
    pub component: Vec<u8>,
    pub fixtures: Option<Fixtures>,
    signature: Option<SignatureFile>,
}

/// A bundle could not be read, written or checked.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read bundle {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write bundle {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a Weir bundle: {reason}")]
    Format { path: String, reason: String },
    #[error("bad key: {0}")]
    Key(String),
}

/// Why a bundle may not load. Each says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error(
        "the component's digest is {actual}, but the manifest pins {pinned}: the component was \
         changed after the bundle was packed; do not load it"
    )]
    Tampered { actual: String, pinned: String },
    #[error(
        "the signature does not match the manifest: the manifest was changed after signing, or \
         the signature was not made with key {key}; do not load it"
    )]
    BadSignature { key: String },
    #[error(
        "signed by {key}, which is not among the trusted keys (trust.keys); add the key if you \
         trust its owner"
    )]
    UnknownSigner { key: String },
    #[error(
        "the plugin is not signed, and unsigned plugins are refused: sign it (weir plugin sign), \
         or set trust.allow_unsigned = true for development"
    )]
    Unsigned,
    #[error("digest {digest} is not among the pinned digests (trust.pinned)")]
    NotPinned { digest: String },
    #[error(
        "the plugin requests the `{capability}` capability, which the pipeline does not grant; \
         add it to the plugin's grants if you trust it with that"
    )]
    CapabilityNotGranted { capability: String },
    #[error(
        "the plugin was built for contract weir:plugin@{contract}, which this host does not \
         support (supported: {supported}); rebuild it against a supported SDK"
    )]
    UnsupportedContract { contract: String, supported: String },
    #[error(
        "the plugin reads batch wire version {found}, this host writes version {host}; rebuild it \
         against this host's SDK"
    )]
    UnsupportedWire { found: u8, host: u8 },
}

/// Whether `path` names a bundle (by its extension).
pub fn is_bundle(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == BUNDLE_EXTENSION)
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Bundle {
    /// A new unsigned bundle; the manifest's digest is computed here.
    pub fn new(mut manifest: Manifest, component: Vec<u8>, fixtures: Option<Fixtures>) -> Self {
        manifest.component_sha256 = digest(&component);
        let manifest_bytes = manifest_bytes(&manifest);
        Bundle {
            manifest,
            manifest_bytes,
            component,
            fixtures,
            signature: None,
        }
    }

    /// Reads a bundle file. Only its structure is checked here; integrity
    /// and trust are [`TrustPolicy::admit`]'s job.
    pub fn read(path: &Path) -> Result<Self, BundleError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| BundleError::Read {
            path: shown.clone(),
            source,
        })?;
        let format = |reason: String| BundleError::Format {
            path: shown.clone(),
            reason,
        };
        let mut archive = tar::Archive::new(file);
        let mut files: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
        let entries = archive
            .entries()
            .map_err(|e| format(format!("not a tar archive ({e})")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format(format!("damaged archive ({e})")))?;
            let name = entry
                .path()
                .map_err(|e| format(format!("bad entry name ({e})")))?
                .to_string_lossy()
                .into_owned();
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| format(format!("cannot read {name} ({e})")))?;
            files.insert(name, data);
        }
        let manifest_bytes = files
            .remove(MANIFEST)
            .ok_or_else(|| format(format!("no {MANIFEST}")))?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| format(format!("{MANIFEST}: {e}")))?;
        let component = files
            .remove(COMPONENT)
            .ok_or_else(|| format(format!("no {COMPONENT}")))?;
        let signature = match files.remove(SIGNATURE) {
            Some(bytes) => Some(
                serde_json::from_slice(&bytes).map_err(|e| format(format!("{SIGNATURE}: {e}")))?,
            ),
            None => None,
        };
        let fixtures = match (
            files.remove(FIXTURE_CONFIG),
            files.remove(FIXTURE_INPUT),
            files.remove(FIXTURE_EXPECTED),
        ) {
            (config, Some(input), Some(expected)) => Some(Fixtures {
                config: config.unwrap_or_else(|| b"{}".to_vec()),
                input,
                expected,
            }),
            (_, None, None) => None,
            _ => {
                return Err(format(
                    "fixtures need both input.jsonl and expected.jsonl".into(),
                ));
            }
        };
        Ok(Bundle {
            manifest,
            manifest_bytes,
            component,
            fixtures,
            signature,
        })
    }

    /// Writes the bundle (replacing `path`).
    pub fn write(&self, path: &Path) -> Result<(), BundleError> {
        let err = |source| BundleError::Write {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("weirpkg.tmp");
        let file = std::fs::File::create(&tmp).map_err(err)?;
        let mut builder = tar::Builder::new(file);
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            builder.append_data(&mut header, name, data)
        };
        add(MANIFEST, &self.manifest_bytes).map_err(err)?;
        add(COMPONENT, &self.component).map_err(err)?;
        if let Some(f) = &self.fixtures {
            add(FIXTURE_CONFIG, &f.config).map_err(err)?;
            add(FIXTURE_INPUT, &f.input).map_err(err)?;
            add(FIXTURE_EXPECTED, &f.expected).map_err(err)?;
        }
        if let Some(sig) = &self.signature {
            let bytes = serde_json::to_vec_pretty(sig).expect("a signature serializes");
            add(SIGNATURE, &bytes).map_err(err)?;
        }
        let file = builder.into_inner().map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Signs the manifest (replacing any signature).
    pub fn sign(&mut self, key: &SecretKey) {
        let signature = key.0.sign(&self.manifest_bytes);
        self.signature = Some(SignatureFile {
            key: PublicKey(key.0.verifying_key()).to_string(),
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        });
    }

    /// The component's actual digest.
    pub fn digest(&self) -> String {
        digest(&self.component)
    }

    /// Checks the component against the manifest and the signature against
    /// the manifest; returns the signer, or `None` if unsigned.
    pub fn verify(&self) -> Result<Option<PublicKey>, TrustError> {
        let actual = self.digest();
        if actual != self.manifest.component_sha256 {
            return Err(TrustError::Tampered {
                actual,
                pinned: self.manifest.component_sha256.clone(),
            });
        }
        let Some(sig) = &self.signature else {
            return Ok(None);
        };
        let bad = || TrustError::BadSignature {
            key: sig.key.clone(),
        };
        let key = PublicKey::parse(&sig.key).map_err(|_| bad())?;
        let bytes: [u8; 64] = base64::engine::general_purpose::STANDARD
            .decode(&sig.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        key.0
            .verify(
                &self.manifest_bytes,
                &ed25519_dalek::Signature::from_bytes(&bytes),
            )
            .map_err(|_| bad())?;
        Ok(Some(key))
    }
}

/// Runs a transformer bundle's fixtures through its component (at
/// `component`, already extracted) and compares the output with the
/// expected lines; bundles of other worlds, or without fixtures, pass.
pub fn self_test(
    engine: &crate::PluginEngine,
    bundle: &Bundle,
    component: &Path,
    grants: &[Capability],
) -> Result<(), String> {
    let Some(fixtures) = &bundle.fixtures else {
        return Ok(());
    };
    if bundle.manifest.world != "transformer" {
        return Ok(());
    }
    let config: serde_json::Value = serde_json::from_slice(&fixtures.config)
        .map_err(|e| format!("fixtures/config.json: {e}"))?;
    let lines = |bytes: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let input = lines(&fixtures.input)
        .iter()
        .enumerate()
        .map(|(i, l)| {
            weir_core::envelope::from_envelope_str(l)
                .map_err(|e| format!("fixtures/input.jsonl line {}: {e}", i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let expected = lines(&fixtures.expected)
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| format!("fixtures/expected.jsonl line {}: {e}", i + 1))
        })
        .collect::<Result<Vec<serde_json::Value>, _>>()?;
    let spec = crate::PluginSpec::new(bundle.manifest.name.clone(), component)
        .with_config(config)
        .with_limits(bundle.manifest.limits.clone())
        .with_grants(grants.to_vec());
    let mut plugin = crate::TransformerPlugin::load(engine, &spec).map_err(|e| e.to_string())?;
    let mut actual = Vec::new();
    for (i, result) in plugin.transform(input).into_iter().enumerate() {
        match result {
            Ok(events) => actual.extend(events.iter().map(weir_core::envelope::to_envelope)),
            Err(f) => return Err(format!("input line {}: {f}", i + 1)),
        }
    }
    weir_core::envelope::compare_expected(&actual, &expected)
}

fn manifest_bytes(manifest: &Manifest) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
    bytes.push(b'\n');
    bytes
}

/// An ed25519 public key, written `ed25519:<base64>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let b64 = text
            .trim()
            .strip_prefix("ed25519:")
            .ok_or_else(|| BundleError::Key(format!("`{text}` does not start with `ed25519:`")))?;
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| BundleError::Key(format!("`{text}` is not a 32-byte base64 key")))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| BundleError::Key(format!("`{text}`: {e}")))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ed25519:{}",
            base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
        )
    }
}

/// An ed25519 signing key. Its `Debug` shows only the public half.
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public())
    }
}

impl SecretKey {
    /// A new random key (from the operating system's generator).
    pub fn generate() -> Result<Self, BundleError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| BundleError::Key(format!("no randomness: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The key file's text: `ed25519-secret:<base64 seed>`.
    pub fn to_file_text(&self) -> String {
        format!(
            "ed25519-secret:{}\n",
            base64::engine::general_purpose::STANDARD.encode(self.0.to_bytes())
        )
    }

    pub fn from_file_text(text: &str) -> Result<Self, BundleError> {
        let seed: [u8; 32] = text
            .trim()
            .strip_prefix("ed25519-secret:")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                BundleError::Key("not a key file written by `weir plugin keygen`".into())
            })?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }
}

/// Which plugins an operator lets a pipeline load.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Signers whose bundles load.
    pub keys: Vec<PublicKey>,
    /// If not empty, only components with these digests load.
    pub pinned: Vec<String>,
    /// Whether unsigned bundles and bare components load.
    pub allow_unsigned: bool,
}

impl TrustPolicy {
    /// Decides whether `bundle` may load with `grants`; returns the signer.
    pub fn admit(
        &self,
        bundle: &Bundle,
        grants: &[Capability],
    ) -> Result<Option<PublicKey>, TrustError> {
        let signer = bundle.verify()?;
        match &signer {
            Some(key) if !self.keys.contains(key) => {
                return Err(TrustError::UnknownSigner {
                    key: key.to_string(),
                });
            }
            None if !self.allow_unsigned => return Err(TrustError::Unsigned),
            _ => {}
        }
        self.check_pinned(&bundle.digest())?;
        let m = &bundle.manifest;
        if !SUPPORTED_CONTRACTS.contains(&m.contract.as_str()) {
            return Err(TrustError::UnsupportedContract {
                contract: m.contract.clone(),
                supported: SUPPORTED_CONTRACTS.join(", "),
            });
        }
        if m.wire_version != weir_core::wire::WIRE_VERSION {
            return Err(TrustError::UnsupportedWire {
                found: m.wire_version,
                host: weir_core::wire::WIRE_VERSION,
            });
        }
        for capability in &m.capabilities {
            if !grants.iter().any(|g| g.name() == capability) {
                return Err(TrustError::CapabilityNotGranted {
                    capability: capability.clone(),
                });
            }
        }
        Ok(signer)
    }

    /// Decides whether a bare component (no bundle, so no signature) may
    /// load.
    pub fn admit_bare(&self, component: &[u8]) -> Result<(), TrustError> {
        if !self.allow_unsigned {
            return Err(TrustError::Unsigned);
        }
        self.check_pinned(&digest(component))
    }

    fn check_pinned(&self, digest: &str) -> Result<(), TrustError> {
        if !self.pinned.is_empty() && !self.pinned.iter().any(|p| p == digest) {
            return Err(TrustError::NotPinned {
                digest: digest.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            name: "mask".into(),
            version: "1.0.0".into(),
            world: "transformer".into(),
            contract: "0.1.0".into(),
            wire_version: weir_core::wire::WIRE_VERSION,
            component_sha256: String::new(),
            capabilities: vec![],
            limits: PluginLimits::default(),
            description: "masks".into(),
            author: "weir".into(),
        }
    }

    fn signed(key: &SecretKey) -> Bundle {
        let mut b = Bundle::new(manifest(), b"\0asm component".to_vec(), None);
        b.sign(key);
        b
    }

    fn policy(key: &SecretKey) -> TrustPolicy {
        TrustPolicy {
            keys: vec![key.public()],
            ..TrustPolicy::default()
        }
    }

    #[test]
    fn a_signed_bundle_round_trips_through_a_file_and_is_admitted() {
        let key = SecretKey::generate().unwrap();
        let dir = std::env::temp_dir().join(format!("weir-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mask.weirpkg");
        let mut b = signed(&key);
        b.fixtures = Some(Fixtures {
            config: b"{}".to_vec(),
            input: b"in\n".to_vec(),
            expected: b"out\n".to_vec(),
        });
        b.write(&path).unwrap();
        let back = Bundle::read(&path).unwrap();
        assert_eq!(back.manifest, b.manifest);
        assert_eq!(back.fixtures, b.fixtures);
        assert_eq!(policy(&key).admit(&back, &[]).unwrap(), Some(key.public()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn each_refusal_has_its_own_reason() {
        let key = SecretKey::generate().unwrap();
        let other = SecretKey::generate().unwrap();

        let mut tampered = signed(&key);
        tampered.component.push(0);
        assert!(matches!(
            policy(&key).admit(&tampered, &[]),
            Err(TrustError::Tampered { .. })
        ));

        let mut edited = signed(&key);
        edited.manifest_bytes = manifest_bytes(&Manifest {
            capabilities: vec!["network".into()],
            ..edited.manifest.clone()
        });
        assert!(matches!(
            policy(&key).admit(&edited, &[]),
            Err(TrustError::BadSignature { .. })
        ));

        let err = policy(&other).admit(&signed(&key), &[]).unwrap_err();
        assert_eq!(
            err,
            TrustError::UnknownSigner {
                key: key.public().to_string()
            }
        );

        let unsigned = Bundle::new(manifest(), b"c".to_vec(), None);
        assert_eq!(
            policy(&key).admit(&unsigned, &[]),
            Err(TrustError::Unsigned)
        );
        let lenient = TrustPolicy {
            allow_unsigned: true,
            ..TrustPolicy::default()
        };
        assert_eq!(lenient.admit(&unsigned, &[]), Ok(None));

        let pinned = TrustPolicy {
            pinned: vec![digest(b"something else")],
            ..policy(&key)
        };
        assert!(matches!(
            pinned.admit(&signed(&key), &[]),
            Err(TrustError::NotPinned { .. })
        ));

        let mut wants_net = Bundle::new(
            Manifest {
                capabilities: vec!["network".into()],
                ..manifest()
            },
            b"c".to_vec(),
            None,
        );
        wants_net.sign(&key);
        assert_eq!(
            policy(&key).admit(&wants_net, &[]),
            Err(TrustError::CapabilityNotGranted {
                capability: "network".into()
            })
        );
        assert!(
            policy(&key)
                .admit(&wants_net, &[Capability::Network])
                .is_ok()
        );

        let mut future = Bundle::new(
            Manifest {
                contract: "9.0.0".into(),
                ..manifest()
            },
            b"c".to_vec(),
            None,
        );
        future.sign(&key);
        assert!(matches!(
            policy(&key).admit(&future, &[]),
            Err(TrustError::UnsupportedContract { .. })
        ));

        assert_eq!(policy(&key).admit_bare(b"c"), Err(TrustError::Unsigned));
        assert_eq!(lenient.admit_bare(b"c"), Ok(()));
    }

    #[test]
    fn keys_round_trip_through_their_text_forms() {
        let key = SecretKey::generate().unwrap();
        let again = SecretKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(again.public(), key.public());
        assert_eq!(
            PublicKey::parse(&key.public().to_string()).unwrap(),
            key.public()
        );
        assert!(PublicKey::parse("ed25519:nope").is_err());
        assert!(SecretKey::from_file_text("hello").is_err());
        assert!(!format!("{key:?}").contains(&key.to_file_text().trim()[15..]));
    }
}
