"""CVCo payments over pretix orders: amounts always from the pretix order, one pretix OrderPayment
per ANCV transaction, confirmed for the authorized amount so pretix's multi-payment support
collects the remainder with another provider.

A creation is recorded before ANCV is called. When its answer never comes back usable (lost,
timeout, 5xx, the process killed mid-call) ANCV may hold the transaction: the row stays with status
`unknown` and is reconciled by replaying the same create_payment input with the same idempotency
key (ANCV answers the transaction it made, or makes the one it never got), by the poller, at the
first request of a process, on a notification for the order, and before any new attempt."""

import datetime
import json
import logging
import secrets
import threading
from decimal import Decimal

from django.db import IntegrityError, connections, transaction
from django.utils.timezone import now
from django_scopes import scopes_disabled

from pretix.base.models import Order, OrderPayment, OrderRefund, Quota
from pretix.multidomain.urlreverse import build_absolute_uri

from . import cvco, exports
from .backoffice_models import CvcoPaymentRequest
from .cvco import CvcoError
from .models import CvcoNotification, CvcoPayment

logger = logging.getLogger(__name__)

# Below this age a Payment is served from the database; older non-final ones are re-read.
REFRESH_AFTER = datetime.timedelta(seconds=1)
SESSION_KEY = "pretix_cvco_orders"
# Backoff between reconciliations of one unknown payment: 1 s, 2 s, 4 s… up to this.
RECONCILE_BACKOFF_MAX_S = 300


def provider_for(event):
    return event.get_payment_providers().get(cvco.PROVIDER_ID)


def config_for(event):
    provider = provider_for(event)
    if provider is None:
        raise CvcoError.of("config_missing", field="payment_cvco")
    return cvco.plugin_config(provider.settings)


def cents(amount: Decimal) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


def euros(amount_cents: int) -> Decimal:
    return (Decimal(amount_cents) / Decimal(100)).quantize(Decimal("0.01"))


# --- shopper session ----------------------------------------------------------------------------

def grant_order(request, order):
    """The shopper proved they own `order` (order secret, checkout): remember it in the session."""
    granted = request.session.get(SESSION_KEY, [])
    key = f"{order.event_id}:{order.code}"
    if key not in granted:
        request.session[SESSION_KEY] = (granted + [key])[-50:]


def order_of_session(request, order_ref):
    """The order `order_ref` if this session owns it; `order_not_found` otherwise (no hint that
    someone else's order exists)."""
    if f"{request.event.pk}:{order_ref}" not in request.session.get(SESSION_KEY, []):
        raise CvcoError.of("order_not_found", field="order_ref")
    try:
        return request.event.orders.get(code=order_ref)
    except Order.DoesNotExist:
        raise CvcoError.of("order_not_found", field="order_ref")


def payment_of_session(request, payment_id):
    cvco_payment = (
        CvcoPayment.objects.select_related("order", "order_payment")
        .filter(payment_id=payment_id, order__event=request.event)
        .first()
    )
    granted = request.session.get(SESSION_KEY, [])
    if cvco_payment is None or f"{request.event.pk}:{cvco_payment.order.code}" not in granted:
        raise CvcoError.of("payment_not_found")
    return cvco_payment


# --- protocol views of orders and payments ------------------------------------------------------

def order_remaining_cents(order):
    order.refresh_from_db()
    return max(0, cents(order.pending_sum))


def checkout_info(order):
    """GET /checkout: the plugin's eligibility rules over pretix's order, plus the current
    payment (the non-final one, if any)."""
    info = eligibility(config_for(order.event), order.event.currency, order.code, cents(order.total),
                       order_remaining_cents(order), payable=order.status == Order.STATUS_PENDING)
    current = order.cvco_payments.filter(final=False).order_by("-pk").first()
    info["current_payment"] = to_protocol(current) if current else None
    return info


