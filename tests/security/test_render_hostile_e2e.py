"""Hostile repositories through the whole chain: forge simulator → gunicorn → Redis → worker.

A pull request whose kustomization tries to run a command (committed ``.gitconfig`` plus a remote
base) or whose manifest is an alias bomb gets what any broken PR gets: a failed status and a sticky
comment that says exactly what was refused, in which file and field. No command from the
repository runs, and nothing on the forge or in the logs is a stack trace.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fixtures.e2e import Stack
from tests.security.hostile import alias_bomb, gitconfig

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
