"""Every fixture delivered to the real web service (gunicorn + real Redis) gives the right answer
and the right job on the queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from mergeway.events import MergeGroup, PullRequestMerged, PullRequestUpdated, from_dict
from tests.fixtures.services import (
    FIXTURES,
    WebProcess,
    delivery_for,
    fixture_files,
    fixture_id,
    github_headers,
    gitlab_headers,
    queued_jobs,
)

QUEUED = "queued"

#: fixture → (status, what the answer says, job queue or None, checks on the queued event)
EXPECTED: dict[str, tuple[int, str, str | None, dict[str, Any]]] = {
    # The fixture's comment is "/build" on PR #3 (issue.pull_request is present): a PR comment, not ours.
    "github/issue_comment.created.json": (202, "comment is not a Mergeway command", None, {}),
    "github/ping.json": (200, "pong", None, {}),
    # A merge queue's group: previewed on its own queue, on the group's head commit (no pull request).
    "github/merge_group.checks_requested.json": (
        202,
        QUEUED,
        "merge_group",
        {
            "kind": "merge_group",
            "repo": "octo-org/octo-repo",
            "head_sha": "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d",
            "base_sha": "380387fbc80638b734a49e1be1c4dfec1c01b33c",
            "base_ref": "main",
        },
    ),
    "github/pull_request.closed.merged.json": (
        202,
        QUEUED,
        "deploy",
        {
            "kind": "pr_merged",
            "repo": "anbraten/test-ready-release-go",
            "pr": 62,
            "merge_commit_sha": "473d70eb7c50a54ae62bf9b124efa1c3eb245be8",
        },
    ),
    "github/pull_request.closed.unmerged.json": (
        202,
        "pull request closed without merging: nothing to deploy",
        None,
        {},
    ),
    "github/pull_request.edited.json": (202, "pull_request action 'edited' does not run a job", None, {}),
    "github/pull_request.opened.json": (
        202,
        QUEUED,
        "preview",
        {
            "kind": "pr_updated",
            "action": "opened",
            "repo": "Codertocat/Hello-World",
            "pr": 2,
            "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        },
    ),
    "github/pull_request.reopened.json": (
        202,
        QUEUED,
        "preview",
        {
            "kind": "pr_updated",
            "action": "reopened",
            "repo": "Codertocat/Hello-World",
            "pr": 2,
            "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        },
    ),
    "github/pull_request.synchronize.json": (
        202,
        QUEUED,
        "preview",
        {
            "kind": "pr_updated",
            "action": "synchronize",
            "repo": "Codertocat/Hello-World",
            "pr": 2,
            "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        },
    ),
    "github/push.json": (202, "push events do not run jobs; deploys follow merged pull requests", None, {}),
    "gitlab/merge_request.close.json": (202, "pull request closed without merging: nothing to deploy", None, {}),
    "gitlab/merge_request.merge.json": (
        202,
        QUEUED,
        "deploy",
        {
            "kind": "pr_merged",
            "repo": "anbraten/woodpecker-test",
            "pr": 4,
            "merge_commit_sha": "43411b53d670203e887c4985c4e58e8e6b7c109e",
        },
    ),
    "gitlab/merge_request.open.json": (
        202,
        QUEUED,
        "preview",
        {
            "kind": "pr_updated",
            "action": "open",
            "repo": "gitlabhq/gitlab-test",
            "pr": 1,
            "head_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        },
    ),
    "gitlab/merge_request.update.json": (
        202,
        QUEUED,
        "preview",
        {
            "kind": "pr_updated",
            "action": "update",
            "repo": "anbraten/woodpecker",
            "pr": 3,
            "head_sha": "c136499ec574e1034b24c5d306de9acda3005367",
        },
    ),
    "gitlab/note.merge_request.json": (202, "comment is not a Mergeway command", None, {}),
    "gitlab/push.json": (202, "push events do not run jobs; deploys follow merged merge requests", None, {}),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(fixture_id(p) for p in fixture_files())


@pytest.mark.parametrize("path", fixture_files(), ids=fixture_id)
def test_fixture_delivery(path: Path, web: WebProcess, redis_client: redis.Redis) -> None:
    status, what, queue, checks = EXPECTED[fixture_id(path)]
    url, body, headers = delivery_for(path)
    got_status, answer = web.request("POST", url, body, headers)
    assert got_status == status, answer
    assert isinstance(answer, dict)
    jobs = queued_jobs(redis_client)
    if what == "pong":
        assert answer == {"status": "pong"}
    elif queue is None:
        assert answer["status"] == "ignored"
        assert answer["reason"] == what
        assert jobs == []
    else:
        assert answer["status"] == "queued"
        assert answer["event"] == checks["kind"]
        assert answer["job"] == queue
        [job] = jobs
        assert (job.queue, job.task, job.task_id) == (queue, f"mergeway.{queue}", answer["job_id"])
        event = from_dict(job.event)
        assert event.kind == checks["kind"]
        assert event.repo.full_name == checks["repo"]
        assert event.repo.forge == path.parent.name
        delivery = headers.get("X-GitHub-Delivery") or headers["Idempotency-Key"]
        assert event.delivery_id == delivery
        if isinstance(event, MergeGroup):
            assert (event.head_sha, event.base_sha, event.base_ref) == (
                checks["head_sha"],
                checks["base_sha"],
                checks["base_ref"],
            )
            return
        assert isinstance(event, PullRequestUpdated | PullRequestMerged)
        assert event.pr.number == checks["pr"]
        if "head_sha" in checks:
            assert event.pr.head_sha == checks["head_sha"]
        if "action" in checks:
            assert isinstance(event, PullRequestUpdated) and event.action == checks["action"]
        if "merge_commit_sha" in checks:
            assert event.pr.merge_commit_sha == checks["merge_commit_sha"]
        # The job carries plain JSON, nothing Python-specific.
        assert json.loads(json.dumps(job.event)) == job.event


def test_comment_commands_are_queued(web: WebProcess, redis_client: redis.Redis) -> None:
    """The fixtures carry no Mergeway command; real ones are made from them by changing the text."""
    payload = json.loads((FIXTURES / "github" / "issue_comment.created.json").read_bytes())
    payload["comment"]["body"] = "/rollback"
    body = json.dumps(payload).encode()
    status, answer = web.request("POST", "/webhooks/github", body, github_headers(body, "issue_comment"))
    assert (status, answer["status"], answer["job"]) == (202, "queued", "rollback")  # type: ignore[index]

    note = json.loads((FIXTURES / "gitlab" / "note.merge_request.json").read_bytes())
    note["object_attributes"]["note"] = "/help"
    body = json.dumps(note).encode()
    status, answer = web.request("POST", "/webhooks/gitlab", body, gitlab_headers("Note Hook"))
    assert (status, answer["status"], answer["job"]) == (202, "queued", "help")  # type: ignore[index]

    jobs = queued_jobs(redis_client)
    assert [(j.queue, j.event["kind"], j.event["command"]["name"]) for j in jobs] == [
        ("rollback", "comment_command", "rollback"),
        ("help", "comment_command", "help"),
    ]
