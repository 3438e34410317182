"""pretix's CVCo back-office inside a real pretix against the real sandbox: payment requests sent by
staff (the sandbox's beneficiary pays them in her app), their cancellation, refunds through
pretix's own refund form and through the API, the event's transactions with filters, the
control-panel pages, and who may do what."""

import datetime
import re
import time
import uuid
from decimal import Decimal

import pytest
import requests
from cvco_sandbox import http as sandbox_http
from django.test import Client
from django_scopes import scopes_disabled

from pretix.base.models import Order, OrderPayment, OrderRefund, Team, User

from pretix_cvco.backoffice_models import CvcoPaymentRequest

ALICE = "alice.approve@sandbox.cvco.test"
CHLOE = "chloe.decline@sandbox.cvco.test"
JEANNE = "jeanne.manual@sandbox.cvco.test"
JEANNE_ID = "10000000006"


def catalogue_body(code):
    """The catalogue's error body for `code`, without detail or field."""
    from pretix_cvco import cvco

    entry = cvco.error_catalogue()[code]
    return {"code": code, "message_fr": entry["message_fr"], "message_en": entry["message_en"],
            "retryable": entry["retryable"]}


def wait_until(predicate, timeout_s=20, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


def pretix_order(shop, code):
    with scopes_disabled():
        return Order.objects.get(event=shop.event, code=code)


def make_user(shop, email, **permissions):
    with scopes_disabled():
        user = User.objects.create_user(email, "staff-pass-1234")
        team = Team.objects.create(organizer=shop.event.organizer, name=email, all_events=True, **permissions)
        team.members.add(user)
    return user


def login(shop, email):
    """A browser-like session logged in through pretix's own login form, its CSRF token sent as
    the X-CSRFToken header (Django's way) on every call."""
    session = requests.Session()
    page = session.get(f"{shop.site}/control/login", timeout=15)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = session.post(f"{shop.site}/control/login", data={
        "csrfmiddlewaretoken": token, "email": email, "password": "staff-pass-1234"},
        headers={"Referer": f"{shop.site}/control/login"}, timeout=15, allow_redirects=False)
    assert done.status_code == 302 and "login" not in done.headers["Location"], done.status_code
    session.headers["X-CSRFToken"] = session.cookies["pretix_csrftoken"]
    return session


@pytest.fixture
def staff(shop):
    make_user(shop, "manager@example.org", all_event_permissions=True)
    return login(shop, "manager@example.org")


def send(shop, staff, order_ref, attempt=None, **fields):
    body = {"order_ref": order_ref, "delivery": "email", "email": JEANNE, "attempt": attempt or uuid.uuid4().hex,
            **fields}
    return staff.post(f"{shop.api}/payment-requests", json=body, timeout=30)


def jeanne_pays(shop, order_ref, amount_cents=None):
    """Jeanne opens the e-mailed request in her app and confirms it."""
    full_code = f"{shop.event.slug.upper()}-{order_ref}"
    pending = shop.sandbox.pending(JEANNE_ID)
    (item,) = [r for r in pending["payment_requests"] if r["merchant_order_id"] == full_code]
    status, tx = sandbox_http("POST", f"{shop.sandbox.url}/app/api/pay",
                              {"beneficiary": JEANNE, "pre_transaction_id": item["id"]})
    assert status == 201, tx
    status, body = shop.sandbox.confirm(tx["id"], JEANNE, amount_cents=amount_cents)
    assert status == 200, body
    return tx["id"]


def follow(shop, staff, request_id, until, timeout_s=20):
    def read():
        body = staff.get(f"{shop.api}/payment-requests/{request_id}", timeout=30).json()
        return body if until(body) else None

    return wait_until(read, timeout_s=timeout_s, what=f"request {request_id}")


@pytest.mark.django_db(transaction=True)
def test_an_emailed_request_paid_by_the_beneficiary_pays_the_pretix_order(shop, staff):
    order = shop.order(4550)
    sent = send(shop, staff, order["order_ref"], attempt="r1")
    assert sent.status_code == 201, sent.text
    request = sent.json()
    assert request["status"] == "awaiting_beneficiary" and request["final"] is False
    assert request["amount_cents"] == 4550 and request["delivery"] == "email" and request["capture"] == "immediate"
    assert request["email_masked"] and "jeanne.manual" not in request["email_masked"]
    assert request["payment"] is None and request["expires_at"]
    assert list(request) == ["request_id", "payment_id", "order_ref", "amount_cents", "delivery", "email_masked", "capture",
                             "status", "final", "expires_at", "qr_payload", "qr_svg", "payment", "created_at",
                             "updated_at"]
    # The same attempt again (a lost answer retried): the same request, nothing new at ANCV.
    again = send(shop, staff, order["order_ref"], attempt="r1")
    assert again.status_code == 200 and again.json()["request_id"] == request["request_id"]
    full_code = f"{shop.event.slug.upper()}-{order['order_ref']}"
    assert [r["merchant_order_id"] for r in shop.sandbox.pending(JEANNE_ID)["payment_requests"]].count(full_code) == 1
    # One open CVCo operation per order.
    other = send(shop, staff, order["order_ref"], attempt="r2")
    assert other.status_code == 409 and other.json()["code"] == "payment_in_progress"
    # Its Payment before anybody paid (render_payment from the request): MOTO, waiting for the app
    # until the request expires.
    waiting = staff.get(f"{shop.api}/payments/{request['payment_id']}", timeout=30)
    assert waiting.status_code == 200, waiting.text
    waiting = waiting.json()
    assert waiting["status"] == "awaiting_beneficiary" and waiting["final"] is False
    assert waiting["channel"] == "moto" and waiting["mode"] == "identifier"
    assert waiting["request_id"] == request["request_id"] and waiting["transaction_id"] is None
    assert waiting["next_action"]["type"] == "wait_for_app" and waiting["next_action"]["deadline"]
    assert waiting["amount_cents"] == 4550 and waiting["beneficiary_masked"] == request["email_masked"]

    transaction_id = jeanne_pays(shop, order["order_ref"])
    paid = follow(shop, staff, request["request_id"], lambda r: r["final"])
    assert paid["status"] == "authorized"
    assert paid["payment"]["transaction_id"] == transaction_id
    assert paid["payment"]["channel"] == "moto" and paid["payment"]["request_id"] == request["request_id"]
    assert paid["payment"]["payment_id"] == request["payment_id"]
    assert paid["payment"]["authorized_cents"] == 4550 and paid["payment"]["order_remaining_cents"] == 0
    pretix = pretix_order(shop, order["order_ref"])
    assert pretix.status == Order.STATUS_PAID
    with scopes_disabled():
        (op,) = pretix.payments.filter(provider="cvco")
    assert op.state == OrderPayment.PAYMENT_STATE_CONFIRMED and op.amount == Decimal("45.50")
    listed = staff.get(f"{shop.api}/payment-requests", timeout=30).json()
    assert [r["request_id"] for r in listed["items"]] == [request["request_id"]] and listed["total"] == 1
    assert staff.get(f"{shop.api}/payment-requests", params={"status": "awaiting_beneficiary"}).json()["total"] == 0
    transactions = staff.get(f"{shop.api}/transactions", timeout=30).json()
    assert [p["transaction_id"] for p in transactions["items"]] == [transaction_id]


@pytest.mark.django_db(transaction=True)
def test_a_chosen_amount_leaves_the_rest_due_and_bad_amounts_are_refused(shop, staff):
    order = shop.order(12000)
    below = send(shop, staff, order["order_ref"], amount_cents=1500)
    assert below.status_code == 422 and below.json()["code"] == "amount_below_minimum", below.text
    above = send(shop, staff, order["order_ref"], amount_cents=12001)
    assert above.status_code == 422 and above.json()["code"] == "invalid_amount"
    assert above.json()["field"] == "amount_cents"
    missing = send(shop, staff, order["order_ref"], email=None)
    assert missing.status_code == 422 and missing.json()["field"] == "email"
    unknown = send(shop, staff, "NOPE1")
    assert unknown.status_code == 404 and unknown.json()["code"] == "order_not_found"
    deferred = send(shop, staff, order["order_ref"], capture="deferred")
    assert deferred.status_code == 422 and deferred.json()["field"] == "capture"
    assert not CvcoPaymentRequest.objects.exists()

    sent = send(shop, staff, order["order_ref"], amount_cents=5000)
    assert sent.status_code == 201, sent.text
    jeanne_pays(shop, order["order_ref"])
    paid = follow(shop, staff, sent.json()["request_id"], lambda r: r["final"])
    assert paid["status"] == "authorized" and paid["payment"]["order_remaining_cents"] == 7000
    pretix = pretix_order(shop, order["order_ref"])
    assert pretix.status == Order.STATUS_PENDING
    with scopes_disabled():
        assert pretix.pending_sum == Decimal("70.00")


@pytest.mark.django_db(transaction=True)
def test_cancelling_an_open_request_stops_the_beneficiary_and_frees_the_order(shop, staff):
    order = shop.order(3000)
    request = send(shop, staff, order["order_ref"]).json()
    url = f"{shop.api}/payment-requests/{request['request_id']}/cancel"
    cancelled = staff.post(url, json={}, timeout=30)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["final"] is True
    # ANCV's notification of the cancel re-reads it (the same request): nothing changes.
    from pretix_cvco import backoffice

    with scopes_disabled():
        backoffice.refresh_request(CvcoPaymentRequest.objects.get(), force=True)
    # The retry of a lost answer: answered unchanged.
    again = staff.post(url, json={}, timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert again.json()["updated_at"] == cancelled.json()["updated_at"]
    full_code = f"{shop.event.slug.upper()}-{order['order_ref']}"
    assert full_code not in [r["merchant_order_id"] for r in shop.sandbox.pending(JEANNE_ID)["payment_requests"]]
    status, _ = sandbox_http("POST", f"{shop.sandbox.url}/app/api/pay",
                             {"beneficiary": JEANNE, "pre_transaction_id":
                              CvcoPaymentRequest.objects.get().ancv_request_id})
    assert status >= 400
    # The order takes a new request (paid this time), and a paid request cannot be cancelled.
    second = send(shop, staff, order["order_ref"])
    assert second.status_code == 201, second.text
    jeanne_pays(shop, order["order_ref"])
    follow(shop, staff, second.json()["request_id"], lambda r: r["status"] == "authorized")
    late = staff.post(f"{shop.api}/payment-requests/{second.json()['request_id']}/cancel", json={}, timeout=30)
    assert late.status_code == 409 and late.json()["code"] == "illegal_transition"
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID


@pytest.mark.django_db(transaction=True)
def test_a_qr_request_shows_its_payload_until_paid(shop, staff):
    order = shop.order(2500)
    sent = staff.post(f"{shop.api}/payment-requests", json={
        "order_ref": order["order_ref"], "delivery": "qr", "attempt": "q1"}, timeout=30)
    assert sent.status_code == 201, sent.text
    request = sent.json()
    assert request["qr_payload"].startswith("cvco:pay?") and "<svg" in request["qr_svg"]
    shown = staff.get(f"{shop.api}/payments/{request['payment_id']}", timeout=30).json()
    assert shown["channel"] == "proximity" and shown["mode"] == "qr" and shown["status"] == "awaiting_beneficiary"
    assert shown["next_action"]["type"] == "show_qr" and shown["next_action"]["qr_payload"] == request["qr_payload"]
    status, tx = sandbox_http("POST", f"{shop.sandbox.url}/app/api/pay",
                              {"beneficiary": JEANNE, "qr_payload": request["qr_payload"]})
    assert status == 201, tx
    assert shop.sandbox.confirm(tx["id"], JEANNE)[0] == 200
    # ANCV's notification alone pays the pretix order: nobody reads the adapter meanwhile.
    wait_until(lambda: pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID,
               what="the order paid by the notification")
    with scopes_disabled():
        (op,) = pretix_order(shop, order["order_ref"]).payments.filter(provider="cvco")
        assert op.state == OrderPayment.PAYMENT_STATE_CONFIRMED
    paid = follow(shop, staff, request["request_id"], lambda r: r["status"] == "authorized")
    assert paid["payment"]["transaction_id"] == tx["id"] and paid["payment"]["channel"] == "proximity"
    assert paid["payment"]["request_id"] == request["request_id"]


def pay_with_alice(shop, amount_cents):
    order = shop.order(amount_cents)
    payment = shop.pay(order["order_ref"], ALICE).json()
    assert shop.wait_final(payment["payment_id"])["status"] == "authorized"
    return order, payment


def ancv_refunded(shop, transaction_id):
    status, token = sandbox_http("POST", f"{shop.sandbox.url}/oauth/token", {
        "grant_type": "client_credentials", "client_id": shop.shop["client_id"],
        "client_secret": shop.shop["client_secret"]})
    assert status == 200, token
    status, tx = sandbox_http("GET", f"{shop.sandbox.url}/api/v1/transactions/{transaction_id}",
                              headers={"Authorization": f"Bearer {token['access_token']}"})
    assert status == 200, tx
    return tx["refunded_cents"]


@pytest.mark.django_db(transaction=True)
def test_partial_then_full_refund_through_pretix_refund_form(shop):
    order, payment = pay_with_alice(shop, 6000)
    user = make_user(shop, "refunds@example.org", all_event_permissions=True)
    browser = Client()
    browser.force_login(user)
    pretix = pretix_order(shop, order["order_ref"])
    with scopes_disabled():
        (op,) = pretix.payments.filter(provider="cvco")
    url = f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}/orders/{pretix.code}/refund"

    def refund_form(amount, mode, last_refund_id):
        return browser.post(url, {
            "start-action": "do_nothing", "start-mode": mode, "start-partial_amount": amount,
            f"refund-{op.pk}": amount, "perform": "true", "last_known_refund_id": str(last_refund_id),
        })

    partial = refund_form("10.00", "partial", 0)
    assert partial.status_code == 302, partial.content.decode()[-2000:]
    with scopes_disabled():
        (first,) = pretix.refunds.all()
    assert first.state == OrderRefund.REFUND_STATE_DONE and first.amount == Decimal("10.00")
    assert ancv_refunded(shop, payment["transaction_id"]) == 1000
    assert shop.get(payment["payment_id"]).json()["refunded_cents"] == 1000

    full = refund_form("50.00", "full", first.pk)
    assert full.status_code == 302
    with scopes_disabled():
        states = sorted((r.amount, r.state) for r in pretix.refunds.all())
    assert states == [(Decimal("10.00"), "done"), (Decimal("50.00"), "done")]
    assert ancv_refunded(shop, payment["transaction_id"]) == 6000
    after = shop.get(payment["payment_id"]).json()
    assert after["status"] == "refunded" and after["refunded_cents"] == 6000


@pytest.mark.django_db(transaction=True)
def test_api_refund_with_an_attempt_refunds_once_and_is_a_pretix_refund(shop, staff):
    order, payment = pay_with_alice(shop, 4550)
    url = f"{shop.api}/payments/{payment['payment_id']}/refund"
    first = staff.post(url, json={"amount_cents": 1000, "reason": "geste", "attempt": "x1"}, timeout=30)
    assert first.status_code == 200, first.text
    assert first.json()["refunded_cents"] == 1000 and first.json()["status"] == "authorized"
    again = staff.post(url, json={"amount_cents": 1000, "reason": "geste", "attempt": "x1"}, timeout=30)
    assert again.status_code == 200 and again.json()["refunded_cents"] == 1000
    assert ancv_refunded(shop, payment["transaction_id"]) == 1000
    pretix = pretix_order(shop, order["order_ref"])
    with scopes_disabled():
        (refund,) = pretix.refunds.all()
    assert refund.state == OrderRefund.REFUND_STATE_DONE and refund.amount == Decimal("10.00")
    too_much = staff.post(url, json={"amount_cents": 3600, "attempt": "x2"}, timeout=30)
    assert too_much.status_code == 422 and too_much.json()["code"] == "refund_exceeds_captured"
    rest = staff.post(url, json={"attempt": "x3"}, timeout=30)
    assert rest.status_code == 200 and rest.json()["status"] == "refunded"
    assert rest.json()["refunded_cents"] == 4550 == ancv_refunded(shop, payment["transaction_id"])
    unknown = staff.post(f"{shop.api}/payments/pay_nope/refund", json={"attempt": "x4"}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["code"] == "payment_not_found"


@pytest.mark.django_db(transaction=True)
def test_transactions_of_the_event_with_filters(shop, staff):
    paid_order, paid = pay_with_alice(shop, 4550)
    declined_order = shop.order(3000)
    declined = shop.pay(declined_order["order_ref"], CHLOE).json()
    assert shop.wait_final(declined["payment_id"])["status"] == "declined"
    big_order, big = pay_with_alice(shop, 9000)

    def ids(**params):
        body = staff.get(f"{shop.api}/transactions", params=params, timeout=30).json()
        assert body["total"] == len(body["items"])
        return [p["payment_id"] for p in body["items"]]

    assert ids() == [big["payment_id"], declined["payment_id"], paid["payment_id"]]  # newest first
    assert ids(status="declined") == [declined["payment_id"]]
    assert ids(status="authorized") == [big["payment_id"], paid["payment_id"]]
    assert ids(min_amount_cents=4000, max_amount_cents=5000) == [paid["payment_id"]]
    assert ids(order_ref=big_order["order_ref"]) == [big["payment_id"]]
    today = datetime.date.today()
    assert len(ids(**{"from": (today - datetime.timedelta(days=1)).isoformat()})) == 3
    assert ids(**{"to": (today - datetime.timedelta(days=2)).isoformat()}) == []
    # An unreadable query parameter: 400 invalid_request naming it, the catalogue's words only
    # (PROTOCOL.md; the bytes cvco-host answers).
    for params, field in (({"from": "yesterday"}, "from"), ({"min_amount_cents": "lots"}, "min_amount_cents"),
                          ({"max_amount_cents": "-1"}, "max_amount_cents"), ({"limit": "1_0"}, "limit")):
        bad = staff.get(f"{shop.api}/transactions", params=params, timeout=30)
        assert bad.status_code == 400, bad.text
        assert bad.json() == {**catalogue_body("invalid_request"), "field": field}


@pytest.mark.django_db(transaction=True)
def test_only_staff_with_the_permission_and_the_csrf_token_get_in(shop, staff):
    order = shop.order(2500)
    anonymous = requests.post(f"{shop.api}/payment-requests", json={}, timeout=15)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    assert requests.get(f"{shop.api}/transactions", timeout=15).status_code == 401
    # The shopper's own session (the order is theirs) is no staff session.
    assert shop.session.get(f"{shop.api}/transactions", timeout=15).status_code == 401

    make_user(shop, "viewer@example.org", limit_event_permissions={"event.orders:read": True})
    viewer = login(shop, "viewer@example.org")
    assert viewer.get(f"{shop.api}/transactions", timeout=15).status_code == 200
    refused = send(shop, viewer, order["order_ref"])
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"

    no_csrf = requests.Session()
    no_csrf.cookies.update(staff.cookies)
    forged = no_csrf.post(f"{shop.api}/payment-requests", json={"order_ref": order["order_ref"]}, timeout=15)
    assert forged.status_code == 403 and forged.json()["code"] == "forbidden"
    named = no_csrf.post(f"{shop.api}/payment-requests", headers={"X-CSRF-Token": staff.cookies["pretix_csrftoken"]},
                         json={"order_ref": order["order_ref"]}, timeout=15)
    assert named.status_code == 422 and named.json()["code"] == "invalid_request"  # past the CSRF check
    form = staff.post(f"{shop.api}/payment-requests", data={"order_ref": order["order_ref"]}, timeout=15)
    assert form.status_code == 415 and form.json()["code"] == "invalid_request"
    assert b", " not in form.content and b'": ' not in form.content  # compact cvco error body
    # A multipart body never reaches Django's form parser (its 400 page): the contract's 415.
    multipart = staff.post(f"{shop.api}/payment-requests", data="{}",
                           headers={"Content-Type": "multipart/form-data; boundary=x"}, timeout=15)
    assert multipart.status_code == 415 and multipart.headers["Content-Type"] == "application/json"
    assert multipart.json()["code"] == "invalid_request"
    assert not CvcoPaymentRequest.objects.exists()
    # pretix refuses a NUL byte in a query string before any view (its HTML 400): the guard
    # answers the cvco body naming the parameter; an event that does not exist is not_found.
    nul = staff.get(f"{shop.api}/transactions?status=%00", timeout=15)
    assert nul.status_code == 400 and nul.headers["Content-Type"] == "application/json"
    assert nul.json() == {**catalogue_body("invalid_request"), "field": "status"}
    nowhere = requests.get(f"{shop.site}/no-organizer/no-event/cvco/v1/checkout?order_ref=X", timeout=15)
    assert nowhere.status_code == 404 and nowhere.json() == catalogue_body("not_found")


@pytest.mark.django_db(transaction=True)
def test_control_panel_sends_follows_and_cancels_requests_and_lists_transactions(shop):
    user = make_user(shop, "desk@example.org", all_event_permissions=True)
    browser = Client()
    browser.force_login(user)
    order = shop.order(3500)
    base = f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}"
    page = browser.get(f"{base}/orders/{order['order_ref']}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="cvco-requests"' in html and "Send a payment request" in html

    sent = browser.post(f"{base}/cvco/orders/{order['order_ref']}/requests/",
                        {"delivery": "email", "email": JEANNE, "amount": "35.00"})
    assert sent.status_code == 302
    request = CvcoPaymentRequest.objects.get()
    assert request.status == "awaiting_beneficiary" and request.amount_cents == 3500
    status = browser.get(f"{base}/cvco/orders/{order['order_ref']}/requests/").json()
    assert [(r["request_id"], r["status"]) for r in status["items"]] == [(request.request_id, "awaiting_beneficiary")]
    assert request.request_id in browser.get(f"{base}/orders/{order['order_ref']}/").content.decode()

    cancelled = browser.post(f"{base}/cvco/requests/{request.request_id}/cancel")
    assert cancelled.status_code == 302
    request.refresh_from_db()
    assert request.status == "cancelled" and request.final

    # A second request, paid by Jeanne: the order page's status JSON follows it to authorized.
    browser.post(f"{base}/cvco/orders/{order['order_ref']}/requests/", {"delivery": "email", "email": JEANNE})
    jeanne_pays(shop, order["order_ref"])
    wait_until(lambda: browser.get(f"{base}/cvco/orders/{order['order_ref']}/requests/").json()["items"][0]["status"]
               == "authorized", what="authorized on the order page")
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID

    listing = browser.get(f"{base}/cvco/transactions/", {"status": "authorized", "order": order["order_ref"]})
    assert listing.status_code == 200
    text = listing.content.decode()
    assert order["order_ref"] in text and "35.00 €" in text
    empty = browser.get(f"{base}/cvco/transactions/", {"status": "declined"}).content.decode()
    assert order["order_ref"] not in empty.split('id="cvco-transactions"')[1]
    assert "Chèque-Vacances Connect" in browser.get(f"{base}/").content.decode()  # navigation entry

    outsider = make_user(shop, "outsider@example.org", limit_event_permissions={})
    other = Client()
    other.force_login(outsider)
    assert other.get(f"{base}/cvco/transactions/").status_code in (302, 403, 404)
