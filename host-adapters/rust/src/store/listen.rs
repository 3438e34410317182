//! Live status across instances (PostgreSQL): every payment change is followed by a
//! `pg_notify('cvco_payment', payment_id)` in the same transaction (`save_payment`), and each
//! instance keeps one LISTEN connection of its own, reconnecting when it drops.

use super::{Backend, Store};
use futures_util::future::poll_fn;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_postgres::AsyncMessage;

/// The channel payment changes are announced on (payload: the payment id).
pub const PAYMENT_CHANNEL: &str = "cvco_payment";

impl Store {
    /// PostgreSQL only (`None` on SQLite, where one instance sees its own changes): runs until
    /// `stop`, calling `on_change(Some(id))` for each payment changed by any instance, and
    /// `on_change(None)` after a reconnection (what changed in between is unknown: re-read all).
    pub fn listen(
        &self,
        mut stop: watch::Receiver<bool>,
        on_change: impl Fn(Option<&str>) + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let Backend::Pg(_, config) = &self.backend else {
            return None;
        };
        let config = (**config).clone();
        Some(tokio::spawn(async move {
            let mut connected_before = false;
            let mut backoff = Duration::from_millis(100);
            loop {
                match config.connect(tokio_postgres::NoTls).await {
                    Ok((client, mut connection)) => {
                        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
                        // Drives the connection and hands its notifications over.
                        let driver = tokio::spawn(async move {
                            while let Some(Ok(m)) = poll_fn(|cx| connection.poll_message(cx)).await
                            {
                                if let AsyncMessage::Notification(n) = m {
                                    if tx.send(n.payload().to_owned()).is_err() {
                                        return;
                                    }
                                }
                            }
                        });
                        let listening = client
                            .batch_execute(&format!("LISTEN {PAYMENT_CHANNEL}"))
                            .await;
                        if listening.is_ok() {
                            if connected_before {
                                tracing::info!("change notifications: listening again");
                                on_change(None);
                            }
                            connected_before = true;
                            backoff = Duration::from_millis(100);
                            loop {
                                tokio::select! {
                                    _ = stop.wait_for(|s| *s) => {
                                        driver.abort();
                                        return;
                                    }
                                    id = rx.recv() => match id {
                                        Some(id) => on_change(Some(&id)),
                                        None => break,
                                    },
                                }
                            }
                        }
                        driver.abort();
                        tracing::warn!("change notifications: connection lost, reconnecting");
                    }
                    Err(e) => tracing::warn!(error = %e, "change notifications: cannot connect"),
                }
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }))
    }
}
