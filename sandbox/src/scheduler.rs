//! The one background task: applies what falls due (scripted beneficiaries, expiries) and sends
//! notifications with retries. Everything it acts on is stored, so it resumes after a restart.

use crate::engine::wall_clock;
use crate::model::Attempt;
use crate::SandboxState;
use cvco_core::signature::{sign, EVENT_ID_HEADER, SIGNATURE_HEADER};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest sleep between two looks at the clock (the admin clock can jump).
const MAX_SLEEP_MS: i64 = 1000;

pub async fn run(state: SandboxState, mut shutdown: watch::Receiver<bool>) {
    let mut senders = JoinSet::new();
    loop {
        let (batches, wait_ms) = {
            let mut g = state.lock();
            g.sync();
            let batches = g.due_deliveries();
            let now = g.now();
            let wait = g
                .next_due()
                .map(|t| (t.millis() - now.millis()).clamp(5, MAX_SLEEP_MS))
                .unwrap_or(MAX_SLEEP_MS);
            (batches, wait)
        };
        for ids in batches {
            senders.spawn(deliver(state.clone(), ids));
        }
        while senders.try_join_next().is_some() {}
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = state.0.wake.notified() => {}
            _ = shutdown.changed() => break,
        }
    }
    // In-flight deliveries stay pending in the store and are sent again after a restart.
    senders.abort_all();
    while senders.join_next().await.is_some() {}
}

/// Sends a batch in order (a batch of several is a reordered release).
async fn deliver(state: SandboxState, ids: Vec<String>) {
    for id in &ids {
        let target = state.lock().delivery_target(id);
        let Some((url, body, secret, duplicate)) = target else {
            continue;
        };
        let acknowledged = send(&state, id, &url, &body, &secret, false).await;
        if acknowledged && duplicate {
            send(&state, id, &url, &body, &secret, true).await;
        }
    }
    {
        let mut g = state.lock();
        for id in &ids {
            g.in_flight.remove(id);
        }
    }
    state.wake();
}

async fn send(
    state: &SandboxState,
    id: &str,
    url: &str,
    body: &str,
    secret: &str,
    duplicate: bool,
) -> bool {
    let at = state.lock().now();
    let started = Instant::now();
    let signature = sign(secret.as_bytes(), wall_clock(), body.as_bytes());
    let result = state
        .0
        .http
        .post(url)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_ID_HEADER, id)
        .body(body.to_string())
        .send()
        .await;
    let (http_status, error) = match result {
        Ok(resp) => (Some(resp.status().as_u16()), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let acknowledged = http_status.is_some_and(|s| (200..300).contains(&s));
    let attempt = Attempt {
        at,
        http_status,
        error,
        duration_ms: started.elapsed().as_millis() as u64,
        duplicate,
    };
    state.lock().record_attempt(id, attempt, acknowledged);
    acknowledged
}