def eligibility(config, currency, order_ref, total_cents, remaining_cents, payable=True):
    """The plugin's `checkout` export: eligible or why not, minimum, adjustment, timeout, modes
    (this shop offers the identifier mode only)."""
    return cvco.call(config, exports.CHECKOUT, order_ref=order_ref, order_total_cents=total_cents,
                     order_remaining_cents=remaining_cents, currency=currency, payable=payable,
                     modes=["identifier"])


def events_url(event, payment_id):
    return build_absolute_uri(event, "plugins:pretix_cvco:events", kwargs={"payment_id": payment_id})


# The acceptance channel of a payment request's transaction, by delivery: an e-mailed request is
# MOTO (mail order), a QR shown by staff is proximity.
REQUEST_CHANNEL = {"email": "moto", "qr": "proximity"}


def to_protocol(cvco_payment):
    """The Payment object of PROTOCOL.md, rendered by the plugin from the recorded plugin Payment
    (none yet while the creation's outcome is unknown, or when ANCV refused it) and our facts."""
    order = cvco_payment.order
    recorded = cvco_payment.payment
    facts = {
        "payment_id": cvco_payment.payment_id,
        "order_ref": order.code,
        "mode": cvco_payment.mode,
        "order_total_cents": cents(order.total),
        "order_remaining_cents": order_remaining_cents(order),
        "sequence": cvco_payment.sequence,
        "created_at": _rfc3339(cvco_payment.created),
        "updated_at": _rfc3339(cvco_payment.updated),
        "events_url": events_url(order.event, cvco_payment.payment_id),
    }
    pre_transaction = recorded.get("payment_request_id")
    if pre_transaction:
        # The transaction of one of our payment requests: its channel and our request_id.
        request = CvcoPaymentRequest.objects.filter(order=order, ancv_request_id=pre_transaction).first()
        if request is not None:
            facts["channel"] = REQUEST_CHANNEL[request.delivery]
            facts["request_id"] = request.request_id
    else:
        facts["channel"] = "ecommerce"
    if cvco_payment.beneficiary_masked:
        facts["beneficiary_masked"] = cvco_payment.beneficiary_masked
    if recorded.get("id"):  # rows from before the render export hold a placeholder without id
        facts["payment"] = recorded
    else:
        facts["amount_cents"] = cents(cvco_payment.order_payment.amount)
        if cvco_payment.error:
            facts["error"] = json.loads(cvco_payment.error)
    return cvco.call(config_for(order.event), exports.RENDER_PAYMENT, **facts)


def _rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


def in_progress(cvco_payment, detail_en=None, detail_fr=None):
    """409 payment_in_progress (retryable) naming the payment to follow instead."""
    error = CvcoError.of(
        "payment_in_progress",
        detail_en=detail_en or "A previous payment is being checked or awaited.",
        detail_fr=detail_fr or "Un paiement précédent est en cours de vérification ou d'attente.",
    )
    error.body["payment_id"] = cvco_payment.payment_id
    return error


# --- state changes ------------------------------------------------------------------------------

def _comparable(payment):
    return json.dumps(payment, sort_keys=True)


