//! The one error type of the HTTP side: a `CvcoError` answered as the cvco error body
//! (`{code, message_fr, message_en, retryable, field?}`) with its HTTP status; bodies read into
//! typed requests, every failure such an error.

use crate::util::invalid;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cvco_core::contract::{self, Operation, ParsedRequest};
use cvco_core::{Amount, CvcoError, ErrorCode};
use serde::de::DeserializeOwned;

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

pub type ApiResult = Result<Response, ApiError>;

pub(crate) fn parse<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
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
pub(crate) fn contract_body(
    operation: Operation,
    bytes: &Bytes,
) -> Result<ParsedRequest, ApiError> {
    Ok(contract::parse_request(
        operation,
        &String::from_utf8_lossy(bytes),
    )?)
}

pub(crate) fn cents(a: Amount) -> i64 {
    a.cents() as i64
}

/// The body of `$op`, typed.
macro_rules! contract_body_ {
    ($op:ident, $bytes:expr) => {
        match $crate::http::error::contract_body(cvco_core::contract::Operation::$op, $bytes)? {
            cvco_core::contract::ParsedRequest::$op(b) => b,
            _ => return Err(cvco_core::ErrorCode::Internal.into()),
        }
    };
}

pub(crate) use contract_body_ as contract_body;
