//! The runtime for `cvco_plugin.wasm` on the `extism` crate: a [`Pool`] of plugin instances with
//! typed export calls, and [`Failure`], what went wrong when a call did not return normally.
//! cvco-host and any other Rust backend load the plugin through it; it never builds anything.
//!
//! ```no_run
//! use cvco_core::plugin_api::{exports::ValidateBeneficiary, ValidateBeneficiaryInput};
//! let wasm = std::fs::read("cvco_plugin.wasm").unwrap();
//! let pool = cvco_plugin_host::Pool::builder(wasm)
//!     .config("api_base_url", "https://acquisition.example")
//!     .config("shop_id", "SHOP-01")
//!     .config("client_id", "client")
//!     .config("client_secret", "secret")
//!     .allowed_host("acquisition.example")
//!     .build()
//!     .unwrap();
//! let input = ValidateBeneficiaryInput { input: "10000000001".into(), scanned: false };
//! let id = pool.call::<ValidateBeneficiary>(&input).unwrap();
//! ```

mod failure;
mod pool;
mod registry;

pub use failure::Failure;
pub use pool::{ModuleCache, Pool, PoolBuilder, PoolStats, DEFAULT_REQUEST_TIMEOUT_MS};
pub use registry::{Registry, RegistryBuilder, RegistryStats, DEFAULT_MAX_LIVE};

/// The environment variable naming the plugin file, for hosts, tests and benchmarks.
pub const WASM_ENV: &str = "CVCO_PLUGIN_WASM";
