"""The real deliveries in tests/data/webhooks/github, checked against ``@octokit/openapi-webhooks``.

Some are old deliveries (2018, 2019): GitHub has since added fields its schemas now mark required.
The files are kept byte for byte (they are evidence), so the fields they lack are listed here
instead; any other difference (a wrong type, an unknown event) fails. Mergeway must parse them all
the same: tests/webhook/test_deliveries.py delivers each one to the running web service.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conformance.oracle import WebhookDescription
from tests.fixtures.services import fixture_files

#: fixture → the fields the current schema requires that the delivery lacks (it predates them).
MISSING_IN_OLD_DELIVERIES: dict[str, set[str]] = {
    # 2019 (go-playground/webhooks): before comment reactions and GitHub App attribution.
    "issue_comment.created.json": {
        "$.comment.performed_via_github_app",
        "$.comment.reactions",
        "$.issue.active_lock_reason",
        "$.issue.reactions",
    },
    # 2018 (drone/go-scm): before auto-merge and disabled repositories.
    "pull_request.edited.json": {
        "$.pull_request.auto_merge",
        "$.pull_request.base.repo.disabled",
        "$.pull_request.head.repo.disabled",
        "$.repository.disabled",
    },
    # octokit's examples, captured before Discussions existed.
    "pull_request.synchronize.json": {
        "$.pull_request.base.repo.has_discussions",
        "$.pull_request.head.repo.has_discussions",
    },
    "push.json": {"$.repository.has_discussions"},
}
_MISSING = re.compile(r"^'(?P<field>[^']+)' is a required property$")


def webhook_name(description: WebhookDescription, path: Path, payload: dict[str, object]) -> str:
    return description.name(path.name.split(".", 1)[0], str(payload.get("action") or ""))


@pytest.mark.parametrize("path", fixture_files("github"), ids=lambda p: p.name)
def test_fixture_lacks_only_the_listed_fields(path: Path, webhook_description: WebhookDescription) -> None:
    payload = json.loads(path.read_bytes())
    missing: set[str] = set()
    other: list[str] = []
    for difference in webhook_description.check(webhook_name(webhook_description, path, payload), payload):
        found = _MISSING.match(difference.what)
        if found is None:
            other.append(str(difference))
        else:
            missing.add(f"{difference.where}.{found['field']}")
    assert not other, f"{path.name} differs from its schema beyond missing fields: {other}"
    assert missing == MISSING_IN_OLD_DELIVERIES.get(path.name, set())


def test_a_broken_payload_is_caught(webhook_description: WebhookDescription) -> None:
    """The oracle is not vacuous: a wrong type deep inside a real payload is reported where it is."""
    path = next(p for p in fixture_files("github") if p.name == "pull_request.opened.json")
    payload = json.loads(path.read_bytes())
    payload["pull_request"]["head"]["sha"] = 42
    del payload["repository"]["full_name"]
    found = {str(d) for d in webhook_description.check("pull-request-opened", payload)}
    assert "$.pull_request.head.sha: 42 is not of type 'string'" in found
    assert "$.repository: 'full_name' is a required property" in found
