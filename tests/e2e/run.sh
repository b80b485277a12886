#!/usr/bin/env bash
# Browser end-to-end tests of the console and the widget, against the real hub binary.
# Installs what is missing (Chromium from apt, playwright-core from package-lock.json),
# then runs the tests with node's built-in runner. Expects `cargo build --release` done.
#
#   tests/e2e/run.sh                 # all tests
#   tests/e2e/run.sh help.test.js    # some files
#
# Env: HUB_BIN (default target/release/hub), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
  echo "Installing chromium (apt)…"
  sudo_cmd=""
  if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

if ! command -v node >/dev/null; then
  echo "node (>= 20) is required" >&2
  exit 1
fi

bin="${HUB_BIN:-$root/target/release/hub}"
if [ ! -x "$bin" ]; then
  echo "The hub binary is missing at $bin: run 'cargo build --release' first." >&2
  exit 1
fi

cd "$here"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p "$root/tests/artifacts"
if [ "$#" -gt 0 ]; then files=("$@"); else files=(*.test.js); fi
# A test that waits on something that never comes fails after 2 minutes instead of
# holding the run (and CI) to its end.
exec node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec "${files[@]}"
