"""The merchant HTTP contract (host-adapters/PROTOCOL.md §1 and §3) under
/{organizer}/{event}/cvco/v1/, the shopper's payment page, and test-only order creation."""

import datetime
import json
import logging
import time
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.timezone import now
from django.views.decorators.csrf import csrf_exempt
from django_scopes import scope

from pretix.base.models import Item, Order, OrderPayment, OrderPosition
from pretix.multidomain.urlreverse import eventreverse

from . import cvco, services
from .cvco import CvcoError
from .models import CvcoPayment

logger = logging.getLogger(__name__)

SSE_PING_S = 15
# A stream ends after this long even if the payment is still open: the widget reconnects, and a
# worker of a synchronous pretix deployment is not held forever.
SSE_MAX_S = 300


# Largest request body read (as cvco-host): a larger one is a 413.
BODY_LIMIT = 64 * 1024


def json_response(data, status=200):
    """Compact JSON, UTF-8 as is: the bytes cvco-host sends for the same answer."""
    return HttpResponse(cvco.dumps(data).encode("utf-8"), status=status, content_type="application/json")


def error_response(error: CvcoError, status=None):
    return json_response(error.body, status or error.http_status)


def _http_error(status, detail_fr, detail_en):
    return error_response(CvcoError.of("invalid_request", detail_en=detail_en, detail_fr=detail_fr), status)


def _is_json(content_type):
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def body_text(request):
    """The raw body for the plugin's parser; bytes that are not UTF-8 read as U+FFFD, as cvco-host
    and Vendure read them, so the parser answers the same everywhere."""
    return request.body.decode("utf-8", errors="replace")


def _refused(request, methods, json_only):
    """cvco-host's refusals before any handler: 405, 413, 415."""
    if request.method not in methods:
        response = _http_error(405, "Méthode non autorisée.", "Method not allowed.")
        response["Allow"] = ", ".join(methods)
        return response
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > BODY_LIMIT:
        return _http_error(413, "Corps de requête trop volumineux.", "Request body too large.")
    # A cross-site form cannot send `application/json` without a CORS preflight, which is what
    # protects these cookie-authenticated POSTs.
    content_type = request.META.get("CONTENT_TYPE")
    if json_only and request.method == "POST" and (content_type or declared) and not _is_json(content_type):
        return _http_error(415, "Corps JSON attendu (Content-Type: application/json).",
                           "JSON body expected (Content-Type: application/json).")
    return None


def api(methods, json_only=True):
    """A cvco endpoint; `json_only`: a POST body must be JSON (not for ANCV's notifications,
    authenticated by their signature)."""

    def decorate(view):
        @csrf_exempt
        def wrapped(request, *args, **kwargs):
            kwargs.pop("organizer", None)
            kwargs.pop("event", None)
            # A previous process may have died mid-call: settle what it left unknown.
            services.reconcile_at_startup()
            try:
                refused = _refused(request, methods, json_only)
                if refused is not None:
                    return refused
                return view(request, *args, **kwargs)
            except CvcoError as error:
                return error_response(error)

        return wrapped

    return decorate


