"""Driver for the Rust reference backend `cvco-host` (host-adapters/rust): its binary with
--demo (test orders and the manager/manager-demo account exist only in demo mode) and
--test-orders, configured for the suite's shop through CVCO_HOST_* variables. With
CVCO_CONTRACT_HOST_DATABASE=postgres://… (a server cvco-host may create databases on), each
start gets a PostgreSQL database of its own instead of a SQLite file, dropped at stop."""

import os
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from .common import cargo_binary, free_port, kill_process, start_process, stop_process, wait_http, widget_dist


DATABASE_ENV = "CVCO_CONTRACT_HOST_DATABASE"


def create_database(server_url):
    """A fresh database on the server of `server_url`: its URL and its name."""
    import psycopg2  # pretix's own PostgreSQL client, in the suite's venv

    name = f"cvco_c_{secrets.token_hex(6)}"
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    try:
        conn.cursor().execute(f"CREATE DATABASE {name}")
    finally:
        conn.close()
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def drop_database(server_url, name):
    import psycopg2

    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        conn.close()


class Shopper:
    def __init__(self, site):
        self.site = site
        self.session = requests.Session()

    def create_order(self, amount_cents):
        response = self.session.post(f"{self.site}/shop/api/test-orders", json={"amount_cents": amount_cents},
                                     timeout=15)
        assert response.status_code == 201, response.text
        return response.json()["order_ref"]


class Adapter:
    name = "cvco-host"
    # The plugin's call budget (CVCO_HOST_REQUEST_TIMEOUT_MS): short, so that "answer later than
    # the budget" cells of test_lost_answers.py stay quick.
    call_budget_ms = 4000
    can_restart = True

    def __init__(self, ctx):
        self.binary = os.environ.get("CVCO_HOST_BIN") or str(cargo_binary("cvco-host"))
        self.port = free_port()
        self.site = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.site}/cvco/v1"
        self.env = dict(os.environ)
        shop = ctx.shop
        self.env.update({
            "CVCO_HOST_SHOP_ID": shop["shop_id"],
            "CVCO_HOST_CLIENT_ID": shop["client_id"],
            "CVCO_HOST_CLIENT_SECRET": shop["client_secret"],
            "CVCO_HOST_NOTIFICATION_SECRET": shop["notification_secret"],
            "CVCO_HOST_WIDGET_DIR": str(widget_dist()),
            "CVCO_HOST_REQUEST_TIMEOUT_MS": str(self.call_budget_ms),
        })
        self.server_url = os.environ.get(DATABASE_ENV)
        self.database = None
        if self.server_url:
            url, self.database = create_database(self.server_url)
            store = ["--database", url]
        else:
            store = ["--data", str(ctx.workdir / "cvco-host.sqlite")]
        self.argv = [self.binary, "--demo", "--port", str(self.port), "--sandbox-url", ctx.sandbox_url,
                     "--plugin", str(ctx.plugin_wasm), *store, "--test-orders"]
        self.workdir = ctx.workdir
        self.runs = 0
        self._staff = None
        self._spawn()

    def _spawn(self):
        # One log per run, so a restart keeps what the killed process wrote.
        self.runs += 1
        self.log = self.workdir / ("cvco-host.log" if self.runs == 1 else f"cvco-host.{self.runs}.log")
        self.process = start_process(self.argv, self.log, env=self.env)
        wait_http(f"{self.site}/healthz", self.process, log=self.log)

    def new_shopper(self):
        return Shopper(self.site)

    def staff(self):
        """A manager's back-office session (the default manager account), its CSRF token sent on
        every call: for §2 endpoints (payment requests, refunds, the transactions list). Sessions
        are stored, so it outlives a restart."""
        if self._staff is None:
            session = requests.Session()
            response = session.post(f"{self.site}/back-office/api/login",
                                    json={"username": "manager", "password": "manager-demo"}, timeout=30)
            assert response.status_code == 200, response.text
            session.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            self._staff = session
        return self._staff

    def kill(self):
        """SIGKILL, as a crash: nothing is flushed or closed cleanly."""
        kill_process(self.process)

    def restart(self):
        """Starts the binary again on the same database and port (after kill or stop)."""
        stop_process(self.process)
        self._spawn()

    def checkout_page_url(self, order_ref):
        """cvco-host's widget playground (examples/widget-playground, strict CSP): one
        <cvco-checkout> for an order of the browser's session, kept on screen after the outcome
        (the storefront's /orders/{ref} swaps it for its confirmation once paid)."""
        return f"{self.site}/examples/widget-playground/index.html?order_ref={quote(order_ref)}"

    def stop(self):
        stop_process(self.process)
        if self.database:
            drop_database(self.server_url, self.database)
            self.database = None


def start(ctx):
    return Adapter(ctx)
