"""The bridge to cvco_plugin.wasm: configuration from the event's settings, one Extism instance
per thread (extism.Plugin is not thread-safe), typed errors with the cvco error body."""

import datetime
import fnmatch
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import extism
from django.conf import settings as django_settings

from . import exports

PROVIDER_ID = "cvco"

# cvco_core::plugin_api::HOST_NOT_ALLOWED_MARKER: Extism's text when allowed_hosts refuses a
# request. The Python SDK only shows the top of the error ("error while executing at wasm
# backtrace…"), so a trap is also checked against the manifest (see _classify).
HOST_NOT_ALLOWED_MARKER = "is not allowed"


class CvcoError(Exception):
    """A cvco error body (`code`, `message_fr`, `message_en`, `retryable`, `field?`, `payment_id?`);
    status, retryable and "outcome unknown" come from the plugin's error catalogue."""

    def __init__(self, body, status=None):
        super().__init__(body.get("message_en", body.get("code")))
        self.body = body
        # The HTTP status when the contract gives another than the catalogue's (405, 413, 415,
        # 400 for an unreadable query parameter).
        self.status = status

    @classmethod
    def of(cls, code, field=None, detail_en=None, detail_fr=None, status=None):
        entry = error_catalogue()[code]
        body = {
            "code": code,
            "message_fr": entry["message_fr"] + (f" {detail_fr}" if detail_fr else ""),
            "message_en": entry["message_en"] + (f" {detail_en}" if detail_en else ""),
            "retryable": entry["retryable"],
        }
        if field:
            body["field"] = field
        return cls(body, status=status)

    @property
    def code(self):
        return self.body.get("code")

    @property
    def http_status(self):
        if self.status:
            return self.status
        entry = _catalogue.get(self.code) if _catalogue else None
        return entry["http_status"] if entry else 500

    @property
    def retryable(self):
        return bool(self.body.get("retryable"))

    @property
    def outcome_unknown(self):
        """A failed mutating call that may still have taken effect at ANCV."""
        entry = _catalogue.get(self.code) if _catalogue else None
        return bool(entry and entry["outcome_unknown"])


def dumps(data):
    """JSON as cvco-host sends it: compact, UTF-8 as is (an error body's keys already in the
    contract's order)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# The plugin's error catalogue (code -> http_status, retryable, outcome_unknown, messages), read
# once per process from the first plugin loaded.
_catalogue = None
_catalogue_lock = threading.Lock()


def error_catalogue():
    global _catalogue
    if _catalogue is None:
        with _catalogue_lock:
            if _catalogue is None:
                try:
                    plugin = _new_instance({})
                    raw = plugin.call(exports.ERROR_CATALOGUE, "{}")
                except extism.Error as error:
                    raise _unloadable(error) from error
                errors = json.loads(bytes(raw).decode("utf-8"))["ok"]["errors"]
                _catalogue = {entry["code"]: entry for entry in errors}
    return _catalogue


def _unloadable(error):
    # No plugin, no catalogue: the one error built here.
    return CvcoError({
        "code": "config_invalid",
        "message_fr": "Le plugin cvco_plugin.wasm n'a pas pu être chargé.",
        "message_en": f"The plugin cvco_plugin.wasm could not be loaded ({error}).",
        "retryable": False,
        "field": "CVCO_PLUGIN_WASM",
    })


def now_rfc3339():
    """The plugin has no clock and the Python SDK hides the `Date` header: hosts pass `now`."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def wasm_path():
    configured = getattr(django_settings, "CVCO_PLUGIN_WASM", None) or os.environ.get("CVCO_PLUGIN_WASM")
    path = Path(configured) if configured else Path(__file__).with_name("cvco_plugin.wasm")
    if not path.is_file():
        raise _unloadable("not found: set CVCO_PLUGIN_WASM")
    return path


def plugin_config(provider_settings):
    """The manifest config of an event, from the payment provider's settings (secrets included:
    they stay in this process and never reach a page or a log). The merchant's rules (minimum,
    adjustment, timeout) go only here: the plugin applies them, this adapter never does."""

    def number(key):
        value = provider_settings.get(key, as_type=int)
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else ""

    adjustable = provider_settings.get("adjustable", as_type=bool, default=True)
    config = {
        "api_base_url": provider_settings.get("api_url") or "",
        "shop_id": provider_settings.get("shop_id") or "",
        "client_id": provider_settings.get("client_id") or "",
        "client_secret": provider_settings.get("client_secret") or "",
        "notification_secret": provider_settings.get("notification_secret") or "",
        "min_amount_cents": number("min_amount_cents"),
        "adjustable": "true" if adjustable else "false",
        "authorization_timeout_s": number("authorization_timeout_s"),
        "request_timeout_ms": str(request_timeout_ms(provider_settings)),
    }
    return {key: value for key, value in config.items() if value != ""}


