//! The browser half: DOM inside the element's shadow root, the §1 endpoints over fetch, status by
//! EventSource with a polling fallback. One listener per event type on the container (delegation
//! through `data-action`), so re-rendering never leaks closures.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    Element, Event, EventSource, EventSourceInit, HtmlElement, HtmlInputElement, MessageEvent,
    RequestCredentials, RequestInit, Response,
};

use crate::logic::{self, fill, join, money, t, Locale, Payment, Status, Text, View};

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
    emit: Function,
    scan: Option<Function>,
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
    es_handlers: Vec<Closure<dyn FnMut(Event)>>,
    stream_opened: bool,
    stream_unavailable: bool,
    interactive_marked: bool,
    focus_next: bool,
    dead: bool,
    _listeners: Vec<Closure<dyn FnMut(Event)>>,
}

type W = Rc<RefCell<Inner>>;

/// What `mount` returns to JS: `destroy()` stops timers and the stream.
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
        w.root.set_inner_html("");
    }
}

fn window() -> web_sys::Window {
    web_sys::window().unwrap_throw()
}

fn el(tag: &str, class: &str) -> Element {
    let e = window()
        .document()
        .unwrap_throw()
        .create_element(tag)
        .unwrap_throw();
    if !class.is_empty() {
        e.set_class_name(class);
    }
    e
}

fn text(tag: &str, class: &str, content: &str) -> Element {
    let e = el(tag, class);
    e.set_text_content(Some(content));
    e
}

fn attr(e: &Element, name: &str, value: &str) {
    let _ = e.set_attribute(name, value);
}

fn add(parent: &Element, child: &Element) {
    let _ = parent.append_child(child);
}

fn button(label: &str, action: &str, class: &str) -> Element {
    let b = text("button", class, label);
    attr(&b, "type", "button");
    attr(&b, "data-action", action);
    b
}

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
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
    let _ = Reflect::set(o, &JsValue::from_str(key), &value);
}

fn payment_from(v: &JsValue, locale: Locale) -> Option<Payment> {
    if !v.is_object() {
        return None;
    }
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

/// A failed call: `status` 0 when the network failed before any answer.
struct ApiError {
    status: u16,
    code: String,
    message: String,
    retryable: bool,
}

async fn api(w: &W, method: &str, path: &str, body: Option<&Object>) -> Result<JsValue, ApiError> {
    let (url, locale) = {
        let w = w.borrow();
        (w.endpoint.clone() + path, w.locale)
    };
    let network = || ApiError {
        status: 0,
        code: "network_error".into(),
        message: t(locale, Text::NetworkError).into(),
        retryable: true,
    };
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::Include);
    let headers = Object::new();
    set(&headers, "accept", "application/json".into());
    if let Some(body) = body {
        set(&headers, "content-type", "application/json".into());
        init.set_body(&JSON::stringify(body).map_err(|_| network())?.into());
    }
    init.set_headers(&headers);
    let resp: Response = JsFuture::from(window().fetch_with_str_and_init(&url, &init))
        .await
        .map_err(|_| network())?
        .unchecked_into();
    let json = match resp.json() {
        Ok(p) => JsFuture::from(p).await.unwrap_or(JsValue::NULL),
        Err(_) => JsValue::NULL,
    };
    if resp.ok() {
        return Ok(json);
    }
    let status = resp.status();
    Err(ApiError {
        status,
        code: get_str(&json, "code").unwrap_or_else(|| "http_error".into()),
        message: get_str(&json, message_key(locale))
            .unwrap_or_else(|| t(locale, Text::Error).into()),
        retryable: get(&json, "retryable").as_bool().unwrap_or(status >= 500),
    })
}

async fn sleep(ms: u32) {
    let p = Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = JsFuture::from(p).await;
}

/// Dispatches on the element with no borrow held: a page listener may call back (e.g. remove the
/// element, which destroys the widget).
fn emit(w: &W, name: &str, detail: &Object) {
    let f = w.borrow().emit.clone();
    let _ = f.call2(&JsValue::NULL, &name.into(), detail);
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
        Status::Refunded => "refunded",
        Status::Failed => "failed",
    }
}

