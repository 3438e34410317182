"""pretix's back-office for CVCo (PROTOCOL.md §2): payment requests sent by staff from an order
(MOTO with delay: ANCV e-mails the beneficiary, or a QR code to show), their live status, their
cancellation, refunds asked through the API (pretix's own refund flow underneath), and the event's
transactions list.

A request is recorded before ANCV is called (outcome unknown until it answers) and its creation
is replayed with the same idempotency key until known, as the shopper's payments are. When the
beneficiary pays it, the transaction becomes a CvcoPayment with its own pretix OrderPayment,
recorded exactly like a shopper's payment (services.record), so pretix confirms it the same way.
One open CVCo operation per order: a new request waits for the previous one to end."""

import datetime
import json
import logging
import re
import secrets
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils.timezone import now

from pretix.base.models import Order, OrderPayment, OrderRefund
from pretix.multidomain.urlreverse import build_absolute_uri

from . import cvco, exports, services
from .backoffice_models import CvcoPaymentRequest, CvcoRefundAttempt
from .cvco import CvcoError
from .models import CvcoPayment

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
PAID = ("authorized", "partially_authorized", "refunded")
REFRESH_AFTER = datetime.timedelta(seconds=1)
RECONCILE_BACKOFF_MAX_S = 300
# A refund whose call started this long ago without an answer recorded (the process died
# mid-call) is sent again with the same idempotency key.
STALLED_REFUND_S = 30
LIST_LIMIT = 500
# The transactions list counts matching payments up to this many (PROTOCOL.md).
TOTAL_CAP = 10_000

# --- errors and request bodies: the plugin's catalogue and parser ------------------------------

def error(code, field=None, detail_en=None, detail_fr=None):
    """A cvco error from the plugin's catalogue (cvco.CvcoError.of)."""
    return CvcoError.of(code, field=field, detail_en=detail_en, detail_fr=detail_fr)


def unreadable_parameter(field):
    """PROTOCOL.md: an unreadable query parameter is 400 invalid_request naming it, without a
    parser's wording (the bytes cvco-host answers)."""
    return CvcoError.of("invalid_request", field=field, status=400)


def parse(event, operation, raw):
    """A request body read by the plugin's parse_request (the same errors on every adapter);
    bytes that are not UTF-8 read as U+FFFD, as views.body_text reads them."""
    return services.parse_request(event, operation, raw.decode("utf-8", errors="replace"))


def parse_request_body(event, raw):
    """POST /payment-requests: {order_ref, amount_cents?, delivery, email?, expires_in_s?,
    capture, attempt}."""
    parsed = parse(event, "create_payment_request", raw)
    if parsed.get("capture", "immediate") != "immediate":
        # pretix confirms a payment when it is authorized: no pre-reservation to finalise later.
        raise error("invalid_request", field="capture", detail_en="Only immediate capture is offered by this shop.",
                    detail_fr="Seule la capture immédiate est proposée par cette boutique.")
    return parsed


def parse_refund_body(event, raw):
    return parse(event, "refund", raw)


# --- orders and requests of an event ----------------------------------------------------------

def order_of_event(event, order_ref):
    try:
        return event.orders.get(code=order_ref)
    except Order.DoesNotExist:
        raise error("order_not_found", field="order_ref")


def request_of_event(event, request_id):
    found = CvcoPaymentRequest.objects.select_related("order", "order__event").filter(
        request_id=request_id, order__event=event).first()
    if found is None:
        raise error("pre_transaction_not_found")
    return found


def payment_of_event(event, payment_id):
    found = CvcoPayment.objects.select_related("order", "order_payment").filter(
        payment_id=payment_id, order__event=event).first()
    if found is None:
        raise error("payment_not_found")
    return found


def _busy(order, attempt):
    """What stops a new request on the order: a non-final CVCo payment or another open request."""
    payment = order.cvco_payments.filter(final=False).order_by("-pk").first()
    if payment is not None:
        return services.in_progress(payment)
    other = order.cvco_requests.filter(final=False).exclude(attempt=attempt).order_by("-pk").first()
    if other is not None:
        busy = error("payment_in_progress", detail_en=f"Payment request {other.request_id} is still open.",
                     detail_fr=f"La demande de paiement {other.request_id} est encore ouverte.")
        busy.body["payment_id"] = other.payment_id
        return busy
    return None


