//! Fault injection, switchable at run time, global or per shop so parallel tests stay apart.

use cvco_core::{CvcoError, ErrorCode, ShopId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before every /api/v1 answer.
    pub latency_ms: u64,
    /// Share (0..1) of /api/v1 calls answered 503 before doing anything.
    pub error_rate: f64,
    /// Share (0..1) of /api/v1 calls processed fully, then answered 503.
    pub fail_after_commit_rate: f64,
    /// The next N /api/v1 calls are processed fully, then answered 503 (response "lost").
    pub lose_next_responses: u32,
    pub drop_notifications: bool,
    pub duplicate_notifications: bool,
    /// Hold notifications for `reorder_hold_ms`, then deliver them newest first.
    pub reorder_notifications: bool,
    pub reorder_hold_ms: Option<u64>,
}

pub const DEFAULT_REORDER_HOLD_MS: u64 = 500;

impl Faults {
    pub fn validate(&self) -> Result<(), CvcoError> {
        for (name, v) in [
            ("error_rate", self.error_rate),
            ("fail_after_commit_rate", self.fail_after_commit_rate),
        ] {
            if !(0.0..=1.0).contains(&v) || v.is_nan() {
                return Err(CvcoError::new(ErrorCode::InvalidRequest)
                    .with_detail("Proportion entre 0 et 1.", "Share between 0 and 1.")
                    .with_field(name));
            }
        }
        if self.latency_ms > 60_000 {
            return Err(CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail("Latence de 60 s au plus.", "Latency of 60 s at most.")
                .with_field("latency_ms"));
        }
        Ok(())
    }

    pub fn reorder_hold_ms(&self) -> u64 {
        self.reorder_hold_ms.unwrap_or(DEFAULT_REORDER_HOLD_MS)
    }
}

/// `PUT /admin/faults` body: the faults plus an optional scope.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FaultsRequest {
    #[serde(default)]
    pub shop_id: Option<ShopId>,
    #[serde(flatten)]
    pub faults: serde_json::Map<String, serde_json::Value>,
}

/// Global faults plus per-shop ones; a shop's own entry replaces the global one entirely.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FaultBook {
    pub global: Faults,
    pub shops: BTreeMap<String, Faults>,
}

impl FaultBook {
    pub fn for_shop(&self, shop: Option<&ShopId>) -> &Faults {
        shop.and_then(|s| self.shops.get(s.as_str()))
            .unwrap_or(&self.global)
    }

    pub fn for_shop_mut(&mut self, shop: Option<&ShopId>) -> &mut Faults {
        match shop {
            Some(s) if self.shops.contains_key(s.as_str()) => {
                self.shops.get_mut(s.as_str()).expect("checked")
            }
            _ => &mut self.global,
        }
    }
}
