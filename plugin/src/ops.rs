//! The exports' logic: check the input, call the acquisition server, shape the answer. Every
//! path ends in `{"ok": ...}` or `{"error": CvcoError}`; nothing here panics on bad input.

use crate::client::Ctx;
use crate::config::{self, ApiConfig};
use crate::host::Host;
use crate::util::{qr_svg, query};
use cvco_core::contract;
use cvco_core::lifecycle::CaptureMode;
use cvco_core::plugin_api::*;
use cvco_core::signature::{self, VerifiedNotification, DEFAULT_TOLERANCE_S};
use cvco_core::wire::{
    self, CancelRequest, CaptureRequest, CreatePreTransaction, CreateTransaction, DailyTotals,
    PreTransaction, RefundRequest, RemittanceStatement, RequestAuthorization, Transaction,
    TransactionList,
};
use cvco_core::{
    Amount, BeneficiaryId, Channel, CvcoError, ErrorCode, MerchantSettings, OrderFacts,
    PreTransactionState, TransactionState,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Runs `$handler` for the export whose name is `$function`, typed by the catalogue, or falls
/// through.
macro_rules! route {
    ($function:expr, $input:expr; $($export:ty => $handler:expr,)*) => {
        $(
            if $function == <$export as Export>::NAME {
                return run::<<$export as Export>::Input, <$export as Export>::Output>(
                    $input, $handler,
                );
            }
        )*
    };
}

/// Runs export `function` on the raw input and returns the JSON answer.
pub fn dispatch(host: &mut dyn Host, function: &str, input: &[u8]) -> Vec<u8> {
    use cvco_core::plugin_api::exports as x;
    // Whatever its input: what a host calls first, to learn what this plugin is.
    if function == x::Capabilities::NAME {
        return reply(Ok(capabilities(host)));
    }
    route!(function, input;
        x::ValidateBeneficiary => |i| validate_beneficiary(&i),
        x::CreatePayment => |i| create_payment(host, i),
        x::RequestAuthorization => |i| request_authorization(host, i),
        x::GetPayment => |i| get_payment(host, i),
        x::CapturePayment => |i| capture_payment(host, i),
        x::CancelPayment => |i| cancel_payment(host, i),
        x::RefundPayment => |i| refund_payment(host, i),
        x::CreatePaymentRequest => |i| create_payment_request(host, i),
        x::GetPaymentRequest => |i| get_payment_request(host, i),
        x::CancelPaymentRequest => |i| cancel_payment_request(host, i),
        x::VerifyNotification => |i| verify_notification(host, i),
        x::ListPayments => |i| list_payments(host, i),
        x::DailyTotals => |i| daily_totals(host, i),
        x::RenderQr => |i| render_qr(&i),
        x::CheckConnection => |i| check_connection(host, i),
        x::Checkout => |i| Ok(contract::checkout(&config::merchant_settings(host)?, i)),
        x::RenderPayment => |i| Ok(contract::render_payment(i)),
        x::ErrorCatalogue => |_| Ok(contract::error_catalogue()),
        x::ParseRequest => |i: contract::ParseRequestInput| contract::parse_request(i.operation, &i.body),
    );
    reply::<()>(Err(
        CvcoError::new(ErrorCode::NotFound).with_detail("Fonction inconnue.", "Unknown function.")
    ))
}

fn run<I: DeserializeOwned, O: Serialize>(
    input: &[u8],
    f: impl FnOnce(I) -> Result<O, CvcoError>,
) -> Vec<u8> {
    reply(parse(input).and_then(f))
}

fn reply<O: Serialize>(result: Result<O, CvcoError>) -> Vec<u8> {
    serde_json::to_vec(&Reply::from(result)).unwrap_or_else(|_| {
        br#"{"error":{"code":"internal","message_fr":"Erreur interne.","message_en":"Internal error.","retryable":true}}"#.to_vec()
    })
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parses an export's input; serde's message names the culprit (`field` when it can).
fn parse<I: DeserializeOwned>(input: &[u8]) -> Result<I, CvcoError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(CvcoError::new(ErrorCode::InvalidRequest).with_detail(
            &format!("Entrée de plus de {MAX_INPUT_BYTES} octets."),
            &format!("Input larger than {MAX_INPUT_BYTES} bytes."),
        ));
    }
    // Only objects: serde would also read a struct from an array, positionally.
    if input.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail("Un objet JSON est attendu.", "A JSON object is expected."));
    }
    serde_json::from_slice(input).map_err(|e| {
        let msg = e.to_string();
        let detail = truncate(&msg, 200);
        let mut err = CvcoError::new(ErrorCode::InvalidRequest).with_detail(
            &format!("JSON attendu : {detail}"),
            &format!("JSON expected: {detail}"),
        );
        if let Some(field) = msg.split('`').nth(1).filter(|f| {
            (msg.starts_with("missing field") || msg.starts_with("unknown field")) && f.len() <= 64
        }) {
            err = err.with_field(field);
        }
        err
    })
}

