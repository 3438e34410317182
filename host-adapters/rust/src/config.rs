//! Configuration: defaults (production: no merchant values at all; `--demo`: the sandbox demo
//! shop), then a TOML file, then `CVCO_HOST_*` environment variables, then command-line flags (each
//! overriding the previous). A production start is refused unless [`HostConfig::check`] passes.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// A back-office account created at start-up when it does not exist yet (demo accounts, or one
/// set explicitly in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Demo mode: demo defaults, demo accounts, the demo shop and the simulated card
    /// (the counter is a product function, served in both modes). Off by default; production checks ([`HostConfig::check`]) apply only when off.
    pub demo: bool,
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Base URL the acquisition server reaches us at (notification URL); the bound address when absent.
    pub public_url: Option<String>,
    /// The acquisition server (`api_base_url` of the plugin; config key `api_base_url`, alias
    /// `sandbox_url`). Empty by default: production must name it.
    pub sandbox_url: String,
    pub shop_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub notification_secret: String,
    /// `cvco_plugin.wasm` (required: the host never builds it).
    pub plugin: Option<PathBuf>,
    /// SQLite file; in memory when absent (and no `database`).
    pub data_file: Option<PathBuf>,
    /// `postgres://…` (PostgreSQL, any number of instances on one database), `sqlite:PATH` or a
    /// path (SQLite); wins over `data_file`.
    pub database: Option<String>,
    /// Serve the pages of `examples/` from this folder (page development: edits show on reload);
    /// unset (the default), the copies compiled into the binary (build.rs) are served.
    pub examples_dir: Option<PathBuf>,
    pub widget_dir: PathBuf,
    pub openapi_file: PathBuf,
    /// Enables `POST /shop/api/test-orders` (tests only).
    pub test_orders: bool,
    /// First polling delay of a non-final payment without news; doubles up to `poll_max_ms`.
    pub poll_interval_ms: u64,
    pub poll_max_ms: u64,
    /// How long after its deadline a still-open payment is cancelled by us.
    pub expiry_grace_ms: u64,
    /// Seed of the `default` merchant's closing hour (Paris time) until its manager sets one in
    /// the back-office: read the merchant's, `Engine::merchant_settings(..).closing_hour`.
    pub closing_hour: u8,
    /// Tests only: the clock of automatic closings runs this far ahead of the real one, so a
    /// test sees the closing hour come in seconds (0 in production).
    pub closing_clock_offset_ms: i64,
    /// Accounts created at start-up when missing: the demo ones with `--demo`, none by default
    /// (production: `cvco-host user add --role manager`).
    pub manager: Option<Account>,
    pub seller: Option<Account>,
    /// Argon2 memory cost in KiB (OWASP: 19456).
    pub argon2_m_kib: u32,
    pub session_ttl_s: u64,
    /// Merchant name printed on receipts.
    pub merchant_name: String,
    /// Per-call budget of the plugin (HTTP included).
    pub request_timeout_ms: u64,
    /// Merchant settings of the contract (checkout): given to the plugin as its config keys of
    /// the same names, and read back from there (`HostConfig::plugin_config`), never elsewhere.
    pub min_amount_cents: u64,
    /// Partial authorizations allowed; unset: the ANCV shop's own setting.
    pub adjustable: Option<bool>,
    pub authorization_timeout_s: u32,
    /// Take the client's address from the last `X-Forwarded-For` entry (behind a reverse proxy
    /// that sets it); otherwise the peer address. Login throttling and the shop's order limit count
    /// per client.
    pub trust_proxy: bool,
    /// Argon2 computations (logins, password changes) run at the same time at most.
    pub login_concurrency: usize,
    /// Demo-shop orders one client may create per minute, and all clients together.
    pub shop_orders_per_minute: u32,
    pub shop_orders_per_minute_total: u32,
    /// More merchants in this host (`[[merchants]]` of the TOML file), beside the merchant
    /// `default` that the single-merchant keys above make (when `shop_id` is set).
    pub merchants: Vec<crate::tenants::MerchantConfig>,
}

fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The sandbox's demo values: usable only with `--demo` (production refuses them).
pub const DEMO_SHOP_ID: &str = "SHOP-DEMO-01";
pub const DEMO_CLIENT_ID: &str = "demo-client";
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";
pub const DEMO_NOTIFICATION_SECRET: &str = "whsec_demo_change_me";
pub const DEMO_MANAGER: (&str, &str) = ("manager", "manager-demo");
pub const DEMO_SELLER: (&str, &str) = ("seller", "seller-demo");

