//! `resolvers`: conflict resolvers for multi-region apply. One component,
//! three strategies, chosen by `strategy`:
//!
//! ```json
//! {"strategy": "last-writer-wins"}
//! {"strategy": "region-priority", "priority": ["us-east", "eu-west"]}
//! {"strategy": "counter", "columns": ["likes", "stock"]}
//! ```
//!
//! **`last-writer-wins`**: the version committed later wins: the incoming
//! change's `source.commit_time_us` against the local row's
//! `local_meta.commit_time_us`. Equal times fall back to the origin
//! (no origin first, then by bytes), then to the transaction id (none
//! first; decimal ids by value and before other ids, which compare by
//! bytes). The incoming change wins only when it is strictly greater: if
//! everything is equal the local row stays. The order is total and uses
//! nothing but the two versions' metadata, so two regions applying each
//! other's changes decide the same way and converge.
//!
//! **`region-priority`**: the change whose origin comes earlier in
//! `priority` wins; origins not listed, and changes without an origin,
//! rank after every listed one. Equal ranks fall back to last-writer-wins.
//!
//! **`counter`**: for counter columns (`columns`), concurrent changes add
//! up instead of overwriting each other. For each counter column the
//! incoming change's delta, `after - before`, is added to the local value
//! (exact for ints, float if any of the three values is a float). The
//! other columns follow last-writer-wins, so that regions converge: when
//! the incoming change is the later version they take the incoming after
//! image's value (except unchanged TOAST values, which keep the local
//! one), otherwise they keep the local values. The result is
//! `Merged` with the local row's columns in the local row's order
//! (columns only the incoming row has are not added). An incoming delete
//! is taken as it is (`TakeIncoming`). A conflict goes to `Review`, with
//! the reason, when the incoming change has no before image (a create, or
//! an update from a table without full replica identity), when a counter
//! column is missing or not an int or float in the local row or either
//! incoming image, or when an int counter would overflow.
//!
//! The configuration is described field by field in [`ResolversConfig`].

mod config;
mod counter;
mod version;

use std::cmp::Ordering;

use weir_plugin_sdk::{Config, Conflict, Resolution, Resolver};

pub use config::{ResolversConfig, StrategyName};
use version::{Version, cmp_last_writer};

/// The conflict resolver. Build it with [`Resolver::new`].
#[derive(Debug)]
pub struct ConflictResolver {
    strategy: Strategy,
}

/// A validated strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    LastWriterWins,
    /// Origins, highest priority first.
    RegionPriority(Vec<String>),
    /// Counter column names.
    Counter(Vec<String>),
}

impl Resolver for ConflictResolver {
    fn new(config: Config) -> Result<Self, String> {
        let strategy = config.parse::<ResolversConfig>()?.validate()?;
        Ok(ConflictResolver { strategy })
    }

    fn resolve(&mut self, conflict: &Conflict) -> Result<Resolution, String> {
        let local = Version::of_local(&conflict.local_meta);
        let incoming = Version::of_incoming(&conflict.incoming.source);
        let order = match &self.strategy {
            Strategy::LastWriterWins => cmp_last_writer(incoming, local),
            Strategy::RegionPriority(priority) => {
                // A lower rank is a higher priority, hence `local` first.
                version::rank(priority, local.origin)
                    .cmp(&version::rank(priority, incoming.origin))
                    .then_with(|| cmp_last_writer(incoming, local))
            }
            Strategy::Counter(columns) => {
                let later = cmp_last_writer(incoming, local) == Ordering::Greater;
                return Ok(counter::merge(columns, conflict, later));
            }
        };
        Ok(match order {
            Ordering::Greater => Resolution::TakeIncoming,
            Ordering::Less | Ordering::Equal => Resolution::KeepLocal,
        })
    }
}

weir_plugin_sdk::export_resolver!(ConflictResolver);

#[cfg(test)]
mod tests;
