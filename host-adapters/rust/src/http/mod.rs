//! HTTP, split by audience: `shopper` (PROTOCOL.md §1 and its SSE), `backoffice` (§2),
//! `notifications` (§3), `accounts` (login, sessions, sellers), `counter` (the reception desk's
//! sales), `assets` (static files, widget,
//! OpenAPI). `error` is the one error type. The demo pieces come in from `crate::demo` through
//! [`router`]'s `extra` routes, so this module never depends on them.

mod accounts;
mod assets;
mod backoffice;
mod counter;
pub mod error;
mod kiosk;
mod notifications;
mod reconciliation;
pub mod reports;
mod settings;
mod shopper;
pub mod views;

pub use assets::html_escape;
pub(crate) use assets::{html_page, page};
pub(crate) use error::{cents, contract_body, parse};
pub use error::{ApiError, ApiResult};

use crate::auth::{self, Auth, BoSession, Perm, Permissions, BO_COOKIE};
use crate::payments::{AmountSpec, Engine, Start};
use crate::store::{OrderRow, PaymentRow, TransactionFilter};
use crate::util::{invalid, now_ms};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use cvco_core::contract::{self, PaymentMode};
use cvco_core::{Channel, CvcoError, ErrorCode, NormalizedStatus, Timestamp};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

pub struct App {
    pub engine: Arc<Engine>,
    pub auth: Auth,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

pub(crate) type AppState = State<Arc<App>>;

/// Query string whose every failure is a cvco error body naming the parameter it could not read.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Ok(Query(v)) = Query::<T>::try_from_uri(&parts.uri) {
            return Ok(ApiQuery(v));
        }
        // The first parameter that fails on its own is the one to name.
        let field = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| {
                let k = kv.split('=').next()?;
                let plain =
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                let uri: axum::http::Uri = format!("/?{kv}").parse().ok()?;
                (plain && Query::<T>::try_from_uri(&uri).is_err()).then(|| k.to_string())
            })
            .next()
            .unwrap_or_else(|| "query".into());
        Err(unreadable_parameter(&field))
    }
}

/// An unreadable query parameter (PROTOCOL.md: 400 naming it): no parser's wording, so every
/// adapter answers the same bytes.
pub(crate) fn unreadable_parameter(field: &str) -> ApiError {
    ApiError(
        CvcoError::new(ErrorCode::InvalidRequest).with_field(field),
        Some(StatusCode::BAD_REQUEST),
    )
}

/// Who is asking: the peer address, or the proxy's last `X-Forwarded-For` entry when the host is
/// configured to trust it.
pub struct ClientAddr(pub String);

impl FromRequestParts<Arc<App>> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        if app.engine.cfg.trust_proxy {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .rfind(|v| !v.is_empty());
            if let Some(ip) = forwarded {
                return Ok(ClientAddr(ip.chars().take(64).collect()));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        Ok(ClientAddr(peer))
    }
}

/// Largest request body read; a larger one is a 413.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Up to this size a too-large body is still read (and dropped) so the client gets its 413 and the
/// connection stays usable; beyond it the connection is closed after the 413.
pub(crate) const DRAIN_LIMIT: usize = 1024 * 1024;

pub(crate) fn is_api(path: &str) -> bool {
    path.starts_with("/cvco/") || path.contains("/api/")
}

pub(crate) fn is_json(v: Option<&HeaderValue>) -> bool {
    let Some(m) = v.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let m = m
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
}

pub(crate) fn http_error(status: StatusCode, fr: &str, en: &str) -> Response {
    ApiError(
        CvcoError::new(ErrorCode::InvalidRequest).with_detail(fr, en),
        Some(status),
    )
    .into_response()
}

