//! <cvco-checkout> end to end: the built widget in headless Chromium, on the playground page served
//! by cvco-host (strict CSP) in front of the sandbox, through every outcome a shopper can meet.

use std::time::Duration;

use cvco_browser_tests::{open_playground, serial, Browser, Serial, Stack};
use serde_json::{json, Value};

const ENTER: &str = "\u{E007}";
const SHORT: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(25);

/// Field order is drop order: the browser goes first, then the servers, then the lock.
struct Case {
    b: Browser,
    stack: Stack,
    order: String,
    _serial: Serial,
}

fn case(amount_cents: u64, query: &str) -> Case {
    let serial = serial();
    let t = std::time::Instant::now();
    let stack = Stack::start();
    eprintln!("stack {:?}", t.elapsed());
    let b = Browser::launch();
    eprintln!("browser {:?}", t.elapsed());
    let order = open_playground(&b, &stack, amount_cents, query);
    eprintln!("page {:?}", t.elapsed());
    Case {
        b,
        stack,
        order,
        _serial: serial,
    }
}

impl Case {
    fn pay_with(&self, who: &str) {
        let input = self.b.shadow("input");
        self.b.type_keys(&input, who);
        self.b.click(&self.b.shadow("button[type=submit]"));
    }

    fn event(&self, kind: &str) -> Value {
        self.b
            .events()
            .as_array()
            .and_then(|a| a.iter().rev().find(|e| e["type"] == kind).cloned())
            .unwrap_or_else(|| panic!("no {kind} event in {}", self.b.events()))["detail"]
            .clone()
    }

    fn count(&self, kind: &str) -> usize {
        self.b.event_types().iter().filter(|t| *t == kind).count()
    }

    /// The order as the shop backend knows it, read by the page (the shopper's session).
    fn order_state(&self) -> Value {
        let script = format!(
            "window.__order = null; fetch('/shop/api/orders/{}', {{credentials: 'include'}})\
             .then(r => r.json()).then(o => window.__order = o); return true;",
            self.order
        );
        self.b.exec(&script, json!([]));
        self.b.wait_for("window.__order", SHORT)
    }

    /// The widget's countdown (`<label>m:ss`) says the time left until the payment's own deadline,
    /// as the host answers it, within the second the widget ticks by (no fixed "3:00").
    fn countdown_follows_the_deadline(&self, label: &str) {
        // Read first, at once: the payment may be approved (and the timer gone) soon after.
        let seen = self.b.exec(
            "const t = document.querySelector('cvco-checkout').shadowRoot.querySelector('.cvco-timer');\
             return [t ? t.textContent.replace(/[\\s\\u00a0\\u202f]+/g, ' ').trim() : '', Date.now()];",
            json!([]),
        );
        let text = seen[0].as_str().unwrap_or_default().to_owned();
        let read_at_ms = seen[1].as_f64().expect("Date.now()");
        let payment_id = self.event("cvco-pending")["payment_id"].clone();
        let script = "window.__deadline = null; \
             fetch('/cvco/v1/payments/' + encodeURIComponent(arguments[0]), {credentials: 'include'})\
             .then(r => r.json()).then(p => window.__deadline = p.deadline || null); return true;";
        self.b.exec(script, json!([payment_id]));
        let deadline = self.b.wait_for("window.__deadline", SHORT);
        let deadline_ms = self
            .b
            .exec("return Date.parse(arguments[0]);", json!([deadline]))
            .as_f64()
            .unwrap_or_else(|| panic!("deadline {deadline} is not a date"));
        let shown = text
            .strip_prefix(label)
            .and_then(|clock| clock.split_once(':'))
            .filter(|(_, seconds)| seconds.len() == 2)
            .and_then(|(m, s)| Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?))
            .unwrap_or_else(|| panic!("countdown not `{label}m:ss`: {text:?}"));
        let left = (deadline_ms - read_at_ms) / 1000.0;
        assert!(left > 0.0, "deadline {deadline} already passed");
        assert!(
            (shown - left).abs() <= 3.0,
            "countdown {text:?} vs {left:.1} s left until {deadline}"
        );
    }

    fn no_csp_violation(&self) {
        assert_eq!(self.b.violations(), json!([]), "CSP violations");
    }
}