def create_request(event, parsed, user=None):
    """POST /payment-requests. Returns (request, created). Idempotent per (order, attempt)."""
    order = order_of_event(event, parsed["order_ref"])
    attempt = parsed["attempt"]
    existing = order.cvco_requests.filter(attempt=attempt).first()
    if existing is not None:
        # The same attempt again (a retry after a lost answer): the same request, settled first.
        return refresh_request(existing, force=existing.outcome_unknown), False
    for unknown in order.cvco_requests.filter(outcome_unknown=True):
        reconcile_request(unknown, force=True)
    for open_payment in order.cvco_payments.filter(final=False):
        try:
            services.refresh(open_payment)
        except CvcoError:
            pass
    busy = _busy(order, attempt)
    if busy is not None:
        raise busy
    config = services.config_for(event)
    masked = ""
    email = None
    if parsed["delivery"] == "email":
        checked = cvco.call(config, exports.VALIDATE_BENEFICIARY, input=parsed["email"])
        email, masked = checked["value"], checked.get("masked", "")
    remaining = services.order_remaining_cents(order)
    amount = parsed.get("amount_cents") or remaining
    # The plugin's checkout rules (order awaiting payment, minimum) for the amount asked.
    rules = cvco.call(config, exports.CHECKOUT, order_ref=order.code, order_total_cents=services.cents(order.total),
                      order_remaining_cents=min(amount, remaining) if remaining else 0,
                      currency=event.currency, payable=order.status == Order.STATUS_PENDING,
                      modes=["identifier"])
    if not rules["eligible"]:
        raise CvcoError(rules["ineligible_reason"])
    if amount > remaining:
        raise error("invalid_amount", field="amount_cents",
                    detail_en="More than the order's open amount.",
                    detail_fr="Plus que le montant restant dû de la commande.")
    inputs = {
        "order_ref": order.full_code,
        "amount_cents": amount,
        "channel": services.REQUEST_CHANNEL[parsed["delivery"]],
        "delivery": parsed["delivery"],
        "idempotency_key": f"pretix-request-{event.pk}-{order.code}-{attempt}",
        "notification_url": build_absolute_uri(event, "plugins:pretix_cvco:notifications"),
    }
    if email:
        inputs["email"] = email
    if parsed.get("expires_in_s"):
        inputs["expires_in_s"] = parsed["expires_in_s"]
    try:
        with transaction.atomic():
            # One creation at a time per order (see services.create_payment).
            Order.objects.select_for_update().get(pk=order.pk)
            busy = _busy(order, attempt)
            if busy is not None:
                raise busy
            req = CvcoPaymentRequest.objects.create(
                order=order, request_id=f"req_{secrets.token_hex(12)}", payment_id=f"pay_{secrets.token_hex(12)}",
                attempt=attempt,
                delivery=parsed["delivery"], email_masked=masked, amount_cents=amount, outcome_unknown=True,
                create_input=json.dumps(inputs), status=UNKNOWN, created_by=user if user and user.pk else None,
            )
    except IntegrityError:
        existing = order.cvco_requests.filter(attempt=attempt).first()
        if existing is None:
            raise
        return refresh_request(existing, force=existing.outcome_unknown), False
    try:
        made = cvco.call(config, exports.CREATE_PAYMENT_REQUEST, **inputs, now=cvco.now_rfc3339())
    except CvcoError as err:
        if err.outcome_unknown:
            logger.warning("CVCo request %s: creation outcome unknown (%s), kept for reconciliation",
                           req.request_id, err.code)
            _unresolved(req.pk, err, replay=False)
            body = dict(err.body)
            body["payment_id"] = req.payment_id
            body["retryable"] = True  # the same attempt again is safe and settles it
            raise CvcoError(body) from err
        CvcoPaymentRequest.objects.filter(pk=req.pk, outcome_unknown=True).delete()
        raise
    return record_request(req.pk, made), True


