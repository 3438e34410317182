//! Static files: the back-office page, the widget, the examples, the OpenAPI document.
//!
//! The pages of `examples/` are compiled into the binary (build.rs): a deployment ships the
//! binary alone. `examples_dir`, when set, serves them from that folder instead (page
//! development: an edit shows on reload, no rebuild). The widget comes from `widget_dir` (built
//! by `cargo xtask widget`, another toolchain), the OpenAPI document from `openapi_file`.

use super::*;

#[path = "served.rs"]
mod served;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/examples.rs"));
}

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

/// No `..`, backslash or NUL: nothing outside the folder served.
fn clean(rel: &str) -> bool {
    rel.split('/').all(|c| c != ".." && !c.contains('\\')) && !rel.contains('\0')
}

fn file_response(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.into(),
    )
        .into_response()
}

/// A file of `examples/`: from `examples_dir` when set, otherwise from the binary.
async fn serve_example(dir: Option<&std::path::Path>, rel: &str) -> Response {
    if !clean(rel) {
        return html_not_found().await;
    }
    // `a//b`, `./a` and a trailing `/` name the same file on disk and here.
    let rel = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/");
    if !served::served(&rel) {
        return html_not_found().await;
    }
    if let Some(dir) = dir {
        return serve_file(dir, &rel).await;
    }
    // A folder serves its index.html, as on disk.
    let index = if rel.is_empty() {
        "index.html".to_string()
    } else {
        format!("{rel}/index.html")
    };
    for candidate in [rel.as_str(), index.as_str()] {
        if let Ok(i) = embedded::FILES.binary_search_by(|(p, _)| (*p).cmp(candidate)) {
            let (path, bytes) = embedded::FILES[i];
            return file_response(mime(std::path::Path::new(path)), bytes);
        }
    }
    html_not_found().await
}

pub(super) async fn serve_file(dir: &std::path::Path, rel: &str) -> Response {
    if !clean(rel) {
        return html_not_found().await;
    }
    let mut path = dir.join(rel.trim_start_matches('/'));
    if path.is_dir() {
        path = path.join("index.html");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => file_response(mime(&path), bytes),
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
    serve_example(app.engine.cfg.examples_dir.as_deref(), rel).await
}

pub(super) async fn widget_file(State(app): AppState, Path(path): Path<String>) -> Response {
    serve_file(&app.engine.cfg.widget_dir, &path).await
}

pub(super) async fn example_file(State(app): AppState, Path(path): Path<String>) -> Response {
    serve_example(app.engine.cfg.examples_dir.as_deref(), &path).await
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
