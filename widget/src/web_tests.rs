//! The DOM half of the widget in a real browser (`wasm-bindgen-test`, headless Chromium through
//! Debian's chromedriver; `cargo xtask test` runs them). The backend is a `fetch` stub answering
//! the merchant contract's JSON, so each test pins one view; the whole stack against a real
//! backend and sandbox is tests/browser.

use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

use super::{mount, Element, Handle};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function stub_fetch(routes) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    const method = (init && init.method) || 'GET';
    const path = new URL(url).pathname + new URL(url).search;
    calls.push({ method, path, body: init && init.body ? JSON.parse(init.body) : null });
    const key = method + ' ' + path.split('?')[0];
    if (!(key in routes)) throw new TypeError('Failed to fetch');
    const [status, body] = routes[key];
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
  return calls;
}
// One container per test, in place of the last one (the runner's own output stays in the page).
export function fresh_root() {
  document.getElementById('cvco-test-root')?.remove();
  const root = document.createElement('div');
  root.id = 'cvco-test-root';
  document.body.append(root);
  return root;
}
export function recorder() {
  const seen = [];
  const emit = (name, detail) => seen.push({ name, detail });
  emit.seen = seen;
  return emit;
}
export function seen(emit) { return emit.seen; }
export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
export function query_count(root, selector) { return root.querySelectorAll(selector).length; }
export function text(root, selector) {
  const el = root.querySelector(selector);
  return el ? el.textContent : null;
}
export function attribute(root, selector, name) {
  const el = root.querySelector(selector);
  return el ? el.getAttribute(name) : null;
}
export function type_and_submit(root, value) {
  const input = root.querySelector('input');
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
  input.form.requestSubmit();
}
export function click(root, selector) { root.querySelector(selector).click(); }
"#)]
extern "C" {
    fn stub_fetch(routes: &JsValue) -> Array;
    fn fresh_root() -> Element;
    fn recorder() -> JsValue;
    fn seen(emit: &JsValue) -> Array;
    fn sleep(ms: u32) -> js_sys::Promise;
    fn query_count(root: &Element, selector: &str) -> u32;
    fn text(root: &Element, selector: &str) -> Option<String>;
    fn attribute(root: &Element, selector: &str, name: &str) -> Option<String>;
    fn type_and_submit(root: &Element, value: &str);
    fn click(root: &Element, selector: &str);
}

fn json(text: &str) -> JsValue {
    js_sys::JSON::parse(text).expect("test JSON")
}

fn checkout(extra: &str) -> String {
    format!(
        r#"{{"order_ref":"CMD-1","order_total_cents":4500,"order_remaining_cents":4500,
        "currency":"EUR","eligible":true,"ineligible_reason":null,"min_amount_cents":2000,
        "adjustable":true,"authorization_timeout_s":180,"modes":["identifier","qr"],
        "current_payment":null{extra}}}"#
    )
}

struct Mounted {
    root: Element,
    emit: JsValue,
    calls: Array,
    handle: Handle,
}

/// Stops the widget's timers, stream and polling, so nothing of one test reaches the next one's
/// `fetch` stub.
impl Drop for Mounted {
    fn drop(&mut self) {
        self.handle.destroy();
    }
}

fn mount_with(routes: &str, locale: &str, mode: &str) -> Mounted {
    let calls = stub_fetch(&json(routes));
    let root = fresh_root();
    let emit = recorder();
    let handle = mount(
        root.clone(),
        "http://127.0.0.1:9/cvco/v1",
        "CMD-1",
        locale,
        mode,
        false,
        emit.clone(),
        JsValue::UNDEFINED,
    );
    Mounted {
        root,
        emit,
        calls,
        handle,
    }
}

/// Waits (up to 3 s) until the widget body shows `view`.
async fn view(m: &Mounted, view: &str) {
    for _ in 0..300 {
        if attribute(&m.root, ".cvco-body", "data-view").as_deref() == Some(view) {
            return;
        }
        wasm_bindgen_futures::JsFuture::from(sleep(10))
            .await
            .unwrap();
    }
    panic!(
        "view {view} never shown; body: {:?}",
        text(&m.root, ".cvco-body")
    );
}

/// The requests the widget sent with `method`.
fn sent(m: &Mounted, method: &str) -> usize {
    m.calls
        .iter()
        .filter(|c| {
            js_sys::Reflect::get(c, &"method".into())
                .unwrap()
                .as_string()
                .as_deref()
                == Some(method)
        })
        .count()
}

fn events(m: &Mounted) -> Vec<String> {
    seen(&m.emit)
        .iter()
        .map(|e| {
            js_sys::Reflect::get(&e, &"name".into())
                .unwrap()
                .as_string()
                .unwrap()
        })
        .collect()
}