#[test]
fn full_payment_by_email_under_the_strict_csp() {
    let c = case(4550, "");
    assert_eq!(c.b.view(), "form");
    let text = c.b.widget_text();
    assert!(text.contains("Chèque-Vacances Connect"), "{text}");
    assert!(
        text.contains("Payer 45,50 €"),
        "French by default (page lang): {text}"
    );
    // Page CSS (Comic Sans, red) does not reach the widget's controls.
    let font = c.b.exec(
        "const i = document.querySelector('cvco-checkout').shadowRoot.querySelector('input');\
         return getComputedStyle(i).fontFamily + ' | ' + getComputedStyle(i).color;",
        json!([]),
    );
    assert!(!font.as_str().unwrap().contains("Comic"), "{font}");
    assert!(!font.as_str().unwrap().contains("rgb(204, 0, 0)"), "{font}");
    c.b.screenshot("01-form-fr");

    c.pay_with("alice.approve@sandbox.cvco.test");
    c.b.wait_view("waiting", SHORT);
    let text = c.b.widget_text();
    assert!(text.contains("Ouvrez votre application ANCV"), "{text}");
    c.countdown_follows_the_deadline("Temps restant : ");
    c.b.screenshot("02-waiting-fr");

    c.b.wait_view("authorized", LONG);
    let text = c.b.widget_text();
    assert!(text.contains("Paiement de 45,50 € accepté."), "{text}");
    c.b.screenshot("03-authorized-fr");
    let paid = c.event("cvco-authorized");
    assert_eq!(paid["authorized_cents"], 4550);
    assert_eq!(paid["order_remaining_cents"], 0);
    let types = c.b.event_types();
    assert_eq!(types.first().map(String::as_str), Some("cvco-ready"));
    assert_eq!(c.count("cvco-pending"), 1, "{types:?}");
    assert_eq!(c.count("cvco-authorized"), 1, "{types:?}");
    let live = c.b.exec(
        "return document.querySelector('cvco-checkout').shadowRoot.querySelector('[aria-live]').textContent;",
        json!([]),
    );
    assert!(
        live.as_str().unwrap().contains("accepté"),
        "status announced: {live}"
    );
    let order = c.order_state();
    assert_eq!(order["paid_cvco_cents"], 4550, "{order}");
    c.no_csp_violation();
}

#[test]
fn partial_authorization_hands_off_to_card() {
    let c = case(10000, "locale=en");
    // A hand-held scanner types the Code 128 id then Enter.
    c.b.type_keys(&c.b.shadow("input"), &format!("10000000002{ENTER}"));
    c.b.wait_view("partially-authorized", LONG);
    let text = c.b.widget_text();
    assert!(
        text.contains("€35.00 paid with holiday vouchers."),
        "{text}"
    );
    assert!(
        text.contains("Still to pay: €65.00. Finish the payment by card."),
        "{text}"
    );
    assert!(
        !text.contains("New CVCo payment"),
        "no chaining without the attribute: {text}"
    );
    let d = c.event("cvco-partially-authorized");
    assert_eq!(d["authorized_cents"], 3500);
    assert_eq!(d["remaining_cents"], 6500);
    assert_eq!(d["order_remaining_cents"], 6500);
    // The page acted on the event (card hand-off).
    let card = c.b.exec(
        "return document.getElementById('card').textContent;",
        json!([]),
    );
    assert!(card.as_str().unwrap().contains("6500"), "{card}");
    c.b.screenshot("04-partial-en");
    c.no_csp_violation();
}

#[test]
fn chain_remainder_pays_the_rest_with_a_new_payment() {
    let c = case(10000, "locale=en&chain-remainder");
    c.pay_with("bruno.partial@sandbox.cvco.test");
    c.b.wait_view("partially-authorized", LONG);
    let first = c.event("cvco-partially-authorized")["payment_id"].clone();
    c.b.screenshot("05-chain-offer-en");
    c.b.click(&c.b.shadow("[data-action=chain]"));
    c.b.wait_view("form", SHORT);
    let text = c.b.widget_text();
    assert!(text.contains("Pay €65.00"), "the remainder: {text}");
    c.pay_with("10000000001");
    c.b.wait_view("authorized", LONG);
    let second = c.event("cvco-authorized");
    assert_ne!(second["payment_id"], first, "a new payment");
    assert_eq!(second["authorized_cents"], 6500);
    assert_eq!(second["order_remaining_cents"], 0);
    let order = c.order_state();
    assert_eq!(order["paid_cvco_cents"], 10000, "{order}");
    assert_eq!(order["status"], "paid", "{order}");
}

#[test]
fn declined_then_retry() {
    let c = case(3000, "locale=en");
    c.pay_with("chloe.decline@sandbox.cvco.test");
    c.b.wait_view("declined", LONG);
    let text = c.b.widget_text();
    assert!(text.contains("Payment declined in the app."), "{text}");
    assert_eq!(c.count("cvco-declined"), 1);
    c.b.screenshot("06-declined-en");
    c.b.click(&c.b.shadow("[data-action=retry]"));
    c.b.wait_view("form", SHORT);
    c.pay_with("");
    c.b.wait_view("waiting", SHORT);
}

