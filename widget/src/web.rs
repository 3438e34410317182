//! The browser half: DOM inside the element's shadow root, the §1 endpoints over fetch, status by
//! EventSource with a polling fallback. One listener per event type on the container (delegation
//! through `data-action`), so re-rendering never leaks closures.
//!
//! Sized for the shopper's download: every JS API used is one import here (each is a shim in the
//! generated glue), views are HTML strings set at once (text escaped), and every task runs through
//! one `spawn_local` ([`go`]).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::logic::{self, fill, join, money, push_escaped, t, Locale, Payment, Status, Text, View};

/// The few JS APIs the widget calls, declared here rather than through web-sys/js-sys: no
/// `instanceof` checks, no exception wrapping where the call cannot throw.
#[wasm_bindgen]
extern "C" {
    /// Anything that takes event listeners (elements, the event source).
    #[derive(Clone)]
    pub type Target;
    #[wasm_bindgen(method, js_name = addEventListener)]
    fn listen(this: &Target, name: &str, f: &Closure<dyn FnMut(JsValue)>);

    #[derive(Clone)]
    #[wasm_bindgen(extends = Target)]
    pub type Element;
    #[wasm_bindgen(method, setter = innerHTML)]
    fn set_html(this: &Element, html: &str);
    #[wasm_bindgen(method, setter = textContent)]
    fn set_text(this: &Element, text: &str);
    #[wasm_bindgen(method, js_name = setAttribute)]
    fn set_attr(this: &Element, name: &str, value: &str);
    #[wasm_bindgen(method, js_name = removeAttribute)]
    fn remove_attr(this: &Element, name: &str);
    #[wasm_bindgen(method, js_name = getAttribute)]
    fn attr(this: &Element, name: &str) -> Option<String>;
    #[wasm_bindgen(method, js_name = querySelector)]
    fn find(this: &Element, selector: &str) -> Option<Element>;
    #[wasm_bindgen(method)]
    fn closest(this: &Element, selector: &str) -> Option<Element>;
    #[wasm_bindgen(method)]
    fn matches(this: &Element, selector: &str) -> bool;
    #[wasm_bindgen(method)]
    fn focus(this: &Element);
    #[wasm_bindgen(method, getter)]
    fn value(this: &Element) -> String;

    type Event;
    #[wasm_bindgen(method, getter)]
    fn target(this: &Event) -> Element;
    #[wasm_bindgen(method, js_name = preventDefault)]
    fn prevent_default(this: &Event);

    #[wasm_bindgen(extends = Target)]
    type EventSource;
    #[wasm_bindgen(constructor, catch)]
    fn new(url: &str, init: &Object) -> Result<EventSource, JsValue>;
    #[wasm_bindgen(method)]
    fn close(this: &EventSource);

    #[wasm_bindgen(js_name = URL)]
    type Url;
    #[wasm_bindgen(constructor, catch)]
    fn new(url: &str, base: &JsValue) -> Result<Url, JsValue>;

    /// A JS function handed to `mount` (the element's event dispatcher, the camera scanner).
    #[derive(Clone)]
    type Callback;
    #[wasm_bindgen(method, js_name = call)]
    fn call2(this: &Callback, this_arg: &JsValue, a: &JsValue, b: &JsValue) -> JsValue;

    #[wasm_bindgen(js_name = fetch)]
    fn fetch(url: &str, init: &Object) -> Promise;
    type Response;
    #[wasm_bindgen(method)]
    fn json(this: &Response) -> Promise;
    type Array;
    #[wasm_bindgen(method)]
    fn includes(this: &Array, value: &str) -> bool;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &JsValue, ms: u32);
    #[wasm_bindgen(js_namespace = performance, js_name = mark)]
    fn mark(name: &str);
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: JsValue;

    #[wasm_bindgen(js_namespace = Reflect, js_name = get)]
    fn reflect_get(target: &JsValue, key: &str) -> JsValue;
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set(target: &JsValue, key: &str, value: &JsValue);
    #[wasm_bindgen(js_namespace = JSON)]
    fn stringify(value: &JsValue) -> JsValue;
    #[wasm_bindgen(catch, js_namespace = JSON)]
    fn parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// What a retry button does, depending on what failed.
#[derive(Clone, Copy, PartialEq)]
enum Retry {
    Load,
    Resend,
    Form,
}

struct Inner {
    root: Element,
    body: Element,
    live: Element,
    emit: Callback,
    scan: Option<Callback>,
    endpoint: String,
    order_ref: String,
    locale: Locale,
    mode: String,
    chain: bool,
    qr_allowed: bool,
    order_remaining: u64,
    payment: Option<Payment>,
    /// Idempotency token of the current user action: kept while its outcome is unknown (network
    /// failure), dropped once the backend answered for good.
    attempt: Option<String>,
    last_request: Option<(String, Option<String>)>,
    retry: Retry,
    view: View,
    note: Option<String>,
    field_error: Option<String>,
    input_value: String,
    failure: Option<String>,
    /// Bumped on every render: countdown loops of older views stop.
    render_gen: u32,
    /// Bumped whenever the way we follow a payment changes: older poll loops stop.
    follow_gen: u32,
    es: Option<EventSource>,
    es_handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    stream_opened: bool,
    stream_unavailable: bool,
    interactive_marked: bool,
    focus_next: bool,
    dead: bool,
    _listeners: Vec<Closure<dyn FnMut(JsValue)>>,
}

