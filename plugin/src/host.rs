//! What the plugin needs from its host, behind a trait so the protocol code has no Extism types
//! (the wasm shell in `exports.rs` implements it with extism-pdk).

use cvco_core::CvcoError;

pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

pub struct Response {
    pub status: u16,
    /// Names lower-cased. Empty when the host does not expose response headers.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub trait Host {
    /// A manifest configuration value; `Err` when it is not UTF-8.
    fn config(&self, key: &str) -> Result<Option<String>, CvcoError>;
    fn var(&self, key: &str) -> Option<Vec<u8>>;
    fn set_var(&mut self, key: &str, value: &[u8]);
    fn remove_var(&mut self, key: &str);
    /// Transport failures never come back here: Extism ends the call (the host sees a
    /// retryable failure), so whatever returns is an HTTP answer.
    fn http(&mut self, request: &Request) -> Result<Response, CvcoError>;
}
