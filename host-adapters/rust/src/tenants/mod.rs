//! Merchants (tenants) of one host: each with its ANCV reception points (one `shop_id` each),
//! credentials, notification secret and settings. Today's single-merchant configuration is the
//! merchant [`DEFAULT_MERCHANT`]; more come from the TOML file (`[[merchants]]`) and the store.
//!
//! Plugin instances are pooled per reception point in a [`Registry`]: built on first use with
//! that merchant's config, least-recently-used dropped above the bound, all sharing one
//! compiled module. A merchant whose secret or settings change is [`Tenants::upsert`]ed, which
//! drops its pools so the next call builds them with the new config.

pub mod cli;

use crate::config::HostConfig;
use crate::secrets::{Keyring, Secret};
pub use crate::store::MerchantRow;
use crate::store::{SettingsRow, Store};
use cvco_core::shop::MerchantSettings;
use cvco_core::{CvcoError, ErrorCode};
use cvco_plugin_host::{Pool, PoolBuilder, Registry, RegistryStats};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The merchant of the single-merchant configuration (`shop_id`, `client_id`, … at the top of
/// the configuration); its notification URL is `/cvco/v1/notifications`.
pub const DEFAULT_MERCHANT: &str = "default";

/// One ANCV shop id of a merchant (a campsite's reception, a web shop).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceptionPoint {
    pub shop_id: String,
    #[serde(default)]
    pub label: String,
}

/// The merchant's settings (every flow reads them; the plugin gets its keys of the same names).
/// The configuration seeds them; the manager's back-office edits (store) replace them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub merchant: MerchantSettings,
    /// `adjustable` was set (configuration or back-office); unset: the ANCV shop's own setting.
    pub adjustable_set: bool,
    /// argon2 hash of the cancellation password (TETRA: "0000" removes it); never shown.
    pub cancel_password_hash: Option<String>,
    /// The store version these came from (0: the configuration's).
    pub version: i64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("merchant", &self.merchant)
            .field("adjustable_set", &self.adjustable_set)
            .field("has_cancel_password", &self.cancel_password_hash.is_some())
            .field("version", &self.version)
            .finish()
    }
}

impl Settings {
    /// Seeded from configuration keys (absent: defaults).
    pub fn seeded(
        min_amount_cents: Option<u64>,
        adjustable: Option<bool>,
        authorization_timeout_s: Option<u32>,
        closing_hour: Option<u8>,
    ) -> Settings {
        let d = MerchantSettings::default();
        Settings {
            merchant: MerchantSettings {
                min_amount_cents: min_amount_cents
                    .and_then(|c| cvco_core::Amount::from_cents(c).ok())
                    .unwrap_or(d.min_amount_cents),
                adjustable: adjustable.unwrap_or(d.adjustable),
                authorization_timeout_s: authorization_timeout_s
                    .unwrap_or(d.authorization_timeout_s),
                closing_hour: closing_hour.unwrap_or(d.closing_hour),
                ..d
            },
            adjustable_set: adjustable.is_some(),
            cancel_password_hash: None,
            version: 0,
        }
    }

    /// The saved settings of the store (`row.settings` is `MerchantSettings` JSON).
    pub fn from_saved(row: &SettingsRow) -> Result<Settings, CvcoError> {
        let merchant: MerchantSettings = serde_json::from_str(&row.settings)
            .map_err(|_| config_error("stored merchant settings unreadable"))?;
        Ok(Settings {
            merchant,
            adjustable_set: true,
            cancel_password_hash: row.cancel_password_hash.clone(),
            version: row.version,
        })
    }

    /// The rules every flow applies, from the same values the plugin gets.
    pub fn checkout(&self) -> MerchantSettings {
        self.merchant.clone()
    }
}

/// A merchant secret as held in memory: sealed (store, TOML `*_sealed`), opened only when a
/// pool is built; or given in clear by the operator's own configuration (environment, TOML).
#[derive(Clone)]
pub enum SecretValue {
    Sealed(String),
    Plain(Secret),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretValue::Sealed(_) => "SecretValue::Sealed(…)",
            SecretValue::Plain(_) => "SecretValue::Plain(…)",
        })
    }
}