fn event_detail(m: &Mounted, name: &str, key: &str) -> JsValue {
    let e = seen(&m.emit)
        .iter()
        .find(|e| {
            js_sys::Reflect::get(e, &"name".into())
                .unwrap()
                .as_string()
                .as_deref()
                == Some(name)
        })
        .unwrap_or_else(|| panic!("no {name} event"));
    let detail = js_sys::Reflect::get(&e, &"detail".into()).unwrap();
    js_sys::Reflect::get(&detail, &key.into()).unwrap()
}

#[wasm_bindgen_test]
async fn eligible_order_shows_a_labelled_field_and_the_amount() {
    let routes = format!(r#"{{"GET /cvco/v1/checkout": [200, {}]}}"#, checkout(""));
    let m = mount_with(&routes, "fr", "auto");
    view(&m, "form").await;
    assert_eq!(
        attribute(&m.root, "label", "for").as_deref(),
        Some("cvco-id")
    );
    let described = attribute(&m.root, "#cvco-id", "aria-describedby").unwrap();
    assert!(described.contains("cvco-hint"), "{described}");
    let pay = text(&m.root, "button[type=submit]").unwrap();
    assert!(pay.contains("45,00\u{a0}€"), "{pay}");
    assert_eq!(query_count(&m.root, "[data-action=qr]"), 1);
    assert_eq!(m.root.attr("lang").as_deref(), Some("fr"));
    assert_eq!(events(&m), ["cvco-ready"]);
    assert_eq!(
        event_detail(&m, "cvco-ready", "order_remaining_cents").as_f64(),
        Some(4500.0)
    );
}

#[wasm_bindgen_test]
async fn an_invalid_identifier_is_tied_to_the_field_and_sends_nothing() {
    let routes = format!(r#"{{"GET /cvco/v1/checkout": [200, {}]}}"#, checkout(""));
    let m = mount_with(&routes, "en", "identifier");
    view(&m, "form").await;
    type_and_submit(&m.root, "1234");
    assert_eq!(
        attribute(&m.root, "#cvco-id", "aria-invalid").as_deref(),
        Some("true")
    );
    let described = attribute(&m.root, "#cvco-id", "aria-describedby").unwrap();
    assert!(described.contains("cvco-err"), "{described}");
    let error = text(&m.root, "#cvco-err").unwrap();
    assert!(!error.is_empty());
    // The message is announced and the typed value kept for correction.
    assert_eq!(text(&m.root, ".cvco-live").as_deref(), Some(error.as_str()));
    assert_eq!(
        attribute(&m.root, "#cvco-id", "value").as_deref(),
        Some("1234")
    );
    assert_eq!(events(&m), ["cvco-ready", "cvco-error"]);
    assert_eq!(
        event_detail(&m, "cvco-error", "code")
            .as_string()
            .as_deref(),
        Some("invalid_beneficiary")
    );
    // No payment was attempted.
    assert_eq!(sent(&m, "POST"), 0);
}

#[wasm_bindgen_test]
async fn backend_text_is_shown_as_text_never_as_markup() {
    let hostile = r#"<img src=x onerror=\"globalThis.pwned=1\"><b>gras</b> \" & '"#;
    let reason = format!(
        r#", "ineligible_reason": {{"code":"amount_below_minimum","message_fr":"{hostile}","message_en":"{hostile}","retryable":false}}"#
    );
    let routes = format!(
        r#"{{"GET /cvco/v1/checkout": [200, {}]}}"#,
        checkout(&reason).replace(r#""eligible":true"#, r#""eligible":false"#)
    );
    let m = mount_with(&routes, "fr", "auto");
    view(&m, "ineligible").await;
    assert_eq!(query_count(&m.root, "img"), 0);
    assert_eq!(query_count(&m.root, "b"), 0);
    let note = text(&m.root, ".cvco-note").unwrap();
    assert!(
        note.contains(r#"<img src=x onerror="globalThis.pwned=1"><b>gras</b> " & '"#),
        "{note}"
    );
    assert!(m.root.attr("class").unwrap().contains("cvco-disabled"));
    assert_eq!(query_count(&m.root, "input"), 0);
}

#[wasm_bindgen_test]
async fn a_payment_qr_code_is_drawn_with_its_label_and_a_cancel_button() {
    let payment = r#"{"payment_id":"pay_1","order_ref":"CMD-1","status":"pending","final":false,
        "amount_cents":4500,"authorized_cents":0,"remaining_cents":4500,"refunded_cents":0,
        "order_total_cents":4500,"order_remaining_cents":4500,"sequence":1,
        "events_url":"/cvco/v1/payments/pay_1/events",
        "next_action":{"type":"show_qr","qr_payload":"cvco:pay?v=1&pt=pt_1&shop=SHOP-1&amount=4500",
        "expires_at":"2099-01-01T00:00:00Z"}}"#;
    let routes = format!(
        r#"{{"GET /cvco/v1/checkout": [200, {}], "GET /cvco/v1/payments/pay_1": [200, {payment}]}}"#,
        // A repeated key: JSON.parse keeps the last one, the payment in progress.
        checkout(&format!(r#", "current_payment": {payment}"#))
    );
    let m = mount_with(&routes, "fr", "qr");
    view(&m, "qr").await;
    assert_eq!(query_count(&m.root, ".cvco-qr svg path"), 1);
    let label = attribute(&m.root, ".cvco-qr svg", "aria-label").unwrap();
    assert!(label.contains("45,00"), "{label}");
    assert_eq!(
        attribute(&m.root, ".cvco-qr svg", "role").as_deref(),
        Some("img")
    );
    assert_eq!(query_count(&m.root, "[data-action=cancel]"), 1);
    assert!(
        events(&m).contains(&"cvco-pending".to_string()),
        "{:?}",
        events(&m)
    );
}

#[wasm_bindgen_test]
async fn an_unreachable_backend_offers_a_retry_and_reports_a_retryable_error() {
    // No route at all: every fetch fails as a network error does.
    let m = mount_with("{}", "en", "auto");
    view(&m, "failed").await;
    assert_eq!(query_count(&m.root, "[data-action=retry]"), 1);
    assert_eq!(
        event_detail(&m, "cvco-error", "code")
            .as_string()
            .as_deref(),
        Some("network_error")
    );
    let live = text(&m.root, ".cvco-live").unwrap();
    assert!(!live.is_empty());
    // Retry goes back to the backend: with it up again, the form shows.
    stub_fetch(&json(&format!(
        r#"{{"GET /cvco/v1/checkout": [200, {}]}}"#,
        checkout("")
    )));
    click(&m.root, "[data-action=retry]");
    view(&m, "form").await;
}

#[wasm_bindgen_test]
async fn a_payment_whose_outcome_is_being_checked_says_so_and_is_followed() {
    // The backend lost ANCV's answer to the creation: the order's payment is "unknown".
    let payment = r#"{"payment_id":"pay_9","order_ref":"CMD-1","status":"unknown","final":false,
        "amount_cents":4500,"authorized_cents":0,"remaining_cents":4500,"refunded_cents":0,
        "order_total_cents":4500,"order_remaining_cents":4500,"sequence":1,"transaction_id":null,
        "events_url":"/cvco/v1/payments/pay_9/events",
        "next_action":{"type":"wait_for_app","deadline":null}}"#;
    let routes = format!(
        r#"{{"GET /cvco/v1/checkout": [200, {}], "GET /cvco/v1/payments/pay_9": [200, {payment}]}}"#,
        checkout(&format!(r#", "current_payment": {payment}"#))
    );
    let m = mount_with(&routes, "en", "auto");
    view(&m, "waiting").await;
    let live = text(&m.root, ".cvco-wait").unwrap();
    assert!(live.contains("Checking your previous payment"), "{live}");
    // No countdown: there is no deadline to show until ANCV answers.
    assert_eq!(query_count(&m.root, ".cvco-timer"), 0);
}

#[wasm_bindgen_test]
async fn a_partial_payment_names_a_card_for_the_rest_only_on_a_web_shop() {
    // The same partial payment resumed on a web shop and at a counter (the Payment's channel).
    for (channel, card) in [("ecommerce", true), ("proximity", false)] {
        let payment = format!(
            r#"{{"payment_id":"pay_7","order_ref":"CMD-1","status":"partially_authorized",
            "final":true,"amount_cents":4500,"authorized_cents":3500,"remaining_cents":1000,
            "refunded_cents":0,"order_total_cents":4500,"order_remaining_cents":1000,
            "channel":"{channel}","sequence":3,"events_url":"/cvco/v1/payments/pay_7/events",
            "next_action":{{"type":"none"}}}}"#
        );
        let routes = format!(
            r#"{{"GET /cvco/v1/checkout": [200, {}], "GET /cvco/v1/payments/pay_7": [200, {payment}]}}"#,
            checkout(&format!(r#", "current_payment": {payment}"#))
        );
        let m = mount_with(&routes, "fr", "auto");
        view(&m, "partially-authorized").await;
        let rest = text(&m.root, ".cvco-remaining").unwrap();
        assert!(rest.contains("Reste à payer"), "{rest}");
        assert_eq!(rest.contains("carte"), card, "{channel}: {rest}");
    }
}
