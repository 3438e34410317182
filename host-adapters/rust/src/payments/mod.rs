//! The payment engine: creation (idempotent), refresh from the plugin, notifications, polling,
//! expiry, SSE fan-out. Every ANCV interaction is a plugin export call through [`PluginCalls`];
//! no HTTP here: the `http` module turns its answers and errors into responses.

mod plugin;
mod refuse_partial;
#[cfg(test)]
mod tests;

pub use plugin::PluginCalls;

use crate::util::{idempotency_key, new_id, now_ms};

use crate::config::HostConfig;
use crate::store::{OrderRow, PaymentRow, PaymentStatus, RequestRow, Store, TransactionRow};
use cvco_core::contract::{self, ContractPayment, PaymentMode, RenderPaymentInput, RequestFacts};
use cvco_core::lifecycle::{self, CaptureMode, TransactionState};
use cvco_core::plugin_api::exports::{CreatePayment, CreatePaymentRequest};
use cvco_core::plugin_api::{
    CancelPaymentInput, CapturePaymentInput, CreatePaymentInput, CreatePaymentRequestInput,
    DeliveryKind, Export, Payment, PaymentIdInput, PaymentRequest, PaymentRequestIdInput,
    RefundPaymentInput, VerifyNotificationInput,
};
use cvco_core::{
    Amount, BeneficiaryId, Channel, CvcoError, ErrorCode, NormalizedStatus, OrderFacts, Timestamp,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// What a new payment is.
#[derive(Debug, Clone)]
pub enum Start {
    /// A push to the beneficiary's app.
    Identifier { beneficiary: String },
    /// A pre-reservation pushed to the beneficiary's app: authorized now, captured (finalised)
    /// or cancelled by the merchant later, listed with the payment requests under its own id.
    Reserve { beneficiary: String },
    /// A payment QR code the beneficiary scans (an ANCV payment request shown on screen).
    Qr,
    /// A MOTO e-mail request or a QR pre-reservation from the back-office.
    Request {
        delivery: DeliveryKind,
        email: Option<String>,
        expires_in_s: Option<u32>,
        capture: CaptureMode,
    },
}

/// How much the new payment is for.
#[derive(Debug, Clone, Copy)]
pub enum AmountSpec {
    /// What the order still needs.
    Remaining,
    /// A seller's amount, at most what the order still needs.
    Fixed(i64),
}

pub struct Engine {
    pub cfg: HostConfig,
    pub store: Store,
    /// Every ANCV interaction (a `cvco_plugin_host::Pool` outside the unit tests).
    pub plugin: Arc<dyn PluginCalls>,
    pub public_url: String,
    pub notification_url: String,
    /// The host's merchants (`None` in unit tests: every payment is `plugin`'s).
    pub tenants: Option<crate::tenants::Tenants>,
    /// The merchant `plugin` serves.
    pub main_merchant: String,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    channels: Mutex<HashMap<String, broadcast::Sender<()>>>,
    /// Rendered Payment bodies for status reads, valid while `generation` has not moved.
    rendered: Mutex<HashMap<String, Rendered>>,
    /// Bumped after every write that can change a rendered Payment (any payment or order).
    generation: AtomicU64,
    /// This instance's name on the leases it takes (`store/leases.rs`).
    pub instance_id: String,
}

struct Rendered {
    generation: u64,
    owner: String,
    body: bytes::Bytes,
}

#[derive(Debug, Clone, Copy)]
pub struct OrderAmounts {
    pub total: i64,
    pub paid_cvco: i64,
    pub paid_card: i64,
    pub remaining: i64,
}

impl OrderAmounts {
    /// From the order's total, its card payments (JSON) and what its CVCo payments hold.
    pub fn of(total: i64, card_payments: &str, paid_cvco: i64) -> OrderAmounts {
        let paid_card: i64 = serde_json::from_str::<Vec<Value>>(card_payments)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["amount_cents"].as_i64())
            .sum();
        OrderAmounts {
            total,
            paid_cvco,
            paid_card,
            remaining: (total - paid_card - paid_cvco).max(0),
        }
    }
}

/// The status of a payment whose creation may or may not have reached ANCV (lost answer,
/// timeout, crash): kept, never final, reconciled by replaying its creation with the same
/// idempotency key (ANCV answers the transaction it made, or makes the one it never got).
pub const UNKNOWN: &str = contract::UNKNOWN;

/// The `delivery` of a direct pre-reservation (no ANCV payment request behind it).
pub const DIRECT: &str = "direct";

/// Whether a failed mutating call may still have taken effect at ANCV.
fn outcome_unknown(e: &CvcoError) -> bool {
    e.retryable || e.code.outcome_unknown()
}

impl Engine {
    pub fn new(
        cfg: HostConfig,
        store: Store,
        plugin: Arc<dyn PluginCalls>,
        public_url: String,
    ) -> Engine {
        let notification_url =
            format!("{}/cvco/v1/notifications", public_url.trim_end_matches('/'));
        Engine {
            cfg,
            store,
            plugin,
            public_url,
            notification_url,
            tenants: None,
            main_merchant: crate::tenants::DEFAULT_MERCHANT.into(),
            locks: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
            rendered: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            instance_id: format!("{}-{}", std::process::id(), crate::util::random_token(6)),
        }
    }

    /// Serves every merchant of `tenants`, `plugin` being `main_merchant`'s.
    pub fn with_tenants(mut self, tenants: crate::tenants::Tenants, main_merchant: &str) -> Self {
        self.tenants = Some(tenants);
        self.main_merchant = main_merchant.into();
        self
    }

    /// The plugin of the merchant's main reception point.
    pub fn plugin_for(&self, merchant_id: &str) -> Result<Arc<dyn PluginCalls>, CvcoError> {
        match &self.tenants {
            Some(t) if merchant_id != self.main_merchant => {
                Ok(Arc::new(t.plugin(merchant_id, None)?))
            }
            _ => Ok(self.plugin.clone()),
        }
    }

