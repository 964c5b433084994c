"""Payloads generated from GitHub's official webhook schemas, signed and sent to the running web
service (gunicorn, real Redis): for every event and action Mergeway handles, and a few it ignores.

What must hold for any payload the schema allows:

- never a server error, and never a 400: a payload GitHub may send is one Mergeway must accept;
- the answer names the right event kind and job, or says "ignored" with a reason;
- the queued job carries the identity fields from where the schema puts them: repository
  (``repository.full_name``), PR number (``pull_request.number`` / ``issue.number``), head SHA
  (``pull_request.head.sha``) and comment author (``comment.user.login``, else ``sender.login``).

``optional=False`` payloads carry the schema's required properties only: an older delivery missing
every optional field must still parse the same way. Generation: tests/conformance/schema_gen.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conformance.oracle import WebhookDescription, webhooks
from tests.conformance.schema_gen import SchemaStrategies
from tests.fixtures.services import WebProcess, github_headers, queued_jobs

BOT = "mergeway-bot"
COMMANDS = {"/preview": "preview", "/rollback": "rollback", "/help": "help", "/preview staging": "preview"}
#: webhook name → X-GitHub-Event. Handled first; the rest must be ignored with a reason.
HANDLED = {
    "pull-request-opened": "pull_request",
    "pull-request-synchronize": "pull_request",
    "pull-request-reopened": "pull_request",
    "pull-request-closed": "pull_request",
    "issue-comment-created": "issue_comment",
    "ping": "ping",
    "merge-group-checks-requested": "merge_group",
    "merge-group-destroyed": "merge_group",
}
IGNORED = {
    "pull-request-edited": "pull_request",
    "pull-request-labeled": "pull_request",
    "issue-comment-edited": "issue_comment",
    "issue-comment-deleted": "issue_comment",
    "push": "push",
}
QUEUES = ("preview", "deploy", "rollback", "help", "merge_group", "merge_group_cancel", "revert-drift", "adopt-drift")
_SHA = re.compile(r"[0-9a-f]{40}")
# Derandomized: the same examples on every run (no flaky CI), varied across kinds by the schemas.
# No shrinking: payloads are tens of kilobytes and shrinking one takes minutes; the failing example
# is reported as generated.
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def payloads(name: str, *, optional: bool) -> st.SearchStrategy[dict[str, Any]]:
    description = webhooks()
    generated = SchemaStrategies(description.resolve, optional=optional).strategy(
        {"$ref": description.schema_pointer(name)}
    )
    if name.startswith("pull-request-"):
        # GitHub sends the PR number twice; real deliveries agree, generated ones are made to.
        return generated.map(lambda p: {**p, "number": p["pull_request"]["number"]})
    if name == "issue-comment-created":
        return st.tuples(generated, st.sampled_from([None, *COMMANDS])).map(_with_command)
    if name.startswith("merge-group-"):
        # Generated strings are never commit SHAs; half the groups get real-looking ones.
        return st.tuples(generated, st.booleans()).map(_with_shas)
    return generated


def _with_shas(drawn: tuple[dict[str, Any], bool]) -> dict[str, Any]:
    payload, real = drawn
    if real:
        group = payload["merge_group"]
        group["head_sha"] = hashlib.sha1(json.dumps(group).encode(), usedforsecurity=False).hexdigest()
        group["base_sha"] = hashlib.sha1(group["head_sha"].encode(), usedforsecurity=False).hexdigest()
    return payload


def _with_command(drawn: tuple[dict[str, Any], str | None]) -> dict[str, Any]:
    payload, command = drawn
    if command is not None:
        payload["comment"]["body"] = command
    return payload


def expected(name: str, payload: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(answer status, job, identity fields of the queued event) as the schema and DESIGN.md say."""
    if name in IGNORED:
        return "ignored", None, {}
    if name == "ping":
        return "pong", None, {}
    if name.startswith("merge-group-"):
        group = payload["merge_group"]
        shas = (group["head_sha"].lower(), group["base_sha"].lower())
        if "repository" not in payload or not all(_SHA.fullmatch(sha) for sha in shas):
            return "ignored", None, {}
        job = "merge_group" if name == "merge-group-checks-requested" else "merge_group_cancel"
        return "queued", job, {"repo": payload["repository"]["full_name"], "head_sha": shas[0]}
    repo = payload["repository"]["full_name"]
    if name in ("pull-request-opened", "pull-request-synchronize", "pull-request-reopened"):
        pr = payload["pull_request"]
        return "queued", "preview", {"repo": repo, "pr": pr["number"], "head_sha": pr["head"]["sha"]}
    if name == "pull-request-closed":
        pr = payload["pull_request"]
        if pr.get("merged") is True:
            return "queued", "deploy", {"repo": repo, "pr": pr["number"], "head_sha": pr["head"]["sha"]}
        return "ignored", None, {}
    if name == "issue-comment-created":
        comment = payload["comment"]
        author = (comment.get("user") or {}).get("login") or payload["sender"]["login"]
        job = COMMANDS.get(comment.get("body") or "")
        if "pull_request" not in payload["issue"] or job is None or author == BOT:
            return "ignored", None, {}
        return "queued", job, {"repo": repo, "pr": payload["issue"]["number"], "author": author}
    return "ignored", None, {}  # IGNORED kinds: whatever they carry


