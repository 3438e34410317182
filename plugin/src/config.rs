//! The manifest configuration, read lazily: a missing or malformed key is a typed error
//! (`config_missing` / `config_invalid`, `field` = the key) at the first call that needs it.

use crate::host::Host;
use cvco_core::{Amount, CvcoError, ErrorCode, MerchantSettings, ShopId};

/// What every export that talks to the acquisition server needs.
pub struct ApiConfig {
    pub api_base_url: String,
    pub shop_id: ShopId,
    pub client_id: String,
    pub client_secret: String,
    pub min_amount: Amount,
    /// The merchant's minimum for a chained payment of an order's remainder (`remainder_min_cents`).
    pub remainder_min: Option<Amount>,
    /// `None`: the shop's setting on the server applies.
    pub adjustable: Option<bool>,
    pub authorization_timeout_s: u32,
    /// The merchant's closing hour (`closing_hour`; `None`: the shop's on the server), so ANCV's
    /// totals cut the days where the host's do.
    pub closing_hour: Option<u8>,
}

fn missing(key: &str) -> CvcoError {
    CvcoError::new(ErrorCode::ConfigMissing)
        .with_detail(&format!("Clé : {key}."), &format!("Key: {key}."))
        .with_field(key)
}

fn invalid(key: &str, fr: &str, en: &str) -> CvcoError {
    CvcoError::new(ErrorCode::ConfigInvalid)
        .with_detail(&format!("{key} : {fr}"), &format!("{key}: {en}"))
        .with_field(key)
}

/// A present, non-blank value (blank counts as missing: templated configs often leave "").
fn required(host: &dyn Host, key: &str) -> Result<String, CvcoError> {
    optional(host, key)?.ok_or_else(|| missing(key))
}

fn optional(host: &dyn Host, key: &str) -> Result<Option<String>, CvcoError> {
    match host.config(key) {
        Ok(Some(v)) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
        Ok(_) => Ok(None),
        Err(_) => Err(invalid(key, "texte UTF-8 attendu.", "UTF-8 text expected.")),
    }
}

fn secret(host: &dyn Host, key: &str) -> Result<String, CvcoError> {
    let v = required(host, key)?;
    if v.len() > 512 || v.chars().any(|c| c.is_control()) {
        return Err(invalid(
            key,
            "1 à 512 caractères imprimables.",
            "1 to 512 printable characters.",
        ));
    }
    Ok(v)
}