/// Mounts the widget in `root` (a container in the element's shadow root). `emit(name, detail)`
/// dispatches the element's events; `scan(container)` (only when the browser has
/// BarcodeDetector) resolves to the raw value of a scanned code.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn mount(
    root: Element,
    endpoint: &str,
    order_ref: &str,
    locale: &str,
    mode: &str,
    chain: bool,
    emit: Function,
    scan: JsValue,
) -> Handle {
    let doc = window().document().unwrap_throw();
    let base = doc.base_uri().ok().flatten().unwrap_or_default();
    let endpoint = web_sys::Url::new_with_base(endpoint, &base)
        .map(|u| u.href())
        .unwrap_or_else(|_| endpoint.to_string());
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let locale = Locale::from_tag(locale);
    root.set_inner_html("");
    attr(&root, "lang", locale.tag());
    let head = el("div", "cvco-head");
    let logo = el("span", "cvco-logo");
    logo.set_inner_html(logic::LOGO_SVG);
    add(&head, &logo);
    let titles = el("div", "cvco-titles");
    add(&titles, &text("p", "cvco-name", t(locale, Text::Name)));
    add(
        &titles,
        &text("p", "cvco-explain", t(locale, Text::Explain)),
    );
    add(&head, &titles);
    add(&root, &head);
    let body = el("div", "cvco-body");
    add(&root, &body);
    let live = el("p", "cvco-live");
    attr(&live, "role", "status");
    attr(&live, "aria-live", "polite");
    add(&root, &live);
    let mode = match mode {
        "identifier" | "qr" => mode,
        _ => "auto",
    };
    let w: W = Rc::new(RefCell::new(Inner {
        root: root.clone(),
        body,
        live,
        emit,
        scan: scan.dyn_into::<Function>().ok(),
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
    let listeners = vec![
        listen(&root, "click", &w, on_click),
        listen(&root, "submit", &w, on_submit),
        listen(&root, "input", &w, on_input),
    ];
    w.borrow_mut()._listeners = listeners;
    render(&w, View::Loading);
    let w2 = w.clone();
    spawn_local(async move { load(&w2).await });
    Handle(w)
}

fn listen(root: &Element, name: &str, w: &W, f: fn(&W, Event)) -> Closure<dyn FnMut(Event)> {
    let w = Rc::downgrade(w);
    let c = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
        if let Some(w) = w.upgrade() {
            f(&w, e)
        }
    });
    let _ = root.add_event_listener_with_callback(name, c.as_ref().unchecked_ref());
    c
}

fn on_click(w: &W, e: Event) {
    let Some(target) = e.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
        return;
    };
    let Some(action) = target
        .closest("[data-action]")
        .ok()
        .flatten()
        .and_then(|b| b.get_attribute("data-action"))
    else {
        return;
    };
    let w = w.clone();
    match action.as_str() {
        "qr" => {
            w.borrow_mut().attempt = None;
            spawn_local(async move { create(&w, "qr", None).await });
        }
        "cancel" => spawn_local(async move { cancel(&w).await }),
        "scan" => spawn_local(async move { scan(&w).await }),
        "chain" => {
            let remaining = w.borrow().payment.as_ref().map(|p| p.order_remaining_cents);
            {
                let mut i = w.borrow_mut();
                i.order_remaining = remaining.unwrap_or(i.order_remaining);
                i.payment = None;
                i.attempt = None;
                i.note = None;
                i.input_value.clear();
            }
            render(&w, View::Form);
        }
        "retry" => {
            let retry = w.borrow().retry;
            match retry {
                Retry::Load => spawn_local(async move { load(&w).await }),
                Retry::Resend => {
                    let last = w.borrow().last_request.clone();
                    if let Some((mode, who)) = last {
                        spawn_local(async move { create(&w, &mode, who).await });
                    }
                }
                Retry::Form => {
                    {
                        let mut i = w.borrow_mut();
                        i.payment = None;
                        i.attempt = None;
                        i.note = None;
                    }
                    render(&w, View::Form);
                }
            }
        }
        _ => {}
    }
}

fn input_of(w: &Inner) -> Option<HtmlInputElement> {
    w.body
        .query_selector("input")
        .ok()
        .flatten()
        .and_then(|i| i.dyn_into().ok())
}

/// Enter in the field (a person or a hand-held scanner) submits the form.
fn on_submit(w: &W, e: Event) {
    e.prevent_default();
    let value = match input_of(&w.borrow()) {
        Some(i) => i.value(),
        None => return,
    };
    submit_value(w, value);
}

