#!/usr/bin/env bash
# Smoke load test: starts a release hub on a free port with a temporary data
# directory, runs `loadtest smoke` against it (≤ 30 s: 50 customers, 5 agents,
# 200 msg/s for 10 s), and stops the hub. Exits non-zero when the no-loss or the
# ordering checks fail. Extra arguments go to `loadtest smoke`
# (e.g. `--output smoke.json`, `--workers 2`). SKIP_BUILD=1 uses existing binaries.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -p hub -p loadtest
fi
bin="${CARGO_TARGET_DIR:-$root/target}/release"
tmp="$(mktemp -d)"
token="smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
log="$tmp/hub.log"
HUB_ADDR=127.0.0.1:0 HUB_DATA="$tmp/data" HUB_RATE_LIMIT=off HUB_ADMIN_TOKEN="$token" \
  RUST_LOG="${RUST_LOG:-warn}" "$bin/hub" >"$log" 2>&1 &
hub=$!
cleanup() {
  kill "$hub" 2>/dev/null || true
  wait "$hub" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
url=""
for _ in $(seq 1 200); do
  url="$(grep -o 'listening on http://[^[:space:]]*' "$log" | head -n1 | sed 's/^listening on //' || true)"
  [ -n "$url" ] && break
  if ! kill -0 "$hub" 2>/dev/null; then
    echo "smoke: the hub exited:" >&2
    cat "$log" >&2
    exit 2
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "smoke: the hub did not print its address within 20 s" >&2
  cat "$log" >&2
  exit 2
fi
echo "smoke: hub at $url (data in $tmp)"
"$bin/loadtest" smoke --url "$url" --admin-token "$token" "$@"