def record(cvco_payment_pk, payment):
    """Stores a Payment read from ANCV and moves the pretix OrderPayment accordingly. Returns the
    fresh CvcoPayment. Idempotent: the same Payment twice changes nothing."""
    with transaction.atomic():
        cp = CvcoPayment.objects.select_for_update().select_related("order").get(pk=cvco_payment_pk)
        op = OrderPayment.objects.select_for_update().get(pk=cp.order_payment_id)
        cp.refreshed = now()
        if cp.outcome_unknown or cp.transaction_id is None:
            # The creation's outcome is known now: ANCV answered with its transaction.
            cp.transaction_id = payment.get("id")
            cp.outcome_unknown = False
            cp.create_input = ""
            cp.reconcile_after = None
        if _comparable(cp.payment) != _comparable(payment):
            cp.data = json.dumps(payment)
            cp.sequence += 1
            cp.final = bool(payment.get("final"))
        cp.save()
        status = payment.get("status")
        info = {
            "transaction_id": payment.get("id"),
            "status": status,
            "ancv_state": payment.get("ancv_state"),
            "authorized_cents": payment.get("authorized_cents", 0),
            "beneficiary_masked": cp.beneficiary_masked,
            "authorizations": [
                a["number"] for payer in payment.get("payers", []) for a in payer.get("authorizations", [])
            ],
        }
        open_states = (OrderPayment.PAYMENT_STATE_CREATED, OrderPayment.PAYMENT_STATE_PENDING)
        if status in ("authorized", "partially_authorized") and op.state in open_states:
            op.amount = euros(payment.get("authorized_cents", 0))
            op.info = json.dumps(info)
            op.save(update_fields=["amount", "info"])
            # In the same transaction as the recorded status: whoever sees "authorized" also
            # sees the pretix payment confirmed (and the order paid when this completes it).
            try:
                op.confirm()
            except Quota.QuotaExceededException as error:
                logger.warning("CVCo payment %s authorized but quota exceeded: %s", cp.payment_id, error)
        elif status == "awaiting_beneficiary" and op.state == OrderPayment.PAYMENT_STATE_CREATED:
            op.state = OrderPayment.PAYMENT_STATE_PENDING
            op.info = json.dumps(info)
            op.save(update_fields=["state", "info"])
        elif status in ("declined", "expired", "failed") and op.state in open_states:
            op.fail(info=info, send_mail=False)
        elif status == "cancelled" and op.state in open_states:
            op.state = OrderPayment.PAYMENT_STATE_CANCELED
            op.info = json.dumps(info)
            op.save(update_fields=["state", "info"])
    cp.refresh_from_db()
    return cp


def refresh(cvco_payment, force=False):
    """Re-reads a non-final payment from ANCV (polling when no notification came); an unknown
    one is reconciled instead."""
    if cvco_payment.outcome_unknown:
        return reconcile(cvco_payment, force=force)
    if cvco_payment.transaction_id is None or (cvco_payment.final and not force):
        return cvco_payment
    if not force and cvco_payment.refreshed and now() - cvco_payment.refreshed < REFRESH_AFTER:
        return cvco_payment
    config = config_for(cvco_payment.order.event)
    payment = cvco.call(config, exports.GET_PAYMENT, payment_id=cvco_payment.transaction_id, now=cvco.now_rfc3339())
    return record(cvco_payment.pk, payment)


def reconcile(cvco_payment, force=False):
    """Settles a payment whose creation outcome is unknown: the same create_payment input with
    the same idempotency key again. A success records ANCV's transaction; a retryable error keeps
    it unknown (backoff; `force` ignores it); a refusal means ANCV never made it: failed. Never
    raises for an upstream error: the caller answers with the recorded state."""
    if not cvco_payment.outcome_unknown:
        return cvco_payment
    if not force and cvco_payment.reconcile_after and now() < cvco_payment.reconcile_after:
        return cvco_payment
    inputs = json.loads(cvco_payment.create_input)
    try:
        config = config_for(cvco_payment.order.event)
        payment = cvco.call(config, exports.CREATE_PAYMENT, **inputs, now=cvco.now_rfc3339())
    except CvcoError as error:
        logger.info("CVCo reconciliation of %s: %s", cvco_payment.payment_id, error.code)
        return _unresolved(cvco_payment.pk, error, replay=True)
    logger.info("CVCo reconciliation of %s: transaction %s", cvco_payment.payment_id, payment.get("id"))
    return _withdraw_if_not_wanted(record(cvco_payment.pk, payment))


def _withdraw_if_not_wanted(cvco_payment):
    """A replay may push a payment (or find one pushed) for an order that meanwhile got paid by
    other means or cancelled: still waiting for the beneficiary, it is cancelled at ANCV so that
    nobody pays that order twice. Already authorized, it stays recorded (the shop refunds)."""
    order = cvco_payment.order
    order.refresh_from_db()
    if cvco_payment.final or (order.status == Order.STATUS_PENDING and cents(order.pending_sum) > 0):
        return cvco_payment
    logger.warning("CVCo payment %s: order %s no longer awaits it, cancelling at ANCV",
                   cvco_payment.payment_id, order.code)
    try:
        return cancel_payment(cvco_payment)
    except CvcoError as error:
        logger.warning("CVCo payment %s: cancel failed (%s)", cvco_payment.payment_id, error.code)
        return cvco_payment


