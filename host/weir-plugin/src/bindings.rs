//! The one `bindgen!` call site of the host. Each world is generated once;
//! the shared `types` and `host` interfaces come from the transformer
//! world's bindings.

pub mod transformer {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weir:plugin/transformer@0.1.0",
    });
}

pub mod router {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weir:plugin/router@0.1.0",
        with: {
            "weir:plugin/types": crate::bindings::transformer::weir::plugin::types,
            "weir:plugin/host": crate::bindings::transformer::weir::plugin::host,
        },
    });
}

pub mod resolver {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "weir:plugin/resolver@0.1.0",
        with: {
            "weir:plugin/types": crate::bindings::transformer::weir::plugin::types,
            "weir:plugin/host": crate::bindings::transformer::weir::plugin::host,
        },
    });
}

pub use transformer::weir::plugin::host;
pub use transformer::weir::plugin::types;
