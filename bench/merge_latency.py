"""bench/merge_latency: merge → all objects applied, through the whole chain, for a 20-object change.

The chain is the real one: the forge simulator merges a PR and sends the signed webhook; gunicorn
(the Procfile's web command) verifies and queues it in Redis; a Celery worker (the Procfile's
worker command) runs the deploy job against the local cluster. For each round, a PR changes all 20
ConfigMaps of the app; after its preview is done (as a reviewer would wait for it) it is merged.

Measured per round, on one clock:
  received → applied: from the web service's "queued deploy job" log record (the webhook was
                      received, verified and queued) to the moment the last of the 20 objects shows
                      its new content in the cluster (a watch);
  merge → applied:    the same, from just before the merge call (includes the simulator's git merge).

The peer: `kubectl apply --server-side` of the same 20 objects, from a checkout already on disk,
which is the floor for any tool that reacts to a merge. Run: .venv/bin/python bench/merge_latency.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from _common import BIN, ROOT, cluster_env, kubectl, launcher

sys.path.insert(0, str(ROOT))
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch

from tools.forgesim import running

OBJECTS = 20
NS = "bench-merge"


def cm(i: int, round_: int) -> str:
    return f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:02d}\ndata:\n  round: "{round_}"\n'


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def procfile(name: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            argv = shlex.split(command)
            argv[0] = sys.executable if argv[0] == "python" else str(BIN / argv[0])
            return argv
    raise LookupError(name)


class Observer:
    """Watches the namespace's ConfigMaps and records when each first shows a given round."""

    def __init__(self, api: k8s.CoreV1Api) -> None:
        self.api, self.seen, self.lock = api, {}, threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            for event in watch.Watch().stream(self.api.list_namespaced_config_map, NS, timeout_seconds=2):
                obj = event["object"]
                round_ = (obj.data or {}).get("round")
                if round_ is not None:
                    with self.lock:
                        self.seen.setdefault((obj.metadata.name, round_), time.time())

    def all_applied(self, round_: int) -> float | None:
        with self.lock:
            times = [self.seen.get((f"cm-{i:02d}", str(round_))) for i in range(OBJECTS)]
        return max(times) if all(times) else None  # type: ignore[type-var]


