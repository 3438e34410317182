"""PROTOCOL.md §2 (back-office endpoints), the same scenarios for every adapter, through the
manager's session the driver gives (`adapter.staff()`, CSRF header included): payment requests
(create, idempotent create, get, list with filters, cancel, paid by the beneficiary, finalise),
refunds (partial, full, the same attempt never twice, more than captured refused) and the
transactions list with its filters. A driver without `staff()` is n/a locally and fails under CI
(back_office.require_staff): every adapter serves §2 (issue 11).

The beneficiary is the sandbox's: Jeanne answers nothing by herself; the test pays for her in the
sandbox's app API (the e-mailed request from her pending list, the QR from its payload), as the
lost-answer matrix does.
"""

import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from back_office import require_staff
from cvco_sandbox import http as sandbox_http

ALICE = "alice.approve@sandbox.cvco.test"
CHLOE = "chloe.decline@sandbox.cvco.test"
JEANNE = "jeanne.manual@sandbox.cvco.test"
JEANNE_ID = "10000000006"
ERROR_KEYS = {"code", "message_fr", "message_en", "retryable"}
REQUEST_KEYS = {"request_id", "order_ref", "amount_cents", "delivery", "capture", "status", "final", "expires_at",
                "payment", "created_at", "updated_at"}


@pytest.fixture
def staff(adapter):
    return require_staff(adapter)


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert ERROR_KEYS <= body.keys(), body
    assert body["code"] == code, body
    return body


def post(adapter, session, path, body):
    return session.post(f"{adapter.base_url}{path}", json=body, timeout=60)


def get(adapter, session, path, **params):
    return session.get(f"{adapter.base_url}{path}", params=params, timeout=30)


