#!/bin/sh
# Starts a sandbox and cvco-host on spare ports, runs the page smoke test in headless Chromium, stops
# both. Needs: cargo build -p cvco-host -p cvco-sandbox, cargo xtask plugin, cargo xtask widget,
# chromium, node >= 20. `cargo xtask test` passes the binaries cargo just built (CVCO_SANDBOX_BIN,
# CVCO_HOST_BIN), so a stale file in the target dir never stands in for them.
#   CARGO_TARGET_DIR=/root/.cache/cvco/target examples/smoke/run.sh [--shots DIR] [--only counter]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../../target}
plugin=${CVCO_PLUGIN:-$target/wasm32-unknown-unknown/wasm/cvco_plugin.wasm}
sandbox_bin=${CVCO_SANDBOX_BIN:-$target/debug/cvco-sandbox}
host_bin=${CVCO_HOST_BIN:-$target/debug/cvco-host}
for file in "$plugin" "$sandbox_bin" "$host_bin"; do
  [ -f "$file" ] || { echo "missing: $file" >&2; exit 1; }
done
sandbox_port=${SMOKE_SANDBOX_PORT:-7271}
host_port=${SMOKE_HOST_PORT:-8281}
work=$(mktemp -d)
pids=""
cleanup() {
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

wait_up() {
  i=0
  until curl -fsS "$1/healthz" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then echo "not up: $1" >&2; cat "$work"/*.log >&2; exit 1; fi
    sleep 0.1
  done
}

"$sandbox_bin" --port "$sandbox_port" --data "$work/sandbox.sqlite" --approve-delay-ms 600 >"$work/sandbox.log" 2>&1 &
pids="$pids $!"
wait_up "http://127.0.0.1:$sandbox_port"
# cvco-host has the pages compiled in: by hand, serve them from disk instead so an edited page is
# what runs without rebuilding it; under `cargo xtask test` (binaries just built) the compiled-in
# copies run, as deployed.
[ -n "${CVCO_HOST_BIN:-}" ] || export CVCO_HOST_EXAMPLES_DIR="${CVCO_HOST_EXAMPLES_DIR:-$here/..}"
"$host_bin" --demo --port "$host_port" --sandbox-url "http://127.0.0.1:$sandbox_port" \
  --plugin "$plugin" --data "$work/host.sqlite" >"$work/host.log" 2>&1 &
pids="$pids $!"
wait_up "http://127.0.0.1:$host_port"

node_flags=""
node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null || node_flags="--experimental-websocket --no-warnings"
# shellcheck disable=SC2086
node $node_flags "$here/pages-smoke.mjs" --base "http://127.0.0.1:$host_port" --sandbox "http://127.0.0.1:$sandbox_port" "$@"