def _unresolved(cvco_payment_pk, error, replay):
    """A creation (first call or `replay`) that failed with `error`: still unknown when it may
    have taken effect (next reconciliation after a backoff), else failed with that error."""
    with transaction.atomic():
        cp = CvcoPayment.objects.select_for_update().select_related("order").get(pk=cvco_payment_pk)
        if not cp.outcome_unknown:
            return cp  # settled meanwhile by a concurrent reconciliation
        if error.outcome_unknown or not replay:
            cp.reconcile_attempts += 1
            delay = min(2 ** (cp.reconcile_attempts - 1), RECONCILE_BACKOFF_MAX_S)
            cp.reconcile_after = now() + datetime.timedelta(seconds=delay)
            cp.save(update_fields=["reconcile_attempts", "reconcile_after", "updated"])
            return cp
        logger.warning("CVCo payment %s not created at ANCV: %s", cp.payment_id, error.code)
        cp.data = "{}"  # no plugin Payment: the refusal below is the payment's error
        cp.error = json.dumps(error.body)
        cp.final = True
        cp.outcome_unknown = False
        cp.create_input = ""
        cp.reconcile_after = None
        cp.sequence += 1
        cp.save()
        op = OrderPayment.objects.select_for_update().get(pk=cp.order_payment_id)
        if op.state in (OrderPayment.PAYMENT_STATE_CREATED, OrderPayment.PAYMENT_STATE_PENDING):
            op.fail(info={"status": "failed", "error": error.code}, send_mail=False)
    cp.refresh_from_db()
    return cp


def _open_order_payment(order, amount_cents):
    """The pretix OrderPayment this CVCo payment settles: the one pretix's checkout created for
    the provider when it is still unused, else a new one for the remaining amount."""
    unused = (
        order.payments.filter(provider=cvco.PROVIDER_ID, state=OrderPayment.PAYMENT_STATE_CREATED)
        .filter(cvco_payment__isnull=True)
        .order_by("-pk")
        .first()
    )
    if unused is None:
        created = order.payments.create(
            provider=cvco.PROVIDER_ID, amount=euros(amount_cents), state=OrderPayment.PAYMENT_STATE_CREATED
        )
        return created, True
    unused.amount = euros(amount_cents)
    unused.save(update_fields=["amount"])
    return unused, False


def parse_request(event, operation, text):
    """A request body as the plugin reads it (one parser, the same errors on every adapter)."""
    return cvco.call(config_for(event), exports.PARSE_REQUEST, operation=operation, body=text)


