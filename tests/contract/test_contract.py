"""PROTOCOL.md §1 (shopper endpoints) and §3 (notifications), the same HTTP scenarios for every
adapter. Beneficiaries are the sandbox's scripted accounts."""

import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests

ALICE = "alice.approve@sandbox.cvco.test"
BRUNO = "bruno.partial@sandbox.cvco.test"
CHLOE = "chloe.decline@sandbox.cvco.test"
DAVID = "david.silent@sandbox.cvco.test"
JEANNE = "jeanne.manual@sandbox.cvco.test"

ERROR_KEYS = {"code", "message_fr", "message_en", "retryable"}
PAYMENT_KEYS = {
    "payment_id", "order_ref", "amount_cents", "currency", "mode", "status", "final", "authorized_cents",
    "remaining_cents", "refunded_cents", "order_total_cents", "order_remaining_cents", "next_action",
    "sequence", "created_at", "updated_at", "error",
}
STATUSES = {"pending", "awaiting_beneficiary", "authorized", "partially_authorized", "declined", "expired",
            "cancelled", "refunded", "failed", "unknown"}


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert ERROR_KEYS <= body.keys(), body
    assert body["code"] == code, body
    assert body["message_fr"] and body["message_en"]


def assert_payment(body):
    assert PAYMENT_KEYS <= body.keys(), PAYMENT_KEYS - body.keys()
    assert body["status"] in STATUSES
    assert isinstance(body["amount_cents"], int) and isinstance(body["sequence"], int)
    assert body["remaining_cents"] == body["amount_cents"] - body["authorized_cents"] or body["status"] in (
        "refunded",)
    return body


def pay(adapter, shopper, order_ref, beneficiary, attempt=None):
    return shopper.session.post(f"{adapter.base_url}/payments", json={
        "order_ref": order_ref, "mode": "identifier", "beneficiary": beneficiary,
        "attempt": attempt or uuid.uuid4().hex}, timeout=30)


def read(adapter, shopper, payment_id):
    return shopper.session.get(f"{adapter.base_url}/payments/{payment_id}", timeout=30)


