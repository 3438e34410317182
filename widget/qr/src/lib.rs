//! The payment QR code the backend created (`next_action.show_qr.qr_payload`), drawn as SVG with the
//! `qrcode` crate, linked into the widget's wasm module.
//!
//! qrcode's low-level API, byte mode at EC level M in the smallest version that holds the payload:
//! the same symbol as `QrCode::with_error_correction_level` for payment URLs, without its segment
//! optimizer (a URL is bytes anyway) and without `core::fmt` (numbers written by hand), which keeps
//! the shopper's download small.

use qrcode::bits::Bits;
use qrcode::canvas::Canvas;
use qrcode::{Color, EcLevel, Version};

/// The payment QR code as SVG markup: one path of dark modules with a 4-module quiet zone.
pub fn qr_svg(payload: &str) -> Option<String> {
    let (width, colors) = modules(payload.as_bytes())?;
    let mut path = String::with_capacity(width * width * 6);
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            path.push('M');
            push_number(&mut path, i % width + 4);
            path.push(' ');
            push_number(&mut path, i / width + 4);
            path.push_str("h1v1h-1z");
        }
    }
    let mut size = String::new();
    push_number(&mut size, width + 8);
    let mut svg = String::with_capacity(path.len() + 200);
    svg.push_str("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ");
    svg.push_str(&size);
    svg.push(' ');
    svg.push_str(&size);
    svg.push_str("\" shape-rendering=\"crispEdges\" role=\"img\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"");
    svg.push_str(&path);
    svg.push_str("\"/></svg>");
    Some(svg)
}

/// The symbol's width and its modules, row by row.
fn modules(data: &[u8]) -> Option<(usize, Vec<Color>)> {
    let (version, bits) = (1..=40).find_map(|v| {
        let version = Version::Normal(v);
        let mut bits = Bits::new(version);
        let fits = bits.push_byte_data(data).is_ok() && bits.push_terminator(EcLevel::M).is_ok();
        fits.then_some((version, bits))
    })?;
    let (data, ec) =
        qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).ok()?;
    let mut canvas = Canvas::new(version, EcLevel::M);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    Some((
        version.width() as usize,
        canvas.apply_best_mask().into_colors(),
    ))
}

/// Decimal digits of `n` (what `to_string` would write, without `core::fmt`).
fn push_number(out: &mut String, n: usize) {
    if n >= 10 {
        push_number(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "https://sandbox.cvco.test/app/pay/pt_123";

    #[test]
    fn qr_is_a_real_qr_code() {
        let svg = qr_svg(PAYLOAD).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        // The three finder patterns put dark modules at the corners of the symbol.
        assert!(svg.contains("M4 4h1v1h-1z"));
        let code = qrcode::QrCode::new(PAYLOAD.as_bytes()).unwrap();
        let dark = code
            .to_colors()
            .iter()
            .filter(|c| **c == qrcode::Color::Dark)
            .count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
        let size = code.width() + 8;
        assert!(svg.contains(&format!("viewBox=\"0 0 {size} {size}\"")));
    }

    #[test]
    fn same_symbol_as_qrcode_itself() {
        let long = format!(
            "https://pay.example.test/app/pay/{}",
            "pt_abcdef-".repeat(30)
        );
        for payload in [
            PAYLOAD,
            "https://sandbox.cvco.test/app/pay/pt_01JD3K9ZQ4X8Y7W6V5T4S3R2P1",
            long.as_str(),
        ] {
            let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
                .unwrap();
            let (width, colors) = modules(payload.as_bytes()).unwrap();
            assert_eq!(width, code.width(), "{payload}");
            assert_eq!(colors, code.to_colors(), "{payload}");
        }
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 29, 100, 185] {
            let mut s = String::new();
            push_number(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn too_long_for_any_version_is_none() {
        assert!(qr_svg(&"x".repeat(3000)).is_none());
    }
}
