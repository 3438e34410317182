"""pretix's own test settings (SQLite, no Celery, no Redis) plus this plugin, a file-backed test
database that the live server thread shares, the live server's URL as SITE_URL (pretix builds
the notification URL given to ANCV from it), and the built widget as the plugin's
`pretix_cvco/widget/` static files."""

import os
import socket
from pathlib import Path

from pretix.testutils.settings import *  # NOQA


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_address = os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS") or f"127.0.0.1:{_free_port()}"
os.environ["DJANGO_LIVE_TEST_SERVER_ADDRESS"] = _address
SITE_URL = f"http://{_address}"

if "pretix_cvco" not in INSTALLED_APPS:  # NOQA: not pip-installed, only on sys.path
    INSTALLED_APPS.append("pretix_cvco")  # NOQA
    PLUGINS.append("pretix_cvco")  # NOQA

DATABASES["default"]["TEST"] = {"NAME": os.path.join(DATA_DIR, "test.sqlite3")}  # NOQA
# IMMEDIATE: a write transaction takes the lock up front instead of failing to upgrade a read
# lock while the live server thread writes.
DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}  # NOQA

# What the README's install step copies into pretix_cvco/static/pretix_cvco/widget/, found in place
# (dist/widget, or CVCO_WIDGET_DIST) instead of copied; the FileSystemFinder comes first.
_widget = Path(os.environ.get("CVCO_WIDGET_DIST") or Path(__file__).resolve().parents[3] / "dist" / "widget")
if _widget.is_dir():
    STATICFILES_DIRS = [*STATICFILES_DIRS, ("pretix_cvco/widget", str(_widget))]  # NOQA

CVCO_TEST_ORDERS = True
CVCO_PLUGIN_WASM = os.environ.get("CVCO_PLUGIN_WASM", "")
# pretix blocks Python HTTP to private addresses; the tests' shopper and sandbox are on loopback.
ALLOW_HTTP_TO_PRIVATE_NETWORKS = True