type W = Rc<RefCell<Inner>>;

// What `mount` returns to JS: `destroy()` stops timers and the stream. (Plain comments on the
// exported items: doc comments would be copied into the generated glue, which shoppers download;
// the package's API is documented in cvco-checkout.d.ts.)
#[wasm_bindgen]
pub struct Handle(W);

#[wasm_bindgen]
impl Handle {
    pub fn destroy(&self) {
        let mut w = self.0.borrow_mut();
        w.dead = true;
        w.render_gen += 1;
        w.follow_gen += 1;
        close_stream(&mut w);
        w.root.set_html("");
    }
}

/// `<tag attrs>text</tag>`, the text escaped.
fn tag(html: &mut String, tag: &str, attrs: &str, text: &str) {
    html.push('<');
    html.push_str(tag);
    html.push(' ');
    html.push_str(attrs);
    html.push('>');
    push_escaped(html, text);
    html.push_str("</");
    html.push_str(tag);
    html.push('>');
}

fn button(html: &mut String, label: &str, action: &str, class: &str) {
    html.push_str("<button type=\"button\" data-action=\"");
    html.push_str(action);
    html.push_str("\" class=\"");
    html.push_str(class);
    html.push_str("\">");
    push_escaped(html, label);
    html.push_str("</button>");
}

/// A property of a JS value; `undefined` when the value is not an object.
fn get(o: &JsValue, key: &str) -> JsValue {
    if o.is_object() {
        reflect_get(o, key)
    } else {
        JsValue::UNDEFINED
    }
}

fn get_str(o: &JsValue, key: &str) -> Option<String> {
    get(o, key).as_string()
}

/// JSON numbers are doubles in the browser; amounts leave them at once as integer cents.
fn get_cents(o: &JsValue, key: &str) -> u64 {
    match get(o, key).as_f64() {
        Some(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 => v as u64,
        _ => 0,
    }
}

fn set(o: &Object, key: &str, value: JsValue) {
    reflect_set(o, key, &value);
}

fn payment_from(v: &JsValue, locale: Locale) -> Option<Payment> {
    let status = Status::parse(&get_str(v, "status")?)?;
    let next = get(v, "next_action");
    let error = get(v, "error");
    Some(Payment {
        payment_id: get_str(v, "payment_id")?,
        status,
        is_final: get(v, "final").as_bool().unwrap_or(false),
        amount_cents: get_cents(v, "amount_cents"),
        authorized_cents: get_cents(v, "authorized_cents"),
        remaining_cents: get_cents(v, "remaining_cents"),
        order_remaining_cents: get_cents(v, "order_remaining_cents"),
        deadline_ms: get_str(v, "deadline").and_then(|d| time_ms(&d)),
        next_action: get_str(&next, "type").unwrap_or_default(),
        qr_payload: get_str(&next, "qr_payload"),
        qr_expires_ms: get_str(&next, "expires_at").and_then(|d| time_ms(&d)),
        events_url: get_str(v, "events_url").unwrap_or_default(),
        sequence: get_cents(v, "sequence"),
        error_code: get_str(&error, "code"),
        error_message: get_str(&error, message_key(locale)),
        abort_reason: get_str(v, "abort_reason"),
        channel: get_str(v, "channel"),
    })
}

/// RFC 3339 → epoch ms by the browser's own parser (keeps a date parser out of the wasm).
fn time_ms(s: &str) -> Option<i64> {
    let ms = js_sys::Date::parse(s);
    ms.is_finite().then_some(ms as i64)
}

fn message_key(locale: Locale) -> &'static str {
    match locale {
        Locale::Fr => "message_fr",
        Locale::En => "message_en",
    }
}

/// `new URL(url, base).href`, `None` when the browser refuses the URL.
fn resolve(url: &str, base: &JsValue) -> Option<String> {
    Url::new(url, base).ok().and_then(|u| get_str(&u, "href"))
}

/// A failed call: `status` 0 when the network failed before any answer.
struct ApiError {
    status: u16,
    code: String,
    message: String,
    retryable: bool,
    /// The backend named a payment to follow (`payment_id` in the error body).
    follow: bool,
}

