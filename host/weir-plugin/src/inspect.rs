//! What a component is: its world, contract version, imports and exports,
//! and whether this host may run it with the capabilities granted.

use std::fmt;

use serde::Deserialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

/// Contract versions (`weir:plugin@X`) this host runs.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0"];

/// The role a plugin plays: one world of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    Transformer,
    Router,
    Resolver,
}

impl World {
    pub fn name(self) -> &'static str {
        match self {
            World::Transformer => "transformer",
            World::Router => "router",
            World::Resolver => "resolver",
        }
    }

    /// The world's exports, the role-defining one first.
    pub fn exports(self) -> &'static [&'static str] {
        match self {
            World::Transformer => &["transform", "init"],
            World::Router => &["route", "init"],
            World::Resolver => &["resolve", "init"],
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something a plugin may use beyond computing: granted by the operator.
/// Ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// `wasi:clocks`: read the wall and monotonic clocks.
    Clock,
    /// `wasi:random`: random numbers.
    Random,
    /// `wasi:filesystem`: files (no directory is preopened even then).
    Filesystem,
    /// `wasi:sockets` and `wasi:http`: the network.
    Network,
}

impl Capability {
    pub fn name(self) -> &'static str {
        match self {
            Capability::Clock => "clock",
            Capability::Random => "random",
            Capability::Filesystem => "filesystem",
            Capability::Network => "network",
        }
    }

    pub fn parse(s: &str) -> Option<Capability> {
        Some(match s {
            "clock" => Capability::Clock,
            "random" => Capability::Random,
            "filesystem" => Capability::Filesystem,
            "network" => Capability::Network,
            _ => return None,
        })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the host treats one import.
enum ImportClass {
    /// Part of the contract, at this version.
    Contract(String),
    /// Always linked, grants nothing: stdio goes nowhere, no environment.
    Inert,
    Needs(Capability),
    Unknown,
}

fn classify_import(name: &str) -> ImportClass {
    if let Some(rest) = name.strip_prefix("weir:plugin/") {
        let version = rest.split_once('@').map_or("", |(_, v)| v);
        return ImportClass::Contract(version.to_owned());
    }
    // Rust's std seeds its hash maps from `insecure-seed` on every guest;
    // a per-instance seed lets a plugin learn nothing about the host.
    if name.starts_with("wasi:random/insecure-seed") {
        return ImportClass::Inert;
    }
    let package = name.split('/').next().unwrap_or(name);
    match package {
        "wasi:cli" | "wasi:io" => ImportClass::Inert,
        "wasi:clocks" => ImportClass::Needs(Capability::Clock),
        "wasi:random" => ImportClass::Needs(Capability::Random),
        "wasi:filesystem" => ImportClass::Needs(Capability::Filesystem),
        "wasi:sockets" | "wasi:http" => ImportClass::Needs(Capability::Network),
        _ => ImportClass::Unknown,
    }
}

/// A summary of a component, for `weir plugin inspect` and load checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentInfo {
    /// The world it implements, if any.
    pub world: Option<World>,
    /// The contract version it was built against, if it imports the contract.
    pub contract: Option<String>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Capabilities its imports need.
    pub needs: Vec<Capability>,
    /// Size of the component file in bytes.
    pub size: u64,
    /// SHA-256 of the component file, hex.
    pub sha256: String,
}

impl ComponentInfo {
    pub(crate) fn read(engine: &Engine, component: &Component, size: u64, sha256: String) -> Self {
        let ty = component.component_type();
        let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
        let has = |e: &str| exports.iter().any(|x| x == e);
        let world = [World::Transformer, World::Router, World::Resolver]
            .into_iter()
            .find(|w| has(w.exports()[0]));
        let mut contract = None;
        let mut needs = Vec::new();
        for import in &imports {
            match classify_import(import) {
                ImportClass::Contract(v) => contract = Some(v),
                ImportClass::Needs(c) if !needs.contains(&c) => needs.push(c),
                _ => {}
            }
        }
        ComponentInfo {
            world,
            contract,
            imports,
            exports,
            needs,
            size,
            sha256,
        }
    }

    /// Checks the component can run as `expected` with `grants`: the right
    /// world with all its exports, a supported contract, and no import
    /// beyond what is granted.
    pub fn check(
        &self,
        name: &str,
        expected: World,
        grants: &[Capability],
    ) -> Result<(), LoadError> {
        let world = self.world.ok_or_else(|| LoadError::NoWorld {
            name: name.to_owned(),
            exports: if self.exports.is_empty() {
                "none".to_owned()
            } else {
                self.exports.join(", ")
            },
        })?;
        if world != expected {
            return Err(LoadError::WrongWorld {
                name: name.to_owned(),
                expected,
                found: world,
            });
        }
        if let Some(missing) = world
            .exports()
            .iter()
            .find(|e| !self.exports.iter().any(|x| x == *e))
        {
            return Err(LoadError::MissingExport {
                name: name.to_owned(),
                world,
                export: missing,
            });
        }
        let mut forbidden: Option<(&String, Capability)> = None;
        for import in &self.imports {
            match classify_import(import) {
                ImportClass::Contract(v) if !SUPPORTED_CONTRACTS.contains(&v.as_str()) => {
                    return Err(LoadError::UnsupportedContract {
                        name: name.to_owned(),
                        found: format!("weir:plugin@{v}"),
                        supported: SUPPORTED_CONTRACTS
                            .iter()
                            .map(|v| format!("weir:plugin@{v}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
                // Report the most powerful capability a plugin reaches for.
                ImportClass::Needs(c)
                    if !grants.contains(&c) && forbidden.is_none_or(|(_, f)| c > f) =>
                {
                    forbidden = Some((import, c));
                }
                ImportClass::Unknown => {
                    return Err(LoadError::UnknownImport {
                        name: name.to_owned(),
                        import: import.clone(),
                    });
                }
                _ => {}
            }
        }
        if let Some((import, capability)) = forbidden {
            return Err(LoadError::ForbiddenImport {
                name: name.to_owned(),
                import: import.clone(),
                capability,
            });
        }
        Ok(())
    }
}
