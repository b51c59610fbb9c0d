//! Write Weir plugins in Rust.
//!
//! A plugin is a plain type implementing [`Transformer`], [`Router`] or
//! [`Resolver`], plus one export macro:
//!
//! ```ignore
//! use weir_plugin_sdk::{Config, Event, Outcome, Transformer, Value};
//!
//! struct Shout;
//!
//! impl Transformer for Shout {
//!     fn new(_config: Config) -> Result<Self, String> { Ok(Shout) }
//!     fn transform(&mut self, event: &mut Event<'_>) -> Outcome {
//!         if let Some(name) = event.after_text("name") {
//!             let loud = name.to_uppercase();
//!             event.set_after("name", Value::Text(loud));
//!         }
//!         Outcome::Keep
//!     }
//! }
//!
//! weir_plugin_sdk::export_transformer!(Shout);
//! ```
//!
//! Events arrive as borrowed views over the batch buffer, so reading a
//! column copies nothing; changes are recorded as patches and only the
//! changed columns travel back to the host. The same code runs natively:
//! [`testing`] drives a plugin over owned events in an ordinary `cargo test`.

pub mod bindings;
mod config;
mod convert;
mod event;
pub mod log;
pub mod testing;

pub use config::Config;
pub use event::{Event, Outcome, RowView};
pub use weir_core::wire::{ColumnRef, EventRef, SourceRef, ValueRef};
pub use weir_core::{
    ChangeEvent, Column, Conflict, Image, Name, Op, Resolution, Row, SourceInfo, Value, VersionMeta,
};

/// A plugin that turns each event into zero or more events.
pub trait Transformer: Sized + 'static {
    /// Builds the plugin from its configuration. An error refuses the
    /// plugin at load time with this message.
    fn new(config: Config) -> Result<Self, String>;

    /// Decides what becomes of one event. Column changes made through
    /// `event` are kept when the outcome is [`Outcome::Keep`].
    fn transform(&mut self, event: &mut Event<'_>) -> Outcome;
}

/// A plugin that names the destinations of each event.
pub trait Router: Sized + 'static {
    fn new(config: Config) -> Result<Self, String>;

    /// Destination names for one event; an empty list drops it.
    fn route(&mut self, event: &Event<'_>) -> Result<Vec<String>, String>;
}

/// A plugin that settles conflicts between a local row and an incoming change.
pub trait Resolver: Sized + 'static {
    fn new(config: Config) -> Result<Self, String>;

    fn resolve(&mut self, conflict: &Conflict) -> Result<Resolution, String>;
}

#[doc(hidden)]
pub mod __private {
    pub use crate::config::Config;
    pub use crate::convert::{run_resolve, run_route, run_transform};
}

/// Exports a [`Transformer`] implementation as the component's
/// `transformer` world. Expands to nothing on non-Wasm targets, so the
/// plugin crate also builds natively for tests.
#[macro_export]
macro_rules! export_transformer {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct WeirExport;
            impl $crate::bindings::transformer::Guest for WeirExport {
                fn init() -> ::std::result::Result<(), ::std::string::String> {
                    let plugin = <$plugin as $crate::Transformer>::new(
                        $crate::__private::Config::from_host(),
                    )?;
                    PLUGIN.with(|p| *p.borrow_mut() = ::std::option::Option::Some(plugin));
                    ::std::result::Result::Ok(())
                }
                fn transform(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::vec::Vec<$crate::bindings::types::Outcome> {
                    PLUGIN.with(|p| $crate::__private::run_transform(&mut *p.borrow_mut(), &batch))
                }
            }
            $crate::bindings::transformer::export_transformer_world!(WeirExport with_types_in $crate::bindings::transformer);
        };
    };
}

/// Exports a [`Router`] implementation as the component's `router` world.
#[macro_export]
macro_rules! export_router {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct WeirExport;
            impl $crate::bindings::router::Guest for WeirExport {
                fn init() -> ::std::result::Result<(), ::std::string::String> {
                    let plugin =
                        <$plugin as $crate::Router>::new($crate::__private::Config::from_host())?;
                    PLUGIN.with(|p| *p.borrow_mut() = ::std::option::Option::Some(plugin));
                    ::std::result::Result::Ok(())
                }
                fn route(
                    batch: ::std::vec::Vec<u8>,
                ) -> ::std::vec::Vec<$crate::bindings::types::Route> {
                    PLUGIN.with(|p| $crate::__private::run_route(&mut *p.borrow_mut(), &batch))
                }
            }
            $crate::bindings::router::export_router_world!(WeirExport with_types_in $crate::bindings::router);
        };
    };
}

/// Exports a [`Resolver`] implementation as the component's `resolver` world.
#[macro_export]
macro_rules! export_resolver {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            ::std::thread_local! {
                static PLUGIN: ::std::cell::RefCell<::std::option::Option<$plugin>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }
            struct WeirExport;
            impl $crate::bindings::resolver::Guest for WeirExport {
                fn init() -> ::std::result::Result<(), ::std::string::String> {
                    let plugin =
                        <$plugin as $crate::Resolver>::new($crate::__private::Config::from_host())?;
                    PLUGIN.with(|p| *p.borrow_mut() = ::std::option::Option::Some(plugin));
                    ::std::result::Result::Ok(())
                }
                fn resolve(
                    conflict: $crate::bindings::types::Conflict,
                ) -> ::std::result::Result<$crate::bindings::types::Resolution, ::std::string::String>
                {
                    PLUGIN.with(|p| $crate::__private::run_resolve(&mut *p.borrow_mut(), conflict))
                }
            }
            $crate::bindings::resolver::export_resolver_world!(WeirExport with_types_in $crate::bindings::resolver);
        };
    };
}