async fn api(w: &W, method: &str, path: &str, body: Option<&Object>) -> Result<JsValue, ApiError> {
    let (url, locale, csrf) = {
        let w = w.borrow();
        // A staff page (the counter) hands its session's CSRF token through the mount options.
        let csrf = w.root.attr("data-csrf-token").filter(|t| !t.is_empty());
        (w.endpoint.clone() + path, w.locale, csrf)
    };
    let network = || ApiError {
        status: 0,
        code: "network_error".into(),
        message: t(locale, Text::NetworkError).into(),
        retryable: true,
        follow: false,
    };
    let init = Object::new();
    let headers = Object::new();
    set(&init, "method", method.into());
    set(&init, "credentials", "include".into());
    set(&headers, "accept", "application/json".into());
    if let (Some(token), false) = (csrf, method == "GET") {
        set(&headers, "x-csrf-token", token.into());
    }
    if let Some(body) = body {
        set(&headers, "content-type", "application/json".into());
        set(&init, "body", stringify(body));
    }
    set(&init, "headers", headers.into());
    let resp = JsFuture::from(fetch(&url, &init))
        .await
        .map_err(|_| network())?;
    let json = JsFuture::from(resp.unchecked_ref::<Response>().json())
        .await
        .unwrap_or(JsValue::NULL);
    let status = get_cents(&resp, "status") as u16;
    if (200..300).contains(&status) {
        return Ok(json);
    }
    Err(ApiError {
        status,
        code: get_str(&json, "code").unwrap_or_else(|| "http_error".into()),
        message: get_str(&json, message_key(locale))
            .unwrap_or_else(|| t(locale, Text::Error).into()),
        retryable: get(&json, "retryable").as_bool().unwrap_or(status >= 500),
        follow: get_str(&json, "payment_id").is_some(),
    })
}

async fn sleep(ms: u32) {
    let p = Promise::new(&mut |resolve, _| set_timeout(&resolve, ms));
    let _ = JsFuture::from(p).await;
}

/// Dispatches on the element with no borrow held: a page listener may call back (e.g. remove the
/// element, which destroys the widget).
fn emit(w: &W, name: &str, detail: &Object) {
    let f = w.borrow().emit.clone();
    f.call2(&JsValue::NULL, &name.into(), detail);
}

fn payment_detail(p: &Payment) -> Object {
    let d = Object::new();
    set(&d, "payment_id", p.payment_id.as_str().into());
    set(&d, "status", status_name(p.status).into());
    set(&d, "amount_cents", (p.amount_cents as f64).into());
    set(&d, "authorized_cents", (p.authorized_cents as f64).into());
    set(&d, "remaining_cents", (p.remaining_cents as f64).into());
    set(
        &d,
        "order_remaining_cents",
        (p.order_remaining_cents as f64).into(),
    );
    if let Some(r) = &p.abort_reason {
        set(&d, "abort_reason", r.as_str().into());
    }
    d
}

fn error_detail(code: &str, message: &str) -> Object {
    let d = Object::new();
    set(&d, "code", code.into());
    set(&d, "message", message.into());
    d
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::AwaitingBeneficiary => "awaiting_beneficiary",
        Status::Authorized => "authorized",
        Status::PartiallyAuthorized => "partially_authorized",
        Status::Declined => "declined",
        Status::Expired => "expired",
        Status::Cancelled => "cancelled",
        Status::Unknown => "unknown",
        Status::Refunded => "refunded",
        Status::Failed => "failed",
    }
}

// Mounts the widget in `root` (a container in the element's shadow root). `emit(name, detail)`
// dispatches the element's events; `scan(body, stopLabel)` (only when the browser has
// BarcodeDetector) resolves to the raw value of a scanned code.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn mount(
    root: Element,
    endpoint: &str,
    order_ref: &str,
    locale: &str,
    mode: &str,
    chain: bool,
    emit: JsValue,
    scan: JsValue,
) -> Handle {
    let endpoint =
        resolve(endpoint, &reflect_get(&root, "baseURI")).unwrap_or_else(|| endpoint.to_string());
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let locale = Locale::from_tag(locale);
    let mut html = String::from("<div class=\"cvco-head\"><span class=\"cvco-logo\">");
    html.push_str(logic::LOGO_SVG);
    html.push_str("</span><div class=\"cvco-titles\">");
    tag(&mut html, "p", "class=\"cvco-name\"", t(locale, Text::Name));
    tag(
        &mut html,
        "p",
        "class=\"cvco-explain\"",
        t(locale, Text::Explain),
    );
    html.push_str(
        "</div></div><div class=\"cvco-body\"></div>\
         <p class=\"cvco-live\" role=\"status\" aria-live=\"polite\"></p>",
    );
    root.set_html(&html);
    root.set_attr("lang", locale.tag());
    let mode = match mode {
        "identifier" | "qr" => mode,
        _ => "auto",
    };
    let w: W = Rc::new(RefCell::new(Inner {
        body: root.find(".cvco-body").unwrap_throw(),
        live: root.find(".cvco-live").unwrap_throw(),
        root,
        emit: emit.unchecked_into(),
        scan: scan.is_function().then(|| scan.unchecked_into()),
        endpoint,
        order_ref: order_ref.to_string(),
        locale,
        mode: mode.to_string(),
        chain,
        qr_allowed: false,
        order_remaining: 0,
        payment: None,
        attempt: None,
        last_request: None,
        retry: Retry::Load,
        view: View::Loading,
        note: None,
        field_error: None,
        input_value: String::new(),
        failure: None,
        render_gen: 0,
        follow_gen: 0,
        es: None,
        es_handlers: Vec::new(),
        stream_opened: false,
        stream_unavailable: false,
        interactive_marked: false,
        focus_next: false,
        dead: false,
        _listeners: Vec::new(),
    }));
    let root = w.borrow().root.clone();
    let listeners = vec![
        listen(&root, "click", &w, on_click),
        listen(&root, "submit", &w, on_submit),
        listen(&root, "input", &w, on_input),
    ];
    w.borrow_mut()._listeners = listeners;
    go(&w, Job::Load);
    Handle(w)
}

