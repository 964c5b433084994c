"""bench/load: a burst of pull requests across repositories, then many environments merged at once.

The real chain: forge simulator → signed webhooks → gunicorn (Procfile ``web``) → Redis → two Celery
workers (Procfile ``worker``, each ``--concurrency 1`` with its own cache directory, as two hosts
would run them, sharing one Redis) → the local cluster.

1. **Burst**: 50 PRs across 10 repositories opened within a few seconds. Each PR adds one ConfigMap
   with a name and value of its own, so its preview must show exactly that object and nothing from
   another PR or repository (checked for every PR: status "1 to add", the comment names its own
   object and none of the 49 others). Measured: open → preview comment and final status, p50/p95.
2. **Merges**: one PR per repository merged back to back: 10 environments (one namespace each)
   deploy; the environment lock serialises only the same environment, so they run side by side up
   to the workers' capacity. Measured: merge → deploy status ``success`` (which is posted after the
   rollout is healthy), p50/p95, and the largest number of deploys seen running at once.

Run: .venv/bin/python bench/load.py [--repos 10] [--prs 50] [--workers 2] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from _common import ROOT, cluster_env, kubectl, launcher
from merge_latency import free_port, procfile

sys.path.insert(0, str(ROOT))
from tools.forgesim import running

NS = "bench-load"
SECRET = "bench-secret"


def cm(name: str, value: str) -> str:
    return f'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: "{value}"\n'


def app(name: str) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n"
        f"  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
        f"    spec: {{containers: [{{name: web, image: example.com/{name}:1}}]}}\n"
    )


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    """A subprocess in its own process group: SIGTERM at the end, SIGKILL if it lingers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait(condition, timeout: float = 600.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("timed out")


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def deploy_spans(logs: list[Path]) -> list[tuple[float, float]]:
    """(start, end) of every deploy job run, from the workers' JSON logs."""
    spans, open_ = [], {}
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError, KeyError):
                record = json.loads(line)
                ts = datetime.fromisoformat(record["ts"]).timestamp()
                if record.get("msg") == "deploy job started":
                    open_[record["job_id"]] = ts
                elif record.get("msg") in ("deploy job succeeded", "deploy job failed") and record["job_id"] in open_:
                    spans.append((open_.pop(record["job_id"]), ts))
    return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=10)
    parser.add_argument("--prs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    kenv, started = cluster_env()
    work = Path(tempfile.mkdtemp(prefix="mergeway-load-"))
    namespaces = [f"{NS}-{r}" for r in range(args.repos)]
    kubectl(kenv, "delete", "namespace", *namespaces, "--ignore-not-found", "--wait=true")
    for ns in namespaces:
        kubectl(kenv, "create", "namespace", ns)
    redis_port, web_port = free_port(), free_port()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                process(
                    [
                        "redis-server",
                        "--port",
                        str(redis_port),
                        "--save",
                        "",
                        "--appendonly",
                        "yes",
                        "--dir",
                        str(work),
                    ],
                    dict(os.environ),
                    work / "redis.log",
                )
            )
            sim = stack.enter_context(running(work / "forge"))
            context = kubectl(kenv, "config", "current-context").stdout.decode().strip()
            env = {
                "PATH": os.environ["PATH"],
                "HOME": os.environ["HOME"],
                "PYTHONPATH": str(ROOT),
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "MERGEWAY_BIND": f"127.0.0.1:{web_port}",
                "MERGEWAY_FORGES": "github",
                "MERGEWAY_POLICY": "allow-all",
                "GITHUB_WEBHOOK_SECRET": SECRET,
                "GITHUB_API_URL": sim.github_api_url,
                "GITHUB_TOKEN": sim.bot_token("github"),
                "MERGEWAY_BOT_LOGINS": "mergeway-bot",
                "MERGEWAY_GITHUB_WRITE_INTERVAL_SECONDS": "0",
                "KUBECONFIG": kenv["KUBECONFIG"],
                "MERGEWAY_CLUSTERS": f"local={context}",
                "WEB_CONCURRENCY": "2",
            }
            stack.enter_context(
                process(procfile("web"), {**env, "MERGEWAY_CACHE_DIR": str(work / "cache-web")}, work / "web.log")
            )
            worker_logs = []
            for w in range(args.workers):
                log = work / f"worker-{w}.log"
                worker_logs.append(log)
                argv = [*procfile("worker"), "--concurrency", str(args.concurrency), "--hostname", f"load{w}@%h"]
                stack.enter_context(process(argv, {**env, "MERGEWAY_CACHE_DIR": str(work / f"cache-{w}")}, log))

            def web_up() -> bool:
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"http://127.0.0.1:{web_port}/readyz", timeout=2) as response,
                ):
                    return bool(response.status == 200)
                return False

            wait(web_up, timeout=60)
            wait(lambda: all("ready." in log.read_text(errors="replace") for log in worker_logs), timeout=120)
            sim.set_webhook("github", f"http://127.0.0.1:{web_port}/webhooks/github", SECRET)
            repos = []
            for r, ns in enumerate(namespaces):
                config = f"environments:\n  - {{name: prod, path: deploy, cluster: local, namespace: {ns}}}\n"
                repos.append(sim.create_repo("github", f"load/service-{r}", {".mergeway.yaml": config}))
            # Each environment starts deployed (an app and a ConfigMap), as a team's would be.
            for r, repo in enumerate(repos):
                pr = sim.open_pr(
                    repo, "bootstrap", files={"deploy/app.yaml": app(f"app-{r}"), "deploy/base.yaml": cm("base", "0")}
                )
                sim.merge(repo, pr)
            for repo in repos:
                sha = sim.head(repo)
                status = wait(
                    lambda repo=repo, sha=sha: (
                        (s := sim.latest_status(repo, sha, "mergeway/deploy/prod")) and s.state != "pending" and s
                    )
                )
                assert status.state == "success", status.description
            print(f"{len(repos)} environments deployed; opening the burst", flush=True)

            # 1. The burst.
            opened: list[tuple[object, object, str, float]] = []
            burst_started = time.monotonic()
            for i in range(args.prs):
                repo = repos[i % args.repos]
                name = f"pr-{i:02d}-r{i % args.repos}"
                t0 = time.monotonic()
                pr = sim.open_pr(repo, f"change-{i}", files={f"deploy/{name}.yaml": cm(name, f"v{i}")})
                opened.append((repo, pr, name, t0))
            burst = time.monotonic() - burst_started
            print(f"opened {args.prs} PRs across {args.repos} repositories in {burst:.1f}s", flush=True)
            names = [name for _, _, name, _ in opened]
            to_comment: list[float] = []
            pending = list(opened)
            marker = "<!-- mergeway:preview:prod -->"
            deadline = time.monotonic() + 900
            while pending and time.monotonic() < deadline:
                for item in list(pending):
                    repo, pr, name, t0 = item
                    status = sim.latest_status(repo, pr.head_sha, "mergeway/preview/prod")
                    comments = [c for c in sim.list_comments(repo, pr.number) if marker in c.body]
                    if status is None or status.state == "pending" or not comments:
                        continue
                    to_comment.append(time.monotonic() - t0)
                    pending.remove(item)
                    body = comments[0].body
                    others = [n for n in names if n != name and re.search(rf"\b{re.escape(n)}\b", body)]
                    assert len(comments) == 1, f"{name}: {len(comments)} preview comments"
                    assert status.state == "success" and status.description.startswith("1 to add"), (name, body)
                    assert name in body and not others, f"{name}'s preview shows {others}"
                time.sleep(0.1)
            assert not pending, f"{len(pending)} PRs without a preview"
            print(
                f"burst: {len(to_comment)} previews, each with exactly its own change; open → comment "
                f"p50 {statistics.median(to_comment):.1f}s  p95 {pct(to_comment, 95):.1f}s  max {max(to_comment):.1f}s",
                flush=True,
            )

            # 2. Ten environments merged at once.
            first = {}
            for repo, pr, name, _ in opened:
                first.setdefault(id(repo), (repo, pr, name))
            merges = []
            for repo, pr, name in first.values():
                t0 = time.monotonic()
                sim.merge(repo, pr)
                merges.append((repo, sim.pr(repo, pr.number).merge_commit_sha, name, t0))
            to_healthy = []
            for repo, sha, name, t0 in merges:
                status = wait(
                    lambda repo=repo, sha=sha: (
                        (s := sim.latest_status(repo, sha, "mergeway/deploy/prod")) and s.state != "pending" and s
                    ),
                    interval=0.05,
                )
                assert status.state == "success", (name, status.description)
                to_healthy.append(time.monotonic() - t0)
            for (_repo, _sha, name, _), ns in zip(merges, namespaces, strict=True):
                got = kubectl(kenv, "get", "configmap", name, "-n", ns, "-o", "jsonpath={.data.value}").stdout.decode()
                assert got == f"v{int(name[3:5])}", (name, got)
            spans = deploy_spans(worker_logs)
            print(
                f"merges: {len(merges)} environments deployed and healthy; merge → healthy "
                f"p50 {statistics.median(to_healthy):.1f}s  p95 {pct(to_healthy, 95):.1f}s  "
                f"max {max(to_healthy):.1f}s; at most {most_at_once(spans)} deploys running at once "
                f"({args.workers} workers x concurrency {args.concurrency})",
                flush=True,
            )
    finally:
        kubectl(kenv, "delete", "namespace", *namespaces, "--ignore-not-found", "--wait=false")
        if started:
            launcher().down()


if __name__ == "__main__":
    main()