impl SecretValue {
    /// The secret in clear, for the plugin's config only.
    pub fn open(&self, merchant_id: &str, keyring: Option<&Keyring>) -> Result<Secret, CvcoError> {
        match self {
            SecretValue::Plain(s) => Ok(s.clone()),
            SecretValue::Sealed(sealed) => {
                let keyring = keyring.ok_or_else(|| {
                    config_error(&format!(
                        "merchant {merchant_id:?} has sealed secrets: set {}",
                        crate::secrets::KEY_ENV
                    ))
                })?;
                Ok(keyring.open(merchant_id, sealed)?)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            SecretValue::Sealed(s) => s.is_empty(),
            SecretValue::Plain(s) => s.expose().is_empty(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Merchant {
    /// URL-safe: `a-z 0-9 - _`, 1 to 64 characters (it is a path segment and the sealing's
    /// associated data).
    pub id: String,
    /// Printed on receipts.
    pub name: String,
    pub reception_points: Vec<ReceptionPoint>,
    pub client_id: String,
    pub client_secret: SecretValue,
    pub notification_secret: SecretValue,
    pub settings: Settings,
}

/// Whether `id` can name a merchant (path segment, sealing context).
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'))
}

fn config_error(en: &str) -> CvcoError {
    CvcoError::new(ErrorCode::ConfigInvalid)
        .with_detail("Configuration du commerçant invalide.", en)
}

fn unknown_merchant() -> CvcoError {
    CvcoError::new(ErrorCode::NotFound).with_detail("Commerçant inconnu.", "Unknown merchant.")
}

impl Merchant {
    /// Today's single-merchant configuration as the merchant `default` (one reception point).
    pub fn from_host_config(cfg: &HostConfig) -> Merchant {
        Merchant {
            id: DEFAULT_MERCHANT.into(),
            name: cfg.merchant_name.clone(),
            reception_points: vec![ReceptionPoint {
                shop_id: cfg.shop_id.clone(),
                label: String::new(),
            }],
            client_id: cfg.client_id.clone(),
            client_secret: SecretValue::Plain(Secret::new(cfg.client_secret.clone())),
            notification_secret: SecretValue::Plain(Secret::new(cfg.notification_secret.clone())),
            settings: Settings::seeded(
                Some(cfg.min_amount_cents),
                cfg.adjustable,
                Some(cfg.authorization_timeout_s),
                Some(cfg.closing_hour),
            ),
        }
    }

    /// A merchant of the store (its secrets stay sealed until a pool is built).
    pub fn from_row(r: &MerchantRow) -> Merchant {
        Merchant {
            id: r.merchant_id.clone(),
            name: r.name.clone(),
            reception_points: r
                .reception_points
                .iter()
                .map(|(shop_id, label)| ReceptionPoint {
                    shop_id: shop_id.clone(),
                    label: label.clone(),
                })
                .collect(),
            client_id: r.client_id.clone(),
            client_secret: SecretValue::Sealed(r.client_secret_sealed.clone()),
            notification_secret: SecretValue::Sealed(r.notification_secret_sealed.clone()),
            settings: Settings::seeded(
                Some(r.min_amount_cents.max(0) as u64),
                r.adjustable,
                Some(r.authorization_timeout_s.clamp(0, u32::MAX as i64) as u32),
                None,
            ),
        }
    }

    /// The reception point that takes a payment when none is named: the first.
    pub fn main_point(&self) -> Option<&ReceptionPoint> {
        self.reception_points.first()
    }

    /// Everything wrong with it, each problem naming the merchant.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let who = &self.id;
        if !valid_id(who) {
            p.push(format!(
                "merchant id {who:?}: 1 to 64 characters a-z 0-9 - _"
            ));
        }
        if self.reception_points.is_empty() {
            p.push(format!("merchant {who:?}: no reception point (shop_id)"));
        }
        let mut seen = std::collections::HashSet::new();
        for rp in &self.reception_points {
            if rp.shop_id.trim().is_empty() {
                p.push(format!(
                    "merchant {who:?}: a reception point has an empty shop_id"
                ));
            } else if !seen.insert(rp.shop_id.as_str()) {
                p.push(format!("merchant {who:?}: shop_id {:?} twice", rp.shop_id));
            }
        }
        if self.client_id.trim().is_empty() {
            p.push(format!("merchant {who:?}: client_id missing"));
        }
        if self.client_secret.is_empty() {
            p.push(format!("merchant {who:?}: client secret missing"));
        }
        if self.notification_secret.is_empty() {
            p.push(format!("merchant {who:?}: notification secret missing"));
        }
        if let Err(e) = self.settings.checkout().validate() {
            p.push(format!("merchant {who:?}: {}", e.message_en));
        }
        p
    }

    /// The plugin's manifest config for one of its reception points.
    pub fn plugin_config(
        &self,
        shop_id: &str,
        api: &ApiSettings,
        keyring: Option<&Keyring>,
    ) -> Result<Vec<(&'static str, String)>, CvcoError> {
        let client_secret = self.client_secret.open(&self.id, keyring)?;
        let notification_secret = self.notification_secret.open(&self.id, keyring)?;
        let mut pairs = vec![
            (
                "api_base_url",
                api.api_base_url.trim_end_matches('/').to_string(),
            ),
            ("shop_id", shop_id.to_string()),
            ("client_id", self.client_id.clone()),
            ("client_secret", client_secret.expose().to_string()),
            (
                "notification_secret",
                notification_secret.expose().to_string(),
            ),
            ("request_timeout_ms", api.request_timeout_ms.to_string()),
        ];
        pairs.extend(settings_pairs(&self.settings));
        Ok(pairs)
    }
}

/// `[[merchants]]` of the TOML file. Secrets in clear (`client_secret`) or sealed with
/// `CVCO_HOST_SECRET_KEY` for this merchant id (`client_secret_sealed`, as `merchant list
/// --sealed` prints them).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantConfig {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub reception_points: Vec<ReceptionPoint>,
    /// Shorthand for one reception point.
    pub shop_id: Option<String>,
    #[serde(default)]
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_sealed: Option<String>,
    pub notification_secret: Option<String>,
    pub notification_secret_sealed: Option<String>,
    pub min_amount_cents: Option<u64>,
    pub adjustable: Option<bool>,
    pub authorization_timeout_s: Option<u32>,
    /// Seed of the merchant's closing hour (the back-office setting replaces it).
    pub closing_hour: Option<u8>,
}

impl MerchantConfig {
    pub fn into_merchant(self) -> Result<Merchant, String> {
        let secret =
            |plain: Option<String>, sealed: Option<String>, key: &str| match (plain, sealed) {
                (Some(_), Some(_)) => Err(format!(
                    "merchant {:?}: {key} and {key}_sealed both set",
                    self.id
                )),
                (Some(p), None) => Ok(SecretValue::Plain(Secret::new(p))),
                (None, Some(s)) => Ok(SecretValue::Sealed(s)),
                (None, None) => Ok(SecretValue::Plain(Secret::new(String::new()))),
            };
        let client_secret = secret(
            self.client_secret.clone(),
            self.client_secret_sealed.clone(),
            "client_secret",
        )?;
        let notification_secret = secret(
            self.notification_secret.clone(),
            self.notification_secret_sealed.clone(),
            "notification_secret",
        )?;
        let mut reception_points = self.reception_points;
        if let Some(shop_id) = self.shop_id {
            reception_points.insert(
                0,
                ReceptionPoint {
                    shop_id,
                    label: String::new(),
                },
            );
        }
        Ok(Merchant {
            id: self.id,
            name: self.name,
            reception_points,
            client_id: self.client_id,
            client_secret,
            notification_secret,
            settings: Settings::seeded(
                self.min_amount_cents,
                self.adjustable,
                self.authorization_timeout_s,
                self.closing_hour,
            ),
        })
    }
}

/// The plugin's keys for the merchant's settings (the checkout shows and enforces these; ANCV's
/// totals are cut at its closing hour).
pub fn settings_pairs(s: &Settings) -> Vec<(&'static str, String)> {
    let m = &s.merchant;
    let mut pairs = vec![
        ("min_amount_cents", m.min_amount_cents.cents().to_string()),
        (
            "authorization_timeout_s",
            m.authorization_timeout_s.to_string(),
        ),
        ("closing_hour", m.closing_hour.to_string()),
    ];
    if s.adjustable_set {
        pairs.push(("adjustable", m.adjustable.to_string()));
    }
    if let Some(r) = m.remainder_min_cents {
        pairs.push(("remainder_min_cents", r.cents().to_string()));
    }
    pairs
}

/// What every merchant's plugin shares: the acquisition server and the call budget.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub api_base_url: String,
    pub request_timeout_ms: u64,
    /// The plugin's HTTP allow-list (the API's host).
    pub allowed_host: String,
}

/// A reception point's pool key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PointKey {
    pub merchant_id: String,
    pub shop_id: String,
}

