"""`make demo`: Mergeway's whole job, end to end, on built-in defaults, on this machine.

Real parts: the local Kubernetes cluster, Redis, git, gunicorn running the web service and a Celery
worker (the Procfile's commands). The forge is the simulator from tools/forgesim (GitHub cannot be
reached from here); it speaks GitHub's REST API and sends signed webhooks exactly as GitHub would.

The story: a developer opens a PR adding the guestbook app, Mergeway previews it; they push a change
and the same comment updates; they merge and Mergeway deploys it; someone comments `/rollback`, and
merging the revert PR removes the app again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.cluster import localcluster  # noqa: E402
from tools.forgesim import ForgeSim, SimRepo, running  # noqa: E402

GUESTBOOK = ROOT.parent / "shared" / "manifests" / "kubernetes-examples" / "web" / "guestbook"
NAMESPACE = "mergeway-demo"
T = TypeVar("T")


def say(text: str) -> None:
    print(f"\n\033[1m▶ {text}\033[0m" if sys.stdout.isatty() else f"\n> {text}", flush=True)


def wait(condition: Callable[[], T | None], what: str, timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"demo: timed out waiting for {what}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def procfile(name: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            argv = shlex.split(command)
            exe = Path(sys.executable).parent / argv[0]
            argv[0] = sys.executable if argv[0] == "python" else str(exe)
            return argv
    raise LookupError(name)


def comment(sim: ForgeSim, repo: SimRepo, number: int, marker: str) -> str:
    found = [c.body for c in sim.list_comments(repo, number) if marker in c.body]
    return found[-1] if found else ""


def final_status(sim: ForgeSim, repo: SimRepo, sha: str, context: str) -> str:
    def check() -> str | None:
        status = sim.latest_status(repo, sha, context)
        return f"{status.state}: {status.description}" if status and status.state != "pending" else None

    return wait(check, f"{context} on {sha[:12]}")


def show(body: str, limit: int = 60) -> None:
    lines = [line for line in body.splitlines() if not line.startswith("<!--")]
    print("\n".join("    " + line for line in lines[:limit]))
    if len(lines) > limit:
        print(f"    … ({len(lines) - limit} more lines)")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mergeway-demo-"))
    cluster = localcluster
    say("Starting the local Kubernetes cluster (built once, then cached)")
    kubeconfig, started = cluster.ensure_up(owner_pid=os.getpid())
    kubectl = str(Path(sys.executable).parent / "kubectl")
    kenv = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    subprocess.run(
        [kubectl, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true"],
        env=kenv,
        capture_output=True,
        timeout=120,
    )
    subprocess.run([kubectl, "create", "namespace", NAMESPACE], env=kenv, capture_output=True, timeout=60, check=True)
    redis_port, web_port = free_port(), free_port()
    secret = secrets.token_hex(16)
    try:
        with contextlib.ExitStack() as stack:
            say(f"Starting Redis, the forge simulator, the web service and a worker (logs in {work})")
            stack.enter_context(
                process(
                    [
                        shutil.which("redis-server") or "redis-server",
                        "--port",
                        str(redis_port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--dir",
                        str(work),
                    ],
                    dict(os.environ),
                    work / "redis.log",
                )
            )
            sim = stack.enter_context(running(work / "forge"))
            context = subprocess.run(
                [kubectl, "config", "current-context"], env=kenv, capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", ""),
                "PYTHONPATH": str(ROOT),
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "MERGEWAY_BIND": f"127.0.0.1:{web_port}",
                "MERGEWAY_FORGES": "github",
                "MERGEWAY_POLICY": "allow-all",
                "GITHUB_WEBHOOK_SECRET": secret,
                "GITHUB_API_URL": sim.github_api_url,
                "GITHUB_TOKEN": sim.bot_token("github"),
                "MERGEWAY_BOT_LOGINS": "mergeway-bot",
                "KUBECONFIG": str(kubeconfig),
                "MERGEWAY_CLUSTERS": f"local={context}",
                "MERGEWAY_CACHE_DIR": str(work / "cache"),
                "MERGEWAY_GITHUB_WRITE_INTERVAL_SECONDS": "0",
                "MERGEWAY_HEALTH_TIMEOUT_SECONDS": "120",
                "WEB_CONCURRENCY": "1",
            }
            stack.enter_context(process(procfile("web"), env, work / "web.log"))
            stack.enter_context(process([*procfile("worker"), "--concurrency", "2"], env, work / "worker.log"))
            import urllib.request

            def web_up() -> bool:
                url = f"http://127.0.0.1:{web_port}/readyz"
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                    return bool(response.status == 200)
                return False

            wait(web_up, "the web service")
            sim.set_webhook("github", f"http://127.0.0.1:{web_port}/webhooks/github", secret)

            config = (
                f"environments:\n  - name: staging\n    path: deploy\n    cluster: local\n    namespace: {NAMESPACE}\n"
            )
            repo = sim.create_repo("github", "demo/shop", {".mergeway.yaml": config, "README.md": "# shop\n"})
            sim.set_permission(repo, "alice", "write")
            files = {f"deploy/{p.name}": p.read_text() for p in sorted(GUESTBOOK.glob("*.yaml"))}

            say("alice opens a pull request adding the guestbook app")
            pr = sim.open_pr(repo, "add-guestbook", files=files, title="Add the guestbook", author="alice")
            print("  status:", final_status(sim, repo, pr.head_sha, "mergeway/preview/staging"))
            show(comment(sim, repo, pr.number, "mergeway:preview:staging"), 20)

            say("alice pushes a change: 5 frontend replicas and a new image; the same comment is edited")
            frontend = (GUESTBOOK / "frontend-deployment.yaml").read_text()
            frontend = frontend.replace("replicas: 3", "replicas: 5").replace("gb-frontend:v5", "gb-frontend:v6")
            sha = sim.push(repo, pr, {"deploy/frontend-deployment.yaml": frontend})
            print("  status:", final_status(sim, repo, sha, "mergeway/preview/staging"))
            print(
                "  preview comments on the PR:",
                sum("mergeway:preview:staging" in c.body for c in sim.list_comments(repo, pr.number)),
            )

            say("alice merges: Mergeway applies it and waits for the rollout")
            sim.merge(repo, pr, by="alice")
            merge_sha = sim.pr(repo, pr.number).merge_commit_sha or ""
            print("  status:", final_status(sim, repo, merge_sha, "mergeway/deploy/staging"))
            show(comment(sim, repo, pr.number, "mergeway:deploy:staging"), 12)
            print(
                subprocess.run(
                    [kubectl, "get", "deployments", "-n", NAMESPACE],
                    env=kenv,
                    capture_output=True,
                    text=True,
                    timeout=60,
                ).stdout
            )

            say("alice comments /rollback on the merged PR: Mergeway opens a revert PR")
            sim.comment(repo, pr, "/rollback", author="alice")
            revert = wait(
                lambda: next((p for p in sim.list_prs(repo) if p.head_ref.startswith("mergeway/revert-")), None),
                "the revert PR",
            )
            print(f"  opened #{revert.number}: {revert.title}")
            show(comment(sim, repo, pr.number, "mergeway:rollback"), 6)

            say("merging the revert PR deploys the previous state (the app is pruned)")
            print("  preview:", final_status(sim, repo, revert.head_sha, "mergeway/preview/staging"))
            sim.merge(repo, revert, by="alice")
            revert_sha = sim.pr(repo, revert.number).merge_commit_sha or ""
            print("  status:", final_status(sim, repo, revert_sha, "mergeway/deploy/staging"))
            left = subprocess.run(
                [kubectl, "get", "deployments,services", "-n", NAMESPACE, "-o", "name"],
                env=kenv,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.split()
            print(f"  objects left in {NAMESPACE}: {left or 'none'}")
            say("Done: preview, in-place update, deploy, rollback by revert — Git stayed the source of truth.")
    finally:
        subprocess.run(
            [kubectl, "delete", "namespace", NAMESPACE, "--wait=false"], env=kenv, capture_output=True, timeout=60
        )
        if started:
            cluster.down()


if __name__ == "__main__":
    main()
