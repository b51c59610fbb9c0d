//! The generated bindings for the three worlds. This is the only place the
//! guest side calls `generate!`; plugin crates never see raw bindings.
//! The `types` and `host` interfaces are generated once (with the
//! transformer world) and shared by the other two.

#[allow(missing_docs, clippy::all)]
pub mod transformer {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "weir:plugin/transformer@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_transformer_world",
        default_bindings_module: "weir_plugin_sdk::bindings::transformer",
    });
}

#[allow(missing_docs, clippy::all)]
pub mod router {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "weir:plugin/router@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_router_world",
        default_bindings_module: "weir_plugin_sdk::bindings::router",
        with: {
            "weir:plugin/types@0.1.0": crate::bindings::transformer::weir::plugin::types,
            "weir:plugin/host@0.1.0": crate::bindings::transformer::weir::plugin::host,
        },
    });
}

#[allow(missing_docs, clippy::all)]
pub mod resolver {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "weir:plugin/resolver@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_resolver_world",
        default_bindings_module: "weir_plugin_sdk::bindings::resolver",
        with: {
            "weir:plugin/types@0.1.0": crate::bindings::transformer::weir::plugin::types,
            "weir:plugin/host@0.1.0": crate::bindings::transformer::weir::plugin::host,
        },
    });
}

pub use transformer::weir::plugin::host;
pub use transformer::weir::plugin::types;