def wait_final(adapter, shopper, payment_id, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = read(adapter, shopper, payment_id)
        assert response.status_code == 200, response.text
        body = assert_payment(response.json())
        if body["final"]:
            return body
        time.sleep(0.25)
    raise AssertionError(f"{payment_id} not final within {timeout_s} s")


def test_checkout_describes_a_fresh_order(adapter, shopper):
    order_ref = shopper.create_order(12000)
    response = shopper.session.get(f"{adapter.base_url}/checkout", params={"order_ref": order_ref}, timeout=15)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["order_ref"] == order_ref
    assert body["order_total_cents"] == 12000 and body["order_remaining_cents"] == 12000
    assert body["currency"] == "EUR" and body["eligible"] is True and body["ineligible_reason"] is None
    assert isinstance(body["min_amount_cents"], int) and "identifier" in body["modes"]
    assert body["current_payment"] is None


def test_unknown_and_foreign_orders_are_not_found(adapter, shopper):
    missing = shopper.session.get(f"{adapter.base_url}/checkout", params={"order_ref": "NOPE-404"}, timeout=15)
    assert_error(missing, 404, "order_not_found")
    order_ref = shopper.create_order(3000)
    stranger = adapter.new_shopper()
    foreign = stranger.session.get(f"{adapter.base_url}/checkout", params={"order_ref": order_ref}, timeout=15)
    assert_error(foreign, 404, "order_not_found")
    assert_error(pay(adapter, stranger, order_ref, ALICE), 404, "order_not_found")
    assert_error(read(adapter, shopper, "tx_does_not_exist"), 404, "payment_not_found")


def test_full_authorization_and_idempotent_creation(adapter, shopper):
    order_ref = shopper.create_order(4550)
    created = pay(adapter, shopper, order_ref, ALICE, attempt="attempt-1")
    assert created.status_code == 201, created.text
    payment = assert_payment(created.json())
    assert payment["order_ref"] == order_ref and payment["amount_cents"] == 4550
    assert payment["status"] == "awaiting_beneficiary" and payment["final"] is False
    assert payment["next_action"]["type"] == "wait_for_app"
    assert payment["mode"] == "identifier"

    again = pay(adapter, shopper, order_ref, ALICE, attempt="attempt-1")
    assert again.status_code == 200 and again.json()["payment_id"] == payment["payment_id"]

    final = wait_final(adapter, shopper, payment["payment_id"])
    assert final["status"] == "authorized" and final["authorized_cents"] == 4550
    assert final["remaining_cents"] == 0 and final["order_remaining_cents"] == 0
    assert final["next_action"]["type"] == "none"
    assert final["sequence"] > payment["sequence"]
    checkout = shopper.session.get(f"{adapter.base_url}/checkout", params={"order_ref": order_ref}).json()
    assert checkout["eligible"] is False and checkout["order_remaining_cents"] == 0


def test_partial_authorization_leaves_the_remainder(adapter, shopper):
    order_ref = shopper.create_order(12000)
    payment = pay(adapter, shopper, order_ref, BRUNO).json()
    final = wait_final(adapter, shopper, payment["payment_id"])
    assert final["status"] == "partially_authorized" and final["final"] is True
    assert final["authorized_cents"] == 3500 and final["remaining_cents"] == 8500
    assert final["order_total_cents"] == 12000 and final["order_remaining_cents"] == 8500
    checkout = shopper.session.get(f"{adapter.base_url}/checkout", params={"order_ref": order_ref}).json()
    assert checkout["order_remaining_cents"] == 8500 and checkout["current_payment"] is None


def test_decline_then_a_new_attempt(adapter, shopper):
    order_ref = shopper.create_order(3000)
    first = pay(adapter, shopper, order_ref, CHLOE).json()
    final = wait_final(adapter, shopper, first["payment_id"])
    assert final["status"] == "declined" and final["authorized_cents"] == 0
    assert final["order_remaining_cents"] == 3000
    second = pay(adapter, shopper, order_ref, ALICE)
    assert second.status_code == 201 and second.json()["payment_id"] != first["payment_id"]
    assert wait_final(adapter, shopper, second.json()["payment_id"])["status"] == "authorized"


def test_silent_beneficiary_expires(adapter, shopper):
    order_ref = shopper.create_order(2500)
    payment = pay(adapter, shopper, order_ref, DAVID).json()
    final = wait_final(adapter, shopper, payment["payment_id"], timeout_s=40)
    assert final["status"] == "expired" and final["authorized_cents"] == 0


def test_in_progress_conflict_and_shopper_cancel(adapter, shopper):
    order_ref = shopper.create_order(2500)
    payment = pay(adapter, shopper, order_ref, JEANNE).json()
    assert payment["status"] == "awaiting_beneficiary"
    assert_error(pay(adapter, shopper, order_ref, ALICE), 409, "payment_in_progress")
    checkout = shopper.session.get(f"{adapter.base_url}/checkout", params={"order_ref": order_ref}).json()
    assert checkout["current_payment"]["payment_id"] == payment["payment_id"]

    cancelled = shopper.session.post(f"{adapter.base_url}/payments/{payment['payment_id']}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["final"] is True
    # Cancelling again (the retry of a lost answer) answers the cancelled payment, unchanged.
    again = shopper.session.post(f"{adapter.base_url}/payments/{payment['payment_id']}/cancel", json={})
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "cancelled"
    assert again.json()["sequence"] == cancelled.json()["sequence"]


def test_bad_input_gets_typed_errors(adapter, shopper):
    small = shopper.create_order(1000)
    checkout = shopper.session.get(f"{adapter.base_url}/checkout", params={"order_ref": small}).json()
    assert checkout["eligible"] is False and checkout["ineligible_reason"]["code"] == "amount_below_minimum"
    assert_error(pay(adapter, shopper, small, ALICE), 422, "amount_below_minimum")
    order_ref = shopper.create_order(2500)
    assert_error(pay(adapter, shopper, order_ref, "not an identifier"), 422, "invalid_beneficiary")
    assert_error(pay(adapter, shopper, order_ref, "nobody.known@sandbox.cvco.test"), 422, "beneficiary_unknown")
    # The amount is the order's: one sent by the browser changes nothing or is refused.
    sneaky = shopper.session.post(f"{adapter.base_url}/payments", json={
        "order_ref": order_ref, "mode": "identifier", "beneficiary": ALICE, "attempt": uuid.uuid4().hex,
        "amount_cents": 2000}, timeout=30)
    if sneaky.status_code in (200, 201):
        assert sneaky.json()["amount_cents"] == 2500
    else:
        assert sneaky.status_code in (400, 422), sneaky.text


def test_event_stream_sends_the_current_state_and_ends_when_final(adapter, shopper):
    order_ref = shopper.create_order(4000)
    payment = pay(adapter, shopper, order_ref, ALICE).json()
    response = shopper.session.get(f"{adapter.base_url}/payments/{payment['payment_id']}/events",
                                   stream=True, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events, current = [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if "data" in current:
                events.append(current)
            current = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            current[key] = value.lstrip(" ")
    assert events, "no event"
    assert all(event.get("event") == "status" for event in events)
    payments = [json.loads(event["data"]) for event in events]
    assert payments[0]["payment_id"] == payment["payment_id"]
    assert [int(event["id"]) for event in events] == [p["sequence"] for p in payments]
    assert payments[-1]["final"] is True and payments[-1]["status"] == "authorized"


def signature(secret, body, at=None):
    at = int(time.time()) if at is None else at
    return f"t={at},v1=" + hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()


def test_notifications_forged_stale_genuine_replayed(adapter, shopper):
    order_ref = shopper.create_order(2500)
    payment = pay(adapter, shopper, order_ref, JEANNE).json()
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps({
        "id": event_id, "type": "transaction.updated", "created_at": "2026-11-25T10:00:00.000Z",
        "shop_id": adapter.shop["shop_id"], "merchant_order_id": order_ref,
        # ANCV's id for this payment: a notification about an unknown object records nothing (§3).
        "transaction_id": payment["transaction_id"], "state": "VALIDATED", "sequence": 1000,
    })
    url = f"{adapter.base_url}/notifications"
    headers = {"Content-Type": "application/json", "CVCo-Event-Id": event_id}
    secret = adapter.shop["notification_secret"]

    forged = requests.post(url, data=body, headers={**headers, "CVCo-Signature": signature("guess", body)})
    assert_error(forged, 400, "notification_bad_signature")
    stale = requests.post(url, data=body, headers={
        **headers, "CVCo-Signature": signature(secret, body, int(time.time()) - 3600)})
    assert_error(stale, 400, "notification_stale")
    malformed = requests.post(url, data="{", headers={**headers, "CVCo-Signature": signature(secret, "{")})
    assert_error(malformed, 400, "notification_malformed")

    genuine = requests.post(url, data=body, headers={**headers, "CVCo-Signature": signature(secret, body)})
    assert genuine.status_code == 204, genuine.text
    # A hint only: the status read says the beneficiary has not answered.
    assert read(adapter, shopper, payment["payment_id"]).json()["status"] == "awaiting_beneficiary"
    replay = requests.post(url, data=body, headers={**headers, "CVCo-Signature": signature(secret, body)})
    assert replay.status_code == 200 and replay.json() == {"duplicate": True}
