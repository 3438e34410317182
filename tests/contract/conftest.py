"""Picks the adapter under test (`--driver NAME` or CVCO_CONTRACT_DRIVER), starts the real
sandbox with a shop of its own, then the adapter configured for that shop."""

import contextlib
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
    parser.addoption("--drivers", default=os.environ.get("CVCO_CONTRACT_DRIVERS"),
                     help="comma-separated drivers started together, for the cross-adapter tests "
                          "(test_identical_errors.py): those run only then, and only they run")


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


def _start(name, sandbox, stack):
    plugin = os.environ.get("CVCO_PLUGIN_WASM")
    if not plugin or not Path(plugin).is_file():
        raise pytest.UsageError("CVCO_PLUGIN_WASM must name the built cvco_plugin.wasm")
    driver = importlib.import_module(f"drivers.{name}")
    shop = sandbox.new_shop(authorization_timeout_s=AUTHORIZATION_TIMEOUT_S)
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"cvco-contract-{name}-"))
    instance = driver.start(Context(sandbox.url, shop, Path(plugin), Path(workdir)))
    stack.callback(instance.stop)
    instance.shop = shop
    return instance


@pytest.fixture(scope="session")
def adapters(request, sandbox):
    """Every adapter of --drivers, started side by side on the same sandbox (a shop each)."""
    names = [name.strip() for name in (request.config.getoption("--drivers") or "").split(",") if name.strip()]
    if len(names) < 2:
        raise pytest.UsageError("the cross-adapter tests compare adapters: --drivers cvco_host,pretix,vendure")
    with contextlib.ExitStack() as stack:
        yield {name: _start(name, sandbox, stack) for name in names}


