"""Driver for the Vendure adapter (host-adapters/vendure): a Vendure 3 server (@vendure/testing,
in-process SQLite) with the CvcoPlugin, started by `node dist/test/serve.js` (build it with
`npm ci && npx tsc` in host-adapters/vendure; `cargo xtask test` does). Orders are made through
Vendure's own shop GraphQL API with the shopper's cookie session; one variant costs 1 cent, so
an order of N cents is N of it."""

import os
import re
import shutil
import time
from urllib.parse import quote

import requests

from .common import REPO_ROOT, free_port, kill_process, start_process, stop_process, widget_dist

VENDURE_DIR = REPO_ROOT / "host-adapters" / "vendure"


class Shopper:
    def __init__(self, site, variant_id):
        self.shop_api = f"{site}/shop-api"
        self.variant_id = variant_id
        self.session = requests.Session()

    def _gql(self, query, variables=None, key=None):
        response = self.session.post(self.shop_api, json={"query": query, "variables": variables or {}}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        data = body["data"][key] if key else body["data"]
        assert not (isinstance(data, dict) and data.get("errorCode")), data
        return data

    def create_order(self, amount_cents):
        # Vendure keeps one active order per session: a second order is a new cart, i.e. a new
        # session (the earlier, unplaced order stays with the session that made it).
        if self._gql("{ activeOrder { id } }", key="activeOrder"):
            self.session.cookies.clear()
        order = self._gql(
            "mutation($id: ID!, $q: Int!) { addItemToOrder(productVariantId: $id, quantity: $q) {"
            " ... on Order { code totalWithTax } ... on ErrorResult { errorCode message } } }",
            {"id": self.variant_id, "q": amount_cents}, "addItemToOrder")
        self._gql('mutation { setCustomerForOrder(input: {emailAddress: "contract@example.fr", firstName: "C",'
                  ' lastName: "Suite"}) { ... on Order { id } ... on ErrorResult { errorCode message } } }',
                  key="setCustomerForOrder")
        self._gql('mutation { setOrderShippingAddress(input: {fullName: "C Suite", streetLine1: "1 rue de la Paix",'
                  ' city: "Paris", postalCode: "75002", countryCode: "FR"}) { ... on Order { id }'
                  ' ... on ErrorResult { errorCode message } } }', key="setOrderShippingAddress")
        methods = self._gql("{ eligibleShippingMethods { id } }", key="eligibleShippingMethods")
        self._gql("mutation($id: [ID!]!) { setOrderShippingMethod(shippingMethodId: $id) { ... on Order { id }"
                  " ... on ErrorResult { errorCode message } } }", {"id": [methods[0]["id"]]},
                  key="setOrderShippingMethod")
        moved = self._gql('mutation { transitionOrderToState(state: "ArrangingPayment") { ... on Order { state'
                          " totalWithTax } ... on OrderStateTransitionError { errorCode message } } }",
                          key="transitionOrderToState")
        assert moved["state"] == "ArrangingPayment" and moved["totalWithTax"] == amount_cents, moved
        return order["code"]


class Adapter:
    name = "vendure"
    call_budget_ms = 10000  # the plugin's requestTimeoutMs default
    can_restart = True
    # Payment requests are for Vendure's own orders (an order in ArrangingPayment).
    requests_need_an_order = True

    def __init__(self, ctx):
        serve = VENDURE_DIR / "dist" / "test" / "serve.js"
        if not serve.is_file():
            raise RuntimeError(f"{serve} is missing: run `npm ci && npx tsc -p tsconfig.json` in {VENDURE_DIR}")
        port = free_port()
        self.site = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.site}/cvco/v1"
        self.workdir = ctx.workdir
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
            "VENDURE_DISABLE_TELEMETRY": "true",
        })
        node = shutil.which("node") or "node"
        # --data-dir: the database is written there after every change, so a restart finds it.
        self.argv = [node, str(serve), "--port", str(port), "--sandbox-url", ctx.sandbox_url,
                     "--data-dir", str(ctx.workdir / "vendure-data")]
        (ctx.workdir / "vendure-data").mkdir(exist_ok=True)
        self.runs = 0
        self._spawn()

    def _spawn(self):
        self.runs += 1
        self.log = self.workdir / ("vendure.log" if self.runs == 1 else f"vendure.{self.runs}.log")
        self.process = start_process(self.argv, self.log, env=self.env)
        self.variant_id = self._wait_until_ready()

    def kill(self):
        """SIGKILL, as a crash."""
        kill_process(self.process)

    def restart(self):
        """serve.js again on the same --data-dir and port: same orders, payments and sessions."""
        stop_process(self.process)
        self._spawn()

    def _wait_until_ready(self, timeout_s=180):
        """@vendure/testing starts a server once to fill the database, stops it, then starts the
        real one: wait for serve.js's own line, printed once the shop is fully set up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            match = re.search(r"vendure ready on \S+ \(variant (\S+)\)", text)
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise RuntimeError(f"vendure exited with {self.process.returncode}\n{text[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"vendure did not get ready within {timeout_s} s")

    def new_shopper(self):
        return Shopper(self.site, self.variant_id)

    def staff(self):
        """An administrator's session (the test server's superadmin, logged in through Vendure's
        Admin API; its session cookie is global, so it reaches /cvco/v1), its CSRF token (from
        GET /cvco/v1/staff/session) sent as X-CSRF-Token on every call: for §2 endpoints (payment
        requests, refunds, the transactions list). Sessions are in the database: it outlives a
        restart on the same --data-dir."""
        if getattr(self, "_staff", None) is None:
            session = requests.Session()
            response = session.post(f"{self.site}/admin-api", json={
                "query": 'mutation { login(username: "superadmin", password: "superadmin") {'
                         " ... on CurrentUser { id } ... on ErrorResult { errorCode message } } }"}, timeout=30)
            assert response.status_code == 200 and "id" in response.json()["data"]["login"], response.text
            token = session.get(f"{self.base_url}/staff/session", timeout=30)
            assert token.status_code == 200, token.text
            session.headers["X-CSRF-Token"] = token.json()["csrf_token"]
            self._staff = session
        return self._staff

    def checkout_page_url(self, order_ref):
        """The test server's minimal storefront page (test/storefront.ts): one <cvco-checkout> and
        the widget files from CVCO_WIDGET_DIST, same origin, strict CSP. A real Vendure shop's
        storefront is its own app; this page stands in for it."""
        return f"{self.site}/storefront/pay/{quote(order_ref)}"

    def stop(self):
        stop_process(self.process)


def start(ctx):
    return Adapter(ctx)
