"""Helpers the drivers share: free ports, waiting for a port, stopping a child for good."""

import os
import signal
import subprocess
import time
from pathlib import Path

import requests
from cvco_sandbox import die_with_parent, free_port  # noqa: F401 (drivers import free_port here)

REPO_ROOT = Path(__file__).resolve().parents[3]


def widget_dist():
    """The built widget (`cargo xtask widget`): CVCO_WIDGET_DIST, else the repository's dist/widget.
    Drivers hand it to their adapter so the checkout page serves exactly these files."""
    return Path(os.environ.get("CVCO_WIDGET_DIST") or REPO_ROOT / "dist" / "widget")


def cargo_binary(name):
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO_ROOT / "target")
    return Path(target) / "debug" / name


def wait_http(url, process, timeout_s=60, log=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"adapter exited with {process.returncode} before answering {url}\n{tail}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"adapter did not answer {url} within {timeout_s} s")


def start_process(argv, log_path, env=None):
    """A child in its own process group, so stop() ends it and anything it started."""
    log = open(log_path, "wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                            preexec_fn=die_with_parent)


def kill_process(process):
    """SIGKILL to the child's whole process group (a crash, for restart scenarios)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()


def stop_process(process):
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