fn to_json<T: Serialize>(body: &T) -> Result<Vec<u8>, CvcoError> {
    serde_json::to_vec(body).map_err(|_| CvcoError::new(ErrorCode::Internal))
}

fn invalid(field: &str, fr: &str, en: &str) -> CvcoError {
    CvcoError::new(ErrorCode::InvalidRequest)
        .with_detail(fr, en)
        .with_field(field)
}

fn check_order_ref(order_ref: &str) -> Result<(), CvcoError> {
    wire::check_reference(order_ref).map_err(|e| e.with_field("order_ref"))
}

fn check_url(url: &Option<String>, field: &str) -> Result<(), CvcoError> {
    let Some(url) = url else { return Ok(()) };
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() <= 2048
        && url.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "URL http(s) de 2048 caractères au plus attendue.",
            "http(s) URL of at most 2048 characters expected.",
        ))
    }
}

/// The merchant's minimum, or its remainder minimum for a chained payment (cvco-core's rule, on
/// the order facts the host gives).
fn check_amount(
    cfg: &ApiConfig,
    cents: i64,
    order: Option<OrderFacts>,
) -> Result<Amount, CvcoError> {
    let amount = Amount::from_i64(cents).map_err(|e| e.with_field("amount_cents"))?;
    let settings = MerchantSettings {
        min_amount_cents: cfg.min_amount,
        remainder_min_cents: cfg.remainder_min,
        ..MerchantSettings::default()
    };
    settings.check_amount_for(amount, order)?;
    Ok(amount)
}

fn positive_amount(cents: Option<i64>, field: &str) -> Result<Option<i64>, CvcoError> {
    let Some(c) = cents else { return Ok(None) };
    let a = Amount::from_i64(c).map_err(|e| e.with_field(field))?;
    if a.is_zero() {
        return Err(CvcoError::new(ErrorCode::InvalidAmount)
            .with_detail(
                "Le montant doit être positif.",
                "The amount must be positive.",
            )
            .with_field(field));
    }
    Ok(Some(c))
}

fn beneficiary(input: &str, field: &str) -> Result<BeneficiaryId, CvcoError> {
    BeneficiaryId::parse(input).map_err(|e| e.with_field(field))
}

fn tx_path(id: &str) -> String {
    format!("{}/transactions/{id}", wire::API_PREFIX)
}

fn pt_path(id: &str) -> String {
    format!("{}/pre-transactions/{id}", wire::API_PREFIX)
}

fn capabilities(host: &mut dyn Host) -> Capabilities {
    Capabilities {
        plugin: "cvco-plugin".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: PLUGIN_API_VERSION,
        channels: Channel::ALL.to_vec(),
        functions: FUNCTIONS.iter().map(|f| f.to_string()).collect(),
        config_keys: CONFIG_KEYS
            .iter()
            .map(|(key, required, secret, description)| ConfigKey {
                key: key.to_string(),
                required: *required,
                secret: *secret,
                present: matches!(host.config(key), Ok(Some(v)) if !v.trim().is_empty()),
                description: description.to_string(),
            })
            .collect(),
    }
}