type Merchants = Arc<RwLock<HashMap<String, Arc<Merchant>>>>;

/// The host's merchants and their plugin pools. Cheap to clone.
#[derive(Clone)]
pub struct Tenants {
    merchants: Merchants,
    registry: Registry<PointKey>,
    keyring: Option<Arc<Keyring>>,
}

impl Tenants {
    /// `max_live`: pools kept at most (`cvco_plugin_host::DEFAULT_MAX_LIVE` by default).
    pub fn new(
        wasm: Vec<u8>,
        api: ApiSettings,
        keyring: Option<Keyring>,
        max_live: usize,
    ) -> Tenants {
        let merchants: Merchants = Arc::default();
        let keyring = keyring.map(Arc::new);
        let (m, k) = (merchants.clone(), keyring.clone());
        let registry = Registry::builder(move |key: &PointKey| -> Result<PoolBuilder, CvcoError> {
            let merchant = m
                .read()
                .map_err(|_| config_error("merchants lock poisoned"))?
                .get(&key.merchant_id)
                .cloned()
                .ok_or_else(unknown_merchant)?;
            if !merchant
                .reception_points
                .iter()
                .any(|p| p.shop_id == key.shop_id)
            {
                return Err(unknown_merchant());
            }
            let pairs = merchant.plugin_config(&key.shop_id, &api, k.as_deref())?;
            let builder = Pool::builder(wasm.clone())
                .configs(pairs)
                .allowed_host(api.allowed_host.clone());
            // One warm instance per reception point of the many (more are made under load,
            // then dropped); the single-merchant host keeps one per core as before.
            Ok(match key.merchant_id == DEFAULT_MERCHANT {
                true => builder,
                false => builder.max_idle(1),
            })
        })
        .max_live(max_live)
        .build();
        Tenants {
            merchants,
            registry,
            keyring,
        }
    }