def _unresolved(pk, err, replay):
    with transaction.atomic():
        req = CvcoPaymentRequest.objects.select_for_update().get(pk=pk)
        if not req.outcome_unknown:
            return req
        if err.outcome_unknown or not replay:
            req.reconcile_attempts += 1
            backoff = min(2 ** (req.reconcile_attempts - 1), RECONCILE_BACKOFF_MAX_S)
            req.reconcile_after = now() + datetime.timedelta(seconds=backoff)
            req.save(update_fields=["reconcile_attempts", "reconcile_after", "updated"])
            return req
        # Refused on replay: ANCV never made it.
        req.outcome_unknown = False
        req.error = json.dumps(err.body)
        req.status = "failed"
        req.final = True
        req.sequence += 1
        req.save()
        return req


def reconcile_request(req, force=False):
    """Replays the creation of a request whose outcome is unknown (same idempotency key). Never
    raises for an upstream error: the recorded state is the answer meanwhile."""
    if not req.outcome_unknown:
        return req
    if not force and req.reconcile_after and now() < req.reconcile_after:
        return req
    try:
        made = cvco.call(services.config_for(req.order.event), exports.CREATE_PAYMENT_REQUEST,
                         **json.loads(req.create_input), now=cvco.now_rfc3339())
    except CvcoError as err:
        logger.info("CVCo reconciliation of request %s: %s", req.request_id, err.code)
        return _unresolved(req.pk, err, replay=True)
    req = record_request(req.pk, made)
    if req.status in PAID and not made.get("payment"):
        try:
            req = refresh_request(req, force=True)
        except CvcoError as err:
            logger.info("CVCo read of request %s: %s", req.request_id, err.code)
    return req


def refresh_request(req, force=False):
    """Re-reads a request from ANCV (its payment included) unless read less than a second ago."""
    if req.outcome_unknown:
        return reconcile_request(req, force=force)
    # A replayed creation answers the request without its transaction: a paid request is read
    # again until its payment is recorded.
    missing_payment = req.status in PAID and not req.plugin_request.get("payment")
    if req.final and not force and not missing_payment:
        return req
    if not force and not missing_payment and req.refreshed and now() - req.refreshed < REFRESH_AFTER:
        return req
    read = cvco.call(services.config_for(req.order.event), exports.GET_PAYMENT_REQUEST,
                     request_id=req.ancv_request_id, now=cvco.now_rfc3339())
    return record_request(req.pk, read)


def protocol_status(plugin_request):
    status = plugin_request.get("status")
    # Nobody has paid it yet (the plugin said `pending` before the contract's wording).
    return "awaiting_beneficiary" if status in ("pending", "awaiting_beneficiary") else status


def record_request(pk, plugin_request):
    """Stores a PaymentRequest read from ANCV and, once a beneficiary pays it, its transaction as
    a CvcoPayment moved like a shopper's payment (pretix OrderPayment confirmed when authorized).
    One transaction: whoever sees the request paid also sees its payment and the pretix payment
    confirmed (a notification and a poll may record the same request at once)."""
    with transaction.atomic():
        req = CvcoPaymentRequest.objects.select_for_update().select_related("order").get(pk=pk)
        req.refreshed = now()
        status = protocol_status(plugin_request)
        changed = json.dumps(req.plugin_request, sort_keys=True) != json.dumps(plugin_request, sort_keys=True)
        if changed or req.outcome_unknown or req.status != status:
            req.ancv_request_id = plugin_request.get("id")
            req.outcome_unknown = False
            req.reconcile_after = None
            if changed:
                req.data = json.dumps(plugin_request)
                req.sequence += 1
            req.status = status
            req.final = bool(plugin_request.get("final"))
            req.save()
        else:
            # The same read again (a notification, a poll): its updated_at stays.
            req.save(update_fields=["refreshed"])
        payment = plugin_request.get("payment")
        if payment and payment.get("id"):
            cp = _payment_of_request(req, payment)
            services.record(cp.pk, payment)
    req.refresh_from_db()
    return _withdraw_if_not_wanted(req)


