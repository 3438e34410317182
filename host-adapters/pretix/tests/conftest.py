import datetime
import sys
import uuid
from pathlib import Path

import pytest
import requests
from django.utils.timezone import now
from django_scopes import scopes_disabled

from pretix.base.models import Event, Organizer

# The sandbox's Python helper ships with the sandbox (sandbox/python in this repository).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "sandbox" / "python"))
from cvco_sandbox import Sandbox  # noqa: E402


@pytest.fixture(scope="session")
def sandbox():
    instance = Sandbox(approve_delay_ms=300)
    yield instance
    instance.stop()


class Shop:
    """One pretix event selling through CVCo, and the shopper's browser session on it."""

    def __init__(self, live_server, event, shop, sandbox):
        self.event = event
        self.shop = shop
        self.sandbox = sandbox
        self.site = live_server.url
        self.event_url = f"{live_server.url}/{event.organizer.slug}/{event.slug}"
        self.api = f"{self.event_url}/cvco/v1"
        self.session = requests.Session()

    def provider(self):
        return self.event.get_payment_providers()["cvco"]

    def order(self, amount_cents, session=None):
        response = (session or self.session).post(
            f"{self.event_url}/cvco/test-orders", json={"amount_cents": amount_cents}, timeout=15
        )
        assert response.status_code == 201, response.text
        return response.json()

    def checkout(self, order_ref, session=None):
        return (session or self.session).get(f"{self.api}/checkout", params={"order_ref": order_ref}, timeout=15)

    def pay(self, order_ref, beneficiary, attempt=None, session=None):
        body = {"order_ref": order_ref, "mode": "identifier", "beneficiary": beneficiary,
                "attempt": attempt or uuid.uuid4().hex}
        return (session or self.session).post(f"{self.api}/payments", json=body, timeout=30)

    def get(self, payment_id, session=None):
        return (session or self.session).get(f"{self.api}/payments/{payment_id}", timeout=30)

    def wait_final(self, payment_id, timeout_s=30):
        """Polls like the widget's fallback until the payment is final."""
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout_s)
        while datetime.datetime.now() < deadline:
            response = self.get(payment_id)
            assert response.status_code == 200, response.text
            if response.json()["final"]:
                return response.json()
            import time

            time.sleep(0.2)
        raise AssertionError(f"payment {payment_id} not final after {timeout_s} s: {response.json()}")


@pytest.fixture
def make_shop(transactional_db, live_server, sandbox):
    """A fresh organizer/event with CVCo enabled on a fresh sandbox shop (`**ancv_settings`: the
    shop's settings at ANCV, e.g. authorization_timeout_s)."""

    def make(**ancv_settings):
        shop = sandbox.new_shop(**ancv_settings)
        with scopes_disabled():
            organizer = Organizer.objects.create(
                name="Vacances Loisirs", slug=f"vl{uuid.uuid4().hex[:6]}", plugins="pretix.plugins.banktransfer")
            event = Event.objects.create(
                organizer=organizer, name="Festival d'été", slug="festival", currency="EUR",
                date_from=now() + datetime.timedelta(days=30), live=True,
                plugins="pretix_cvco,pretix.plugins.banktransfer",
            )
            event.settings.set("payment_cvco__enabled", True)
            event.settings.set("payment_cvco_api_url", sandbox.url)
            event.settings.set("payment_cvco_shop_id", shop["shop_id"])
            event.settings.set("payment_cvco_client_id", shop["client_id"])
            event.settings.set("payment_cvco_client_secret", shop["client_secret"])
            event.settings.set("payment_cvco_notification_secret", shop["notification_secret"])
            event.settings.set("payment_cvco_min_amount_cents", 2000)
            event.settings.set("payment_cvco_adjustable", True)
            event.settings.set("payment_banktransfer__enabled", True)
            event.settings.set("payment_banktransfer_bank_details_type", "other")
            event.settings.set("payment_banktransfer_bank_details", "IBAN FR76 0000 0000 0000")
        return Shop(live_server, event, shop, sandbox)

    return make


@pytest.fixture
def shop(make_shop):
    return make_shop()
