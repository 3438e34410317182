//! HTTP: the merchant contract (PROTOCOL.md), the demo shop, the back-office and counter APIs,
//! and the static pages.

use crate::auth::{self, Auth, BoSession, Perm, Permissions, BO_COOKIE};
use crate::reports;
use crate::service::{amount, invalid, now_ms, rfc3339, AmountSpec, Engine, Start, UNKNOWN};
use crate::shop;
use crate::store::{OrderRow, PaymentRow, TransactionFilter};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use cvco_core::contract::{self, CheckoutInput, Operation, ParsedRequest, PaymentMode};
use cvco_core::plugin_api::DeliveryKind;
use cvco_core::{Amount, Channel, CvcoError, ErrorCode, NormalizedStatus, Timestamp};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

pub struct App {
    pub engine: Arc<Engine>,
    pub auth: Auth,
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Anonymous demo-shop orders, per client and in total.
    pub orders: shop::OrderLimit,
}

type AppState = State<Arc<App>>;

/// A cvco error body with its HTTP status.
#[derive(Debug)]
pub struct ApiError(pub CvcoError, pub Option<StatusCode>);

impl From<CvcoError> for ApiError {
    fn from(e: CvcoError) -> Self {
        ApiError(e, None)
    }
}

impl From<ErrorCode> for ApiError {
    fn from(c: ErrorCode) -> Self {
        ApiError(CvcoError::new(c), None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.1.unwrap_or_else(|| {
            StatusCode::from_u16(self.0.code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        (status, Json(self.0)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        let d = e.to_string();
        let d: String = d.chars().take(200).collect();
        ApiError(invalid("body", &d, &d), None)
    })
}

/// A contract request body checked by cvco-core's `parse_request` (the plugin's export of the
/// same name for the other adapters): the same bad body gets the same error everywhere.
/// Bytes that are not UTF-8 are read as Node's `toString('utf8')` and Python's
/// `decode(errors="replace")` read them (U+FFFD), so the parser's answer is the same everywhere.
fn contract_body(operation: Operation, bytes: &Bytes) -> Result<ParsedRequest, ApiError> {
    Ok(contract::parse_request(
        operation,
        &String::from_utf8_lossy(bytes),
    )?)
}

/// The body of `$op`, typed.
macro_rules! contract_body {
    ($op:ident, $bytes:expr) => {
        match contract_body(Operation::$op, $bytes)? {
            ParsedRequest::$op(b) => b,
            _ => return Err(ErrorCode::Internal.into()),
        }
    };
}

fn cents(a: Amount) -> i64 {
    a.cents() as i64
}

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
fn unreadable_parameter(field: &str) -> ApiError {
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
const BODY_LIMIT: usize = 64 * 1024;
/// Up to this size a too-large body is still read (and dropped) so the client gets its 413 and the
/// connection stays usable; beyond it the connection is closed after the 413.
const DRAIN_LIMIT: usize = 1024 * 1024;

fn is_api(path: &str) -> bool {
    path.starts_with("/cvco/") || path.contains("/api/")
}

fn is_json(v: Option<&HeaderValue>) -> bool {
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

fn http_error(status: StatusCode, fr: &str, en: &str) -> Response {
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
async fn api_guard(req: Request, next: Next) -> Response {
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

fn json_status(status: StatusCode, v: impl serde::Serialize) -> Response {
    (status, Json(v)).into_response()
}

fn with_cookie(mut r: Response, cookie: Option<String>) -> Response {
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub fn router(app: Arc<App>) -> Router {
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
        .fallback(api_not_found);
    Router::new()
        .nest("/cvco/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .route("/shop/api/products", get(products))
        .route("/shop/api/orders", post(shop_create_order))
        .route("/shop/api/orders/{order_ref}", get(shop_get_order))
        .route("/shop/api/orders/{order_ref}/card", post(shop_card))
        .route("/shop/api/test-orders", post(test_order))
        .route("/back-office/api/login", post(login))
        .route("/back-office/api/session", get(session))
        .route("/back-office/api/logout", post(logout))
        .route(
            "/back-office/api/sellers",
            get(list_sellers).post(create_seller),
        )
        .route("/back-office/api/sellers/{username}", put(update_seller))
        .route("/counter/api/orders", post(counter_order))
        .route("/", get(|s: AppState| page(s, "storefront/index.html")))
        .route(
            "/back-office",
            get(|s: AppState| page(s, "back-office/index.html")),
        )
        .route("/counter", get(|s: AppState| page(s, "counter/index.html")))
        .route(
            "/orders/{order_ref}",
            get(|s: AppState| page(s, "storefront/order.html")),
        )
        .route("/widget/{*path}", get(widget_file))
        .route("/examples/{*path}", get(example_file))
        .fallback(html_not_found)
        .layer(middleware::from_fn(api_guard))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

async fn security_headers(req: Request, next: Next) -> Response {
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

async fn api_not_found() -> ApiError {
    ApiError(CvcoError::new(ErrorCode::NotFound), None)
}

async fn html_not_found() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "Page introuvable / Page not found",
        "<p>Cette page n'existe pas. / This page does not exist.</p>",
    )
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{}</title></head><body><h1>{}</h1>{body}</body></html>",
        html_escape(title),
        html_escape(title)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

// ----- static files -------------------------------------------------------------------------

fn mime(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn serve_file(dir: &std::path::Path, rel: &str) -> Response {
    let clean = rel.split('/').all(|c| c != ".." && !c.contains('\\')) && !rel.contains('\0');
    if !clean {
        return html_not_found().await;
    }
    let mut path = dir.join(rel.trim_start_matches('/'));
    if path.is_dir() {
        path = path.join("index.html");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, mime(&path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) if !dir.is_dir() => html_page(
            StatusCode::NOT_FOUND,
            "Pas encore construit / Not built yet",
            &format!(
                "<p>{} n'existe pas encore (<code>cargo xtask widget</code> construit le widget). / {} does not exist yet.</p>",
                html_escape(&dir.display().to_string()),
                html_escape(&dir.display().to_string())
            ),
        ),
        Err(_) => html_not_found().await,
    }
}

async fn page(State(app): AppState, rel: &'static str) -> Response {
    serve_file(&app.engine.cfg.examples_dir, rel).await
}

async fn widget_file(State(app): AppState, Path(path): Path<String>) -> Response {
    serve_file(&app.engine.cfg.widget_dir, &path).await
}

async fn example_file(State(app): AppState, Path(path): Path<String>) -> Response {
    serve_file(&app.engine.cfg.examples_dir, &path).await
}

async fn openapi(State(app): AppState) -> Response {
    match tokio::fs::read(&app.engine.cfg.openapi_file).await {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(_) => ApiError::from(CvcoError::new(ErrorCode::NotFound).with_detail(
            "openapi.json pas encore écrit.",
            "openapi.json not written yet.",
        ))
        .into_response(),
    }
}

// ----- access -------------------------------------------------------------------------------

fn bo_session(app: &App, headers: &HeaderMap, state_changing: bool) -> Result<BoSession, ApiError> {
    let s = app
        .auth
        .session(&app.engine.store, headers)?
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
fn order_access(
    app: &App,
    headers: &HeaderMap,
    order: &OrderRow,
    state_changing: bool,
) -> Result<Option<BoSession>, ApiError> {
    let owner = auth::cookie(headers, auth::SHOP_COOKIE).map(|t| crate::service::sha256_hex(&t));
    if order.owner.is_some() && owner == order.owner {
        return Ok(None);
    }
    let perm = match (order.owner.is_none(), order.kind.as_str()) {
        (true, "counter") => Some(Perm::Counter),
        (true, "moto") => Some(Perm::Moto),
        _ => None,
    };
    if let (Some(perm), Some(s)) = (perm, app.auth.session(&app.engine.store, headers)?) {
        if s.can(perm) {
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

fn load_order(app: &App, order_ref: &str) -> Result<OrderRow, ApiError> {
    app.engine.store.order(order_ref)?.ok_or_else(|| {
        CvcoError::new(ErrorCode::OrderNotFound)
            .with_field("order_ref")
            .into()
    })
}

fn shopper_payment(
    app: &App,
    headers: &HeaderMap,
    id: &str,
    state_changing: bool,
) -> Result<(PaymentRow, Option<BoSession>), ApiError> {
    let row = app
        .engine
        .store
        .payment(id)?
        .ok_or(ApiError::from(ErrorCode::PaymentNotFound))?;
    let order = load_order(app, &row.order_ref)?;
    let staff = order_access(app, headers, &order, state_changing).map_err(|e| {
        if e.0.code == ErrorCode::OrderNotFound {
            ApiError::from(ErrorCode::PaymentNotFound)
        } else {
            e
        }
    })?;
    Ok((row, staff))
}

// ----- §1 shopper endpoints -----------------------------------------------------------------

#[derive(Deserialize)]
struct OrderRefQuery {
    order_ref: Option<String>,
}

async fn checkout(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<OrderRefQuery>,
) -> ApiResult {
    let order_ref = q.order_ref.unwrap_or_default();
    let order = load_order(&app, &order_ref)?;
    order_access(&app, &headers, &order, false)?;
    let e = &app.engine;
    let a = e.amounts(&order)?;
    let mut checkout = contract::checkout(
        &e.cfg.merchant_settings(),
        CheckoutInput {
            order_ref: order.order_ref.clone(),
            order_total_cents: amount(a.total),
            order_remaining_cents: amount(a.remaining),
            currency: "EUR".into(),
            payable: true,
            modes: vec![PaymentMode::Identifier, PaymentMode::Qr],
        },
    );
    checkout.current_payment = e
        .store
        .payments_of_order(&order_ref)?
        .into_iter()
        .find(|p| !p.is_final)
        .map(|p| e.payment_json_with(&p, a));
    Ok(Json(checkout).into_response())
}

fn start_for(mode: PaymentMode, beneficiary: Option<String>) -> Result<Start, ApiError> {
    match (mode, beneficiary) {
        (PaymentMode::Qr, _) => Ok(Start::Qr),
        (PaymentMode::Identifier, Some(beneficiary)) => Ok(Start::Identifier { beneficiary }),
        // parse_request already requires it.
        (PaymentMode::Identifier, None) => Err(CvcoError::new(ErrorCode::InvalidBeneficiary)
            .with_field("beneficiary")
            .into()),
    }
}

async fn create_payment(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    // Any amount the browser sends is ignored: the order says how much.
    let b = contract_body!(CreatePayment, &body);
    let order = load_order(&app, &b.order_ref)?;
    order_access(&app, &headers, &order, true)?;
    let channel = match order.kind.as_str() {
        "counter" => Channel::Proximity,
        "moto" => Channel::Moto,
        _ => Channel::Ecommerce,
    };
    let start = start_for(b.mode, b.beneficiary)?;
    let (row, created) = app
        .engine
        .start(
            &b.order_ref,
            &b.attempt,
            channel,
            start,
            AmountSpec::Remaining,
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, app.engine.payment_json(&row)?))
}

async fn get_payment(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    // The hot path (the widget polls here): the shopper's own payment, rendered once per change.
    if let Some(token) = auth::cookie(&headers, auth::SHOP_COOKIE) {
        let owner = crate::service::sha256_hex(&token);
        if let Some(body) = app.engine.status_body(&id, &owner)? {
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
    }
    // Staff read any payment of the shop (PROTOCOL.md §2), as in the transactions list.
    let row = match shopper_payment(&app, &headers, &id, false) {
        Ok((row, _)) => row,
        Err(e)
            if e.0.code == ErrorCode::PaymentNotFound
                && bo_session(&app, &headers, false).is_ok() =>
        {
            app.engine
                .store
                .payment(&id)?
                .ok_or(ApiError::from(ErrorCode::PaymentNotFound))?
        }
        Err(e) => return Err(e),
    };
    Ok(Json(app.engine.payment_json(&row)?).into_response())
}

async fn payment_events(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let mut rx = app.engine.subscribe(&id);
    let (row, _) = shopper_payment(&app, &headers, &id, false)?;
    let last_id: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1);
    let (tx, out) = tokio::sync::mpsc::channel::<Event>(16);
    let engine = app.engine.clone();
    let mut stop = app.stop.clone();
    tokio::spawn(async move {
        let event = |row: &PaymentRow| -> Option<Event> {
            let v = serde_json::to_string(&engine.payment_json(row).ok()?).ok()?;
            Some(
                Event::default()
                    .id(row.sequence.to_string())
                    .event("status")
                    .data(v),
            )
        };
        let mut sent = last_id;
        let mut row = row;
        loop {
            if row.sequence > sent {
                let Some(ev) = event(&row) else { return };
                if tx.send(ev).await.is_err() {
                    return;
                }
                sent = row.sequence;
            }
            if row.is_final {
                return;
            }
            tokio::select! {
                r = rx.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r { return; }
                }
                _ = tx.closed() => return,
                _ = stop.wait_for(|s| *s) => return,
                // A safety net: re-read even without a signal.
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            row = match engine.store.payment(&row.payment_id) {
                Ok(Some(r)) => r,
                _ => return,
            };
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|e| (Ok::<Event, Infallible>(e), out))
    });
    let sse = Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    );
    let mut r = sse.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

async fn cancel_payment(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (row, staff) = shopper_payment(&app, &headers, &id, true)?;
    // Staff may abandon a sale still waiting for the beneficiary (the widget's cancel button);
    // anything else (a payment request, a held authorization) is a cancellation: `cancel` right.
    if let Some(s) = &staff {
        let waiting = row.request_id.is_none()
            && row.authorized_cents == 0
            && matches!(
                row.status.as_str(),
                "pending" | "awaiting_beneficiary" | crate::service::UNKNOWN
            )
            && app.engine.store.request_of_payment(&id)?.is_none();
        if !waiting {
            s.require(Perm::Cancel)?;
        }
    }
    // Cancelling what is already cancelled (a retry after a lost answer) answers it as it is.
    if row.is_final && !row.status.is(NormalizedStatus::Cancelled) {
        return Err(ErrorCode::IllegalTransition.into());
    }
    if row.is_final {
        return Ok(Json(app.engine.payment_json(&row)?).into_response());
    }
    let row = app.engine.cancel(&id, None).await?;
    Ok(Json(app.engine.payment_json(&row)?).into_response())
}

// ----- §3 notifications ---------------------------------------------------------------------

async fn notification(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    let bad = |e: CvcoError| ApiError(e, Some(StatusCode::BAD_REQUEST));
    let body = String::from_utf8(body.to_vec())
        .map_err(|_| bad(CvcoError::new(ErrorCode::NotificationMalformed)))?;
    let headers: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    match app.engine.notification(headers, body).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Ok(Json(json!({"duplicate": true})).into_response()),
        Err(e)
            if matches!(
                e.code,
                ErrorCode::NotificationBadSignature
                    | ErrorCode::NotificationStale
                    | ErrorCode::NotificationMalformed
            ) =>
        {
            tracing::warn!(code = %e.code, "notification refused");
            Err(bad(e))
        }
        Err(e) => Err(e.into()),
    }
}

// ----- §2 back-office -----------------------------------------------------------------------

/// Counter and MOTO sales have no basket: the first amount typed is the order's total.
fn ensure_bo_order(
    app: &App,
    order_ref: &str,
    amount: Option<i64>,
    kind: &str,
    label: Option<&str>,
) -> Result<(), ApiError> {
    if app.engine.store.order(order_ref)?.is_some() {
        return Ok(());
    }
    let amount = amount.ok_or_else(|| {
        CvcoError::new(ErrorCode::InvalidAmount)
            .with_detail("Montant requis.", "Amount required.")
            .with_field("amount_cents")
    })?;
    check_amount(amount)?;
    let name = label.unwrap_or(if kind == "counter" {
        "Vente au comptoir"
    } else {
        "Vente à distance"
    });
    let lines = json!([{"sku": kind, "name": name, "quantity": 1, "unit_price_cents": amount, "total_cents": amount}]);
    app.engine
        .insert_order(order_ref, None, kind, &lines, amount)?;
    Ok(())
}

fn check_amount(amount: i64) -> Result<(), ApiError> {
    if !(1..=100_000_000).contains(&amount) {
        return Err(CvcoError::new(ErrorCode::InvalidAmount)
            .with_field("amount_cents")
            .into());
    }
    Ok(())
}

async fn bo_payment(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    let b = contract_body!(BackOfficePayment, &body);
    // cvco-core's parse_request allows moto, proximity and kiosk only.
    let (perm, kind) = match b.channel {
        Channel::Moto => (Perm::Moto, "moto"),
        _ => (Perm::Counter, "counter"),
    };
    s.require(perm)?;
    let amount_cents = b.amount_cents.map(cents);
    ensure_bo_order(&app, &b.order_ref, amount_cents, kind, b.label.as_deref())?;
    let start = start_for(b.mode, b.beneficiary)?;
    let amount = amount_cents
        .map(AmountSpec::Fixed)
        .unwrap_or(AmountSpec::Remaining);
    let (row, created) = app
        .engine
        .start(&b.order_ref, &b.attempt, b.channel, start, amount)
        .await?;
    tracing::info!(user = %s.username, payment_id = %row.payment_id, "back-office payment");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, app.engine.payment_json(&row)?))
}

async fn create_request(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    let b = contract_body!(CreatePaymentRequest, &body);
    let (perm, channel) = match b.delivery {
        DeliveryKind::Email => (Perm::Moto, Channel::Moto),
        DeliveryKind::Qr => (Perm::Counter, Channel::Proximity),
    };
    s.require(perm)?;
    let amount_cents = b.amount_cents.map(cents);
    ensure_bo_order(&app, &b.order_ref, amount_cents, "moto", b.label.as_deref())?;
    let start = Start::Request {
        delivery: b.delivery,
        email: b.email,
        expires_in_s: b.expires_in_s,
        capture: b.capture.mode(),
    };
    let amount = amount_cents
        .map(AmountSpec::Fixed)
        .unwrap_or(AmountSpec::Remaining);
    let (row, created) = app
        .engine
        .start(&b.order_ref, &b.attempt, channel, start, amount)
        .await?;
    let req = app
        .engine
        .store
        .request_of_payment(&row.payment_id)?
        .ok_or(ApiError::from(ErrorCode::Internal))?;
    tracing::info!(user = %s.username, request_id = %req.request_id, "payment request");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, app.engine.request_json(&req, &row)?))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    // Unsigned: a negative bound is a 400 naming it (openapi.json: minimum 0).
    min_amount_cents: Option<u64>,
    max_amount_cents: Option<u64>,
    order_ref: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `YYYY-MM-DD` is a Paris calendar day; `to` of a day is its end. Anything else: 400.
fn parse_bound(s: Option<&str>, field: &str, end: bool) -> Result<Option<i64>, ApiError> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.len() == 10 {
        let d = cvco_core::time::Date::parse(s).map_err(|_| unreadable_parameter(field))?;
        let d = if end { d.succ() } else { d };
        return Ok(Some(Timestamp::from_paris_local(d, 0).0));
    }
    Ok(Some(
        Timestamp::parse_rfc3339(s)
            .map_err(|_| unreadable_parameter(field))?
            .0,
    ))
}

async fn list_requests(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    bo_session(&app, &headers, false)?;
    let from = parse_bound(q.from.as_deref(), "from", false)?;
    let to = parse_bound(q.to.as_deref(), "to", true)?;
    let ids = app
        .engine
        .store
        .request_ids(q.status.as_deref(), from, to, 500)?;
    let mut items = Vec::new();
    if q.status.as_deref().is_none_or(|s| s == UNKNOWN) {
        items = app.engine.unknown_requests(from, to)?;
    }
    for id in ids {
        let (req, pay) = app.engine.request_row(&id)?;
        items.push(app.engine.request_json(&req, &pay)?);
    }
    Ok(Json(json!({"total": items.len(), "items": items})).into_response())
}

async fn get_request(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    bo_session(&app, &headers, false)?;
    let (req, pay) = app.engine.request_row(&id)?;
    Ok(Json(app.engine.request_json(&req, &pay)?).into_response())
}

async fn finalise_request(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::Moto)?;
    let b = contract_body!(Finalise, &body);
    let (req, pay) = app.engine.request_row(&id)?;
    let authorized = pay.status.is_authorized();
    if req.capture != "DEFERRED" || req.finalised || !authorized {
        return Err(CvcoError::new(ErrorCode::IllegalTransition)
            .with_detail(
                "Pré-réservation non autorisée ou déjà finalisée.",
                "Pre-reservation not authorized or already finalised.",
            )
            .into());
    }
    let amount_cents = b.amount_cents.map(cents);
    if let Some(a) = amount_cents {
        if a > pay.authorized_cents {
            return Err(CvcoError::new(ErrorCode::InvalidAmount)
                .with_field("amount_cents")
                .into());
        }
    }
    app.engine.capture(&pay.payment_id, amount_cents).await?;
    app.engine.store.set_request_finalised(&id)?;
    let (req, pay) = app.engine.request_row(&id)?;
    Ok(Json(app.engine.request_json(&req, &pay)?).into_response())
}

async fn cancel_request(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::Cancel)?;
    let (req, pay) = app.engine.request_row(&id)?;
    let reservation_open =
        req.capture == "DEFERRED" && !req.finalised && pay.status.is_authorized();
    if pay.is_final && !reservation_open && !pay.status.is(NormalizedStatus::Cancelled) {
        return Err(ErrorCode::IllegalTransition.into());
    }
    // Already cancelled (a retry after a lost answer): answered as it is.
    if !(pay.is_final && pay.status.is(NormalizedStatus::Cancelled)) {
        app.engine.cancel(&pay.payment_id, None).await?;
    }
    let (req, pay) = app.engine.request_row(&id)?;
    Ok(Json(app.engine.request_json(&req, &pay)?).into_response())
}

fn bound(cents: Option<u64>) -> Option<i64> {
    cents.map(|c| i64::try_from(c).unwrap_or(i64::MAX))
}

async fn transactions(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    bo_session(&app, &headers, false)?;
    let from = parse_bound(q.from.as_deref(), "from", false)?;
    let to = parse_bound(q.to.as_deref(), "to", true)?;
    let filter = TransactionFilter {
        status: q.status.clone(),
        from,
        to,
        min_amount_cents: bound(q.min_amount_cents),
        max_amount_cents: bound(q.max_amount_cents),
        order_ref: q.order_ref.clone(),
        limit: q.limit.unwrap_or(200).min(500) as i64,
        offset: i64::try_from(q.offset.unwrap_or(0)).unwrap_or(i64::MAX),
    };
    let (rows, total) = app.engine.store.transactions(&filter)?;
    let items: Vec<_> = rows
        .iter()
        .map(|t| app.engine.transaction_json(t))
        .collect();
    Ok(Json(json!({"items": items, "total": total})).into_response())
}

async fn cancel_by_reference(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::Cancel)?;
    let b = contract_body!(CancelByReference, &body);
    let row = app
        .engine
        .store
        .payment(&id)?
        .ok_or(ApiError::from(ErrorCode::PaymentNotFound))?;
    if row.transaction_id.as_deref() != Some(b.transaction_id.trim()) {
        return Err(CvcoError::new(ErrorCode::TransactionNotFound)
            .with_detail(
                "La référence ne correspond pas à ce paiement.",
                "The reference does not match this payment.",
            )
            .with_field("transaction_id")
            .into());
    }
    let row = app
        .engine
        .cancel(&id, b.password.filter(|p| !p.is_empty()))
        .await?;
    tracing::info!(user = %s.username, payment_id = %id, "cancelled by reference");
    Ok(Json(app.engine.payment_json(&row)?).into_response())
}

async fn refund(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::Refund)?;
    let b = contract_body!(Refund, &body);
    let row = app
        .engine
        .refund(&id, b.amount_cents.map(cents), b.reason, &b.attempt)
        .await?;
    tracing::info!(user = %s.username, payment_id = %id, "refund");
    Ok(Json(app.engine.payment_json(&row)?).into_response())
}

#[derive(Deserialize)]
struct DateQuery {
    date: Option<String>,
    duplicate: Option<bool>,
}

async fn totals(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DateQuery>,
) -> ApiResult {
    bo_session(&app, &headers, false)?;
    Ok(Json(reports::totals(&app.engine, q.date.as_deref(), true).await?).into_response())
}

async fn closing(State(app): AppState, headers: HeaderMap) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::CloseDay)?;
    let v = reports::close(&app.engine).await?;
    tracing::info!(user = %s.username, "day closed");
    Ok(Json(v).into_response())
}

async fn receipt(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DateQuery>,
) -> ApiResult {
    if id == "totals" {
        bo_session(&app, &headers, false)?;
        let t = reports::totals(&app.engine, q.date.as_deref(), false).await?;
        return Ok(html_ok(reports::totals_html(&app.engine, &t)));
    }
    let row = match bo_session(&app, &headers, false) {
        Ok(_) => app
            .engine
            .store
            .payment(&id)?
            .ok_or(ApiError::from(ErrorCode::PaymentNotFound))?,
        Err(_) => shopper_payment(&app, &headers, &id, false)?.0,
    };
    let v = serde_json::to_value(app.engine.payment_json(&row)?)
        .map_err(|_| ApiError::from(ErrorCode::Internal))?;
    Ok(html_ok(reports::receipt_html(
        &app.engine,
        &v,
        q.duplicate.unwrap_or(false),
    )))
}

fn html_ok(html: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

// ----- demo shop ----------------------------------------------------------------------------

async fn products() -> Response {
    Json(shop::catalogue()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    items: Vec<shop::Item>,
}

fn order_ref(app: &App, prefix: &str) -> Result<String, ApiError> {
    let (date, _, _) = Timestamp(now_ms()).paris_local();
    let day = date.to_string().replace('-', "");
    let n = app.engine.store.next_counter(&format!("{prefix}-{day}"))?;
    Ok(format!("{prefix}-{day}-{n:04}"))
}

async fn shop_create_order(
    State(app): AppState,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: NewOrder = parse(&body)?;
    // Anyone may create orders (one row each): bounded per client and in total.
    app.orders.take(&client)?;
    let (lines, total) = shop::price(&b.items)?;
    let (owner, cookie) = auth::shop_owner(&app.auth, &headers);
    let order_ref = order_ref(&app, "CMD")?;
    app.engine
        .insert_order(&order_ref, Some(&owner), "shop", &lines, total)?;
    let order = load_order(&app, &order_ref)?;
    Ok(with_cookie(
        json_status(StatusCode::CREATED, app.engine.order_json(&order)?),
        cookie,
    ))
}

async fn shop_get_order(
    State(app): AppState,
    headers: HeaderMap,
    Path(order_ref): Path<String>,
) -> ApiResult {
    let order = load_order(&app, &order_ref)?;
    order_access(&app, &headers, &order, false)?;
    Ok(Json(app.engine.order_json(&order)?).into_response())
}

async fn shop_card(
    State(app): AppState,
    headers: HeaderMap,
    Path(order_ref): Path<String>,
    body: Bytes,
) -> ApiResult {
    let card: shop::Card = parse(&body)?;
    let order = load_order(&app, &order_ref)?;
    order_access(&app, &headers, &order, true)?;
    let last4 = shop::check_card(&card, Timestamp(now_ms()))?;
    let e = &app.engine;
    let lock = e.order_lock(&order_ref);
    let _g = lock.lock().await;
    if e.store
        .payments_of_order(&order_ref)?
        .iter()
        .any(|p| !p.is_final)
    {
        return Err(ErrorCode::PaymentInProgress.into());
    }
    let order = load_order(&app, &order_ref)?;
    let a = e.amounts(&order)?;
    if a.remaining == 0 {
        return Err(CvcoError::new(ErrorCode::IllegalTransition)
            .with_detail("La commande est déjà payée.", "The order is already paid.")
            .into());
    }
    let mut cards: Vec<Value> = serde_json::from_str(&order.card_payments).unwrap_or_default();
    cards.push(json!({"amount_cents": a.remaining, "last4": last4, "at": rfc3339(now_ms())}));
    e.store
        .set_card_payments(&order_ref, &Value::Array(cards).to_string())?;
    e.invalidate();
    tracing::info!(order_ref = %order_ref, amount_cents = a.remaining, "card payment (simulated)");
    let order = load_order(&app, &order_ref)?;
    Ok(Json(e.order_json(&order)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestOrder {
    amount_cents: i64,
    #[serde(default)]
    order_ref: Option<String>,
}

async fn test_order(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    if !app.engine.cfg.test_orders {
        return Err(ErrorCode::NotFound.into());
    }
    let b: TestOrder = parse(&body)?;
    check_amount(b.amount_cents)?;
    let order_ref = match b.order_ref {
        Some(r) => {
            contract::check_order_ref(&r, "order_ref")?;
            r
        }
        None => order_ref(&app, "TST")?,
    };
    let (owner, cookie) = auth::shop_owner(&app.auth, &headers);
    let lines = json!([{"sku": "test", "name": "Commande de test", "quantity": 1,
        "unit_price_cents": b.amount_cents, "total_cents": b.amount_cents}]);
    if !app
        .engine
        .insert_order(&order_ref, Some(&owner), "test", &lines, b.amount_cents)?
    {
        return Err(CvcoError::new(ErrorCode::IdempotencyConflict)
            .with_field("order_ref")
            .into());
    }
    let order = load_order(&app, &order_ref)?;
    Ok(with_cookie(
        json_status(StatusCode::CREATED, app.engine.order_json(&order)?),
        cookie,
    ))
}

// ----- back-office accounts -----------------------------------------------------------------

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after..]
        .find('/')
        .map(|i| after + i)
        .unwrap_or(url.len());
    &url[..end]
}

/// A browser's login must come from our own pages: the `Origin` (sent by browsers on every
/// POST) must be the public URL's, or this host's own address when no public URL is configured.
/// Clients that send no `Origin` (scripts, curl) are not browsers driven by another site.
fn check_login_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim_end_matches('/');
    let public = origin_of(&app.engine.public_url);
    let own_host = app.engine.cfg.public_url.is_none()
        && headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}"));
    if origin.eq_ignore_ascii_case(public) || own_host {
        return Ok(());
    }
    Err(CvcoError::new(ErrorCode::Forbidden)
        .with_detail(
            "Connexion refusée depuis une autre origine.",
            "Login refused from another origin.",
        )
        .with_field("Origin")
        .into())
}

async fn login(
    State(app): AppState,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    check_login_origin(&app, &headers)?;
    let b: LoginBody = parse(&body)?;
    // Throttled clients and floods are refused before any argon2 work.
    app.auth.throttled(&client, &b.username)?;
    let slot = app.auth.slot().await?;
    let app2 = app.clone();
    let (token, session) = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        app2.auth
            .login(&app2.engine.store, &client, &b.username, &b.password)
    })
    .await
    .map_err(|_| ApiError::from(ErrorCode::Internal))??;
    let cookie = app.auth.cookie_header(BO_COOKIE, &token, "Strict", None);
    Ok(with_cookie(
        Json(session.json()).into_response(),
        Some(cookie),
    ))
}

async fn session(State(app): AppState, headers: HeaderMap) -> ApiResult {
    let s = bo_session(&app, &headers, false)?;
    Ok(Json(s.json()).into_response())
}

async fn logout(State(app): AppState, headers: HeaderMap) -> ApiResult {
    bo_session(&app, &headers, true)?;
    app.auth.logout(&app.engine.store, &headers)?;
    let cookie = app.auth.cookie_header(BO_COOKIE, "", "Strict", Some(0));
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        Some(cookie),
    ))
}

fn seller_json(username: String, role: String, permissions: String, active: bool) -> Value {
    let p: Permissions = if role == "manager" {
        Permissions::ALL
    } else {
        serde_json::from_str(&permissions).unwrap_or_default()
    };
    json!({"username": username, "role": role, "permissions": p, "active": active})
}

async fn list_sellers(State(app): AppState, headers: HeaderMap) -> ApiResult {
    bo_session(&app, &headers, false)?.require(Perm::ManageSellers)?;
    let users: Vec<Value> = app
        .engine
        .store
        .users()?
        .into_iter()
        .map(|u| seller_json(u.username, u.role, u.permissions, u.active))
        .collect();
    Ok(Json(users).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSeller {
    username: String,
    password: String,
    #[serde(default)]
    permissions: Permissions,
}

fn check_password(p: &str) -> Result<(), ApiError> {
    if p.chars().count() < 8 || p.len() > 256 {
        return Err(invalid(
            "password",
            "8 caractères au moins.",
            "At least 8 characters.",
        )
        .into());
    }
    Ok(())
}

async fn create_seller(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::ManageSellers)?;
    let b: NewSeller = parse(&body)?;
    let ok = (3..=32).contains(&b.username.len())
        && b.username.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if !ok {
        return Err(invalid(
            "username",
            "3 à 32 caractères : a-z 0-9 . _ -",
            "3 to 32 characters: a-z 0-9 . _ -",
        )
        .into());
    }
    check_password(&b.password)?;
    let app2 = app.clone();
    let password = b.password.clone();
    let slot = app.auth.slot().await?;
    let hash = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        app2.auth.hash(&password)
    })
    .await
    .map_err(|_| ApiError::from(ErrorCode::Internal))??;
    let perms = serde_json::to_string(&b.permissions).unwrap_or_default();
    let created = app
        .engine
        .store
        .insert_user(&b.username, "seller", &hash, &perms, now_ms())?;
    if !created {
        return Err(CvcoError::new(ErrorCode::IdempotencyConflict)
            .with_detail(
                "Ce nom d'utilisateur existe déjà.",
                "This username already exists.",
            )
            .with_field("username")
            .into());
    }
    tracing::info!(by = %s.username, seller = %b.username, "seller created");
    Ok(json_status(
        StatusCode::CREATED,
        seller_json(b.username, "seller".into(), perms, true),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSeller {
    #[serde(default)]
    permissions: Option<Permissions>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

async fn update_seller(
    State(app): AppState,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::ManageSellers)?;
    let b: UpdateSeller = parse(&body)?;
    let role = app.engine.store.user(&username)?.map(|u| u.role);
    match role.as_deref() {
        None => return Err(ErrorCode::NotFound.into()),
        Some("seller") => {}
        Some(_) => {
            return Err(CvcoError::new(ErrorCode::Forbidden)
                .with_detail(
                    "Seuls les vendeurs se modifient ici.",
                    "Only sellers are edited here.",
                )
                .into())
        }
    }
    let hash = match b.password {
        Some(p) => {
            check_password(&p)?;
            let app2 = app.clone();
            let slot = app.auth.slot().await?;
            Some(
                tokio::task::spawn_blocking(move || {
                    let _slot = slot;
                    app2.auth.hash(&p)
                })
                .await
                .map_err(|_| ApiError::from(ErrorCode::Internal))??,
            )
        }
        None => None,
    };
    let perms = b
        .permissions
        .map(|p| serde_json::to_string(&p).unwrap_or_default());
    app.engine
        .store
        .update_user(&username, perms.as_deref(), hash.as_deref(), b.active)?;
    let user = app
        .engine
        .store
        .user(&username)?
        .map(|u| seller_json(u.username, u.role, u.permissions, u.active))
        .ok_or(ErrorCode::NotFound)?;
    tracing::info!(by = %s.username, seller = %username, "seller updated");
    Ok(Json(user).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterOrder {
    amount_cents: i64,
    #[serde(default)]
    label: Option<String>,
}

async fn counter_order(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    let s = bo_session(&app, &headers, true)?;
    s.require(Perm::Counter)?;
    let b: CounterOrder = parse(&body)?;
    check_amount(b.amount_cents)?;
    let label: String = b
        .label
        .unwrap_or_else(|| "Vente au comptoir".into())
        .chars()
        .take(120)
        .collect();
    let order_ref = order_ref(&app, "CPT")?;
    let lines = json!([{"sku": "counter", "name": label, "quantity": 1,
        "unit_price_cents": b.amount_cents, "total_cents": b.amount_cents}]);
    app.engine
        .insert_order(&order_ref, None, "counter", &lines, b.amount_cents)?;
    let order = load_order(&app, &order_ref)?;
    Ok(json_status(
        StatusCode::CREATED,
        app.engine.order_json(&order)?,
    ))
}

#[allow(dead_code)]
fn _types(_: HashMap<(), ()>, _: Body) {}