def wait(condition, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise TimeoutError("timed out")


def queued_times(log: Path) -> list[float]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("msg") == "queued deploy job":
                out.append(datetime.fromisoformat(record["ts"]).timestamp())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    kenv, started = cluster_env()
    kubeconfig = kenv["KUBECONFIG"]
    work = Path(tempfile.mkdtemp(prefix="mergeway-bench-"))
    kubectl(kenv, "delete", "namespace", NS, "--ignore-not-found", "--wait=true")
    kubectl(kenv, "create", "namespace", NS)
    kubectl(kenv, "delete", "namespace", f"{NS}-peer", "--ignore-not-found", "--wait=true")
    kubectl(kenv, "create", "namespace", f"{NS}-peer")
    k8s_config.load_kube_config(config_file=kubeconfig)
    api = k8s.CoreV1Api()
    redis_port, web_port = free_port(), free_port()
    received, clicked, peer = [], [], []
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                process(
                    ["redis-server", "--port", str(redis_port), "--save", "", "--dir", str(work)],
                    dict(os.environ),
                    work / "redis.log",
                )
            )
            sim = stack.enter_context(running(work / "forge"))
            context = subprocess.run(
                [str(BIN / "kubectl"), "config", "current-context"],
                env=kenv,
                text=True,
                capture_output=True,
                check=True,
            ).stdout.strip()
            env = {
                "PATH": os.environ["PATH"],
                "HOME": os.environ["HOME"],
                "PYTHONPATH": str(ROOT),
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "MERGEWAY_BIND": f"127.0.0.1:{web_port}",
                "MERGEWAY_FORGES": "github",
                "MERGEWAY_POLICY": "allow-all",
                "GITHUB_WEBHOOK_SECRET": "bench-secret",
                "GITHUB_API_URL": sim.github_api_url,
                "GITHUB_TOKEN": sim.bot_token("github"),
                "MERGEWAY_BOT_LOGINS": "mergeway-bot",
                "KUBECONFIG": kubeconfig,
                "MERGEWAY_CLUSTERS": f"local={context}",
                "MERGEWAY_CACHE_DIR": str(work / "cache"),
                "WEB_CONCURRENCY": "1",
            }
            stack.enter_context(process(procfile("web"), env, work / "web.log"))
            stack.enter_context(process([*procfile("worker"), "--concurrency", "2"], env, work / "worker.log"))
            import urllib.request

            def web_up() -> bool:
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"http://127.0.0.1:{web_port}/readyz", timeout=2) as response,
                ):
                    return bool(response.status == 200)
                return False

            wait(web_up)
            sim.set_webhook("github", f"http://127.0.0.1:{web_port}/webhooks/github", "bench-secret")
            config = f"environments:\n  - {{name: prod, path: deploy, cluster: local, namespace: {NS}}}\n"
            files = {f"deploy/cm-{i:02d}.yaml": cm(i, 0) for i in range(OBJECTS)}
            repo = sim.create_repo("github", "bench/app", {".mergeway.yaml": config, **files})
            observer = Observer(api)
            peer_dir = work / "peer"
            peer_dir.mkdir()
            for round_ in range(1, args.rounds + 1):
                pr = sim.open_pr(
                    repo, f"r{round_}", files={f"deploy/cm-{i:02d}.yaml": cm(i, round_) for i in range(OBJECTS)}
                )
                wait(
                    lambda pr=pr: (
                        (s := sim.latest_status(repo, pr.head_sha, "mergeway/preview/prod")) and s.state != "pending"
                    )
                )
                before = len(queued_times(work / "web.log"))
                t_click = time.time()
                sim.merge(repo, pr)
                t_applied = wait(lambda r=round_: observer.all_applied(r))
                t_queued = wait(lambda b=before: (q := queued_times(work / "web.log")) and len(q) > b and q[-1])
                received.append(t_applied - t_queued)
                clicked.append(t_applied - t_click)
                merged = sim.pr(repo, pr.number).merge_commit_sha
                wait(
                    lambda m=merged: (s := sim.latest_status(repo, m, "mergeway/deploy/prod")) and s.state != "pending"
                )
                # The peer: the same 20 objects, already on disk, applied by kubectl into its own namespace.
                for i in range(OBJECTS):
                    (peer_dir / f"cm-{i:02d}.yaml").write_text(cm(i, round_))
                began = time.perf_counter()
                kubectl(kenv, "apply", "--server-side", "-n", f"{NS}-peer", "-f", str(peer_dir))
                peer.append(time.perf_counter() - began)
                print(
                    f"round {round_:>2}: received→applied {received[-1] * 1000:6.0f} ms, "
                    f"merge→applied {clicked[-1] * 1000:6.0f} ms, kubectl apply {peer[-1] * 1000:5.0f} ms",
                    flush=True,
                )
            observer.stop.set()
    finally:
        kubectl(kenv, "delete", "namespace", NS, f"{NS}-peer", "--ignore-not-found", "--wait=false")
        if started:
            launcher().down()

    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]

    print(f"\nrounds: {len(received)}, objects per change: {OBJECTS}")
    print(
        f"received→applied  p50 {statistics.median(received):.3f}s  p90 {q(received, 90):.3f}s  "
        f"max {max(received):.3f}s"
    )
    print(
        f"merge→applied     p50 {statistics.median(clicked):.3f}s  p90 {q(clicked, 90):.3f}s  max {max(clicked):.3f}s"
    )
    print(
        f"kubectl apply --server-side of the same objects (peer, from disk): p50 {statistics.median(peer):.3f}s; "
        f"ratio received→applied / kubectl {statistics.median(received) / statistics.median(peer):.2f}"
    )


if __name__ == "__main__":
    main()
