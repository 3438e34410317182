//! `cargo run -p cvco-test-host --bin plugin-bench`: the plugin's size, instantiation and call
//! costs next to the same work done natively. One `name value unit` line per figure (read by
//! `cargo xtask bench`); anything else goes to stderr.

use cvco_core::plugin_api::{
    validate_beneficiary, Reply, ValidateBeneficiaryInput, VerifyNotificationInput,
};
use cvco_core::signature::{self, DEFAULT_TOLERANCE_S};
use cvco_core::Timestamp;
use extism::{Manifest, Plugin, PluginBuilder, Wasm};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

const SECRET: &str = "whsec_bench";
const SHOP: &str = "SHOP-BENCH";

fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..runs / 10 + 1 {
        f();
    }
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn figure(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.2} {unit}");
}

fn main() {
    let wasm = match cvco_test_host::plugin_wasm() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("plugin-bench: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "profile: {}",
        if cfg!(debug_assertions) {
            "dev (debug assertions on)"
        } else {
            "release"
        }
    );
    println!("plugin_wasm_bytes {} B", wasm.len());

    let manifest = Manifest::new([Wasm::data(wasm.to_vec())])
        .with_config_key("notification_secret", SECRET)
        .with_config_key("shop_id", SHOP);
    let start = Instant::now();
    let compiled = PluginBuilder::new(manifest)
        .with_wasi(false)
        .compile()
        .expect("compiling the plugin");
    eprintln!(
        "plugin compile (CompiledPlugin::new, wasmtime cache as configured): {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let instantiate = median_us(50, || {
        black_box(Plugin::new_from_compiled(&compiled).expect("instance"));
    });
    figure("plugin_instantiate_us", instantiate, "us");

    let mut plugin = Plugin::new_from_compiled(&compiled).expect("instance");
    let validate_input = serde_json::to_vec(&ValidateBeneficiaryInput {
        input: "alice.approve@sandbox.cvco.test".into(),
        scanned: false,
    })
    .unwrap();
    let now = Timestamp::parse_rfc3339("2026-11-22T21:49:00Z").unwrap();
    let body = format!(
        r#"{{"id":"evt_bench","type":"transaction.updated","created_at":"2026-11-22T21:49:00.000Z","shop_id":"{SHOP}","merchant_order_id":"CMD-1","transaction_id":"tx_1","state":"VALIDATED","sequence":3}}"#
    );
    let header = signature::sign(SECRET.as_bytes(), now, body.as_bytes());
    let verify_input = serde_json::to_vec(&VerifyNotificationInput {
        headers: BTreeMap::from([
            ("CVCo-Signature".to_string(), header),
            ("CVCo-Event-Id".to_string(), "evt_bench".to_string()),
        ]),
        body,
        now: Some(now.plus_secs(5)),
        tolerance_s: None,
    })
    .unwrap();

    // Sanity: every timed call succeeds, so the timings are of the real work.
    let contract = contract_inputs();
    for (f, input) in [
        ("validate_beneficiary", &validate_input),
        ("verify_notification", &verify_input),
    ]
    .into_iter()
    .chain(contract.iter().map(|(f, i)| (*f, i)))
    {
        let out: Vec<u8> = plugin.call::<&[u8], Vec<u8>>(f, input).expect("call");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("ok").is_some(), "{f}: {v}");
    }

    const RUNS: usize = 2000;
    let mut plugin_call = |f: &str, input: &[u8]| {
        median_us(RUNS, || {
            black_box(plugin.call::<&[u8], Vec<u8>>(f, input).expect("call"));
        })
    };
    let p_validate = plugin_call("validate_beneficiary", &validate_input);
    let p_verify = plugin_call("verify_notification", &verify_input);
    // The contract's exports a Python or TypeScript adapter calls on every request.
    let contract_calls: Vec<(&str, f64)> = contract
        .into_iter()
        .map(|(f, input)| (f, plugin_call(f, &input)))
        .collect();

    // Natively: the same JSON in, core function, JSON reply out.
    let n_validate = median_us(RUNS, || {
        let input: ValidateBeneficiaryInput = serde_json::from_slice(&validate_input).unwrap();
        black_box(serde_json::to_vec(&Reply::from(validate_beneficiary(&input))).unwrap());
    });
    let n_verify = median_us(RUNS, || {
        let input: VerifyNotificationInput = serde_json::from_slice(&verify_input).unwrap();
        let sig = input.headers.get("CVCo-Signature").unwrap();
        let verified = signature::verify(
            SECRET.as_bytes(),
            sig,
            input.body.as_bytes(),
            input.now.unwrap(),
            DEFAULT_TOLERANCE_S,
        );
        black_box(serde_json::to_vec(&Reply::from(verified)).unwrap());
    });

    figure("plugin_call_us_validate_beneficiary", p_validate, "us");
    figure("plugin_call_us_verify_notification", p_verify, "us");
    for (f, us) in contract_calls {
        figure(&format!("plugin_call_us_{f}"), us, "us");
    }
    figure("native_call_us_validate_beneficiary", n_validate, "us");
    figure("native_call_us_verify_notification", n_verify, "us");
    figure(
        "plugin_overhead_ratio_validate_beneficiary",
        p_validate / n_validate,
        "x",
    );
    figure(
        "plugin_overhead_ratio_verify_notification",
        p_verify / n_verify,
        "x",
    );
}

