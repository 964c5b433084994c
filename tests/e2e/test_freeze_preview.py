"""Freeze windows in the preview (issue 30), end to end: a PR opened while its environment is frozen
says so, with when the freeze ends and why, before anyone merges it.

The windows come from both places a user or an operator writes them (the repository's
``.mergeway.yaml`` and the operator's policy file), read by the real web service and worker; the
note is what the PR author reads in the preview comment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.fixtures.e2e import StackFactory

pytestmark = pytest.mark.cluster
MARKER = "<!-- mergeway:preview:staging -->"
CONTEXT = "mergeway/preview/staging"


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M")


def test_a_pr_opened_during_a_freeze_is_told_until_when_and_why(
    make_stack: StackFactory, namespace: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    operator_end, repository_end = now + timedelta(days=1), now + timedelta(days=3)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "rules": [{"repositories": ["github:acme/*"], "clusters": ["local"], "namespaces": [namespace]}],
                "freeze": [
                    {
                        "repositories": ["github:acme/*"],
                        "clusters": ["local"],
                        "from": iso(now - timedelta(hours=1)),
                        "to": iso(operator_end),
                        "reason": "operator freeze",
                    },
                    {"repositories": ["github:acme/other"], "cron": "* * * * *", "duration": "1h", "reason": "no"},
                ],
            }
        )
    )
    stack = make_stack(MERGEWAY_POLICY=None, MERGEWAY_POLICY_FILE=str(policy))
    # The repository's own window overlaps the operator's and outlasts it: the freeze ends with it.
    repository_window = {"from": iso(now), "to": iso(repository_end), "reason": "release freeze"}
    env = {"name": "staging", "path": "deploy", "cluster": "local", "namespace": namespace}
    repo = stack.repo(environments=[{**env, "freeze": [repository_window]}])

    pr = stack.sim.open_pr(repo, "app", files={"deploy/app.yaml": _configmap("app")})

    status = stack.status(repo, pr.head_sha, CONTEXT)
    assert status.state == "success", status.description  # a freeze holds the merge, not the review
    body = stack.only_comment(repo, pr.number, MARKER).body
    until = f"{repository_end:%a} {repository_end.day} {repository_end:%b %Y %H:%M} UTC"
    assert f"> ❄️ `staging` is frozen until {until} (operator freeze): merging now waits until then." in body
    assert "(no)" not in body  # the other repository's window does not hold this one
    assert "1 to add" in body


def _configmap(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