def create_payment(request, text):
    """POST /payments (`text`: the raw body): the order's remaining amount, idempotent per
    (order, attempt)."""
    body = parse_request(request.event, "create_payment", text)
    order = order_of_session(request, body["order_ref"])
    attempt = body["attempt"]
    if body["mode"] != "identifier":
        raise CvcoError.of(
            "invalid_request",
            field="mode",
            detail_en="Only mode identifier is offered by this shop.",
            detail_fr="Seul le mode identifiant est proposé par cette boutique.",
        )
    existing = order.cvco_payments.filter(attempt=attempt).first()
    if existing is not None:
        # The same attempt again (a retry after a lost answer): the same payment, settled first.
        if existing.outcome_unknown:
            return reconcile(existing, force=True), False
        return refresh(existing), False
    # Before a new attempt, an earlier one whose outcome is unknown is settled with ANCV.
    for unknown in order.cvco_payments.filter(outcome_unknown=True):
        reconcile(unknown, force=True)
    busy = order.cvco_payments.filter(final=False).order_by("-pk").first()
    if busy is not None:
        # Its end may never have been recorded (a cancel whose answer was lost, a process killed
        # mid-call): read again (at most once a second) before refusing the new attempt.
        try:
            busy = refresh(busy)
        except CvcoError:
            pass
        if not busy.final:
            raise in_progress(busy)
    config = config_for(request.event)
    remaining = order_remaining_cents(order)
    eligible = eligibility(config, order.event.currency, order.code, cents(order.total), remaining,
                           payable=order.status == Order.STATUS_PENDING)
    if not eligible["eligible"]:
        raise CvcoError(eligible["ineligible_reason"])
    # The exact export input (`now` apart), kept so that a reconciliation replays it.
    inputs = {
        "order_ref": order.full_code,
        "amount_cents": remaining,
        "channel": "ecommerce",
        "beneficiary": body["beneficiary"],
        "idempotency_key": f"pretix-{request.event.pk}-{order.code}-{attempt}",
        "notification_url": build_absolute_uri(request.event, "plugins:pretix_cvco:notifications"),
    }
    try:
        with transaction.atomic():
            # One creation at a time per order: a concurrent new attempt waits here, then sees
            # this one in progress.
            Order.objects.select_for_update().get(pk=order.pk)
            busy = order.cvco_payments.filter(final=False).order_by("-pk").first()
            if busy is not None and busy.attempt != attempt:
                raise in_progress(busy)
            op, new_op = _open_order_payment(order, remaining)
            # Recorded before the call: if this process dies mid-call, the row is there to
            # reconcile.
            cp = CvcoPayment.objects.create(
                order=order,
                order_payment=op,
                payment_id=f"pay_{secrets.token_hex(12)}",
                attempt=attempt,
                mode=body["mode"],
                beneficiary_masked=body["beneficiary_masked"] or "",
                data="{}",  # no plugin Payment until ANCV answers: status unknown
                sequence=1,
                outcome_unknown=True,
                create_input=json.dumps(inputs),
            )
    except IntegrityError:
        # A concurrent double submission of the same attempt won the race (same idempotency key,
        # so the same ANCV transaction): answer with its record.
        existing = order.cvco_payments.filter(attempt=attempt).first()
        if existing is None:
            raise
        return refresh(existing, force=existing.outcome_unknown), False
    try:
        payment = cvco.call(config, exports.CREATE_PAYMENT, **inputs, now=cvco.now_rfc3339())
    except CvcoError as error:
        if error.outcome_unknown:
            # ANCV may hold it (the request left, no usable answer came back): kept as unknown.
            logger.warning("CVCo payment %s: creation outcome unknown (%s), kept for reconciliation",
                           cp.payment_id, error.code)
            cp = _unresolved(cp.pk, error, replay=False)
            answer = dict(error.body)
            answer["payment_id"] = cp.payment_id
            # Sending the same attempt again is safe and settles it, whatever the code.
            answer["retryable"] = True
            raise CvcoError(answer) from error
        # Refused outright: one upstream call, nothing at ANCV. The attempt may be sent again
        # with corrected input.
        _drop(cp, op if new_op else None)
        raise
    return record(cp.pk, payment), True


def _drop(cvco_payment, own_order_payment):
    with transaction.atomic():
        CvcoPayment.objects.filter(pk=cvco_payment.pk, outcome_unknown=True).delete()
        if own_order_payment is not None:
            OrderPayment.objects.filter(
                pk=own_order_payment.pk, state=OrderPayment.PAYMENT_STATE_CREATED, cvco_payment__isnull=True
            ).delete()


def cancel_payment(cvco_payment):
    if cvco_payment.outcome_unknown:
        cvco_payment = reconcile(cvco_payment, force=True)
        if cvco_payment.outcome_unknown:
            raise in_progress(
                cvco_payment,
                detail_en="Its creation is being checked with ANCV: try again shortly.",
                detail_fr="Sa création est en cours de vérification auprès de l'ANCV : réessayez bientôt.",
            )
    if cvco_payment.final and cvco_payment.payment.get("status") == "cancelled":
        # The retry of a lost answer: answered unchanged (PROTOCOL.md §1).
        return cvco_payment
    if cvco_payment.final:
        raise CvcoError.of("illegal_transition")
    config = config_for(cvco_payment.order.event)
    try:
        payment = cvco.call(config, exports.CANCEL_PAYMENT, payment_id=cvco_payment.transaction_id, now=cvco.now_rfc3339())
    except CvcoError as error:
        if not error.outcome_unknown:
            raise
        # The cancel may have happened: read ANCV now (the poller reads it later otherwise).
        try:
            read = refresh(cvco_payment, force=True)
        except CvcoError:
            raise error
        if read.payment.get("status") != "cancelled":
            raise
        return read
    return record(cvco_payment.pk, payment)


