//! Small pure helpers: HTTP dates, URL encoding, QR rendering. Unit-tested natively.

use cvco_core::{CvcoError, ErrorCode, Timestamp};

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form RFC 9110 servers send.
pub fn parse_http_date(s: &str) -> Option<Timestamp> {
    let rest = s.trim().split_once(", ")?.1;
    let mut parts = rest.split(' ');
    let day: u8 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u16 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() || time.len() != 8 {
        return None;
    }
    Timestamp::parse_rfc3339(&format!("{year:04}-{month:02}-{day:02}T{time}Z")).ok()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (query values, form fields).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `k1=v1&k2=v2` from the pairs whose value is present.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

/// An SVG QR code (medium error correction, quiet zone included).
pub fn qr_svg(payload: &str) -> Result<String, CvcoError> {
    let code =
        qrcode::QrCode::with_error_correction_level(payload, qrcode::EcLevel::M).map_err(|_| {
            CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail(
                    "Contenu trop long pour un QR code.",
                    "Payload too long for a QR code.",
                )
                .with_field("payload")
        })?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = parse_http_date("Sun, 22 Nov 2026 21:49:00 GMT").unwrap();
        assert_eq!(t, Timestamp::parse_rfc3339("2026-11-22T21:49:00Z").unwrap());
        for bad in [
            "",
            "Sun, 22 Nov 2026 21:49:00",
            "Sun, 22 Foo 2026 21:49:00 GMT",
            "Sun, 32 Nov 2026 21:49:00 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 22 Nov 2026 21:49 GMT",
            // A server's Date with multi-byte characters where digits go (8 bytes, not 8 chars):
            // a refusal, never a trap of the plugin.
            "Sun, 22 Nov 2026 21:49:é GMT",
            "Sun, 22 Nov 2026 21:é:00 GMT",
            "Sun, 22 Nov 2026 2€:49:0 GMT",
        ] {
            assert!(parse_http_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn url_encoding() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            query(&[
                ("a", Some("1".into())),
                ("b", None),
                ("c", Some("x y".into()))
            ]),
            "a=1&c=x%20y"
        );
    }

    #[test]
    fn qr_renders_svg_and_refuses_oversize() {
        let svg = qr_svg("cvco:pay?v=1&pt=pt_1&shop=S1&amount=4550").unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
        assert!(qr_svg(&"x".repeat(4000)).is_err());
    }
}
