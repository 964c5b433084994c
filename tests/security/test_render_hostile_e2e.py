"""Hostile repositories through the whole chain: forge simulator → gunicorn → Redis → worker.

A pull request whose kustomization tries to run a command (committed ``.gitconfig`` plus a remote
base), whose manifest is an alias bomb, or whose chart reads a worker file through a symlinked
directory gets what any broken PR gets: a failed status and a sticky comment that says exactly
what was refused, in which file and field. No command from the repository runs, no byte of the
worker's file reaches the forge, and nothing on the forge or in the logs is a stack trace.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.fixtures.e2e import Stack
from tests.security.hostile import alias_bomb, gitconfig
from tools.forgesim.gitrepos import Symlink

pytestmark = pytest.mark.cluster
MARKER = "<!-- mergeway:preview:staging -->"
CONTEXT = "mergeway/preview/staging"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n"


def assert_no_stack_trace(stack: Stack, texts: list[str]) -> None:
    for text in [*texts, stack.logs()]:
        assert "Traceback" not in text


def test_hostile_kustomization_pr_fails_clearly_and_runs_nothing(stack: Stack, tmp_path: Path):
    marker = tmp_path / "marker"
    repo = stack.repo()
    remote = "deploy@127.0.0.1:org/repo.git"
    files: dict[str, str | None] = {
        ".gitconfig": gitconfig(marker),
        "deploy/.gitconfig": gitconfig(marker),
        "deploy/cm.yaml": CM,
        "deploy/kustomization.yaml": yaml.safe_dump({"resources": ["cm.yaml", remote]}),
    }
    pr = stack.sim.open_pr(repo, "remote-base", files=files, title="Use the shared base")
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert not marker.exists(), f"a command from the repository ran on the worker: {marker.read_text()}"
    assert status.state == "failure"
    assert status.description.startswith(
        "Preview failed: Rendering deploy failed: deploy/kustomization.yaml: resources"
    )
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "**Preview failed.**" in body
    assert f"deploy/kustomization.yaml: resources: '{remote}' is not allowed: it is a URL or a remote reference" in body
    assert_no_stack_trace(stack, [body, status.description])


def test_alias_bomb_pr_is_refused_with_a_clear_message(stack: Stack):
    repo = stack.repo()
    pr = stack.sim.open_pr(repo, "lol", files={"deploy/bomb.yaml": alias_bomb()}, title="Configuration")
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "failure"
    assert "deploy/bomb.yaml: refused" in status.description
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "deploy/bomb.yaml: refused: the YAML expands to more than 33554432 bytes" in body
    assert "MERGEWAY_MAX_RENDERED_BYTES" in body
    assert_no_stack_trace(stack, [body, status.description])


def test_a_chart_reading_a_worker_file_through_a_symlink_gets_a_refusal_not_the_file(stack: Stack, tmp_path: Path):
    """Issue 24, finding 1: ``deploy/link -> ../other`` and ``other/env -> <a worker file>``, then
    ``fail (.Files.Get "link/env" | b64enc)`` would put the file into the PR comment as the render error."""
    secret = "ghp_e2e-worker-token-4242"
    worker_file = tmp_path / "environ"
    worker_file.write_text(f"GITHUB_TOKEN={secret}\0")
    repo = stack.repo()
    files: dict[str, str | Symlink | None] = {
        "deploy/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
        "deploy/templates/cm.yaml": '{{ fail (.Files.Get "link/env" | b64enc) }}\n',
        "deploy/link": Symlink("../other"),
        "other/env": Symlink(str(worker_file)),
    }
    pr = stack.sim.open_pr(repo, "shared-config", files=files, title="Read shared config")
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "failure"
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "deploy/link/env is a symlink that leads outside the repository" in body
    encoded = base64.b64encode(f"GITHUB_TOKEN={secret}".encode()).decode()
    for text in (body, status.description, stack.logs()):
        assert secret not in text and encoded[:20] not in text
    assert_no_stack_trace(stack, [body, status.description])