/// A closure for `addEventListener` that holds the widget weakly.
fn handler(w: &W, f: fn(&W, JsValue)) -> Closure<dyn FnMut(JsValue)> {
    let w = Rc::downgrade(w);
    Closure::new(move |e: JsValue| {
        if let Some(w) = w.upgrade() {
            f(&w, e)
        }
    })
}

fn listen(target: &Target, name: &str, w: &W, f: fn(&W, JsValue)) -> Closure<dyn FnMut(JsValue)> {
    let c = handler(w, f);
    target.listen(name, &c);
    c
}

/// What runs in the background, all through one `spawn_local`.
enum Job {
    Load,
    Create(String, Option<String>),
    Cancel,
    Scan,
    Poll(u32),
    Countdown(u32, Element, i64, Text),
}

fn go(w: &W, job: Job) {
    let w = w.clone();
    spawn_local(async move {
        match job {
            Job::Load => load(&w).await,
            Job::Create(mode, who) => create(&w, &mode, who).await,
            Job::Cancel => cancel(&w).await,
            Job::Scan => scan(&w).await,
            Job::Poll(gen) => poll(&w, gen).await,
            Job::Countdown(gen, timer, deadline, label) => {
                countdown(&w, gen, timer, deadline, label).await
            }
        }
    });
}

fn on_click(w: &W, e: JsValue) {
    let e: Event = e.unchecked_into();
    let Some(action) = e
        .target()
        .closest("[data-action]")
        .and_then(|b| b.attr("data-action"))
    else {
        return;
    };
    match action.as_str() {
        "qr" => {
            w.borrow_mut().attempt = None;
            go(w, Job::Create("qr".into(), None));
        }
        "cancel" => go(w, Job::Cancel),
        "scan" => go(w, Job::Scan),
        "chain" => {
            {
                let mut i = w.borrow_mut();
                if let Some(p) = i.payment.take() {
                    i.order_remaining = p.order_remaining_cents;
                }
                i.attempt = None;
                i.note = None;
                i.input_value.clear();
            }
            render(w, View::Form);
        }
        "retry" => {
            // The page clears its own note about the failure (the storefront's card offer).
            emit(w, "cvco-retry", &Object::new());
            let retry = w.borrow().retry;
            match retry {
                Retry::Load => go(w, Job::Load),
                Retry::Resend => {
                    let last = w.borrow().last_request.clone();
                    if let Some((mode, who)) = last {
                        go(w, Job::Create(mode, who));
                    }
                }
                Retry::Form => {
                    {
                        let mut i = w.borrow_mut();
                        i.payment = None;
                        i.attempt = None;
                        i.note = None;
                    }
                    render(w, View::Form);
                }
            }
        }
        _ => {}
    }
}

/// Enter in the field (a person or a hand-held scanner) submits the form.
fn on_submit(w: &W, e: JsValue) {
    e.unchecked_into::<Event>().prevent_default();
    let input = w.borrow().body.find("input");
    if let Some(input) = input {
        submit_value(w, input.value());
    }
}

fn submit_value(w: &W, value: String) {
    let locale = w.borrow().locale;
    let read = logic::read_beneficiary(&value, locale);
    w.borrow_mut().input_value = value;
    match read {
        Ok(id) => {
            {
                let mut i = w.borrow_mut();
                i.field_error = None;
                i.attempt = None;
            }
            go(w, Job::Create("identifier".into(), Some(id)));
        }
        Err(message) => {
            w.borrow_mut().field_error = Some(message.clone());
            emit(
                w,
                "cvco-error",
                &error_detail("invalid_beneficiary", &message),
            );
            render(w, View::Form);
        }
    }
}

/// Typing clears a shown error so the field is not announced invalid while being fixed.
fn on_input(w: &W, _e: JsValue) {
    if let Some(input) = w.borrow().body.find("input") {
        input.remove_attr("aria-invalid");
    }
}