def _payment_of_request(req, payment):
    """The CvcoPayment (and pretix OrderPayment) of a request's transaction, made once."""
    found = CvcoPayment.objects.filter(transaction_id=payment["id"]).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            op = req.order.payments.create(
                provider=cvco.PROVIDER_ID, amount=services.euros(payment.get("amount_cents", req.amount_cents)),
                state=OrderPayment.PAYMENT_STATE_CREATED,
            )
            first = not CvcoPayment.objects.filter(payment_id=req.payment_id).exists()
            return CvcoPayment.objects.create(
                order=req.order, order_payment=op,
                payment_id=req.payment_id if first else f"pay_{secrets.token_hex(12)}",
                transaction_id=payment["id"], attempt=f"{req.request_id}:{payment['id']}"[:64],
                mode="identifier" if req.delivery == "email" else "qr", beneficiary_masked=req.email_masked,
                data="{}", sequence=1, outcome_unknown=False,
            )
    except IntegrityError:
        # A concurrent read recorded it first.
        return CvcoPayment.objects.get(transaction_id=payment["id"])


def _withdraw_if_not_wanted(req):
    """An open request for an order that meanwhile got paid by other means or cancelled is
    cancelled at ANCV, so that nobody pays that order twice."""
    if req.final or req.status != "awaiting_beneficiary":
        return req
    order = req.order
    order.refresh_from_db()
    if order.status == Order.STATUS_PENDING and services.cents(order.pending_sum) > 0:
        return req
    logger.warning("CVCo request %s: order %s no longer awaits it, cancelling at ANCV", req.request_id, order.code)
    try:
        return cancel_request(req)
    except CvcoError as err:
        logger.warning("CVCo request %s: cancel failed (%s)", req.request_id, err.code)
        return req


def cancel_request(req):
    """POST /payment-requests/{id}/cancel: an unpaid request. An already cancelled one is
    answered unchanged (the retry of a lost answer)."""
    if req.outcome_unknown:
        req = reconcile_request(req, force=True)
        if req.outcome_unknown:
            raise error("payment_in_progress", detail_en="Its creation is being checked with ANCV: try again shortly.",
                        detail_fr="Sa création est en cours de vérification auprès de l'ANCV : réessayez bientôt.")
    if req.final and req.status == "cancelled":
        return req
    if not req.final:
        try:
            req = refresh_request(req, force=True)
        except CvcoError:
            pass
    if req.final:
        if req.status == "cancelled":
            return req
        raise error("illegal_transition", detail_en="The request is no longer open.",
                    detail_fr="La demande n'est plus ouverte.")
    config = services.config_for(req.order.event)
    try:
        made = cvco.call(config, exports.CANCEL_PAYMENT_REQUEST, request_id=req.ancv_request_id, now=cvco.now_rfc3339())
    except CvcoError as err:
        if not err.outcome_unknown:
            raise
        # The cancel may have happened: read ANCV now.
        try:
            read = refresh_request(req, force=True)
        except CvcoError:
            raise err
        if read.status != "cancelled":
            raise
        return read
    return record_request(req.pk, made)


def refresh_open_requests(event, limit=50):
    """What a read of the back-office does first: settle unknown requests, re-read open ones."""
    for req in CvcoPaymentRequest.objects.filter(order__event=event, final=False).select_related(
            "order", "order__event").order_by("-outcome_unknown", "pk")[:limit]:
        try:
            refresh_request(req)
        except CvcoError as err:
            logger.info("CVCo refresh of request %s: %s", req.request_id, err.code)


def reconcile_all(event=None, limit=100):
    """pretix's periodic task: unknown and open requests, stalled refund attempts."""
    requests = CvcoPaymentRequest.objects.filter(final=False).select_related("order", "order__event")
    if event is not None:
        requests = requests.filter(order__event=event)
    for req in requests.order_by("-outcome_unknown", "pk")[:limit]:
        try:
            refresh_request(req, force=not req.outcome_unknown)
        except CvcoError as err:
            logger.info("CVCo reconciliation of request %s: %s", req.request_id, err.code)
    retry_stalled_refunds(event)


