//! HTTP plumbing: JSON error bodies everywhere, extractors whose rejections are `CvcoError`s,
//! and bearer authentication.

use crate::SandboxState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cvco_core::{CvcoError, ErrorCode, ShopId};
use serde::de::DeserializeOwned;

/// A `CvcoError` with the HTTP status its code maps to (or an explicit one for injected faults).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: CvcoError,
}

impl ApiError {
    pub fn with_status(status: u16, body: CvcoError) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        }
    }

    pub fn invalid_request(fr: &str, en: &str) -> ApiError {
        CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail(fr, en)
            .into()
    }
}

impl From<CvcoError> for ApiError {
    fn from(body: CvcoError) -> Self {
        ApiError::with_status(body.code.http_status(), body)
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        CvcoError::new(code).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// JSON body whose every failure (size, syntax, missing field) is a 422 `invalid_request`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::invalid_request(
                &format!("Corps illisible : {}.", e.body_text()),
                &format!("Unreadable body: {}.", e.body_text()),
            )
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::invalid_request(
            "Corps JSON attendu.",
            "JSON body expected.",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid_request(
            &format!("JSON invalide : {e}."),
            &format!("Invalid JSON: {e}."),
        )
    })
}

/// Query string, with the same JSON error shape on failure.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q).map(ApiQuery).map_err(|e| {
            ApiError::invalid_request(
                &format!("Paramètres invalides : {e}."),
                &format!("Invalid query parameters: {e}."),
            )
        })
    }
}

/// Path parameters, with the same JSON error shape on failure.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| {
                ApiError::invalid_request(
                    &format!("Chemin invalide : {}.", e.body_text()),
                    &format!("Invalid path: {}.", e.body_text()),
                )
            })
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The merchant a valid bearer token acts for.
pub struct Merchant(pub ShopId);

impl Merchant {
    /// A `shop_id` given in a body or query must be the token's own.
    pub fn check(&self, shop: Option<&ShopId>) -> ApiResult<()> {
        match shop {
            Some(s) if s != &self.0 => Err(CvcoError::new(ErrorCode::Forbidden)
                .with_detail(
                    "Ce jeton n'agit que pour son propre point d'accueil.",
                    "This token only acts for its own shop.",
                )
                .with_field("shop_id")
                .into()),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<SandboxState> for Merchant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SandboxState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::from(CvcoError::new(ErrorCode::Unauthorized).with_detail(
                "En-tête Authorization: Bearer attendu.",
                "Authorization: Bearer header expected.",
            ))
        })?;
        let shop = state.lock().authenticate(token)?;
        Ok(Merchant(shop))
    }
}

pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    match headers.get(cvco_core::wire::IDEMPOTENCY_HEADER) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim().to_string())).map_err(|_| {
            CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail(
                    "Clé d'idempotence non ASCII.",
                    "Idempotency key is not ASCII.",
                )
                .with_field("Idempotency-Key")
                .into()
        }),
    }
}

pub async fn not_found() -> ApiError {
    CvcoError::new(ErrorCode::NotFound)
        .with_detail("Aucune route ici.", "No route here.")
        .into()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::with_status(
        405,
        CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail("Méthode non autorisée.", "Method not allowed."),
    )
}
