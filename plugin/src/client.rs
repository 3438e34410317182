//! The acquisition server, seen from inside the plugin: OAuth token cached in plugin vars, JSON
//! calls with `Idempotency-Key`, and the server's clock learned from its `Date` header.

use crate::config::ApiConfig;
use crate::host::{Host, Request, Response};
use crate::util::{encode, parse_http_date};
use cvco_core::wire::TokenResponse;
use cvco_core::{CvcoError, ErrorCode, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const VAR_TOKEN: &str = "cvco.token";
/// Last `Date` the server sent (ms). A lower bound of "now" for later calls, never more.
const VAR_SERVER_TIME: &str = "cvco.server_time_ms";
/// Server clock minus the caller's `now` (ms), learned when a call had both.
const VAR_CLOCK_OFFSET: &str = "cvco.clock_offset_ms";
/// Renew this long before the token's end, so a slow call never carries an expired token.
const TOKEN_MARGIN_S: i64 = 60;

#[derive(Serialize, Deserialize)]
struct CachedToken {
    access_token: String,
    /// On the server's clock; unknown when the host hides response headers (then only a 401
    /// triggers renewal).
    expires_at: Option<Timestamp>,
    /// The credentials it was issued for, so a changed configuration never reuses it.
    issued_for: String,
}

/// One export call's view of the server.
pub struct Ctx<'h> {
    pub host: &'h mut dyn Host,
    caller_now: Option<Timestamp>,
    server_now: Option<Timestamp>,
}

impl<'h> Ctx<'h> {
    pub fn new(host: &'h mut dyn Host, caller_now: Option<Timestamp>) -> Self {
        Ctx {
            host,
            caller_now,
            server_now: None,
        }
    }

    fn var_i64(&self, key: &str) -> Option<i64> {
        let bytes = self.host.var(key)?;
        std::str::from_utf8(&bytes).ok()?.parse().ok()
    }

    fn observe(&mut self, response: &Response) {
        let Some(date) = response.header("date").and_then(parse_http_date) else {
            return;
        };
        self.server_now = Some(date);
        self.host
            .set_var(VAR_SERVER_TIME, date.millis().to_string().as_bytes());
        if let Some(now) = self.caller_now {
            let offset = date.millis() - now.millis();
            self.host
                .set_var(VAR_CLOCK_OFFSET, offset.to_string().as_bytes());
        }
    }

    /// Best estimate of the server's clock: its `Date` in this call, else the caller's `now`
    /// corrected by the known offset, else the last `Date` seen (which is late, never early).
    fn server_clock(&self) -> Option<Timestamp> {
        if let Some(t) = self.server_now {
            return Some(t);
        }
        if let Some(now) = self.caller_now {
            let offset = self.var_i64(VAR_CLOCK_OFFSET).unwrap_or(0);
            return Some(now.plus_millis(offset));
        }
        self.var_i64(VAR_SERVER_TIME).map(Timestamp)
    }

    /// "Now" for checking a notification's freshness: the caller's `now`, else the server's
    /// `Date` from this call, else one `GET /healthz` to read it. A `Date` remembered from an
    /// earlier call is never used here: nothing tells how old it is.
    pub fn fresh_now(&mut self) -> Result<Timestamp, CvcoError> {
        if let Some(now) = self.caller_now.or(self.server_now) {
            return Ok(now);
        }
        let base = crate::config::api_base_url(self.host)
            .map_err(|e| e.with_detail("Ou passez « now ».", "Or pass \"now\"."))?;
        let response = self.host.http(&Request {
            method: "GET",
            url: format!("{base}/healthz"),
            headers: vec![],
            body: None,
        })?;
        self.observe(&response);
        self.server_now.ok_or_else(|| {
            CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail(
                    "Heure inconnue : passez « now » (l'hôte ne transmet pas l'en-tête Date).",
                    "Unknown time: pass \"now\" (the host does not expose the Date header).",
                )
                .with_field("now")
        })
    }

