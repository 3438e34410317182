//! Code 128 (code set B) rendering of a beneficiary id, as the ANCV app shows it for scanners.

/// Bar/space widths of symbols 0–106 (106 is the stop pattern, with its final bar).
const PATTERNS: [&str; 107] = [
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
];
const START_B: usize = 104;
const STOP: usize = 106;
const QUIET: usize = 10;

/// The modules (true = bar) of `text`, quiet zones included; `None` outside printable ASCII.
pub fn modules(text: &str) -> Option<Vec<bool>> {
    let mut symbols = vec![START_B];
    for c in text.chars() {
        if !(' '..='~').contains(&c) {
            return None;
        }
        symbols.push(c as usize - 32);
    }
    let checksum = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| i.max(1) * s)
        .sum::<usize>()
        % 103;
    symbols.push(checksum);
    symbols.push(STOP);
    let mut out = vec![false; QUIET];
    for s in symbols {
        for (i, w) in PATTERNS[s].bytes().enumerate() {
            out.extend(std::iter::repeat_n(i % 2 == 0, (w - b'0') as usize));
        }
    }
    out.extend(std::iter::repeat_n(false, QUIET));
    Some(out)
}

/// An SVG barcode with the human-readable text under it.
pub fn svg(text: &str) -> Option<String> {
    let m = modules(text)?;
    let (unit, height) = (2, 70);
    let width = m.len() * unit;
    let mut rects = String::new();
    let mut x = 0;
    while x < m.len() {
        if m[x] {
            let start = x;
            while x < m.len() && m[x] {
                x += 1;
            }
            rects.push_str(&format!(
                "<rect x=\"{}\" y=\"0\" width=\"{}\" height=\"{height}\"/>",
                start * unit,
                (x - start) * unit
            ));
        } else {
            x += 1;
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{h}\" viewBox=\"0 0 {width} {h}\" role=\"img\" aria-label=\"Code 128 {text}\">\
         <rect width=\"{width}\" height=\"{h}\" fill=\"#fff\"/><g fill=\"#000\">{rects}</g>\
         <text x=\"{mid}\" y=\"{ty}\" font-family=\"monospace\" font-size=\"16\" text-anchor=\"middle\">{text}</text></svg>",
        h = height + 22,
        mid = width / 2,
        ty = height + 17,
        text = crate::html::esc(text),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_well_formed() {
        for (i, p) in PATTERNS.iter().enumerate() {
            let sum: u32 = p.bytes().map(|b| (b - b'0') as u32).sum();
            assert_eq!(sum, if i == STOP { 13 } else { 11 }, "symbol {i}");
        }
        let unique: std::collections::HashSet<_> = PATTERNS.iter().collect();
        assert_eq!(unique.len(), PATTERNS.len());
        assert!(modules("é").is_none());
    }

    /// Decodes the rendering with an independent decoder, zbarimg (Debian's zbar-tools, which
    /// `cargo xtask test` installs and names in `CVCO_ZBARIMG`). Without it the test fails under
    /// CI or when xtask asked for it; elsewhere it says loudly that nothing was checked.
    #[test]
    fn scanners_read_it_back() {
        let text = "10000000006";
        let m = modules(text).unwrap();
        // Start B + 11 symbols + checksum, 11 modules each, stop 13, quiet zones.
        assert_eq!(m.len(), 13 * 11 + 13 + 2 * QUIET);
        let required = std::env::var_os("CVCO_ZBARIMG").is_some()
            || std::env::var("CI").is_ok_and(|ci| ci == "true");
        let zbarimg = std::env::var_os("CVCO_ZBARIMG").unwrap_or_else(|| "zbarimg".into());
        let available = std::process::Command::new(&zbarimg)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        if !available {
            assert!(
                !required,
                "{zbarimg:?} cannot run: install zbar-tools (apt-get install zbar-tools)"
            );
            eprintln!(
                "WARNING scanners_read_it_back: zbarimg missing, the barcode was NOT decoded \
                 (apt-get install zbar-tools)"
            );
            return;
        }
        let (scale, height) = (3usize, 60usize);
        let width = m.len() * scale;
        let row: Vec<u8> = m
            .iter()
            .flat_map(|bar| std::iter::repeat_n(if *bar { 0u8 } else { 255 }, scale))
            .collect();
        let path = std::env::temp_dir().join(format!("cvco-code128-{}.png", std::process::id()));
        {
            let file = std::fs::File::create(&path).unwrap();
            let mut enc = png::Encoder::new(file, width as u32, height as u32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&row.repeat(height)).unwrap();
        }
        let out = std::process::Command::new(&zbarimg)
            .args(["--quiet", "--raw"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), text);
    }
}
