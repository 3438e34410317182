//! Every text parser: amounts, beneficiaries, scans (Code 128, CVCO-ID QR), shop ids, channels,
//! state names, payment QR codes, references and keys (and timestamps again).
#![no_main]

#[path = "../../tests/parsers/mod.rs"]
mod parsers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    parsers::text(&String::from_utf8_lossy(data));
});
