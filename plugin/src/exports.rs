//! The Extism shell: one `extern "C"` export per public function, the PDK behind [`Host`].
//! Exports always return 0 with a JSON answer; a non-zero return never comes from here.

use crate::host::{Host, Request, Response};
use cvco_core::CvcoError;
use extism_pdk::extism as raw;
use std::collections::BTreeMap;

// The raw host functions, not the PDK's wrappers: those carry anyhow and its backtrace
// formatting, a third of the plugin's size for nothing the plugin uses.

fn store(bytes: &[u8]) -> u64 {
    unsafe {
        let offset = raw::alloc(bytes.len() as u64);
        raw::store(offset, bytes);
        offset
    }
}

/// Reads (and frees) a block the host handed over; 0 means none.
fn take(offset: u64) -> Option<Vec<u8>> {
    if offset == 0 {
        return None;
    }
    unsafe {
        let mut bytes = vec![0; raw::length(offset) as usize];
        raw::load(offset, &mut bytes);
        raw::free(offset);
        Some(bytes)
    }
}

/// A key-addressed read (config or var); the key block is ours to free.
fn lookup(key: &str, get: unsafe extern "C" fn(u64) -> u64) -> Option<Vec<u8>> {
    let k = store(key.as_bytes());
    let value = unsafe { get(k) };
    unsafe { raw::free(k) };
    take(value).filter(|v| !v.is_empty())
}

#[derive(serde::Serialize)]
struct HttpRequest<'a> {
    url: &'a str,
    headers: Headers<'a>,
    method: &'a str,
}

/// Serialises as a JSON object without building a sorted map (the sort code costs kilobytes).
struct Headers<'a>(&'a [(String, String)]);

impl serde::Serialize for Headers<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct Pdk;

impl Host for Pdk {
    fn config(&self, key: &str) -> Result<Option<String>, CvcoError> {
        match lookup(key, raw::config_get) {
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| CvcoError::new(cvco_core::ErrorCode::ConfigInvalid).with_field(key)),
            None => Ok(None),
        }
    }

    fn var(&self, key: &str) -> Option<Vec<u8>> {
        lookup(key, raw::var_get)
    }

    fn set_var(&mut self, key: &str, value: &[u8]) {
        let (k, v) = (store(key.as_bytes()), store(value));
        unsafe {
            raw::var_set(k, v);
            raw::free(k);
            raw::free(v);
        }
    }

    fn remove_var(&mut self, key: &str) {
        let k = store(key.as_bytes());
        unsafe {
            raw::var_set(k, 0);
            raw::free(k);
        }
    }

    fn http(&mut self, request: &Request) -> Result<Response, CvcoError> {
        let req = HttpRequest {
            url: &request.url,
            headers: Headers(&request.headers),
            method: request.method,
        };
        let req =
            serde_json::to_vec(&req).map_err(|_| CvcoError::new(cvco_core::ErrorCode::Internal))?;
        // The host takes ownership of both blocks.
        let req = store(&req);
        let body = request.body.as_deref().map(store).unwrap_or(0);
        let answer = unsafe { raw::http_request(req, body) };
        let status = unsafe { raw::http_status_code() };
        let body = take(answer).unwrap_or_default();
        let headers = take(unsafe { raw::http_headers() })
            .and_then(|h| serde_json::from_slice::<BTreeMap<String, String>>(&h).ok())
            .unwrap_or_default();
        Ok(Response {
            status: status.clamp(0, 999) as u16,
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body,
        })
    }
}

fn run(function: &str) -> i32 {
    let input = unsafe { raw::load_input() };
    let out = crate::ops::dispatch(&mut Pdk, function, &input);
    // The output block stays allocated: the host reads it after the call.
    let offset = store(&out);
    unsafe { raw::output_set(offset, out.len() as u64) };
    0
}

macro_rules! exports {
    ($($name:ident),* $(,)?) => {
        $(
            #[no_mangle]
            pub extern "C" fn $name() -> i32 {
                run(stringify!($name))
            }
        )*
    };
}

exports!(
    capabilities,
    validate_beneficiary,
    create_payment,
    request_authorization,
    get_payment,
    capture_payment,
    cancel_payment,
    refund_payment,
    create_payment_request,
    get_payment_request,
    cancel_payment_request,
    verify_notification,
    list_payments,
    daily_totals,
    render_qr,
    check_connection,
    checkout,
    render_payment,
    error_catalogue,
    parse_request,
);