/// A fresh idempotency token: "w", then the time and 96 random bits in hex.
fn new_attempt() -> String {
    let mut out = String::from("w");
    logic::push_hex(&mut out, js_sys::Date::now() as u64, 1);
    for _ in 0..2 {
        logic::push_hex(
            &mut out,
            (js_sys::Math::random() * 2f64.powi(48)) as u64,
            12,
        );
    }
    out
}

async fn load(w: &W) {
    render(w, View::Loading);
    let path = {
        let i = w.borrow();
        "/checkout?order_ref=".to_string()
            + &String::from(js_sys::encode_uri_component(&i.order_ref))
    };
    match api(w, "GET", &path, None).await {
        Ok(c) => {
            let locale = w.borrow().locale;
            let eligible = get(&c, "eligible").as_bool().unwrap_or(false);
            let modes = get(&c, "modes");
            let qr_offered = modes.is_object() && modes.unchecked_ref::<Array>().includes("qr");
            let remaining = get_cents(&c, "order_remaining_cents");
            {
                let mut i = w.borrow_mut();
                i.order_remaining = remaining;
                i.qr_allowed = qr_offered;
                i.note = if eligible {
                    None
                } else {
                    get_str(&get(&c, "ineligible_reason"), message_key(locale))
                };
            }
            let ready = Object::new();
            set(&ready, "eligible", eligible.into());
            set(&ready, "order_remaining_cents", (remaining as f64).into());
            set(
                &ready,
                "min_amount_cents",
                (get_cents(&c, "min_amount_cents") as f64).into(),
            );
            emit(w, "cvco-ready", &ready);
            let current = get(&c, "current_payment");
            if let Some(p) = payment_from(&current, locale) {
                apply(w, p);
            } else if eligible {
                render(w, View::Form);
            } else {
                render(w, View::Ineligible);
            }
        }
        Err(e) => fail(w, Retry::Load, &e),
    }
}

fn fail(w: &W, retry: Retry, e: &ApiError) {
    {
        let mut i = w.borrow_mut();
        i.retry = retry;
        i.failure = Some(e.message.clone());
    }
    emit(w, "cvco-error", &error_detail(&e.code, &e.message));
    render(w, View::Failed);
}

async fn create(w: &W, mode: &str, beneficiary: Option<String>) {
    let body = Object::new();
    {
        let mut i = w.borrow_mut();
        let attempt = i.attempt.get_or_insert_with(new_attempt).clone();
        i.note = None;
        set(&body, "order_ref", i.order_ref.as_str().into());
        set(&body, "mode", mode.into());
        if let Some(b) = &beneficiary {
            set(&body, "beneficiary", b.as_str().into());
        }
        set(&body, "attempt", attempt.into());
        i.last_request = Some((mode.to_string(), beneficiary));
    }
    render(w, View::Sending);
    // A lost answer is retried with the same attempt: the backend gives back the same payment.
    let mut tries = 0;
    let result = loop {
        match api(w, "POST", "/payments", Some(&body)).await {
            Err(e) if e.status == 0 && tries < 2 => {
                tries += 1;
                sleep(500 * tries).await;
            }
            other => break other,
        }
    };
    match result {
        Ok(v) => {
            let locale = w.borrow().locale;
            match payment_from(&v, locale) {
                Some(p) => apply(w, p),
                None => fail(
                    w,
                    Retry::Resend,
                    &ApiError {
                        status: 200,
                        code: "upstream_protocol".into(),
                        message: t(locale, Text::Error).into(),
                        retryable: true,
                        follow: false,
                    },
                ),
            }
        }
        // Another payment of the order is under way, or this one's outcome is being checked:
        // the order's current payment is followed ("checking your previous payment…").
        Err(e) if e.code == "payment_in_progress" || e.follow => {
            w.borrow_mut().attempt = None;
            load(w).await
        }
        Err(e) if e.status == 0 || e.retryable => fail(w, Retry::Resend, &e),
        Err(e) => {
            w.borrow_mut().attempt = None;
            if mode == "identifier" && e.status == 422 {
                // About what was typed: shown on the field.
                w.borrow_mut().field_error = Some(e.message.clone());
                emit(w, "cvco-error", &error_detail(&e.code, &e.message));
                render(w, View::Form);
            } else {
                fail(w, Retry::Form, &e);
            }
        }
    }
}

async fn cancel(w: &W) {
    let Some(id) = w.borrow().payment.as_ref().map(|p| p.payment_id.clone()) else {
        return;
    };
    let path = String::from("/payments/") + &id + "/cancel";
    match api(w, "POST", &path, Some(&Object::new())).await {
        Ok(v) => {
            let locale = w.borrow().locale;
            if let Some(p) = payment_from(&v, locale) {
                apply(w, p);
            }
        }
        // Already final (paid a moment ago, expired): the status read tells what happened.
        Err(e) if e.code == "illegal_transition" => {
            poll_once(w).await;
        }
        Err(e) => {
            w.borrow().live.set_text(&e.message);
            emit(w, "cvco-error", &error_detail(&e.code, &e.message));
        }
    }
}

