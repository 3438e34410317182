"""A minimal W3C WebDriver client (plain HTTP with `requests`) driving headless Chromium through
Debian's chromedriver, for the contract suite's browser test. One browser at a time on this
machine: the same lock file as the Rust browser tests (tests/browser)."""

import base64
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

import requests

from drivers.common import free_port, start_process, stop_process

ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
    "--window-size=720,900",
]


def chromium_binary():
    return Path(os.environ.get("CVCO_CHROMIUM") or "/usr/bin/chromium")


def chromedriver_binary():
    return Path(os.environ.get("CVCO_CHROMEDRIVER") or "/usr/bin/chromedriver")


def missing():
    """Why no browser can run here (a skip reason), or None."""
    for what, path, variable in (("Chromium", chromium_binary(), "CVCO_CHROMIUM"),
                                 ("chromedriver", chromedriver_binary(), "CVCO_CHROMEDRIVER")):
        if not (path.is_file() and os.access(path, os.X_OK)):
            return (f"{what} not found at {path} (apt-get install chromium chromium-driver, or set {variable}; "
                    "cargo xtask test installs them)")
    return None


class WebDriverError(AssertionError):
    pass


class Browser:
    """Headless Chromium with a fresh profile, ended (with chromedriver) by `close()`."""

    def __init__(self, workdir):
        self._lock = open(Path(tempfile.gettempdir()) / "cvco-browser-tests.lock", "a")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.profile = Path(tempfile.mkdtemp(prefix="cvco-chromium-", dir=workdir))
        self.log = Path(workdir) / "chromedriver.log"
        self.http = requests.Session()
        self.driver = None
        self.session = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self):
        port = free_port()
        self.driver = start_process(
            [str(chromedriver_binary()), f"--port={port}", f"--log-path={self.log}"], self.log.with_suffix(".out"))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.http.get(f"{base}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            if self.driver.poll() is not None or time.monotonic() > deadline:
                raise WebDriverError(f"chromedriver did not start (exit {self.driver.poll()})")
            time.sleep(0.05)
        capabilities = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": str(chromium_binary()),
                "args": CHROMIUM_ARGS + [f"--user-data-dir={self.profile}"],
            },
        }}}
        answer = self.http.post(f"{base}/session", json=capabilities, timeout=60).json()
        session_id = answer.get("value", {}).get("sessionId")
        if not session_id:
            raise WebDriverError(f"no WebDriver session: {answer}")
        self.session = f"{base}/session/{session_id}"

    def close(self):
        if self.session:
            try:
                self.http.delete(self.session, timeout=10)
            except requests.RequestException:
                pass
            self.session = None
        if self.driver:
            stop_process(self.driver)  # its process group: Chromium too
            self.driver = None
        shutil.rmtree(self.profile, ignore_errors=True)
        if self._lock:
            self._lock.close()  # releases the lock
            self._lock = None

    def call(self, method, path, body=None):
        response = self.http.request(method, f"{self.session}{path}", json=body, timeout=60)
        value = response.json().get("value")
        if isinstance(value, dict) and "error" in value:
            raise WebDriverError(f"webdriver {method} {path}: {value['error']}: {value.get('message', '')[:500]}")
        return value

    def goto(self, url):
        self.call("POST", "/url", {"url": url})

    def add_cookie(self, cookie):
        """A cookie for the current page's origin (WebDriver "Add Cookie")."""
        self.call("POST", "/cookie", {"cookie": cookie})

    def execute(self, script, *args):
        """Runs `script` (a function body; `arguments` are `args`) in the page."""
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def on_new_document(self, source):
        """Runs `source` in every page from now on, before the page's own scripts (CDP through
        chromedriver; not subject to the page's CSP)."""
        self.call("POST", "/goog/cdp/execute",
                  {"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}})

    def wait_for(self, expression, timeout_s, what, describe):
        """Polls `expression` (JS) until it is truthy and returns its value; on time out fails
        with `describe()` (what the page shows)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.execute(f"return ({expression}) || null;")
            if value not in (None, False):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{describe()}")
            time.sleep(0.05)

    def send_keys(self, element, text):
        self.call("POST", f"/element/{element[ELEMENT_KEY]}/value", {"text": text})

    def click(self, element):
        self.call("POST", f"/element/{element[ELEMENT_KEY]}/click", {})

    def console(self):
        """The page's console messages so far (chromedriver's log extension; [] if unavailable)."""
        try:
            entries = self.call("POST", "/se/log", {"type": "browser"}) or []
        except (WebDriverError, requests.RequestException, ValueError):
            return []
        return [f"{entry.get('level')}: {entry.get('message')}" for entry in entries]

    def screenshot(self, path):
        png = base64.b64decode(self.call("GET", "/screenshot"))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return path