fn submit_value(w: &W, value: String) {
    let locale = w.borrow().locale;
    w.borrow_mut().input_value = value.clone();
    match logic::read_beneficiary(&value, locale) {
        Ok(id) => {
            {
                let mut i = w.borrow_mut();
                i.field_error = None;
                i.attempt = None;
            }
            let w = w.clone();
            spawn_local(async move { create(&w, "identifier", Some(id)).await });
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
fn on_input(w: &W, _e: Event) {
    let i = w.borrow();
    if let Some(input) = input_of(&i) {
        if input.get_attribute("aria-invalid").as_deref() == Some("true") {
            let _ = input.remove_attribute("aria-invalid");
        }
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
            let qr_offered = modes
                .dyn_ref::<js_sys::Array>()
                .is_some_and(|m| m.includes(&"qr".into(), 0));
            {
                let mut i = w.borrow_mut();
                i.order_remaining = get_cents(&c, "order_remaining_cents");
                i.qr_allowed = qr_offered;
                i.note = if eligible {
                    None
                } else {
                    get_str(&get(&c, "ineligible_reason"), message_key(locale))
                };
            }
            let ready = Object::new();
            set(&ready, "eligible", eligible.into());
            set(
                &ready,
                "order_remaining_cents",
                (get_cents(&c, "order_remaining_cents") as f64).into(),
            );
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
        i.last_request = Some((mode.to_string(), beneficiary.clone()));
        i.note = None;
        set(&body, "order_ref", i.order_ref.as_str().into());
        set(&body, "mode", mode.into());
        if let Some(b) = &beneficiary {
            set(&body, "beneficiary", b.as_str().into());
        }
        set(&body, "attempt", attempt.into());
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
                    },
                ),
            }
        }
        Err(e) if e.code == "payment_in_progress" => {
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
    let path = ["/payments/", &id, "/cancel"].concat();
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
            w.borrow().live.set_text_content(Some(&e.message));
            emit(w, "cvco-error", &error_detail(&e.code, &e.message));
        }
    }
}

async fn scan(w: &W) {
    let (scanner, body) = {
        let i = w.borrow();
        (i.scan.clone(), i.body.clone())
    };
    let Some(scanner) = scanner else { return };
    let area = el("div", "cvco-camera");
    add(&body, &area);
    let stop = t(w.borrow().locale, Text::ScanStop);
    let raw = match scanner.call2(&JsValue::NULL, &area, &stop.into()) {
        Ok(p) => JsFuture::from(Promise::from(p)).await.ok(),
        Err(_) => None,
    };
    area.remove();
    if let Some(raw) = raw.and_then(|r| r.as_string()) {
        if let Some(input) = input_of(&w.borrow()) {
            input.set_value(&raw);
        }
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
        i.payment = Some(p.clone());
    }
    render(w, view);
    for (name, detail) in events {
        emit(w, name, &detail);
    }
    if !p.done() && first {
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
        let has_es = Reflect::has(&window(), &"EventSource".into()).unwrap_or(false);
        if i.stream_unavailable || !has_es || p.events_url.is_empty() {
            (None, i.follow_gen)
        } else {
            let url = web_sys::Url::new_with_base(&p.events_url, &i.endpoint)
                .map(|u| u.href())
                .ok();
            (url, i.follow_gen)
        }
    };
    let Some(url) = url else {
        let w = w.clone();
        spawn_local(async move { poll(&w, gen).await });
        return;
    };
    let init = EventSourceInit::new();
    init.set_with_credentials(true);
    let Ok(es) = EventSource::new_with_event_source_init_dict(&url, &init) else {
        w.borrow_mut().stream_unavailable = true;
        return follow(w);
    };
    let weak = Rc::downgrade(w);
    let on_status = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
        let Some(w) = weak.upgrade() else { return };
        let Some(data) = e
            .dyn_ref::<MessageEvent>()
            .and_then(|m| m.data().as_string())
        else {
            return;
        };
        let locale = w.borrow().locale;
        if let Some(p) = JSON::parse(&data)
            .ok()
            .and_then(|v| payment_from(&v, locale))
        {
            apply(&w, p);
        }
    });
    let weak = Rc::downgrade(w);
    let on_open = Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
        if let Some(w) = weak.upgrade() {
            w.borrow_mut().stream_opened = true;
        }
    });
    let weak = Rc::downgrade(w);
    let on_error = Closure::<dyn FnMut(Event)>::new(move |_e: Event| {
        let Some(w) = weak.upgrade() else { return };
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
        let w2 = w.clone();
        spawn_local(async move { poll(&w2, gen).await });
    });
    let _ = es.add_event_listener_with_callback("status", on_status.as_ref().unchecked_ref());
    let _ = es.add_event_listener_with_callback("open", on_open.as_ref().unchecked_ref());
    let _ = es.add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref());
    let mut i = w.borrow_mut();
    i.es = Some(es);
    i.es_handlers = vec![on_status, on_open, on_error];
}

