"""The control panel's CVCo pages: payment requests of an order (sent from the order's page, their
live status, cancellation) and the event's CVCo transactions with filters. Same logic as the
HTTP API (backoffice.py); pretix's permissions: `event.orders:write` to send or cancel,
`event.orders:read` to look."""

import secrets

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from pretix.base.models import Order
from pretix.control.permissions import event_permission_required

from . import backoffice, cvco, services
from .cvco import CvcoError

STATUSES = ["awaiting_beneficiary", "authorized", "partially_authorized", "declined", "expired", "cancelled",
            "refunded", "failed", "unknown"]


class RequestForm(forms.Form):
    delivery = forms.ChoiceField(label=_("Delivery"), choices=(("email", _("E-mail to the beneficiary")),
                                                               ("qr", _("QR code to show"))), initial="email")
    email = forms.EmailField(label=_("Beneficiary's Chèque-Vacances Connect e-mail"), required=False)
    amount = forms.DecimalField(label=_("Amount (€)"), max_digits=10, decimal_places=2, min_value=0,
                                required=False, help_text=_("Empty: the order's open amount."))


class TransactionFilter(forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False, choices=[("", _("All"))] + [(s, s) for s in STATUSES])
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    min_amount = forms.DecimalField(label=_("Min. amount (€)"), required=False, min_value=0, decimal_places=2)
    max_amount = forms.DecimalField(label=_("Max. amount (€)"), required=False, min_value=0, decimal_places=2)
    order = forms.CharField(label=_("Order code"), required=False, max_length=64)


def order_url(event, code):
    return reverse("control:event.order", kwargs={"organizer": event.organizer.slug, "event": event.slug,
                                                  "code": code})


def _order(request, code):
    try:
        return request.event.orders.get(code=code)
    except Order.DoesNotExist:
        raise Http404()


def order_panel(request, order):
    """The block on pretix's order page (order_info signal)."""
    from django.template.loader import get_template

    requests = list(order.cvco_requests.order_by("-created", "-pk"))
    can_write = request.user.has_event_permission(request.organizer, request.event, "event.orders:write",
                                                  request=request)
    rows = [{**backoffice.request_json(req), "amount": services.euros(req.amount_cents)} for req in requests]
    return get_template("pretix_cvco/control/order_requests.html").render({
        "order": order,
        "rows": rows,
        "open": any(not row["final"] for row in rows),
        "can_write": can_write,
        "form": RequestForm(initial={"email": order.email,
                                     "amount": services.euros(services.order_remaining_cents(order))}),
        "status_url": reverse("plugins:pretix_cvco:control.order_requests", kwargs={
            "organizer": order.event.organizer.slug, "event": order.event.slug, "code": order.code}),
        "cancel_url": reverse("plugins:pretix_cvco:control.cancel_request", kwargs={
            "organizer": order.event.organizer.slug, "event": order.event.slug, "request_id": "REQUEST_ID"}),
    }, request=request)


@event_permission_required("event.orders:read")
def order_requests(request, organizer, event, code):
    """GET: the order's requests as JSON, open ones re-read from ANCV first (the order page polls
    it). POST (event.orders:write): send a new request from the order page's form."""
    order = _order(request, code)
    if request.method == "POST":
        return _send(request, order)
    for req in order.cvco_requests.filter(final=False):
        try:
            backoffice.refresh_request(req)
        except CvcoError:
            pass
    rows = [backoffice.request_json(req) for req in order.cvco_requests.order_by("-created", "-pk")]
    return HttpResponse(cvco.dumps({"items": rows, "order_status": order.status}),
                        content_type="application/json")


def _send(request, order):
    if not request.user.has_event_permission(request.organizer, request.event, "event.orders:write",
                                             request=request):
        raise Http404()
    form = RequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Payment request not sent: {errors}").format(errors=form.errors.as_text()))
        return redirect(order_url(request.event, order.code))
    body = {"order_ref": order.code, "delivery": form.cleaned_data["delivery"],
            "attempt": f"control-{secrets.token_hex(8)}"}
    if form.cleaned_data["delivery"] == "email":
        body["email"] = form.cleaned_data["email"] or ""
    if form.cleaned_data["amount"]:
        body["amount_cents"] = services.cents(form.cleaned_data["amount"])
    try:
        parsed = backoffice.parse_request_body(request.event, cvco.dumps(body).encode())
        req, _created = backoffice.create_request(request.event, parsed, user=request.user)
    except CvcoError as err:
        messages.error(request, _("Payment request not sent: {message}").format(message=err.body.get("message_en")))
    else:
        order.log_action("pretix_cvco.request.sent", {"request_id": req.request_id, "amount_cents": req.amount_cents,
                                                       "delivery": req.delivery}, user=request.user)
        messages.success(request, _("Payment request {id} sent ({amount} €).").format(
            id=req.request_id, amount=services.euros(req.amount_cents)))
    return redirect(order_url(request.event, order.code))


@require_POST
@event_permission_required("event.orders:write")
def cancel_request(request, organizer, event, request_id):
    try:
        req = backoffice.request_of_event(request.event, request_id)
    except CvcoError:
        raise Http404()
    try:
        backoffice.cancel_request(req)
    except CvcoError as err:
        messages.error(request, _("Not cancelled: {message}").format(message=err.body.get("message_en")))
    else:
        req.order.log_action("pretix_cvco.request.cancelled", {"request_id": req.request_id}, user=request.user)
        messages.success(request, _("Payment request {id} cancelled.").format(id=req.request_id))
    return redirect(order_url(request.event, req.order.code))


@event_permission_required("event.orders:read")
def transactions(request, organizer, event):
    form = TransactionFilter(request.GET or None)
    params = {}
    if form.is_valid():
        data = form.cleaned_data
        params = {
            "status": data["status"] or None,
            "from": data["date_from"].isoformat() if data["date_from"] else None,
            "to": data["date_to"].isoformat() if data["date_to"] else None,
            "min_amount_cents": str(services.cents(data["min_amount"])) if data["min_amount"] is not None else None,
            "max_amount_cents": str(services.cents(data["max_amount"])) if data["max_amount"] is not None else None,
            "order_ref": data["order"] or None,
        }
    error = None
    try:
        listed = backoffice.list_transactions(request.event, {k: v for k, v in params.items() if v is not None})
    except CvcoError as err:
        listed, error = {"items": [], "total": 0}, err.body.get("message_en")
    rows = [{**item, "amount": services.euros(item["amount_cents"] or 0),
             "authorized": services.euros(item["authorized_cents"] or 0),
             "refunded": services.euros(item["refunded_cents"] or 0),
             "order_url": order_url(request.event, item["order_ref"])} for item in listed["items"]]
    return render(request, "pretix_cvco/control/transactions.html", {
        "form": form, "rows": rows, "total": listed["total"], "error": error,
    })
