#!/usr/bin/env bash
# Measures this project against the Go reference side by side (docs/performance.md):
# builds the release binaries, writes the synthetic trees once (1 project, 100 tasks x 100
# runs, and 1,000 x 100 for the 100k figures) under target/bench-trees, then runs both binaries
# interleaved (A B A B, at least 5 pairs per figure) and prints one table of medians and ratios.
# Exits 1 when a target is missed.
#
#   GO_RUN_AGENT=path   the reference binary (default ../shared/anchor/run-agent-go next to the
#                       checkout); set it empty, or leave the default absent, for our figures alone
#   PAIRS=n             pairs per figure (default 7, at least 5)
#   BIG=0               skip the 100k-run figures
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
command -v python3 >/dev/null || { echo "bench-compare.sh needs python3" >&2; exit 2; }

default_go="$repo/../shared/anchor/run-agent-go"
# A worktree under <work>/wt/<name> finds it two levels up.
[[ -x "$default_go" ]] || default_go="$repo/../../shared/anchor/run-agent-go"
if [[ -n "${GO_RUN_AGENT+set}" ]]; then
  go="$GO_RUN_AGENT"
  if [[ -n "$go" && ! -x "$go" ]]; then
    echo "GO_RUN_AGENT=$go is not an executable file" >&2
    exit 2
  fi
elif [[ -x "$default_go" ]]; then
  go="$default_go"
else
  go=""
fi
[[ -n "$go" ]] && go="$(cd "$(dirname "$go")" && pwd)/$(basename "$go")"

cargo build --release --quiet --bin run-agent --manifest-path "$repo/Cargo.toml"
# The generator only writes files: its dev build is enough (and skips an LTO link).
cargo build --quiet --example synthetic_tree --manifest-path "$repo/Cargo.toml"
target="${CARGO_TARGET_DIR:-$repo/target}"
trees="$target/bench-trees"
mkdir -p "$trees"
# The stamp changes when the generator does, so a stale tree is rebuilt.
stamp="$(sha256sum "$repo/benches/support/synthetic.rs" | cut -c1-16)"
tree() { # name tasks runs
  local dir="$trees/$1-$stamp"
  if [[ ! -d "$dir" ]]; then
    rm -rf "$trees/$1"-* "$dir.partial"
    "$target/debug/examples/synthetic_tree" "$dir.partial" "$2" "$3" >&2
    mv "$dir.partial" "$dir"
  fi
  echo "$dir"
}
tree10k="$(tree tree-10k 100 100)"
tree100k=""
[[ "${BIG:-1}" != 0 ]] && tree100k="$(tree tree-100k 1000 100)"

echo "ours: $target/release/run-agent ($("$target/release/run-agent" --version))"
[[ -n "$go" ]] && echo "reference: $go ($("$go" --version))" || echo "reference: none (our figures alone)"
echo "machine: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo

OURS="$target/release/run-agent" GO="$go" TREE10K="$tree10k" TREE100K="$tree100k" \
  PAIRS="${PAIRS:-7}" BIG="${BIG:-1}" exec python3 "$repo/scripts/bench_compare.py"
