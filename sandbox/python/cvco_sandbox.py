"""The real cvco-sandbox binary as a subprocess, and the beneficiary's side of its app API, for a
merchant's own Python tests (stdlib only). Used by the pretix adapter's tests and the contract
suite: put this folder on `sys.path` and `from cvco_sandbox import Sandbox`."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path


def die_with_parent():
    """Linux: the child gets SIGTERM if the test process dies, so no run leaves it behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sandbox_binary():
    """CVCO_SANDBOX_BIN, else `cargo build -p cvco-sandbox`'s output under CARGO_TARGET_DIR or the
    repository's target/."""
    explicit = os.environ.get("CVCO_SANDBOX_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR") or Path(__file__).resolve().parents[2] / "target"
    return Path(target) / "debug" / "cvco-sandbox"


def http(method, url, body=None, headers=None, timeout=15):
    """(status, parsed JSON or text) with the stdlib only."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


class Sandbox:
    def __init__(self, approve_delay_ms=300):
        binary = sandbox_binary()
        if not binary.is_file():
            raise RuntimeError(f"{binary} missing: cargo build -p cvco-sandbox (or set CVCO_SANDBOX_BIN)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(binary), "--port", str(self.port), "--approve-delay-ms", str(approve_delay_ms)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cvco-sandbox exited with {self.process.returncode}")
            try:
                status, _ = http("GET", f"{self.url}/admin/shops", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("cvco-sandbox did not start within 30 s")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def new_shop(self, **settings):
        """A shop of its own for one test (its settings cannot leak into another test)."""
        tag = uuid.uuid4().hex[:10].upper()
        shop = {
            "shop_id": f"SHOP-T-{tag}",
            "client_id": f"client-{tag.lower()}",
            "client_secret": f"secret-{uuid.uuid4().hex}",
            "notification_secret": f"whsec_{uuid.uuid4().hex}",
            "channels": ["ecommerce", "moto", "proximity", "kiosk"],
        }
        status, body = http("POST", f"{self.url}/admin/shops", shop)
        assert status == 201, body
        if settings:
            status, body = http("PUT", f"{self.url}/admin/shops/{shop['shop_id']}/settings", settings)
            assert status == 200, body
        return shop

    def pending(self, beneficiary):
        status, body = http("GET", f"{self.url}/app/api/beneficiaries/{beneficiary}/pending")
        assert status == 200, body
        return body

    def confirm(self, tx_id, beneficiary, amount_cents=None):
        body = {"beneficiary": beneficiary, "pin": "1234"}
        if amount_cents is not None:
            body["amount_cents"] = amount_cents
        return http("POST", f"{self.url}/app/api/transactions/{tx_id}/confirm", body)

    def notifications(self, shop_id):
        status, body = http("GET", f"{self.url}/admin/notifications?shop_id={shop_id}")
        assert status == 200, body
        return body