def pytest_collection_modifyitems(config, items):
    """Cross-adapter tests run when --drivers is given, and then alone (deselected, never skipped,
    otherwise): one pytest run holds either one adapter or all of them."""
    cross = bool(config.getoption("--drivers"))
    keep, drop = [], []
    for item in items:
        (keep if (item.get_closest_marker("cross_adapter") is not None) == cross else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def shopper(adapter):
    return adapter.new_shopper()


# --- The lost-answer matrix (test_lost_answers.py): one line per cell, printed at the end of
# the run and written to $CARGO_TARGET_DIR/lost-answers-matrix.txt (each adapter's run also
# keeps its own lost-answers-<adapter>.txt, from which the combined file is rebuilt).

def pytest_configure(config):
    config.addinivalue_line("markers", "lost_answers: a cell of the lost-answer matrix (issue 10 §1)")
    config.addinivalue_line("markers", "cross_adapter: compares several adapters started together (--drivers)")


def _matrix_module():
    return sys.modules.get("test_lost_answers")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    _schema_outcome(item, report)
    module = _matrix_module()
    params = getattr(getattr(item, "callspec", None), "params", {})
    if module is None or "op" not in params or not report.failed:
        return
    name = getattr(item.funcargs.get("adapter"), "name", None) or item.config.getoption("--driver")
    key = (name, params["op"], params["fault"], params["nxt"])
    if key not in module.RESULTS:
        module.RESULTS[key] = ("FAIL", f"{report.when}: {str(call.excinfo.value).splitlines()[0][:300]}"
                               if call.excinfo else report.when)


def _matrix_lines(module, adapter_name):
    lines = []
    for op, fault, nxt in module.cells():
        status, detail = module.RESULTS.get((adapter_name, op, fault, nxt), ("NOT RUN", "deselected or not reached"))
        tail = f"  ({detail})" if detail else ""
        lines.append(f"{adapter_name} {op} {fault} {nxt} -> {status}{tail}")
    return lines


def _summary(lines):
    counts = {}
    for line in lines:
        adapter = line.split(" ", 1)[0]
        status = line.split(" -> ", 1)[1].split("  (", 1)[0]
        counts.setdefault(adapter, {}).setdefault(status, 0)
        counts[adapter][status] += 1
    out = []
    for adapter, by_status in counts.items():
        total = sum(by_status.values())
        parts = ", ".join(f"{by_status[s]} {s}" for s in ("PASS", "FAIL", "n/a", "merged", "NOT RUN") if s in by_status)
        out.append(f"summary {adapter}: {parts} (of {total} cells)")
    return out


def _grid(lines):
    """The same cells at a glance: one row per adapter and operation, one column per fault, one
    letter per next step (same/new/none): P pass, F fail, - n/a, = merged, ? not run."""
    mark = {"PASS": "P", "FAIL": "F", "n/a": "-", "merged": "=", "NOT RUN": "?"}
    cells, faults = {}, []
    for line in lines:
        head, _, rest = line.partition(" -> ")
        parts = head.split(" ")
        if len(parts) != 4:
            continue
        adapter, op, fault, _nxt = parts
        if fault not in faults:
            faults.append(fault)
        cells.setdefault((adapter, op), {}).setdefault(fault, "")
        cells[(adapter, op)][fault] += mark.get(rest.split("  (", 1)[0], "?")
    out = ["grid (same/new/none per fault; P pass, F fail, - n/a, = merged with create, ? not run)",
           f"{'':10} {'':7} " + " ".join(f"{f:>10}" for f in faults)]
    for (adapter, op), by_fault in cells.items():
        out.append(f"{adapter:10} {op:7} " + " ".join(f"{by_fault.get(f, ''):>10}" for f in faults))
    return out


# --- Schemathesis (test_schema.py): per adapter, operations tested, examples sent, failures.
SCHEMA_OUTCOMES = {}  # (adapter, "METHOD /path") -> "passed" | "failed" | "skipped"


def _schema_outcome(item, report):
    if not item.nodeid.startswith("test_schema.py::") or "[" not in item.name:
        return
    if report.when != "call" and not (report.failed or report.skipped):
        return
    adapter = getattr(item.funcargs.get("adapter"), "name", None) or item.config.getoption("--driver")
    operation = item.name.split("[", 1)[1].rstrip("]")
    previous = SCHEMA_OUTCOMES.get((adapter, operation))
    if previous != "failed":
        SCHEMA_OUTCOMES[(adapter, operation)] = report.outcome


def _schema_summary(terminalreporter):
    examples = getattr(sys.modules.get("test_schema"), "EXAMPLES_SENT", {})
    for adapter in sorted({key[0] for key in SCHEMA_OUTCOMES}):
        outcomes = {op: outcome for (name, op), outcome in SCHEMA_OUTCOMES.items() if name == adapter}
        sent = sum(count for (name, _), count in examples.items() if name == adapter)
        failed = sorted(op for op, outcome in outcomes.items() if outcome == "failed")
        skipped = sorted(op for op, outcome in outcomes.items() if outcome == "skipped")
        # An operation whose set-up failed sent nothing: failed, with no examples.
        line = (f"schemathesis {adapter}: {len(outcomes) - len(skipped)} operations, {sent} examples sent, "
                f"{len(failed)} failed operations" + (f", {len(skipped)} n/a" if skipped else ""))
        lines = [line] + [f"  FAILED {op}" for op in failed] + [f"  n/a {op}" for op in skipped]
        terminalreporter.write_sep("=", f"schemathesis: {adapter}")
        for text in lines:
            terminalreporter.write_line(text)
        target = Path(os.environ.get("CARGO_TARGET_DIR") or HERE.parents[1] / "target")
        target.mkdir(parents=True, exist_ok=True)
        (target / f"schemathesis-{adapter}.txt").write_text("\n".join(lines) + "\n")


def pytest_terminal_summary(terminalreporter):
    _schema_summary(terminalreporter)
    module = _matrix_module()
    if module is None or not module.RESULTS:
        return
    adapters = sorted({key[0] for key in module.RESULTS})
    target = Path(os.environ.get("CARGO_TARGET_DIR") or HERE.parents[1] / "target")
    target.mkdir(parents=True, exist_ok=True)
    for name in adapters:
        lines = _matrix_lines(module, name)
        (target / f"lost-answers-{name}.txt").write_text("\n".join(lines) + "\n")
        terminalreporter.write_sep("=", f"lost-answer matrix: {name}")
        for line in lines + _grid(lines) + _summary(lines):
            terminalreporter.write_line(line)
    # Every adapter measured so far (each driver is a separate pytest run), in one file.
    combined = []
    for path in sorted(target.glob("lost-answers-*.txt")):
        if path.name != "lost-answers-matrix.txt":
            combined += path.read_text().splitlines()
    text = "\n".join(combined + _grid(combined) + _summary(combined)) + "\n"
    (target / "lost-answers-matrix.txt").write_text(text)
    terminalreporter.write_line(f"lost-answer matrix written to {target / 'lost-answers-matrix.txt'}")