/// The camera scanner (`cvco-scan-lazy.js`) opens its view at the end of the body and resolves to
/// what it read.
async fn scan(w: &W) {
    let (scanner, body, stop) = {
        let i = w.borrow();
        (i.scan.clone(), i.body.clone(), t(i.locale, Text::ScanStop))
    };
    let Some(scanner) = scanner else { return };
    let read = scanner.call2(&JsValue::NULL, &body, &stop.into());
    let raw = JsFuture::from(Promise::from(read)).await.ok();
    if let Some(raw) = raw.and_then(|r| r.as_string()) {
        submit_value(w, raw);
    }
}

/// A status from any source (POST answer, stream, poll, checkout resume).
fn apply(w: &W, p: Payment) {
    let (changed, first) = {
        let i = w.borrow();
        if !logic::is_newer(i.payment.as_ref(), &p) {
            return;
        }
        let same = i.payment.as_ref().filter(|c| c.payment_id == p.payment_id);
        (same.map(|c| c.status) != Some(p.status), same.is_none())
    };
    let view = logic::view_for(&p);
    let follow_now = first && !p.done();
    let mut events: Vec<(&str, Object)> = Vec::new();
    {
        let mut i = w.borrow_mut();
        if changed {
            let detail = payment_detail(&p);
            events.push(("cvco-change", payment_detail(&p)));
            match logic::event_for(p.status) {
                Some("cvco-pending") if !first => {}
                Some("cvco-error") => {
                    let code = p.error_code.clone().unwrap_or_else(|| "failed".into());
                    let message = p
                        .error_message
                        .clone()
                        .unwrap_or_else(|| t(i.locale, Text::Error).into());
                    set(&detail, "code", code.into());
                    set(&detail, "message", message.as_str().into());
                    i.failure = Some(message);
                    events.push(("cvco-error", detail));
                }
                Some(name) => events.push((name, detail)),
                None => {}
            }
        }
        if p.done() {
            i.attempt = None;
            i.follow_gen += 1;
            close_stream(&mut i);
            i.order_remaining = p.order_remaining_cents;
            i.retry = Retry::Form;
            if p.status == Status::Cancelled {
                i.note = Some(t(i.locale, Text::Cancelled).into());
            }
        }
        if first && !p.done() {
            i.stream_opened = false;
            i.stream_unavailable = false;
        }
        i.payment = Some(p);
    }
    render(w, view);
    for (name, detail) in events {
        emit(w, name, &detail);
    }
    if follow_now {
        follow(w);
    }
}

fn close_stream(i: &mut Inner) {
    if let Some(es) = i.es.take() {
        es.close();
    }
    i.es_handlers.clear();
}

/// Follows the payment by push when the stream works, by polling otherwise.
fn follow(w: &W) {
    let (url, gen) = {
        let mut i = w.borrow_mut();
        close_stream(&mut i);
        i.follow_gen += 1;
        let Some(p) = &i.payment else { return };
        let has_es = GLOBAL.with(|g| !get(g, "EventSource").is_undefined());
        let url = if i.stream_unavailable || !has_es || p.events_url.is_empty() {
            None
        } else {
            resolve(&p.events_url, &JsValue::from_str(&i.endpoint))
        };
        (url, i.follow_gen)
    };
    let Some(url) = url else {
        return go(w, Job::Poll(gen));
    };
    let init = Object::new();
    set(&init, "withCredentials", true.into());
    let Ok(es) = EventSource::new(&url, &init) else {
        w.borrow_mut().stream_unavailable = true;
        return follow(w);
    };
    let handlers = vec![
        listen(&es, "status", w, on_status),
        listen(&es, "open", w, |w, _| w.borrow_mut().stream_opened = true),
        listen(&es, "error", w, on_stream_error),
    ];
    let mut i = w.borrow_mut();
    i.es = Some(es);
    i.es_handlers = handlers;
}

fn on_status(w: &W, e: JsValue) {
    let locale = w.borrow().locale;
    if let Some(p) = parse(&get(&e, "data"))
        .ok()
        .and_then(|v| payment_from(&v, locale))
    {
        apply(w, p);
    }
}

fn on_stream_error(w: &W, _e: JsValue) {
    let gen = {
        let mut i = w.borrow_mut();
        if i.dead || i.es.is_none() {
            return;
        }
        // Never opened: this server cannot stream; poll for the rest of this payment.
        if !i.stream_opened {
            i.stream_unavailable = true;
        }
        close_stream(&mut i);
        i.follow_gen += 1;
        i.follow_gen
    };
    go(w, Job::Poll(gen));
}

/// Reads the payment once; `true` when the network answered.
async fn poll_once(w: &W) -> bool {
    let Some(id) = w.borrow().payment.as_ref().map(|p| p.payment_id.clone()) else {
        return true;
    };
    match api(w, "GET", &(String::from("/payments/") + &id), None).await {
        Ok(v) => {
            let locale = w.borrow().locale;
            if let Some(p) = payment_from(&v, locale) {
                apply(w, p);
            }
            true
        }
        Err(e) => e.status != 0 && !e.retryable,
    }
}

