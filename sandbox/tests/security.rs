//! Issue 10 §2 on the sandbox: a crafted date is a cvco error (not a dropped connection), and the
//! admin page carries a strict content security policy.

mod common;
use common::*;

#[tokio::test]
async fn a_crafted_date_is_a_cvco_error_and_the_server_lives() {
    let s = start().await;
    let shop = s.default_shop().await;
    for from in [
        "2026-01-01T12:00:0%C3%A9",
        "%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
        "2026-01-01T12:00:00%E2%82%AC",
    ] {
        let r = s
            .get(
                &format!("/api/v1/transactions?shop_id={}&from={from}", shop.id),
                Some(&shop.token),
            )
            .await;
        assert!(
            (400..500).contains(&r.status),
            "from={from}: {} {}",
            r.status,
            r.body
        );
        r.expect_error(r.status, "invalid_request");
    }
    s.get("/api/v1/transactions", Some(&shop.token))
        .await
        .expect(200);
}

#[tokio::test]
async fn the_admin_page_sends_a_strict_csp() {
    let s = start().await;
    let r = s.http.get(s.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .expect("a CSP on /admin")
        .to_str()
        .unwrap()
        .to_string();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}