def execute_refund(refund, cvco_payment):
    """A pretix refund at ANCV. When its answer is lost (the money may have moved) the refund is
    left "in transit", never failed, and reconcile_refunds replays it with the same idempotency
    key; pretix would otherwise invite a second refund by another way."""
    if cvco_payment.transaction_id is None:
        raise CvcoError.of("illegal_transition")
    inputs = {
        "payment_id": cvco_payment.transaction_id,
        "idempotency_key": f"pretix-refund-{refund.order.event_id}-{refund.pk}",
        "amount_cents": cents(refund.amount),
        "reason": "pretix refund",
    }
    refund.info = json.dumps({"transaction_id": cvco_payment.transaction_id, "refund_input": inputs})
    refund.save(update_fields=["info"])
    try:
        payment = cvco.call(config_for(refund.order.event), exports.REFUND_PAYMENT, **inputs, now=cvco.now_rfc3339())
    except CvcoError as error:
        if not error.outcome_unknown:
            raise
        logger.warning("CVCo refund %s: outcome unknown (%s), in transit until reconciled", refund.pk, error.code)
        refund.state = OrderRefund.REFUND_STATE_TRANSIT
        refund.save(update_fields=["state"])
        return refund
    return _refund_done(refund, cvco_payment, payment)


def _refund_done(refund, cvco_payment, payment):
    record(cvco_payment.pk, payment)
    refund.info = json.dumps({"transaction_id": cvco_payment.transaction_id,
                              "refunded_cents": payment.get("refunded_cents")})
    refund.save(update_fields=["info"])
    refund.done()
    return refund


def reconcile_refunds(event=None, limit=100):
    """Refunds whose answer was lost: the same refund_payment again (same idempotency key: ANCV
    answers the refund it made, or makes the one it never got). Refused now: failed."""
    pending = OrderRefund.objects.filter(
        provider=cvco.PROVIDER_ID, state=OrderRefund.REFUND_STATE_TRANSIT
    ).select_related("order", "order__event", "payment")
    if event is not None:
        pending = pending.filter(order__event=event)
    for refund in pending[:limit]:
        inputs = refund.info_data.get("refund_input")
        cp = getattr(refund.payment, "cvco_payment", None) if refund.payment else None
        if not inputs or cp is None:
            continue
        try:
            payment = cvco.call(config_for(refund.order.event), exports.REFUND_PAYMENT, **inputs, now=cvco.now_rfc3339())
        except CvcoError as error:
            logger.info("CVCo refund reconciliation of %s: %s", refund.pk, error.code)
            if not error.outcome_unknown:
                refund.state = OrderRefund.REFUND_STATE_FAILED
                refund.info = json.dumps({**refund.info_data, "error": error.body})
                refund.save(update_fields=["state", "info"])
            continue
        _refund_done(refund, cp, payment)


