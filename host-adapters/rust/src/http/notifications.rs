//! ANCV's notifications (PROTOCOL.md §3), verified by the plugin.

use super::*;
use std::collections::BTreeMap;

pub(super) async fn notification(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    notify(&app, crate::tenants::DEFAULT_MERCHANT, headers, body).await
}

/// `/cvco/v1/notifications/{merchant_id}`: verified with that merchant's secret; an unknown
/// merchant is 404.
pub(super) async fn notification_for(
    State(app): AppState,
    Path(merchant_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    notify(&app, &merchant_id, headers, body).await
}

async fn notify(app: &App, merchant_id: &str, headers: HeaderMap, body: Bytes) -> ApiResult {
    let bad = |e: CvcoError| ApiError(e, Some(StatusCode::BAD_REQUEST));
    let body = String::from_utf8(body.to_vec())
        .map_err(|_| bad(CvcoError::new(ErrorCode::NotificationMalformed)))?;
    let headers: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    match app.engine.notification(merchant_id, headers, body).await {
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