#[test]
fn expired_with_a_short_authorization_timeout() {
    let serial = serial();
    let stack = Stack::start();
    stack.shop_settings(json!({"authorization_timeout_s": 3}));
    let b = Browser::launch();
    let c = Case {
        order: open_playground(&b, &stack, 2500, "locale=en"),
        b,
        stack,
        _serial: serial,
    };
    c.pay_with("10000000004");
    c.b.wait_view("waiting", SHORT);
    let text = c.b.widget_text();
    assert!(text.contains("Time left: 0:0"), "{text}");
    c.b.wait_view("expired", LONG);
    let text = c.b.widget_text();
    assert!(text.contains("The time to confirm has run out."), "{text}");
    assert_eq!(c.count("cvco-expired"), 1);
    c.b.screenshot("07-expired-en");
    c.b.click(&c.b.shadow("[data-action=retry]"));
    c.b.wait_view("form", SHORT);
}

#[test]
fn cancel_while_waiting() {
    let c = case(2500, "locale=en");
    c.pay_with("jeanne.manual@sandbox.cvco.test");
    c.b.wait_view("waiting", SHORT);
    c.b.click(&c.b.shadow("[data-action=cancel]"));
    c.b.wait_view("form", SHORT);
    let text = c.b.widget_text();
    assert!(text.contains("Payment cancelled."), "{text}");
    let change = c.event("cvco-change");
    assert_eq!(change["status"], "cancelled");
    c.b.screenshot("08-cancelled-en");
    // A new attempt after a cancel is a new payment.
    c.pay_with("");
    c.b.wait_view("waiting", SHORT);
    assert_eq!(c.count("cvco-pending"), 2);
}

#[test]
fn network_drop_while_waiting_resumes_without_a_second_payment() {
    let c = case(5000, "locale=en");
    c.pay_with("10000000006");
    c.b.wait_view("waiting", SHORT);
    let tx = c.stack.pending_transaction("10000000006");
    c.stack.cut_network();
    std::thread::sleep(Duration::from_millis(1500));
    c.stack.confirm(&tx, "10000000006");
    std::thread::sleep(Duration::from_millis(2500));
    // While the network is down the shopper still sees the wait, not a failure.
    assert_eq!(c.b.view(), "waiting");
    c.b.screenshot("09-network-down-en");
    c.stack.restore_network();
    c.b.wait_view("authorized", LONG);
    assert_eq!(c.count("cvco-authorized"), 1);
    assert_eq!(c.count("cvco-pending"), 1);
    let order = c.order_state();
    assert_eq!(
        order["payments"].as_array().map(Vec::len),
        Some(1),
        "{order}"
    );
    assert_eq!(order["paid_cvco_cents"], 5000, "{order}");
}

#[test]
fn stream_unavailable_falls_back_to_polling() {
    let c = case(4000, "locale=en");
    c.b.cdp("Network.enable", json!({}));
    c.b.cdp("Network.setBlockedURLs", json!({"urls": ["*/events*"]}));
    c.pay_with("10000000001");
    c.b.wait_view("authorized", LONG);
    let polls = c.b.exec(
        "return performance.getEntriesByType('resource').map(e => e.name)\
         .filter(n => /\\/payments\\/[^/]+$/.test(n)).length;",
        json!([]),
    );
    assert!(
        polls.as_u64().unwrap() >= 1,
        "status read by polling: {polls}"
    );
    assert_eq!(c.count("cvco-authorized"), 1);
}

#[test]
fn scanner_input_and_field_errors_are_accessible() {
    let c = case(3000, "locale=en");
    let input = c.b.shadow("input");
    let label = c.b.exec(
        "const r = document.querySelector('cvco-checkout').shadowRoot;\
         return r.querySelector('label[for=cvco-id]').textContent;",
        json!([]),
    );
    assert_eq!(label, "E-mail or CV Connect id (11 digits)");
    // Camera scanning only where the browser decodes barcodes itself (not headless Linux Chromium).
    let scan = c.b.exec(
        "return ['BarcodeDetector' in window, !!document.querySelector('cvco-checkout')\
         .shadowRoot.querySelector('[data-action=scan]')];",
        json!([]),
    );
    assert_eq!(scan[0], scan[1], "scan button iff BarcodeDetector: {scan}");
    c.b.type_keys(&input, &format!("1234{ENTER}"));
    c.b.wait_for(
        "document.querySelector('cvco-checkout').shadowRoot.querySelector('#cvco-err')",
        SHORT,
    );
    let aria = c.b.exec(
        "const i = document.querySelector('cvco-checkout').shadowRoot.querySelector('input');\
         return [i.getAttribute('aria-invalid'), i.getAttribute('aria-describedby'),\
                 i.getRootNode().getElementById('cvco-err').textContent,\
                 i.getRootNode().activeElement === i];",
        json!([]),
    );
    assert_eq!(aria[0], "true", "{aria}");
    assert_eq!(aria[1], "cvco-hint cvco-err", "{aria}");
    assert!(aria[2].as_str().unwrap().contains("11 digits"), "{aria}");
    assert_eq!(aria[3], true, "focus stays on the field: {aria}");
    assert_eq!(c.event("cvco-error")["code"], "invalid_beneficiary");
    c.b.screenshot("10-field-error-en");
    // The scanner's framing around the id (AIM prefix) is read like cvco-core reads it.
    let input = c.b.shadow("input");
    c.b.exec("arguments[0].value = '';", json!([input]));
    c.b.type_keys(&input, &format!("]C010000000001{ENTER}"));
    c.b.wait_view("authorized", LONG);
}

