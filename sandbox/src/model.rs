//! What the sandbox keeps: core wire structs wrapped with the little bookkeeping the server needs.

use cvco_core::wire::{PreTransaction, Transaction};
use cvco_core::{Amount, Channel, MerchantSettings, ShopId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShopRec {
    pub shop_id: ShopId,
    #[serde(default)]
    pub name: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub notification_secret: String,
    pub channels: Vec<Channel>,
    pub settings: MerchantSettings,
    #[serde(default)]
    pub cancel_password: Option<String>,
    pub fee_bps: u32,
    pub token_ttl_s: u32,
    pub created_at: Timestamp,
}

impl ShopRec {
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.shop_id.as_str().to_string())
    }

    /// What admin endpoints show: never the secrets.
    pub fn public_view(&self) -> serde_json::Value {
        serde_json::json!({
            "shop_id": self.shop_id,
            "name": self.display_name(),
            "client_id": self.client_id,
            "channels": self.channels,
            "settings": self.settings,
            "has_cancel_password": self.cancel_password.is_some(),
            "fee_bps": self.fee_bps,
            "token_ttl_s": self.token_ttl_s,
            "created_at": self.created_at,
        })
    }
}

/// A bearer token, stored by its SHA-256 so the data file holds nothing usable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRec {
    pub hash: String,
    pub shop_id: ShopId,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxRec {
    pub tx: Transaction,
    /// Last notification sequence number used for this transaction.
    pub seq: u64,
    /// Account id (11 digits) of the beneficiary asked to authorize.
    #[serde(default)]
    pub beneficiary: Option<String>,
    /// The identifier as the merchant (or the scanning app) gave it.
    #[serde(default)]
    pub requested_as: Option<String>,
    /// When the scripted beneficiary takes its next step.
    #[serde(default)]
    pub script_due: Option<Timestamp>,
    /// Amount the beneficiary accepted in the app before entering the code.
    #[serde(default)]
    pub accepted_amount: Option<Amount>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PtRec {
    pub pt: PreTransaction,
    pub seq: u64,
}

/// An `Idempotency-Key` use: the same key and body replays the result, another body conflicts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdemRec {
    pub shop_id: ShopId,
    pub key: String,
    pub scope: String,
    pub body: serde_json::Value,
    /// The transaction (or pre-transaction) the first request created or refunded.
    pub transaction_id: String,
    pub created_at: Timestamp,
}

impl IdemRec {
    pub fn map_key(shop: &ShopId, key: &str) -> String {
        format!("{shop}\u{1f}{key}")
    }
}

/// The mutable side of a scripted account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenState {
    pub id: String,
    pub balance_cents: Amount,
    pub wrong_pins: u8,
    pub locked: bool,
}

/// An e-mail the sandbox "sent" (payment requests), shown at /outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Email {
    pub id: String,
    pub shop_id: ShopId,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub link: String,
    pub pre_transaction_id: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// Held by the reorder fault until its window closes.
    Held,
    Delivered,
    /// Gave up after the last attempt.
    Failed,
    /// Swallowed by the drop fault.
    Dropped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    /// A second copy sent on purpose by the duplicate fault.
    #[serde(default)]
    pub duplicate: bool,
}

/// One notification event and its delivery history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRec {
    pub id: String,
    /// Global creation order, so "newest first" and "reverse order" are exact.
    pub order: u64,
    pub shop_id: ShopId,
    pub url: String,
    pub object_id: String,
    pub state: String,
    pub sequence: u64,
    /// The exact JSON bytes signed and posted.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default)]
    pub held_until: Option<Timestamp>,
    #[serde(default)]
    pub duplicate: bool,
    pub created_at: Timestamp,
}