fn create_payment(host: &mut dyn Host, i: CreatePaymentInput) -> Result<Payment, CvcoError> {
    check_order_ref(&i.order_ref)?;
    Amount::from_i64(i.amount_cents).map_err(|e| e.with_field("amount_cents"))?;
    check_idempotency_key(&i.idempotency_key, "idempotency_key")?;
    let who = i
        .beneficiary
        .as_deref()
        .map(|b| beneficiary(b, "beneficiary"))
        .transpose()?;
    check_url(&i.notification_url, "notification_url")?;
    check_url(&i.return_url, "return_url")?;
    check_url(&i.cancel_url, "cancel_url")?;
    let cfg = ApiConfig::load(host)?;
    check_amount(&cfg, i.amount_cents, i.order)?;
    // One call creates and pushes: a refused beneficiary leaves no transaction at ANCV, and the
    // key covers the push, so a retry or a concurrent duplicate never pushes twice.
    let body = CreateTransaction {
        shop_id: cfg.shop_id.clone(),
        merchant_order_id: i.order_ref.trim().to_string(),
        amount_cents: i.amount_cents,
        currency: wire::eur(),
        channel: i.channel,
        adjustable: i.adjustable.or(cfg.adjustable),
        capture_mode: i.capture_mode.unwrap_or_default(),
        notification_url: i.notification_url,
        return_url: i.return_url,
        cancel_url: i.cancel_url,
        beneficiary: who.map(|w| w.as_str().to_string()),
    };
    let mut ctx = Ctx::new(host, i.now);
    let path = format!("{}/transactions", wire::API_PREFIX);
    let tx: Transaction = ctx.api(
        &cfg,
        "POST",
        &path,
        Some(to_json(&body)?),
        Some(&i.idempotency_key),
    )?;
    Ok(payment(&ctx, &cfg, &tx))
}

/// The payment view; a wait without a server deadline gets the configured authorization timeout.
fn payment(ctx: &Ctx, cfg: &ApiConfig, tx: &Transaction) -> Payment {
    let mut p = Payment::from_transaction(tx);
    if let NextAction::WaitForApp { deadline: None } = p.next_action {
        p.next_action = NextAction::WaitForApp {
            deadline: ctx
                .estimate_now()
                .map(|now| now.plus_secs(i64::from(cfg.authorization_timeout_s))),
        };
    }
    p
}

fn request_authorization(
    host: &mut dyn Host,
    i: RequestAuthorizationInput,
) -> Result<Payment, CvcoError> {
    check_object_id(&i.payment_id, "payment_id")?;
    let who = beneficiary(&i.beneficiary, "beneficiary")?;
    if let Some(k) = &i.idempotency_key {
        check_idempotency_key(k, "idempotency_key")?;
    }
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let body = RequestAuthorization {
        beneficiary: who.as_str().to_string(),
    };
    let path = format!("{}/authorizations", tx_path(&i.payment_id));
    let key = i.idempotency_key.as_deref();
    // A repeat that finds the payment already pushed is not a mistake of the caller: it
    // follows that payment.
    post_tx_op(
        &mut ctx,
        &cfg,
        &i.payment_id,
        &path,
        to_json(&body)?,
        key,
        |_, tx| {
            tx.state.is_awaiting_beneficiary().then(|| {
                Err(CvcoError::new(ErrorCode::PaymentInProgress)
                    .with_detail(
                        "Déjà envoyé à l'application : suivez get_payment.",
                        "Already pushed to the app: follow get_payment.",
                    )
                    .with_payment_id(&tx.id))
            })
        },
    )
}

/// POSTs an operation on a transaction. The server refuses a repeat of it (after a lost
/// answer, or a concurrent duplicate) as an illegal transition: the transaction is then read and
/// `repeated` says what the repeat means (its answer), or `None` when the refusal stands.
fn post_tx_op(
    ctx: &mut Ctx,
    cfg: &ApiConfig,
    id: &str,
    path: &str,
    body: Vec<u8>,
    key: Option<&str>,
    repeated: impl FnOnce(&Ctx, &Transaction) -> Option<Result<Payment, CvcoError>>,
) -> Result<Payment, CvcoError> {
    match ctx.api::<Transaction>(cfg, "POST", path, Some(body), key) {
        Ok(tx) => Ok(payment(ctx, cfg, &tx)),
        Err(e) if e.code == ErrorCode::IllegalTransition => {
            let tx = fetch_tx(ctx, cfg, id)?;
            repeated(ctx, &tx).unwrap_or(Err(e))
        }
        Err(e) => Err(e),
    }
}

