"""Helpers for the destructive-guard tests: a deployed repository with objects whose prune is held.

A ConfigMap annotated ``mergeway.io/protect`` is held like a volume claim, without a volume to clean up,
so most tests prune those.
"""

from __future__ import annotations

from kubernetes import client as k8s

from tests.fixtures.e2e import FINAL, Stack
from tests.security.identity_support import held_webhooks
from tools.forgesim import SimComment, SimPR, SimRepo

PREVIEW, DEPLOY = "mergeway/preview/staging", "mergeway/deploy/staging"
PREVIEW_MARKER, DEPLOY_MARKER = "<!-- mergeway:preview:staging -->", "<!-- mergeway:deploy:staging -->"
ALLOW_REPLY = "<!-- mergeway:allow:reply -->"
ALLOW_LABEL = "mergeway/allow-destructive"


def protected(name: str, value: str = "v") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n"
        f'    mergeway.io/protect: "true"\ndata:\n  value: {value}\n'
    )


def deployed(stack: Stack, files: dict[str, str | None], *, forge: str = "github") -> SimRepo:
    """A repository whose main is deployed (its merge ran the deploy; nothing was previewed)."""
    repo = stack.repo(files, forge=forge)
    with held_webhooks(stack, forge):
        first = stack.sim.open_pr(repo, "noop", files={"README.md": "# shop\n\ndeployed\n"})
    sha = merge(stack, repo, first)
    status = stack.status(repo, sha, DEPLOY)
    assert status.state == "success", status.description
    return repo


def merge(stack: Stack, repo: SimRepo, pr: SimPR) -> str:
    """Merge ``pr`` (webhooks live: the deploy runs) and return the commit its deploy status is set on."""
    stack.sim.merge(repo, pr)
    merged = stack.sim.pr(repo, pr.number)
    sha = merged.merge_commit_sha
    assert sha
    return sha


def head(stack: Stack, repo: SimRepo, pr: SimPR) -> str:
    return stack.sim.pr(repo, pr.number).head_sha


def allow(stack: Stack, repo: SimRepo, pr: SimPR, author: str, env: str = "staging") -> SimComment:
    """``/allow-destructive env <current head>`` as ``author``."""
    return stack.sim.comment(repo, pr, f"/allow-destructive {env} {head(stack, repo, pr)[:12]}", author=author)


def reply(stack: Stack, repo: SimRepo, pr: SimPR, containing: str) -> str:
    """Wait for Mergeway's answer to an ``/allow-destructive`` comment to contain ``containing``."""

    def answered() -> str | None:
        found = [c.body for c in stack.marked(repo, pr.number, ALLOW_REPLY) if c.author == "mergeway-bot"]
        return found[0] if found and containing in found[0] else None

    return stack.wait(answered, timeout=90, message=f"an /allow-destructive reply saying {containing!r}")


def deploy_status(stack: Stack, repo: SimRepo, sha: str) -> str:
    """The deploy's final status description; it must have succeeded."""
    status = stack.status(repo, sha, DEPLOY, timeout=150)
    assert status.state in FINAL and status.state == "success", status.description
    return status.description


def configmap_exists(stack: Stack, name: str) -> bool:
    core = k8s.CoreV1Api(stack.cluster.api_client())
    try:
        core.read_namespaced_config_map(name, stack.namespace)
    except k8s.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
