#!/usr/bin/env python3
"""Side-by-side figures for docs/performance.md (driven by scripts/bench-compare.sh).

Every figure is measured interleaved (A B A B ...), at least PAIRS pairs, and reported as the
median of each side; `x` is how many times faster ours is (reference median / our median).
A figure whose target is missed makes the exit status 1. Without a reference binary only our
figures are measured.

Environment: OURS (our run-agent), GO (reference binary or empty), TREE10K, TREE100K (synthetic
roots), EMPTY (an empty scratch dir), PAIRS (default 7), BIG (0 skips the 100k figures).
"""

import http.client
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time

OURS = os.environ["OURS"]
GO = os.environ.get("GO") or None
TREE10K = os.environ["TREE10K"]
TREE100K = os.environ.get("TREE100K")
PAIRS = max(5, int(os.environ.get("PAIRS", "7")))
BIG = os.environ.get("BIG", "1") != "0" and TREE100K
PROJECT = "bench"
TASK = "task-20260101-000000-bench-0007"

rows = []
missed = []
scratch = tempfile.mkdtemp(prefix="bench-compare-")
env = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": scratch,
    "LANG": "C",
}


def ms(seconds):
    return seconds * 1000.0


def spawn_wait(argv):
    """Wall time of one process from spawn to exit (stdout/stderr discarded)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    actions = [
        (os.POSIX_SPAWN_DUP2, devnull, 0),
        (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2),
    ]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed (status {status})")
    return elapsed


def median_ms(samples):
    return ms(statistics.median(samples))


def record(figure, go, ours, target, ok, note=""):
    ratio = f"{go / ours:.1f}x" if go is not None and ours > 0 else "-"
    go_text = f"{go:.2f}" if go is not None else "-"
    rows.append((figure, go_text, f"{ours:.2f}", ratio, target, "ok" if ok else "MISSED", note))
    if not ok:
        missed.append(figure)


def interleave(a, b, pairs=PAIRS):
    """Runs a() and b() alternately; returns their sample lists (b may be None)."""
    sa, sb = [], []
    for _ in range(pairs):
        sa.append(a())
        if b is not None:
            sb.append(b())
    return sa, sb


def process_figure(figure, ours_argv, go_argv, limit_ms, target, baseline=None):
    ours, go = interleave(
        lambda: spawn_wait(ours_argv),
        (lambda: spawn_wait(go_argv)) if GO and go_argv else None,
    )
    ours_ms = median_ms(ours)
    go_ms = median_ms(go) if go else None
    if baseline is not None:
        ok = ours_ms - baseline <= limit_ms
        note = f"{ours_ms - baseline:.2f} ms above /bin/true"
    else:
        ok = ours_ms <= limit_ms
        note = ""
    record(figure, go_ms, ours_ms, target, ok, note)
    return ours_ms, go_ms


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process on a free loopback port."""

    def __init__(self, kind, root):
        self.kind = kind
        self.port = free_port()
        binary = OURS if kind == "ours" else GO
        self.argv = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--root", root]
        if kind == "go":
            self.argv += ["--disable-task-start"]
        self.health = "/healthz" if kind == "ours" else "/api/v1/health"
        self.conn = None

    def start(self):
        """Spawns the server; returns seconds until its first healthy answer."""
        devnull = os.open(os.devnull, os.O_RDWR)
        actions = [(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)]
        start = time.perf_counter()
        self.pid = os.posix_spawn(self.argv[0], self.argv, env, file_actions=actions)
        os.close(devnull)
        deadline = start + 30
        while time.perf_counter() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", self.health)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    elapsed = time.perf_counter() - start
                    self.conn = conn
                    return elapsed
                conn.close()
            except OSError:
                pass
            time.sleep(0.0002)
        self.stop()
        raise SystemExit(f"{self.kind} server did not become healthy: {self.argv}")

    def get(self, path):
        """(seconds, status, body) of one GET on the kept-alive connection."""
        start = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        return time.perf_counter() - start, response.status, body

    def rss_mb(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def wait_indexed(self):
        """Ours only: seconds until /api/v1/status reports the run index ready."""
        start = time.perf_counter()
        while time.perf_counter() - start < 60:
            _, status, body = self.get("/api/v1/status")
            if status == 200 and json.loads(body).get("index", {}).get("state") == "ready":
                return time.perf_counter() - start
            time.sleep(0.001)
        raise SystemExit("the run index did not become ready within 60 s")

    def stop(self):
        if self.conn:
            self.conn.close()
        try:
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def start_figure(figure, root, limit_ms, target):
    def one(kind):
        server = Server(kind, root)
        try:
            return server.start()
        finally:
            server.stop()

    ours, go = interleave(lambda: one("ours"), (lambda: one("go")) if GO else None, pairs=PAIRS)
    record(figure, median_ms(go) if go else None, median_ms(ours), target, median_ms(ours) <= limit_ms)


def route_figure(figure, servers, ours_path, go_path, limit_ms, target, pairs=PAIRS * 3):
    ours_server, go_server = servers

    def timed(server, path):
        seconds, status, body = server.get(path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
        return seconds

    ours, go = interleave(
        lambda: timed(ours_server, ours_path),
        (lambda: timed(go_server, go_path)) if go_server and go_path else None,
        pairs=pairs,
    )
    record(figure, median_ms(go) if go else None, median_ms(ours), target, median_ms(ours) <= limit_ms)


SSE_RUN = "20260101-0000000000-1-1"
SSE_LINES = 40


def sse_root():
    """A root with one `running` run (this process is its agent) and an empty stdout."""
    root = os.path.join(scratch, "sse-root")
    run_dir = os.path.join(root, PROJECT, "task-sse", "runs", SSE_RUN)
    os.makedirs(run_dir)
    pid = os.getpid()
    with open(os.path.join(run_dir, "run-info.yaml"), "w") as f:
        f.write(
            f"version: 1\nrun_id: {SSE_RUN}\nproject_id: {PROJECT}\ntask_id: task-sse\n"
            f"agent: claude\npid: {pid}\npgid: {pid}\nstart_time: 2026-01-01T00:00:00Z\n"
            f"status: running\nstdout_path: {run_dir}/agent-stdout.txt\n"
            f"stderr_path: {run_dir}/agent-stderr.txt\n"
        )
    for name in ("agent-stdout.txt", "agent-stderr.txt"):
        open(os.path.join(run_dir, name), "w").close()
    return root, os.path.join(run_dir, "agent-stdout.txt")


def sse_latencies(server, stdout_path):
    """Seconds from appending a line to the run's stdout to receiving it on the SSE stream."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(f"GET /api/v1/runs/{SSE_RUN}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    buffer = b""

    def wait_for(marker):
        nonlocal buffer
        while marker not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit(f"{server.kind}: the SSE stream ended early")
            buffer += chunk
        buffer = buffer[buffer.index(marker) + len(marker):]

    samples = []
    try:
        # The stream is set up once a line arrives (a polling server may start at the end of
        # the file as it is when it first looks: write until one comes through).
        sock.settimeout(0.2)
        deadline = time.perf_counter() + 15
        while b"warm-up" not in buffer:
            if time.perf_counter() > deadline:
                raise SystemExit(f"{server.kind}: no line came through the SSE stream")
            with open(stdout_path, "a") as out:
                out.write("warm-up\n")
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise SystemExit(f"{server.kind}: the SSE stream ended early")
            buffer += chunk
        buffer = buffer[buffer.rindex(b"warm-up") + len(b"warm-up"):]
        sock.settimeout(10)
        for i in range(SSE_LINES):
            marker = f"sse-line-{server.kind}-{i}-{time.time_ns()}".encode()
            time.sleep(0.02)
            start = time.perf_counter()
            with open(stdout_path, "ab") as out:
                out.write(marker + b"\n")
            wait_for(marker)
            samples.append(time.perf_counter() - start)
    finally:
        sock.close()
    return samples


def sse_figure():
    """SSE log latency median and p99, ours and the reference's (each on its own root)."""
    results = {}
    for kind in ["ours"] + (["go"] if GO else []):
        root, stdout_path = sse_root() if kind == "ours" else sse_root_for_go()
        server = Server(kind, root)
        server.start()
        try:
            if kind == "ours":
                server.wait_indexed()
            results[kind] = sorted(sse_latencies(server, stdout_path))
        except (OSError, SystemExit) as err:
            if kind == "ours":
                raise
            print(f"reference SSE stream not measured: {err}", file=sys.stderr)
        finally:
            server.stop()
    ours = results["ours"]
    go = results.get("go")
    p99 = lambda xs: xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    record("SSE log latency, median", median_ms(go) if go else None, median_ms(ours), "<= 1 ms",
           median_ms(ours) <= 1)
    record("SSE log latency, p99", ms(p99(go)) if go else None, ms(p99(ours)), "<= 3 ms",
           ms(p99(ours)) <= 3)


def sse_root_for_go():
    """The same running run under a fresh root for the reference server."""
    global scratch
    old = scratch
    scratch = tempfile.mkdtemp(prefix="bench-compare-go-", dir=old)
    try:
        return sse_root()
    finally:
        scratch = old


def page_all_runs(server):
    """Ours: pages through every run (1000 per page); returns how many were listed."""
    count, cursor = 0, None
    while True:
        path = "/api/v1/runs?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        _, status, body = server.get(path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
        page = json.loads(body)
        count += len(page["runs"])
        cursor = page.get("next_cursor")
        if not cursor:
            return count


def main():
    true_bin = "/bin/true"
    baseline, _ = interleave(lambda: spawn_wait([true_bin]), None, pairs=PAIRS * 3)
    baseline_ms = median_ms(baseline)
    rows.append(("/bin/true (harness floor)", "-", f"{baseline_ms:.2f}", "-", "-", "-", ""))
    version, _ = interleave(lambda: spawn_wait([OURS, "--version"]), None, pairs=PAIRS * 3)
    version_ms = median_ms(version)
    record("run-agent --version", None, version_ms, "<= 0.3 ms above /bin/true",
           version_ms - baseline_ms <= 0.3, f"{version_ms - baseline_ms:.2f} ms above /bin/true")

    bus_root = os.path.join(scratch, "bus-root")
    os.makedirs(os.path.join(bus_root, PROJECT, "task-bus"))
    post = ["bus", "post", "--root", bus_root, "--project", PROJECT, "--task", "task-bus",
            "--type", "PROGRESS", "--body", "progress update: compiled the storage module"]
    ours, go = interleave(lambda: spawn_wait([OURS] + post),
                          (lambda: spawn_wait([GO] + post)) if GO else None, pairs=PAIRS * 3)
    ours_ms = median_ms(ours)
    go_ms = median_ms(go) if go else None
    fast_enough = ours_ms <= 0.85 and (go_ms is None or go_ms >= 3 * ours_ms)
    record("one bus post process", go_ms, ours_ms, "<= 0.85 ms and >= 3x Go", fast_enough)

    listing = ["list", "--root", TREE10K, "--project", PROJECT]
    process_figure("list --project (10k runs)", [OURS] + listing, [GO] + listing if GO else None,
                   10, "<= 10 ms")

    empty = os.path.join(scratch, "empty-root")
    os.makedirs(empty)
    start_figure("serve -> healthy, empty root", empty, 5, "<= 5 ms")
    start_figure("serve -> healthy, 10k-run root", TREE10K, 10, "<= 10 ms")

    # Idle RSS: a server on an empty root.
    idle = Server("ours", empty)
    idle.start()
    time.sleep(0.3)
    ours_idle = idle.rss_mb()
    idle.stop()
    go_idle = None
    if GO:
        g = Server("go", empty)
        g.start()
        time.sleep(0.3)
        go_idle = g.rss_mb()
        g.stop()
    record("server idle RSS (MB)", go_idle, ours_idle, "<= 6 MB", ours_idle <= 6)

    sse_figure()

    ours_server = Server("ours", TREE10K)
    ours_server.start()
    go_server = None
    if GO:
        go_server = Server("go", TREE10K)
        go_server.start()
    try:
        ready = ours_server.wait_indexed()
        rows.append(("index ready after healthy, 10k (ours)", "-", f"{ms(ready):.2f}", "-", "-", "-", ""))
        first, status, _ = ours_server.get(f"/api/v1/projects/{PROJECT}/tasks")
        go_first = None
        if go_server:
            go_first, _, _ = go_server.get(f"/api/projects/{PROJECT}/tasks")
        record("GET tasks of project, first call (10k)", ms(go_first) if go_first else None, ms(first),
               "<= 30 ms", status == 200 and ms(first) <= 30)
        route_figure("GET tasks of project, warm (10k)", (ours_server, go_server),
                     f"/api/v1/projects/{PROJECT}/tasks", f"/api/projects/{PROJECT}/tasks", 2, "<= 2 ms")
        route_figure("GET one task with 100 runs", (ours_server, go_server),
                     f"/api/v1/projects/{PROJECT}/tasks/{TASK}", f"/api/projects/{PROJECT}/tasks/{TASK}",
                     1, "<= 1 ms")
        route_figure("GET /api/v1/status (10k)", (ours_server, None), "/api/v1/status", None, 2, "<= 2 ms")
        listed = page_all_runs(ours_server)
        if listed != 10_000:
            raise SystemExit(f"paging /api/v1/runs listed {listed} runs, expected 10000")
        if go_server:
            go_server.get("/api/v1/runs")
        ours_rss = ours_server.rss_mb()
        go_rss = go_server.rss_mb() if go_server else None
        record("server RSS after listing 10k runs (MB)", go_rss, ours_rss, "<= 20 MB", ours_rss <= 20)
    finally:
        ours_server.stop()
        if go_server:
            go_server.stop()

    if BIG:
        big_list = ["list", "--root", TREE100K, "--project", PROJECT]
        process_figure("list --project (100k runs)", [OURS] + big_list, None, 30, "<= 30 ms")
        gc = [OURS, "gc", "--root", TREE100K, "--dry-run", "--older-than", "1h", "--quiet"]
        samples, _ = interleave(lambda: spawn_wait(gc), None, pairs=5)
        record("gc --dry-run (100k runs)", None, median_ms(samples), "<= 1500 ms", median_ms(samples) <= 1500)
        big = Server("ours", TREE100K)
        healthy = big.start()
        try:
            record("serve -> healthy, 100k-run root", None, ms(healthy), "<= 10 ms", ms(healthy) <= 10)
            ready = big.wait_indexed()
            record("index build in background (100k)", None, ms(ready), "<= 1000 ms", ms(ready) <= 1000)
            record("server RSS with 100k runs indexed (MB)", None, big.rss_mb(), "<= 100 MB", big.rss_mb() <= 100)
            route_figure("GET tasks of project (100k, 1000 tasks)", (big, None),
                         f"/api/v1/projects/{PROJECT}/tasks", None, 10, "<= 10 ms")
            route_figure("GET /api/v1/runs?limit=100 (100k)", (big, None), "/api/v1/runs?limit=100", None,
                         10, "<= 10 ms")
            route_figure("GET /api/v1/projects (100k)", (big, None), "/api/v1/projects", None, 10, "<= 10 ms")
            route_figure("GET /api/v1/status (100k)", (big, None), "/api/v1/status", None, 2, "<= 2 ms")
            route_figure("GET one task (100k tree)", (big, None), f"/api/v1/projects/{PROJECT}/tasks/{TASK}",
                         None, 1, "<= 1 ms")
        finally:
            big.stop()

    header = ("figure (ms unless noted)", "Go ref", "ours", "x faster", "target", "", "note")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print(f"\n{PAIRS} pairs per figure (x3 for sub-millisecond ones), medians; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus.")
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)