#[test]
fn keyboard_only() {
    let c = case(3000, "locale=en");
    // Tab from the page into the widget reaches the field; Enter submits.
    c.b.exec(
        "document.activeElement && document.activeElement.blur();",
        json!([]),
    );
    c.b.keys("\u{E004}");
    let focused = c.b.exec(
        "const w = document.querySelector('cvco-checkout');\
         return document.activeElement === w && w.shadowRoot.activeElement.id;",
        json!([]),
    );
    assert_eq!(focused, "cvco-id");
    c.b.keys("10000000001\u{E007}");
    c.b.wait_view("waiting", SHORT);
    // The focus moved to the new control (cancel) rather than being lost.
    let focused = c.b.exec(
        "return document.querySelector('cvco-checkout').shadowRoot.activeElement?.dataset.action;",
        json!([]),
    );
    assert_eq!(focused, "cancel");
    c.b.wait_view("authorized", LONG);
}

#[test]
fn payment_qr_code_mode() {
    let c = case(6000, "locale=en&mode=qr");
    let text = c.b.widget_text();
    assert!(
        !text.contains("E-mail or CV Connect"),
        "no field in qr mode: {text}"
    );
    c.b.click(&c.b.shadow("[data-action=qr]"));
    c.b.wait_view("qr", SHORT);
    // The encoder module loads on first use, then draws.
    c.b.wait_for(
        "document.querySelector('cvco-checkout').shadowRoot.querySelector('.cvco-qr svg path')",
        SHORT,
    );
    let svg = c.b.exec(
        "const s = document.querySelector('cvco-checkout').shadowRoot.querySelector('.cvco-qr svg');\
         return s && [s.querySelector('path').getAttribute('d').length, s.getBoundingClientRect().width];",
        json!([]),
    );
    assert!(svg[0].as_u64().unwrap() > 500, "{svg}");
    assert!(svg[1].as_f64().unwrap() > 150.0, "{svg}");
    let text = c.b.widget_text();
    assert!(
        text.contains("Scan this QR code with the ANCV app to pay €60.00."),
        "{text}"
    );
    assert!(text.contains("Valid for 1"), "{text}");
    c.b.screenshot("11-qr-en");
    // The beneficiary's app scans the payload the backend created and pays.
    c.b.exec(
        &format!(
            "window.__co = null; fetch('/cvco/v1/checkout?order_ref={}', {{credentials: 'include'}})\
             .then(r => r.json()).then(o => window.__co = o);",
            c.order
        ),
        json!([]),
    );
    let checkout = c.b.wait_for("window.__co", SHORT);
    let payload = checkout["current_payment"]["next_action"]["qr_payload"]
        .as_str()
        .unwrap_or_else(|| panic!("no qr payload: {checkout}"))
        .to_string();
    let tx = c.stack.sandbox(
        "POST",
        "/app/api/pay",
        Some(json!({"beneficiary": "10000000006", "qr_payload": payload})),
    );
    let tx = tx["id"].as_str().expect("transaction id").to_string();
    c.stack.confirm(&tx, "10000000006");
    c.b.wait_view("authorized", LONG);
    assert_eq!(c.event("cvco-authorized")["authorized_cents"], 6000);
    c.no_csp_violation();
}

#[test]
fn below_the_minimum_the_option_says_why() {
    let c = case(1500, "locale=en");
    assert_eq!(c.b.view(), "ineligible");
    let text = c.b.widget_text();
    assert!(text.contains("Not available for this order."), "{text}");
    assert!(c.b.exec(
        "return document.querySelector('cvco-checkout').shadowRoot.querySelectorAll('input, button[type=submit]').length;",
        json!([]),
    ) == 0);
    assert_eq!(c.event("cvco-ready")["eligible"], false);
    c.b.screenshot("12-ineligible-en");
}