def wait_for(what, read, predicate, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while True:
        body = read()
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s: {body}")
        time.sleep(0.25)


def paid_payment(adapter, shopper, amount_cents, beneficiary=ALICE):
    """A payment of a new order of the shopper, final (ALICE: authorized in full)."""
    order_ref = shopper.create_order(amount_cents)
    created = post(adapter, shopper.session, "/payments", {
        "order_ref": order_ref, "mode": "identifier", "beneficiary": beneficiary, "attempt": uuid.uuid4().hex})
    assert created.status_code == 201, created.text
    payment_id = created.json()["payment_id"]
    return order_ref, wait_for("a final payment", lambda: get(adapter, shopper.session, f"/payments/{payment_id}").json(),
                               lambda body: body["final"])


def new_request(adapter, staff, order_ref, amount_cents, delivery, capture="immediate", attempt=None):
    body = {"order_ref": order_ref, "amount_cents": amount_cents, "delivery": delivery, "capture": capture,
            "attempt": attempt or uuid.uuid4().hex}
    if delivery == "email":
        body["email"] = JEANNE
    return post(adapter, staff, "/payment-requests", body)


def jeanne_pays(sandbox, what):
    status, tx = sandbox_http("POST", f"{sandbox.url}/app/api/pay", {"beneficiary": JEANNE, **what})
    assert status == 201, tx
    status, body = sandbox_http("POST", f"{sandbox.url}/app/api/transactions/{tx['id']}/confirm",
                                {"beneficiary": JEANNE, "pin": "1234"})
    assert status == 200, body


def ancv_refunded(sandbox, adapter, transaction_id):
    """What ANCV itself says was refunded on the transaction (its merchant API)."""
    shop = adapter.shop
    status, token = sandbox_http("POST", f"{sandbox.url}/oauth/token", {
        "grant_type": "client_credentials", "client_id": shop["client_id"], "client_secret": shop["client_secret"]})
    assert status == 200, token
    status, tx = sandbox_http("GET", f"{sandbox.url}/api/v1/transactions/{transaction_id}",
                              headers={"Authorization": f"Bearer {token['access_token']}"})
    assert status == 200, tx
    return tx["refunded_cents"]


def test_back_office_needs_a_session_and_its_csrf_token(adapter, staff):
    anonymous = requests.Session()
    assert_error(get(adapter, anonymous, "/transactions"), 401, "unauthorized")
    assert_error(get(adapter, anonymous, "/payment-requests"), 401, "unauthorized")
    assert_error(new_request(adapter, anonymous, "ANY-1", 3000, "qr"), 401, "unauthorized")
    # The manager's session without its CSRF token: refused before anything is done.
    no_token = requests.Session()
    no_token.cookies.update(staff.cookies)
    order_ref = adapter.new_shopper().create_order(3000)
    assert_error(new_request(adapter, no_token, order_ref, 3000, "qr"), 403, "forbidden")
    listed = get(adapter, staff, "/payment-requests").json()["items"]
    assert all(item["order_ref"] != order_ref for item in listed), listed


def test_payment_request_errors_say_the_minimum_and_what_is_wrong_with_the_address(adapter, staff, shopper):
    """What the seller reads: the minimum itself (20,00 €), and the mistake in a typed address."""
    below = assert_error(new_request(adapter, staff, shopper.create_order(500), 500, "qr"), 422, "amount_below_minimum")
    assert "20,00" in below["message_fr"] and "20.00" in below["message_en"], below
    order_ref = shopper.create_order(3000)
    for email, fr, en in [("jeanne.example.fr", "Il manque le « @ »", '"@"'),
                          ("jeanne@", "Il manque le domaine", "no domain"),
                          ("jeanne@example", "incomplet", "incomplete"),
                          ("jeanne dupont@example.fr", "espace", "space")]:
        body = {"order_ref": order_ref, "amount_cents": 3000, "delivery": "email", "email": email,
                "capture": "immediate", "attempt": uuid.uuid4().hex}
        error = assert_error(post(adapter, staff, "/payment-requests", body), 422, "invalid_beneficiary")
        assert error.get("field") == "email", error
        assert fr in error["message_fr"] and en in error["message_en"], (email, error)
        assert "320" not in error["message_fr"], error


def test_payment_request_by_email_created_once_listed_and_cancelled(adapter, staff, shopper, sandbox):
    order_ref = shopper.create_order(4500)
    attempt = uuid.uuid4().hex
    created = new_request(adapter, staff, order_ref, 4500, "email", attempt=attempt)
    assert created.status_code == 201, created.text
    request = created.json()
    assert REQUEST_KEYS <= request.keys(), REQUEST_KEYS - request.keys()
    assert request["order_ref"] == order_ref and request["amount_cents"] == 4500
    assert request["delivery"] == "email" and request["capture"] == "immediate"
    assert request["status"] == "awaiting_beneficiary" and request["final"] is False and request["payment"] is None
    assert request["email_masked"] and JEANNE not in request["email_masked"]
    request_id = request["request_id"]

    again = new_request(adapter, staff, order_ref, 4500, "email", attempt=attempt)
    assert again.status_code == 200, again.text
    assert again.json()["request_id"] == request_id

    read = get(adapter, staff, f"/payment-requests/{request_id}")
    assert read.status_code == 200 and read.json()["request_id"] == request_id
    listed = get(adapter, staff, "/payment-requests", status="awaiting_beneficiary")
    assert listed.status_code == 200, listed.text
    assert request_id in [item["request_id"] for item in listed.json()["items"]]
    assert request_id not in [item["request_id"] for item in
                              get(adapter, staff, "/payment-requests", status="cancelled").json()["items"]]

    cancelled = post(adapter, staff, f"/payment-requests/{request_id}/cancel", {})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["final"] is True
    # The retry of a lost answer: the cancelled request, unchanged.
    repeated = post(adapter, staff, f"/payment-requests/{request_id}/cancel", {})
    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["status"] == "cancelled"
    assert repeated.json()["updated_at"] == cancelled.json()["updated_at"]
    assert request_id in [item["request_id"] for item in
                          get(adapter, staff, "/payment-requests", status="cancelled").json()["items"]]
    # Jeanne no longer has it to pay.
    status, pending = sandbox_http("GET", f"{sandbox.url}/app/api/beneficiaries/{JEANNE_ID}/pending")
    assert status == 200, pending
    assert all(item["merchant_order_id"] != order_ref for item in pending["payment_requests"]), pending


def test_payment_requests_list_newest_first_and_unknown_is_not_found(adapter, staff, shopper):
    first = new_request(adapter, staff, shopper.create_order(3000), 3000, "qr").json()["request_id"]
    time.sleep(1.1)  # created_at has at least second precision everywhere
    second = new_request(adapter, staff, shopper.create_order(3100), 3100, "qr").json()["request_id"]
    ids = [item["request_id"] for item in get(adapter, staff, "/payment-requests").json()["items"]]
    assert second in ids and first in ids and ids.index(second) < ids.index(first), ids
    assert get(adapter, staff, "/payment-requests/req_does_not_exist").status_code == 404
    tomorrow = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)).strftime("%Y-%m-%d")
    later = get(adapter, staff, "/payment-requests", **{"from": tomorrow})
    assert later.status_code == 200, later.text
    assert first not in [item["request_id"] for item in later.json()["items"]]