    /// Where ANCV notifies a merchant's payments: `/cvco/v1/notifications` for `default`,
    /// `/cvco/v1/notifications/{merchant_id}` for the others.
    pub fn notification_url_for(&self, merchant_id: &str) -> String {
        if merchant_id == crate::tenants::DEFAULT_MERCHANT {
            self.notification_url.clone()
        } else {
            format!("{}/{merchant_id}", self.notification_url)
        }
    }

    /// The merchant's name on receipts (the configuration's for `default`).
    pub fn merchant_name(&self, merchant_id: &str) -> String {
        self.tenants
            .as_ref()
            .and_then(|t| t.merchant(merchant_id))
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty() || merchant_id != crate::tenants::DEFAULT_MERCHANT)
            .unwrap_or_else(|| self.cfg.merchant_name.clone())
    }

    /// The checkout rules of the merchant's settings (the same values its plugin gets).
    pub fn merchant_settings(&self, merchant_id: &str) -> cvco_core::shop::MerchantSettings {
        self.tenants
            .as_ref()
            .and_then(|t| t.merchant(merchant_id))
            .map(|m| m.settings.checkout())
            .unwrap_or_else(|| self.cfg.merchant_settings())
    }

    /// The shop id of the merchant's main reception point (the configuration's for `default`).
    pub fn merchant_shop_id(&self, merchant_id: &str) -> String {
        self.tenants
            .as_ref()
            .and_then(|t| t.merchant(merchant_id))
            .and_then(|m| m.main_point().map(|p| p.shop_id.clone()))
            .unwrap_or_else(|| self.cfg.shop_id.clone())
    }

    fn lock_for(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(key).or_default().clone()
    }

    /// Call after the write is committed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The Payment body of a shop-owned payment for its owner, rendered at most once per write.
    pub async fn status_body(
        &self,
        payment_id: &str,
        owner: &str,
    ) -> Result<Option<bytes::Bytes>, CvcoError> {
        let generation = self.generation.load(Ordering::SeqCst);
        {
            let cache = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = cache.get(payment_id) {
                if r.generation == generation {
                    return Ok((r.owner == owner).then(|| r.body.clone()));
                }
            }
        }
        let Some(row) = self.store.payment(payment_id).await? else {
            return Ok(None);
        };
        let Some(order) = self.store.order(&row.order_ref).await? else {
            return Ok(None);
        };
        let Some(order_owner) = order.owner.clone() else {
            return Ok(None);
        };
        let a = self.amounts(&order).await?;
        let body = serde_json::to_vec(&self.payment_json_with(&row, a))
            .map(bytes::Bytes::from)
            .map_err(|_| CvcoError::new(ErrorCode::Internal))?;
        let mut cache = self.rendered.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        let ok = order_owner == owner;
        cache.insert(
            payment_id.to_string(),
            Rendered {
                generation,
                owner: order_owner,
                body: body.clone(),
            },
        );
        Ok(ok.then_some(body))
    }

    pub fn order_lock(&self, order_ref: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.lock_for(format!("order:{order_ref}"))
    }

    pub fn subscribe(&self, payment_id: &str) -> broadcast::Receiver<()> {
        let mut ch = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        ch.retain(|_, s| s.receiver_count() > 0);
        ch.entry(payment_id.to_string())
            .or_insert_with(|| broadcast::channel(16).0)
            .subscribe()
    }

    /// Wakes this instance's live-status subscribers of the payment (they read it again).
    pub fn publish(&self, payment_id: &str) {
        let ch = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = ch.get(payment_id) {
            let _ = s.send(());
        }
    }

    /// Another instance changed a payment (`None`: some payments, unknown which, after the
    /// change notifications were interrupted): cached bodies dropped, subscribers woken.
    pub fn changed_elsewhere(&self, payment_id: Option<&str>) {
        self.invalidate();
        match payment_id {
            Some(id) => self.publish(id),
            None => {
                let ch = self.channels.lock().unwrap_or_else(|p| p.into_inner());
                for s in ch.values() {
                    let _ = s.send(());
                }
            }
        }
    }

    /// How long a lease covers one poll: a status read, then maybe a cancel, each within the
    /// call budget, and a margin.
    fn lease_ms(&self) -> i64 {
        (2 * self.cfg.request_timeout_ms + 5_000) as i64
    }

    // ----- orders -------------------------------------------------------------------------

    pub async fn amounts(&self, order: &OrderRow) -> Result<OrderAmounts, CvcoError> {
        let paid_cvco = self
            .store
            .order_with_paid(&order.order_ref)
            .await?
            .map(|(_, paid)| paid)
            .unwrap_or(0);
        Ok(OrderAmounts::of(
            order.total_cents,
            &order.card_payments,
            paid_cvco,
        ))
    }

    /// The contract's Payment of a transactions-list row (no further query).
    pub fn transaction_json(&self, t: &TransactionRow) -> ContractPayment {
        let a = OrderAmounts::of(t.order_total_cents, &t.card_payments, t.paid_cvco_cents);
        self.payment_json_with(&t.payment, a)
    }

    /// Creates an order unless it exists; answers whether it was created.
    pub async fn insert_order(
        &self,
        order_ref: &str,
        owner: Option<&str>,
        kind: &str,
        lines: &Value,
        total_cents: i64,
    ) -> Result<bool, CvcoError> {
        self.insert_order_for(
            crate::tenants::DEFAULT_MERCHANT,
            order_ref,
            owner,
            kind,
            lines,
            total_cents,
        )
        .await
    }

    /// An order of `merchant_id` (its payments go through that merchant's plugin).
    pub async fn insert_order_for(
        &self,
        merchant_id: &str,
        order_ref: &str,
        owner: Option<&str>,
        kind: &str,
        lines: &Value,
        total_cents: i64,
    ) -> Result<bool, CvcoError> {
        self.store
            .insert_order_for(
                merchant_id,
                order_ref,
                owner,
                kind,
                &lines.to_string(),
                total_cents,
                now_ms(),
            )
            .await
    }

    // ----- the Payment object -------------------------------------------------------------

    pub async fn payment_json(&self, row: &PaymentRow) -> Result<ContractPayment, CvcoError> {
        let order = self
            .store
            .order(&row.order_ref)
            .await?
            .ok_or_else(|| CvcoError::new(ErrorCode::OrderNotFound))?;
        let a = self.amounts(&order).await?;
        Ok(self.payment_json_with(row, a))
    }

    /// The contract's Payment (cvco-core's rules, the plugin's `render_payment`) from the row.
    pub fn payment_json_with(&self, row: &PaymentRow, a: OrderAmounts) -> ContractPayment {
        let mut input = render_input(row, a);
        input.capture_window_s = Some(
            self.merchant_settings(&row.merchant_id)
                .deferred_capture_window_s,
        );
        contract::render_payment(input)
    }

    /// Whether the payment is still read from ANCV (cvco-core's rule).
    fn follows(&self, row: &PaymentRow) -> bool {
        let state = row.ancv_state.as_deref().and_then(TransactionState::parse);
        lifecycle::needs_following(row.is_final, state)
    }

    /// When an authorization awaiting its deferred capture can no longer be captured (ms):
    /// cvco-core's rule over ANCV's deadline and the merchant's window.
    pub fn capture_deadline(&self, row: &PaymentRow) -> Option<i64> {
        let p: Payment = serde_json::from_str(row.plugin.as_deref()?).ok()?;
        if !p.ancv_state.awaits_capture() {
            return None;
        }
        let window = self
            .merchant_settings(&row.merchant_id)
            .deferred_capture_window_s;
        lifecycle::capture_deadline(
            first_authorization(&p).map(Timestamp),
            p.expires_at,
            Some(window),
        )
        .map(|t| t.0)
    }

    // ----- creation -----------------------------------------------------------------------

    async fn by_attempt(
        &self,
        order_ref: &str,
        attempt: &str,
    ) -> Result<Option<PaymentRow>, CvcoError> {
        self.store.payment_by_attempt(order_ref, attempt).await
    }

    /// Creates (or finds) the payment of `order_ref` + `attempt`. `Ok((row, created))`.
    pub async fn start(
        &self,
        order_ref: &str,
        attempt: &str,
        channel: Channel,
        start: Start,
        amount: AmountSpec,
    ) -> Result<(PaymentRow, bool), CvcoError> {
        contract::check_attempt(attempt)?;
        let masked = match &start {
            Start::Identifier { beneficiary } | Start::Reserve { beneficiary } => Some(
                BeneficiaryId::parse(beneficiary)
                    .map_err(|e| e.with_field("beneficiary"))?
                    .masked(),
            ),
            Start::Request {
                delivery: DeliveryKind::Email,
                email,
                ..
            } => {
                let email = email.as_deref().unwrap_or("");
                match BeneficiaryId::parse(email) {
                    Ok(id @ BeneficiaryId::Email(_)) => Some(id.masked()),
                    _ => {
                        return Err(
                            CvcoError::new(ErrorCode::InvalidBeneficiary).with_field("email")
                        )
                    }
                }
            }
            _ => None,
        };
        let lock = self.lock_for(format!("order:{order_ref}"));
        let _guard = lock.lock().await;
        if let Some(row) = self.by_attempt(order_ref, attempt).await? {
            // The same attempt again (a retry after a lost answer): reconcile first.
            if row.status == PaymentStatus::Unknown {
                if let Ok(row) = self.refresh(&row.payment_id).await {
                    return Ok((row, false));
                }
            }
            return Ok((row, false));
        }
        let order = self
            .store
            .order(order_ref)
            .await?
            .ok_or_else(|| CvcoError::new(ErrorCode::OrderNotFound).with_field("order_ref"))?;
        // Before any new attempt, an earlier one whose outcome is unknown is settled with ANCV.
        self.settle_unknown_of_order(order_ref).await?;
        let others = self.store.payments_of_order(order_ref).await?;
        if let Some(open) = others.iter().find(|p| !p.is_final) {
            return Err(CvcoError::new(ErrorCode::PaymentInProgress)
                .with_detail(
                    "Un paiement précédent est en cours de vérification ou d'attente.",
                    "A previous payment is being checked or awaited.",
                )
                .with_payment_id(&open.payment_id));
        }
        let a = self.amounts(&order).await?;
        if a.remaining == 0 {
            return Err(CvcoError::new(ErrorCode::IllegalTransition)
                .with_detail("La commande est déjà payée.", "The order is already paid."));
        }
        let amount_cents = match amount {
            AmountSpec::Remaining => a.remaining,
            AmountSpec::Fixed(n) if n > 0 && n <= a.remaining => n,
            AmountSpec::Fixed(_) => {
                return Err(CvcoError::new(ErrorCode::InvalidAmount)
                    .with_detail(
                        "Au plus le reste dû de la commande.",
                        "At most what the order still needs.",
                    )
                    .with_field("amount_cents"))
            }
        };
        let key = idempotency_key("pay", order_ref, attempt);
        // The plugin applies the merchant's remainder minimum from these (cvco-core's rule).
        let facts = Some(OrderFacts {
            remaining_cents: self::amount(a.remaining),
            cvco_authorized: a.paid_cvco > 0,
        });
        let (call, input, mode) = match &start {
            Start::Identifier { beneficiary } | Start::Reserve { beneficiary } => (
                CreatePayment::NAME,
                serde_json::to_string(&CreatePaymentInput {
                    order_ref: order_ref.into(),
                    amount_cents,
                    channel,
                    beneficiary: Some(beneficiary.trim().into()),
                    adjustable: None,
                    idempotency_key: key,
                    // A pre-reservation: ANCV authorizes now, the merchant captures later.
                    capture_mode: matches!(start, Start::Reserve { .. })
                        .then_some(CaptureMode::Deferred),
                    notification_url: Some(self.notification_url_for(&order.merchant_id)),
                    return_url: None,
                    cancel_url: None,
                    now: None,
                    order: facts,
                }),
                PaymentMode::Identifier,
            ),
            Start::Qr => (
                CreatePaymentRequest::NAME,
                serde_json::to_string(&CreatePaymentRequestInput {
                    order_ref: order_ref.into(),
                    amount_cents,
                    channel: Some(channel),
                    delivery: DeliveryKind::Qr,
                    email: None,
                    expires_in_s: None,
                    idempotency_key: key,
                    adjustable: None,
                    capture_mode: None,
                    notification_url: Some(self.notification_url_for(&order.merchant_id)),
                    now: None,
                    order: facts,
                }),
                PaymentMode::Qr,
            ),
            Start::Request {
                delivery,
                email,
                expires_in_s,
                capture,
            } => (
                CreatePaymentRequest::NAME,
                serde_json::to_string(&CreatePaymentRequestInput {
                    order_ref: order_ref.into(),
                    amount_cents,
                    channel: Some(channel),
                    delivery: *delivery,
                    email: email.clone(),
                    expires_in_s: *expires_in_s,
                    idempotency_key: key,
                    adjustable: None,
                    capture_mode: Some(*capture),
                    notification_url: Some(self.notification_url_for(&order.merchant_id)),
                    now: None,
                    order: facts,
                }),
                match delivery {
                    DeliveryKind::Qr => PaymentMode::Qr,
                    DeliveryKind::Email => PaymentMode::Identifier,
                },
            ),
        };
        let input = input.map_err(|e| {
            CvcoError::new(ErrorCode::Internal).with_detail(&e.to_string(), &e.to_string())
        })?;
        let now = now_ms();
        let row = PaymentRow {
            payment_id: new_id("pay"),
            merchant_id: order.merchant_id.clone(),
            order_ref: order_ref.into(),
            attempt: attempt.into(),
            mode,
            channel,
            amount_cents,
            beneficiary_masked: masked,
            create_call: call.into(),
            create_input: input,
            transaction_id: None,
            request_id: None,
            // Recorded before the call: a crash or a lost answer leaves it to reconcile.
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
            created_at: now,
            updated_at: now,
            authorized_at: None,
            final_at: None,
            next_poll_at: now + self.cfg.poll_interval_ms as i64,
            poll_interval_ms: 0,
            recheck_at: None,
        };
        match self.store.insert_payment(&row).await {
            Ok(_) => self.invalidate(),
            // A concurrent process won the unique (order_ref, attempt): answer its payment.
            Err(e) => {
                if let Some(existing) = self.by_attempt(order_ref, attempt).await? {
                    return Ok((existing, false));
                }
                return Err(e);
            }
        }
        let plock = self.lock_for(format!("pay:{}", row.payment_id));
        let _pguard = plock.lock().await;
        match self.run_create(row.clone()).await {
            Ok(row) => Ok((row, true)),
            Err(e) if outcome_unknown(&e) => {
                // ANCV may hold it (the request left, the answer did not come back): kept as
                // unknown, reconciled by the poller, the next notification or the next attempt.
                let mut kept = row.clone();
                kept.next_poll_at = now_ms() + self.cfg.poll_interval_ms.max(50) as i64;
                self.store.save_payment(&kept).await?;
                self.invalidate();
                self.publish(&row.payment_id);
                tracing::warn!(order_ref, payment_id = %row.payment_id, code = %e.code, "payment creation outcome unknown: kept for reconciliation");
                Err(e.with_payment_id(&row.payment_id))
            }
            Err(e) => {
                // Refused outright (one upstream call, nothing created): the same attempt may
                // be sent again with corrected input.
                let _ = self.store.delete_payment(&row.payment_id).await;
                self.invalidate();
                tracing::info!(order_ref, code = %e.code, "payment creation refused");
                Err(e)
            }
        }
    }

    /// Calls the creation export recorded in the row (again, after a restart: same key).
    async fn run_create(&self, row: PaymentRow) -> Result<PaymentRow, CvcoError> {
        let unreadable = |e: serde_json::Error| {
            CvcoError::new(ErrorCode::Internal).with_detail(&e.to_string(), &e.to_string())
        };
        if row.create_call == CreatePayment::NAME {
            let input: CreatePaymentInput =
                serde_json::from_str(&row.create_input).map_err(unreadable)?;
            let deferred = input.capture_mode == Some(CaptureMode::Deferred);
            let p = self
                .plugin_for(&row.merchant_id)?
                .create_payment(input)
                .await?;
            tracing::info!(payment_id = %row.payment_id, transaction_id = %p.id, status = p.status.as_str(), "payment created");
            if deferred {
                // A direct pre-reservation: listed, finalised and cancelled with the payment
                // requests, under its own payment id (ANCV made no request for it).
                self.store
                    .insert_request(&RequestRow {
                        request_id: row.payment_id.clone(),
                        payment_id: row.payment_id.clone(),
                        delivery: DIRECT.into(),
                        email_masked: row.beneficiary_masked.clone(),
                        capture: "DEFERRED".into(),
                        expires_at: p.expires_at.map(|t| t.0).unwrap_or(row.created_at),
                        qr_payload: String::new(),
                        qr_svg: None,
                        finalised: false,
                    })
                    .await?;
            }
            self.commit_payment(row, &p).await
        } else {
            let input: CreatePaymentRequestInput =
                serde_json::from_str(&row.create_input).map_err(unreadable)?;
            let r = self
                .plugin_for(&row.merchant_id)?
                .create_payment_request(input.clone())
                .await?;
            tracing::info!(payment_id = %row.payment_id, request_id = %r.id, "payment request created");
            let capture = match input.capture_mode {
                Some(CaptureMode::Deferred) => "DEFERRED",
                _ => "NORMAL",
            };
            let email_masked = r
                .email
                .as_deref()
                .and_then(|e| BeneficiaryId::parse(e).ok())
                .map(|b| b.masked());
            let delivery = match r.delivery {
                DeliveryKind::Email => "email",
                DeliveryKind::Qr => "qr",
            };
            let svg = match (&r.svg, r.delivery) {
                (Some(svg), _) => Some(svg.clone()),
                (None, DeliveryKind::Qr) => None,
                (None, DeliveryKind::Email) => None,
            };
            self.store
                .insert_request(&RequestRow {
                    request_id: r.id.clone(),
                    payment_id: row.payment_id.clone(),
                    delivery: delivery.into(),
                    email_masked,
                    capture: capture.into(),
                    expires_at: r.expires_at.0,
                    qr_payload: r.qr_payload.clone(),
                    qr_svg: svg,
                    finalised: false,
                })
                .await?;
            self.commit_request(row, &r).await
        }
    }

    // ----- state updates ------------------------------------------------------------------

    /// Records a new state; bumps `sequence` and tells subscribers only on a real change.
    async fn commit(&self, old: PaymentRow, mut new: PaymentRow) -> Result<PaymentRow, CvcoError> {
        let now = now_ms();
        let changed = old.status != new.status
            || old.is_final != new.is_final
            || old.authorized_cents != new.authorized_cents
            || old.refunded_cents != new.refunded_cents
            || old.ancv_state != new.ancv_state
            || old.transaction_id != new.transaction_id
            || old.request_id != new.request_id
            || old.sequence == 0;
        let base = self.cfg.poll_interval_ms.max(50) as i64;
        if changed {
            new.sequence = old.sequence + 1;
            new.updated_at = now;
            new.poll_interval_ms = base;
            if new.is_final && old.final_at.is_none() {
                new.final_at = Some(now);
            }
        } else {
            new.poll_interval_ms = (old.poll_interval_ms.max(base) * 2)
                .min(self.cfg.poll_max_ms.max(base as u64) as i64);
        }
        new.next_poll_at = now + new.poll_interval_ms;
        self.store.save_payment(&new).await?;
        // Final for the beneficiary but still changing at ANCV (an authorization awaiting its
        // deferred capture): read again at the next poll time until captured, cancelled or expired.
        if new.is_final && self.follows(&new) {
            self.store
                .set_recheck(&new.payment_id, Some(new.next_poll_at))
                .await?;
        }
        if changed {
            self.invalidate();
            tracing::info!(payment_id = %new.payment_id, status = %new.status, sequence = new.sequence, "payment updated");
            self.publish(&new.payment_id);
        }
        Ok(new)
    }

    async fn commit_payment(&self, old: PaymentRow, p: &Payment) -> Result<PaymentRow, CvcoError> {
        let mut new = old.clone();
        new.transaction_id = Some(p.id.clone());
        new.status = PaymentStatus::Known(p.status);
        new.is_final = p.is_final;
        new.authorized_cents = p.authorized_cents.cents() as i64;
        new.refunded_cents = p.refunded_cents.cents() as i64;
        new.ancv_state = Some(p.ancv_state.as_str().into());
        new.plugin = serde_json::to_string(p).ok();
        new.deadline = p.expires_at.map(|t| t.0);
        new.authorized_at = first_authorization(p).or(old.authorized_at);
        // ANCV's answer replaces a refusal recorded on replay; a failure is explained by
        // cvco-core's rule when rendered.
        new.error = None;
        self.commit(old, new).await
    }

    async fn commit_request(
        &self,
        old: PaymentRow,
        r: &PaymentRequest,
    ) -> Result<PaymentRow, CvcoError> {
        let mut new = old.clone();
        new.request_id = Some(r.id.clone());
        new.transaction_id = r
            .payment
            .as_ref()
            .map(|p| p.id.clone())
            .or(old.transaction_id.clone());
        new.status = PaymentStatus::Known(r.status);
        new.is_final = r.is_final;
        new.authorized_cents = r.authorized_cents.cents() as i64;
        new.refunded_cents = r.refunded_cents.cents() as i64;
        new.ancv_state = Some(
            r.payment
                .as_ref()
                .map(|p| p.ancv_state.as_str().to_string())
                .unwrap_or_else(|| r.ancv_state.as_str().to_string()),
        );
        new.plugin = r
            .payment
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok());
        new.qr = Some(
            json!({"payload": r.qr_payload, "expires_at": r.expires_at.to_rfc3339()}).to_string(),
        );
        new.deadline = match &r.payment {
            Some(p) if !p.is_final => p.expires_at.map(|t| t.0),
            _ => Some(r.expires_at.0),
        };
        new.authorized_at = r
            .payment
            .as_ref()
            .and_then(first_authorization)
            .or(old.authorized_at);
        new.error = None;
        self.commit(old, new).await
    }

    /// Reads the truth from ANCV through the plugin and records it.
    pub async fn refresh(&self, payment_id: &str) -> Result<PaymentRow, CvcoError> {
        let lock = self.lock_for(format!("pay:{payment_id}"));
        let _guard = lock.lock().await;
        self.refresh_locked(payment_id).await
    }

    async fn refresh_locked(&self, payment_id: &str) -> Result<PaymentRow, CvcoError> {
        let row = self
            .store
            .payment(payment_id)
            .await?
            .ok_or_else(|| CvcoError::new(ErrorCode::PaymentNotFound))?;
        let result = if let Some(request_id) = row.request_id.clone() {
            let r: Result<PaymentRequest, _> = self
                .plugin_for(&row.merchant_id)?
                .get_payment_request(PaymentRequestIdInput {
                    request_id,
                    now: None,
                })
                .await;
            match r {
                Ok(r) => self.commit_request(row.clone(), &r).await,
                Err(e) => Err(e),
            }
        } else if let Some(tx) = row.transaction_id.clone() {
            let p: Result<Payment, _> = self
                .plugin_for(&row.merchant_id)?
                .get_payment(PaymentIdInput {
                    payment_id: tx,
                    now: None,
                })
                .await;
            match p {
                Ok(p) => self.commit_payment(row.clone(), &p).await,
                Err(e) => Err(e),
            }
        } else {
            // Created before a crash, or its answer lost: the same call with the same key.
            match self.run_create(row.clone()).await {
                Err(e) if !outcome_unknown(&e) => {
                    // Refused on replay: ANCV never made it. Final, with the reason.
                    let mut failed = row.clone();
                    failed.status = PaymentStatus::Known(NormalizedStatus::Failed);
                    failed.is_final = true;
                    failed.error = serde_json::to_string(&e).ok();
                    tracing::warn!(payment_id, code = %e.code, "unknown outcome settled: not created at ANCV");
                    return self.commit(row.clone(), failed).await;
                }
                other => other,
            }
        };
        match result {
            Ok(new) => {
                if row.recheck_at.is_some() && !(new.is_final && self.follows(&new)) {
                    self.store.set_recheck(payment_id, None).await?;
                }
                Ok(new)
            }
            Err(e) => {
                let mut retry = row.clone();
                let base = self.cfg.poll_interval_ms.max(50) as i64;
                retry.poll_interval_ms =
                    (row.poll_interval_ms.max(base) * 2).min(self.cfg.poll_max_ms as i64);
                retry.next_poll_at = now_ms() + retry.poll_interval_ms;
                let _ = self.store.save_payment(&retry).await;
                if row.recheck_at.is_some() {
                    let _ = self
                        .store
                        .set_recheck(payment_id, Some(retry.next_poll_at))
                        .await;
                }
                tracing::warn!(payment_id, code = %e.code, "refresh failed");
                Err(e)
            }
        }
    }

    /// Reconciles the order's payments whose creation outcome is unknown (a failed read leaves
    /// one to the poller); answers whether there were any.
    async fn settle_unknown_of_order(&self, order_ref: &str) -> Result<bool, CvcoError> {
        let unknown: Vec<String> = self
            .store
            .payments_of_order(order_ref)
            .await?
            .into_iter()
            .filter(|p| p.status == PaymentStatus::Unknown)
            .map(|p| p.payment_id)
            .collect();
        for id in &unknown {
            let _ = self.refresh(id).await;
        }
        Ok(!unknown.is_empty())
    }

    /// Before a follow-up operation: a payment whose creation or last operation has an unknown
    /// outcome is read from ANCV first, so the operation acts on the truth (and an operation
    /// never runs twice because its first answer was lost).
    async fn settle_locked(&self, payment_id: &str) -> Result<PaymentRow, CvcoError> {
        let row = self
            .store
            .payment(payment_id)
            .await?
            .ok_or_else(|| CvcoError::new(ErrorCode::PaymentNotFound))?;
        if row.status != PaymentStatus::Unknown && row.recheck_at.is_none() {
            return Ok(row);
        }
        match self.refresh_locked(payment_id).await {
            Ok(row) if row.status != PaymentStatus::Unknown => Ok(row),
            _ => Err(CvcoError::new(ErrorCode::PaymentInProgress)
                .with_detail(
                    "Résultat de la dernière opération en cours de vérification auprès de l'ANCV.",
                    "The last operation's outcome is being checked with ANCV.",
                )
                .with_payment_id(payment_id)),
        }
    }

    /// Before a follow-up call: marks the payment to be read again should this process die
    /// before the answer is recorded (the start-up reconciliation and the poller pick it up).
    async fn begin_follow_up(&self, payment_id: &str) -> Result<(), CvcoError> {
        let budget = self.cfg.request_timeout_ms as i64 + self.cfg.poll_interval_ms as i64;
        self.store
            .set_recheck(payment_id, Some(now_ms() + budget))
            .await
    }

    /// After a follow-up call failed: when it may have taken effect anyway, the payment is read
    /// again now and, failing that, by the poller until a read succeeds; a refusal changed
    /// nothing, so the mark set by `begin_follow_up` goes.
    async fn follow_up_failed(&self, payment_id: &str, e: CvcoError) -> CvcoError {
        if outcome_unknown(&e) {
            let at = now_ms() + self.cfg.poll_interval_ms.max(50) as i64;
            let _ = self.store.set_recheck(payment_id, Some(at)).await;
            let _ = self.refresh_locked(payment_id).await;
            tracing::warn!(payment_id, code = %e.code, "operation outcome unknown: payment read again");
        } else {
            // A refused operation changed nothing: a followed reservation stays followed.
            let keep = match self.store.payment(payment_id).await {
                Ok(Some(r)) if r.is_final && self.follows(&r) => Some(r.next_poll_at),
                _ => None,
            };
            let _ = self.store.set_recheck(payment_id, keep).await;
        }
        e
    }

    /// Gives up on a non-final payment: cancels it upstream, then records the truth.
    pub async fn cancel(
        &self,
        payment_id: &str,
        password: Option<String>,
    ) -> Result<PaymentRow, CvcoError> {
        let lock = self.lock_for(format!("pay:{payment_id}"));
        let _guard = lock.lock().await;
        let row = self.settle_locked(payment_id).await?;
        // Already cancelled (a retried or concurrent cancel that waited for this lock): answered
        // as it is, never voided twice at ANCV.
        if row.is_final && row.status.is(NormalizedStatus::Cancelled) {
            return Ok(row);
        }
        self.begin_follow_up(payment_id).await?;
        match self.cancel_locked(row, password).await {
            Err(e) => Err(self.follow_up_failed(payment_id, e).await),
            Ok(row) => {
                self.store.set_recheck(payment_id, None).await?;
                Ok(row)
            }
        }
    }

    async fn cancel_locked(
        &self,
        row: PaymentRow,
        password: Option<String>,
    ) -> Result<PaymentRow, CvcoError> {
        if let (Some(request_id), false) = (row.request_id.clone(), row.is_final) {
            let r: PaymentRequest = self
                .plugin_for(&row.merchant_id)?
                .cancel_payment_request(PaymentRequestIdInput {
                    request_id,
                    now: None,
                })
                .await?;
            return self.commit_request(row, &r).await;
        }
        let tx = row
            .transaction_id
            .clone()
            .ok_or_else(|| CvcoError::new(ErrorCode::IllegalTransition))?;
        let p: Payment = self
            .plugin_for(&row.merchant_id)?
            .cancel_payment(CancelPaymentInput {
                payment_id: tx,
                password,
                now: None,
            })
            .await?;
        let saved = self.commit_payment(row.clone(), &p).await?;
        if row.request_id.is_some() {
            return self.refresh_locked(&row.payment_id).await.or(Ok(saved));
        }
        Ok(saved)
    }

    pub async fn refund(
        &self,
        payment_id: &str,
        amount_cents: Option<i64>,
        reason: Option<String>,
        attempt: &str,
    ) -> Result<PaymentRow, CvcoError> {
        let lock = self.lock_for(format!("pay:{payment_id}"));
        let _guard = lock.lock().await;
        let row = self.settle_locked(payment_id).await?;
        let tx = row
            .transaction_id
            .clone()
            .ok_or_else(|| CvcoError::new(ErrorCode::IllegalTransition))?;
        self.begin_follow_up(payment_id).await?;
        let refunded: Result<Payment, CvcoError> = self
            .plugin_for(&row.merchant_id)?
            .refund_payment(RefundPaymentInput {
                payment_id: tx,
                amount_cents,
                reason,
                idempotency_key: idempotency_key("refund", payment_id, attempt),
                now: None,
            })
            .await;
        let p = match refunded {
            Ok(p) => p,
            Err(e) => return Err(self.follow_up_failed(payment_id, e).await),
        };
        tracing::info!(
            payment_id,
            refunded_cents = p.refunded_cents.cents(),
            "refund"
        );
        let saved = self.commit_payment(row.clone(), &p).await?;
        self.store.set_recheck(payment_id, None).await?;
        if row.request_id.is_some() {
            return self.refresh_locked(payment_id).await.or(Ok(saved));
        }
        Ok(saved)
    }

    pub async fn capture(
        &self,
        payment_id: &str,
        amount_cents: Option<i64>,
    ) -> Result<PaymentRow, CvcoError> {
        let lock = self.lock_for(format!("pay:{payment_id}"));
        let _guard = lock.lock().await;
        let row = self.settle_locked(payment_id).await?;
        let tx = row
            .transaction_id
            .clone()
            .ok_or_else(|| CvcoError::new(ErrorCode::IllegalTransition))?;
        if let Some(deadline) = self.capture_deadline(&row).filter(|d| now_ms() > *d) {
            // ANCV may have expired it already: the record says so at once.
            let _ = self.refresh_locked(payment_id).await;
            return Err(capture_deadline_passed(Some(deadline)));
        }
        self.begin_follow_up(payment_id).await?;
        let captured: Result<Payment, CvcoError> = self
            .plugin_for(&row.merchant_id)?
            .capture_payment(CapturePaymentInput {
                payment_id: tx,
                amount_cents,
                now: None,
            })
            .await;
        let p = match captured {
            Ok(p) => p,
            Err(e) => return Err(self.follow_up_failed(payment_id, e).await),
        };
        self.commit_payment(row.clone(), &p).await?;
        self.store.set_recheck(payment_id, None).await?;
        self.refresh_locked(payment_id).await
    }

    // ----- notifications ------------------------------------------------------------------

    /// `Ok(true)`: new and processed, or about an object this host does not know (nothing
    /// recorded); `Ok(false)`: duplicate or older than what we know.
    pub async fn notification(
        &self,
        merchant_id: &str,
        headers: BTreeMap<String, String>,
        body: String,
    ) -> Result<bool, CvcoError> {
        // Verified with this merchant's notification secret (its own URL).
        let verified = self
            .plugin_for(merchant_id)
            .map_err(|_| CvcoError::new(ErrorCode::NotFound))?
            .verify_notification(VerifyNotificationInput {
                headers,
                body,
                now: Some(Timestamp(now_ms())),
                tolerance_s: None,
            })
            .await?;
        let n = &verified.notification;
        let mut payment_id = self.payment_for(n).await?;
        if payment_id.is_none() {
            // The answer to our creation call may still be on its way: wait for it.
            let lock = self.order_lock(&n.merchant_order_id);
            drop(lock.lock().await);
            payment_id = self.payment_for(n).await?;
        }
        // Its creation's answer was lost: settle the order's unknown payments, then apply.
        if payment_id.is_none() && self.settle_unknown_of_order(&n.merchant_order_id).await? {
            payment_id = self.payment_for(n).await?;
        }
        // Another merchant's payment, named in a notification this merchant signed: not ours.
        if let Some(id) = &payment_id {
            let owner = self.store.payment(id).await?.map(|p| p.merchant_id);
            if owner.as_deref() != Some(merchant_id) {
                payment_id = None;
            }
        }
        let Some(id) = payment_id else {
            // Not ours (PROTOCOL.md §3): 204, nothing recorded.
            tracing::info!(event_id = %verified.event_id, "notification for an unknown object");
            return Ok(true);
        };
        // Dedup on what the plugin says the notification is about (cvco-core's rule).
        let object = verified.object_key.clone();
        let event_id = verified.event_id.clone();
        let sequence = n.sequence as i64;
        let fresh = self
            .store
            .record_notification(&event_id, &object, sequence, now_ms())
            .await?;
        if !fresh {
            tracing::info!(event_id = %verified.event_id, "notification already processed or older");
            return Ok(false);
        }
        tracing::info!(event_id = %verified.event_id, payment_id = %id, state = %n.state, "notification");
        // The polling picks it up again if the read fails now.
        if let Ok(row) = self.refresh(&id).await {
            self.refuse_partial_if_asked(row).await;
        }
        Ok(true)
    }

    async fn payment_for(
        &self,
        n: &cvco_core::wire::Notification,
    ) -> Result<Option<String>, CvcoError> {
        self.store
            .payment_id_by_ancv(n.transaction_id.as_deref(), n.pre_transaction_id.as_deref())
            .await
    }

    // ----- polling, expiry, start-up ------------------------------------------------------

    /// Payments due for a status read.
    /// Payments due for a status read, leased to this instance.
    async fn due(&self, now: i64) -> Result<Vec<String>, CvcoError> {
        self.store
            .claim_due(&self.instance_id, now, self.lease_ms(), 64)
            .await
    }

    /// One status read, then a cancel when the deadline passed long enough ago (or when the
    /// read found a partial authorization refused on its channel).
    async fn poll_one(self: Arc<Self>, payment_id: String) {
        let row = match self.refresh(&payment_id).await {
            Ok(row) => self.refuse_partial_if_asked(row).await,
            Err(_) => match self.store.payment(&payment_id).await {
                Ok(Some(row)) => row,
                _ => return,
            },
        };
        let grace = self.cfg.expiry_grace_ms as i64;
        if !row.is_final && row.deadline.is_some_and(|d| d + grace < now_ms()) {
            tracing::info!(payment_id = %payment_id, "deadline passed: cancelling");
            if let Err(e) = self.cancel(&payment_id, None).await {
                tracing::warn!(payment_id = %payment_id, code = %e.code, "cancel after deadline failed");
            }
        }
    }

    pub async fn poll_loop(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let tick = std::time::Duration::from_millis((self.cfg.poll_interval_ms / 4).clamp(20, 250));
        let sweep_every = std::time::Duration::from_millis(refuse_partial::SWEEP_EVERY_MS);
        let mut swept = std::time::Instant::now();
        let mut sweep: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let stopping = tokio::select! {
                _ = stop.wait_for(|s| *s) => true,
                _ = tokio::time::sleep(tick) => false,
            };
            if stopping {
                // A void under way ends and is recorded before the host stops.
                if let Some(s) = sweep {
                    let _ = s.await;
                }
                return;
            }
            // Refused partial authorizations another (dead) instance left unvoided; beside the
            // polling (a slow ANCV must not hold it), one sweep at a time.
            if swept.elapsed() >= sweep_every && sweep.as_ref().is_none_or(|s| s.is_finished()) {
                swept = std::time::Instant::now();
                let engine = self.clone();
                sweep = Some(tokio::spawn(async move {
                    engine.sweep_refused_partials().await;
                }));
            }
            let due = match self.due(now_ms()).await {
                Ok(d) => d,
                Err(_) => continue,
            };
            let mut set = tokio::task::JoinSet::new();
            for id in due {
                set.spawn(self.clone().poll_leased(id));
            }
            while set.join_next().await.is_some() {}
        }
    }

    /// [`Engine::poll_one`] on a payment leased to this instance, then the lease given back.
    async fn poll_leased(self: Arc<Self>, payment_id: String) {
        self.clone().poll_one(payment_id.clone()).await;
        if let Err(e) = self.store.release(&self.instance_id, &payment_id).await {
            tracing::warn!(payment_id = %payment_id, code = %e.code, "lease not released (it expires)");
        }
    }

    /// Start-up: every non-final payment no other live instance holds is read again (and
    /// expired ones cancelled), then refused partial authorizations left unvoided are voided.
    pub async fn reconcile(self: &Arc<Self>) {
        let open = self
            .store
            .claim_open(&self.instance_id, now_ms(), self.lease_ms())
            .await
            .unwrap_or_default();
        if !open.is_empty() {
            tracing::info!(count = open.len(), "reconciling non-final payments");
        }
        let mut set = tokio::task::JoinSet::new();
        for id in open {
            set.spawn(self.clone().poll_leased(id));
        }
        while set.join_next().await.is_some() {}
        // Refused partial authorizations recorded before a crash and left unvoided.
        let voided = self.sweep_refused_partials().await;
        if voided > 0 {
            tracing::info!(count = voided, "refused partial authorizations swept");
        }
    }

    pub async fn request_row(
        &self,
        request_id: &str,
    ) -> Result<(RequestRow, PaymentRow), CvcoError> {
        let req = self
            .store
            .request(request_id)
            .await?
            .ok_or_else(|| CvcoError::new(ErrorCode::PreTransactionNotFound))?;
        let pay = self
            .store
            .payment(&req.payment_id)
            .await?
            .ok_or_else(|| CvcoError::new(ErrorCode::PreTransactionNotFound))?;
        Ok((req, pay))
    }
}

