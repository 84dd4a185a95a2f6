#!/usr/bin/env bash
# Times N sequential `run-agent bus post` invocations (one process per post, as agents do)
# against a scratch bus and prints posts/s. Usage: scripts/bench-cli.sh [N] [path/to/run-agent]
# Without a binary path it builds and uses target/release/run-agent.
set -euo pipefail

n="${1:-1000}"
bin="${2:-}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "$bin" ]]; then
  cargo build --release --quiet --bin run-agent --manifest-path "$repo/Cargo.toml"
  bin="$repo/target/release/run-agent"
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export HOME="$scratch" CONDUCTOR_ROOT="$scratch/root"
unset CONDUCTOR_CONFIG JRUN_MESSAGE_BUS JRUN_PROJECT_ID JRUN_TASK_ID JRUN_ID

# One warm-up post (creates the directories).
"$bin" bus post --project bench --task task-bench --type INFO --body warmup >/dev/null </dev/null

start=$(date +%s%N)
for ((i = 0; i < n; i++)); do
  "$bin" bus post --project bench --task task-bench --type PROGRESS \
    --body "progress update $i: compiled the storage module" >/dev/null </dev/null
done
end=$(date +%s%N)

bus="$scratch/root/bench/task-bench/TASK-MESSAGE-BUS.md"
count=$("$bin" bus read --project bench --task task-bench --tail 0 --json </dev/null | wc -l)
if [[ "$count" -ne $((n + 1)) ]]; then
  echo "expected $((n + 1)) messages in $bus, found $count" >&2
  exit 1
fi
elapsed_ns=$((end - start))
awk -v n="$n" -v ns="$elapsed_ns" 'BEGIN {
  s = ns / 1e9
  printf "%d sequential `run-agent bus post` runs in %.2f s: %.0f posts/s (%.2f ms per post)\n", n, s, n / s, 1000 * s / n
}'

# Baseline: the cost of starting the binary at all (`--version`), to separate process start-up
# from the work of a post.
m=$(( n / 10 > 0 ? n / 10 : 1 ))
start=$(date +%s%N)
for ((i = 0; i < m; i++)); do
  "$bin" --version >/dev/null </dev/null
done
end=$(date +%s%N)
awk -v n="$m" -v ns="$((end - start))" 'BEGIN {
  printf "baseline: `run-agent --version` takes %.2f ms per process (%d runs)\n", ns / 1e6 / n, n
}'