pub fn api_base_url(host: &dyn Host) -> Result<String, CvcoError> {
    let url = required(host, "api_base_url")?;
    let lower = url.to_ascii_lowercase();
    let (https, rest) = match lower.strip_prefix("https://") {
        Some(r) => (true, Some(r)),
        None => (false, lower.strip_prefix("http://")),
    };
    let authority = rest.map(|r| r.split('/').next().unwrap_or(""));
    let ok = rest.is_some_and(|r| {
        !r.contains(['?', '#', ' ', '@']) && r.chars().all(|c| c.is_ascii_graphic())
    }) && authority.is_some_and(|a| !a.is_empty())
        && url.len() <= 512;
    if !ok {
        return Err(invalid(
            "api_base_url",
            "URL http(s) attendue, sans requête ni fragment.",
            "http(s) URL expected, without query or fragment.",
        ));
    }
    // Credentials and payments travel over it: plain http only to this machine (000 §4.4.1).
    if !https && !authority.is_some_and(is_loopback) {
        return Err(invalid(
            "api_base_url",
            "https:// obligatoire (http:// seulement vers 127.0.0.0/8, ::1 ou localhost).",
            "https:// required (http:// only to 127.0.0.0/8, ::1 or localhost).",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Whether the authority `host[:port]` names this machine: 127.0.0.0/8, `[::1]`, `localhost`.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        },
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn notification_secret(host: &dyn Host) -> Result<String, CvcoError> {
    secret(host, "notification_secret")
}

pub fn shop_id(host: &dyn Host) -> Result<ShopId, CvcoError> {
    ShopId::parse(&required(host, "shop_id")?).map_err(|_| {
        invalid(
            "shop_id",
            "1 à 32 caractères : lettres, chiffres, - ou _.",
            "1 to 32 characters: letters, digits, - or _.",
        )
    })
}

fn number(host: &dyn Host, key: &str, min: u64, max: u64) -> Result<Option<u64>, CvcoError> {
    let Some(v) = optional(host, key)? else {
        return Ok(None);
    };
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(
            key,
            &format!("entier entre {min} et {max} attendu."),
            &format!("integer between {min} and {max} expected."),
        )),
    }
}

/// `request_timeout_ms` is enforced by the host (manifest `timeout_ms`); the plugin only checks it.
pub fn request_timeout_ms(host: &dyn Host) -> Result<u64, CvcoError> {
    Ok(number(host, "request_timeout_ms", 1, 600_000)?.unwrap_or(10_000))
}

/// The merchant's settings this instance was configured with (manifest keys of the same names),
/// defaults where absent: what `checkout` shows and `create_payment` enforces.
pub fn merchant_settings(host: &dyn Host) -> Result<MerchantSettings, CvcoError> {
    configured_settings(host).map(|(settings, _)| settings)
}

/// The settings, and `adjustable` as configured (`None` leaves the shop's own setting on the
/// server): one read of the keys for both.
fn configured_settings(host: &dyn Host) -> Result<(MerchantSettings, Option<bool>), CvcoError> {
    let defaults = MerchantSettings::default();
    let min_amount_cents = match number(host, "min_amount_cents", 0, Amount::MAX.cents())? {
        Some(n) => Amount::from_cents(n)?,
        None => defaults.min_amount_cents,
    };
    let adjustable = match optional(host, "adjustable")?.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(invalid(
                "adjustable",
                "true ou false attendu.",
                "true or false expected.",
            ))
        }
    };
    let authorization_timeout_s = number(host, "authorization_timeout_s", 1, 3600)?
        .map(|n| n as u32)
        .unwrap_or(defaults.authorization_timeout_s);
    let closing_hour = number(host, "closing_hour", 0, 23)?
        .map(|n| n as u8)
        .unwrap_or(defaults.closing_hour);
    let remainder_min_cents =
        match number(host, "remainder_min_cents", 1, min_amount_cents.cents())? {
            Some(n) => Some(Amount::from_cents(n)?),
            None => defaults.remainder_min_cents,
        };
    let settings = MerchantSettings {
        min_amount_cents,
        remainder_min_cents,
        adjustable: adjustable.unwrap_or(defaults.adjustable),
        authorization_timeout_s,
        closing_hour,
        ..defaults
    };
    Ok((settings, adjustable))
}

impl ApiConfig {
    /// Reads and checks every key the API exports depend on, in a fixed order.
    pub fn load(host: &dyn Host) -> Result<ApiConfig, CvcoError> {
        let api_base_url = api_base_url(host)?;
        let shop_id = shop_id(host)?;
        let client_id = secret(host, "client_id")?;
        let client_secret = secret(host, "client_secret")?;
        let (settings, adjustable) = configured_settings(host)?;
        request_timeout_ms(host)?;
        Ok(ApiConfig {
            api_base_url,
            shop_id,
            client_id,
            client_secret,
            min_amount: settings.min_amount_cents,
            remainder_min: settings.remainder_min_cents,
            adjustable,
            authorization_timeout_s: settings.authorization_timeout_s,
            closing_hour: number(host, "closing_hour", 0, 23)?.map(|n| n as u8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Request, Response};

    struct Only(&'static str);

    impl Host for Only {
        fn config(&self, key: &str) -> Result<Option<String>, CvcoError> {
            Ok((key == "api_base_url").then(|| self.0.to_string()))
        }
        fn var(&self, _: &str) -> Option<Vec<u8>> {
            None
        }
        fn set_var(&mut self, _: &str, _: &[u8]) {}
        fn remove_var(&mut self, _: &str) {}
        fn http(&mut self, _: &Request) -> Result<Response, CvcoError> {
            unreachable!("no HTTP while reading the configuration")
        }
    }

    #[test]
    fn plain_http_api_base_url_is_refused_except_on_loopback() {
        for ok in [
            "https://api.ancv.example/v1/",
            "http://127.0.0.1:7070",
            "http://127.8.9.10/api",
            "http://[::1]:7070",
            "http://LOCALHOST:8080",
            "https://10.0.0.5",
        ] {
            api_base_url(&Only(ok)).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
        for refused in [
            "http://api.ancv.example",
            "http://10.0.0.5:7070",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example",
            "http://[::1]evil",
        ] {
            let e = api_base_url(&Only(refused)).unwrap_err();
            assert_eq!(e.code, ErrorCode::ConfigInvalid, "{refused}");
            assert_eq!(e.field.as_deref(), Some("api_base_url"), "{refused}");
        }
        assert!(api_base_url(&Only("http://api.ancv.example"))
            .unwrap_err()
            .message_en
            .contains("https:// required"));
    }
}
