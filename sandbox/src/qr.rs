//! QR codes as SVG or PNG (no image crate: the PNG is encoded by hand from the module grid).

use cvco_core::{CvcoError, ErrorCode};
use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

const QUIET_ZONE: usize = 4;

fn code(payload: &str) -> Result<QrCode, CvcoError> {
    QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M).map_err(|e| {
        CvcoError::new(ErrorCode::Internal).with_detail(
            &format!("QR code impossible : {e}."),
            &format!("Cannot build QR code: {e}."),
        )
    })
}

pub fn svg(payload: &str, size: u32) -> Result<String, CvcoError> {
    Ok(code(payload)?
        .render::<svg::Color>()
        .min_dimensions(size, size)
        .quiet_zone(true)
        .build())
}

/// SVG without the XML prolog, to inline in an HTML page.
pub fn svg_inline(payload: &str, size: u32) -> Result<String, CvcoError> {
    let s = svg(payload, size)?;
    Ok(match s.find("<svg") {
        Some(i) => s[i..].to_string(),
        None => s,
    })
}

pub fn png(payload: &str, size: u32) -> Result<Vec<u8>, CvcoError> {
    let code = code(payload)?;
    let width = code.width();
    let colors = code.to_colors();
    let modules = width + 2 * QUIET_ZONE;
    let scale = (size as usize / modules).max(1);
    let dim = modules * scale;
    let mut pixels = vec![255u8; dim * dim];
    for y in 0..width {
        for x in 0..width {
            if colors[y * width + x] == Color::Dark {
                for dy in 0..scale {
                    let row = (y + QUIET_ZONE) * scale + dy;
                    let start = row * dim + (x + QUIET_ZONE) * scale;
                    pixels[start..start + scale].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    let internal = |e: png::EncodingError| {
        CvcoError::new(ErrorCode::Internal).with_detail(
            &format!("PNG impossible : {e}."),
            &format!("Cannot encode PNG: {e}."),
        )
    };
    {
        let mut enc = png::Encoder::new(&mut out, dim as u32, dim as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(internal)?;
        w.write_image_data(&pixels).map_err(internal)?;
    }
    Ok(out)
}
