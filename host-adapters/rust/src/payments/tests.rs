//! The engine against a fake plugin: what it records around a creation call.

use super::*;
use crate::payments::plugin::{Call, In, Out};
use crate::store::testing::PgDatabase;
use cvco_core::lifecycle::TransactionState;
use cvco_core::plugin_api::exports::{
    CancelPayment, CancelPaymentRequest, CapturePayment, CheckConnection, DailyTotals, GetPayment,
    GetPaymentRequest, RefundPayment, VerifyNotification,
};
use cvco_core::plugin_api::NextAction;
use std::sync::atomic::AtomicUsize;

const ALICE: &str = "alice.approve@sandbox.cvco.test";

/// Answers `create_payment` with `create` and counts the calls; any other export is refused.
struct Fake {
    create: fn(&CreatePaymentInput) -> Result<Payment, CvcoError>,
    creates: AtomicUsize,
}

fn refused<'a, T: 'a>() -> Call<'a, T> {
    Box::pin(async { Err(CvcoError::new(ErrorCode::Forbidden)) })
}

impl PluginCalls for Fake {
    fn check_connection(&self, _: In<CheckConnection>) -> Call<'_, Out<CheckConnection>> {
        refused()
    }
    fn create_payment(&self, input: In<CreatePayment>) -> Call<'_, Out<CreatePayment>> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        let answer = (self.create)(&input);
        Box::pin(async move { answer })
    }
    fn create_payment_request(
        &self,
        _: In<CreatePaymentRequest>,
    ) -> Call<'_, Out<CreatePaymentRequest>> {
        refused()
    }
    fn get_payment(&self, _: In<GetPayment>) -> Call<'_, Out<GetPayment>> {
        refused()
    }
    fn get_payment_request(&self, _: In<GetPaymentRequest>) -> Call<'_, Out<GetPaymentRequest>> {
        refused()
    }
    fn cancel_payment(&self, _: In<CancelPayment>) -> Call<'_, Out<CancelPayment>> {
        refused()
    }
    fn cancel_payment_request(
        &self,
        _: In<CancelPaymentRequest>,
    ) -> Call<'_, Out<CancelPaymentRequest>> {
        refused()
    }
    fn capture_payment(&self, _: In<CapturePayment>) -> Call<'_, Out<CapturePayment>> {
        refused()
    }
    fn refund_payment(&self, _: In<RefundPayment>) -> Call<'_, Out<RefundPayment>> {
        refused()
    }
    fn verify_notification(&self, _: In<VerifyNotification>) -> Call<'_, Out<VerifyNotification>> {
        refused()
    }
    fn daily_totals(&self, _: In<DailyTotals>) -> Call<'_, Out<DailyTotals>> {
        refused()
    }
}

/// ANCV's answer to a creation: pushed to the app, waiting.
fn pending(input: &CreatePaymentInput) -> Result<Payment, CvcoError> {
    let now = Timestamp(now_ms());
    Ok(Payment {
        id: format!("TX-{}", input.idempotency_key),
        order_ref: input.order_ref.clone(),
        amount_cents: amount(input.amount_cents),
        currency: "EUR".into(),
        channel: input.channel,
        adjustable: false,
        capture_mode: CaptureMode::Normal,
        status: NormalizedStatus::Pending,
        is_final: false,
        authorized_cents: Amount::ZERO,
        remaining_cents: amount(input.amount_cents),
        captured_cents: Amount::ZERO,
        refunded_cents: Amount::ZERO,
        ancv_state: TransactionState::Processing,
        ancv_label_fr: String::new(),
        ancv_label_en: String::new(),
        abort_reason: None,
        payers: vec![],
        refunds: vec![],
        created_at: now,
        updated_at: now,
        expires_at: None,
        payment_request_id: None,
        next_action: NextAction::WaitForApp { deadline: None },
    })
}

/// The engine over the fake plugin, on the suite's store (its PostgreSQL database kept alive by
/// the third value).
async fn engine(
    create: fn(&CreatePaymentInput) -> Result<Payment, CvcoError>,
) -> (Engine, Arc<Fake>, Option<PgDatabase>) {
    let fake = Arc::new(Fake {
        create,
        creates: AtomicUsize::new(0),
    });
    let (store, db) = crate::store::testing::store().await;
    store
        .insert_order("CMD-1", Some("owner"), "shop", "[]", 4100, now_ms())
        .await
        .unwrap();
    let e = Engine::new(
        HostConfig::default(),
        store,
        fake.clone(),
        "http://127.0.0.1:1".into(),
    );
    (e, fake, db)
}

async fn start(e: &Engine, attempt: &str) -> Result<(PaymentRow, bool), CvcoError> {
    let start = Start::Identifier {
        beneficiary: ALICE.into(),
    };
    e.start(
        "CMD-1",
        attempt,
        Channel::Ecommerce,
        start,
        AmountSpec::Remaining,
    )
    .await
}

#[tokio::test]
async fn a_creation_whose_outcome_is_unknown_is_kept_for_reconciliation() {
    let (e, fake, _db) = engine(|_| Err(CvcoError::new(ErrorCode::UpstreamProtocol))).await;
    let err = start(&e, "a1").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamProtocol);
    let id = err.payment_id.expect("the kept payment is named");
    let row = e
        .store
        .payment(&id)
        .await
        .unwrap()
        .expect("kept, not deleted");
    assert_eq!(row.status, PaymentStatus::Unknown);
    assert!(!row.is_final);
    assert_eq!(row.amount_cents, 4100, "the order's remaining amount");
    assert_eq!(fake.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_creation_leaves_no_payment_and_the_attempt_can_be_sent_again() {
    let (e, fake, _db) = engine(|_| Err(CvcoError::new(ErrorCode::ShopNotAffiliated))).await;
    let err = start(&e, "a1").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ShopNotAffiliated);
    assert!(e.store.payments_of_order("CMD-1").await.unwrap().is_empty());
    let again = start(&e, "a1").await.unwrap_err();
    assert_eq!(again.code, ErrorCode::ShopNotAffiliated);
    assert_eq!(fake.creates.load(Ordering::SeqCst), 2, "called again");
}

#[tokio::test]
async fn the_same_attempt_twice_answers_the_same_payment_with_one_creation() {
    let (e, fake, _db) = engine(pending).await;
    let (first, created) = start(&e, "a1").await.unwrap();
    assert!(created);
    assert_eq!(
        first.status,
        PaymentStatus::Known(NormalizedStatus::Pending)
    );
    let (second, created_again) = start(&e, "a1").await.unwrap();
    assert!(!created_again);
    assert_eq!(second.payment_id, first.payment_id);
    assert_eq!(second.transaction_id, first.transaction_id);
    assert_eq!(fake.creates.load(Ordering::SeqCst), 1, "ANCV asked once");
    assert_eq!(e.store.payments_of_order("CMD-1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_new_attempt_while_one_is_open_is_refused_with_its_payment_id() {
    let (e, fake, _db) = engine(pending).await;
    let (first, _) = start(&e, "a1").await.unwrap();
    let err = start(&e, "a2").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::PaymentInProgress);
    assert_eq!(err.payment_id.as_deref(), Some(first.payment_id.as_str()));
    assert_eq!(fake.creates.load(Ordering::SeqCst), 1);
}
