#!/usr/bin/env bash
# Benchmarks `run-agent gc` on a generated tree of runs (default 100,000) and prints the times.
#
#   scripts/bench-gc.sh [RUNS]        RUNS defaults to 100000
#   RUN_AGENT=/path/to/run-agent scripts/bench-gc.sh   use a prebuilt binary (else: cargo build --release)
#
# The tree: 10 projects x N tasks x 100 runs; 75% of runs are old completed/failed/stopped
# (deleted), the rest are recent, running, or have no run-info.yaml (kept). Needs python3.
set -euo pipefail

RUNS="${1:-100000}"
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"

if [[ -z "${RUN_AGENT:-}" ]]; then
  echo "building run-agent (release)..." >&2
  cargo build --release --quiet --manifest-path "$ROOT_DIR/Cargo.toml" --bin run-agent
  RUN_AGENT="$ROOT_DIR/target/release/run-agent"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-gc.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
TREE="$WORK/root"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

t0="$(now)"
python3 - "$TREE" "$RUNS" <<'PY'
import os, sys, datetime as dt
root, total = sys.argv[1], int(sys.argv[2])
now = dt.datetime.now(dt.timezone.utc)
def ts(days):
    return (now - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
OLD, NEW = ts(30), ts(1)
ZERO = "0001-01-01T00:00:00Z"
TEMPLATE = (
    "version: 1\nrun_id: {run}\nproject_id: {p}\ntask_id: {t}\nagent: claude\n"
    "pid: 0\npgid: 0\nstart_time: {start}\nend_time: {end}\nexit_code: {code}\n"
    "status: {status}\ncwd: /tmp\ncommandline: claude -p\nagent_version: 1.0.0\n"
)
# Per 20 runs: 15 deleted (old completed x11, failed x2, stopped x2), 5 kept.
KINDS = (["completed-old"] * 11 + ["failed-old"] * 2 + ["stopped-old"] * 2
         + ["completed-new"] * 2 + ["running"] * 2 + ["no-info"])
RUNS_PER_TASK, PROJECTS = 100, 10
tasks_per_project = max(1, -(-total // (RUNS_PER_TASK * PROJECTS)))
n = 0
for pi in range(PROJECTS):
    p = f"proj-{pi}"
    for ti in range(tasks_per_project):
        t = f"task-{ti:05d}"
        for ri in range(RUNS_PER_TASK):
            if n >= total:
                break
            run = f"20260101-0000{n:06d}-1-{ri}"
            d = os.path.join(root, p, t, "runs", run)
            os.makedirs(d)
            kind = KINDS[n % len(KINDS)]
            n += 1
            if kind == "no-info":
                continue
            status, start, end, code = {
                "completed-old": ("completed", OLD, OLD, 0),
                "failed-old": ("failed", OLD, OLD, 1),
                "stopped-old": ("stopped", OLD, OLD, -1),
                "completed-new": ("completed", NEW, NEW, 0),
                "running": ("running", OLD, ZERO, -1),
            }[kind]
            with open(os.path.join(d, "run-info.yaml"), "w") as f:
                f.write(TEMPLATE.format(run=run, p=p, t=t, start=start, end=end, code=code, status=status))
            with open(os.path.join(d, "output.md"), "w") as f:
                f.write("done\n")
print(f"generated {n} runs", file=sys.stderr)
PY
t1="$(now)"
echo "tree of $RUNS runs written in $(elapsed "$t0" "$t1") s"

sync
t0="$(now)"
"$RUN_AGENT" gc --root "$TREE" --dry-run > "$WORK/dry-run.txt"
t1="$(now)"
echo "gc --dry-run: $(elapsed "$t0" "$t1") s   ($(tail -4 "$WORK/dry-run.txt" | head -1))"

t0="$(now)"
"$RUN_AGENT" gc --root "$TREE" > "$WORK/gc.txt"
t1="$(now)"
echo "gc (deleting): $(elapsed "$t0" "$t1") s   ($(tail -4 "$WORK/gc.txt" | head -1))"

t0="$(now)"
"$RUN_AGENT" gc --root "$TREE" --quiet
t1="$(now)"
echo "gc (nothing left to delete, $(( RUNS / 4 )) runs scanned): $(elapsed "$t0" "$t1") s"
