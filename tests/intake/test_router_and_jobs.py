"""Events go to the right job queue, and each job kind to its own implementation."""

from __future__ import annotations

import pytest

from mergeway import jobs
from mergeway.events import (
    Command,
    CommentCommand,
    IssueCommand,
    PullRequest,
    PullRequestClosed,
    PullRequestMerged,
    PullRequestUpdated,
    Repository,
)
from mergeway.jobs.kinds import JOB_KINDS, QUEUES, TASK_NAMES, route

REPO = Repository(forge="github", full_name="o/r", clone_url="https://github.com/o/r.git")
PR = PullRequest(number=1, title="t", head_sha="a" * 40, head_ref="f", base_ref="main", author="me")


def test_routes() -> None:
    assert route(PullRequestUpdated(delivery_id="d", repo=REPO, pr=PR, action="opened")) == "preview"
    assert route(PullRequestMerged(delivery_id="d", repo=REPO, pr=PR)) == "deploy"
    assert route(PullRequestClosed(delivery_id="d", repo=REPO, pr=PR)) is None
    for name in ("rollback", "preview", "help"):
        event = CommentCommand(delivery_id="d", repo=REPO, pr=PR, command=Command(name), comment_id=1, author="me")  # type: ignore[arg-type]
        assert route(event) == name
    for name in ("revert-drift", "adopt-drift"):
        asked = IssueCommand(delivery_id="d", repo=REPO, issue=7, command=Command(name), comment_id=1, author="me")  # type: ignore[arg-type]
        assert route(asked) == name


def test_one_queue_and_task_per_job_kind() -> None:
    assert set(QUEUES.values()) == {
        "preview",
        "deploy",
        "rollback",
        "help",
        "drift",
        "drift-schedule",
        "merge_group",
        "merge_group_cancel",
        "revert-drift",
        "adopt-drift",
    }
    assert len(set(TASK_NAMES.values())) == len(TASK_NAMES)


@pytest.mark.parametrize("kind", JOB_KINDS)
def test_every_job_kind_runs_its_own_module(kind: str) -> None:
    # Routing to a kind whose job is missing, or wired to another kind's module, would drop events.
    run = jobs.handler(kind)  # type: ignore[arg-type]
    assert run.__module__ == f"mergeway.jobs.{kind.replace('-', '_')}" and run.__name__ == "run"


def test_an_unknown_job_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown job kind 'deploy-all'"):
        jobs.handler("deploy-all")  # type: ignore[arg-type]


def test_fast_event_serialisation_equals_to_dict() -> None:
    import json as _json

    from mergeway.events import to_dict
    from mergeway.intake import github, gitlab
    from mergeway.intake.publish import event_data
    from tests.fixtures.services import FIXTURES, event_header, fixture_files

    events = [
        CommentCommand(
            delivery_id="d", repo=REPO, pr=PR, command=Command("preview", ("a", "b")), comment_id=1, author="me"
        )
    ]
    for path in fixture_files():
        payload = _json.loads(path.read_bytes())
        if path.parent.name == "github":
            parsed = github.parse(event_header(path), "d", payload)
        else:
            parsed = gitlab.parse(gitlab.event_kind(event_header(path)), "d", payload)
        if isinstance(parsed, PullRequestUpdated | PullRequestMerged | PullRequestClosed | CommentCommand):
            events.append(parsed)
    assert len(events) > 6
    assert FIXTURES.exists()
    for event in events:
        # Identical JSON (to_dict keeps tuples, which JSON writes as lists anyway).
        assert _json.dumps(event_data(event)) == _json.dumps(to_dict(event))
