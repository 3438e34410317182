//! `cvco_plugin.wasm`: the CVCo acquisition protocol as an Extism plugin, so booking software and
//! shop backends in any language accept Chèque-Vacances Connect without writing protocol code.
//!
//! A thin shell: domain rules live in `cvco-core`, the JSON contract in
//! `cvco_core::plugin_api`. Build with
//! `cargo build -p cvco-plugin --target wasm32-unknown-unknown --profile wasm`.

mod client;
mod config;
#[cfg(target_arch = "wasm32")]
mod exports;
mod host;
mod ops;
mod util;

/// The seam between the protocol code and Extism: `exports.rs` implements [`Host`] with the PDK;
/// natively the same [`dispatch`] runs under unit tests.
pub use host::{Host, Request, Response};
pub use ops::dispatch;

#[cfg(test)]
mod tests {
    use crate::host::{Host, Request, Response};
    use cvco_core::CvcoError;
    use std::collections::HashMap;

    /// Offline host: configuration only; any HTTP attempt fails the test.
    #[derive(Default)]
    struct Offline(HashMap<String, String>);

    impl Host for Offline {
        fn config(&self, key: &str) -> Result<Option<String>, CvcoError> {
            Ok(self.0.get(key).cloned())
        }
        fn var(&self, _: &str) -> Option<Vec<u8>> {
            None
        }
        fn set_var(&mut self, _: &str, _: &[u8]) {}
        fn remove_var(&mut self, _: &str) {}
        fn http(&mut self, r: &Request) -> Result<Response, CvcoError> {
            panic!("unexpected HTTP call to {}", r.url)
        }
    }

    fn call(host: &mut Offline, f: &str, input: &str) -> serde_json::Value {
        serde_json::from_slice(&crate::ops::dispatch(host, f, input.as_bytes())).unwrap()
    }

    #[test]
    fn offline_exports_and_input_errors() {
        let mut h = Offline::default();
        let caps = call(&mut h, "capabilities", "");
        let functions = caps["ok"]["functions"].as_array().unwrap();
        assert_eq!(functions.len(), cvco_core::plugin_api::FUNCTIONS.len());
        // Every advertised export is dispatched (none falls through to "unknown function").
        for f in functions {
            let answer = call(&mut h, f.as_str().unwrap(), "{}");
            assert_ne!(answer["error"]["code"], "not_found", "{f}");
        }
        let v = call(&mut h, "validate_beneficiary", r#"{"input":"10000000001"}"#);
        assert_eq!(v["ok"]["kind"], "cv_connect_id");
        let e = call(&mut h, "create_payment", "not json");
        assert_eq!(e["error"]["code"], "invalid_request");
        let e = call(
            &mut h,
            "create_payment",
            r#"{"order_ref":"A","amount_cents":5000,"channel":"ecommerce"}"#,
        );
        assert_eq!(e["error"]["field"], "idempotency_key");
        let e = call(
            &mut h,
            "create_payment",
            r#"{"order_ref":"A","amount_cents":5000,"channel":"ecommerce","idempotency_key":"k"}"#,
        );
        assert_eq!(e["error"]["code"], "config_missing");
        assert_eq!(e["error"]["field"], "api_base_url");
        let e = call(&mut h, "nope", "{}");
        assert_eq!(e["error"]["code"], "not_found");
    }

    #[test]
    fn config_errors_name_the_key() {
        let mut h = Offline::default();
        for (k, v) in [
            ("api_base_url", "http://127.0.0.1:9"),
            ("shop_id", "SHOP-1"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("min_amount_cents", "abc"),
        ] {
            h.0.insert(k.into(), v.into());
        }
        let input =
            r#"{"order_ref":"A","amount_cents":5000,"channel":"ecommerce","idempotency_key":"k"}"#;
        let e = call(&mut h, "create_payment", input);
        assert_eq!(e["error"]["code"], "config_invalid");
        assert_eq!(e["error"]["field"], "min_amount_cents");
        h.0.insert("min_amount_cents".into(), "6000".into());
        let e = call(&mut h, "create_payment", input);
        assert_eq!(e["error"]["code"], "amount_below_minimum");
    }

    #[test]
    fn only_the_remainder_of_an_order_with_an_authorized_cvco_payment_gets_its_lower_minimum() {
        let mut h = Offline::default();
        for (k, v) in [
            ("api_base_url", "http://127.0.0.1:9"),
            ("shop_id", "SHOP-1"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("remainder_min_cents", "2500"),
        ] {
            h.0.insert(k.into(), v.into());
        }
        let create = |order: &str| {
            format!(
                r#"{{"order_ref":"A","amount_cents":1000,"channel":"proximity",
                "idempotency_key":"k","beneficiary":"10000000001"{order}}}"#
            )
        };
        let chained = r#","order":{"remaining_cents":1000,"cvco_authorized":true}"#;
        // Above the minimum amount is no setting a merchant could mean.
        let e = call(&mut h, "create_payment", &create(chained));
        assert_eq!(e["error"]["code"], "config_invalid");
        assert_eq!(e["error"]["field"], "remainder_min_cents");
        h.0.insert("remainder_min_cents".into(), "500".into());
        for order in [
            "",
            r#","order":{"remaining_cents":1000,"cvco_authorized":false}"#,
            r#","order":{"remaining_cents":4000,"cvco_authorized":true}"#,
        ] {
            let e = call(&mut h, "create_payment", &create(order));
            assert_eq!(e["error"]["code"], "amount_below_minimum", "{order}");
            let fr = e["error"]["message_fr"].as_str().unwrap();
            assert!(fr.contains("20,00"), "{fr}");
        }
        // The chained payment passes the plugin's check: its next step is ANCV (the offline host
        // fails on any HTTP call).
        let reached = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            call(&mut h, "create_payment", &create(chained))
        }));
        let cause = reached.expect_err("the chained payment goes to ANCV");
        let cause = cause.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(cause.starts_with("unexpected HTTP call"), "{cause}");
    }
}
