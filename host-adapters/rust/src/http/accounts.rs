//! Back-office accounts: login, session, logout, and the manager's seller administration.

use super::*;

#[derive(Deserialize)]
pub(super) struct LoginBody {
    username: String,
    password: String,
}

/// `scheme://host[:port]` of a URL.
pub(super) fn origin_of(url: &str) -> &str {
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
pub(super) fn check_login_origin(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
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

pub(super) async fn login(
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
    let user = app.engine.store.user(&b.username).await?;
    let app2 = app.clone();
    let username = b.username.clone();
    let (role, permissions) = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        app2.auth
            .check_password(user, &client, &b.username, &b.password)
    })
    .await
    .map_err(|_| ApiError::from(ErrorCode::Internal))??;
    let (token, session) = app
        .auth
        .open_session(&app.engine.store, &username, role, &permissions)
        .await?;
    let cookie = app.auth.cookie_header(BO_COOKIE, &token, "Strict", None);
    Ok(with_cookie(
        Json(session.json()).into_response(),
        Some(cookie),
    ))
}

pub(super) async fn session(State(app): AppState, headers: HeaderMap) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    Ok(Json(s.json()).into_response())
}

pub(super) async fn logout(State(app): AppState, headers: HeaderMap) -> ApiResult {
    bo_session(&app, &headers, true).await?;
    app.auth.logout(&app.engine.store, &headers).await?;
    let cookie = app.auth.cookie_header(BO_COOKIE, "", "Strict", Some(0));
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        Some(cookie),
    ))
}

pub(super) fn seller_json(
    username: String,
    role: String,
    permissions: String,
    active: bool,
) -> Value {
    let p: Permissions = if role == "manager" {
        Permissions::ALL
    } else {
        serde_json::from_str(&permissions).unwrap_or_default()
    };
    json!({"username": username, "role": role, "permissions": p, "active": active})
}

pub(super) async fn list_sellers(State(app): AppState, headers: HeaderMap) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    s.require(Perm::ManageSellers)?;
    // The session's merchant's users only.
    let users: Vec<Value> = app
        .engine
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| u.merchant_id == s.merchant_id)
        .map(|u| seller_json(u.username, u.role, u.permissions, u.active))
        .collect();
    Ok(Json(users).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSeller {
    username: String,
    password: String,
    #[serde(default)]
    permissions: Permissions,
}

pub(super) fn check_password(p: &str) -> Result<(), ApiError> {
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

pub(super) async fn create_seller(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
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
        .insert_user_for(
            &s.merchant_id,
            &b.username,
            "seller",
            &hash,
            &perms,
            now_ms(),
        )
        .await?;
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
pub(super) struct UpdateSeller {
    #[serde(default)]
    permissions: Option<Permissions>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

pub(super) async fn update_seller(
    State(app): AppState,
    headers: HeaderMap,
    Path(username): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::ManageSellers)?;
    let b: UpdateSeller = parse(&body)?;
    // Another merchant's user is answered like an unknown one.
    let role = app
        .engine
        .store
        .user(&username)
        .await?
        .filter(|u| u.merchant_id == s.merchant_id)
        .map(|u| u.role);
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
        .update_user(&username, perms.as_deref(), hash.as_deref(), b.active)
        .await?;
    let user = app
        .engine
        .store
        .user(&username)
        .await?
        .map(|u| seller_json(u.username, u.role, u.permissions, u.active))
        .ok_or(ErrorCode::NotFound)?;
    tracing::info!(by = %s.username, seller = %username, "seller updated");
    Ok(Json(user).into_response())
}
