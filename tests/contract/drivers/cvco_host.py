"""Driver for the Rust reference backend `cvco-host` (host-adapters/rust): its binary with
--test-orders, configured for the suite's shop through CVCO_HOST_* variables."""

import os
from urllib.parse import quote

import requests

from .common import cargo_binary, free_port, start_process, stop_process, wait_http, widget_dist


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

    def __init__(self, ctx):
        binary = os.environ.get("CVCO_HOST_BIN") or str(cargo_binary("cvco-host"))
        port = free_port()
        self.site = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.site}/cvco/v1"
        env = dict(os.environ)
        shop = ctx.shop
        env.update({
            "CVCO_HOST_SHOP_ID": shop["shop_id"],
            "CVCO_HOST_CLIENT_ID": shop["client_id"],
            "CVCO_HOST_CLIENT_SECRET": shop["client_secret"],
            "CVCO_HOST_NOTIFICATION_SECRET": shop["notification_secret"],
            "CVCO_HOST_WIDGET_DIR": str(widget_dist()),
        })
        self.log = ctx.workdir / "cvco-host.log"
        self.process = start_process(
            [binary, "--port", str(port), "--sandbox-url", ctx.sandbox_url, "--plugin", str(ctx.plugin_wasm),
             "--data", str(ctx.workdir / "cvco-host.sqlite"), "--test-orders"],
            self.log, env=env,
        )
        wait_http(f"{self.site}/healthz", self.process, log=self.log)

    def new_shopper(self):
        return Shopper(self.site)

    def checkout_page_url(self, order_ref):
        """cvco-host's widget playground (examples/widget-playground, strict CSP): one
        <cvco-checkout> for an order of the browser's session, kept on screen after the outcome
        (the storefront's /orders/{ref} swaps it for its confirmation once paid)."""
        return f"{self.site}/examples/widget-playground/index.html?order_ref={quote(order_ref)}"

    def stop(self):
        stop_process(self.process)


def start(ctx):
    return Adapter(ctx)
