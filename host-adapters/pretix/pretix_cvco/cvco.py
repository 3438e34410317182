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

PROVIDER_ID = "cvco"

# HTTP statuses of cvco_core::ErrorCode::http_status(); every other code is 422.
_STATUS = {
    "unauthorized": 401,
    "card_declined": 402,
    "too_many_attempts": 429,
    "forbidden": 403,
    "shop_not_affiliated": 403,
    "transaction_not_found": 404,
    "pre_transaction_not_found": 404,
    "order_not_found": 404,
    "payment_not_found": 404,
    "not_found": 404,
    "illegal_transition": 409,
    "idempotency_conflict": 409,
    "account_locked": 409,
    "payment_in_progress": 409,
    "upstream_unavailable": 502,
    "upstream_timeout": 504,
    "upstream_protocol": 502,
    "internal": 500,
}

# The host-side errors the plugin never produces itself (messages of cvco_core::ErrorCode).
_MESSAGES = {
    "order_not_found": ("Commande introuvable.", "Order not found."),
    "payment_not_found": ("Paiement introuvable.", "Payment not found."),
    "payment_in_progress": (
        "Un paiement Chèque-Vacances Connect est déjà en cours pour cette commande.",
        "A Chèque-Vacances Connect payment is already in progress for this order.",
    ),
    "illegal_transition": (
        "Opération impossible dans l'état actuel de la transaction.",
        "Operation not allowed in the transaction's current state.",
    ),
    "invalid_request": ("Requête invalide.", "Invalid request."),
    "forbidden": ("Accès refusé.", "Access denied."),
    "config_missing": ("Paramètre de configuration manquant.", "Missing configuration key."),
    "config_invalid": ("Paramètre de configuration invalide.", "Invalid configuration value."),
    "upstream_unavailable": (
        "Le serveur d'acquisition ANCV est indisponible. Réessayez.",
        "The ANCV acquisition server is unavailable. Try again.",
    ),
    "upstream_timeout": (
        "Le serveur d'acquisition ANCV n'a pas répondu à temps. Réessayez.",
        "The ANCV acquisition server did not answer in time. Try again.",
    ),
    "internal": ("Erreur interne.", "Internal error."),
}
_RETRYABLE = {"upstream_unavailable", "upstream_timeout", "internal", "payment_in_progress"}
# cvco_core::ErrorCode::outcome_unknown(): a mutating call that failed so may still have taken
# effect at ANCV (the request left, no usable answer came back). Every other error is a refusal.
_OUTCOME_UNKNOWN = _RETRYABLE | {"upstream_protocol", "idempotency_conflict"}
# cvco_core::plugin_api::HOST_NOT_ALLOWED_MARKER: Extism's text when allowed_hosts refuses a
# request. The Python SDK only shows the top of the error ("error while executing at wasm
# backtrace…"), so a trap is also checked against the manifest (see _classify).
HOST_NOT_ALLOWED_MARKER = "is not allowed"


class CvcoError(Exception):
    """A cvco error body (`code`, `message_fr`, `message_en`, `retryable`, `field?`)."""

    def __init__(self, body):
        super().__init__(body.get("message_en", body.get("code")))
        self.body = body

    @classmethod
    def of(cls, code, field=None, detail_en=None, detail_fr=None):
        fr, en = _MESSAGES.get(code, ("Erreur.", "Error."))
        body = {
            "code": code,
            "message_fr": fr + (f" {detail_fr}" if detail_fr else ""),
            "message_en": en + (f" {detail_en}" if detail_en else ""),
            "retryable": code in _RETRYABLE,
        }
        if field:
            body["field"] = field
        return cls(body)

    @property
    def code(self):
        return self.body.get("code")

    @property
    def http_status(self):
        return _STATUS.get(self.code, 422)

    @property
    def retryable(self):
        return bool(self.body.get("retryable"))

    @property
    def outcome_unknown(self):
        """A failed mutating call that may still have taken effect at ANCV."""
        return self.retryable or self.code in _OUTCOME_UNKNOWN


def now_rfc3339():
    """The plugin has no clock and the Python SDK hides the `Date` header: hosts pass `now`."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def wasm_path():
    configured = getattr(django_settings, "CVCO_PLUGIN_WASM", None) or os.environ.get("CVCO_PLUGIN_WASM")
    path = Path(configured) if configured else Path(__file__).with_name("cvco_plugin.wasm")
    if not path.is_file():
        raise CvcoError.of(
            "config_missing",
            field="CVCO_PLUGIN_WASM",
            detail_en="cvco_plugin.wasm not found (set CVCO_PLUGIN_WASM).",
            detail_fr="cvco_plugin.wasm introuvable (définir CVCO_PLUGIN_WASM).",
        )
    return path


def plugin_config(provider_settings):
    """The manifest config of an event, from the payment provider's settings (secrets included:
    they stay in this process and never reach a page or a log)."""
    config = {
        "api_base_url": provider_settings.get("api_url") or "",
        "shop_id": provider_settings.get("shop_id") or "",
        "client_id": provider_settings.get("client_id") or "",
        "client_secret": provider_settings.get("client_secret") or "",
        "notification_secret": provider_settings.get("notification_secret") or "",
        "min_amount_cents": str(min_amount_cents(provider_settings)),
        "adjustable": "true" if provider_settings.get("adjustable", as_type=bool, default=True) else "false",
        "request_timeout_ms": str(request_timeout_ms(provider_settings)),
    }
    return {key: value for key, value in config.items() if value != ""}


def request_timeout_ms(provider_settings):
    """The budget of one plugin call (the manifest's timeout_ms): past it the call is abandoned
    and a creation's outcome is unknown."""
    value = provider_settings.get("request_timeout_ms", as_type=int, default=10000)
    return value if isinstance(value, int) and 500 <= value <= 60000 else 10000


def min_amount_cents(provider_settings):
    value = provider_settings.get("min_amount_cents", as_type=int, default=2000)
    return value if isinstance(value, int) and value > 0 else 2000


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
    return CvcoError.of("upstream_unavailable", detail_en=f"({function}: trap)", detail_fr=f"({function})")


def call(config, function, **inputs):
    """Calls one export; returns its `ok` output or raises CvcoError. An Extism-level failure
    drops that instance (see _classify)."""
    key = json.dumps([config, allowed_hosts(config)], sort_keys=True)
    try:
        plugin = _borrow(key, config)
    except extism.Error as error:
        # The module or manifest was refused before any call: nothing was sent.
        raise CvcoError.of(
            "config_invalid",
            field="CVCO_PLUGIN_WASM",
            detail_en=f"The plugin could not be loaded ({error}).",
            detail_fr="Le plugin n'a pas pu être chargé.",
        ) from error
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