/// A deferred authorization whose capture window closed (`deadline` in ms when known).
pub fn capture_deadline_passed(deadline: Option<i64>) -> CvcoError {
    let at = deadline
        .map(|d| format!(" ({})", Timestamp(d).to_rfc3339()))
        .unwrap_or_default();
    CvcoError::new(ErrorCode::IllegalTransition).with_detail(
        &format!(
            "Délai de finalisation dépassé{at} : la pré-réservation ne peut plus être encaissée."
        ),
        &format!("Capture deadline passed{at}: the pre-reservation can no longer be captured."),
    )
}

fn first_authorization(p: &Payment) -> Option<i64> {
    p.payers
        .iter()
        .flat_map(|x| x.authorizations.iter())
        .map(|a| a.validated_at.0)
        .min()
}

/// A recorded amount as the contract's type (never negative).
pub fn amount(cents: i64) -> Amount {
    Amount::from_i64(cents.max(0)).unwrap_or(Amount::ZERO)
}

/// What this host recorded about a payment, as the input of the contract's Payment.
fn render_input(row: &PaymentRow, a: OrderAmounts) -> RenderPaymentInput {
    let payment: Option<Payment> = row
        .plugin
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok());
    // A payment request's own status holds until its transaction's is the request's (a declined
    // attempt puts the request back to awaiting a beneficiary; it may then expire unpaid).
    let payment = payment
        .filter(|p| row.request_id.is_none() || PaymentStatus::Known(p.status) == row.status);
    let request = match (&payment, &row.request_id, row.qr.as_deref()) {
        (None, Some(_), Some(qr)) => {
            let qr: Value = serde_json::from_str(qr).unwrap_or(Value::Null);
            let expires_at = qr["expires_at"]
                .as_str()
                .and_then(|t| Timestamp::parse_rfc3339(t).ok())
                .or(row.deadline.map(Timestamp));
            let status = match row.status {
                PaymentStatus::Known(s) => Some(s),
                PaymentStatus::Unknown => None,
            };
            match (status, expires_at) {
                (Some(status), Some(expires_at)) => Some(RequestFacts {
                    status,
                    expires_at,
                    qr_payload: qr["payload"]
                        .as_str()
                        .filter(|_| row.mode == PaymentMode::Qr)
                        .map(str::to_string),
                }),
                _ => None,
            }
        }
        _ => None,
    };
    RenderPaymentInput {
        payment_id: row.payment_id.clone(),
        order_ref: row.order_ref.clone(),
        mode: row.mode,
        order_total_cents: amount(a.total),
        order_remaining_cents: amount(a.remaining),
        sequence: row.sequence.max(0) as u64,
        created_at: Timestamp(row.created_at),
        updated_at: Timestamp(row.updated_at),
        events_url: format!("/cvco/v1/payments/{}/events", row.payment_id),
        beneficiary_masked: row.beneficiary_masked.clone(),
        request_id: row.request_id.clone(),
        channel: Some(row.channel),
        payment,
        request,
        amount_cents: Some(amount(row.amount_cents)),
        capture_window_s: None,
        error: row
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok()),
    }
}