/// One realistic input per contract export: a shopper's body to check, an order's checkout, and
/// the Payment of an authorized transaction to render.
fn contract_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let body = r#"{"order_ref":"CMD-2026-0042","mode":"identifier","beneficiary":"Bruno.Partial@sandbox.cvco.test","attempt":"c0a8f1"}"#;
    let parse = serde_json::json!({"operation": "create_payment", "body": body});
    let checkout = serde_json::json!({"order_ref": "CMD-2026-0042", "order_total_cents": 12000,
                                      "order_remaining_cents": 8500, "modes": ["identifier", "qr"]});
    let payment = serde_json::json!({
        "id": "tx_8f3k2", "order_ref": "CMD-2026-0042", "amount_cents": 12000, "currency": "EUR",
        "channel": "ecommerce", "adjustable": true, "capture_mode": "NORMAL",
        "status": "partially_authorized", "final": true, "authorized_cents": 3500,
        "remaining_cents": 8500, "captured_cents": 3500, "refunded_cents": 0,
        "ancv_state": "VALIDATED", "ancv_label_fr": "Transaction autorisée et encaissée",
        "ancv_label_en": "Transaction authorized and captured",
        "payers": [{"beneficiary": "bruno.partial@sandbox.cvco.test", "amount_cents": 3500,
                    "authorizations": [{"number": "482913", "type": "DEBIT", "amount_cents": 3500,
                                        "validated_at": "2026-11-22T21:50:12.000Z", "holder": "B. Martin"}]}],
        "refunds": [], "created_at": "2026-11-22T21:49:00.000Z", "updated_at": "2026-11-22T21:50:12.000Z",
        "next_action": {"type": "none"}});
    let render = serde_json::json!({
        "payment_id": "pay_01HZX3J8Q1", "order_ref": "CMD-2026-0042", "mode": "identifier",
        "order_total_cents": 12000, "order_remaining_cents": 8500, "sequence": 4,
        "created_at": "2026-11-22T21:49:00.000Z", "updated_at": "2026-11-22T21:50:12.000Z",
        "events_url": "/cvco/v1/payments/pay_01HZX3J8Q1/events",
        "beneficiary_masked": "b***@sandbox.cvco.test", "payment": payment});
    [
        ("parse_request", parse),
        ("checkout", checkout),
        ("render_payment", render),
    ]
    .into_iter()
    .map(|(f, v)| (f, v.to_string().into_bytes()))
    .collect()
}