fn fetch_tx(ctx: &mut Ctx, cfg: &ApiConfig, id: &str) -> Result<Transaction, CvcoError> {
    ctx.api(cfg, "GET", &tx_path(id), None, None)
}

fn get_payment(host: &mut dyn Host, i: PaymentIdInput) -> Result<Payment, CvcoError> {
    check_object_id(&i.payment_id, "payment_id")?;
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let tx = fetch_tx(&mut ctx, &cfg, &i.payment_id)?;
    Ok(payment(&ctx, &cfg, &tx))
}

fn capture_payment(host: &mut dyn Host, i: CapturePaymentInput) -> Result<Payment, CvcoError> {
    check_object_id(&i.payment_id, "payment_id")?;
    let amount_cents = positive_amount(i.amount_cents, "amount_cents")?;
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let body = CaptureRequest { amount_cents };
    let path = format!("{}/capture", tx_path(&i.payment_id));
    // The retry of a capture whose answer was lost finds it captured: that is success.
    post_tx_op(
        &mut ctx,
        &cfg,
        &i.payment_id,
        &path,
        to_json(&body)?,
        None,
        |ctx, tx| {
            let asked = amount_cents.unwrap_or(tx.authorized_cents.cents() as i64);
            let same_capture = tx.capture_mode == CaptureMode::Deferred
                && matches!(
                    tx.state,
                    TransactionState::Validated | TransactionState::Used
                )
                && tx.captured_cents.cents() as i64 == asked;
            same_capture.then(|| Ok(payment(ctx, &cfg, tx)))
        },
    )
}

fn cancel_payment(host: &mut dyn Host, i: CancelPaymentInput) -> Result<Payment, CvcoError> {
    check_object_id(&i.payment_id, "payment_id")?;
    if i.password.as_ref().is_some_and(|p| p.len() > 128) {
        return Err(invalid(
            "password",
            "128 caractères au plus.",
            "At most 128 characters.",
        ));
    }
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let body = CancelRequest {
        password: i.password,
    };
    let path = format!("{}/cancel", tx_path(&i.payment_id));
    // The retry of a cancellation whose answer was lost finds it cancelled: that is success.
    post_tx_op(
        &mut ctx,
        &cfg,
        &i.payment_id,
        &path,
        to_json(&body)?,
        None,
        |ctx, tx| (tx.state == TransactionState::Cancelled).then(|| Ok(payment(ctx, &cfg, tx))),
    )
}

fn refund_payment(host: &mut dyn Host, i: RefundPaymentInput) -> Result<Payment, CvcoError> {
    check_object_id(&i.payment_id, "payment_id")?;
    let amount_cents = positive_amount(i.amount_cents, "amount_cents")?;
    check_idempotency_key(&i.idempotency_key, "idempotency_key")?;
    if i.reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 256 || r.chars().any(|c| c.is_control()))
    {
        return Err(invalid(
            "reason",
            "256 caractères imprimables au plus.",
            "At most 256 printable characters.",
        ));
    }
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let body = RefundRequest {
        amount_cents,
        reason: i.reason,
    };
    let path = format!("{}/refunds", tx_path(&i.payment_id));
    let answer = ctx.api_bytes(
        &cfg,
        "POST",
        &path,
        Some(to_json(&body)?),
        Some(&i.idempotency_key),
    )?;
    // The server answers the refund or the transaction; the payment view needs the latter.
    let tx = match serde_json::from_slice::<Transaction>(&answer) {
        Ok(tx) => tx,
        Err(_) => fetch_tx(&mut ctx, &cfg, &i.payment_id)?,
    };
    Ok(payment(&ctx, &cfg, &tx))
}