async fn poll(w: &W, gen: u32) {
    let mut failures = 0;
    loop {
        sleep(logic::poll_delay_ms(failures)).await;
        {
            let i = w.borrow();
            if i.dead || i.follow_gen != gen {
                return;
            }
        }
        if poll_once(w).await {
            if failures > 0 {
                w.borrow().live.set_text("");
            }
            failures = 0;
            let (done, stale, stream_ok) = {
                let i = w.borrow();
                (
                    i.payment.as_ref().map(|p| p.done()).unwrap_or(true),
                    i.dead || i.follow_gen != gen,
                    !i.stream_unavailable,
                )
            };
            if done || stale {
                return;
            }
            // The network is back and the stream worked before: push again.
            if stream_ok {
                return follow(w);
            }
        } else {
            failures += 1;
            let i = w.borrow();
            i.live.set_text(t(i.locale, Text::Reconnecting));
        }
    }
}

/// The time left, once a second, until the view changes. The timer itself is not live (a screen
/// reader would speak every second): the status region says once that one minute is left.
async fn countdown(w: &W, gen: u32, timer: Element, deadline: i64, label: Text) {
    let mut before = deadline - js_sys::Date::now() as i64;
    loop {
        sleep(1000).await;
        let i = w.borrow();
        if i.dead || i.render_gen != gen {
            return;
        }
        let left = deadline - js_sys::Date::now() as i64;
        if before > 60_000 && left <= 60_000 {
            i.live.set_text(t(i.locale, Text::OneMinute));
        }
        before = left;
        timer.set_text(&time_left(i.locale, label, deadline));
    }
}

fn time_left(l: Locale, label: Text, deadline: i64) -> String {
    fill(
        t(l, label),
        &logic::countdown(deadline - js_sys::Date::now() as i64),
    )
}

/// Rebuilds the body for `view` (one HTML string); the header and the live region stay.
fn render(w: &W, view: View) {
    let mut i = w.borrow_mut();
    if i.dead {
        return;
    }
    // Keep keyboard users where they were: the focus moves to the new view's first control, also
    // across a view with none (sending).
    let had_focus = i.root.matches(":focus-within") || i.focus_next;
    i.render_gen += 1;
    i.view = view;
    let gen = i.render_gen;
    let l = i.locale;
    let mut html = String::new();
    let mut live = String::new();
    let mut countdown_to: Option<(i64, Text)> = None;
    let p = i.payment.as_ref();
    let amount = |f: fn(&Payment) -> u64| money(p.map(f).unwrap_or(0), l);
    match view {
        View::Loading => tag(&mut html, "p", "class=\"cvco-wait\"", t(l, Text::Loading)),
        View::Ineligible => {
            live = join(&[t(l, Text::Ineligible), i.note.as_deref().unwrap_or("")]);
            tag(&mut html, "p", "class=\"cvco-note\"", live.trim());
        }
        View::Form => {
            if let Some(note) = &i.note {
                tag(&mut html, "p", "class=\"cvco-note\"", note);
                live = note.clone();
            }
            if i.mode != "qr" {
                form(&i, &mut html);
            }
            if i.mode != "identifier" && i.qr_allowed {
                button(&mut html, t(l, Text::ShowQr), "qr", "cvco-secondary");
            }
            if let Some(e) = &i.field_error {
                live = e.clone();
            }
        }
        View::Sending => {
            live = t(l, Text::Sending).into();
            tag(&mut html, "p", "class=\"cvco-wait\"", &live);
        }
        View::Waiting if p.map(|p| p.status) == Some(Status::Unknown) => {
            live = t(l, Text::Checking).into();
            tag(&mut html, "p", "class=\"cvco-wait cvco-lead\"", &live);
        }
        View::Waiting => {
            live = fill(t(l, Text::OpenApp), &amount(|p| p.amount_cents));
            tag(&mut html, "p", "class=\"cvco-wait cvco-lead\"", &live);
            countdown_to = p.and_then(|p| p.deadline_ms).map(|d| (d, Text::TimeLeft));
        }
        View::ShowQr => {
            live = fill(t(l, Text::QrTitle), &amount(|p| p.amount_cents));
            tag(&mut html, "p", "class=\"cvco-lead\"", &live);
            html.push_str("<div class=\"cvco-qr\">");
            let svg = p
                .and_then(|p| p.qr_payload.as_deref())
                .and_then(cvco_widget_qr::qr_svg);
            if let Some(rest) = svg.as_deref().and_then(|s| s.strip_prefix("<svg")) {
                html.push_str("<svg aria-label=\"");
                push_escaped(&mut html, &live);
                html.push('"');
                html.push_str(rest);
            }
            html.push_str("</div>");
            countdown_to = p
                .and_then(|p| p.qr_expires_ms.or(p.deadline_ms))
                .map(|d| (d, Text::QrExpires));
        }
        View::Authorized => {
            live = if p.map(|p| p.status) == Some(Status::Refunded) {
                t(l, Text::Refunded).into()
            } else {
                fill(t(l, Text::Paid), &amount(|p| p.authorized_cents))
            };
            tag(&mut html, "p", "class=\"cvco-result cvco-ok\"", &live);
        }
        View::PartiallyAuthorized => {
            let rest = amount(|p| p.order_remaining_cents);
            let a = fill(t(l, Text::PartPaid), &amount(|p| p.authorized_cents));
            let hand_off = p.map_or(Text::RemainingCard, logic::remaining_text);
            let b = fill(t(l, hand_off), &rest);
            tag(&mut html, "p", "class=\"cvco-result cvco-ok\"", &a);
            tag(&mut html, "p", "class=\"cvco-remaining\"", &b);
            live = join(&[&a, &b]);
            if i.chain {
                let label = fill(t(l, Text::ChainRemainder), &rest);
                button(&mut html, &label, "chain", "cvco-primary");
            }
        }
        View::Declined | View::Expired | View::Failed => {
            live = match (view, p) {
                (View::Declined, Some(p)) => t(l, logic::declined_text(p)).into(),
                (View::Expired, _) => t(l, Text::Expired).into(),
                _ => i
                    .failure
                    .clone()
                    .unwrap_or_else(|| t(l, Text::Error).into()),
            };
            tag(
                &mut html,
                "div",
                "class=\"cvco-result cvco-bad\" role=\"alert\"",
                &live,
            );
            button(&mut html, t(l, Text::Retry), "retry", "cvco-primary");
        }
    }
    // The time left belongs with the instruction, before the cancel button.
    if let Some((deadline, label)) = countdown_to {
        tag(
            &mut html,
            "p",
            "class=\"cvco-timer\" role=\"timer\"",
            &time_left(l, label, deadline),
        );
    }
    if matches!(view, View::Waiting | View::ShowQr) {
        button(&mut html, t(l, Text::Cancel), "cancel", "cvco-secondary");
    }
    i.body.set_html(&html);
    i.body.set_attr("data-view", view_name(view));
    i.root.set_attr(
        "class",
        if view == View::Ineligible {
            "cvco cvco-disabled"
        } else {
            "cvco"
        },
    );
    i.live.set_text(&live);
    if let Some((deadline, label)) = countdown_to {
        if let Some(timer) = i.body.find(".cvco-timer") {
            go(w, Job::Countdown(gen, timer, deadline, label));
        }
    }
    if had_focus {
        if let Some(target) = i.body.find("[aria-invalid=true], input, button") {
            target.focus();
            i.focus_next = false;
        } else {
            i.focus_next = true;
        }
    }
    if !i.interactive_marked && matches!(view, View::Form | View::Ineligible) {
        i.interactive_marked = true;
        mark("cvco-interactive");
    }
}

