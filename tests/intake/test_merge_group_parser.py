"""GitHub ``merge_group`` deliveries, from octokit's published example (tests/data/webhooks/SOURCES.md)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mergeway.events import MergeGroup, from_dict, to_dict
from mergeway.intake import Ignored, github
from mergeway.intake.fields import InvalidPayloadError
from mergeway.jobs.kinds import route
from mergeway.mergegroups import queued_numbers
from tests.fixtures.services import FIXTURES

HEAD = "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
BASE = "380387fbc80638b734a49e1be1c4dfec1c01b33c"
QUEUE_REF = "gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "github" / "merge_group.checks_requested.json").read_text())
    return data


def destroyed(reason: str) -> dict[str, Any]:
    """GitHub's ``destroyed`` delivery: the same group, with ``action`` and ``reason`` (octokit has no example)."""
    payload = copy.deepcopy(example())
    payload["action"] = "destroyed"
    payload["reason"] = reason
    return payload


def test_checks_requested_is_a_group_preview_of_its_head_commit() -> None:
    event = github.parse("merge_group", "d-1", example())
    assert isinstance(event, MergeGroup)
    assert (event.action, event.head_sha, event.base_sha) == ("checks_requested", HEAD, BASE)
    assert (event.head_ref, event.base_ref) == (QUEUE_REF, "main")
    assert event.repo.full_name == "octo-org/octo-repo" and event.repo.installation_id == 1
    assert route(event) == "merge_group"
    assert from_dict(json.loads(json.dumps(to_dict(event)))) == event


@pytest.mark.parametrize("reason", ["merged", "invalidated", "dequeued"])
def test_destroyed_cancels_with_its_reason(reason: str) -> None:
    event = github.parse("merge_group", "d-2", destroyed(reason))
    assert isinstance(event, MergeGroup)
    assert (event.action, event.reason, event.head_sha) == ("destroyed", reason, HEAD)
    assert route(event) == "merge_group_cancel"


def test_an_unknown_destroyed_reason_still_cancels() -> None:
    event = github.parse("merge_group", "d-3", destroyed("exploded"))
    assert isinstance(event, MergeGroup) and event.reason == "unknown"


@pytest.mark.parametrize("action", ["requested", "", "checks_completed"])
def test_other_actions_are_ignored(action: str) -> None:
    payload = copy.deepcopy(example())
    payload["action"] = action
    result = github.parse("merge_group", "d-4", payload)
    assert isinstance(result, Ignored) and "merge_group action" in result.reason


@pytest.mark.parametrize("head", ["2ffea6db", "not-a-sha", "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d0"])
def test_a_group_without_a_full_head_sha_is_ignored(head: str) -> None:
    payload = copy.deepcopy(example())
    payload["merge_group"]["head_sha"] = head
    assert isinstance(github.parse("merge_group", "d-5", payload), Ignored)


@pytest.mark.parametrize("field", ["head_sha", "head_ref", "base_ref"])
def test_a_group_missing_a_needed_field_is_invalid(field: str) -> None:
    payload = copy.deepcopy(example())
    del payload["merge_group"][field]
    with pytest.raises(InvalidPayloadError, match=f"merge_group.{field}"):
        github.parse("merge_group", "d-6", payload)


def test_the_queued_pull_requests_come_from_the_groups_commits_in_order() -> None:
    subjects = ["Merge pull request #7 from acme/a", "Add a thing (#9)", "Merge pull request #12 from acme/c"]
    assert queued_numbers(subjects, "gh-readonly-queue/main/pr-12-" + "a" * 40) == ([7, 9, 12], True)


def test_a_commit_that_names_no_pull_request_makes_the_group_untrusted() -> None:
    numbers, every = queued_numbers(["Merge pull request #7 from acme/a", "sneaky commit"], "")
    assert (numbers, every) == ([7], False)
    # The pull request that created the group is always known from its ref, even with no commits read.
    assert queued_numbers([], "gh-readonly-queue/main/pr-104-" + "b" * 40) == ([104], False)