def request_timeout_ms(provider_settings):
    """The budget of one plugin call (the manifest's timeout_ms): past it the call is abandoned
    and a creation's outcome is unknown."""
    value = provider_settings.get("request_timeout_ms", as_type=int, default=10000)
    return value if isinstance(value, int) and 500 <= value <= 60000 else 10000


# Idle plugin instances per configuration. extism.Plugin is not thread-safe, so an instance is
# lent to one call at a time; a pool (not one per thread) because WSGI servers often start a
# thread per request, and an instance keeps its OAuth token between calls.
_idle = {}
_idle_lock = threading.Lock()
MAX_IDLE_PER_CONFIG = 8


def allowed_hosts(config):
    """The manifest's allowed_hosts: Django setting CVCO_ALLOWED_HOSTS when set (pins where the
    plugin may send the credentials, whatever an event's API URL says), else the API URL's host."""
    pinned = getattr(django_settings, "CVCO_ALLOWED_HOSTS", None)
    if pinned is not None:
        return list(pinned)
    host = urlparse(config.get("api_base_url", "")).hostname
    return [host] if host else []


def _host_allowed(config, hosts):
    """Extism's own rule: the URL's host matches one of the glob patterns."""
    host = urlparse(config.get("api_base_url", "")).hostname or ""
    return any(fnmatch.fnmatchcase(host, pattern) for pattern in hosts)


def _new_instance(config):
    manifest = {
        "wasm": [{"path": str(wasm_path())}],
        "allowed_hosts": allowed_hosts(config),
        "timeout_ms": int(config.get("request_timeout_ms", "10000")),
        "config": config,
    }
    return extism.Plugin(manifest, wasi=False)


def _borrow(key, config):
    with _idle_lock:
        idle = _idle.get(key)
        if idle:
            return idle.pop()
    return _new_instance(config)


def _give_back(key, plugin):
    with _idle_lock:
        idle = _idle.setdefault(key, [])
        if len(idle) < MAX_IDLE_PER_CONFIG:
            idle.append(plugin)


def _classify(config, function, error, elapsed_ms):
    """The cvco error for an Extism-level failure (the plugin could not answer): the call budget
    ran out (`upstream_timeout`), the manifest refused the API's host (`config_invalid`, not
    retryable: nothing was sent), or another trap (`upstream_unavailable`). The Python SDK shows
    an HTTP timeout inside the call as a bare trap: a trap at the end of the budget is a timeout."""
    message = str(error)
    budget_ms = int(config.get("request_timeout_ms", "10000"))
    if message.strip() == "timeout" or elapsed_ms >= budget_ms * 0.9:
        return CvcoError.of("upstream_timeout", detail_en=f"({function})", detail_fr=f"({function})")
    if HOST_NOT_ALLOWED_MARKER in message or not _host_allowed(config, allowed_hosts(config)):
        host = urlparse(config.get("api_base_url", "")).hostname or config.get("api_base_url", "")
        return CvcoError.of(
            "config_invalid",
            field="allowed_hosts",
            detail_en=f"The API host {host} is not in the plugin's allowed_hosts (CVCO_ALLOWED_HOSTS).",
            detail_fr=f"L'hôte de l'API {host} n'est pas dans les allowed_hosts du plugin (CVCO_ALLOWED_HOSTS).",
        )
    return CvcoError.of("upstream_unavailable", detail_en=f"({function})", detail_fr=f"({function})")


def call(config, function, **inputs):
    """Calls one export; returns its `ok` output or raises CvcoError. An Extism-level failure
    drops that instance (see _classify)."""
    error_catalogue()  # every error below is built from it
    key = json.dumps([config, allowed_hosts(config)], sort_keys=True)
    try:
        plugin = _borrow(key, config)
    except extism.Error as error:
        # The module or manifest was refused before any call: nothing was sent.
        raise _unloadable(error) from error
    started = time.monotonic()
    try:
        raw = plugin.call(function, json.dumps(inputs))
    except extism.Error as error:
        raise _classify(config, function, error, (time.monotonic() - started) * 1000) from error
    _give_back(key, plugin)
    reply = json.loads(bytes(raw).decode("utf-8"))
    if "error" in reply:
        raise CvcoError(reply["error"])
    return reply["ok"]
