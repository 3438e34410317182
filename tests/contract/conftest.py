"""Picks the adapter under test (`--driver NAME` or CVCO_CONTRACT_DRIVER), starts the real
sandbox with a shop of its own, then the adapter configured for that shop."""

import importlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "sandbox" / "python"))

from cvco_sandbox import Sandbox  # noqa: E402

# Short enough for the silent beneficiary to expire during the suite, long enough for the
# scripted ones (they answer after the sandbox's approve delay).
AUTHORIZATION_TIMEOUT_S = 4


def pytest_addoption(parser):
    parser.addoption("--driver", default=os.environ.get("CVCO_CONTRACT_DRIVER"),
                     help="adapter driver: a module name under tests/contract/drivers (cvco_host, pretix, …)")


@dataclass
class Context:
    sandbox_url: str
    shop: dict
    plugin_wasm: Path
    workdir: Path


@pytest.fixture(scope="session")
def sandbox():
    instance = Sandbox(approve_delay_ms=300)
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def adapter(request, sandbox):
    name = request.config.getoption("--driver")
    if not name:
        raise pytest.UsageError("choose an adapter: --driver cvco_host|pretix|… (or CVCO_CONTRACT_DRIVER)")
    plugin = os.environ.get("CVCO_PLUGIN_WASM")
    if not plugin or not Path(plugin).is_file():
        raise pytest.UsageError("CVCO_PLUGIN_WASM must name the built cvco_plugin.wasm")
    driver = importlib.import_module(f"drivers.{name}")
    shop = sandbox.new_shop(authorization_timeout_s=AUTHORIZATION_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix=f"cvco-contract-{name}-") as workdir:
        instance = driver.start(Context(sandbox.url, shop, Path(plugin), Path(workdir)))
        instance.shop = shop
        try:
            yield instance
        finally:
            instance.stop()


@pytest.fixture
def shopper(adapter):
    return adapter.new_shopper()
