//! The payment QR code the backend created (`next_action.show_qr.qr_payload`), drawn as SVG.
//! A module of its own so shoppers who never see a QR code never download the encoder: the widget
//! imports it on first use (QR mode at counters and kiosks).

/// The payment QR code as SVG markup: one path of dark modules with a 4-module quiet zone.
pub fn qr_svg(payload: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 8;
    let mut path = String::with_capacity(width * width * 4);
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + 4, i / width + 4);
            path.push('M');
            path.push_str(&x.to_string());
            path.push(' ');
            path.push_str(&y.to_string());
            path.push_str("h1v1h-1z");
        }
    }
    let size = size.to_string();
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

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = qrSvg)]
pub fn qr_svg_js(payload: &str) -> Option<String> {
    qr_svg(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_is_a_real_qr_code() {
        let svg = qr_svg("https://sandbox.cvco.test/app/pay/pt_123").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        // The three finder patterns put dark modules at the corners of the symbol.
        assert!(svg.contains("M4 4h1v1h-1z"));
        let code = qrcode::QrCode::new(b"https://sandbox.cvco.test/app/pay/pt_123").unwrap();
        let dark = code
            .to_colors()
            .iter()
            .filter(|c| **c == qrcode::Color::Dark)
            .count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
    }
}
