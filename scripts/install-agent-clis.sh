#!/usr/bin/env bash
# Installs the real agent CLIs (Claude Code, Codex, Gemini CLI) at the versions pinned in
# tests/agents/package.json + package-lock.json into tests/agents/node_modules, for the
# contract tests in tests/e2e/real_agents.rs. Needs Node.js >= 20 and npm. Run by .ci/run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../tests/agents"

if ! command -v npm >/dev/null 2>&1; then
  echo "install-agent-clis: npm not found; install Node.js >= 20 with npm" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
for cli in claude codex gemini; do
  printf '%s: %s\n' "$cli" "$(node_modules/.bin/$cli --version 2>&1 | tail -n 1)"
done
