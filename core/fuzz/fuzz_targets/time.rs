//! RFC 3339 timestamps and dates from any text; `Timestamp` methods on any instant.
#![no_main]

#[path = "../../tests/parsers/mod.rs"]
mod parsers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        parsers::rfc3339(s);
        parsers::date(s);
    }
    if let Some(head) = data.get(..9) {
        let ms = i64::from_le_bytes(head[..8].try_into().unwrap());
        parsers::instant(ms, head[8]);
    }
});