impl Default for HostConfig {
    /// Production defaults: no merchant identity, secrets, API URL or accounts.
    fn default() -> Self {
        let root = workspace_root();
        HostConfig {
            demo: false,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            public_url: None,
            sandbox_url: String::new(),
            shop_id: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            notification_secret: String::new(),
            plugin: std::env::var_os(cvco_plugin_host::WASM_ENV).map(PathBuf::from),
            data_file: None,
            database: None,
            examples_dir: None,
            widget_dir: std::env::var_os("CVCO_WIDGET_DIST")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("dist/widget")),
            openapi_file: root.join("host-adapters/openapi.json"),
            test_orders: false,
            poll_interval_ms: 2000,
            poll_max_ms: 10_000,
            expiry_grace_ms: 5000,
            closing_hour: 0,
            closing_clock_offset_ms: 0,
            manager: None,
            seller: None,
            argon2_m_kib: 19456,
            session_ttl_s: 8 * 3600,
            merchant_name: String::new(),
            request_timeout_ms: 10_000,
            min_amount_cents: 2000,
            adjustable: None,
            authorization_timeout_s: 180,
            trust_proxy: false,
            login_concurrency: std::thread::available_parallelism()
                .map(|n| n.get().min(4))
                .unwrap_or(2),
            shop_orders_per_minute: 20,
            shop_orders_per_minute_total: 600,
            merchants: Vec::new(),
        }
    }
}

impl HostConfig {
    /// `--demo`: the sandbox's demo shop on 127.0.0.1:7070, the demo accounts and the demo pieces.
    pub fn demo() -> Self {
        let account = |(username, password): (&str, &str)| Account {
            username: username.into(),
            password: password.into(),
        };
        HostConfig {
            demo: true,
            sandbox_url: "http://127.0.0.1:7070".into(),
            shop_id: DEMO_SHOP_ID.into(),
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.into(),
            notification_secret: DEMO_NOTIFICATION_SECRET.into(),
            manager: Some(account(DEMO_MANAGER)),
            seller: Some(account(DEMO_SELLER)),
            merchant_name: "Les Pins (démo)".into(),
            ..HostConfig::default()
        }
    }

    /// Production checks (none in demo mode): every problem at once, each naming the flag,
    /// environment variable and TOML key that set it.
    pub fn check(&self) -> Result<(), Vec<String>> {
        self.check_with_stored(0)
    }

    /// Whether the merchants may all be in the store (no single-merchant keys, no
    /// `[[merchants]]`): the start then opens the store before [`HostConfig::check_with_stored`].
    pub fn may_use_stored_merchants(&self) -> bool {
        !self.demo
            && self.merchants.is_empty()
            && [&self.shop_id, &self.client_id, &self.client_secret]
                .iter()
                .all(|v| v.trim().is_empty())
    }

