#!/usr/bin/env python3
"""Intake benchmark: signed real webhook deliveries through gunicorn as the Procfile runs it.

What it does (all on 127.0.0.1):

1. starts a private redis-server and the ``web`` process from the Procfile (gunicorn with
   webhook_service/gunicorn_conf.py, its default workers/threads unless WEB_CONCURRENCY /
   MERGEWAY_WEB_THREADS are set);
2. replays every fixture in tests/data/webhooks (GitHub signed with HMAC, GitLab with its token), each
   as a distinct delivery (fresh id, body varied by trailing whitespace: intake drops replayed
   bodies), from several load-generator processes over keep-alive connections;
3. prints throughput, p50/p90/p99/max latency, status counts, and the jobs found on the Redis
   queues afterwards, which must equal the number of ``queued`` answers (nothing lost);
4. repeats the same load against a trivial Flask endpoint (bench/intake_trivial.py) under the
   same gunicorn settings and prints the ratio.

The load generator is a single-threaded, non-blocking HTTP/1.1 client per process (selectors,
prebuilt requests), so most CPU goes to the server. Run: ``.venv/bin/python bench/intake.py``
(see bench/README.md for options and recorded results).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mergeway.intake.signatures import sign_github  # noqa: E402

FIXTURES = ROOT / "tests" / "data" / "webhooks"
GITHUB_SECRET = "bench-github-secret-7c1d"
GITLAB_SECRET = "bench-gitlab-token-93ab"
GITLAB_HOOKS = {"merge_request": "Merge Request Hook", "note": "Note Hook", "push": "Push Hook"}
QUEUES = ("preview", "deploy", "rollback", "help")


# ---------------------------------------------------------------------------------------------
# Requests


@dataclass
class Template:
    """A fixture; :meth:`request` makes one distinct delivery of it as raw HTTP request bytes."""

    name: str
    forge: str
    kind: str
    body: bytes
    port: int

    def request(self, delivery: str) -> bytes:
        """A delivery with its own id *and* its own body: intake drops a body it has seen (a replay).

        The body differs only by trailing JSON whitespace derived from the id, so parsing and
        payload size are the fixture's; GitHub's signature is computed for the exact bytes sent.
        """
        digest = hashlib.sha256(delivery.encode()).digest()[:8]
        body = self.body + bytes(b" \t\n\r"[(byte >> shift) & 3] for byte in digest for shift in (0, 2, 4, 6))
        common = f"Host: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        if self.forge == "github":
            head = (
                f"POST /webhooks/github HTTP/1.1\r\n{common}User-Agent: GitHub-Hookshot/bench\r\n"
                f"X-GitHub-Event: {self.kind}\r\nX-Hub-Signature-256: {sign_github(GITHUB_SECRET, body)}\r\n"
                f"X-GitHub-Delivery: {delivery}"
            )
        else:
            head = (
                f"POST /webhooks/gitlab HTTP/1.1\r\n{common}User-Agent: GitLab/bench\r\n"
                f"X-Gitlab-Event: {GITLAB_HOOKS[self.kind]}\r\nX-Gitlab-Token: {GITLAB_SECRET}\r\n"
                f"Idempotency-Key: {delivery}"
            )
        return head.encode() + b"\r\n\r\n" + body


def templates(port: int) -> list[Template]:
    out = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        forge, kind = path.parent.name, path.name.split(".", 1)[0]
        out.append(Template(f"{forge}/{path.name}", forge, kind, path.read_bytes(), port))
    return out


# ---------------------------------------------------------------------------------------------
# Load generator (one per process)


@dataclass
class Conn:
    sock: socket.socket
    out: memoryview = field(default_factory=lambda: memoryview(b""))
    inbuf: bytearray = field(default_factory=bytearray)
    started: float = 0.0


@dataclass
class ClientResult:
    latencies: list[float]
    statuses: dict[str, int]
    queued: int
    started: float
    finished: float
    cpu: float
    errors: int


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def run_client(port: int, tpls: list[Template], count: int, conns: int, tag: str, barrier: Any, results: Any) -> None:
    """Send ``count`` requests over ``conns`` keep-alive connections, one outstanding per connection."""
    sel = selectors.DefaultSelector()
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    queued = errors = 0
    next_index = 0

    # Built (and signed) before the clock starts: the load generator's CPU should go to I/O.
    prebuilt = [tpls[i % len(tpls)].request(f"{tag}-{i}") for i in range(count)]

    def start(conn: Conn) -> None:
        nonlocal next_index
        conn.out = memoryview(prebuilt[next_index])
        next_index += 1
        conn.inbuf.clear()
        conn.started = time.perf_counter()
        sel.modify(conn.sock, selectors.EVENT_WRITE, conn)

    connections = [Conn(_connect(port)) for _ in range(conns)]
    for conn in connections:
        sel.register(conn.sock, selectors.EVENT_READ, conn)
    barrier.wait()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    in_flight = 0
    for conn in connections[:count]:
        start(conn)
        in_flight += 1
    while in_flight:
        for key, events in sel.select(timeout=30):
            conn = key.data
            if events & selectors.EVENT_WRITE:
                sent = conn.sock.send(conn.out)
                conn.out = conn.out[sent:]
                if not conn.out:
                    sel.modify(conn.sock, selectors.EVENT_READ, conn)
                continue
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise RuntimeError("server closed a keep-alive connection mid-run")
            conn.inbuf += chunk
            end = conn.inbuf.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = bytes(conn.inbuf[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(conn.inbuf) < end + 4 + length:
                continue
            latencies.append(time.perf_counter() - conn.started)
            status = head[9:12].decode()
            statuses[status] = statuses.get(status, 0) + 1
            body = bytes(conn.inbuf[end + 4 : end + 4 + length])
            if status == "202" and b'"queued"' in body:
                queued += 1
            elif status[0] != "2":
                errors += 1
            if next_index < count:
                start(conn)
            else:
                in_flight -= 1
    t1 = time.perf_counter()
    results.put(ClientResult(latencies, statuses, queued, t0, t1, time.process_time() - cpu0, errors))
    for conn in connections:
        conn.sock.close()


def load(port: int, requests: int, procs: int, conns: int, run_tag: str) -> dict[str, Any]:
    tpls = templates(port)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs)
    results = ctx.Queue()
    per = [requests // procs + (1 if i < requests % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(target=run_client, args=(port, tpls, n, conns, f"{run_tag}-{i}", barrier, results))
        for i, n in enumerate(per)
    ]
    for w in workers:
        w.start()
    out: list[ClientResult] = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    latencies: list[float] = sorted(x for r in out for x in r.latencies)
    statuses: dict[str, int] = {}
    for r in out:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    elapsed = max(r.finished for r in out) - min(r.started for r in out)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "statuses": dict(sorted(statuses.items())),
        "queued": sum(r.queued for r in out),
        "errors": sum(r.errors for r in out),
        "client_cpu_s": sum(r.cpu for r in out),
        "latencies": latencies,
    }


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several rounds against the same server: totals, and percentiles over all."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    elapsed = sum(r["elapsed_s"] for r in rounds)
    statuses: dict[str, int] = {}
    for r in rounds:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "rps": len(latencies) / elapsed,
        "round_rps": [round(r["rps"]) for r in rounds],
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "statuses": dict(sorted(statuses.items())),
        "queued": sum(r["queued"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "client_cpu_s": sum(r["client_cpu_s"] for r in rounds),
        "server_cpu_s": sum(r["server_cpu_s"] for r in rounds),
    }


# ---------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def procfile_web() -> list[str]:
    """The Procfile's ``web`` command as gunicorn runs it: ``mergeway-web`` is gunicorn with this
    config module and app (:mod:`webhook_service.serve`), so another app can run under the same
    settings by swapping the last argument."""
    from webhook_service.serve import APP, CONFIG

    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == "web" and shlex.split(command)[0] == "mergeway-web":
            return [str(Path(sys.executable).parent / "gunicorn"), "-c", CONFIG, *shlex.split(command)[1:], APP]
    raise SystemExit("the Procfile's web process is not mergeway-web")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer in {timeout}s")
        time.sleep(0.05)


def process_tree_cpu(pid: int) -> float:
    """User+system CPU seconds of ``pid`` and its direct children (gunicorn master + workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Servers:
    def __init__(self, workdir: Path, env_overrides: dict[str, str]) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
            "GITLAB_WEBHOOK_SECRET": GITLAB_SECRET,
            "MERGEWAY_POLICY": "allow-all",
            "LOG_LEVEL": "INFO",
            **env_overrides,
        }

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise SystemExit("redis-server is not installed (tools/redis/ensure.sh)")
        log = (self.workdir / "redis.log").open("wb")
        args = [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        import redis

        self.redis = redis.Redis(port=self.redis_port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.redis.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def start_gunicorn(self, app: str, name: str) -> tuple[int, subprocess.Popen[bytes]]:
        port = free_port()
        argv = procfile_web()
        argv[-1] = app  # same command and config file, possibly another app
        env = {**self.env, "MERGEWAY_BIND": f"127.0.0.1:{port}", "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}"}
        env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(dir=self.workdir, prefix=f"{name}-metrics-")
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        return port, proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


# ---------------------------------------------------------------------------------------------


def measure(servers: Servers, apps: dict[str, str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Both servers up at once, measured in alternating rounds, so background load hits them alike.

    Each round sends ``requests / rounds`` deliveries to one server, then to the other (the order
    flips every round). Returns each server's combined result, with the per-round throughputs.
    """
    started = {name: servers.start_gunicorn(app, name) for name, app in apps.items()}
    for name, (port, _) in started.items():
        load(port, args.warmup, args.procs, args.conns, f"{name}-warm")
    servers.redis.flushall()
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}
    names = list(apps)
    for index in range(args.rounds):
        for name in names if index % 2 == 0 else reversed(names):
            port, proc = started[name]
            cpu0 = process_tree_cpu(proc.pid)
            result = load(port, args.requests // args.rounds, args.procs, args.conns, f"{name}-{index}")
            result["server_cpu_s"] = process_tree_cpu(proc.pid) - cpu0
            rounds[name].append(result)
    for _, proc in started.values():
        servers.stop(proc)
    return {name: combine(results) for name, results in rounds.items()}


def show(title: str, r: dict[str, Any]) -> None:
    cores = os.cpu_count() or 1
    print(f"\n== {title}")
    print(f"requests      {r['requests']}  in {r['elapsed_s']:.2f} s  ->  {r['rps']:.0f} req/s")
    print(
        f"latency ms    p50 {r['p50_ms']:.2f}  p90 {r['p90_ms']:.2f}  p99 {r['p99_ms']:.2f}  "
        f"max {r['max_ms']:.2f}  mean {r['mean_ms']:.2f}"
    )
    print(f"statuses      {r['statuses']}")
    print(f"rounds req/s  {r['round_rps']}")
    busy = (r["server_cpu_s"] + r["client_cpu_s"]) / (r["elapsed_s"] * cores) * 100
    print(
        f"cpu           server {r['server_cpu_s']:.1f} s, load generator {r['client_cpu_s']:.1f} s "
        f"(~{busy:.0f}% of {cores} cores, redis not counted)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="measured requests per run (default 20000)")
    parser.add_argument("--warmup", type=int, default=1_000, help="unmeasured requests first (default 1000)")
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--conns", type=int, default=4, help="keep-alive connections per process (default 4)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per server (default 6)")
    parser.add_argument("--skip-baseline", action="store_true", help="do not measure the trivial endpoint")
    args = parser.parse_args()
    if args.requests < 1 or args.procs < 1 or args.conns < 1 or args.rounds < 1:
        parser.error("--requests, --procs, --conns and --rounds must be positive")

    workdir = Path(tempfile.mkdtemp(prefix="mergeway-bench-intake-"))
    overrides = {k: os.environ[k] for k in ("WEB_CONCURRENCY", "MERGEWAY_WEB_THREADS") if k in os.environ}
    servers = Servers(workdir, overrides)
    report: dict[str, Any] = {
        "cores": os.cpu_count(),
        "fixtures": len(templates(0)),
        "concurrency": args.procs * args.conns,
        "gunicorn": procfile_web(),
        "overrides": overrides,
    }
    print(
        f"{report['fixtures']} fixtures, {args.requests} requests per run, concurrency "
        f"{args.procs}x{args.conns}, {report['cores']} cores, {args.rounds} alternating rounds, work dir {workdir}"
    )
    try:
        servers.start_redis()
        apps = {"web": "webhook_service:create_app()"}
        if not args.skip_baseline:
            apps["trivial"] = "intake_trivial:create_app()"
        results = measure(servers, apps, args)
        result = results["web"]
        found = sum(int(servers.redis.llen(q)) for q in QUEUES)
        result["jobs_on_queue"] = found
        report["webhooks"] = result
        show("webhooks: verify + parse + dedupe + enqueue (Procfile web)", result)
        lost = result["queued"] - found
        print(f"jobs          queued answers {result['queued']}, jobs found on the queues {found}, lost {lost}")
        ok = lost == 0 and result["errors"] == 0
        ratio = 0.0
        if not args.skip_baseline:
            base = results["trivial"]
            report["trivial"] = base
            show("baseline: trivial Flask endpoint, same gunicorn settings", base)
            per_round = [w / t for w, t in zip(result["round_rps"], base["round_rps"], strict=True)]
            ratio = statistics.median(per_round)
            report["ratio"], report["round_ratios"] = ratio, per_round
            print(
                f"\nratio         webhooks / trivial throughput = {ratio:.2f} (median of rounds "
                f"{', '.join(f'{r:.2f}' for r in per_round)}; of totals {result['rps'] / base['rps']:.2f})"
            )
        target = (args.skip_baseline or ratio >= 0.85) and result["p99_ms"] < 20 and ok
        print(
            f"target        >= 0.85 of the trivial endpoint, p99 < 20 ms, zero lost: {'MET' if target else 'MISSED'} "
            f"(ratio {ratio:.2f}, {result['rps']:.0f} req/s, p99 {result['p99_ms']:.1f} ms, lost {lost}, "
            f"errors {result['errors']}; load average {os.getloadavg()[0]:.1f})"
        )
        if args.json:
            for entry in (report.get("webhooks"), report.get("trivial")):
                if entry:
                    entry.pop("latencies", None)
            args.json.write_text(json.dumps(report, indent=2))
        return 0 if ok else 1
    finally:
        servers.stop_all()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