@api(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def not_found(request):
    raise CvcoError.of("not_found")


@api(["GET"])
def checkout(request):
    order = services.order_of_session(request, request.GET.get("order_ref"))
    return json_response(services.checkout_info(order))


@api(["POST"])
def payments(request):
    cvco_payment, created = services.create_payment(request, body_text(request))
    return json_response(services.to_protocol(cvco_payment), status=201 if created else 200)


@api(["GET"])
def payment(request, payment_id):
    cvco_payment = services.payment_of_session(request, payment_id)
    try:
        cvco_payment = services.refresh(cvco_payment)
    except CvcoError as error:
        # ANCV unreachable: the recorded state is still the best answer for a status read.
        logger.info("CVCo refresh of %s failed: %s", payment_id, error.code)
    return json_response(services.to_protocol(cvco_payment))


@api(["POST"])
def cancel(request, payment_id):
    cvco_payment = services.payment_of_session(request, payment_id)
    return json_response(services.to_protocol(services.cancel_payment(cvco_payment)))


def _sse(cvco_payment):
    data = services.to_protocol(cvco_payment)
    return f"id: {data['sequence']}\nevent: status\ndata: {cvco.dumps(data)}\n\n"


def _stream(organizer, pk, last_event_id):
    started = last_ping = time.monotonic()
    sent = last_event_id
    with scope(organizer=organizer):
        while True:
            cvco_payment = CvcoPayment.objects.select_related("order").get(pk=pk)
            try:
                cvco_payment = services.refresh(cvco_payment)
            except CvcoError:
                pass
            if sent is None or cvco_payment.sequence > sent:
                sent = cvco_payment.sequence
                last_ping = time.monotonic()
                yield _sse(cvco_payment)
            if cvco_payment.final or time.monotonic() - started > SSE_MAX_S:
                return
            if time.monotonic() - last_ping >= SSE_PING_S:
                last_ping = time.monotonic()
                yield ": ping\n\n"
            time.sleep(0.5)


@api(["GET"])
def events(request, payment_id):
    cvco_payment = services.payment_of_session(request, payment_id)
    try:
        last_event_id = int(request.headers.get("Last-Event-ID", ""))
    except ValueError:
        last_event_id = None
    response = StreamingHttpResponse(
        _stream(request.organizer, cvco_payment.pk, last_event_id), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@api(["POST"], json_only=False)
def notifications(request):
    headers = {name: value for name, value in request.headers.items()}
    try:
        status, answer = services.handle_notification(request.event, headers, request.body.decode("utf-8"))
    except UnicodeDecodeError:
        return error_response(CvcoError.of("notification_malformed"), 400)
    except CvcoError as error:
        if error.code and error.code.startswith("notification_"):
            return error_response(error, 400)  # PROTOCOL.md §3: a refused notification is a 400
        raise
    if answer is None:
        return HttpResponse(status=status)
    return json_response(answer, status=status)


def pay(request, order, secret, **kwargs):
    """The shopper's CVCo page (execute_payment redirects here; linked from the pending page)."""
    try:
        order = request.event.orders.get_with_secret_check(code=order, received_secret=secret, tag=None)
    except Order.DoesNotExist:
        raise Http404("Unknown order")
    services.grant_order(request, order)
    return render(
        request,
        "pretix_cvco/pay.html",
        {
            "event": request.event,
            "order": order,
            "endpoint": eventreverse(request.event, "plugins:pretix_cvco:api_root").rstrip("/"),
            "order_url": eventreverse(
                request.event, "presale:event.order", kwargs={"order": order.code, "secret": order.secret}
            ),
        },
    )


@api(["POST"])
def test_orders(request):
    """Test-only (Django setting CVCO_TEST_ORDERS): an order of exactly `amount_cents`, owned by
    the caller's session, for the contract suite. 404 when the setting is off."""
    if not getattr(settings, "CVCO_TEST_ORDERS", False):
        raise Http404()
    try:
        body = json.loads(body_text(request) or "null")
    except ValueError:
        body = None
    amount = body.get("amount_cents") if isinstance(body, dict) else None
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= 100_000_000:
        raise CvcoError.of("invalid_request", field="amount_cents")
    price = services.euros(amount)
    with transaction.atomic():
        item, _ = Item.objects.get_or_create(
            event=request.event,
            name="CVCo test order",
            defaults={"default_price": Decimal("0.00"), "admission": False, "active": False},
        )
        order = Order.objects.create(
            event=request.event,
            email="shopper@example.org",
            status=Order.STATUS_PENDING,
            datetime=now(),
            expires=now() + datetime.timedelta(days=1),
            total=price,
            locale="en",
            sales_channel=request.organizer.sales_channels.get(identifier="web"),
        )
        OrderPosition.objects.create(order=order, item=item, variation=None, price=price, attendee_name_parts={})
        order.create_transactions()
    services.grant_order(request, order)
    return json_response(
        {
            "order_ref": order.code,
            "total_cents": amount,
            "remaining_cents": amount,
            "status": "awaiting_payment",
            "secret": order.secret,
        },
        status=201,
    )


@api(["GET"])
def test_order(request, order_ref):
    """Test-only: the pretix view of an order (payments by provider, status) for the suites."""
    if not getattr(settings, "CVCO_TEST_ORDERS", False):
        raise Http404()
    order = services.order_of_session(request, order_ref)
    order.refresh_from_db()
    return json_response(
        {
            "order_ref": order.code,
            "status": order.status,
            "total_cents": services.cents(order.total),
            "remaining_cents": services.order_remaining_cents(order),
            "payments": [
                {"provider": p.provider, "state": p.state, "amount_cents": services.cents(p.amount)}
                for p in order.payments.order_by("pk")
            ],
            "confirmed_cents": sum(
                services.cents(p.amount)
                for p in order.payments.filter(state=OrderPayment.PAYMENT_STATE_CONFIRMED)
            ),
        }
    )