    /// The host's merchants from its configuration: `default` (the single-merchant keys, when
    /// `shop_id` is set) and the `[[merchants]]` entries. The keyring comes from
    /// `CVCO_HOST_SECRET_KEY` when set (required as soon as a secret is sealed).
    pub fn from_config(cfg: &HostConfig, wasm: Vec<u8>) -> Result<Tenants, String> {
        let keyring = match std::env::var_os(crate::secrets::KEY_ENV) {
            Some(_) => Some(Keyring::from_env().map_err(|e| e.to_string())?),
            None => None,
        };
        let api = ApiSettings {
            api_base_url: cfg.sandbox_url.clone(),
            request_timeout_ms: cfg.request_timeout_ms,
            allowed_host: crate::url_host(&cfg.sandbox_url),
        };
        let tenants = Tenants::new(wasm, api, keyring, cvco_plugin_host::DEFAULT_MAX_LIVE);
        if !cfg.shop_id.trim().is_empty() {
            tenants.upsert(Merchant::from_host_config(cfg));
        }
        for m in &cfg.merchants {
            tenants.upsert(m.clone().into_merchant()?);
        }
        Ok(tenants)
    }

    /// Takes the store's merchants and settings written after version `since` (0: all) and
    /// answers the newest version seen, for the next call (versions only grow, one per write,
    /// so a change written in the same millisecond as the last one seen is not missed). A
    /// changed merchant's pools are rebuilt on next use.
    pub async fn reload(&self, store: &Store, since: i64) -> Result<i64, CvcoError> {
        let version = store.merchants_version().await?;
        if since > 0 && version <= since {
            return Ok(since);
        }
        let newer = |v: i64| since == 0 || v > since;
        let saved: HashMap<String, SettingsRow> = store
            .settings_rows()
            .await?
            .into_iter()
            .map(|r| (r.merchant_id.clone(), r))
            .collect();
        let mut stored = std::collections::HashSet::new();
        for row in store.merchants().await? {
            stored.insert(row.merchant_id.clone());
            let settings = saved.get(&row.merchant_id);
            if newer(row.version) {
                let mut m = Merchant::from_row(&row);
                if let Some(s) = settings {
                    m.settings = Settings::from_saved(s)?;
                }
                self.upsert(m);
            } else if let Some(s) = settings.filter(|s| newer(s.version)) {
                // Only its settings changed (already applied here when this instance saved them).
                self.apply_settings(&row.merchant_id, Settings::from_saved(s)?);
            }
        }
        // Settings of the configuration's merchants (`default`, `[[merchants]]`).
        for (id, row) in &saved {
            if stored.contains(id) || !newer(row.version) {
                continue;
            }
            self.apply_settings(id, Settings::from_saved(row)?);
        }
        Ok(version.max(since))
    }