#[test]
fn reload_resumes_the_payment_in_progress() {
    let c = case(2500, "locale=en");
    c.pay_with("10000000006");
    c.b.wait_view("waiting", SHORT);
    // Same order, new page: the widget picks the payment up from GET /checkout.
    c.b.goto(&format!(
        "{}/examples/widget-playground/index.html?order_ref={}&locale=en",
        c.stack.base_url, c.order
    ));
    c.b.wait_view("waiting", SHORT);
    let tx = c.stack.pending_transaction("10000000006");
    c.stack.confirm(&tx, "10000000006");
    c.b.wait_view("authorized", LONG);
    let order = c.order_state();
    assert_eq!(
        order["payments"].as_array().map(Vec::len),
        Some(1),
        "{order}"
    );
}

#[test]
fn camera_scan_where_the_browser_has_barcode_detector() {
    let serial = serial();
    let stack = Stack::start();
    let b = Browser::launch();
    // Headless Linux Chromium has no BarcodeDetector: the test supplies the browser's detector
    // (before any page script, outside the page's CSP) answering what the app's Code 128 holds;
    // the camera is Chromium's fake device. Everything of ours is real: button, lazy module,
    // getUserMedia, video, detection loop, cvco-core reading, payment.
    b.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "window.BarcodeDetector = class { \
            static async getSupportedFormats() { return ['code_128', 'qr_code']; } \
            constructor(o) { window.__detectorFormats = o.formats; } \
            async detect(video) { return video.readyState >= 2 ? [{rawValue: ']C010000000001', format: 'code_128'}] : []; } };"}),
    );
    let c = Case {
        order: open_playground(&b, &stack, 2500, "locale=en"),
        b,
        stack,
        _serial: serial,
    };
    c.b.click(&c.b.shadow("[data-action=scan]"));
    c.b.wait_view("waiting", SHORT);
    let formats = c.b.exec("return window.__detectorFormats;", json!([]));
    assert_eq!(formats, json!(["code_128", "qr_code"]));
    let loaded = c.b.exec(
        "return performance.getEntriesByType('resource').some(e => e.name.endsWith('/cvco-scan-lazy.js'));",
        json!([]),
    );
    assert_eq!(loaded, true, "the scanner module loads on demand");
    c.b.wait_view("authorized", LONG);
    assert_eq!(c.event("cvco-authorized")["authorized_cents"], 2500);
}

#[test]
fn js_mount_api_and_theming() {
    let c = case(2500, "locale=en");
    // Theming through custom properties set by the page.
    c.b.exec(
        "document.querySelector('cvco-checkout').style.setProperty('--cvco-color-primary', 'rgb(10, 80, 20)');",
        json!([]),
    );
    let bg = c.b.exec(
        "const b = document.querySelector('cvco-checkout').shadowRoot.querySelector('button[type=submit]');\
         return getComputedStyle(b).backgroundColor;",
        json!([]),
    );
    assert_eq!(bg, "rgb(10, 80, 20)");
    // mount() on any element, with its own options, then destroy().
    c.b.exec(
        &format!(
            "window.__mounted = null; const host = document.createElement('div'); host.id = 'api';\
             document.body.append(host);\
             host.addEventListener('cvco-ready', e => window.__apiReady = e.detail);\
             import('/widget/cvco-checkout.js').then(m => m.mount(host, {{orderRef: '{}', locale: 'fr', mode: 'identifier'}}))\
             .then(h => window.__mounted = h);",
            c.order
        ),
        json!([]),
    );
    let ready = c.b.wait_for("window.__apiReady", SHORT);
    assert_eq!(ready["order_remaining_cents"], 2500);
    let text = c.b.wait_for(
        "window.__mounted && document.getElementById('api').shadowRoot.querySelector('.cvco').innerText",
        SHORT,
    );
    let text = text.as_str().unwrap();
    assert!(text.contains("Payer 25,00"), "{text}");
    assert!(!text.contains("QR"), "mode identifier: {text}");
    c.b.exec("window.__mounted.destroy();", json!([]));
    let left = c.b.exec(
        "return document.getElementById('api').shadowRoot.childNodes.length;",
        json!([]),
    );
    assert_eq!(left, 0);
    c.no_csp_violation();
}

