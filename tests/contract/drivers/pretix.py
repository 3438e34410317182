"""Driver for the pretix adapter (host-adapters/pretix): a real pretix (SQLite) served by
host-adapters/pretix/tests/serve.py in this Python (the pretix venv), with the test-only order
endpoint switched on."""

import os
import sys

import requests

from .common import REPO_ROOT, free_port, kill_process, start_process, stop_process, wait_http, widget_dist

PRETIX_DIR = REPO_ROOT / "host-adapters" / "pretix"


class Shopper:
    def __init__(self, event_url, secrets):
        self.event_url = event_url
        self.secrets = secrets
        self.session = requests.Session()

    def create_order(self, amount_cents):
        response = self.session.post(f"{self.event_url}/cvco/test-orders", json={"amount_cents": amount_cents},
                                     timeout=15)
        assert response.status_code == 201, response.text
        order = response.json()
        self.secrets[order["order_ref"]] = order["secret"]
        return order["order_ref"]


class Adapter:
    name = "pretix"
    call_budget_ms = 10000  # the provider's request_timeout_ms default
    can_restart = True
    # Payment requests are for pretix orders (no order made up from a reference).
    requests_need_an_order = True
    # pretix has no state for an authorized, uncaptured payment: `capture: "deferred"` is refused
    # with 422 invalid_request field capture (PROTOCOL.md §2).
    supports_deferred_capture = False

    def __init__(self, ctx):
        port = free_port()
        site = f"http://127.0.0.1:{port}"
        self.event_url = f"{site}/contract/shop"
        self.base_url = f"{self.event_url}/cvco/v1"
        self.workdir = ctx.workdir
        # Order code -> order secret (pretix's order links carry it), for checkout_page_url.
        self.secrets = {}
        shop = ctx.shop
        self.env = dict(os.environ)
        # Secrets through the environment, not argv (visible to every user in `ps`).
        self.env.update({
            "CVCO_SHOP_ID": shop["shop_id"],
            "CVCO_CLIENT_ID": shop["client_id"],
            "CVCO_CLIENT_SECRET": shop["client_secret"],
            "CVCO_NOTIFICATION_SECRET": shop["notification_secret"],
            "CVCO_PLUGIN_WASM": str(ctx.plugin_wasm),
            "CVCO_WIDGET_DIST": str(widget_dist()),
            # pretix's database (db.sqlite3) in a directory of ours, so that a restart finds it.
            "DATA_DIR": str(ctx.workdir / "pretix-data"),
        })
        (ctx.workdir / "pretix-data").mkdir(exist_ok=True)
        self.argv = [sys.executable, str(PRETIX_DIR / "tests" / "serve.py"), "--port", str(port),
                     "--sandbox-url", ctx.sandbox_url, "--organizer", "contract", "--event", "shop"]
        self.runs = 0
        self._spawn()

    def _spawn(self):
        self.runs += 1
        self.log = self.workdir / ("pretix.log" if self.runs == 1 else f"pretix.{self.runs}.log")
        self.process = start_process(self.argv, self.log, env=self.env)
        wait_http(f"{self.base_url}/checkout?order_ref=none", self.process, timeout_s=120, log=self.log)

    def new_shopper(self):
        return Shopper(self.event_url, self.secrets)

    def staff(self):
        """The staff account's pretix session (serve.py creates it), logged in through pretix's own
        login form, Django's CSRF token (cookie pretix_csrftoken) sent as X-CSRFToken on every call:
        for §2 endpoints (payment requests, refunds, the transactions list). Sessions are in the
        database, so it outlives a restart."""
        if getattr(self, "_staff", None) is None:
            import re

            site = self.event_url.rsplit("/", 2)[0]
            session = requests.Session()
            page = session.get(f"{site}/control/login", timeout=30)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            done = session.post(f"{site}/control/login", data={
                "csrfmiddlewaretoken": token, "email": "staff@example.org", "password": "staff-demo-1234"},
                headers={"Referer": f"{site}/control/login"}, timeout=30, allow_redirects=False)
            assert done.status_code == 302 and "login" not in done.headers.get("Location", ""), done.status_code
            session.headers["X-CSRFToken"] = session.cookies["pretix_csrftoken"]
            self._staff = session
        return self._staff

    def kill(self):
        """SIGKILL, as a crash."""
        kill_process(self.process)

    def restart(self):
        """serve.py again on the same DATA_DIR and port: same orders, payments and sessions."""
        stop_process(self.process)
        self._spawn()

    def checkout_page_url(self, order_ref):
        """The adapter's own payment page (pretix_cvco/templates/pretix_cvco/pay.html), where pretix
        sends a shopper who chose CVCo; its widget files are served by tests/serve.py from
        CVCO_WIDGET_DIST (tests/settings.py)."""
        return f"{self.event_url}/cvco/pay/{order_ref}/{self.secrets[order_ref]}/"

    def stop(self):
        stop_process(self.process)


def start(ctx):
    return Adapter(ctx)
