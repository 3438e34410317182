"""A lost or failed answer never loses a payment: the adapter inside a real pretix, the real plugin
and the real sandbox with its fault injection (lost answers, 5xx, latency over the call budget,
a process dying mid-call). In every case the money ANCV holds is what pretix records, once."""

import datetime
import time

import pytest
import requests
from django.test import override_settings
from django.utils.timezone import now
from django_scopes import scopes_disabled

from cvco_sandbox import http
from pretix.base.models import Order, OrderPayment

from pretix_cvco import cvco, exports, services
from pretix_cvco.models import CvcoNotification, CvcoPayment

ALICE = "alice.approve@sandbox.cvco.test"
JEANNE = "jeanne.manual@sandbox.cvco.test"
CREATE = "POST /api/v1/transactions"


def faults(shop, **settings):
    status, body = http("PUT", f"{shop.sandbox.url}/admin/faults", {"shop_id": shop.shop["shop_id"], **settings})
    assert status == 200, body


def clear_faults(shop):
    status, body = http("DELETE", f"{shop.sandbox.url}/admin/faults?shop_id={shop.shop['shop_id']}")
    assert status in (200, 204), body


def pretix_order(shop, order_ref):
    with scopes_disabled():
        return Order.objects.get(event=shop.event, code=order_ref)


def cvco_order_payments(shop, order_ref):
    with scopes_disabled():
        return list(OrderPayment.objects.filter(order__event=shop.event, order__code=order_ref, provider="cvco"))


def ancv_transactions(shop, order_ref):
    """What ANCV holds for the order (the plugin's list_payments: the acquisition server's view)."""
    with scopes_disabled():
        config = services.config_for(shop.event)
        full_code = pretix_order(shop, order_ref).full_code
    return cvco.call(config, exports.LIST_PAYMENTS, order_ref=full_code, now=cvco.now_rfc3339())["items"]


def row(payment_id):
    return CvcoPayment.objects.get(payment_id=payment_id)


def as_protocol(payment_id):
    with scopes_disabled():
        return services.to_protocol(CvcoPayment.objects.select_related("order").get(payment_id=payment_id))


def poll(shop, later=True):
    """One run of the poller pretix's periodic task calls (`later`: after the backoff)."""
    if later:
        CvcoPayment.objects.update(reconcile_after=None)
    with scopes_disabled():
        services.reconcile_open_payments(event=shop.event)


def jeanne_confirms(shop, transaction_id):
    """Jeanne's balance depletes across the session's tests: restored first, so she pays in full."""
    status, body = http("POST", f"{shop.sandbox.url}/app/api/beneficiaries/10000000006/reset-balance")
    assert status == 200, body
    status, body = shop.sandbox.confirm(transaction_id, JEANNE)
    assert status == 200, body


