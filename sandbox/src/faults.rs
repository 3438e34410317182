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
    /// `"METHOD /api/v1/path"` (`*` stands for one path segment): when set, the faults above
    /// touch only the matching calls, so a background poller does not eat a "next N" fault.
    pub only: Option<String>,
    /// The next N calls answered 503 before doing anything.
    pub fail_next_requests: u32,
    /// The next N calls processed fully, then their answer cut off mid-body (the connection
    /// closes early): the caller gets no answer at all.
    pub drop_next_responses: u32,
    /// Added after processing, before the answer: the money moved, the answer is late.
    pub latency_after_ms: u64,
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
        for (name, v) in [
            ("latency_ms", self.latency_ms),
            ("latency_after_ms", self.latency_after_ms),
        ] {
            if v > 60_000 {
                return Err(CvcoError::new(ErrorCode::InvalidRequest)
                    .with_detail("Latence de 60 s au plus.", "Latency of 60 s at most.")
                    .with_field(name));
            }
        }
        if let Some(only) = &self.only {
            let ok = only
                .split_once(' ')
                .is_some_and(|(m, p)| !m.is_empty() && p.starts_with('/'));
            if !ok {
                return Err(CvcoError::new(ErrorCode::InvalidRequest)
                    .with_detail(
                        "Forme : « POST /api/v1/transactions/*/refunds ».",
                        "Shape: \"POST /api/v1/transactions/*/refunds\".",
                    )
                    .with_field("only"));
            }
        }
        Ok(())
    }

    /// Whether these faults touch a call (`only` unset: every call).
    pub fn applies_to(&self, method: &str, path: &str) -> bool {
        let Some(only) = &self.only else {
            return true;
        };
        let Some((m, pattern)) = only.split_once(' ') else {
            return false;
        };
        if !m.eq_ignore_ascii_case(method) {
            return false;
        }
        let mut want = pattern.trim_end_matches('/').split('/');
        let mut got = path.trim_end_matches('/').split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w == "*" || w == g => {}
                _ => return false,
            }
        }
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
