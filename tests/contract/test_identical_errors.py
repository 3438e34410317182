"""Issue 11 §3: the same bad input gets the same answer from every adapter, byte for byte.

Every adapter of --drivers (cvco_host,pretix,vendure) runs side by side on one sandbox; each case
sends the same request to each of them (the shopper's session for §1, the manager's for §2, none
for §3 notifications) and requires the same HTTP status, an `application/json` cvco error body
(204 bodies excepted: empty) and byte-identical bodies. Adapters build their errors from the
plugin's catalogue and parse bodies with its parse_request, so any difference is a copy that
drifted.

    python -m pytest -q --drivers cvco_host,pretix,vendure test_identical_errors.py
"""

import hashlib
import hmac
import json
import time
import uuid

import pytest
import requests

from back_office import require_staff

pytestmark = pytest.mark.cross_adapter

ALICE = "alice.approve@sandbox.cvco.test"
MISSING_ORDER = "NOPE-404"
MISSING_PAYMENT = "pay_does_not_exist"
JSON = {"Content-Type": "application/json"}


def signature(secret, body, at=None):
    at = int(time.time()) if at is None else at
    return f"t={at},v1=" + hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()


class Target:
    """One adapter for one case: a shopper of its own and the orders the case asks for, so no case
    sees another's payments (Vendure keeps one open order per session: one shopper per case)."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.shopper = adapter.new_shopper()
        self._orders = {}

    def order(self, amount_cents):
        if amount_cents not in self._orders:
            self._orders[amount_cents] = self.shopper.create_order(amount_cents)
        return self._orders[amount_cents]

    def send(self, who, method, path, body=None, headers=None, params=None):
        if who == "shopper":
            session = self.shopper.session
        elif who == "staff":
            session = require_staff(self.adapter)
        else:
            session = requests.Session()
        data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        return session.request(method, f"{self.adapter.base_url}{path}", data=data, params=params,
                               headers=headers if headers is not None else (JSON if body is not None else {}),
                               timeout=30)


def create(target, **fields):
    # The order only when the case brings none: a second order is a new session on Vendure.
    order_ref = fields.pop("order_ref") if "order_ref" in fields else target.order(4500)
    return {"order_ref": order_ref, "mode": "identifier", "beneficiary": ALICE, "attempt": uuid.uuid4().hex,
            **fields}


def without(body, key):
    return {k: v for k, v in body.items() if k != key}


def notification(target, order_ref="CMD-IDENTICAL"):
    return json.dumps({
        "id": "evt_identical_errors", "type": "transaction.updated", "created_at": "2026-11-25T10:00:00.000Z",
        "shop_id": target.adapter.shop["shop_id"], "merchant_order_id": order_ref,
        "transaction_id": "tx_unknown_to_everyone", "state": "VALIDATED", "sequence": 7})


def notify(target, body, sign=None):
    headers = {**JSON, "CVCo-Event-Id": "evt_identical_errors"}
    if sign is not None:
        headers["CVCo-Signature"] = sign
    return target.send("none", "POST", "/notifications", body, headers)


def secret(target):
    return target.adapter.shop["notification_secret"]


# name -> a function of one Target sending the same bad input to it. Bodies that hold a value of
# the adapter (its own order, its shop) differ only in that value, which no error echoes.
CASES = {
    # §1 POST /payments: bodies the parser refuses.
    "payment_malformed_json": lambda t: t.send("shopper", "POST", "/payments", '{"order_ref": '),
    "payment_body_not_an_object": lambda t: t.send("shopper", "POST", "/payments", "[]"),
    "payment_empty_body": lambda t: t.send("shopper", "POST", "/payments", ""),
    "payment_body_not_utf8": lambda t: t.send("shopper", "POST", "/payments", b"\xff\xfeX\x19"),
    "payment_multipart": lambda t: t.send("shopper", "POST", "/payments", json.dumps(create(t)),
                                          {"Content-Type": "multipart/form-data; boundary=x"}),
    "payment_text_plain": lambda t: t.send("shopper", "POST", "/payments", json.dumps(create(t)),
                                           {"Content-Type": "text/plain"}),
    "payment_form_encoded": lambda t: t.send("shopper", "POST", "/payments", "order_ref=x&attempt=y",
                                             {"Content-Type": "application/x-www-form-urlencoded"}),
    "payment_body_over_the_limit": lambda t: t.send("shopper", "POST", "/payments",
                                                    json.dumps(create(t, beneficiary="a" * 70_000))),
    "payment_missing_attempt": lambda t: t.send("shopper", "POST", "/payments", without(create(t), "attempt")),
    "payment_empty_attempt": lambda t: t.send("shopper", "POST", "/payments", create(t, attempt="")),
    "payment_overlong_attempt": lambda t: t.send("shopper", "POST", "/payments", create(t, attempt="a" * 65)),
    "payment_attempt_not_printable": lambda t: t.send("shopper", "POST", "/payments", create(t, attempt="a\tb")),
    "payment_attempt_not_a_string": lambda t: t.send("shopper", "POST", "/payments", create(t, attempt=42)),
    "payment_missing_order_ref": lambda t: t.send("shopper", "POST", "/payments", without(create(t), "order_ref")),
    "payment_order_ref_not_a_string": lambda t: t.send("shopper", "POST", "/payments", create(t, order_ref=42)),
    "payment_order_ref_too_long": lambda t: t.send("shopper", "POST", "/payments", create(t, order_ref="R" * 65)),
    "payment_unknown_mode": lambda t: t.send("shopper", "POST", "/payments", create(t, mode="cash")),
    "payment_identifier_without_beneficiary": lambda t: t.send("shopper", "POST", "/payments",
                                                               without(create(t), "beneficiary")),
    "payment_qr_with_beneficiary": lambda t: t.send("shopper", "POST", "/payments", create(t, mode="qr")),
    "payment_invalid_beneficiary": lambda t: t.send("shopper", "POST", "/payments",
                                                    create(t, beneficiary="not an identifier")),
    "payment_invalid_cv_connect_id": lambda t: t.send("shopper", "POST", "/payments",
                                                      create(t, beneficiary="1234567890")),
    # §1: the order or payment is not there, or cannot take this payment.
    "payment_unknown_order": lambda t: t.send("shopper", "POST", "/payments", create(t, order_ref=MISSING_ORDER)),
    "payment_below_minimum": lambda t: t.send("shopper", "POST", "/payments", create(t, order_ref=t.order(1000))),
    "payment_beneficiary_unknown": lambda t: t.send("shopper", "POST", "/payments",
                                                    create(t, beneficiary="nobody.known@sandbox.cvco.test")),
    "checkout_unknown_order": lambda t: t.send("shopper", "GET", "/checkout", params={"order_ref": MISSING_ORDER}),
    "checkout_without_order_ref": lambda t: t.send("shopper", "GET", "/checkout"),
    "payment_read_unknown": lambda t: t.send("shopper", "GET", f"/payments/{MISSING_PAYMENT}"),
    "payment_events_unknown": lambda t: t.send("shopper", "GET", f"/payments/{MISSING_PAYMENT}/events"),
    "payment_cancel_unknown": lambda t: t.send("shopper", "POST", f"/payments/{MISSING_PAYMENT}/cancel", {}),
    # §3 notifications.
    "notification_without_signature": lambda t: notify(t, notification(t)),
    "notification_bad_signature": lambda t: notify(t, notification(t), signature("guess", notification(t))),
    "notification_unreadable_signature": lambda t: notify(t, notification(t), "v1=deadbeef"),
    "notification_stale": lambda t: notify(t, notification(t),
                                           signature(secret(t), notification(t), int(time.time()) - 3600)),
    "notification_malformed": lambda t: notify(t, "{", signature(secret(t), "{")),
    "notification_unknown_object": lambda t: notify(t, notification(t), signature(secret(t), notification(t))),
    # §2 (the manager's session).
    "refund_unknown_payment": lambda t: t.send("staff", "POST", f"/payments/{MISSING_PAYMENT}/refund",
                                               {"attempt": "a1"}),
    "refund_missing_attempt": lambda t: t.send("staff", "POST", f"/payments/{MISSING_PAYMENT}/refund",
                                               {"amount_cents": 100}),
    "refund_negative_amount": lambda t: t.send("staff", "POST", f"/payments/{MISSING_PAYMENT}/refund",
                                               {"amount_cents": -5, "attempt": "a1"}),
    "refund_malformed_json": lambda t: t.send("staff", "POST", f"/payments/{MISSING_PAYMENT}/refund", "{"),
    "payment_request_unknown_delivery": lambda t: t.send("staff", "POST", "/payment-requests", {
        "order_ref": t.order(4500), "amount_cents": 4500, "delivery": "pigeon", "capture": "immediate",
        "attempt": "r1"}),
    "payment_request_missing_delivery": lambda t: t.send("staff", "POST", "/payment-requests", {
        "order_ref": t.order(4500), "amount_cents": 4500, "capture": "immediate", "attempt": "r1"}),
    "payment_request_zero_amount": lambda t: t.send("staff", "POST", "/payment-requests", {
        "order_ref": t.order(4500), "amount_cents": 0, "delivery": "qr", "capture": "immediate", "attempt": "r1"}),
    "payment_request_email_without_address": lambda t: t.send("staff", "POST", "/payment-requests", {
        "order_ref": t.order(4500), "amount_cents": 4500, "delivery": "email", "capture": "immediate",
        "attempt": "r1"}),
    "payment_request_read_unknown": lambda t: t.send("staff", "GET", "/payment-requests/req_does_not_exist"),
    "payment_request_cancel_unknown": lambda t: t.send("staff", "POST", "/payment-requests/req_does_not_exist/cancel",
                                                       {}),
    "transactions_unreadable_amount": lambda t: t.send("staff", "GET", "/transactions",
                                                       params={"min_amount_cents": "lots"}),
    "transactions_unreadable_date": lambda t: t.send("staff", "GET", "/transactions", params={"from": "yesterday"}),
}


@pytest.fixture
def targets(adapters):
    return {name: Target(adapter) for name, adapter in adapters.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_same_bad_input_gets_the_same_bytes_everywhere(case, targets):
    answers = {name: CASES[case](target) for name, target in targets.items()}
    shown = "\n".join(f"  {name}: {r.status_code} {r.headers.get('Content-Type')} {r.content[:400]!r}"
                      for name, r in answers.items())
    statuses = {r.status_code for r in answers.values()}
    assert len(statuses) == 1, f"{case}: statuses differ\n{shown}"
    status = statuses.pop()
    if status == 204:
        assert all(r.content == b"" for r in answers.values()), f"{case}: a 204 with a body\n{shown}"
        return
    assert status >= 400, f"{case}: a bad input was accepted ({status})\n{shown}"
    for name, response in answers.items():
        assert response.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", \
            f"{case}: {name} does not answer application/json\n{shown}"
        body = response.json()
        assert list(body)[:4] == ["code", "message_fr", "message_en", "retryable"], \
            f"{case}: {name}'s body is not the cvco error body in its key order\n{shown}"
    bodies = {r.content for r in answers.values()}
    assert len(bodies) == 1, f"{case}: bodies differ\n{shown}"
