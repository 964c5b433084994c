"""`make demo`: the GitOps story Mergeway exists for, end to end, on built-in defaults, on this machine.

1. The guestbook goes live through a first reviewed and merged pull request.
2. alice scales the frontend from 3 to 6 replicas; the preview shows exactly that; bob approves and
   merges; Mergeway deploys it and the Deployment reports 6/6 ready.
3. alice ships an image that crashes; the preview is green (the manifest is valid), the rollout fails
   after the merge, and Mergeway says which Deployment failed and how to get back.
4. alice comments `/rollback`; the revert pull request previews the image going back; merging it
   deploys the last good state. Git's history holds every step.
5. A summary: what happened, how long each step took, where the logs are.

Real parts: the local Kubernetes cluster (real control plane, KWOK-simulated nodes: the crash is a
pod-template annotation KWOK's stages react to, see tools/cluster/README.md), Redis, git, gunicorn
running the web service and a Celery worker (the Procfile's commands). The forge is the simulator in
tools/forgesim (GitHub cannot be reached from here); it speaks GitHub's REST API and sends signed
webhooks as GitHub does; bob's approval goes through its pull request review API.

The story is a list of step functions (:data:`STORY`) run by :func:`run_story`, each returning an
:class:`Outcome` with the facts it proved, so ``tests/demo/test_demo_story.py`` runs this very story
and asserts on them. Any step that does not reach its expected state stops the story with the reason,
and ``make demo`` exits 1.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.cluster import localcluster  # noqa: E402
from tools.forgesim import ForgeSim, SimPR, SimRepo, SimStatus, running  # noqa: E402

GUESTBOOK = ROOT / "tools" / "guestbook"
NAMESPACE = "mergeway-demo"
ENV = "staging"
PREVIEW, DEPLOY = f"mergeway/preview/{ENV}", f"mergeway/deploy/{ENV}"
GOOD_IMAGE = "gcr.io/google-samples/gb-frontend:v5"
BAD_IMAGE = "gcr.io/google-samples/gb-frontend:v6"
#: The pod-template annotation that makes KWOK report the new pods as crashing (tools/cluster/README.md).
CRASH = "mergeway.test/simulate: crash"
#: Kept after the run (the temporary directory is removed); replaced by the next run.
LOGS = Path(os.environ.get("MERGEWAY_DEMO_LOGS") or Path.home() / ".cache" / "mergeway" / "demo-logs")
LOG_FILES = ("story.log", "web.log", "worker.log", "redis.log", "forge.log")
WAIT_SECONDS = 90.0
T = TypeVar("T")


class StepFailed(Exception):
    """A step did not reach its expected state; the message says what was expected and what happened."""


@dataclass
class Outcome:
    """What one step proved (``facts``, which the test asserts on), or why it failed."""

    key: str
    title: str
    ok: bool
    seconds: float
    reason: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Demo:
    """The running stack and the story's state, passed from step to step."""

    sim: ForgeSim
    repo: SimRepo
    namespace: str
    kubeconfig: Path
    logs: Path
    write: Callable[[str], None]
    #: Process ids of Redis, the web service and the worker (all stopped when the stack closes).
    pids: list[int] = field(default_factory=list)
    prs: dict[str, SimPR] = field(default_factory=dict)
    #: How long the stack took to come up (cluster, Redis, forge, web, worker).
    setup_seconds: float = 0.0

    # -- narration --------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A narrator's line: what a person does or sees next."""
        self.write(f"  {text}")

    def show(self, lines: list[str], prefix: str = "    │ ") -> None:
        """Quoted evidence: a comment excerpt or a command's output, verbatim."""
        for line in lines:
            self.write(f"{prefix}{line}".rstrip())

    # -- the cluster ------------------------------------------------------------------------------

    def kubectl(self, *args: str, show: bool = True) -> str:
        """Run kubectl against the demo namespace, print the command and its output like a terminal."""
        argv = [str(Path(sys.executable).parent / "kubectl"), "-n", self.namespace, *args]
        proc = subprocess.run(
            argv,
            env={
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", ""),
                "KUBECONFIG": str(self.kubeconfig),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise StepFailed(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        if show:
            self.write(f"    $ kubectl {' '.join(args)} -n {self.namespace}")
            self.show(proc.stdout.rstrip().splitlines())
        return proc.stdout

    def deployment(self, name: str) -> dict[str, str]:
        """``kubectl get deployment NAME -o wide``, shown, as {column: value}."""
        rows = table(self.kubectl("get", "deployment", name, "-o", "wide"))
        if len(rows) != 1:
            raise StepFailed(f"expected one Deployment {name}, kubectl showed {len(rows)}")
        return rows[0]

    # -- the forge --------------------------------------------------------------------------------

    def final_status(self, sha: str, context: str) -> SimStatus:
        def final() -> SimStatus | None:
            status = self.sim.latest_status(self.repo, sha, context)
            return status if status is not None and status.state != "pending" else None

        return wait(final, f"a final {context} status on {sha[:12]}")

    def comment(self, number: int, kind: str) -> str:
        """The body of Mergeway's ``kind`` comment (preview, deploy, rollback) on PR ``number``."""
        mark = f"<!-- mergeway:{kind}"
        found = [c.body for c in self.sim.list_comments(self.repo, number) if mark in c.body]
        if not found:
            raise StepFailed(f"no {kind} comment on #{number}")
        return found[-1]

    def merge(self, pr: SimPR, by: str) -> str:
        """Press the merge button as ``by``; returns the merge commit."""
        self.sim.merge(self.repo, pr, by=by)
        sha = self.sim.pr(self.repo, pr.number).merge_commit_sha
        if not sha:
            raise StepFailed(f"#{pr.number} has no merge commit")
        self.say(f"{by} merges #{pr.number} ({sha[:12]}).")
        return sha

    def approve(self, pr: SimPR, by: str, body: str) -> dict[str, Any]:
        """``by`` approves in the forge, through GitHub's review API (as the web UI does)."""
        from github import Auth, Github

        client = Github(base_url=self.sim.github_api_url, auth=Auth.Token(self.sim.token_for("github", by)))
        pull = client.get_repo(self.repo.full_name).get_pull(pr.number)
        review = pull.create_review(body=body, event="APPROVE")
        reviews = [(r.user.login, r.state) for r in pull.get_reviews()]
        client.close()
        self.say(f"{by} reviews #{pr.number} in the forge: {review.state} on {review.commit_id[:12]} — “{body}”")
        if (by, "APPROVED") not in reviews:
            raise StepFailed(f"the forge does not list {by}'s approval of #{pr.number}: {reviews}")
        return {"by": by, "state": review.state, "commit": review.commit_id}


# -- helpers ----------------------------------------------------------------------------------------


def wait(condition: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS) -> T:
    """Poll ``condition`` until it returns something truthy; a timeout fails the step, naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise StepFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def table(text: str) -> list[dict[str, str]]:
    """kubectl's table output as rows of {column: value}, cut at the header's column offsets."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    names = lines[0].split()
    bounds = [*starts[1:], None]
    return [{n: line[s:e].strip() for n, s, e in zip(names, starts, bounds, strict=True)} for line in lines[1:]]


def field_changes(comment: str) -> list[str]:
    """The changed fields of every diff in a comment: ``key: old → new``, ``+ key: value``, ``- key: value``.

    Removed and added lines of one diff are paired by key, so a reviewer's "what changes" reads as
    one line per field; structural lines without a value (``annotations:``) are left out.
    """
    out: list[str] = []
    for block in re.findall(r"```+diff\n(.*?)```+", comment, flags=re.S):
        removed: list[tuple[str, str]] = []
        added: list[tuple[str, str]] = []
        for line in block.splitlines():
            if line.startswith(("---", "+++", "@@")) or line[:1] not in ("+", "-"):
                continue
            key, _, value = line[1:].strip().removeprefix("- ").partition(":")
            (added if line[0] == "+" else removed).append((key.strip(), value.strip()))
        for key, old in removed:
            new = next((a for a in added if a[0] == key), None)
            if new is not None:
                added.remove(new)
                out.append(f"{key}: {old} → {new[1]}")
            elif old:
                out.append(f"- {key}: {old}")
        out += [f"+ {key}: {value}" for key, value in added if value]
    return out


def excerpt(body: str, *, diffs: bool = True) -> list[str]:
    """What a reader's eye catches in a Mergeway comment: heading, summary, table rows, diff lines, advice."""
    keep: list[str] = []
    in_diff = False
    for line in body.splitlines():
        if line.startswith("```"):
            in_diff = line.startswith("```diff") if not in_diff else False
            continue
        if in_diff:
            if diffs and line[:1] in ("+", "-") and not line.startswith(("+++", "---")):
                keep.append(line)
        elif line.startswith(("###", "**", "| ", "> ", "@")) and not line.startswith(("|---", "| |", "| object")):
            keep.append(line)
    return keep


def changed_file(path: Path, *replacements: tuple[str, str]) -> str:
    """The file's text with each (old, new) replaced exactly once (a demo edit must not miss)."""
    text = path.read_text()
    for old, new in replacements:
        if text.count(old) != 1:
            raise StepFailed(f"expected {old!r} once in {path.name}")
        text = text.replace(old, new)
    return text


def expect(condition: bool, reason: str) -> None:
    if not condition:
        raise StepFailed(reason)


# -- the story -------------------------------------------------------------------------------------


def guestbook_goes_live(demo: Demo) -> dict[str, Any]:
    """alice adds the guestbook in a PR; it is previewed, approved by bob, merged, deployed."""
    files = {f"deploy/{p.name}": p.read_text() for p in sorted(GUESTBOOK.glob("*.yaml"))}
    demo.say("alice opens a pull request adding the guestbook: a PHP frontend, a Redis master and its replicas.")
    pr = demo.sim.open_pr(demo.repo, "add-guestbook", files=files, title="Add the guestbook", author="alice")
    demo.prs["guestbook"] = pr
    preview = demo.final_status(pr.head_sha, PREVIEW)
    demo.say(f"Mergeway previews it against the cluster — {PREVIEW}: {preview.state}, “{preview.description}”")
    demo.show(excerpt(demo.comment(pr.number, f"preview:{ENV}"), diffs=False))
    expect(preview.state == "success", f"the guestbook preview is {preview.state}: {preview.description}")
    demo.approve(pr, "bob", "Guestbook manifests look right.")
    sha = demo.merge(pr, "alice")
    deploy = demo.final_status(sha, DEPLOY)
    demo.say(f"Mergeway applies main and waits for the rollout — {DEPLOY}: {deploy.state}, “{deploy.description}”")
    expect(deploy.state == "success", f"the guestbook deploy is {deploy.state}: {deploy.description}")
    rows = table(demo.kubectl("get", "deployments"))
    ready = {row["NAME"]: row["READY"] for row in rows}
    expect(ready.get("frontend") == "3/3", f"frontend should be 3/3 ready, kubectl shows {ready.get('frontend')}")
    live = ", ".join(f"{name} {count}" for name, count in ready.items())
    return {"preview": preview.state, "deploy": deploy.state, "ready": ready, "result": f"ready: {live}"}


def scale_to_six(demo: Demo) -> dict[str, Any]:
    """The textbook GitOps change: 3 → 6 replicas through a reviewed PR."""
    frontend = changed_file(GUESTBOOK / "frontend-deployment.yaml", ("replicas: 3", "replicas: 6"))
    demo.say("alice opens a pull request scaling the frontend from 3 to 6 replicas.")
    pr = demo.sim.open_pr(
        demo.repo,
        "scale-frontend",
        files={"deploy/frontend-deployment.yaml": frontend},
        title="Scale the frontend to 6 replicas",
        author="alice",
    )
    demo.prs["scale"] = pr
    preview = demo.final_status(pr.head_sha, PREVIEW)
    body = demo.comment(pr.number, f"preview:{ENV}")
    changes = field_changes(body)
    demo.say(f"Mergeway's preview comment on #{pr.number} ({preview.state}):")
    demo.show(excerpt(body))
    demo.say(f"The preview shows exactly one change: {'; '.join(changes) or 'none'}")
    expect(preview.state == "success", f"the scale preview is {preview.state}: {preview.description}")
    expect(changes == ["replicas: 3 → 6"], f"the preview should show only replicas: 3 → 6, it shows {changes}")
    review = demo.approve(pr, "bob", "6 replicas for the launch, approved.")
    sha = demo.merge(pr, "bob")
    deploy = demo.final_status(sha, DEPLOY)
    demo.say(f"Mergeway deploys it — {DEPLOY}: {deploy.state}, “{deploy.description}”")
    expect(deploy.state == "success", f"the scale deploy is {deploy.state}: {deploy.description}")
    row = demo.deployment("frontend")
    expect(row["READY"] == "6/6", f"frontend should be 6/6 ready, kubectl shows {row['READY']}")
    return {
        "changes": changes,
        "review": review,
        "deploy": deploy.state,
        "ready": row["READY"],
        "result": f"preview {'; '.join(changes)}, approved by bob, frontend {row['READY']} ready",
    }


def bad_image(demo: Demo) -> dict[str, Any]:
    """A valid manifest whose image crashes: the preview cannot know, the rollout does."""
    frontend = changed_file(
        GUESTBOOK / "frontend-deployment.yaml",
        ("replicas: 3", "replicas: 6"),
        (GOOD_IMAGE, BAD_IMAGE),
        (
            "      labels:\n        app: guestbook",
            f"      annotations:\n        {CRASH}\n      labels:\n        app: guestbook",
        ),
    )
    demo.say(f"alice opens a pull request moving the frontend to {BAD_IMAGE.rsplit('/', 1)[1]}, a build that crashes")
    demo.say("on start (in this cluster, KWOK plays the crash: the pod template's mergeway.test/simulate annotation).")
    pr = demo.sim.open_pr(
        demo.repo,
        "frontend-v6",
        files={"deploy/frontend-deployment.yaml": frontend},
        title="Frontend v6",
        author="alice",
    )
    demo.prs["bad"] = pr
    preview = demo.final_status(pr.head_sha, PREVIEW)
    body = demo.comment(pr.number, f"preview:{ENV}")
    changes = field_changes(body)
    demo.say(f"The preview is green ({preview.state}): the manifest is valid and the API server accepts it.")
    demo.show(excerpt(body))
    demo.say(f"It shows the new image and the crash switch: {'; '.join(changes)}")
    expect(preview.state == "success", f"the bad image's preview should be green, it is {preview.state}")
    expect(f"image: {GOOD_IMAGE} → {BAD_IMAGE}" in changes, f"the preview should show the image change: {changes}")
    demo.approve(pr, "bob", "Green preview, ship it.")
    sha = demo.merge(pr, "bob")
    deploy = demo.final_status(sha, DEPLOY)
    demo.say(f"The rollout stalls; Mergeway reports it — {DEPLOY}: {deploy.state}, “{deploy.description}”")
    expect(deploy.state == "failure", f"the bad image's deploy should fail, it is {deploy.state}")
    comment = demo.comment(pr.number, f"deploy:{ENV}")
    demo.say(f"Mergeway's deploy comment on #{pr.number}:")
    demo.show(excerpt(comment))
    failing = f"Deployment/{demo.namespace}/frontend"
    expect(failing in comment, f"the deploy comment should name {failing}")
    expect("/rollback" in comment, "the deploy comment should suggest /rollback")
    row = demo.deployment("frontend")
    pods = table(demo.kubectl("get", "pods", "-l", "tier=frontend"))
    crashing = sorted(p["NAME"] for p in pods if p["STATUS"] == "CrashLoopBackOff")
    demo.say(f"The old pods keep serving ({row['AVAILABLE']} available); {len(crashing)} new pods crash-loop.")
    expect(bool(crashing), "some frontend pods should be in CrashLoopBackOff")
    return {
        "preview": preview.state,
        "changes": changes,
        "deploy": deploy.state,
        "names_deployment": failing in comment,
        "suggests_rollback": "/rollback" in comment,
        "crashing_pods": len(crashing),
        "result": f"preview green, deploy {deploy.state} naming {failing}, {len(crashing)} pods crash-looping",
    }


def roll_back(demo: Demo) -> dict[str, Any]:
    """`/rollback` → a revert PR → merged → the last good state is deployed again."""
    bad = demo.prs["bad"]
    demo.say(f"alice comments `/rollback` on #{bad.number}.")
    demo.sim.comment(demo.repo, bad, "/rollback", author="alice")
    revert = wait(
        lambda: next((p for p in demo.sim.list_prs(demo.repo) if p.head_ref.startswith("mergeway/revert-")), None),
        "the revert pull request",
    )
    demo.prs["revert"] = revert
    reply = wait(lambda: _reply(demo, bad.number), "Mergeway's reply to /rollback")
    demo.say(f"Mergeway answers on #{bad.number} and opens #{revert.number} “{revert.title}”:")
    demo.show(excerpt(reply) or reply.splitlines()[1:])
    preview = demo.final_status(revert.head_sha, PREVIEW)
    body = demo.comment(revert.number, f"preview:{ENV}")
    changes = field_changes(body)
    demo.say(f"The revert's preview ({preview.state}) shows the image going back:")
    demo.show(excerpt(body))
    demo.say(f"In short: {'; '.join(changes)}")
    expect(preview.state == "success", f"the revert preview is {preview.state}: {preview.description}")
    expect(f"image: {BAD_IMAGE} → {GOOD_IMAGE}" in changes, f"the revert should bring the old image back: {changes}")
    demo.approve(revert, "bob", "Roll it back.")
    sha = demo.merge(revert, "alice")
    deploy = demo.final_status(sha, DEPLOY)
    demo.say(f"Mergeway deploys the last good state — {DEPLOY}: {deploy.state}, “{deploy.description}”")
    expect(deploy.state == "success", f"the revert's deploy is {deploy.state}: {deploy.description}")
    row = demo.deployment("frontend")
    expect(row["READY"] == "6/6", f"frontend should be 6/6 ready again, kubectl shows {row['READY']}")
    expect(row["IMAGES"] == GOOD_IMAGE, f"frontend should run {GOOD_IMAGE} again, it runs {row['IMAGES']}")
    history = demo.repo.git.git(["log", "--oneline", "--topo-order", demo.repo.default_branch]).splitlines()
    demo.say(f"Git holds the whole story ($ git log --oneline --topo-order {demo.repo.default_branch}):")
    demo.show(history)
    expect(any("Revert" in line for line in history), "main's history should hold the revert")
    return {
        "revert_title": revert.title,
        "changes": changes,
        "deploy": deploy.state,
        "ready": row["READY"],
        "image": row["IMAGES"],
        "history": history,
        "result": f"revert #{revert.number} merged, frontend {row['READY']} ready on {row['IMAGES'].rsplit('/', 1)[1]}",
    }


def _reply(demo: Demo, number: int) -> str | None:
    """Mergeway's answer to `/rollback` once it links the revert pull request."""
    bodies = [c.body for c in demo.sim.list_comments(demo.repo, number) if "<!-- mergeway:rollback" in c.body]
    return next((b for b in bodies if "opened" in b), None)


#: (key, title, step): the story, in order; each step builds on the previous one.
STORY: list[tuple[str, str, Callable[[Demo], dict[str, Any]]]] = [
    ("live", "The guestbook goes live through a first pull request", guestbook_goes_live),
    ("scale", "alice scales the frontend from 3 to 6 replicas; bob approves and merges", scale_to_six),
    ("crash", "alice ships an image that crashes; the rollout fails", bad_image),
    ("rollback", "alice comments /rollback; merging the revert restores the last good state", roll_back),
]


def run_story(demo: Demo) -> list[Outcome]:
    """Run every step in order, timing each; stop at the first one that does not reach its state."""
    outcomes: list[Outcome] = []
    for number, (key, title, step) in enumerate(STORY, start=1):
        demo.write(heading(f"{number}. {title}"))
        started = time.monotonic()
        try:
            facts = step(demo)
        except StepFailed as exc:
            outcomes.append(Outcome(key, title, False, time.monotonic() - started, str(exc)))
            demo.write(f"  ✗ {exc}")
            break
        outcomes.append(Outcome(key, title, True, time.monotonic() - started, facts=facts))
        demo.write(f"  ✓ done in {outcomes[-1].seconds:.1f}s")
    return outcomes


def summary(demo: Demo, outcomes: list[Outcome], total: float) -> list[str]:
    """The closing note: each step with its time, the verdict, where the logs are."""
    lines = [heading(f"{len(STORY) + 1}. What happened")]
    setup = "Starting the cluster, Redis, the forge, the web service and a worker"
    lines.append(f"  · 0. {setup:<76} {demo.setup_seconds:5.1f}s")
    for number, outcome in enumerate(outcomes, start=1):
        mark = "✓" if outcome.ok else "✗"
        lines.append(f"  {mark} {number}. {outcome.title:<76} {outcome.seconds:5.1f}s")
        if not outcome.ok:
            lines.append(f"       why: {outcome.reason}")
        elif outcome.facts.get("result"):
            lines.append(f"       {outcome.facts['result']}")
    for number in range(len(outcomes) + 1, len(STORY) + 1):
        lines.append(f"  – {number}. {STORY[number - 1][1]:<76}   not run")
    ok = len(outcomes) == len(STORY) and all(o.ok for o in outcomes)
    if ok:
        lines.append("  Every change went through a reviewed pull request; the failed one was undone by reverting")
        lines.append("  its commit, and Git's history is the audit log.")
    lines.append(f"  Total {total:.1f}s. Logs (web, worker, redis, forge requests, this story): {demo.logs}")
    return lines


def heading(text: str) -> str:
    return f"\n\033[1m▶ {text}\033[0m" if sys.stdout.isatty() else f"\n▶ {text}"


# -- the stack ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    """Subprocesses in their own sessions (their children go with them), stopped together:
    SIGTERM to every one first, then wait, so the shutdowns overlap instead of adding up."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.running.append(proc)
        self.logs[proc.pid] = log
        return proc

    def check_running(self) -> None:
        """Fail now, with the end of its log, if a process already exited (a refused configuration)."""
        for proc in self.running:
            if proc.poll() is not None:
                log = self.logs.get(proc.pid)
                tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log else []
                name = log.stem if log else str(proc.pid)
                raise StepFailed(f"the {name} process exited with {proc.returncode}: {' / '.join(tail)}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        for proc in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
        deadline = time.monotonic() + timeout
        for proc in self.running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def procfile(name: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            argv = shlex.split(command)
            argv[0] = sys.executable if argv[0] == "python" else str(Path(sys.executable).parent / argv[0])
            return argv
    raise LookupError(name)


def mergeway_env(
    *, sim: ForgeSim, redis_url: str, bind: str, secret: str, kubeconfig: Path, cache: Path
) -> dict[str, str]:
    """Everything the web service and the worker get: built-in defaults plus what points them at this stack.

    The one place to change what the demo's Mergeway runs with.
    """
    context = yaml.safe_load(kubeconfig.read_text())["current-context"]
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "MERGEWAY_BIND": bind,
        "WEB_CONCURRENCY": "1",
        "MERGEWAY_FORGES": "github",
        # Local use: every repository may deploy anywhere (a shared install sets MERGEWAY_POLICY_FILE).
        "MERGEWAY_POLICY": "allow-all",
        "GITHUB_WEBHOOK_SECRET": secret,
        "GITHUB_API_URL": sim.github_api_url,
        "GITHUB_TOKEN": sim.bot_token("github"),
        "MERGEWAY_BOT_LOGINS": "mergeway-bot",
        "KUBECONFIG": str(kubeconfig),
        "MERGEWAY_CLUSTERS": f"local={context}",
        "MERGEWAY_CACHE_DIR": str(cache),
        # The simulator needs no pause between writes (GitHub's secondary rate limits do).
        "MERGEWAY_GITHUB_WRITE_INTERVAL_SECONDS": "0",
        # A backstop only: the failed rollout is reported at its progress deadline (10 s).
        "MERGEWAY_HEALTH_TIMEOUT_SECONDS": "60",
    }


def _recreate_namespace(kubectl: str, kenv: dict[str, str], namespace: str) -> None:
    subprocess.run(
        [kubectl, "delete", "namespace", namespace, "--ignore-not-found", "--wait=true"],
        env=kenv,
        capture_output=True,
        timeout=120,
        check=False,
    )
    subprocess.run([kubectl, "create", "namespace", namespace], env=kenv, capture_output=True, timeout=60, check=True)


def _web_ready(port: int) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
        return bool(answer.status == 200)
    return False


def _forge_log(sim: ForgeSim, path: Path) -> None:
    """What the forge saw: every API request and webhook delivery, in order."""
    lines = [f"{r.kind} {r.method} {r.path} → {r.status} ({r.principal or 'anonymous'})" for r in list(sim.requests)]
    lines += [f"webhook {d.event}/{d.action} {d.id} → {d.status} {d.error}".rstrip() for d in sim.deliveries()]
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def environment(
    *,
    namespace: str = NAMESPACE,
    logs: Path = LOGS,
    kubeconfig: Path | None = None,
    out: TextIO | None = None,
) -> Iterator[Demo]:
    """The whole stack for the story; everything it started is stopped and removed afterwards.

    Without ``kubeconfig`` the local cluster is started (or joined) and released at the end. Logs go
    to ``logs`` (kept); git repositories, Redis data and Mergeway's cache to a temporary directory
    (removed); the namespace is deleted.
    """
    logs.mkdir(parents=True, exist_ok=True)
    for name in LOG_FILES:
        (logs / name).unlink(missing_ok=True)
    story = (logs / "story.log").open("w")
    stream = out or sys.stdout

    def write(line: str) -> None:
        print(line, file=stream, flush=True)
        print(re.sub(r"\033\[[0-9;]*m", "", line), file=story, flush=True)

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mergeway-demo-"))
    own_cluster = kubeconfig is None
    kubectl = str(Path(sys.executable).parent / "kubectl")
    kenv: dict[str, str] = {}
    try:
        if kubeconfig is None:
            write(heading("Starting the local Kubernetes cluster (built once, then cached)"))
            kubeconfig, fresh = localcluster.ensure_up(owner_pid=os.getpid())
            write(f"  {'Started' if fresh else 'Already running'}: {kubeconfig}")
        kenv = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), "KUBECONFIG": str(kubeconfig)}
        _recreate_namespace(kubectl, kenv, namespace)
        redis_port, web_port, secret = free_port(), free_port(), secrets.token_hex(16)
        write(heading("Starting Redis, the forge simulator, Mergeway's web service and a worker"))
        with contextlib.ExitStack() as stack:
            redis_argv = [shutil.which("redis-server") or "redis-server", "--port", str(redis_port)]
            redis_argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)]
            redis, mergeway = Processes(), Processes()
            stack.callback(redis.stop)  # last: the worker still talks to Redis while it shuts down
            redis.start(redis_argv, {"PATH": os.environ.get("PATH", "")}, logs / "redis.log")
            sim = stack.enter_context(running(work / "forge"))
            stack.callback(_forge_log, sim, logs / "forge.log")
            env = mergeway_env(
                sim=sim,
                redis_url=f"redis://127.0.0.1:{redis_port}/0",
                bind=f"127.0.0.1:{web_port}",
                secret=secret,
                kubeconfig=kubeconfig,
                cache=work / "cache",
            )
            # SIGQUIT: gunicorn's and Celery's quick shutdown. Nothing is in flight once the story is
            # over (and what a Ctrl-C interrupts is thrown away with the stack), so no need to drain.
            stack.callback(mergeway.stop, signal.SIGQUIT)
            mergeway.start(procfile("web"), env, logs / "web.log")
            mergeway.start([*procfile("worker"), "--concurrency", "2"], env, logs / "worker.log")
            wait(lambda: mergeway.check_running() or _web_ready(web_port), "the web service", timeout=60)
            sim.set_webhook("github", f"http://127.0.0.1:{web_port}/webhooks/github", secret)
            config = {"environments": [{"name": ENV, "path": "deploy", "cluster": "local", "namespace": namespace}]}
            repo = sim.create_repo(
                "github", "demo/shop", {".mergeway.yaml": yaml.safe_dump(config), "README.md": "# shop\n"}
            )
            for login in ("alice", "bob"):
                sim.set_permission(repo, login, "write")
            write(
                f"  The forge has demo/shop; alice and bob have write access. Mergeway deploys deploy/ to {namespace}."
            )
            pids = [p.pid for p in redis.running + mergeway.running]
            yield Demo(sim, repo, namespace, kubeconfig, logs, write, pids, setup_seconds=time.monotonic() - started)
    finally:
        if kenv:
            subprocess.run(
                [kubectl, "delete", "namespace", namespace, "--wait=false", "--ignore-not-found"],
                env=kenv,
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(work, ignore_errors=True)
        if own_cluster:
            localcluster.release(os.getpid())
        story.close()


def main() -> int:
    # A plain `kill` runs the same cleanup as Ctrl-C: no orphaned processes, no leftover namespace.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        with environment() as demo:
            outcomes = run_story(demo)
            for line in summary(demo, outcomes, time.monotonic() - started):
                demo.write(line)
    except StepFailed as exc:  # the stack itself did not come up
        print(f"demo: {exc} (logs in {LOGS})", file=sys.stderr)
        return 1
    except localcluster.ClusterError as exc:
        print(f"demo: the local cluster did not start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started has been stopped and removed", file=sys.stderr)
        return 130
    failed = [o for o in outcomes if not o.ok]
    if failed or len(outcomes) != len(STORY):
        reason = failed[0].reason if failed else "the story stopped early"
        print(f"demo: FAILED at “{(failed[0].title if failed else '?')}”: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
