#!/usr/bin/env bash
# Start the Conductor server with whichever binary is installed.
#
# Prefers a `conductor` binary (beside this script, then on PATH) and falls back to
# `run-agent serve` (beside this script, then on PATH). Every argument is passed through, so
#   scripts/start-conductor.sh --config /etc/conductor/config.yaml --port 14355
# runs `conductor --config … --port 14355` or `run-agent serve --config … --port 14355`.
# Note: `conductor` requires a config file (--config, CONDUCTOR_CONFIG, or a discovered one);
# `run-agent serve` runs on defaults without one.
#
# Options of this script (not passed on):
#   --dry-run   print the command it would run and exit 0
#   -h, --help  print this help
# CONDUCTOR_BIN / RUN_AGENT_BIN name a binary explicitly (then no search is made for it).
# Exit status: the server's; 127 when neither binary is found.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

dry_run=0
args=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

# find NAME: the executable beside this script, else on PATH; empty when neither.
find_bin() {
  local name="$1"
  if [ -x "$script_dir/$name" ] && [ -f "$script_dir/$name" ]; then
    printf '%s\n' "$script_dir/$name"
  else
    command -v -- "$name" 2>/dev/null || true
  fi
}

cmd=()
if [ -n "${CONDUCTOR_BIN:-}" ]; then
  cmd=("$CONDUCTOR_BIN")
elif [ -n "${RUN_AGENT_BIN:-}" ]; then
  cmd=("$RUN_AGENT_BIN" serve)
else
  conductor="$(find_bin conductor)"
  if [ -n "$conductor" ]; then
    cmd=("$conductor")
  else
    run_agent="$(find_bin run-agent)"
    if [ -n "$run_agent" ]; then
      cmd=("$run_agent" serve)
    fi
  fi
fi

if [ "${#cmd[@]}" -eq 0 ]; then
  echo "start-conductor: neither 'conductor' nor 'run-agent' found beside $script_dir or on PATH" \
    "(install them with scripts/install.sh, or set CONDUCTOR_BIN / RUN_AGENT_BIN)" >&2
  exit 127
fi

cmd+=(${args[@]+"${args[@]}"})
if [ "$dry_run" -eq 1 ]; then
  printf '%q ' "${cmd[@]}" | sed 's/ $//'
  echo
  exit 0
fi
exec "${cmd[@]}"