/// Every request body is read whole before the handler runs (a handler that ignores it would
/// otherwise leave bytes on a keep-alive connection); API calls that change state take JSON only
/// (415 otherwise: a cross-site form cannot send JSON); and any API error the framework produced
/// itself (405, path rejections) leaves as a cvco error body.
pub(crate) async fn api_guard(req: Request, next: Next) -> Response {
    let api = is_api(req.uri().path());
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = || {
        http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Corps de requête trop volumineux.",
            "Request body too large.",
        )
    };
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return too_large();
    }
    // HTTP/1.1 without Content-Length or Transfer-Encoding has no body (the hot GETs).
    let bodiless =
        declared.unwrap_or(0) == 0 && !parts.headers.contains_key(header::TRANSFER_ENCODING);
    let read = if bodiless {
        Ok(Bytes::new())
    } else {
        axum::body::to_bytes(body, DRAIN_LIMIT).await
    };
    let bytes = match read {
        Ok(b) if b.len() > BODY_LIMIT => return too_large(),
        Ok(b) => b,
        Err(e) => {
            // axum wraps http-body-util's LengthLimitError; its text is the stable part.
            let mut over = e.to_string().contains("length limit");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                over |= s.to_string().contains("length limit");
                src = s.source();
            }
            if over {
                return too_large();
            }
            return http_error(
                StatusCode::BAD_REQUEST,
                "Corps de requête illisible.",
                "Unreadable request body.",
            );
        }
    };
    let changes_state = !matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    // Notifications are ANCV's, authenticated by their signature: never refuse one for its headers.
    let notification = parts.uri.path() == "/cvco/v1/notifications";
    if api && changes_state && !notification {
        let ct = parts.headers.get(header::CONTENT_TYPE);
        if (ct.is_some() || !bytes.is_empty()) && !is_json(ct) {
            return http_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Corps JSON attendu (Content-Type: application/json).",
                "JSON body expected (Content-Type: application/json).",
            );
        }
    }
    let r = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let failed = r.status().is_client_error() || r.status().is_server_error();
    if !api || !failed || is_json(r.headers().get(header::CONTENT_TYPE)) {
        return r;
    }
    let status = r.status();
    match status {
        StatusCode::NOT_FOUND => {
            ApiError(CvcoError::new(ErrorCode::NotFound), None).into_response()
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            http_error(status, "Méthode non autorisée.", "Method not allowed.")
        }
        s if s.is_server_error() => {
            ApiError(CvcoError::new(ErrorCode::Internal), Some(s)).into_response()
        }
        s => http_error(
            s,
            "Requête illisible (chemin, en-têtes).",
            "Unreadable request (path, headers).",
        ),
    }
}

pub(crate) fn json_status(status: StatusCode, v: impl serde::Serialize) -> Response {
    (status, Json(v)).into_response()
}

pub(crate) fn with_cookie(mut r: Response, cookie: Option<String>) -> Response {
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// The host's routes; `extra` (the demo pieces, in demo mode only) is mounted beside them.
pub fn router(app: Arc<App>, extra: Option<Router<Arc<App>>>) -> Router {
    use accounts::*;
    use assets::*;
    use backoffice::*;
    use notifications::*;
    use shopper::*;
    let api = Router::new()
        .route("/checkout", get(checkout))
        .route("/payments", post(create_payment))
        .route("/payments/{id}", get(get_payment))
        .route("/payments/{id}/events", get(payment_events))
        .route("/payments/{id}/cancel", post(cancel_payment))
        .route(
            "/payments/{id}/cancel-by-reference",
            post(cancel_by_reference),
        )
        .route("/payments/{id}/refund", post(refund))
        .route("/notifications", post(notification))
        .route("/notifications/{merchant_id}", post(notification_for))
        .route("/openapi.json", get(openapi))
        .route("/back-office/payments", post(bo_payment))
        .route("/payment-requests", post(create_request).get(list_requests))
        .route("/payment-requests/{id}", get(get_request))
        .route("/payment-requests/{id}/finalise", post(finalise_request))
        .route("/payment-requests/{id}/cancel", post(cancel_request))
        .route("/transactions", get(transactions))
        .route("/totals", get(totals))
        .route("/closing", post(closing))
        .route("/receipts/{id}", get(receipt))
        .route("/closings", get(reconciliation::list_closings))
        .route("/closings/{id}", get(reconciliation::get_closing))
        .route(
            "/closings/{id}/receipt",
            get(reconciliation::closing_receipt),
        )
        .route("/reconciliation", get(reconciliation::reconciliation))
        .route(
            "/reconciliation.csv",
            get(reconciliation::reconciliation_csv_file),
        )
        .route(
            "/settings",
            get(settings::get_settings).put(settings::put_settings),
        )
        .fallback(api_not_found);
    let mut routes = Router::new()
        .nest("/cvco/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/back-office/api/login", post(login))
        .route("/back-office/api/session", get(session))
        .route("/back-office/api/logout", post(logout))
        .route(
            "/back-office/api/sellers",
            get(list_sellers).post(create_seller),
        )
        .route("/back-office/api/sellers/{username}", put(update_seller))
        .route(
            "/back-office",
            get(|s: AppState| page(s, "back-office/index.html")),
        )
        .route("/counter/api/orders", post(counter::counter_order))
        .route(
            "/counter/api/orders/{order_ref}",
            get(counter::counter_order_get),
        )
        .route("/cvco/v1/cancellations", post(counter::cancellation))
        .route("/counter", get(|s: AppState| page(s, "counter/index.html")))
        .route("/kiosk/api/orders", post(kiosk::kiosk_order))
        .route("/kiosk/api/orders/{order_ref}", get(kiosk::kiosk_order_get))
        .route("/kiosk/api/payments", post(kiosk::kiosk_pay))
        .route("/kiosk/api/payments/{id}", get(kiosk::kiosk_payment_get))
        .route("/kiosk/api/payments/{id}/cancel", post(kiosk::kiosk_cancel))
        .route("/kiosk", get(|s: AppState| page(s, "kiosk/index.html")))
        .route("/widget/{*path}", get(widget_file))
        .route("/examples/{*path}", get(example_file));
    if let Some(extra) = extra {
        routes = routes.merge(extra);
    }
    routes
        .fallback(html_not_found)
        .layer(middleware::from_fn(api_guard))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    r
}

pub(crate) async fn api_not_found() -> ApiError {
    ApiError(CvcoError::new(ErrorCode::NotFound), None)
}

pub(crate) async fn html_not_found() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "Page introuvable / Page not found",
        "<p>Cette page n'existe pas. / This page does not exist.</p>",
    )
}