def handle_notification(event, headers, body):
    """Returns (status, json body or None). PROTOCOL.md §3: the plugin verifies it and names its
    object (`transaction:<id>` or `pre_transaction:<id>`); one about an object that is not ours
    gets 204 and nothing is recorded; an event already seen, or not newer than the last one
    applied to its object, is a duplicate; otherwise the payment is re-read from ANCV."""
    config = config_for(event)
    verified = cvco.call(config, exports.VERIFY_NOTIFICATION, headers=headers, body=body, now=cvco.now_rfc3339())
    notification = verified.get("notification", {})
    kind, _, object_id = verified["object_key"].partition(":")
    cp = None
    if kind == "transaction":
        cp = (CvcoPayment.objects.filter(transaction_id=object_id, order__event=event).first()
              or _settle_unknown_for(event, notification, object_id))
    if cp is None:
        return _request_notification(event, verified)
    if not _first_time(verified):
        return 200, {"duplicate": True}
    sequence = int(notification.get("sequence") or 0)
    if sequence and sequence <= cp.notification_sequence:
        return 200, {"duplicate": True}
    CvcoPayment.objects.filter(pk=cp.pk).update(notification_sequence=sequence)
    try:
        refresh(cp, force=True)
    except CvcoError as error:
        # The poller reads it again.
        logger.info("CVCo notification %s: re-read failed (%s)", verified["event_id"], error.code)
    return 204, None


def _first_time(verified):
    """Records the event id: False when it was already processed."""
    try:
        with transaction.atomic():
            CvcoNotification.objects.create(event_id=verified["event_id"])
    except IntegrityError:
        return False
    return True


def _request_notification(event, verified):
    """No payment of ours: one of our payment requests (its pre-transaction, or the transaction
    a beneficiary paid it with) is read again now, so a paid request confirms its order at once;
    anything else is not ours: 204, nothing recorded."""
    from . import backoffice

    request = backoffice.request_of_notification(event, verified.get("notification", {}))
    if request is None:
        return 204, None
    if not _first_time(verified):
        return 200, {"duplicate": True}
    try:
        backoffice.refresh_request(request, force=True)
    except CvcoError as error:
        logger.info("CVCo notification %s: re-read of request %s failed (%s)", verified["event_id"],
                    request.request_id, error.code)
    return 204, None


def _settle_unknown_for(event, notification, transaction_id):
    """A notification for a transaction no row knows: when its merchant order reference is an
    order with unknown payments, those are reconciled and the notification's row returned (None
    while they stay unknown: their own reconciliation settles them)."""
    reference = notification.get("merchant_order_id") or ""
    code = reference.rsplit("-", 1)[-1]
    unknown = [
        cp
        for cp in CvcoPayment.objects.filter(order__event=event, order__code=code, outcome_unknown=True)
        .select_related("order", "order__event")
        if cp.order.full_code == reference
    ]
    for cp in unknown:
        reconcile(cp, force=True)
    return CvcoPayment.objects.filter(transaction_id=transaction_id, order__event=event).first() if unknown else None


def reconcile_open_payments(event=None, limit=100, unknown_only=False):
    """Polls every non-final CVCo payment and reconciles the unknown ones (pretix's periodic task;
    the unknown ones also at a process's first request)."""
    pending = CvcoPayment.objects.filter(final=False).select_related("order", "order__event")
    if event is not None:
        pending = pending.filter(order__event=event)
    if unknown_only:
        pending = pending.filter(outcome_unknown=True)
    for cp in pending.order_by("-outcome_unknown", "pk")[:limit]:
        try:
            if cp.outcome_unknown:
                reconcile(cp, force=unknown_only)
            else:
                refresh(cp, force=True)
        except CvcoError as error:
            logger.info("CVCo reconciliation of %s: %s", cp.payment_id, error.code)
    if not unknown_only:
        reconcile_refunds(event=event, limit=limit)


_started = False
_started_lock = threading.Lock()


def reconcile_at_startup():
    """Once per process, at its first CVCo request: the payments a previous process left with an
    unknown outcome (killed mid-call) are reconciled in the background."""
    global _started
    with _started_lock:
        if _started:
            return None
        _started = True

    def run():
        try:
            with scopes_disabled():
                reconcile_open_payments(unknown_only=True, limit=1000)
        except Exception:
            logger.exception("CVCo start-up reconciliation failed")
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=run, name="cvco-startup-reconcile", daemon=True)
    thread.start()
    return thread


def check_connection(config):
    """The start-up/configuration check: the plugin's check_connection export (configuration,
    allowed host, credentials, the API answering). Raises CvcoError."""
    return cvco.call(config, exports.CHECK_CONNECTION, now=cvco.now_rfc3339())