    /// Replaces a known merchant's settings (its pools are rebuilt with them); false when the
    /// merchant is unknown or already has these.
    pub fn apply_settings(&self, merchant_id: &str, settings: Settings) -> bool {
        let Some(current) = self.merchant(merchant_id) else {
            return false;
        };
        if current.settings == settings {
            return false;
        }
        let mut m = (*current).clone();
        m.settings = settings;
        self.upsert(m);
        true
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    /// Adds or replaces a merchant; a replaced merchant's pools are dropped (new secret or
    /// settings), so its next call builds them again.
    pub fn upsert(&self, merchant: Merchant) {
        let merchant = Arc::new(merchant);
        let old = self
            .merchants
            .write()
            .ok()
            .and_then(|mut m| m.insert(merchant.id.clone(), merchant.clone()));
        if let Some(old) = old {
            self.invalidate(&old);
        }
    }

    /// Forgets a merchant and drops its pools.
    pub fn remove(&self, merchant_id: &str) -> bool {
        let old = self
            .merchants
            .write()
            .ok()
            .and_then(|mut m| m.remove(merchant_id));
        match old {
            Some(old) => {
                self.invalidate(&old);
                true
            }
            None => false,
        }
    }

    fn invalidate(&self, merchant: &Merchant) {
        for p in &merchant.reception_points {
            self.registry.invalidate(&PointKey {
                merchant_id: merchant.id.clone(),
                shop_id: p.shop_id.clone(),
            });
        }
    }

    pub fn merchant(&self, id: &str) -> Option<Arc<Merchant>> {
        self.merchants.read().ok()?.get(id).cloned()
    }

    /// Every merchant id, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .merchants
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn len(&self) -> usize {
        self.merchants.read().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plugin of the merchant's reception point (`None`: its main one). Nothing is built
    /// until its first call.
    pub fn plugin(
        &self,
        merchant_id: &str,
        shop_id: Option<&str>,
    ) -> Result<PointPlugin, CvcoError> {
        let merchant = self.merchant(merchant_id).ok_or_else(unknown_merchant)?;
        let point = match shop_id {
            Some(s) => merchant.reception_points.iter().find(|p| p.shop_id == s),
            None => merchant.main_point(),
        }
        .ok_or_else(unknown_merchant)?;
        Ok(PointPlugin {
            registry: self.registry.clone(),
            key: PointKey {
                merchant_id: merchant.id.clone(),
                shop_id: point.shop_id.clone(),
            },
        })
    }

    pub fn stats(&self) -> RegistryStats {
        self.registry.stats()
    }

    pub fn max_live(&self) -> usize {
        self.registry.max_live()
    }
}

/// One reception point's plugin, looked up in the registry at each call: an evicted or
/// invalidated pool is rebuilt with the merchant's current config. Implements
/// `payments::PluginCalls`.
#[derive(Clone)]
pub struct PointPlugin {
    registry: Registry<PointKey>,
    key: PointKey,
}

impl PointPlugin {
    pub fn key(&self) -> &PointKey {
        &self.key
    }

    /// The live pool; building one (a first call, after eviction) runs off the async workers.
    pub async fn pool(&self) -> Result<Pool, CvcoError> {
        if self.registry.is_live(&self.key) {
            return self.registry.get(&self.key);
        }
        self.registry.get_async(&self.key).await
    }

    /// Blocking variant (start-up, tests).
    pub fn pool_blocking(&self) -> Result<Pool, CvcoError> {
        self.registry.get(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml_merchant(text: &str) -> Result<Merchant, String> {
        let c: MerchantConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.into_merchant()
    }

    #[test]
    fn the_single_merchant_configuration_is_the_default_merchant() {
        let cfg = HostConfig::demo();
        let m = Merchant::from_host_config(&cfg);
        assert_eq!(m.id, DEFAULT_MERCHANT);
        assert_eq!(m.main_point().unwrap().shop_id, cfg.shop_id);
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        let api = ApiSettings {
            api_base_url: "http://127.0.0.1:7070/".into(),
            request_timeout_ms: 10_000,
            allowed_host: "127.0.0.1".into(),
        };
        let mut ours = m.plugin_config(&cfg.shop_id, &api, None).unwrap();
        let mut theirs = cfg.plugin_config();
        ours.sort();
        theirs.sort();
        assert_eq!(
            ours, theirs,
            "same plugin config as the single-merchant host"
        );
    }

    #[test]
    fn a_toml_merchant_with_points_settings_and_sealed_secret() {
        let ring = Keyring::new(&"ab".repeat(32), &[]).unwrap();
        let sealed = ring.seal("camp-1", &Secret::new("s3cret-client"));
        let m = toml_merchant(&format!(
            "id = \"camp-1\"\nname = \"Camping 1\"\nshop_id = \"S-1\"\nclient_id = \"c1\"\n\
             client_secret_sealed = \"{sealed}\"\nnotification_secret = \"whsec-1\"\n\
             min_amount_cents = 500\nadjustable = false\n\
             reception_points = [{{ shop_id = \"S-2\", label = \"Piscine\" }}]\n"
        ))
        .unwrap();
        assert!(m.problems().is_empty(), "{:?}", m.problems());
        let shops: Vec<_> = m
            .reception_points
            .iter()
            .map(|p| p.shop_id.as_str())
            .collect();
        assert_eq!(shops, ["S-1", "S-2"]);
        assert_eq!(m.settings.merchant.min_amount_cents.cents(), 500);
        let api = ApiSettings {
            api_base_url: "https://api.example".into(),
            request_timeout_ms: 5000,
            allowed_host: "api.example".into(),
        };
        let pairs: HashMap<_, _> = m
            .plugin_config("S-2", &api, Some(&ring))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(pairs["client_secret"], "s3cret-client");
        assert_eq!(pairs["shop_id"], "S-2");
        assert_eq!(pairs["adjustable"], "false");
        // Sealed without a key: refused, naming the variable; never a panic.
        let e = m.plugin_config("S-1", &api, None).unwrap_err();
        assert!(
            e.message_en.contains(crate::secrets::KEY_ENV),
            "{}",
            e.message_en
        );
        // The Debug form shows no secret.
        assert!(!format!("{m:?}").contains("whsec-1"));
    }

    #[test]
    fn production_with_merchants_needs_no_single_merchant_keys_but_the_sealing_key() {
        let merchant = |id: &str| MerchantConfig {
            id: id.into(),
            shop_id: Some(format!("S-{id}")),
            client_id: format!("c-{id}"),
            client_secret: Some("cs".into()),
            notification_secret: Some("ns".into()),
            ..MerchantConfig::default()
        };
        let cfg = HostConfig {
            sandbox_url: "https://api.example".into(),
            plugin: Some(std::env::current_exe().unwrap()),
            merchants: vec![merchant("a"), merchant("b"), merchant("a")],
            ..HostConfig::default()
        };
        let problems = cfg.check().unwrap_err().join("\n");
        assert!(!problems.contains("CVCO_HOST_SHOP_ID"), "{problems}");
        assert!(problems.contains("\"a\" used twice"), "{problems}");
        if std::env::var_os(crate::secrets::KEY_ENV).is_none() {
            assert!(problems.contains(crate::secrets::KEY_ENV), "{problems}");
        }
    }

    #[test]
    fn bad_merchants_are_named_with_what_is_wrong() {
        let m = toml_merchant("id = \"Bad Id\"\nclient_id = \"\"\n").unwrap();
        let p = m.problems().join("\n");
        for needle in [
            "merchant id",
            "no reception point",
            "client_id missing",
            "client secret",
            "notification secret",
        ] {
            assert!(p.contains(needle), "{needle} not in {p}");
        }
        assert!(
            toml_merchant("id = \"a\"\nclient_secret = \"x\"\nclient_secret_sealed = \"y\"\n")
                .is_err()
        );
        assert!(toml_merchant("id = \"a\"\nshopid = \"x\"\n").is_err());
    }
}