    fn token(&mut self, cfg: &ApiConfig, force: bool) -> Result<String, CvcoError> {
        let issued_for = format!("{}|{}|{}", cfg.api_base_url, cfg.shop_id, cfg.client_id);
        if !force {
            let cached = self
                .host
                .var(VAR_TOKEN)
                .and_then(|b| serde_json::from_slice::<CachedToken>(&b).ok())
                .filter(|c| c.issued_for == issued_for);
            if let Some(c) = cached {
                let fresh = match (c.expires_at, self.server_clock()) {
                    (Some(end), Some(now)) => now.plus_secs(TOKEN_MARGIN_S) < end,
                    _ => true,
                };
                if fresh {
                    return Ok(c.access_token);
                }
            }
        }
        self.host.remove_var(VAR_TOKEN);
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            encode(&cfg.client_id),
            encode(&cfg.client_secret)
        );
        let response = self.host.http(&Request {
            method: "POST",
            url: format!("{}/oauth/token", cfg.api_base_url),
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("Accept".into(), "application/json".into()),
            ],
            body: Some(form.into_bytes()),
        })?;
        self.observe(&response);
        let token: TokenResponse = parse_body(&check(response, false)?, false)?;
        if token.shop_id != cfg.shop_id {
            return Err(CvcoError::new(ErrorCode::ConfigInvalid)
                .with_detail(
                    "Ces identifiants appartiennent à un autre point d'accueil.",
                    "These credentials belong to another shop.",
                )
                .with_field("shop_id"));
        }
        let cached = CachedToken {
            access_token: token.access_token.clone(),
            expires_at: self
                .server_now
                .map(|t| t.plus_secs(i64::from(token.expires_in))),
            issued_for,
        };
        if let Ok(bytes) = serde_json::to_vec(&cached) {
            self.host.set_var(VAR_TOKEN, &bytes);
        }
        Ok(token.access_token)
    }

    /// Asks for a fresh token: proves the server is reachable and takes the credentials.
    pub fn check_credentials(&mut self, cfg: &ApiConfig) -> Result<(), CvcoError> {
        self.token(cfg, true).map(|_| ())
    }

    /// One authenticated JSON call; on a 401 the token is renewed and the call made once more
    /// (a 401 means nothing was done, so repeating it is safe).
    pub fn api<T: DeserializeOwned>(
        &mut self,
        cfg: &ApiConfig,
        method: &'static str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<T, CvcoError> {
        let mutating = method != "GET";
        let bytes = self.api_bytes(cfg, method, path_and_query, body, idempotency_key)?;
        parse_body(&bytes, mutating)
    }

    /// Like [`Ctx::api`], leaving the successful body unparsed.
    pub fn api_bytes(
        &mut self,
        cfg: &ApiConfig,
        method: &'static str,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<Vec<u8>, CvcoError> {
        let mut renewed = false;
        loop {
            let token = self.token(cfg, renewed)?;
            let mut headers = vec![
                ("Authorization".to_string(), format!("Bearer {token}")),
                ("Accept".to_string(), "application/json".to_string()),
            ];
            if body.is_some() {
                headers.push(("Content-Type".into(), "application/json".into()));
            }
            if let Some(key) = idempotency_key {
                headers.push((
                    cvco_core::wire::IDEMPOTENCY_HEADER.to_string(),
                    key.to_string(),
                ));
            }
            let response = self.host.http(&Request {
                method,
                url: format!("{}{}", cfg.api_base_url, path_and_query),
                headers,
                body: body.clone(),
            })?;
            self.observe(&response);
            if response.status == 401 && !renewed {
                renewed = true;
                self.host.remove_var(VAR_TOKEN);
                continue;
            }
            return check(response, method != "GET");
        }
    }
}

fn unsure(e: CvcoError, mutating: bool) -> CvcoError {
    if mutating {
        e.with_detail(
            "Réessayez avec la même clé d'idempotence ou relisez le statut.",
            "Retry with the same idempotency key or read the status.",
        )
    } else {
        e
    }
}

/// A 2xx body that does not parse: after a call that may have moved money, the caller cannot
/// know the outcome, so it is retryable (same idempotency key) like a lost answer.
pub fn parse_body<T: DeserializeOwned>(body: &[u8], mutating: bool) -> Result<T, CvcoError> {
    serde_json::from_slice(body).map_err(|e| {
        unsure(
            CvcoError::new(ErrorCode::UpstreamProtocol)
                .with_detail(
                    &format!("Réponse illisible : {e}."),
                    &format!("Unreadable answer: {e}."),
                )
                .retryable(mutating),
            mutating,
        )
    })
}

/// The body of a 2xx answer, or the typed error the answer means. `mutating`: the call may
/// have moved money, so an unclear outcome says how to find out.
fn check(response: Response, mutating: bool) -> Result<Vec<u8>, CvcoError> {
    let status = response.status;
    if (200..300).contains(&status) {
        return Ok(response.body);
    }
    let server_error = serde_json::from_slice::<CvcoError>(&response.body).ok();
    if status >= 500 || status == 429 || status == 408 || status == 0 {
        let e = server_error
            .unwrap_or_else(|| {
                CvcoError::new(ErrorCode::UpstreamUnavailable)
                    .with_detail(&format!("HTTP {status}."), &format!("HTTP {status}."))
            })
            .retryable(true);
        return Err(unsure(e, mutating));
    }
    Err(server_error.unwrap_or_else(|| {
        CvcoError::new(ErrorCode::UpstreamProtocol).with_detail(
            &format!("HTTP {status} sans erreur lisible."),
            &format!("HTTP {status} without a readable error."),
        )
    }))
}

impl Ctx<'_> {
    /// "Now" as well as it is known, for deadlines shown to people (never for security checks).
    pub fn estimate_now(&self) -> Option<Timestamp> {
        self.server_clock()
    }
}