def test_qr_pre_reservation_paid_then_finalised_once(adapter, staff, shopper, sandbox):
    """Where the platform declares no deferred capture (driver `supports_deferred_capture =
    False`, pretix: PROTOCOL.md §2), the request is refused with 422 invalid_request field capture
    and nothing is left open on the order; elsewhere the whole pre-reservation flow."""
    order_ref = shopper.create_order(4000)
    created = new_request(adapter, staff, order_ref, 4000, "qr", capture="deferred")
    if not getattr(adapter, "supports_deferred_capture", True):
        refused = assert_error(created, 422, "invalid_request")
        assert refused.get("field") == "capture", refused
        listed = get(adapter, staff, "/payment-requests").json()["items"]
        assert all(item["order_ref"] != order_ref for item in listed), listed
        # Nothing holds the order: an immediate request for it is made at once.
        immediate = new_request(adapter, staff, order_ref, 4000, "qr")
        assert immediate.status_code == 201, immediate.text
        assert immediate.json()["capture"] == "immediate", immediate.json()
        return
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["delivery"] == "qr" and request["capture"] == "deferred"
    assert request["qr_payload"] and "<svg" in request["qr_svg"] and request["qr_svg"].rstrip().endswith("</svg>")
    request_id = request["request_id"]
    assert_error(post(adapter, staff, f"/payment-requests/{request_id}/finalise", {}), 409, "illegal_transition")

    jeanne_pays(sandbox, {"qr_payload": request["qr_payload"]})
    paid = wait_for("the request authorized", lambda: get(adapter, staff, f"/payment-requests/{request_id}").json(),
                    lambda body: body["status"] == "authorized")
    assert paid["payment"]["authorized_cents"] == 4000 and paid["payment"]["request_id"] == request_id

    finalised = post(adapter, staff, f"/payment-requests/{request_id}/finalise", {"amount_cents": 3000})
    assert finalised.status_code == 200, finalised.text
    assert finalised.json()["payment"]["captured_cents"] == 3000
    assert_error(post(adapter, staff, f"/payment-requests/{request_id}/finalise", {}), 409, "illegal_transition")