def wait_until(predicate, timeout_s=20, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


def assert_unknown(payment_id, amount_cents):
    cp = row(payment_id)
    assert cp.outcome_unknown and cp.transaction_id is None and not cp.final
    shown = as_protocol(payment_id)
    assert shown["status"] == "unknown" and shown["final"] is False
    assert shown["transaction_id"] is None and shown["error"] is None
    assert shown["next_action"] == {"type": "wait_for_app", "deadline": None}
    assert shown["amount_cents"] == amount_cents


def assert_kept_error(response, codes):
    body = response.json()
    assert body["code"] in codes, response.text
    assert body["retryable"] is True
    assert body["payment_id"].startswith("pay_")
    return body["payment_id"]


@pytest.mark.django_db(transaction=True)
def test_lost_create_answer_keeps_an_unknown_payment_that_the_poller_settles_on_the_one_transaction(shop):
    order = shop.order(3000)
    # ANCV creates and pushes, then its answer is lost; no notification tells the shop either.
    faults(shop, lose_next_responses=1, only=CREATE, drop_notifications=True)
    lost = shop.pay(order["order_ref"], JEANNE, attempt="a1")
    assert lost.status_code == 502, lost.text
    payment_id = assert_kept_error(lost, {"upstream_unavailable"})
    assert_unknown(payment_id, 3000)
    (held,) = ancv_transactions(shop, order["order_ref"])
    assert held["status"] == "awaiting_beneficiary"
    (op,) = cvco_order_payments(shop, order["order_ref"])
    assert op.state == OrderPayment.PAYMENT_STATE_CREATED  # kept open, never failed

    poll(shop)
    settled = row(payment_id)
    assert not settled.outcome_unknown and settled.transaction_id == held["id"]
    assert as_protocol(payment_id)["status"] == "awaiting_beneficiary"
    (op,) = cvco_order_payments(shop, order["order_ref"])
    assert op.state == OrderPayment.PAYMENT_STATE_PENDING

    # The widget retries the same attempt: the same payment.
    again = shop.pay(order["order_ref"], JEANNE, attempt="a1")
    assert again.status_code == 200 and again.json()["payment_id"] == payment_id
    assert again.json()["transaction_id"] == held["id"]
    # A reload (new attempt) is told to follow it, and ANCV still holds one transaction.
    reload = shop.pay(order["order_ref"], JEANNE, attempt="a2")
    assert reload.status_code == 409 and reload.json()["code"] == "payment_in_progress"
    assert reload.json()["retryable"] is True and reload.json()["payment_id"] == payment_id
    assert len(ancv_transactions(shop, order["order_ref"])) == 1

    jeanne_confirms(shop, held["id"])
    final = shop.wait_final(payment_id)
    assert final["status"] == "authorized" and final["authorized_cents"] == 3000
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID
    assert CvcoPayment.objects.filter(order__code=order["order_ref"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_new_attempt_after_a_lost_answer_settles_it_first_and_is_told_to_follow_it(shop):
    order = shop.order(2500)
    faults(shop, lose_next_responses=1, only=CREATE, drop_notifications=True)
    lost = shop.pay(order["order_ref"], JEANNE, attempt="first")
    payment_id = assert_kept_error(lost, {"upstream_unavailable"})
    assert_unknown(payment_id, 2500)

    # The shopper reloads the page before any poller ran.
    reload = shop.pay(order["order_ref"], JEANNE, attempt="reload")
    assert reload.status_code == 409, reload.text
    assert reload.json()["code"] == "payment_in_progress" and reload.json()["payment_id"] == payment_id
    (held,) = ancv_transactions(shop, order["order_ref"])
    assert row(payment_id).transaction_id == held["id"]
    followed = shop.get(payment_id).json()
    assert followed["status"] == "awaiting_beneficiary" and followed["transaction_id"] == held["id"]
    assert not CvcoPayment.objects.filter(attempt="reload").exists()


@pytest.mark.django_db(transaction=True)
def test_notification_for_a_payment_whose_create_answer_was_lost_is_applied(shop):
    order = shop.order(4200)
    # Alice approves in the app on her own: only ANCV's notifications can tell the shop.
    faults(shop, lose_next_responses=1, only=CREATE)
    lost = shop.pay(order["order_ref"], ALICE, attempt="n1")
    payment_id = assert_kept_error(lost, {"upstream_unavailable"})

    # No status read, no poller: the notification for a transaction no row knew settles the
    # unknown payment of its order and is applied.
    wait_until(lambda: pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID,
               what="order paid through the notification")
    (held,) = ancv_transactions(shop, order["order_ref"])
    cp = row(payment_id)
    assert cp.transaction_id == held["id"] and cp.final and cp.payment["status"] == "authorized"
    assert CvcoNotification.objects.exists()
    (op,) = cvco_order_payments(shop, order["order_ref"])
    assert op.state == OrderPayment.PAYMENT_STATE_CONFIRMED and op.info_data["transaction_id"] == held["id"]


@pytest.mark.django_db(transaction=True)
def test_server_error_before_processing_keeps_unknown_and_the_retry_creates_the_one_transaction(shop):
    order = shop.order(2600)
    faults(shop, fail_next_requests=1, only=CREATE, drop_notifications=True)
    failed = shop.pay(order["order_ref"], JEANNE, attempt="s1")
    assert failed.status_code == 502, failed.text
    payment_id = assert_kept_error(failed, {"upstream_unavailable"})
    assert_unknown(payment_id, 2600)
    assert ancv_transactions(shop, order["order_ref"]) == []  # ANCV never got it

    retried = shop.pay(order["order_ref"], JEANNE, attempt="s1")
    assert retried.status_code == 200 and retried.json()["payment_id"] == payment_id
    (held,) = ancv_transactions(shop, order["order_ref"])
    assert retried.json()["transaction_id"] == held["id"]
    assert retried.json()["status"] == "awaiting_beneficiary"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("latency", ["latency_ms", "latency_after_ms"])
def test_answer_later_than_the_call_budget_keeps_unknown_until_reconciled(shop, latency):
    shop.event.settings.set("payment_cvco_request_timeout_ms", 1000)
    order = shop.order(2700)
    faults(shop, only=CREATE, drop_notifications=True, **{latency: 2500})
    late = shop.pay(order["order_ref"], JEANNE, attempt="t1")
    assert late.status_code == 504, late.text
    payment_id = assert_kept_error(late, {"upstream_timeout"})
    assert_unknown(payment_id, 2700)
    time.sleep(2.5)  # past the injected latency: whatever ANCV will do with the call is done
    held = ancv_transactions(shop, order["order_ref"])
    if latency == "latency_after_ms":
        # Processed, then answered late: ANCV holds it although the shop gave up.
        assert len(held) == 1
    else:
        # Delayed before processing: whether the sandbox still processes a call whose caller has
        # gone is its business; at most one either way.
        assert len(held) <= 1
    clear_faults(shop)
    shop.event.settings.set("payment_cvco_request_timeout_ms", 10000)  # a slow machine's replay is no fault
    CvcoPayment.objects.filter(payment_id=payment_id).update(reconcile_after=now() + datetime.timedelta(hours=1))
    poll(shop, later=False)  # within its backoff: left alone
    assert row(payment_id).outcome_unknown
    poll(shop)
    (one,) = ancv_transactions(shop, order["order_ref"])
    assert row(payment_id).transaction_id == one["id"]
    assert held in ([], [one])


@pytest.mark.django_db(transaction=True)
def test_process_killed_after_ancv_answered_is_reconciled_at_the_next_process_first_request(shop, monkeypatch):
    order = shop.order(2800)
    real_call = cvco.call

    class Killed(Exception):
        pass

    def dies_after_create(config, function, **inputs):
        answer = real_call(config, function, **inputs)
        if function == exports.CREATE_PAYMENT:
            raise Killed("the process died before recording ANCV's answer")
        return answer

    monkeypatch.setattr(cvco, "call", dies_after_create)
    with pytest.raises((requests.ConnectionError, AssertionError, Killed)):
        response = shop.pay(order["order_ref"], JEANNE, attempt="k1")
        assert response.status_code < 500, response.text
    monkeypatch.setattr(cvco, "call", real_call)
    (cp,) = CvcoPayment.objects.filter(order__code=order["order_ref"])
    assert cp.outcome_unknown and cp.transaction_id is None  # recorded before the call
    (held,) = ancv_transactions(shop, order["order_ref"])

    # A new process: its first CVCo request starts the reconciliation in the background.
    monkeypatch.setattr(services, "_started", False)
    assert shop.checkout(order["order_ref"]).status_code == 200
    wait_until(lambda: row(cp.payment_id).transaction_id == held["id"], what="start-up reconciliation")
    assert as_protocol(cp.payment_id)["status"] == "awaiting_beneficiary"
    assert len(ancv_transactions(shop, order["order_ref"])) == 1


@pytest.mark.django_db(transaction=True)
def test_refused_create_keeps_nothing_and_the_same_attempt_may_be_corrected(shop):
    order = shop.order(2500)
    refused = shop.pay(order["order_ref"], "nobody@sandbox.cvco.test", attempt="c1")
    assert refused.status_code == 422 and refused.json()["code"] == "beneficiary_unknown"
    assert refused.json()["retryable"] is False and "payment_id" not in refused.json()
    assert not CvcoPayment.objects.exists()
    assert ancv_transactions(shop, order["order_ref"]) == []  # one call: nothing left at ANCV
    corrected = shop.pay(order["order_ref"], JEANNE, attempt="c1")
    assert corrected.status_code == 201, corrected.text
    assert len(ancv_transactions(shop, order["order_ref"])) == 1


@pytest.mark.django_db(transaction=True)
def test_unknown_payment_refused_on_reconciliation_becomes_failed_with_the_reason(shop):
    order = shop.order(2500)
    faults(shop, fail_next_requests=1, only=CREATE, drop_notifications=True)
    payment_id = assert_kept_error(shop.pay(order["order_ref"], JEANNE, attempt="r1"), {"upstream_unavailable"})
    # Meanwhile the beneficiary's account got blocked: the replay is refused, nothing at ANCV.
    stored = row(payment_id)
    CvcoPayment.objects.filter(pk=stored.pk).update(
        create_input=stored.create_input.replace(JEANNE, "eve.blocked@sandbox.cvco.test"))
    poll(shop)
    failed = as_protocol(payment_id)
    assert failed["status"] == "failed" and failed["final"] is True
    assert failed["error"]["code"] == "beneficiary_blocked"
    assert ancv_transactions(shop, order["order_ref"]) == []
    (op,) = cvco_order_payments(shop, order["order_ref"])
    assert op.state == OrderPayment.PAYMENT_STATE_FAILED
    # The order may be paid with a new attempt.
    assert shop.pay(order["order_ref"], JEANNE, attempt="r2").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_check_connection_tells_a_missing_allowed_host_from_a_transport_failure(shop):
    with scopes_disabled():
        config = services.config_for(shop.event)
    ok = services.check_connection(config)
    assert ok["ok"] is True and ok["shop_id"] == shop.shop["shop_id"]

    with override_settings(CVCO_ALLOWED_HOSTS=["ancv.example"]):
        with pytest.raises(cvco.CvcoError) as refused:
            services.check_connection(config)
    assert refused.value.code == "config_invalid" and refused.value.body["field"] == "allowed_hosts"
    assert refused.value.retryable is False and "127.0.0.1" in refused.value.body["message_en"]

    wrong = dict(config, client_secret="not-the-secret")
    with pytest.raises(cvco.CvcoError) as unauthorized:
        services.check_connection(wrong)
    assert unauthorized.value.code == "unauthorized" and unauthorized.value.retryable is False


@pytest.mark.django_db(transaction=True)
def test_create_with_the_api_host_not_allowed_is_a_configuration_error_that_keeps_nothing(shop):
    order = shop.order(2500)
    with override_settings(CVCO_ALLOWED_HOSTS=["ancv.example"]):
        response = shop.pay(order["order_ref"], JEANNE, attempt="h1")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "config_invalid" and response.json()["field"] == "allowed_hosts"
    assert not CvcoPayment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_settings_form_refuses_credentials_that_fail_the_connection_check(shop):
    from django.test import Client
    from pretix.base.models import Team, User

    with scopes_disabled():
        user = User.objects.create_user("manager@example.org", "manager-pass")
        team = Team.objects.create(organizer=shop.event.organizer, all_events=True, all_event_permissions=True,
                                   all_organizer_permissions=True)
        team.members.add(user)
    browser = Client()
    browser.force_login(user)
    url = f"/control/event/{shop.event.organizer.slug}/{shop.event.slug}/settings/payment/cvco"
    page = browser.get(url)
    assert page.status_code == 200
    form = {
        "payment_cvco__enabled": "on",
        "payment_cvco__restrict_to_sales_channels": ["web"],
        "payment_cvco_api_url": shop.sandbox.url,
        "payment_cvco_shop_id": shop.shop["shop_id"],
        "payment_cvco_client_id": shop.shop["client_id"],
        "payment_cvco_client_secret": "not-the-secret",
        "payment_cvco_notification_secret": shop.shop["notification_secret"],
        "payment_cvco_min_amount_cents": "2000",
    }
    refused = browser.post(url, form)
    assert refused.status_code == 200, refused.status_code  # the form again, with the error
    assert "connection check failed" in refused.content.decode()
    shop.event.settings.flush()
    assert shop.event.settings.get("payment_cvco_client_secret") == shop.shop["client_secret"]

    accepted = browser.post(url, dict(form, payment_cvco_client_secret=shop.shop["client_secret"],
                                      payment_cvco_min_amount_cents="2500"))
    assert accepted.status_code == 302, [line for line in accepted.content.decode().splitlines()
                                         if "error" in line or "alert" in line][:20]
    shop.event.settings.flush()
    assert shop.event.settings.get("payment_cvco_min_amount_cents", as_type=int) == 2500


@pytest.mark.django_db(transaction=True)
def test_lost_refund_answer_leaves_the_refund_in_transit_and_the_poller_completes_it_once(shop):
    from decimal import Decimal

    from pretix.base.models import OrderRefund

    order = shop.order(6000)
    payment = shop.pay(order["order_ref"], ALICE, attempt="p1").json()
    assert shop.wait_final(payment["payment_id"])["status"] == "authorized"
    (op,) = cvco_order_payments(shop, order["order_ref"])
    faults(shop, lose_next_responses=1, only="POST /api/v1/transactions/*/refunds")
    with scopes_disabled():
        refund = OrderRefund.objects.create(
            order=op.order, payment=op, provider="cvco", amount=Decimal("20.00"),
            source=OrderRefund.REFUND_SOURCE_ADMIN, state=OrderRefund.REFUND_STATE_CREATED)
        shop.provider().execute_refund(refund)  # no exception: pretix must not call it failed
        refund.refresh_from_db()
    assert refund.state == OrderRefund.REFUND_STATE_TRANSIT
    with scopes_disabled():
        config = services.config_for(shop.event)
    at_ancv = cvco.call(config, exports.GET_PAYMENT, payment_id=payment["transaction_id"], now=cvco.now_rfc3339())
    assert at_ancv["refunded_cents"] == 2000  # the money moved although the answer was lost

    poll(shop)
    with scopes_disabled():
        refund.refresh_from_db()
    assert refund.state == OrderRefund.REFUND_STATE_DONE
    at_ancv = cvco.call(config, exports.GET_PAYMENT, payment_id=payment["transaction_id"], now=cvco.now_rfc3339())
    assert at_ancv["refunded_cents"] == 2000  # replayed, not refunded twice
    assert shop.get(payment["payment_id"]).json()["refunded_cents"] == 2000


@pytest.mark.django_db(transaction=True)
def test_lost_cancel_answer_is_read_back_as_cancelled(shop):
    order = shop.order(2500)
    payment = shop.pay(order["order_ref"], JEANNE, attempt="x1").json()
    faults(shop, lose_next_responses=1, only="POST /api/v1/transactions/*/cancel")
    cancelled = shop.session.post(f"{shop.api}/payments/{payment['payment_id']}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["final"] is True
    (op,) = cvco_order_payments(shop, order["order_ref"])
    assert op.state == OrderPayment.PAYMENT_STATE_CANCELED


@pytest.mark.django_db(transaction=True)
def test_concurrent_attempts_on_one_order_make_one_payment_and_one_transaction(shop):
    from concurrent.futures import ThreadPoolExecutor

    order = shop.order(3100)

    def attempt(index):
        session = requests.Session()
        session.cookies.update(shop.session.cookies)
        # Two callers per attempt token: a double click and a reload racing each other.
        return shop.pay(order["order_ref"], JEANNE, attempt=f"race-{index // 2}", session=session)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(attempt, range(6)))
    created = [a for a in answers if a.status_code in (200, 201)]
    busy = [a for a in answers if a.status_code == 409]
    assert len(created) + len(busy) == 6, [a.text for a in answers]
    assert [a.status_code for a in created].count(201) == 1
    (payment_id,) = {a.json()["payment_id"] for a in created}
    assert all(a.json()["code"] == "payment_in_progress" and a.json()["retryable"] is True
               and a.json()["payment_id"] == payment_id for a in busy)
    assert CvcoPayment.objects.filter(order__code=order["order_ref"]).count() == 1
    (held,) = ancv_transactions(shop, order["order_ref"])
    assert row(payment_id).transaction_id == held["id"]


FAULTS = ["answer_lost", "answer_cut", "server_error", "over_budget", "process_killed"]
FOLLOW_UPS = ["same_attempt", "new_attempt", "no_retry"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("follow_up", FOLLOW_UPS)
@pytest.mark.parametrize("fault", FAULTS)
def test_matrix_create_payment(shop, monkeypatch, fault, follow_up):
    """One cell of {fault on create_payment} × {what the shopper does next}: in the end the money
    ANCV holds is what pretix records, and nothing is charged twice. `pytest -v -k matrix` prints
    the matrix."""
    order = shop.order(3300)
    expected_status = 502
    if fault == "answer_lost":
        faults(shop, lose_next_responses=1, only=CREATE, drop_notifications=True)
    elif fault == "answer_cut":
        faults(shop, drop_next_responses=1, only=CREATE, drop_notifications=True)
    elif fault == "server_error":
        faults(shop, fail_next_requests=1, only=CREATE, drop_notifications=True)
    elif fault == "over_budget":
        shop.event.settings.set("payment_cvco_request_timeout_ms", 1000)
        faults(shop, latency_after_ms=1500, only=CREATE, drop_notifications=True)
        expected_status = 504
    else:
        real_call = cvco.call

        def dies_after_create(config, function, **inputs):
            answer = real_call(config, function, **inputs)
            if function == exports.CREATE_PAYMENT:
                raise RuntimeError("killed before recording ANCV's answer")
            return answer

        faults(shop, drop_notifications=True)
        monkeypatch.setattr(cvco, "call", dies_after_create)

    try:
        first = shop.pay(order["order_ref"], JEANNE, attempt="m1")
        if fault != "process_killed":
            assert first.status_code == expected_status, first.text
            assert first.json()["retryable"] is True
    except requests.ConnectionError:
        assert fault == "process_killed"
    monkeypatch.undo()
    clear_faults(shop)
    faults(shop, drop_notifications=True)
    shop.event.settings.set("payment_cvco_request_timeout_ms", 10000)
    (kept,) = CvcoPayment.objects.filter(order__code=order["order_ref"])
    assert kept.outcome_unknown  # never deleted, never failed
    if fault != "process_killed":
        assert first.json()["payment_id"] == kept.payment_id

    if follow_up == "same_attempt":
        again = shop.pay(order["order_ref"], JEANNE, attempt="m1")
        assert again.status_code == 200 and again.json()["payment_id"] == kept.payment_id, again.text
    elif follow_up == "new_attempt":
        reload = shop.pay(order["order_ref"], JEANNE, attempt="m2")
        assert reload.status_code == 409 and reload.json()["payment_id"] == kept.payment_id, reload.text
    else:
        poll(shop)

    (held,) = ancv_transactions(shop, order["order_ref"])
    assert row(kept.payment_id).transaction_id == held["id"]
    jeanne_confirms(shop, held["id"])
    assert shop.wait_final(kept.payment_id)["authorized_cents"] == 3300
    (held,) = ancv_transactions(shop, order["order_ref"])
    assert held["authorized_cents"] == 3300
    pretix = pretix_order(shop, order["order_ref"])
    assert pretix.status == Order.STATUS_PAID
    confirmed = [op for op in cvco_order_payments(shop, order["order_ref"])
                 if op.state == OrderPayment.PAYMENT_STATE_CONFIRMED]
    assert [services.cents(op.amount) for op in confirmed] == [3300]


@pytest.mark.django_db(transaction=True)
def test_unknown_payment_of_an_order_paid_meanwhile_is_withdrawn_at_ancv(shop):
    order = shop.order(2900)
    faults(shop, fail_next_requests=1, only=CREATE, drop_notifications=True)
    payment_id = assert_kept_error(shop.pay(order["order_ref"], JEANNE, attempt="w1"), {"upstream_unavailable"})
    # The shopper gives up on CVCo and the order is paid by bank transfer.
    with scopes_disabled():
        pretix = pretix_order(shop, order["order_ref"])
        pretix.payments.create(provider="banktransfer", amount=pretix.total,
                               state=OrderPayment.PAYMENT_STATE_CREATED).confirm()
    assert pretix_order(shop, order["order_ref"]).status == Order.STATUS_PAID

    poll(shop)  # the replay pushes the payment ANCV never got, then withdraws it
    (held,) = ancv_transactions(shop, order["order_ref"])
    assert held["status"] == "cancelled" and held["authorized_cents"] == 0
    settled = as_protocol(payment_id)
    assert settled["status"] == "cancelled" and settled["transaction_id"] == held["id"]
    status, _ = shop.sandbox.confirm(held["id"], JEANNE)
    assert status >= 400  # nobody can pay the order twice