/// Reads the payment once; `true` when the network answered.
async fn poll_once(w: &W) -> bool {
    let Some(id) = w.borrow().payment.as_ref().map(|p| p.payment_id.clone()) else {
        return true;
    };
    let path = ["/payments/", &id].concat();
    match api(w, "GET", &path, None).await {
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
                let i = w.borrow();
                i.live.set_text_content(Some(""));
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
            i.live
                .set_text_content(Some(t(i.locale, Text::Reconnecting)));
        }
    }
}

/// Rebuilds the body for `view`; the header and the live region stay.
fn render(w: &W, view: View) {
    let mut i = w.borrow_mut();
    if i.dead {
        return;
    }
    // Keep keyboard users where they were: the focus moves to the new view's first control, also
    // across a view with none (sending).
    let had_focus = focus_inside(&i.root) || i.focus_next;
    i.render_gen += 1;
    i.view = view;
    let gen = i.render_gen;
    let l = i.locale;
    let body = i.body.clone();
    body.set_inner_html("");
    attr(&body, "data-view", view_name(view));
    let _ = i
        .root
        .class_list()
        .toggle_with_force("cvco-disabled", view == View::Ineligible);
    let mut live = String::new();
    let mut countdown_to: Option<(i64, Text)> = None;
    let p = i.payment.clone();
    let pay = |p: &Option<Payment>, f: fn(&Payment) -> u64| p.as_ref().map(f).unwrap_or(0);
    match view {
        View::Loading => {
            add(&body, &text("p", "cvco-wait", t(l, Text::Loading)));
        }
        View::Ineligible => {
            let reason = i.note.clone().unwrap_or_default();
            live = join(&[t(l, Text::Ineligible), &reason]);
            add(&body, &text("p", "cvco-note", live.trim()));
        }
        View::Form => {
            if let Some(note) = &i.note {
                add(&body, &text("p", "cvco-note", note));
                live = note.clone();
            }
            if i.mode != "qr" {
                render_form(&i, &body);
            }
            if i.mode != "identifier" && i.qr_allowed {
                add(&body, &button(t(l, Text::ShowQr), "qr", "cvco-secondary"));
            }
            if let Some(e) = &i.field_error {
                live = e.clone();
            }
        }
        View::Sending => {
            live = t(l, Text::Sending).into();
            add(&body, &text("p", "cvco-wait", &live));
        }
        View::Waiting => {
            let amount = money(pay(&p, |p| p.amount_cents), l);
            live = fill(t(l, Text::OpenApp), &amount);
            add(&body, &text("p", "cvco-wait cvco-lead", &live));
            if let Some(d) = p.as_ref().and_then(|p| p.deadline_ms) {
                countdown_to = Some((d, Text::TimeLeft));
            }
            add(
                &body,
                &button(t(l, Text::Cancel), "cancel", "cvco-secondary"),
            );
        }
        View::ShowQr => {
            let amount = money(pay(&p, |p| p.amount_cents), l);
            live = fill(t(l, Text::QrTitle), &amount);
            add(&body, &text("p", "cvco-lead", &live));
            let qr = el("div", "cvco-qr");
            if let Some(svg) = p
                .as_ref()
                .and_then(|p| p.qr_payload.as_deref())
                .and_then(cvco_widget_qr::qr_svg)
            {
                qr.set_inner_html(&svg);
                if let Some(s) = qr.first_element_child() {
                    attr(&s, "aria-label", &live);
                }
            }
            add(&body, &qr);
            if let Some(d) = p.as_ref().and_then(|p| p.qr_expires_ms.or(p.deadline_ms)) {
                countdown_to = Some((d, Text::QrExpires));
            }
            add(
                &body,
                &button(t(l, Text::Cancel), "cancel", "cvco-secondary"),
            );
        }
        View::Authorized => {
            let paid = money(pay(&p, |p| p.authorized_cents), l);
            live = if p.as_ref().map(|p| p.status) == Some(Status::Refunded) {
                t(l, Text::Refunded).into()
            } else {
                fill(t(l, Text::Paid), &paid)
            };
            add(&body, &text("p", "cvco-result cvco-ok", &live));
        }
        View::PartiallyAuthorized => {
            let paid = money(pay(&p, |p| p.authorized_cents), l);
            let rest = money(pay(&p, |p| p.order_remaining_cents), l);
            let a = fill(t(l, Text::PartPaid), &paid);
            let b = fill(t(l, Text::RemainingCard), &rest);
            add(&body, &text("p", "cvco-result cvco-ok", &a));
            add(&body, &text("p", "cvco-remaining", &b));
            live = join(&[&a, &b]);
            if i.chain {
                add(
                    &body,
                    &button(
                        &fill(t(l, Text::ChainRemainder), &rest),
                        "chain",
                        "cvco-primary",
                    ),
                );
            }
        }
        View::Declined | View::Expired | View::Failed => {
            let msg = match view {
                View::Declined => t(l, Text::Declined).to_string(),
                View::Expired => t(l, Text::Expired).to_string(),
                _ => i
                    .failure
                    .clone()
                    .unwrap_or_else(|| t(l, Text::Error).into()),
            };
            let box_ = el("div", "cvco-result cvco-bad");
            attr(&box_, "role", "alert");
            box_.set_text_content(Some(&msg));
            add(&body, &box_);
            live = msg;
            add(&body, &button(t(l, Text::Retry), "retry", "cvco-primary"));
        }
    }
    i.live.set_text_content(Some(&live));
    if let Some((deadline, label)) = countdown_to {
        let timer = el("p", "cvco-timer");
        attr(&timer, "aria-hidden", "true");
        timer.set_text_content(Some(&fill(
            t(l, label),
            &logic::countdown(deadline - js_sys::Date::now() as i64),
        )));
        // Before the cancel button: the time left belongs with the instruction.
        let cancel = body.query_selector("[data-action=cancel]").ok().flatten();
        let _ = body.insert_before(&timer, cancel.as_ref().map(|c| c.unchecked_ref()));
        let w = w.clone();
        spawn_local(async move {
            loop {
                sleep(1000).await;
                {
                    let i = w.borrow();
                    if i.dead || i.render_gen != gen {
                        return;
                    }
                }
                let left = deadline - js_sys::Date::now() as i64;
                timer.set_text_content(Some(&fill(t(l, label), &logic::countdown(left))));
            }
        });
    }
    if had_focus {
        if let Some(target) = body
            .query_selector("[aria-invalid=true], input, button")
            .ok()
            .flatten()
            .and_then(|e| e.dyn_into::<HtmlElement>().ok())
        {
            let _ = target.focus();
            i.focus_next = false;
        } else {
            i.focus_next = true;
        }
    }
    if !i.interactive_marked && matches!(view, View::Form | View::Ineligible) {
        i.interactive_marked = true;
        if let Some(perf) = window().performance() {
            let _ = perf.mark("cvco-interactive");
        }
    }
}

