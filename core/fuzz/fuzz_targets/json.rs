//! Every plugin-API and wire JSON type from any bytes.
#![no_main]

#[path = "../../tests/parsers/mod.rs"]
mod parsers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    parsers::json(data);
});