# --- the JSON of PROTOCOL.md §2 ----------------------------------------------------------------

def _rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z") if moment else None


def request_json(req):
    r = req.plugin_request
    payment = None
    if r.get("payment") and r["payment"].get("id"):
        cp = CvcoPayment.objects.select_related("order").filter(transaction_id=r["payment"]["id"]).first()
        payment = services.to_protocol(cp) if cp else None
    qr = req.delivery == "qr"
    return {
        "request_id": req.request_id,
        "payment_id": req.payment_id,
        "order_ref": req.order.code,
        "amount_cents": req.amount_cents,
        "delivery": req.delivery,
        "email_masked": req.email_masked or None,
        "capture": "immediate",
        "status": req.status,
        "final": req.final,
        "expires_at": r.get("expires_at"),
        "qr_payload": r.get("qr_payload") if qr else None,
        "qr_svg": r.get("svg") if qr else None,
        "payment": payment,
        "created_at": r.get("created_at") or _rfc3339(req.created),
        "updated_at": _rfc3339(req.updated),
    }


def parse_bound(value, field, end):
    """`from`/`to`: RFC 3339, or YYYY-MM-DD (a Paris calendar day; `to` of a day is its end)."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.date.fromisoformat(value)
            if end:
                day += datetime.timedelta(days=1)
            from zoneinfo import ZoneInfo

            return datetime.datetime.combine(day, datetime.time(0), tzinfo=ZoneInfo("Europe/Paris"))
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError
        return moment
    except ValueError:
        raise unreadable_parameter(field)


def _int_param(params, field):
    """A non-negative integer as cvco-host reads one (digits, an optional `+`, below 2^64)."""
    value = params.get(field)
    if value in (None, ""):
        return None
    if not re.fullmatch(r"\+?[0-9]+", value) or int(value) >= 2 ** 64:
        raise unreadable_parameter(field)
    return int(value)


def list_requests(event, params):
    """GET /payment-requests?status=&from=&to=: newest first."""
    start, end = parse_bound(params.get("from"), "from", False), parse_bound(params.get("to"), "to", True)
    refresh_open_requests(event)
    found = CvcoPaymentRequest.objects.filter(order__event=event).select_related("order")
    status = params.get("status")
    if status:
        found = found.filter(status=status)
    if start:
        found = found.filter(created__gte=start)
    if end:
        found = found.filter(created__lt=end)
    items = [request_json(req) for req in found.order_by("-created", "-pk")[:LIST_LIMIT]]
    return {"items": items, "total": len(items)}


def list_transactions(event, params):
    """GET /transactions: the adapter's records of ANCV transactions (shopper payments and paid
    requests), newest first, filtered by status, creation dates, amount and order reference."""
    start, end = parse_bound(params.get("from"), "from", False), parse_bound(params.get("to"), "to", True)
    low, high = _int_param(params, "min_amount_cents"), _int_param(params, "max_amount_cents")
    limit = min(_int_param(params, "limit") or 200, LIST_LIMIT)
    offset = _int_param(params, "offset") or 0
    refresh_open_requests(event)
    retry_stalled_refunds(event)
    services.reconcile_refunds(event=event)
    found = CvcoPayment.objects.filter(order__event=event, transaction_id__isnull=False).select_related("order")
    if start:
        found = found.filter(created__gte=start)
    if end:
        found = found.filter(created__lt=end)
    order_ref = params.get("order_ref")
    if order_ref:
        found = found.filter(order__code__icontains=order_ref)
    for cp in found.filter(final=False):
        try:
            services.refresh(cp)
        except CvcoError:
            pass
    status = params.get("status")
    rows = []
    for cp in found.order_by("-created", "-pk"):
        cp.refresh_from_db()
        p = cp.payment
        if status and p.get("status") != status:
            continue
        amount = p.get("amount_cents") or 0
        if (low is not None and amount < low) or (high is not None and amount > high):
            continue
        rows.append(cp)
    # Counted in full: the list is bounded by the event's own payments (PROTOCOL.md caps at 10,000).
    page = [services.to_protocol(cp) for cp in rows[offset:offset + limit]]
    return {"items": page, "total": min(len(rows), TOTAL_CAP), "total_capped": len(rows) > TOTAL_CAP}


# --- refunds through pretix's refund flow ------------------------------------------------------

def refund(event, payment_id, parsed, user=None):
    """POST /payments/{id}/refund: a pretix OrderRefund of the payment, executed by the payment
    provider's refund hook (as pretix's own refund form does). The same payment + attempt is the
    same pretix refund, hence the same idempotency key at ANCV: never refunded twice."""
    cp = payment_of_event(event, payment_id)
    if cp.outcome_unknown or cp.transaction_id is None:
        raise services.in_progress(cp, detail_en="Its creation is being checked with ANCV: try again shortly.",
                                   detail_fr="Sa création est en cours de vérification auprès de l'ANCV : "
                                             "réessayez bientôt.")
    attempt = parsed["attempt"]
    known = CvcoRefundAttempt.objects.select_related("order_refund").filter(cvco_payment=cp, attempt=attempt).first()
    if known is None:
        services.reconcile_refunds(event=event)
        if cp.order_payment.refunds.filter(state=OrderRefund.REFUND_STATE_TRANSIT).exists():
            raise services.in_progress(cp, detail_en="A previous refund is being checked with ANCV.",
                                       detail_fr="Un remboursement précédent est en cours de vérification auprès "
                                                 "de l'ANCV.")
        cp = services.refresh(cp, force=True)
        p = cp.payment
        refundable = p.get("captured_cents", p.get("authorized_cents", 0)) - p.get("refunded_cents", 0)
        amount = parsed["amount_cents"] or refundable
        if amount <= 0 or amount > refundable:
            raise error("refund_exceeds_captured", field="amount_cents")
        try:
            with transaction.atomic():
                order_refund = cp.order.refunds.create(
                    payment=cp.order_payment, provider=cvco.PROVIDER_ID, amount=services.euros(amount),
                    source=OrderRefund.REFUND_SOURCE_ADMIN, state=OrderRefund.REFUND_STATE_CREATED,
                    comment=(parsed.get("reason") or "")[:255] or None,
                )
                CvcoRefundAttempt.objects.create(cvco_payment=cp, attempt=attempt, order_refund=order_refund)
                cp.order.log_action("pretix.event.order.refund.created", {
                    "local_id": order_refund.local_id, "provider": order_refund.provider,
                }, user=user if user and user.pk else None)
        except IntegrityError:
            known = CvcoRefundAttempt.objects.select_related("order_refund").get(cvco_payment=cp, attempt=attempt)
        else:
            return _execute(cp, order_refund)
    order_refund = known.order_refund
    if order_refund.state == OrderRefund.REFUND_STATE_DONE:
        return services.refresh(cp, force=True)
    if order_refund.state in (OrderRefund.REFUND_STATE_TRANSIT, OrderRefund.REFUND_STATE_CREATED):
        return _execute(cp, order_refund)
    failed = order_refund.info_data.get("error")
    raise CvcoError(failed) if isinstance(failed, dict) and failed.get("code") else error("illegal_transition")


def _execute(cp, order_refund):
    """Runs (or runs again, same pretix refund, same idempotency key) the refund at ANCV."""
    try:
        services.execute_refund(order_refund, cp)
    except CvcoError as err:
        order_refund.refresh_from_db()
        order_refund.state = OrderRefund.REFUND_STATE_FAILED
        order_refund.info = json.dumps({**order_refund.info_data, "error": err.body})
        order_refund.save(update_fields=["state", "info"])
        raise
    order_refund.refresh_from_db()
    if order_refund.state != OrderRefund.REFUND_STATE_DONE:
        # Lost answer: kept in transit, replayed by reconciliation (or this attempt again).
        err = error("upstream_unavailable", detail_en="The refund's outcome is being checked with ANCV.",
                    detail_fr="Le résultat du remboursement est en cours de vérification auprès de l'ANCV.")
        err.body["retryable"] = True
        err.body["payment_id"] = cp.payment_id
        raise err
    cp.refresh_from_db()
    return cp


def retry_stalled_refunds(event=None):
    """Refunds asked through the API whose call started but never got an answer recorded (the
    process died mid-call): executed again, same pretix refund, same idempotency key."""
    stalled = CvcoRefundAttempt.objects.filter(
        order_refund__state=OrderRefund.REFUND_STATE_CREATED,
        created__lt=now() - datetime.timedelta(seconds=STALLED_REFUND_S),
    ).select_related("cvco_payment", "cvco_payment__order", "order_refund")
    if event is not None:
        stalled = stalled.filter(cvco_payment__order__event=event)
    for attempt in stalled[:50]:
        try:
            _execute(attempt.cvco_payment, attempt.order_refund)
        except CvcoError as err:
            logger.info("CVCo stalled refund %s: %s", attempt.order_refund.pk, err.code)


def euros_label(cents):
    return f"{Decimal(cents) / 100:.2f}"


def request_of_notification(event, notification):
    """The payment request a verified ANCV notification that no CvcoPayment matches is about: by
    its pre-transaction, else an open request of the order its merchant reference names (the
    transaction a beneficiary paid it with). None: not ours. (services.handle_notification.)"""
    pre_transaction = notification.get("pre_transaction_id")
    if pre_transaction:
        found = CvcoPaymentRequest.objects.select_related("order", "order__event").filter(
            order__event=event, ancv_request_id=pre_transaction).first()
        if found is not None:
            return found
    reference = notification.get("merchant_order_id") or ""
    code = reference.rsplit("-", 1)[-1]
    return next((req for req in CvcoPaymentRequest.objects.filter(
        order__event=event, order__code=code, final=False).select_related("order", "order__event")
        if req.order.full_code == reference), None)


def request_payment_json(req):
    """GET /payments/{id} for a request's payment_id before any transaction (nobody paid yet, or
    its creation is being checked): the plugin's Payment object from the request's facts."""
    r = req.plugin_request
    order = req.order
    facts = {
        "payment_id": req.payment_id, "order_ref": order.code,
        "mode": "identifier" if req.delivery == "email" else "qr",
        "channel": services.REQUEST_CHANNEL[req.delivery], "amount_cents": req.amount_cents,
        "order_total_cents": services.cents(order.total),
        "order_remaining_cents": services.order_remaining_cents(order),
        "sequence": req.sequence, "created_at": _rfc3339(req.created), "updated_at": _rfc3339(req.updated),
        "events_url": services.events_url(order.event, req.payment_id), "request_id": req.request_id,
    }
    if req.email_masked:
        facts["beneficiary_masked"] = req.email_masked
    if req.error:
        facts["error"] = json.loads(req.error)
    elif req.status != UNKNOWN and r.get("expires_at"):
        # Without either, the creation's outcome is unknown: rendered as status unknown.
        facts["request"] = {"status": req.status, "expires_at": r["expires_at"]}
        if req.delivery == "qr" and r.get("qr_payload"):
            facts["request"]["qr_payload"] = r["qr_payload"]
    return cvco.call(services.config_for(order.event), exports.RENDER_PAYMENT, **facts)


def staff_payment(event, payment_id):
    """GET /payments/{id} for staff: any CVCo payment of the event, or a request's payment."""
    cp = CvcoPayment.objects.select_related("order", "order_payment").filter(
        payment_id=payment_id, order__event=event).first()
    if cp is not None:
        try:
            cp = services.refresh(cp)
        except CvcoError:
            pass
        return services.to_protocol(cp)
    req = CvcoPaymentRequest.objects.select_related("order").filter(payment_id=payment_id, order__event=event).first()
    if req is None:
        raise error("payment_not_found")
    try:
        req = refresh_request(req)
    except CvcoError:
        pass
    cp = CvcoPayment.objects.select_related("order").filter(payment_id=payment_id).first()
    return services.to_protocol(cp) if cp else request_payment_json(req)
