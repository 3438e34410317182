//! The merchant's settings, edited by its manager in the back-office (`GET/PUT
//! /cvco/v1/settings`, cvco-host only): saved per merchant, applied to this instance's plugin
//! pools at once and to the other instances at their next merchants reload. The cancellation
//! password is kept hashed, checked here before a cancel by reference, never shown or logged.

use super::*;
use crate::store::PasswordChange;
use crate::tenants::Settings;
use cvco_core::shop::MerchantSettings;

/// "0000" removes the password, as on the TETRA terminal.
const NO_PASSWORD: &str = "0000";

/// Settings are the manager's: sellers can neither read nor change them.
async fn manager(app: &App, headers: &HeaderMap, writes: bool) -> Result<BoSession, ApiError> {
    let s = bo_session(app, headers, writes).await?;
    if s.role != "manager" {
        return Err(CvcoError::new(ErrorCode::Forbidden)
            .with_detail("Réservé au responsable.", "Only the manager may do this.")
            .into());
    }
    Ok(s)
}

fn current(app: &App, merchant_id: &str) -> Result<Settings, ApiError> {
    app.engine
        .tenants
        .as_ref()
        .and_then(|t| t.merchant(merchant_id))
        .map(|m| m.settings.clone())
        .ok_or_else(|| ApiError::from(ErrorCode::NotFound))
}

fn settings_json(s: &Settings) -> Value {
    let mut v = serde_json::to_value(&s.merchant).unwrap_or_else(|_| json!({}));
    v["has_cancel_password"] = json!(s.cancel_password_hash.is_some());
    v["version"] = json!(s.version);
    v
}

fn bad(field: &str, fr: &str, en: &str) -> ApiError {
    ApiError(
        CvcoError::new(ErrorCode::ConfigInvalid)
            .with_detail(fr, en)
            .with_field(field),
        Some(StatusCode::UNPROCESSABLE_ENTITY),
    )
}

pub(super) async fn get_settings(State(app): AppState, headers: HeaderMap) -> ApiResult {
    let s = manager(&app, &headers, false).await?;
    Ok(Json(settings_json(&current(&app, &s.merchant_id)?)).into_response())
}

/// A partial object: the keys given replace the current values (`cancel_password`: a new
/// password, "0000" removes it). Unknown keys and values `MerchantSettings::validate` refuses
/// are 422 `config_invalid` naming the field; nothing is saved then.
pub(super) async fn put_settings(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let s = manager(&app, &headers, true).await?;
    let now = current(&app, &s.merchant_id)?;
    let Value::Object(given) = parse::<Value>(&body)? else {
        return Err(bad("body", "Objet JSON attendu.", "JSON object expected."));
    };
    let mut merged = serde_json::to_value(&now.merchant).map_err(|_| ErrorCode::Internal)?;
    let mut password = PasswordChange::Keep;
    let mut new_password = None;
    for (key, value) in given {
        match key.as_str() {
            "cancel_password" => {
                let p = value.as_str().unwrap_or("");
                if p == NO_PASSWORD {
                    password = PasswordChange::Remove;
                } else if (4..=32).contains(&p.chars().count()) && !p.chars().any(char::is_control)
                {
                    new_password = Some(p.to_string());
                } else {
                    return Err(bad(
                        "cancel_password",
                        "Mot de passe d'annulation : 4 à 32 caractères (« 0000 » le supprime).",
                        "Cancellation password: 4 to 32 characters (\"0000\" removes it).",
                    ));
                }
            }
            // Read-only views of the state.
            "has_cancel_password" | "version" => {}
            k if merged.get(k).is_some() => {
                // Each key on its own, so a wrong type names its field.
                let mut one = serde_json::Map::new();
                one.insert(key.clone(), value.clone());
                if serde_json::from_value::<MerchantSettings>(Value::Object(one)).is_err() {
                    return Err(bad(&key, "Valeur invalide.", "Invalid value."));
                }
                merged[k] = value;
            }
            _ => return Err(bad(&key, "Paramètre inconnu.", "Unknown setting.")),
        }
    }
    let merchant: MerchantSettings = serde_json::from_value(merged)
        .map_err(|_| bad("body", "Valeur invalide.", "Invalid value."))?;
    merchant
        .validate()
        .map_err(|e| ApiError(e, Some(StatusCode::UNPROCESSABLE_ENTITY)))?;
    if let Some(p) = new_password {
        let app2 = app.clone();
        let hash = tokio::task::spawn_blocking(move || app2.auth.hash(&p))
            .await
            .map_err(|_| ApiError::from(ErrorCode::Internal))??;
        password = PasswordChange::Set(hash);
    }
    let json = serde_json::to_string(&merchant).map_err(|_| ErrorCode::Internal)?;
    let row = app
        .engine
        .store
        .put_settings(&s.merchant_id, &json, &password, now_ms())
        .await?;
    let saved = Settings::from_saved(&row)?;
    // This instance at once; the others at their next reload (the version moved).
    if let Some(t) = app.engine.tenants.as_ref() {
        t.apply_settings(&s.merchant_id, saved.clone());
    }
    tracing::info!(
        user = %s.username,
        merchant = %s.merchant_id,
        version = saved.version,
        password_changed = !matches!(password, PasswordChange::Keep),
        "merchant settings saved"
    );
    Ok(Json(settings_json(&saved)).into_response())
}

/// Refuses a cancel without the merchant's cancellation password, when it set one (TETRA:
/// cancel by reference asks for it). argon2, so off the async workers.
pub(crate) async fn check_cancel_password(
    app: &Arc<App>,
    merchant_id: &str,
    given: Option<&str>,
) -> Result<(), ApiError> {
    let Some(hash) = current(app, merchant_id)?.cancel_password_hash else {
        return Ok(());
    };
    let given = given.unwrap_or("").to_string();
    let app2 = app.clone();
    let ok = tokio::task::spawn_blocking(move || app2.auth.verify(&given, &hash))
        .await
        .map_err(|_| ApiError::from(ErrorCode::Internal))?;
    if ok {
        return Ok(());
    }
    Err(CvcoError::new(ErrorCode::Forbidden)
        .with_detail(
            "Mot de passe d'annulation incorrect.",
            "Wrong cancellation password.",
        )
        .with_field("password")
        .into())
}