fn form(i: &Inner, html: &mut String) {
    let l = i.locale;
    html.push_str("<form class=\"cvco-form\" novalidate>");
    tag(
        html,
        "label",
        "class=\"cvco-label\" for=\"cvco-id\"",
        t(l, Text::FieldLabel),
    );
    tag(
        html,
        "p",
        "class=\"cvco-hint\" id=\"cvco-hint\"",
        t(l, Text::FieldHint),
    );
    html.push_str(
        "<div class=\"cvco-row\"><input class=\"cvco-input\" id=\"cvco-id\" name=\"beneficiary\" \
         type=\"text\" inputmode=\"email\" autocomplete=\"email\" autocapitalize=\"none\" \
         spellcheck=\"false\" enterkeyhint=\"go\" required aria-describedby=\"cvco-hint",
    );
    if i.field_error.is_some() {
        html.push_str(" cvco-err\" aria-invalid=\"true");
    }
    html.push_str("\" value=\"");
    push_escaped(html, &i.input_value);
    html.push_str("\">");
    if i.scan.is_some() {
        button(html, t(l, Text::Scan), "scan", "cvco-secondary");
    }
    html.push_str("</div>");
    if let Some(e) = &i.field_error {
        tag(html, "p", "class=\"cvco-error\" id=\"cvco-err\"", e);
    }
    tag(
        html,
        "button",
        "class=\"cvco-primary\" type=\"submit\"",
        &fill(t(l, Text::Pay), &money(i.order_remaining, l)),
    );
    html.push_str("</form>");
}

fn view_name(v: View) -> &'static str {
    match v {
        View::Loading => "loading",
        View::Ineligible => "ineligible",
        View::Form => "form",
        View::Sending => "sending",
        View::ShowQr => "qr",
        View::Waiting => "waiting",
        View::Authorized => "authorized",
        View::PartiallyAuthorized => "partially-authorized",
        View::Declined => "declined",
        View::Expired => "expired",
        View::Failed => "failed",
    }
}

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;
