//! The widget's figures in headless Chromium, printed as `name value unit` lines for
//! `cargo xtask bench`: first render, and live-status latency from the sandbox's decision to the
//! widget showing it (notification → cvco-host → SSE → DOM).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cvco_browser_tests::{open_playground, serial, Browser, Stack};

const LOADS: usize = 9;
const PAYMENTS: usize = 20;
const JEANNE: &str = "10000000006";

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let _serial = serial();
    let stack = Stack::start();
    let b = Browser::launch();

    // First render: module script start → option interactive (performance marks), on an order
    // that exists, page reloaded; the median of several loads.
    let order = open_playground(&b, &stack, 5000, "locale=en");
    let mut renders = Vec::new();
    for _ in 0..LOADS {
        b.goto(&format!(
            "{}/examples/widget-playground/index.html?order_ref={order}&locale=en",
            stack.host_url
        ));
        let ms = b.wait_for(
            "(() => { const i = performance.getEntriesByName('cvco-interactive')[0];\
             const s = performance.getEntriesByName('cvco-script-start')[0];\
             return i && s ? i.startTime - s.startTime : null; })()",
            Duration::from_secs(15),
        );
        renders.push(ms.as_f64().expect("render ms"));
    }
    renders.sort_by(f64::total_cmp);
    eprintln!("first render samples (ms): {renders:?}");
    println!(
        "widget_first_render_ms {:.1} ms",
        percentile(&renders, 50.0)
    );

    // Live status: jeanne waits for a person; the test confirms at a known time and the page's
    // MutationObserver stamps the moment the widget shows the outcome.
    let mut latencies = Vec::new();
    for _ in 0..PAYMENTS {
        stack.sandbox(
            "POST",
            &format!("/app/api/beneficiaries/{JEANNE}/reset-balance"),
            None,
        );
        open_playground(&b, &stack, 2000, "locale=en");
        let input = b.shadow("input");
        b.type_keys(&input, &format!("{JEANNE}\u{E007}"));
        b.wait_view("waiting", Duration::from_secs(10));
        let tx = stack.pending_transaction(JEANNE);
        // Give the stream time to be established, as a shopper's would be.
        std::thread::sleep(Duration::from_millis(300));
        let decided = now_ms();
        stack.confirm(&tx, JEANNE);
        let shown = b.wait_for(
            "(window.cvcoViews || []).filter(v => v.view === 'authorized').map(v => v.at)[0]",
            Duration::from_secs(20),
        );
        latencies.push(shown.as_f64().expect("shown at") - decided);
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!("live status samples (ms): {latencies:?}");
    println!("live_status_p50_ms {:.1} ms", percentile(&latencies, 50.0));
    println!("live_status_p95_ms {:.1} ms", percentile(&latencies, 95.0));
}