pub(crate) async fn bo_session(
    app: &App,
    headers: &HeaderMap,
    state_changing: bool,
) -> Result<BoSession, ApiError> {
    let s = app
        .auth
        .session(&app.engine.store, headers)
        .await?
        .ok_or_else(|| {
            CvcoError::new(ErrorCode::Unauthorized).with_detail("Connectez-vous.", "Please log in.")
        })?;
    if state_changing {
        auth::check_csrf(&s, headers)?;
    }
    Ok(s)
}

/// The shopper owns the order (`None`), or a staff session whose permissions cover the order's
/// kind serves it (`Some`): counter orders need `counter`, MOTO orders `moto`; shoppers' orders are
/// not reachable by staff here. A staff call that changes state needs its CSRF token.
pub(crate) async fn order_access(
    app: &App,
    headers: &HeaderMap,
    order: &OrderRow,
    state_changing: bool,
) -> Result<Option<BoSession>, ApiError> {
    let owner = auth::cookie(headers, auth::SHOP_COOKIE).map(|t| crate::util::sha256_hex(&t));
    if order.owner.is_some() && owner == order.owner {
        return Ok(None);
    }
    let perm = match (order.owner.is_none(), order.kind.as_str()) {
        (true, "counter") => Some(Perm::Counter),
        (true, "moto") => Some(Perm::Moto),
        _ => None,
    };
    if let (Some(perm), Some(s)) = (perm, app.auth.session(&app.engine.store, headers).await?) {
        // Another merchant's order is answered like one that does not exist.
        if s.can(perm) && s.merchant_id == order.merchant_id {
            if state_changing {
                auth::check_csrf(&s, headers)?;
            }
            return Ok(Some(s));
        }
    }
    // The same body as an order that does not exist: nothing tells a stranger it does.
    Err(CvcoError::new(ErrorCode::OrderNotFound)
        .with_field("order_ref")
        .into())
}

/// The payment, if it is the session's merchant's: another merchant's is answered like an
/// unknown id (404, never 403, which would confirm it exists).
pub(crate) async fn merchant_payment(
    app: &App,
    s: &BoSession,
    payment_id: &str,
) -> Result<crate::store::PaymentRow, ApiError> {
    match app.engine.store.payment(payment_id).await? {
        Some(p) if p.merchant_id == s.merchant_id => Ok(p),
        _ => Err(ErrorCode::PaymentNotFound.into()),
    }
}

pub(crate) async fn load_order(app: &App, order_ref: &str) -> Result<OrderRow, ApiError> {
    app.engine.store.order(order_ref).await?.ok_or_else(|| {
        CvcoError::new(ErrorCode::OrderNotFound)
            .with_field("order_ref")
            .into()
    })
}

pub(crate) fn check_amount(amount: i64) -> Result<(), ApiError> {
    if !(1..=100_000_000).contains(&amount) {
        return Err(CvcoError::new(ErrorCode::InvalidAmount)
            .with_field("amount_cents")
            .into());
    }
    Ok(())
}

pub(crate) fn html_ok(html: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

pub(crate) async fn order_ref(app: &App, prefix: &str) -> Result<String, ApiError> {
    let (date, _, _) = Timestamp(now_ms()).paris_local();
    let day = date.to_string().replace('-', "");
    let n = app
        .engine
        .store
        .next_counter(&format!("{prefix}-{day}"))
        .await?;
    Ok(format!("{prefix}-{day}-{n:04}"))
}
