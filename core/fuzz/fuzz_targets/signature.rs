//! Signature headers and notification bodies: the first line is the header, the rest the body;
//! clock and tolerance come from the header's last bytes.
#![no_main]

#[path = "../../tests/parsers/mod.rs"]
mod parsers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let word = |i: usize| {
        let mut w = [0u8; 8];
        for (k, b) in header.iter().rev().skip(i * 8).take(8).enumerate() {
            w[k] = *b;
        }
        i64::from_le_bytes(w)
    };
    let now = if header.len() % 2 == 0 {
        1_795_384_140
    } else {
        word(0)
    };
    let tolerance = if header.len() % 3 == 0 { 300 } else { word(1) };
    parsers::signature(&String::from_utf8_lossy(header), body, now, tolerance);
});
