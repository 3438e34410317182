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

#[cfg(test)]
mod tests {
    use super::super::testing::{PgDatabase, URL_ENV};
    use super::super::{PaymentRow, PaymentStatus, Store};
    use cvco_core::contract::PaymentMode;
    use cvco_core::Channel;
    use std::time::Duration;
    use tokio::sync::{mpsc, watch};

    #[tokio::test]
    async fn a_saved_payment_and_a_card_payment_on_its_order_are_announced_to_listeners() {
        let (_stop, rx) = watch::channel(false);
        assert!(
            Store::open(None)
                .unwrap()
                .listen(rx.clone(), |_| {})
                .is_none(),
            "SQLite: one instance, nothing to listen to"
        );
        let Some(db) = PgDatabase::create().await else {
            eprintln!("skipped: no {URL_ENV} (cargo xtask test sets it)");
            return;
        };
        let db = db.unwrap();
        let store = Store::connect(&db.url).await.unwrap();
        let (tx, mut changes) = mpsc::unbounded_channel();
        let listener = store
            .listen(rx, move |id| {
                let _ = tx.send(id.map(str::to_owned));
            })
            .unwrap();
        // LISTEN is issued on its own connection: give it a moment.
        tokio::time::sleep(Duration::from_millis(300)).await;
        store
            .insert_order("CMD-1", None, "shop", "[]", 5000, 1)
            .await
            .unwrap();
        let mut p = PaymentRow {
            payment_id: "pay_1".into(),
            order_ref: "CMD-1".into(),
            attempt: "a".into(),
            mode: PaymentMode::Identifier,
            channel: Channel::Ecommerce,
            amount_cents: 5000,
            beneficiary_masked: None,
            create_call: "create_payment".into(),
            create_input: "{}".into(),
            transaction_id: None,
            request_id: None,
            status: PaymentStatus::Unknown,
            is_final: false,
            authorized_cents: 0,
            refunded_cents: 0,
            ancv_state: None,
            plugin: None,
            qr: None,
            error: None,
            deadline: None,
            sequence: 0,
            created_at: 1,
            updated_at: 1,
            authorized_at: None,
            final_at: None,
            next_poll_at: 0,
            poll_interval_ms: 0,
            recheck_at: None,
            merchant_id: "default".into(),
        };
        store.insert_payment(&p).await.unwrap();
        p.sequence = 1;
        store.save_payment(&p).await.unwrap();
        async fn next(ch: &mut mpsc::UnboundedReceiver<Option<String>>) -> Option<Option<String>> {
            tokio::time::timeout(Duration::from_secs(5), ch.recv())
                .await
                .expect("announced within 5 s")
        }
        assert_eq!(
            next(&mut changes).await,
            Some(Some("pay_1".to_owned())),
            "saved"
        );
        store
            .set_card_payments("CMD-1", r#"[{"amount_cents": 100}]"#)
            .await
            .unwrap();
        assert_eq!(
            next(&mut changes).await,
            Some(Some("pay_1".to_owned())),
            "its order moved"
        );
        listener.abort();
    }
}
