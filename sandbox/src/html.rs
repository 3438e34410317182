//! Server-rendered pages: no external assets, no inline script (the keypad script is a file).

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} – CVCo bac à sable</title>\
         <link rel=\"stylesheet\" href=\"/app/app.css\">\
         <script src=\"/app/app.js\" defer></script></head>\
         <body><header><a href=\"/app\" class=\"brand\">Chèque-Vacances Connect</a> \
         <span class=\"tag\">bac à sable</span> \
         <nav><a href=\"/app\">Appli</a> <a href=\"/outbox\">Boîte d'envoi</a> <a href=\"/admin\">Admin</a></nav></header>\
         <main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title),
    )
}

/// An HTML response with a strict content security policy.
pub fn html_response(status: axum::http::StatusCode, html: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'",
            ),
        ],
        html,
    )
        .into_response()
}

pub const CSS: &str = r#"
:root { --ancv: #0b5fa5; --ok: #1b7f3b; --ko: #b3261e; --muted: #666; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f6f9; color: #1d1d1f; }
header { background: var(--ancv); color: #fff; padding: .6rem 1rem; display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }
header a { color: #fff; text-decoration: none; }
header nav { margin-left: auto; display: flex; gap: 1rem; }
.brand { font-weight: 700; }
.tag { background: #ffd54f; color: #333; border-radius: 1rem; padding: 0 .6rem; font-size: .8rem; }
main { max-width: 960px; margin: 0 auto; padding: 1rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }
.card { background: #fff; border-radius: .8rem; padding: 1rem; box-shadow: 0 1px 3px rgba(0,0,0,.12); margin-bottom: 1rem; }
.card h2, .card h3 { margin-top: 0; }
.amount { font-size: 2rem; font-weight: 700; }
.muted { color: var(--muted); }
.error { background: #fde7e6; color: var(--ko); padding: .6rem 1rem; border-radius: .5rem; }
.success { background: #e3f4e8; color: var(--ok); padding: .6rem 1rem; border-radius: .5rem; }
.warn { background: #fff4d6; padding: .6rem 1rem; border-radius: .5rem; }
button, .button { background: var(--ancv); color: #fff; border: 0; border-radius: .5rem; padding: .6rem 1.2rem; font-size: 1rem; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary { background: #e0e4ea; color: #1d1d1f; }
button.danger { background: var(--ko); }
input, select, textarea { font-size: 1rem; padding: .5rem; border: 1px solid #bbb; border-radius: .4rem; width: 100%; max-width: 26rem; }
label { display: block; margin: .6rem 0 .2rem; font-weight: 600; }
.keypad { display: grid; grid-template-columns: repeat(3, 4rem); gap: .5rem; margin: .8rem 0; }
.keypad button { height: 3.2rem; font-size: 1.4rem; background: #fff; color: #1d1d1f; border: 1px solid #bbb; }
form + form { margin-top: .6rem; }
.row { display: flex; gap: .6rem; flex-wrap: wrap; align-items: center; margin-top: .8rem; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .35rem .5rem; text-align: left; vertical-align: top; }
pre { white-space: pre-wrap; background: #fff; padding: .8rem; border-radius: .5rem; }
.qr svg { width: 180px; height: 180px; }
.barcode svg { max-width: 100%; height: auto; }
.st-delivered { color: var(--ok); } .st-failed, .st-dropped { color: var(--ko); }
.state { font-weight: 700; }
"#;

/// The dynamic keypad: digits fill the code field. Without JS the field is typed directly.
pub const JS: &str = r#"
document.addEventListener('DOMContentLoaded', function () {
  var pin = document.getElementById('pin');
  if (!pin) return;
  document.querySelectorAll('.keypad button[data-digit]').forEach(function (b) {
    b.addEventListener('click', function () {
      if (pin.value.length < 8) pin.value += b.getAttribute('data-digit');
    });
  });
  var clear = document.getElementById('pin-clear');
  if (clear) clear.addEventListener('click', function () { pin.value = ''; });
});
"#;
