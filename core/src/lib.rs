//! The Chèque-Vacances Connect domain, shared by the sandbox, the Extism plugin and the widget.
//!
//! Nothing here does I/O or reads a clock: callers pass `now`, so the same rules run natively,
//! inside the plugin and in the browser.

pub mod amount;
pub mod beneficiary;
pub mod contract;
pub mod error;
pub mod lifecycle;
pub mod plugin_api;
pub mod shop;
pub mod signature;
pub mod time;
pub mod wire;

pub use amount::Amount;
pub use beneficiary::BeneficiaryId;
pub use error::{CvcoError, ErrorCode};
pub use lifecycle::{NormalizedStatus, PreTransactionState, TransactionState};
pub use shop::{Channel, MerchantSettings, OrderFacts, ShopId};
pub use time::Timestamp;