fn render_form(i: &Inner, body: &Element) {
    let l = i.locale;
    let form = el("form", "cvco-form");
    attr(&form, "novalidate", "");
    let label = text("label", "cvco-label", t(l, Text::FieldLabel));
    attr(&label, "for", "cvco-id");
    add(&form, &label);
    let hint = text("p", "cvco-hint", t(l, Text::FieldHint));
    attr(&hint, "id", "cvco-hint");
    add(&form, &hint);
    let row = el("div", "cvco-row");
    let input = el("input", "cvco-input");
    for (k, v) in [
        ("id", "cvco-id"),
        ("name", "beneficiary"),
        ("type", "text"),
        ("inputmode", "email"),
        ("autocomplete", "email"),
        ("autocapitalize", "none"),
        ("spellcheck", "false"),
        ("enterkeyhint", "go"),
        ("required", ""),
    ] {
        attr(&input, k, v);
    }
    if let Some(input) = input.dyn_ref::<HtmlInputElement>() {
        input.set_value(&i.input_value);
    }
    add(&row, &input);
    if i.scan.is_some() {
        add(&row, &button(t(l, Text::Scan), "scan", "cvco-secondary"));
    }
    add(&form, &row);
    let mut described = String::from("cvco-hint");
    if let Some(e) = &i.field_error {
        let err = text("p", "cvco-error", e);
        attr(&err, "id", "cvco-err");
        add(&form, &err);
        attr(&input, "aria-invalid", "true");
        described.push_str(" cvco-err");
    }
    attr(&input, "aria-describedby", &described);
    let submit = text(
        "button",
        "cvco-primary",
        &fill(t(l, Text::Pay), &money(i.order_remaining, l)),
    );
    attr(&submit, "type", "submit");
    add(&form, &submit);
    add(body, &form);
}

fn focus_inside(root: &Element) -> bool {
    let node = root.get_root_node();
    let active = get(&node, "activeElement");
    match active.dyn_into::<web_sys::Node>() {
        Ok(n) => root.contains(Some(&n)),
        Err(_) => false,
    }
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
