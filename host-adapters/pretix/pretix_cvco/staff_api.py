"""PROTOCOL.md §2 under /{organizer}/{event}/cvco/v1/ for pretix staff.

Authentication is pretix's own: the control panel's login session (cookie `pretix_session`);
reads need the event permission `event.orders:read`, changes `event.orders:write` (pretix's
"can change orders"). Every POST also needs Django's CSRF token of that session: the
`pretix_csrftoken` cookie's value in an `X-CSRFToken` header (or `X-CSRF-Token`, the name the
contract uses). Answers and errors are the contract's JSON (compact cvco error bodies)."""

import logging

from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import csrf_exempt

from pretix.multidomain.middlewares import CsrfViewMiddleware

from . import backoffice, cvco, services, views
from .cvco import CvcoError

logger = logging.getLogger(__name__)

READ, WRITE = "event.orders:read", "event.orders:write"


def json_response(body, status=200):
    return HttpResponse(cvco.dumps(body), status=status, content_type="application/json")


def error_response(err):
    return json_response(err.body, status=err.http_status)


def _csrf_ok(request):
    if "HTTP_X_CSRFTOKEN" not in request.META and "HTTP_X_CSRF_TOKEN" in request.META:
        request.META["HTTP_X_CSRFTOKEN"] = request.META["HTTP_X_CSRF_TOKEN"]
    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is None


def staff_user(request, permission):
    """The logged-in pretix user allowed `permission` on this event, else the cvco error."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        raise backoffice.error("unauthorized", detail_en="Log in to pretix's control panel.",
                               detail_fr="Connectez-vous au back-office pretix.")
    if not user.has_event_permission(request.organizer, request.event, permission, request=request):
        raise backoffice.error("forbidden", detail_en=f"pretix permission {permission} needed.",
                               detail_fr=f"Permission pretix {permission} requise.")
    return user


def staff(methods):
    """The contract's refusals first (405, 413, 415: views._refused, as cvco-host's guard, so a
    multipart body never reaches Django's form parser), then the staff session, CSRF on POST;
    CvcoError → its JSON."""

    def decorate(view):
        @csrf_exempt
        def wrapped(request, *args, **kwargs):
            kwargs.pop("organizer", None)
            kwargs.pop("event", None)
            services.reconcile_at_startup()
            try:
                refused = views._refused(request, methods, json_only=True)
                if refused is not None:
                    return refused
                write = request.method == "POST"
                user = staff_user(request, WRITE if write else READ)
                if write and not _csrf_ok(request):
                    raise backoffice.error("forbidden", detail_en="CSRF token missing or wrong.",
                                           detail_fr="Jeton CSRF absent ou erroné.")
                request.cvco_user = user
                return view(request, *args, **kwargs)
            except CvcoError as err:
                return error_response(err)

        return wrapped

    return decorate


@staff(["GET", "POST"])
def payment_requests(request):
    if request.method == "GET":
        return json_response(backoffice.list_requests(request.event, request.GET))
    parsed = backoffice.parse_request_body(request.event, request.body)
    req, created = backoffice.create_request(request.event, parsed, user=request.cvco_user)
    return json_response(backoffice.request_json(req), status=201 if created else 200)


@staff(["GET"])
def payment_request(request, request_id):
    req = backoffice.request_of_event(request.event, request_id)
    try:
        req = backoffice.refresh_request(req)
    except CvcoError as err:
        # ANCV unreachable: the recorded state is still the best answer for a status read.
        logger.info("CVCo refresh of request %s failed: %s", request_id, err.code)
    return json_response(backoffice.request_json(req))


@staff(["POST"])
def cancel_payment_request(request, request_id):
    req = backoffice.request_of_event(request.event, request_id)
    return json_response(backoffice.request_json(backoffice.cancel_request(req)))


@staff(["POST"])
def refund(request, payment_id):
    parsed = backoffice.parse_refund_body(request.event, request.body)
    cp = backoffice.refund(request.event, payment_id, parsed, user=request.cvco_user)
    return json_response(services.to_protocol(cp))


@staff(["GET"])
def transactions(request):
    return json_response(backoffice.list_transactions(request.event, request.GET))


@staff(["GET"])
def session(request):
    """The CSRF token of this staff session, for API clients that do not read cookies."""
    return json_response({"csrf_token": get_token(request), "email": request.cvco_user.email})


@csrf_exempt
def payment(request, payment_id, **kwargs):
    """GET /payments/{id}: the shopper's (views.payment); for a payment this session does not
    own, a staff session with event.orders:read reads any payment of the event, a payment
    request's included."""
    response = views.payment(request, payment_id=payment_id, **kwargs)
    if response.status_code != 404 or request.method != "GET":
        return response
    try:
        staff_user(request, READ)
    except CvcoError:
        return response
    try:
        return json_response(backoffice.staff_payment(request.event, payment_id))
    except CvcoError as err:
        return error_response(err)