    /// [`HostConfig::check`] for a store holding `stored` merchants: with any, the
    /// single-merchant keys are optional and `CVCO_HOST_SECRET_KEY` is required.
    pub fn check_with_stored(&self, stored: usize) -> Result<(), Vec<String>> {
        if self.demo {
            return Ok(());
        }
        let mut problems = self.merchant_problems();
        if stored > 0 && self.merchants.is_empty() {
            if let Err(e) = crate::secrets::Keyring::from_env() {
                problems.push(format!(
                    "{stored} merchants in the database: their secrets are sealed with {} ({e})",
                    crate::secrets::KEY_ENV
                ));
            }
        }
        // With [[merchants]] or stored ones, the single-merchant keys are optional (all or none).
        let single = (self.merchants.is_empty() && stored == 0)
            || [&self.shop_id, &self.client_id, &self.client_secret]
                .iter()
                .any(|v| !v.trim().is_empty());
        let mut required = |value: &str, what: &str, how: &str, demo_value: &str| {
            if !single {
                return;
            }
            if value.trim().is_empty() {
                problems.push(format!("{what} missing: set {how}"));
            } else if value == demo_value {
                problems.push(format!(
                    "{what} is the sandbox demo value {demo_value:?}: set the real one ({how}), or run with --demo"
                ));
            }
        };
        required(
            &self.shop_id,
            "ANCV shop id",
            "--shop-id, CVCO_HOST_SHOP_ID or shop_id",
            DEMO_SHOP_ID,
        );
        required(
            &self.client_id,
            "ANCV client id",
            "--client-id, CVCO_HOST_CLIENT_ID or client_id",
            DEMO_CLIENT_ID,
        );
        // Secrets have no flag: a command line is visible to every local user.
        required(
            &self.client_secret,
            "ANCV client secret",
            "CVCO_HOST_CLIENT_SECRET or client_secret",
            DEMO_CLIENT_SECRET,
        );
        required(
            &self.notification_secret,
            "notification secret",
            "CVCO_HOST_NOTIFICATION_SECRET or notification_secret",
            DEMO_NOTIFICATION_SECRET,
        );
        const API: &str = "--api-base-url, CVCO_HOST_API_BASE_URL or api_base_url";
        if self.sandbox_url.trim().is_empty() {
            problems.push(format!("ANCV API base URL missing: set {API} (https://…)"));
        } else if !secure_or_loopback(&self.sandbox_url) {
            problems.push(format!(
                "ANCV API base URL {:?} must be https:// (plain http only to a loopback host): set {API}",
                self.sandbox_url
            ));
        }
        match &self.plugin {
            None => problems.push(format!(
                "plugin missing: set --plugin FILE.wasm, CVCO_HOST_PLUGIN (or {}) or plugin (`cargo xtask plugin` builds cvco_plugin.wasm)",
                cvco_plugin_host::WASM_ENV
            )),
            Some(p) if !p.is_file() => problems.push(format!(
                "plugin {}: no such file (--plugin, CVCO_HOST_PLUGIN or plugin)",
                p.display()
            )),
            Some(_) => {}
        }
        const PUBLIC: &str = "--public-url, CVCO_HOST_PUBLIC_URL or public_url";
        match &self.public_url {
            Some(url) if !secure_or_loopback(url) => problems.push(format!(
                "public URL {url:?} must be https:// (plain http only on a loopback host): set {PUBLIC}"
            )),
            Some(_) => {}
            None if !self.host.is_loopback() => problems.push(format!(
                "public URL missing (listening on {}, not loopback): set {PUBLIC} to the https:// address ANCV sends notifications to",
                self.host
            )),
            None => {}
        }
        if self.test_orders {
            problems.push(
                "test orders (--test-orders, CVCO_HOST_TEST_ORDERS or test_orders) exist only with --demo"
                    .into(),
            );
        }
        for (role, account, demo) in [
            ("manager", &self.manager, DEMO_MANAGER),
            ("seller", &self.seller, DEMO_SELLER),
        ] {
            if let Some(a) = account {
                if a.password == demo.1 || a.password.chars().count() < 8 {
                    problems.push(format!(
                        "[{role}] account {:?}: its password is the demo one or shorter than 8 characters (CVCO_HOST_{}_PASSWORD or [{role}] password)",
                        a.username,
                        role.to_uppercase()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

impl HostConfig {
    /// The `[[merchants]]` entries' problems; production also needs `CVCO_HOST_SECRET_KEY`
    /// (merchant secrets are sealed at rest).
    fn merchant_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.merchants.is_empty() {
            return problems;
        }
        if let Err(e) = crate::secrets::Keyring::from_env() {
            problems.push(format!(
                "merchants configured: their secrets are sealed with {} ({e})",
                crate::secrets::KEY_ENV
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for m in &self.merchants {
            if !ids.insert(m.id.as_str()) || m.id == crate::tenants::DEFAULT_MERCHANT {
                problems.push(format!(
                    "[[merchants]] id {:?} used twice (\"default\" is the single-merchant keys')",
                    m.id
                ));
            }
            match m.clone().into_merchant() {
                Ok(merchant) => problems.extend(merchant.problems()),
                Err(e) => problems.push(e),
            }
        }
        problems
    }
}

/// The refusal a production start prints: every problem, one a line.
pub fn refusal(problems: &[String]) -> String {
    let mut text = String::from("refusing to start in production mode:");
    for p in problems {
        text.push_str("\n  - ");
        text.push_str(p);
    }
    text.push_str("\n(--demo or CVCO_HOST_DEMO=1 runs the sandbox demo instead)");
    text
}

/// `https://…`, or `http://` to a loopback host (a local sandbox, a local proxy).
fn secure_or_loopback(url: &str) -> bool {
    let Some((scheme, rest)) = url.trim().split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return false;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => {
            host.eq_ignore_ascii_case("localhost")
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// The TOML file: every key optional, same names as the environment variables without the
/// `CVCO_HOST_` prefix, lower-cased.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    host: Option<IpAddr>,
    port: Option<u16>,
    public_url: Option<String>,
    #[serde(alias = "sandbox_url")]
    api_base_url: Option<String>,
    shop_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    notification_secret: Option<String>,
    plugin: Option<PathBuf>,
    data: Option<PathBuf>,
    database: Option<String>,
    examples_dir: Option<PathBuf>,
    widget_dir: Option<PathBuf>,
    openapi_file: Option<PathBuf>,
    test_orders: Option<bool>,
    poll_interval_ms: Option<u64>,
    poll_max_ms: Option<u64>,
    expiry_grace_ms: Option<u64>,
    closing_hour: Option<u8>,
    manager: Option<Account>,
    seller: Option<Account>,
    argon2_m_kib: Option<u32>,
    session_ttl_s: Option<u64>,
    merchant_name: Option<String>,
    request_timeout_ms: Option<u64>,
    min_amount_cents: Option<u64>,
    adjustable: Option<bool>,
    authorization_timeout_s: Option<u32>,
    trust_proxy: Option<bool>,
    login_concurrency: Option<usize>,
    shop_orders_per_minute: Option<u32>,
    shop_orders_per_minute_total: Option<u32>,
    merchants: Option<Vec<crate::tenants::MerchantConfig>>,
}

impl HostConfig {
    /// The plugin's manifest config: the merchant identity, the call budget and the merchant
    /// settings. The checkout rules read the settings from these same pairs.
    pub fn plugin_config(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            (
                "api_base_url",
                self.sandbox_url.trim_end_matches('/').to_string(),
            ),
            ("shop_id", self.shop_id.clone()),
            ("client_id", self.client_id.clone()),
            ("client_secret", self.client_secret.clone()),
            ("notification_secret", self.notification_secret.clone()),
            ("request_timeout_ms", self.request_timeout_ms.to_string()),
            ("min_amount_cents", self.min_amount_cents.to_string()),
            (
                "authorization_timeout_s",
                self.authorization_timeout_s.to_string(),
            ),
            ("closing_hour", self.closing_hour.to_string()),
        ];
        if let Some(a) = self.adjustable {
            pairs.push(("adjustable", a.to_string()));
        }
        pairs
    }

    /// The merchant settings the checkout rules apply: the same values `plugin_config` gives
    /// the plugin, so the widget is told what the plugin enforces.
    pub fn merchant_settings(&self) -> cvco_core::shop::MerchantSettings {
        let defaults = cvco_core::shop::MerchantSettings::default();
        cvco_core::shop::MerchantSettings {
            min_amount_cents: cvco_core::Amount::from_cents(self.min_amount_cents)
                .unwrap_or(defaults.min_amount_cents),
            adjustable: self.adjustable.unwrap_or(defaults.adjustable),
            authorization_timeout_s: self.authorization_timeout_s,
            closing_hour: self.closing_hour,
            ..defaults
        }
    }

    pub fn apply_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let f: FileConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        macro_rules! set {
            ($($k:ident => $field:ident),* $(,)?) => { $( if let Some(v) = f.$k { self.$field = v; } )* };
        }
        set!(host => host, port => port, api_base_url => sandbox_url, shop_id => shop_id,
            client_id => client_id, client_secret => client_secret,
            notification_secret => notification_secret,
            widget_dir => widget_dir, openapi_file => openapi_file, test_orders => test_orders,
            poll_interval_ms => poll_interval_ms, poll_max_ms => poll_max_ms,
            expiry_grace_ms => expiry_grace_ms, closing_hour => closing_hour,
            argon2_m_kib => argon2_m_kib,
            session_ttl_s => session_ttl_s, merchant_name => merchant_name,
            request_timeout_ms => request_timeout_ms, trust_proxy => trust_proxy,
            min_amount_cents => min_amount_cents,
            authorization_timeout_s => authorization_timeout_s,
            login_concurrency => login_concurrency,
            shop_orders_per_minute => shop_orders_per_minute,
            shop_orders_per_minute_total => shop_orders_per_minute_total);
        if f.public_url.is_some() {
            self.public_url = f.public_url;
        }
        if f.examples_dir.is_some() {
            self.examples_dir = f.examples_dir;
        }
        if f.manager.is_some() {
            self.manager = f.manager;
        }
        if f.seller.is_some() {
            self.seller = f.seller;
        }
        if f.adjustable.is_some() {
            self.adjustable = f.adjustable;
        }
        if f.plugin.is_some() {
            self.plugin = f.plugin;
        }
        if let Some(merchants) = f.merchants {
            self.merchants = merchants;
        }
        if f.data.is_some() {
            self.data_file = f.data;
        }
        if f.database.is_some() {
            self.database = f.database;
        }
        Ok(())
    }

    /// `CVCO_HOST_<KEY>` for every key of the file.
    pub fn apply_env(&mut self) -> Result<(), String> {
        self.apply_vars(|k| std::env::var(k).ok())
    }

    pub fn apply_vars(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let var = |k: &str| get(&format!("CVCO_HOST_{k}"));
        fn parse<T: std::str::FromStr>(k: &str, v: String) -> Result<T, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("CVCO_HOST_{k}: cannot read {v:?}"))
        }
        macro_rules! num {
            ($($k:literal => $field:ident),* $(,)?) => { $( if let Some(v) = var($k) { self.$field = parse($k, v)?; } )* };
        }
        macro_rules! text {
            ($($k:literal => $field:ident),* $(,)?) => { $( if let Some(v) = var($k) { self.$field = v; } )* };
        }
        num!("HOST" => host, "PORT" => port, "TEST_ORDERS" => test_orders,
            "POLL_INTERVAL_MS" => poll_interval_ms, "POLL_MAX_MS" => poll_max_ms,
            "EXPIRY_GRACE_MS" => expiry_grace_ms, "CLOSING_HOUR" => closing_hour,
            "ARGON2_M_KIB" => argon2_m_kib, "SESSION_TTL_S" => session_ttl_s,
            "REQUEST_TIMEOUT_MS" => request_timeout_ms, "TRUST_PROXY" => trust_proxy,
            "MIN_AMOUNT_CENTS" => min_amount_cents,
            "AUTHORIZATION_TIMEOUT_S" => authorization_timeout_s,
            "LOGIN_CONCURRENCY" => login_concurrency,
            "SHOP_ORDERS_PER_MINUTE" => shop_orders_per_minute,
            "SHOP_ORDERS_PER_MINUTE_TOTAL" => shop_orders_per_minute_total);
        // The old name first, so the new one wins when both are set.
        text!("SANDBOX_URL" => sandbox_url, "API_BASE_URL" => sandbox_url, "SHOP_ID" => shop_id, "CLIENT_ID" => client_id,
            "CLIENT_SECRET" => client_secret, "NOTIFICATION_SECRET" => notification_secret,
            "MERCHANT_NAME" => merchant_name);
        if let Some(v) = var("PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = var("ADJUSTABLE") {
            self.adjustable = Some(parse("ADJUSTABLE", v)?);
        }
        if let Some(v) = var("PLUGIN") {
            self.plugin = Some(v.into());
        }
        if let Some(v) = var("DATA") {
            self.data_file = Some(v.into());
        }
        if let Some(v) = var("DATABASE") {
            self.database = Some(v);
        }
        if let Some(v) = var("EXAMPLES_DIR") {
            self.examples_dir = Some(v.into());
        }
        if let Some(v) = var("WIDGET_DIR") {
            self.widget_dir = v.into();
        }
        if let Some(v) = var("OPENAPI_FILE") {
            self.openapi_file = v.into();
        }
        // Sets the password of the configured account, or asks for one of that role's name.
        for (key, account, name) in [
            ("MANAGER_PASSWORD", &mut self.manager, "manager"),
            ("SELLER_PASSWORD", &mut self.seller, "seller"),
        ] {
            if let Some(password) = var(key) {
                match account {
                    Some(a) => a.password = password,
                    None => {
                        *account = Some(Account {
                            username: name.into(),
                            password,
                        })
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_has_no_demo_values_and_demo_has_them() {
        let c = HostConfig::default();
        assert!(!c.demo);
        assert!(c.shop_id.is_empty() && c.client_id.is_empty());
        assert!(c.client_secret.is_empty() && c.notification_secret.is_empty());
        assert!(c.sandbox_url.is_empty());
        assert!(c.manager.is_none() && c.seller.is_none());
        let d = HostConfig::demo();
        assert!(d.demo);
        assert_eq!(d.shop_id, DEMO_SHOP_ID);
        assert_eq!(d.manager.unwrap().password, DEMO_MANAGER.1);
        assert!(HostConfig::demo().check().is_ok());
    }

    #[test]
    fn production_check_names_every_missing_item_with_its_keys() {
        let c = HostConfig {
            plugin: None,
            ..HostConfig::default()
        };
        let problems = c.check().unwrap_err();
        for needle in [
            "CVCO_HOST_SHOP_ID",
            "CVCO_HOST_CLIENT_ID",
            "CVCO_HOST_CLIENT_SECRET",
            "CVCO_HOST_NOTIFICATION_SECRET",
            "CVCO_HOST_API_BASE_URL",
            "CVCO_HOST_PLUGIN",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle} not named in {problems:?}"
            );
        }
        assert_eq!(problems.len(), 6, "{problems:?}");
    }

    #[test]
    fn production_check_refuses_demo_values_plain_http_and_test_orders() {
        let mut c = HostConfig::demo();
        c.demo = false;
        c.plugin = Some(std::env::current_exe().unwrap());
        c.sandbox_url = "http://acq.example".into();
        c.host = "0.0.0.0".parse().unwrap();
        c.test_orders = true;
        let problems = c.check().unwrap_err();
        let joined = problems.join("\n");
        for needle in [
            "\"SHOP-DEMO-01\"",
            "\"demo-client\"",
            "\"demo-secret\"",
            "\"whsec_demo_change_me\"",
            "\"http://acq.example\"",
            "public URL missing",
            "test orders",
            "[manager]",
            "[seller]",
        ] {
            assert!(joined.contains(needle), "{needle} not in {joined}");
        }
        // Passwords are never printed, not even the demo ones.
        assert!(!joined.contains(DEMO_MANAGER.1) && !joined.contains(DEMO_SELLER.1));
    }

    #[test]
    fn production_check_passes_with_real_values_and_loopback_http() {
        let mut c = HostConfig {
            shop_id: "SHOP-42".into(),
            client_id: "c42".into(),
            client_secret: "s".repeat(24),
            notification_secret: "whsec_real".into(),
            sandbox_url: "https://api.ancv.example/cvco".into(),
            plugin: Some(std::env::current_exe().unwrap()),
            ..HostConfig::default()
        };
        assert_eq!(c.check(), Ok(()));
        c.sandbox_url = "http://127.0.0.1:7070".into();
        c.host = "0.0.0.0".parse().unwrap();
        c.public_url = Some("https://shop.example".into());
        assert_eq!(c.check(), Ok(()));
        c.public_url = Some("http://shop.example".into());
        assert!(c.check().is_err());
        for (url, ok) in [
            ("http://[::1]:80/x", true),
            ("http://localhost", true),
            ("HTTPS://x.example", true),
            ("http://10.0.0.1", false),
            ("ftp://127.0.0.1", false),
            ("https://", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(secure_or_loopback(url), ok, "{url}");
        }
    }

    #[test]
    fn api_base_url_key_with_sandbox_url_alias() {
        let dir = std::env::temp_dir().join(format!("cvco-host-cfg-alias-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.toml");
        for key in ["api_base_url", "sandbox_url"] {
            std::fs::write(&p, format!("{key} = \"https://a.example\"\n")).unwrap();
            let mut c = HostConfig::default();
            c.apply_file(&p).unwrap();
            assert_eq!(c.sandbox_url, "https://a.example");
        }
        let mut c = HostConfig::default();
        c.apply_vars(|k| match k {
            "CVCO_HOST_SANDBOX_URL" => Some("http://old".into()),
            "CVCO_HOST_API_BASE_URL" => Some("https://new".into()),
            "CVCO_HOST_MANAGER_PASSWORD" => Some("long enough pw".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.sandbox_url, "https://new");
        assert_eq!(c.manager.unwrap().username, "manager");
    }

    #[test]
    fn env_overrides_defaults() {
        let mut c = HostConfig::default();
        c.apply_vars(|k| match k {
            "CVCO_HOST_CLIENT_SECRET" => Some("s3cret".into()),
            "CVCO_HOST_PORT" => Some("9090".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.client_secret, "s3cret");
        assert_eq!(c.port, 9090);
        assert!(c
            .apply_vars(|k| (k == "CVCO_HOST_PORT").then(|| "x".into()))
            .is_err());
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("cvco-host-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.toml");
        std::fs::write(&p, "shop_id = \"S2\"\nclosing_hour = 3\n[manager]\nusername = \"boss\"\npassword = \"pw\"\n").unwrap();
        let mut c = HostConfig::default();
        c.apply_file(&p).unwrap();
        assert_eq!((c.shop_id.as_str(), c.closing_hour), ("S2", 3));
        assert_eq!(c.manager.as_ref().unwrap().username, "boss");
        std::fs::write(&p, "shop_idd = \"S2\"\n").unwrap();
        assert!(HostConfig::default().apply_file(&p).is_err());
    }
}