def test_refund_partial_then_full_never_twice(adapter, staff, shopper, sandbox):
    _, payment = paid_payment(adapter, shopper, 4550)
    assert payment["status"] == "authorized", payment
    payment_id = payment["payment_id"]
    attempt = uuid.uuid4().hex
    partial = post(adapter, staff, f"/payments/{payment_id}/refund",
                   {"amount_cents": 1000, "reason": "contract suite", "attempt": attempt})
    assert partial.status_code == 200, partial.text
    assert partial.json()["refunded_cents"] == 1000 and partial.json()["status"] == "authorized"
    # The same attempt again (a lost answer retried): the same refund, not a second one.
    again = post(adapter, staff, f"/payments/{payment_id}/refund",
                 {"amount_cents": 1000, "reason": "contract suite", "attempt": attempt})
    assert again.status_code == 200, again.text
    assert again.json()["refunded_cents"] == 1000
    assert ancv_refunded(sandbox, adapter, payment["transaction_id"]) == 1000

    assert_error(post(adapter, staff, f"/payments/{payment_id}/refund",
                      {"amount_cents": 4000, "attempt": uuid.uuid4().hex}), 422, "refund_exceeds_captured")
    full = post(adapter, staff, f"/payments/{payment_id}/refund", {"attempt": uuid.uuid4().hex})
    assert full.status_code == 200, full.text
    assert full.json()["status"] == "refunded" and full.json()["refunded_cents"] == 4550
    assert ancv_refunded(sandbox, adapter, payment["transaction_id"]) == 4550
    assert [line["amount_cents"] for line in full.json()["refunds"]] in ([1000, 3550], [3550, 1000])
    assert get(adapter, shopper.session, f"/payments/{payment_id}").json()["status"] == "refunded"
    assert_error(post(adapter, staff, "/payments/pay_does_not_exist/refund", {"attempt": uuid.uuid4().hex}),
                 404, "payment_not_found")


def test_transactions_list_filters(adapter, staff):
    shopper = adapter.new_shopper()
    declined_order, declined = paid_payment(adapter, shopper, 3456, beneficiary=CHLOE)
    assert declined["status"] == "declined", declined
    time.sleep(1.1)
    _, authorized = paid_payment(adapter, shopper, 2345)
    ours = {declined["payment_id"], authorized["payment_id"]}

    def listed(**params):
        response = get(adapter, staff, "/transactions", **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] >= len(body["items"])
        # A handful of test payments: counted exactly, not capped.
        assert body["total_capped"] is False and body["total"] <= 10_000, body
        return [item["payment_id"] for item in body["items"] if item["payment_id"] in ours], body

    both, body = listed()
    assert both == [authorized["payment_id"], declined["payment_id"]], "newest first"
    only, body = listed(order_ref=declined_order)
    assert only == [declined["payment_id"]]
    assert all(declined_order in item["order_ref"] for item in body["items"]), body
    assert listed(status="declined")[0] == [declined["payment_id"]]
    assert all(item["status"] == "declined" for item in listed(status="declined")[1]["items"])
    assert listed(status="authorized")[0] == [authorized["payment_id"]]
    assert listed(min_amount_cents=3000)[0] == [declined["payment_id"]]
    assert listed(max_amount_cents=3000)[0] == [authorized["payment_id"]]
    assert listed(min_amount_cents=2345, max_amount_cents=2345)[0] == [authorized["payment_id"]]
    today = datetime.now(ZoneInfo("Europe/Paris"))
    assert set(listed(**{"from": today.strftime("%Y-%m-%d")})[0]) == ours
    assert listed(**{"from": (today + timedelta(days=1)).strftime("%Y-%m-%d")})[0] == []
    assert listed(to=(today - timedelta(days=1)).strftime("%Y-%m-%d"))[0] == []
    # RFC 3339 bounds: from just after the first one, only the second.
    after_first = datetime.fromisoformat(declined["created_at"].replace("Z", "+00:00")) + timedelta(milliseconds=500)
    assert listed(**{"from": after_first.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"})[0] \
        == [authorized["payment_id"]]
    bad = get(adapter, staff, "/transactions", min_amount_cents="lots")
    assert_error(bad, 400, "invalid_request")
    assert bad.json().get("field") == "min_amount_cents", bad.json()