#[test]
fn network_down_at_pay_time_then_retry_is_one_payment() {
    let c = case(2500, "locale=en");
    c.b.type_keys(&c.b.shadow("input"), "10000000006");
    c.stack.cut_network();
    c.b.click(&c.b.shadow("button[type=submit]"));
    c.b.wait_view("failed", LONG);
    let text = c.b.widget_text();
    assert!(text.contains("The server does not answer."), "{text}");
    assert_eq!(c.event("cvco-error")["code"], "network_error");
    c.b.screenshot("13-network-error-en");
    c.stack.restore_network();
    // Retry repeats the same user action (same attempt token).
    c.b.click(&c.b.shadow("[data-action=retry]"));
    c.b.wait_view("waiting", SHORT);
    let tx = c.stack.pending_transaction("10000000006");
    c.stack.confirm(&tx, "10000000006");
    c.b.wait_view("authorized", LONG);
    let order = c.order_state();
    assert_eq!(
        order["payments"].as_array().map(Vec::len),
        Some(1),
        "{order}"
    );
}

impl Case {
    fn set_attr(&self, name: &str, value: &str) {
        self.b.exec(
            "document.querySelector('cvco-checkout').setAttribute(arguments[0], arguments[1]); return true;",
            json!([name, value]),
        );
    }