/// The request view, with its latest payment when a beneficiary opened it.
fn request_view(pt: &PreTransaction, tx: Option<&Transaction>) -> PaymentRequest {
    let summary = request_summary(pt.state, pt.amount_cents, tx);
    let (delivery, email) = match &pt.delivery {
        wire::Delivery::Email { email } => (DeliveryKind::Email, Some(email.clone())),
        wire::Delivery::Qr => (DeliveryKind::Qr, None),
    };
    let svg = match delivery {
        DeliveryKind::Qr => qr_svg(&pt.qr_payload).ok(),
        DeliveryKind::Email => None,
    };
    let next_action = match (pt.state, &svg) {
        (PreTransactionState::Created, Some(svg)) => NextAction::ShowQr {
            payload: pt.qr_payload.clone(),
            svg: svg.clone(),
            expires_at: pt.expires_at,
        },
        (PreTransactionState::Created, None) => NextAction::WaitForApp {
            deadline: Some(pt.expires_at),
        },
        (PreTransactionState::Processing, _) => NextAction::WaitForApp {
            deadline: tx.and_then(|t| t.expires_at).or(Some(pt.expires_at)),
        },
        _ => NextAction::None,
    };
    PaymentRequest {
        id: pt.id.clone(),
        order_ref: pt.merchant_order_id.clone(),
        amount_cents: pt.amount_cents,
        channel: pt.channel,
        delivery,
        email,
        status: summary.status,
        is_final: summary.is_final,
        authorized_cents: summary.authorized_cents,
        remaining_cents: summary.remaining_cents,
        refunded_cents: summary.refunded_cents,
        ancv_state: pt.state,
        created_at: pt.created_at,
        expires_at: pt.expires_at,
        qr_payload: pt.qr_payload.clone(),
        payment_url: pt.payment_url.clone(),
        svg,
        payment: tx.map(Payment::from_transaction),
        next_action,
    }
}

fn create_payment_request(
    host: &mut dyn Host,
    i: CreatePaymentRequestInput,
) -> Result<PaymentRequest, CvcoError> {
    check_order_ref(&i.order_ref)?;
    Amount::from_i64(i.amount_cents).map_err(|e| e.with_field("amount_cents"))?;
    let delivery = match (i.delivery, i.email.as_deref()) {
        (DeliveryKind::Email, None) => {
            return Err(invalid(
                "email",
                "Adresse e-mail requise pour un envoi par e-mail.",
                "An e-mail address is required for e-mail delivery.",
            ))
        }
        (DeliveryKind::Email, Some(e)) => match beneficiary(e, "email")? {
            BeneficiaryId::Email(email) => wire::Delivery::Email { email },
            BeneficiaryId::CvConnectId(_) => {
                return Err(CvcoError::new(ErrorCode::InvalidBeneficiary)
                    .with_detail(
                        "Une adresse e-mail est attendue.",
                        "An e-mail address is expected.",
                    )
                    .with_field("email"))
            }
        },
        (DeliveryKind::Qr, Some(_)) => {
            return Err(invalid(
                "email",
                "Pas d'e-mail pour une demande par QR code.",
                "No e-mail for a QR code request.",
            ))
        }
        (DeliveryKind::Qr, None) => wire::Delivery::Qr,
    };
    if let Some(s) = i.expires_in_s {
        if s == 0 || s > 30 * 24 * 3600 {
            return Err(invalid(
                "expires_in_s",
                "Entre 1 s et 30 jours.",
                "Between 1 s and 30 days.",
            ));
        }
    }
    check_idempotency_key(&i.idempotency_key, "idempotency_key")?;
    check_url(&i.notification_url, "notification_url")?;
    let cfg = ApiConfig::load(host)?;
    check_amount(&cfg, i.amount_cents, i.order)?;
    let channel = i.channel.unwrap_or(match i.delivery {
        DeliveryKind::Email => Channel::Moto,
        DeliveryKind::Qr => Channel::Proximity,
    });
    let body = CreatePreTransaction {
        shop_id: cfg.shop_id.clone(),
        merchant_order_id: i.order_ref.trim().to_string(),
        amount_cents: i.amount_cents,
        currency: wire::eur(),
        channel,
        delivery,
        expires_in_s: i.expires_in_s,
        adjustable: i.adjustable.or(cfg.adjustable),
        capture_mode: i.capture_mode.unwrap_or(CaptureMode::Normal),
        notification_url: i.notification_url,
    };
    let mut ctx = Ctx::new(host, i.now);
    let path = format!("{}/pre-transactions", wire::API_PREFIX);
    let pt: PreTransaction = ctx.api(
        &cfg,
        "POST",
        &path,
        Some(to_json(&body)?),
        Some(&i.idempotency_key),
    )?;
    Ok(request_view(&pt, None))
}