_DISTINCT = itertools.count()


def deliver(web: WebProcess, client: redis.Redis, name: str, event: str, payload: dict[str, Any]) -> None:
    description = webhooks()
    assert description.check(name, payload) == [], "the generator made a payload its schema rejects"
    # Generated payloads repeat; trailing whitespace keeps each delivery's body distinct, so the
    # service's replay protection (dedupe on the body's digest) does not answer "duplicate".
    body = json.dumps(payload).encode() + b" " * next(_DISTINCT)
    delivery = str(uuid.uuid4())
    status, answer = web.request("POST", "/webhooks/github", body, github_headers(body, event, delivery=delivery))
    assert status < 500, answer
    assert status != 400, f"a schema-valid {name} delivery was refused: {answer}"
    assert isinstance(answer, dict)
    outcome, job, identity = expected(name, payload)
    if outcome == "pong":
        assert (status, answer) == (200, {"status": "pong"})
        return
    if outcome == "ignored":
        assert (status, answer["status"]) == (202, "ignored"), answer
        assert str(answer.get("reason", "")).strip(), "ignored without a reason"
        return
    assert (status, answer["status"], answer["job"]) == (202, "queued", job), answer
    [queued] = [j for j in queued_jobs(client, QUEUES) if j.task_id == answer["job_id"]]
    client.delete(*QUEUES)
    event_data = queued.event
    assert event_data["delivery_id"] == delivery
    assert event_data["repo"]["forge"] == "github"
    assert event_data["repo"]["full_name"] == identity["repo"]
    if "pr" in identity:
        assert event_data["pr"]["number"] == identity["pr"]
    if "head_sha" in identity:
        assert (event_data["pr"] if "pr" in identity else event_data)["head_sha"] == identity["head_sha"]
    if "author" in identity:
        assert event_data["author"] == identity["author"]


@pytest.fixture(scope="module")
def description() -> WebhookDescription:
    return webhooks()


@pytest.mark.parametrize("name", [*HANDLED, *IGNORED])
def test_generated_deliveries(name: str, web: WebProcess, redis_client: redis.Redis) -> None:
    event = {**HANDLED, **IGNORED}[name]

    @SETTINGS
    @given(payload=payloads(name, optional=True))
    def check(payload: dict[str, Any]) -> None:
        deliver(web, redis_client, name, event, payload)

    check()


@pytest.mark.parametrize("name", list(HANDLED))
def test_deliveries_with_required_fields_only(name: str, web: WebProcess, redis_client: redis.Redis) -> None:
    """Older deliveries lack fields added since; with only the required ones a delivery still parses."""

    @settings(SETTINGS, max_examples=5)
    @given(payload=payloads(name, optional=False))
    def check(payload: dict[str, Any]) -> None:
        deliver(web, redis_client, name, HANDLED[name], payload)

    check()


def test_every_handled_kind_is_in_the_description(description: WebhookDescription) -> None:
    assert set(HANDLED) | set(IGNORED) <= set(description.names())
