//! Start-up checks through the plugin's check_connection.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_credentials_ancv_refuses_does_not_start_and_says_why() {
    let env = env().await;
    let mut cfg = test_config(&env.sb);
    cfg.client_secret = "not-the-secret".into();
    let e = match cvco_host::spawn(cfg).await {
        Ok(_) => panic!("started with refused credentials"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("unauthorized"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_starts_while_ancv_is_unreachable_for_now() {
    let env = env().await;
    // Nobody listens there: a passing outage, not a configuration error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let host = cvco_host::spawn(test_config(&url)).await;
    assert!(host.is_ok(), "{:?}", host.err().map(|e| e.to_string()));
    drop(env);
}
