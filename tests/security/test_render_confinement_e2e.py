"""Renderer limits through the whole chain: forge simulator → gunicorn → Redis → worker → helm.

A pull request whose chart doubles a string until it fills memory, or loops a billion times, gets
what any broken PR gets: a failed status and a sticky comment naming the limit and its setting. The
worker that ran it is unharmed: the next pull request is previewed as usual.
"""

from __future__ import annotations

import pytest

from tests.fixtures.e2e import Stack, StackFactory

pytestmark = pytest.mark.cluster
MARKER = "<!-- mergeway:preview:staging -->"
CONTEXT = "mergeway/preview/staging"
CHART = "apiVersion: v2\nname: shop\nversion: 0.1.0\n"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  k: v\n"
DOUBLING = '{{- $s := "aaaaaaaaaaaaaaaa" }}{{- range until 40 }}{{- $s = print $s $s }}{{- end }}\na: {{ len $s }}\n'
LOOPING = "{{- range until 1000 }}{{- range until 1000 }}{{- range until 1000 }}{{- end }}{{- end }}{{- end }}\n"


def refused_then_next_pr_previews(stack: Stack, template: str, expected: str) -> None:
    repo = stack.repo()
    files: dict[str, str | None] = {"deploy/Chart.yaml": CHART, "deploy/templates/x.yaml": template}
    pr = stack.sim.open_pr(repo, "hostile", files=files, title="A chart")
    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "failure", status
    body = stack.only_comment(repo, pr.number, MARKER).body
    assert "**Preview failed.**" in body
    assert expected in body, body
    assert "Traceback" not in stack.logs()

    fine = stack.sim.open_pr(repo, "fine", files={"deploy/Chart.yaml": CHART, "deploy/templates/cm.yaml": CM})
    assert stack.status(repo, fine.head_sha, CONTEXT).state == "success", stack.log_tails()
    assert all(worker.running for worker in stack.workers), "a worker died"


def test_a_chart_that_fills_memory_is_stopped_by_the_limit_and_the_worker_carries_on(stack: Stack):
    refused_then_next_pr_previews(
        stack, DOUBLING, "helm failed: stopped: it needed more than 256 MiB of memory (MERGEWAY_RENDER_MEMORY_BYTES)"
    )


def test_a_chart_that_burns_cpu_is_stopped_by_the_limit_and_the_worker_carries_on(make_stack: StackFactory):
    stack = make_stack(MERGEWAY_RENDER_CPU_SECONDS="2")
    refused_then_next_pr_previews(
        stack, LOOPING, "helm failed: stopped: it used more than 2 s of CPU time (MERGEWAY_RENDER_CPU_SECONDS)"
    )