    /// How many copies of the widget the shadow root holds (0 is the blank widget).
    fn copies(&self) -> u64 {
        self.b
            .exec(
                "return document.querySelector('cvco-checkout').shadowRoot.querySelectorAll('.cvco').length;",
                json!([]),
            )
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits for `needle` in the widget, then gives a late teardown of the old copy time to strike,
    /// and checks that exactly one copy is left, still showing `view` and `needle`.
    fn still_there(&self, needle: &str, view: &str) {
        self.b.wait_for(
            &format!(
                "(() => {{ const r = document.querySelector('cvco-checkout').shadowRoot.querySelector('.cvco');\
                 return r && r.textContent.includes({needle:?}); }})()"
            ),
            SHORT,
        );
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(self.copies(), 1, "one widget, not blank nor doubled");
        assert_eq!(self.b.view(), view);
        let text = self.b.widget_text();
        assert!(text.contains(needle), "{needle:?} in {text}");
    }

    fn pending_ids(&self) -> Vec<Value> {
        self.b
            .events()
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["type"] == "cvco-pending")
                    .map(|e| e["detail"]["payment_id"].clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[test]
fn changing_locale_or_mode_keeps_the_widget_and_follows_the_same_payment() {
    let c = case(2500, "");
    assert_eq!(c.b.view(), "form");
    // The form: language, then mode, each re-renders the widget.
    c.set_attr("locale", "en");
    c.still_there("E-mail or CV Connect id", "form");
    c.set_attr("mode", "identifier");
    c.still_there("E-mail or CV Connect id", "form");
    let qr_buttons = "return document.querySelector('cvco-checkout').shadowRoot.querySelectorAll('[data-action=qr]').length;";
    assert_eq!(
        c.b.exec(qr_buttons, json!([])),
        0,
        "mode=identifier applied"
    );
    // Changes in a row and across tasks, while earlier copies are still mounting or tearing down.
    c.b.exec(
        "const w = document.querySelector('cvco-checkout');\
         w.setAttribute('locale', 'fr');\
         setTimeout(() => w.setAttribute('mode', 'auto'), 0);\
         setTimeout(() => w.setAttribute('locale', 'en'), 1);\
         setTimeout(() => w.setAttribute('locale', 'fr'), 30);\
         return true;",
        json!([]),
    );
    std::thread::sleep(Duration::from_millis(100));
    c.still_there("E-mail ou identifiant CV Connect", "form");
    assert_eq!(c.b.exec(qr_buttons, json!([])), 1, "mode=auto applied");
    c.b.screenshot("13-form-after-switches-fr");

    // Still usable: pay.
    c.pay_with("jeanne.manual@sandbox.cvco.test");
    c.b.wait_view("waiting", SHORT);
    let first = c.event("cvco-pending")["payment_id"].clone();
    assert!(first.is_string(), "{first}");
    // The wait: switch language and mode; the same payment stays followed.
    c.set_attr("locale", "en");
    c.still_there("Open your ANCV", "waiting");
    c.set_attr("mode", "identifier");
    c.still_there("Open your ANCV", "waiting");
    c.b.screenshot("14-waiting-after-switches-en");
    let ids = c.pending_ids();
    assert!(
        ids.iter().all(|id| *id == first),
        "always the same payment: {ids:?}"
    );
    // One transaction at ANCV, not a restarted or second one.
    let pending = c
        .stack
        .sandbox("GET", "/app/api/beneficiaries/10000000006/pending", None);
    assert_eq!(
        pending["transactions"].as_array().map(Vec::len),
        Some(1),
        "{pending}"
    );
    let tx = c.stack.pending_transaction("10000000006");
    c.stack.confirm(&tx, "10000000006");
    c.b.wait_view("authorized", LONG);
    assert_eq!(c.count("cvco-authorized"), 1, "one copy heard the outcome");
    assert_eq!(c.event("cvco-authorized")["payment_id"], first);
    let order = c.order_state();
    assert_eq!(
        order["payments"].as_array().map(Vec::len),
        Some(1),
        "{order}"
    );
    assert_eq!(order["paid_cvco_cents"], 2500, "{order}");
    assert_eq!(c.count("cvco-error"), 0, "{}", c.b.events());
    c.no_csp_violation();
}

/// Pays a fresh order of the playground in `locale` with `who`; `drive` plays the app if needed.
fn failed_payment(
    b: &Browser,
    stack: &Stack,
    locale: &str,
    who: &str,
    drive: impl Fn(&Stack),
    view: &str,
) -> String {
    open_playground(b, stack, 2500, &format!("locale={locale}"));
    b.type_keys(&b.shadow("input"), who);
    b.click(&b.shadow("button[type=submit]"));
    b.wait_view("waiting", SHORT);
    drive(stack);
    b.wait_view(view, LONG);
    let alert = b.exec(
        "return document.querySelector('cvco-checkout').shadowRoot.querySelector('[role=alert]').textContent;",
        json!([]),
    );
    let live = b.exec(
        "return document.querySelector('cvco-checkout').shadowRoot.querySelector('[aria-live]').textContent;",
        json!([]),
    );
    assert_eq!(alert, live, "the reason is announced");
    b.widget_text()
}

#[test]
fn a_refused_or_expired_payment_says_why_in_french_and_english() {
    let _serial = serial();
    let stack = Stack::start();
    stack.shop_settings(json!({"authorization_timeout_s": 5}));
    let b = Browser::launch();
    let nothing = |_: &Stack| {};
    // Three wrong codes in the app lock the account and abort the payment.
    let lock = |s: &Stack| {
        let tx = s.pending_transaction("10000000006");
        assert_eq!(s.confirm_with_pin(&tx, "10000000006", "0000"), 422);
        assert_eq!(s.confirm_with_pin(&tx, "10000000006", "0000"), 422);
        s.confirm_with_pin(&tx, "10000000006", "0000");
    };
    type Drive<'a> = &'a dyn Fn(&Stack);
    let cases: [(&str, Drive, &str, &str, &str, &str); 4] = [
        (
            "chloe.decline@sandbox.cvco.test",
            &nothing,
            "declined",
            "declined_by_beneficiary",
            "Paiement refusé dans l'application.",
            "Payment declined in the app.",
        ),
        (
            "ines.empty@sandbox.cvco.test",
            &nothing,
            "declined",
            "insufficient_balance",
            "Paiement refusé : votre solde de Chèques-Vacances est insuffisant.",
            "Payment refused: your holiday voucher balance is too low.",
        ),
        (
            "10000000006",
            &lock,
            "declined",
            "account_locked",
            "Paiement refusé : votre compte est bloqué après trois codes erronés.",
            "Payment refused: your account is locked after three wrong codes.",
        ),
        (
            "david.silent@sandbox.cvco.test",
            &nothing,
            "expired",
            "",
            "Le délai de validation est dépassé.",
            "The time to confirm has run out.",
        ),
    ];
    for locale in ["fr", "en"] {
        for (who, drive, view, reason, fr, en) in cases {
            let text = failed_payment(&b, &stack, locale, who, drive, view);
            let said = if locale == "fr" { fr } else { en };
            assert!(text.contains(said), "{who} in {locale}: {text}");
            let event = if view == "expired" {
                "cvco-expired"
            } else {
                "cvco-declined"
            };
            let detail = b
                .events()
                .as_array()
                .and_then(|a| a.iter().rev().find(|e| e["type"] == event).cloned())
                .unwrap_or_else(|| panic!("no {event}: {}", b.events()));
            if !reason.is_empty() {
                assert_eq!(detail["detail"]["abort_reason"], reason, "{detail}");
            }
            let name = if reason.is_empty() { view } else { reason };
            b.screenshot(&format!("15-{name}-{locale}"));
            if reason == "account_locked" {
                stack.sandbox("POST", "/app/api/beneficiaries/10000000006/unlock", None);
            }
        }
    }
}

#[test]
fn the_countdown_is_a_timer_that_says_once_when_one_minute_is_left() {
    let serial = serial();
    let stack = Stack::start();
    stack.shop_settings(json!({"authorization_timeout_s": 63}));
    let b = Browser::launch();
    let c = Case {
        order: open_playground(&b, &stack, 2500, "locale=en"),
        b,
        stack,
        _serial: serial,
    };
    c.pay_with("10000000006");
    c.b.wait_view("waiting", SHORT);
    // Record what the status region says from now on.
    c.b.exec(
        "const r = document.querySelector('cvco-checkout').shadowRoot;\
         window.__said = [];\
         new MutationObserver(() => window.__said.push(r.querySelector('[aria-live]').textContent))\
           .observe(r.querySelector('[aria-live]'), {childList: true, characterData: true, subtree: true});\
         return true;",
        json!([]),
    );
    let timer = c.b.exec(
        "const t = document.querySelector('cvco-checkout').shadowRoot.querySelector('.cvco-timer');\
         return {role: t.getAttribute('role'), hidden: !!t.closest('[aria-hidden=true]'),\
                 live: !!t.closest('[aria-live]'), text: t.textContent};",
        json!([]),
    );
    assert_eq!(timer["role"], "timer", "{timer}");
    assert_eq!(
        timer["hidden"], false,
        "not hidden from screen readers: {timer}"
    );
    assert_eq!(timer["live"], false, "not spoken every second: {timer}");
    c.b.wait_for(
        "(window.__said || []).includes('One minute left to confirm.')",
        SHORT,
    );
    c.b.screenshot("16-one-minute-left-en");
    // Some seconds later the timer has moved on, the status region said nothing more.
    std::thread::sleep(Duration::from_millis(2500));
    let after = c.b.exec(
        "return [window.__said, document.querySelector('cvco-checkout').shadowRoot.querySelector('.cvco-timer').textContent];",
        json!([]),
    );
    assert_eq!(after[0], json!(["One minute left to confirm."]), "{after}");
    assert_ne!(after[1], timer["text"], "the timer ticks: {after}");
    assert!(
        after[1]
            .as_str()
            .unwrap_or_default()
            .starts_with("Time left: 0:5"),
        "{after}"
    );
}

#[test]
fn storefront_offers_card_and_retry_only_after_a_failed_payment() {
    let _serial = serial();
    let stack = Stack::start();
    let b = Browser::launch();
    b.goto(&format!(
        "{}/examples/storefront/index.html",
        stack.base_url
    ));
    b.exec(
        "window.__ref = null; fetch('/shop/api/test-orders', {method: 'POST', credentials: 'include',\
           headers: {'content-type': 'application/json'}, body: JSON.stringify({amount_cents: 2500})})\
         .then(r => r.json()).then(o => window.__ref = o.order_ref); return true;",
        json!([]),
    );
    let order = b.wait_for("window.__ref", SHORT);
    b.goto(&format!(
        "{}/orders/{}",
        stack.base_url,
        order.as_str().expect("order_ref")
    ));
    b.wait_view("form", LONG);
    let offered = "(() => { const v = (s) => { const e = document.querySelector(s); return !!e && !e.closest('[hidden]'); };\
         return [v('#cvco-actions'), v('#cvco-outcome'), document.querySelector('#cvco-outcome').textContent]; })()";
    let retype = |who: &str| {
        b.exec(
            "const i = document.querySelector('cvco-checkout').shadowRoot.querySelector('input');\
             i.value = ''; return true;",
            json!([]),
        );
        b.type_keys(&b.shadow("input"), &format!("{who}{ENTER}"));
    };
    // A typo, then an address ANCV does not know: errors of the field, no card or retry offer.
    for who in ["not-an-address", "nobody.known@example.org"] {
        retype(who);
        b.wait_for(
            "document.querySelector('cvco-checkout').shadowRoot.querySelector('input[aria-invalid=true]')",
            SHORT,
        );
        std::thread::sleep(Duration::from_millis(300));
        let seen = b.exec(&format!("return {offered};"), json!([]));
        assert_eq!(seen, json!([false, false, ""]), "{who}: {seen}");
    }
    // A refused payment: the reason, one retry (the widget's) and the card.
    retype("ines.empty@sandbox.cvco.test");
    b.wait_view("declined", LONG);
    b.wait_for(&format!("{offered}[0]"), SHORT);
    let buttons = b.exec(
        "const r = document.querySelector('cvco-checkout').shadowRoot;\
         const page = [...document.querySelectorAll('#cvco-actions button')].filter(x => !x.closest('[hidden]'));\
         return [r.querySelectorAll('[data-action=retry]').length, page.map(x => x.id)];",
        json!([]),
    );
    assert_eq!(buttons, json!([1, ["cvco-to-card"]]), "{buttons}");
    let text = b.widget_text();
    assert!(
        text.contains("solde de Chèques-Vacances est insuffisant"),
        "{text}"
    );
    b.screenshot("17-storefront-declined-empty-balance");
    // Trying again takes the decline note and the offer away.
    b.click(&b.shadow("[data-action=retry]"));
    b.wait_view("form", SHORT);
    let seen = b.exec(&format!("return {offered};"), json!([]));
    assert_eq!(seen, json!([false, false, ""]), "after retry: {seen}");
}