fn fetch_request(ctx: &mut Ctx, cfg: &ApiConfig, id: &str) -> Result<PaymentRequest, CvcoError> {
    let pt: PreTransaction = ctx.api(cfg, "GET", &pt_path(id), None, None)?;
    let tx = match &pt.transaction_id {
        Some(tx_id) => Some(fetch_tx(ctx, cfg, tx_id)?),
        None => None,
    };
    Ok(request_view(&pt, tx.as_ref()))
}

fn get_payment_request(
    host: &mut dyn Host,
    i: PaymentRequestIdInput,
) -> Result<PaymentRequest, CvcoError> {
    check_object_id(&i.request_id, "request_id")?;
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    fetch_request(&mut ctx, &cfg, &i.request_id)
}

fn cancel_payment_request(
    host: &mut dyn Host,
    i: PaymentRequestIdInput,
) -> Result<PaymentRequest, CvcoError> {
    check_object_id(&i.request_id, "request_id")?;
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let path = format!("{}/cancel", pt_path(&i.request_id));
    let cancelled = ctx.api::<PreTransaction>(&cfg, "POST", &path, Some(b"{}".to_vec()), None);
    match cancelled {
        Ok(_) => fetch_request(&mut ctx, &cfg, &i.request_id),
        Err(e) if e.code == ErrorCode::IllegalTransition => {
            let view = fetch_request(&mut ctx, &cfg, &i.request_id)?;
            if view.ancv_state == PreTransactionState::Cancelled {
                Ok(view)
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// Largest notification body accepted (ours are a few hundred bytes).
const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;

fn verify_notification(
    host: &mut dyn Host,
    i: VerifyNotificationInput,
) -> Result<VerifiedNotification, CvcoError> {
    let secret = config::notification_secret(host)?;
    let tolerance = i.tolerance_s.unwrap_or(DEFAULT_TOLERANCE_S);
    if !(1..=86_400).contains(&tolerance) {
        return Err(invalid(
            "tolerance_s",
            "Entre 1 et 86400 s.",
            "Between 1 and 86400 s.",
        ));
    }
    if i.body.len() > MAX_NOTIFICATION_BYTES {
        return Err(CvcoError::new(ErrorCode::NotificationMalformed)
            .with_detail("Corps trop long.", "Body too long."));
    }
    let header = |name: &str| {
        i.headers
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let Some(signature_header) = header(signature::SIGNATURE_HEADER) else {
        return Err(
            CvcoError::new(ErrorCode::NotificationBadSignature).with_detail(
                "En-tête CVCo-Signature absent.",
                "Missing CVCo-Signature header.",
            ),
        );
    };
    let event_header = header(signature::EVENT_ID_HEADER).map(str::to_string);
    let signature_header = signature_header.to_string();
    let mut ctx = Ctx::new(host, i.now);
    let now = ctx.fresh_now()?;
    let verified = signature::verify(
        secret.as_bytes(),
        &signature_header,
        i.body.as_bytes(),
        now,
        tolerance,
    )?;
    if event_header.is_some_and(|h| h.trim() != verified.event_id) {
        return Err(
            CvcoError::new(ErrorCode::NotificationMalformed).with_detail(
                "CVCo-Event-Id ne correspond pas au corps.",
                "CVCo-Event-Id does not match the body.",
            ),
        );
    }
    if let Ok(shop) = config::shop_id(ctx.host) {
        if shop != verified.notification.shop_id {
            return Err(
                CvcoError::new(ErrorCode::NotificationMalformed).with_detail(
                    "Notification destinée à un autre point d'accueil.",
                    "Notification for another shop.",
                ),
            );
        }
    }
    Ok(verified)
}

fn list_payments(host: &mut dyn Host, i: ListPaymentsInput) -> Result<PaymentList, CvcoError> {
    if i.limit.is_some_and(|l| l == 0 || l > 500) {
        return Err(invalid("limit", "Entre 1 et 500.", "Between 1 and 500."));
    }
    if i.order_ref.as_ref().is_some_and(|r| r.chars().count() > 64) {
        return Err(invalid(
            "order_ref",
            "64 caractères au plus.",
            "At most 64 characters.",
        ));
    }
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let q = query(&[
        ("shop_id", Some(cfg.shop_id.to_string())),
        ("from", i.from.map(|t| t.to_rfc3339())),
        ("to", i.to.map(|t| t.to_rfc3339())),
        ("state", i.state.map(|s| s.as_str().to_string())),
        (
            "min_amount_cents",
            i.min_amount_cents.map(|a| a.to_string()),
        ),
        (
            "max_amount_cents",
            i.max_amount_cents.map(|a| a.to_string()),
        ),
        ("merchant_order_id", i.order_ref.clone()),
        ("limit", i.limit.map(|l| l.to_string())),
        ("offset", i.offset.map(|o| o.to_string())),
    ]);
    let path = format!("{}/transactions?{q}", wire::API_PREFIX);
    let list: TransactionList = ctx.api(&cfg, "GET", &path, None, None)?;
    Ok(PaymentList {
        items: list.items.iter().map(|t| payment(&ctx, &cfg, t)).collect(),
        total: list.total,
    })
}

fn daily_totals(host: &mut dyn Host, i: DailyTotalsInput) -> Result<DailyReport, CvcoError> {
    let days = i.days()?;
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    let q = query(&[
        ("shop_id", Some(cfg.shop_id.to_string())),
        ("from", Some(i.from.to_string())),
        ("to", Some(i.to.to_string())),
        // The merchant's closing hour, so ANCV's days are the host's days.
        ("closing_hour", cfg.closing_hour.map(|h| h.to_string())),
    ]);
    let totals: DailyTotals = ctx.api(
        &cfg,
        "GET",
        &format!("{}/totals?{q}", wire::API_PREFIX),
        None,
        None,
    )?;
    let mut remittances = Vec::with_capacity(days.len());
    for day in days {
        let q = query(&[
            ("shop_id", Some(cfg.shop_id.to_string())),
            ("date", Some(day.to_string())),
        ]);
        let path = format!("{}/remittances?{q}", wire::API_PREFIX);
        let statement: RemittanceStatement = ctx.api(&cfg, "GET", &path, None, None)?;
        remittances.push(statement);
    }
    Ok(DailyReport {
        shop_id: totals.shop_id.to_string(),
        closing_hour: totals.closing_hour,
        days: totals.days,
        remittances,
    })
}

fn render_qr(i: &RenderQrInput) -> Result<RenderedQr, CvcoError> {
    if i.payload.is_empty() || i.payload.len() > MAX_QR_PAYLOAD_BYTES {
        return Err(invalid(
            "payload",
            &format!("1 à {MAX_QR_PAYLOAD_BYTES} octets."),
            &format!("1 to {MAX_QR_PAYLOAD_BYTES} bytes."),
        ));
    }
    Ok(RenderedQr {
        svg: qr_svg(&i.payload)?,
    })
}

/// Proves the configuration works end to end: the API's host is reachable (and allowed by the
/// manifest: a refused host traps, see `HOST_NOT_ALLOWED_MARKER`) and takes the credentials.
fn check_connection(
    host: &mut dyn Host,
    i: CheckConnectionInput,
) -> Result<ConnectionStatus, CvcoError> {
    let cfg = ApiConfig::load(host)?;
    let mut ctx = Ctx::new(host, i.now);
    ctx.check_credentials(&cfg)?;
    Ok(ConnectionStatus {
        ok: true,
        api_base_url: cfg.api_base_url.to_string(),
        shop_id: cfg.shop_id.to_string(),
        server_time: ctx.estimate_now().filter(|_| i.now.is_none()),
    })
}
