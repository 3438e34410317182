//! Static files: the back-office page, the widget, the examples, the OpenAPI document.

use super::*;

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(crate) fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
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

pub(super) fn mime(path: &std::path::Path) -> &'static str {
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

pub(super) async fn serve_file(dir: &std::path::Path, rel: &str) -> Response {
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

pub(crate) async fn page(State(app): AppState, rel: &'static str) -> Response {
    serve_file(&app.engine.cfg.examples_dir, rel).await
}

pub(super) async fn widget_file(State(app): AppState, Path(path): Path<String>) -> Response {
    serve_file(&app.engine.cfg.widget_dir, &path).await
}

pub(super) async fn example_file(State(app): AppState, Path(path): Path<String>) -> Response {
    serve_file(&app.engine.cfg.examples_dir, &path).await
}

pub(super) async fn openapi(State(app): AppState) -> Response {
    match tokio::fs::read(&app.engine.cfg.openapi_file).await {
        Ok(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(_) => ApiError::from(CvcoError::new(ErrorCode::NotFound).with_detail(
            "openapi.json pas encore écrit.",
            "openapi.json not written yet.",
        ))
        .into_response(),
    }
}
