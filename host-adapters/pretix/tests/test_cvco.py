"""The pretix adapter inside a real pretix (SQLite, live HTTP server) against the real sandbox,
with the sandbox's scripted beneficiaries playing the shopper's side in the ANCV app."""

import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal

import pytest
import requests
from django.test import Client
from django_scopes import scopes_disabled

from pretix.base.models import Order, OrderPayment, OrderRefund

from pretix_cvco.models import CvcoNotification, CvcoPayment

ALICE = "alice.approve@sandbox.cvco.test"
BRUNO = "bruno.partial@sandbox.cvco.test"
CHLOE = "chloe.decline@sandbox.cvco.test"
DAVID = "david.silent@sandbox.cvco.test"
JEANNE = "jeanne.manual@sandbox.cvco.test"


def pretix_order(shop, order_ref):
    with scopes_disabled():
        return Order.objects.get(event=shop.event, code=order_ref)


def cvco_order_payments(order):
    with scopes_disabled():
        return list(order.payments.filter(provider="cvco").order_by("pk"))


def wait_until(predicate, timeout_s=20, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


@pytest.mark.django_db(transaction=True)
def test_paid_in_full_through_the_notification(shop):
    order = shop.order(4550)
    created = shop.pay(order["order_ref"], ALICE, attempt="a1")
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "awaiting_beneficiary"
    assert payment["amount_cents"] == 4550  # the pretix order's amount, not the browser's
    assert payment["next_action"]["type"] == "wait_for_app"
    assert payment["beneficiary_masked"] and "alice.approve" not in payment["beneficiary_masked"]

    # No status read from here on: only ANCV's notification can move the pretix order.
    pretix = pretix_order(shop, order["order_ref"])
    wait_until(lambda: pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID,
               what="order paid through the notification")
    assert CvcoNotification.objects.exists()
    (op,) = cvco_order_payments(pretix)
    assert op.state == OrderPayment.PAYMENT_STATE_CONFIRMED
    assert op.amount == Decimal("45.50")
    assert op.info_data["transaction_id"] == payment["transaction_id"]
    assert payment["transaction_id"] and payment["transaction_id"] != payment["payment_id"]

    final = shop.get(payment["payment_id"]).json()
    assert final["status"] == "authorized" and final["final"] is True
    assert final["authorized_cents"] == 4550 and final["order_remaining_cents"] == 0
    assert len(final["authorizations"]) == 1 and len(final["authorizations"][0]["number"]) == 6
    assert final["sequence"] > payment["sequence"]

    # Same attempt again: the same payment, 200, nothing new at ANCV or in pretix.
    again = shop.pay(order["order_ref"], ALICE, attempt="a1")
    assert again.status_code == 200 and again.json()["payment_id"] == payment["payment_id"]
    assert len(cvco_order_payments(pretix)) == 1
    # A paid order offers CVCo no more.
    checkout = shop.checkout(order["order_ref"]).json()
    assert checkout["eligible"] is False and checkout["order_remaining_cents"] == 0


@pytest.mark.django_db(transaction=True)
def test_partial_cvco_then_bank_transfer_for_the_remainder(shop):
    order = shop.order(12000)
    payment = shop.pay(order["order_ref"], BRUNO).json()
    final = shop.wait_final(payment["payment_id"])
    assert final["status"] == "partially_authorized"
    assert final["authorized_cents"] == 3500 and final["remaining_cents"] == 8500
    assert final["order_remaining_cents"] == 8500

    pretix = pretix_order(shop, order["order_ref"])
    (op,) = cvco_order_payments(pretix)
    assert op.state == OrderPayment.PAYMENT_STATE_CONFIRMED and op.amount == Decimal("35.00")
    assert pretix.status == Order.STATUS_PENDING
    with scopes_disabled():
        assert pretix.pending_sum == Decimal("85.00")

    # The shopper picks another method for the rest on pretix's own order pages.
    browser = Client()
    base = f"/{shop.event.organizer.slug}/{shop.event.slug}/order/{pretix.code}/{pretix.secret}"
    response = browser.post(f"{base}/pay/change", {"payment": "banktransfer"})
    assert response.status_code == 302, [l for l in response.content.decode().splitlines() if "payment" in l or "alert" in l][:40]
    with scopes_disabled():
        transfer = pretix.payments.get(provider="banktransfer")
        assert transfer.amount == Decimal("85.00")
        # The back-office records the incoming transfer.
        transfer.confirm()
        pretix.refresh_from_db()
        assert pretix.status == Order.STATUS_PAID
        confirmed = pretix.payments.filter(state=OrderPayment.PAYMENT_STATE_CONFIRMED)
        assert sorted(p.amount for p in confirmed) == [Decimal("35.00"), Decimal("85.00")]


@pytest.mark.django_db(transaction=True)
def test_declined_then_paid_with_a_new_attempt(shop):
    order = shop.order(3000)
    first = shop.pay(order["order_ref"], CHLOE).json()
    final = shop.wait_final(first["payment_id"])
    assert final["status"] == "declined" and final["authorized_cents"] == 0
    assert final["order_remaining_cents"] == 3000
    pretix = pretix_order(shop, order["order_ref"])
    assert pretix.status == Order.STATUS_PENDING
    (op,) = cvco_order_payments(pretix)
    assert op.state == OrderPayment.PAYMENT_STATE_FAILED

    second = shop.pay(order["order_ref"], ALICE)
    assert second.status_code == 201
    assert shop.wait_final(second.json()["payment_id"])["status"] == "authorized"
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID


@pytest.mark.django_db(transaction=True)
def test_silent_beneficiary_expires(make_shop):
    shop = make_shop(authorization_timeout_s=2)
    order = shop.order(2500)
    payment = shop.pay(order["order_ref"], DAVID).json()
    assert payment["status"] == "awaiting_beneficiary"
    # In progress: another attempt must wait.
    busy = shop.pay(order["order_ref"], ALICE)
    assert busy.status_code == 409 and busy.json()["code"] == "payment_in_progress"
    final = shop.wait_final(payment["payment_id"], timeout_s=30)
    assert final["status"] == "expired"
    (op,) = cvco_order_payments(pretix_order(shop, order["order_ref"]))
    assert op.state == OrderPayment.PAYMENT_STATE_FAILED
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PENDING


def signed(secret, body, at=None):
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


@pytest.mark.django_db(transaction=True)
def test_forged_stale_and_replayed_notifications(shop):
    order = shop.order(2500)
    payment = shop.pay(order["order_ref"], JEANNE).json()  # waits for a person: nothing moves
    url = f"{shop.api}/notifications"
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps({
        "id": event_id, "type": "transaction.updated", "created_at": "2026-11-25T10:00:00Z",
        "shop_id": shop.shop["shop_id"], "merchant_order_id": payment["order_ref"],
        "transaction_id": payment["transaction_id"], "state": "VALIDATED", "sequence": 99,
    })
    headers = {"Content-Type": "application/json", "CVCo-Event-Id": event_id}
    before = CvcoPayment.objects.get(payment_id=payment["payment_id"])

    forged = requests.post(url, data=body, headers={**headers, "CVCo-Signature": signed("whsec_guess", body)})
    assert forged.status_code == 400 and forged.json()["code"] == "notification_bad_signature"
    unsigned = requests.post(url, data=body, headers=headers)
    assert unsigned.status_code == 400 and unsigned.json()["code"] == "notification_bad_signature"
    stale = requests.post(url, data=body, headers={
        **headers, "CVCo-Signature": signed(shop.shop["notification_secret"], body, int(time.time()) - 3600)})
    assert stale.status_code == 400 and stale.json()["code"] == "notification_stale"
    not_utf8 = requests.post(url, data=b"\xff" + body.encode(), headers=headers)
    assert not_utf8.status_code == 400 and not_utf8.json()["code"] == "notification_malformed"
    assert not CvcoNotification.objects.filter(event_id=event_id).exists()

    # Genuinely signed: accepted, but the claimed VALIDATED is only a hint; the status read wins.
    genuine = requests.post(url, data=body, headers={
        **headers, "CVCo-Signature": signed(shop.shop["notification_secret"], body)})
    assert genuine.status_code == 204, genuine.text
    after = CvcoPayment.objects.get(payment_id=payment["payment_id"])
    assert after.payment["status"] == "awaiting_beneficiary"
    assert after.notification_sequence == 99
    op = cvco_order_payments(pretix_order(shop, order["order_ref"]))[0]
    assert op.state == OrderPayment.PAYMENT_STATE_PENDING
    assert after.pk == before.pk

    replay = requests.post(url, data=body, headers={
        **headers, "CVCo-Signature": signed(shop.shop["notification_secret"], body)})
    assert replay.status_code == 200 and replay.json() == {"duplicate": True}
    assert CvcoNotification.objects.filter(event_id=event_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_refund_from_the_back_office(shop):
    order = shop.order(6000)
    payment = shop.pay(order["order_ref"], ALICE).json()
    assert shop.wait_final(payment["payment_id"])["status"] == "authorized"
    pretix = pretix_order(shop, order["order_ref"])
    (op,) = cvco_order_payments(pretix)
    provider = shop.provider()
    assert provider.payment_refund_supported(op) and provider.payment_partial_refund_supported(op)

    with scopes_disabled():
        partial = pretix.refunds.create(
            payment=op, provider="cvco", amount=Decimal("10.00"),
            source=OrderRefund.REFUND_SOURCE_ADMIN, state=OrderRefund.REFUND_STATE_CREATED)
        provider.execute_refund(partial)
        partial.refresh_from_db()
        assert partial.state == OrderRefund.REFUND_STATE_DONE
    after_partial = shop.get(payment["payment_id"]).json()
    assert after_partial["refunded_cents"] == 1000 and after_partial["status"] == "authorized"

    with scopes_disabled():
        rest = pretix.refunds.create(
            payment=op, provider="cvco", amount=Decimal("50.00"),
            source=OrderRefund.REFUND_SOURCE_ADMIN, state=OrderRefund.REFUND_STATE_CREATED)
        provider.execute_refund(rest)
        too_much = pretix.refunds.create(
            payment=op, provider="cvco", amount=Decimal("1.00"),
            source=OrderRefund.REFUND_SOURCE_ADMIN, state=OrderRefund.REFUND_STATE_CREATED)
        from pretix.base.payment import PaymentException

        with pytest.raises(PaymentException):
            provider.execute_refund(too_much)
    refunded = shop.get(payment["payment_id"]).json()
    assert refunded["refunded_cents"] == 6000 and refunded["status"] == "refunded"


@pytest.mark.django_db(transaction=True)
def test_cancel_from_the_back_office(shop):
    order = shop.order(2500)
    payment = shop.pay(order["order_ref"], JEANNE).json()
    op = cvco_order_payments(pretix_order(shop, order["order_ref"]))[0]
    assert op.state == OrderPayment.PAYMENT_STATE_PENDING
    with scopes_disabled():
        shop.provider().cancel_payment(op)
        op.refresh_from_db()
    assert op.state == OrderPayment.PAYMENT_STATE_CANCELED
    seen = shop.get(payment["payment_id"]).json()
    assert seen["status"] == "cancelled" and seen["final"] is True
    # Too late for the beneficiary now.
    status, _ = shop.sandbox.confirm(payment["transaction_id"], JEANNE)
    assert status >= 400
    assert shop.get(payment["payment_id"]).json()["status"] == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_shopper_cancel_and_foreign_sessions(shop):
    order = shop.order(2500)
    payment = shop.pay(order["order_ref"], JEANNE).json()
    stranger = requests.Session()
    assert shop.checkout(order["order_ref"], session=stranger).status_code == 404
    assert shop.get(payment["payment_id"], session=stranger).json()["code"] == "payment_not_found"
    foreign = shop.pay(order["order_ref"], ALICE, session=stranger)
    assert foreign.status_code == 404 and foreign.json()["code"] == "order_not_found"

    cancelled = shop.session.post(f"{shop.api}/payments/{payment['payment_id']}/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = shop.session.post(f"{shop.api}/payments/{payment['payment_id']}/cancel", json={})
    # The retry of a lost answer: the cancelled payment, unchanged.
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert again.json()["sequence"] == cancelled.json()["sequence"]
    op = cvco_order_payments(pretix_order(shop, order["order_ref"]))[0]
    assert op.state == OrderPayment.PAYMENT_STATE_CANCELED


@pytest.mark.django_db(transaction=True)
def test_bad_input_is_refused_with_typed_errors(shop):
    small = shop.order(1000)
    checkout = shop.checkout(small["order_ref"]).json()
    assert checkout["eligible"] is False and checkout["ineligible_reason"]["code"] == "amount_below_minimum"
    below = shop.pay(small["order_ref"], ALICE)
    assert below.status_code == 422 and below.json()["code"] == "amount_below_minimum"

    order = shop.order(2500)
    invalid = shop.pay(order["order_ref"], "not an identifier")
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_beneficiary"
    unknown = shop.pay(order["order_ref"], "nobody@sandbox.cvco.test")
    assert unknown.status_code == 422 and unknown.json()["code"] == "beneficiary_unknown"
    form = shop.session.post(f"{shop.api}/payments", data={"order_ref": order["order_ref"]})
    assert form.status_code == 415 and form.json()["code"] == "invalid_request"
    assert not cvco_order_payments(pretix_order(shop, order["order_ref"])) or all(
        op.state == OrderPayment.PAYMENT_STATE_CREATED for op in cvco_order_payments(pretix_order(shop, order["order_ref"])))


@pytest.mark.django_db(transaction=True)
def test_event_stream_ends_with_the_final_payment(shop):
    order = shop.order(4000)
    payment = shop.pay(order["order_ref"], ALICE).json()
    response = shop.session.get(f"{shop.api}/payments/{payment['payment_id']}/events", stream=True, timeout=30)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: "):]))
    assert events[0]["payment_id"] == payment["payment_id"]
    assert events[-1]["status"] == "authorized" and events[-1]["final"] is True
    sequences = [event["sequence"] for event in events]
    assert sequences == sorted(set(sequences))


@pytest.mark.django_db(transaction=True)
def test_payment_page_embeds_the_widget(shop):
    order = shop.order(2500)
    page = requests.get(f"{shop.event_url}/cvco/pay/{order['order_ref']}/{order['secret']}/")
    assert page.status_code == 200
    assert f'order-ref="{order["order_ref"]}"' in page.text
    assert f'endpoint="/{shop.event.organizer.slug}/{shop.event.slug}/cvco/v1"' in page.text
    assert "wasm-unsafe-eval" in page.headers.get("Content-Security-Policy", "")
    assert shop.shop["client_secret"] not in page.text
    wrong = requests.get(f"{shop.event_url}/cvco/pay/{order['order_ref']}/{'0' * 32}/")
    assert wrong.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_choosing_cvco_on_pretix_order_pages_leads_to_the_widget(shop):
    order = shop.order(5000)
    pretix = pretix_order(shop, order["order_ref"])
    browser = Client()
    base = f"/{shop.event.organizer.slug}/{shop.event.slug}/order/{pretix.code}/{pretix.secret}"
    chosen = browser.post(f"{base}/pay/change", {"payment": "cvco"})
    assert chosen.status_code == 302, chosen.status_code
    confirmed = browser.post(chosen["Location"], {})
    assert confirmed.status_code == 302
    pay_page = confirmed["Location"]
    assert pay_page.endswith(f"/cvco/pay/{pretix.code}/{pretix.secret}/"), pay_page
    assert browser.get(pay_page).status_code == 200
    (created_by_pretix,) = cvco_order_payments(pretix)
    assert created_by_pretix.state == OrderPayment.PAYMENT_STATE_CREATED
    # pretix's order page shows the pending payment with the live widget.
    order_page = browser.get(f"{base}/")
    assert order_page.status_code == 200
    assert f'order-ref="{pretix.code}"' in order_page.content.decode()
    assert "wasm-unsafe-eval" in order_page["Content-Security-Policy"]

    # The widget, in the same browser session, on the payment pretix created.
    api = f"/{shop.event.organizer.slug}/{shop.event.slug}/cvco/v1"
    created = browser.post(f"{api}/payments", data=json.dumps({
        "order_ref": pretix.code, "mode": "identifier", "beneficiary": "10000000001", "attempt": "w1"}),
        content_type="application/json")
    assert created.status_code == 201, created.content
    payment_id = created.json()["payment_id"]
    assert created.json()["amount_cents"] == 5000
    wait_until(lambda: browser.get(f"{api}/payments/{payment_id}").json()["final"], what="final")
    (op,) = cvco_order_payments(pretix)
    assert op.pk == created_by_pretix.pk and op.state == OrderPayment.PAYMENT_STATE_CONFIRMED
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID


@pytest.mark.django_db(transaction=True)
def test_back_office_settings_page_keeps_secrets(shop):
    from pretix.base.models import Team, User

    with scopes_disabled():
        user = User.objects.create_user("manager@example.org", "manager-pass")
        team = Team.objects.create(organizer=shop.event.organizer, all_events=True, all_event_permissions=True,
                                   all_organizer_permissions=True)
        team.members.add(user)
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}/settings/payment/cvco")
    assert page.status_code == 200, page.status_code
    html = page.content.decode()
    for label in ("API URL", "Shop id", "Client id", "Client secret", "Notification secret", "Minimum amount",
                  "adjustment allowed"):
        assert label in html, label
    assert shop.shop["shop_id"] in html
    assert shop.shop["client_secret"] not in html and shop.shop["notification_secret"] not in html
    assert "/cvco/v1/notifications" in html


@pytest.mark.django_db(transaction=True)
def test_unreachable_ancv_keeps_an_unknown_payment_that_the_same_attempt_settles(shop):
    from cvco_sandbox import free_port

    order = shop.order(2500)
    shop.event.settings.set("payment_cvco_api_url", f"http://127.0.0.1:{free_port()}")
    down = shop.pay(order["order_ref"], ALICE, attempt="retry-me")
    assert down.status_code in (502, 504), down.text
    assert down.json()["code"] in ("upstream_unavailable", "upstream_timeout")
    assert down.json()["retryable"] is True
    # Kept (ANCV cannot be known not to have it), under the payment id the error names.
    kept = CvcoPayment.objects.get()
    assert kept.outcome_unknown and down.json()["payment_id"] == kept.payment_id
    unknown = shop.get(kept.payment_id).json()
    assert unknown["status"] == "unknown" and unknown["final"] is False and unknown["transaction_id"] is None

    # Back up: the same attempt settles that payment, once.
    shop.event.settings.set("payment_cvco_api_url", shop.sandbox.url)
    up = shop.pay(order["order_ref"], ALICE, attempt="retry-me")
    assert up.status_code == 200, up.text
    assert up.json()["payment_id"] == kept.payment_id and up.json()["transaction_id"]
    assert shop.wait_final(up.json()["payment_id"])["status"] == "authorized"
    assert CvcoPayment.objects.count() == 1


def assert_contract_error(response, status, code, field=None):
    """The cvco error body as cvco-host sends it: the catalogue's status, compact JSON in the
    contract's key order, the catalogue's wording first."""
    from pretix_cvco import cvco

    entry = cvco.error_catalogue()[code]
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert response.content == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    order = ["code", "message_fr", "message_en", "retryable", "field", "payment_id"]
    assert list(body) == [key for key in order if key in body]
    assert body["code"] == code and body.get("field") == field and body["retryable"] is entry["retryable"]
    assert body["message_fr"].startswith(entry["message_fr"]) and body["message_en"].startswith(entry["message_en"])
    return body


@pytest.mark.django_db(transaction=True)
def test_every_error_is_the_catalogue_body_in_compact_json(shop):
    order = shop.order(2500)
    assert_contract_error(shop.checkout("NOPE"), 404, "order_not_found", "order_ref")
    assert_contract_error(shop.get("pay_nope"), 404, "payment_not_found")
    wrong_method = shop.session.put(f"{shop.api}/payments", json={})
    assert_contract_error(wrong_method, 405, "invalid_request")
    assert wrong_method.headers["Allow"] == "POST"
    assert_contract_error(shop.session.post(f"{shop.api}/payments", data="order_ref=x",
                                            headers={"Content-Type": "text/plain"}), 415, "invalid_request")
    too_large = shop.session.post(f"{shop.api}/payments", data="{" + " " * 70_000 + "}",
                                  headers={"Content-Type": "application/json"})
    assert_contract_error(too_large, 413, "invalid_request")
    assert_contract_error(shop.session.post(f"{shop.api}/payments", data="{", headers={
        "Content-Type": "application/json"}), 422, "invalid_request", "body")
    # Not UTF-8: read as U+FFFD like cvco-host does, so the parser gives its own answer.
    assert_contract_error(shop.session.post(f"{shop.api}/payments", data=b"\xff\xfeX", headers={
        "Content-Type": "application/json"}), 422, "invalid_request", "body")
    assert_contract_error(shop.session.get(f"{shop.api}/nowhere"), 404, "not_found")
    assert_contract_error(shop.pay(order["order_ref"], ALICE, attempt="has space"), 422, "invalid_request", "attempt")
    assert_contract_error(shop.pay(order["order_ref"], "not an identifier"), 422, "invalid_beneficiary", "beneficiary")
    busy = shop.pay(order["order_ref"], JEANNE).json()
    response = shop.pay(order["order_ref"], ALICE)
    conflict = assert_contract_error(response, 409, "payment_in_progress")
    assert conflict["retryable"] is True and conflict["payment_id"] == busy["payment_id"]
    assert "déjà".encode() in response.content  # UTF-8 as is, not \u-escaped


@pytest.mark.django_db(transaction=True)
def test_merchant_settings_reach_the_checkout_through_the_plugin_config(shop):
    shop.event.settings.set("payment_cvco_min_amount_cents", 3000)
    shop.event.settings.set("payment_cvco_adjustable", False)
    shop.event.settings.set("payment_cvco_authorization_timeout_s", 90)
    small = shop.order(2500)
    checkout = shop.checkout(small["order_ref"]).json()
    assert checkout["min_amount_cents"] == 3000 and checkout["adjustable"] is False
    assert checkout["authorization_timeout_s"] == 90
    assert checkout["eligible"] is False and checkout["ineligible_reason"]["code"] == "amount_below_minimum"
    assert_contract_error(shop.pay(small["order_ref"], ALICE), 422, "amount_below_minimum", "amount_cents")
    assert not CvcoPayment.objects.exists()  # refused before anything is recorded or sent
    large = shop.order(3000)
    assert shop.checkout(large["order_ref"]).json()["eligible"] is True


@pytest.mark.django_db(transaction=True)
def test_notification_for_an_object_that_is_not_ours_is_acknowledged_and_changes_nothing(shop):
    order = shop.order(2500)
    pretix = pretix_order(shop, order["order_ref"])
    event_id = f"evt_{uuid.uuid4().hex}"
    # Our order's reference, a transaction we never made.
    body = json.dumps({
        "id": event_id, "type": "transaction.updated", "created_at": "2026-11-25T10:00:00Z",
        "shop_id": shop.shop["shop_id"], "merchant_order_id": pretix.full_code,
        "transaction_id": "tx_not_ours", "state": "VALIDATED", "sequence": 7,
    })
    headers = {"Content-Type": "application/json", "CVCo-Event-Id": event_id,
               "CVCo-Signature": signed(shop.shop["notification_secret"], body)}
    url = f"{shop.api}/notifications"
    first = requests.post(url, data=body, headers=headers)
    assert first.status_code == 204 and first.content == b"", first.text
    assert not CvcoPayment.objects.exists() and not cvco_order_payments(pretix)
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PENDING
    # Nothing recorded, not even its id: never a duplicate.
    assert not CvcoNotification.objects.filter(event_id=event_id).exists()
    again = requests.post(url, data=body, headers=headers)
    assert again.status_code == 204 and again.content == b""


@pytest.mark.django_db(transaction=True)
def test_a_payment_ancv_failed_without_a_recorded_refusal_shows_the_technical_failure(shop):
    # The sandbox never aborts on a technical fault: ANCV's last answer is edited into one.
    order = shop.order(3000)
    payment = shop.pay(order["order_ref"], CHLOE).json()
    assert shop.wait_final(payment["payment_id"])["status"] == "declined"
    row = CvcoPayment.objects.get(payment_id=payment["payment_id"])
    ancv = {**row.payment, "status": "failed", "abort_reason": "technical"}
    CvcoPayment.objects.filter(pk=row.pk).update(data=json.dumps(ancv))
    shown = shop.get(payment["payment_id"]).json()
    assert shown["status"] == "failed" and shown["final"] is True
    assert shown["error"]["code"] == "upstream_protocol" and shown["error"]["retryable"] is False
    assert "technical error" in shown["error"]["message_en"]
