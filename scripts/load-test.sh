#!/usr/bin/env bash
# Load test of the server (issue 13): N server-started tasks whose agents write output, M SSE
# clients (some never read), a listing loop, half-open connections. Prints p50/p99 API and SSE
# delivery latency, peak RSS and fds; exits non-zero on any error, any lost log line, RSS >= 300
# MB or a /healthz answer >= 100 ms. Bounded (LOAD_LIMIT_SECS, default 600) and self-stopping;
# binds and connects to 127.0.0.1 only. The driver is tests/e2e/load.rs (`load::full`).
#
# Usage: scripts/load-test.sh
#   LOAD_TASKS=200 LOAD_SSE=200 LOAD_SILENT=50 LOAD_HALF_OPEN=50 LOAD_LINES=2000
#   LOAD_LIMIT_SECS=600 LOAD_PROFILE=release|dev   (dev: the debug build, quicker to build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile="${LOAD_PROFILE:-release}"
case "$profile" in
  release) build=(--release) ;;
  dev) build=() ;;
  *) echo "LOAD_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac
for var in LOAD_TASKS LOAD_SSE LOAD_SILENT LOAD_HALF_OPEN LOAD_LINES LOAD_LIMIT_SECS; do
  value="${!var:-}"
  if [ -n "$value" ] && ! [[ "$value" =~ ^[0-9]+$ ]]; then
    echo "$var must be a whole number, not '$value'" >&2
    exit 2
  fi
done
exec cargo test ${build[@]+"${build[@]}"} --test e2e load::full -- --ignored --exact --nocapture
