"""GitLab payloads → events, for every fixture and the variations real deliveries show."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mergeway.events import (
    Command,
    CommentCommand,
    IssueCommand,
    PullRequest,
    PullRequestClosed,
    PullRequestMerged,
    PullRequestUpdated,
    Repository,
    from_dict,
    to_dict,
)
from mergeway.intake import Ignored, gitlab
from mergeway.intake.fields import InvalidPayloadError
from tests.fixtures.services import FIXTURES, event_header, fixture_files, fixture_id

WOODPECKER_TEST = Repository(
    forge="gitlab",
    full_name="anbraten/woodpecker-test",
    clone_url="",
    default_branch="main",
    project_id=32059612,
    web_url="https://gitlab.com/anbraten/woodpecker-test",
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "gitlab" / name).read_text())
    return data


def parse(name: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    kind = gitlab.event_kind(event_header(FIXTURES / "gitlab" / name))
    return gitlab.parse(kind, "delivery-1", payload or load(name), **kwargs)


def test_open_runs_a_preview() -> None:
    assert parse("merge_request.open.json") == PullRequestUpdated(
        delivery_id="delivery-1",
        repo=Repository(
            forge="gitlab",
            full_name="gitlabhq/gitlab-test",
            clone_url="",
            default_branch="master",
            project_id=1,
            web_url="http://example.com/gitlabhq/gitlab-test",
        ),
        pr=PullRequest(
            number=1,
            title="MS-Viewport",
            head_sha="da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
            head_ref="ms-viewport",
            base_ref="master",
            # The hook names the author only by id (51); the actor (user 1) is someone else.
            author="",
            url="http://example.com/diaspora/merge_requests/1",
        ),
        action="open",
    )


def test_update_with_new_commits_runs_a_preview() -> None:
    event = parse("merge_request.update.json")
    assert isinstance(event, PullRequestUpdated)
    assert event.action == "update"
    assert event.pr.head_sha == "c136499ec574e1034b24c5d306de9acda3005367"
    assert (event.pr.number, event.pr.head_ref, event.pr.base_ref) == (3, "anbraten-main-patch-05373", "main")
    assert event.repo.full_name == "anbraten/woodpecker"


def test_update_without_new_commits_is_ignored() -> None:
    payload = copy.deepcopy(load("merge_request.update.json"))
    del payload["object_attributes"]["oldrev"]
    assert parse("merge_request.update.json", payload) == Ignored("merge request update without new commits")


def test_reopen_runs_a_preview() -> None:
    payload = copy.deepcopy(load("merge_request.close.json"))
    payload["object_attributes"]["action"] = "reopen"
    event = parse("merge_request.close.json", payload)
    assert isinstance(event, PullRequestUpdated) and event.action == "reopen"


def test_merge_runs_a_deploy() -> None:
    event = parse("merge_request.merge.json")
    assert isinstance(event, PullRequestMerged)
    assert event.repo == WOODPECKER_TEST
    assert event.pr.number == 4
    assert event.pr.merge_commit_sha == "43411b53d670203e887c4985c4e58e8e6b7c109e"
    assert event.pr.url == "https://gitlab.com/anbraten/woodpecker-test/-/merge_requests/4"
    assert event.merged_by == "anbraten"


def test_close_is_reported_without_a_merge_commit() -> None:
    event = parse("merge_request.close.json")
    assert isinstance(event, PullRequestClosed)
    assert event.pr.merge_commit_sha is None
    assert event.repo == WOODPECKER_TEST


@pytest.mark.parametrize("action", ["approved", "unapproved", "approval", "unapproval", "", "something-new"])
def test_other_merge_request_actions_are_ignored(action: str) -> None:
    payload = copy.deepcopy(load("merge_request.open.json"))
    payload["object_attributes"]["action"] = action
    assert isinstance(parse("merge_request.open.json", payload), Ignored)


def test_note_fixture_is_a_comment_but_not_a_command() -> None:
    assert parse("note.merge_request.json") == Ignored("comment is not a Mergeway command")


def note(body: str, *, username: str = "root", **attrs: Any) -> dict[str, Any]:
    payload = copy.deepcopy(load("note.merge_request.json"))
    payload["object_attributes"]["note"] = body
    payload["object_attributes"].update(attrs)
    payload["user"]["username"] = username
    return payload


def test_rollback_note_on_a_merge_request() -> None:
    event = parse("note.merge_request.json", note("/rollback"))
    assert isinstance(event, CommentCommand)
    assert event.command == Command("rollback")
    assert event.comment_id == 1244
    assert event.author == "root"
    assert event.repo.full_name == "gitlab-org/gitlab-test"
    assert event.repo.project_id == 5
    assert event.pr.number == 1
    assert event.pr.head_sha == "562e173be03b8ff2efb05345d12df18815438a4b"
    assert (event.pr.head_ref, event.pr.base_ref) == ("master", "markdown")
    # The published example has "url": null for the MR; the web URL is derived from the project.
    assert event.pr.url == "http://example.com/gitlab-org/gitlab-test/-/merge_requests/1"


def test_system_notes_updates_and_non_mr_notes_are_ignored() -> None:
    assert isinstance(parse("note.merge_request.json", note("/rollback", system=True)), Ignored)
    assert isinstance(parse("note.merge_request.json", note("/rollback", action="update")), Ignored)
    assert parse("note.merge_request.json", note("/rollback", noteable_type="Snippet")) == Ignored(
        "comment is not on a merge request or an issue"
    )


def issue_note(body: str) -> dict[str, Any]:
    """A note on an issue: the merge request note's payload with the ``issue`` object GitLab sends instead
    (webhook_events.md, "Comment on an issue": ``noteable_type: Issue``, an ``issue`` with its ``iid``)."""
    payload = note(body, noteable_type="Issue")
    del payload["merge_request"]
    payload["issue"] = {"id": 92, "iid": 17, "title": "Drift in staging", "state": "opened", "project_id": 5}
    return payload


def test_drift_commands_on_an_issue_are_issue_commands() -> None:
    event = parse("note.merge_request.json", issue_note("/adopt-drift"))
    assert isinstance(event, IssueCommand)
    assert (event.issue, event.command, event.comment_id, event.author) == (17, Command("adopt-drift"), 1244, "root")
    assert event.repo.project_id == 5


def test_lock_and_unlock_on_an_issue_are_issue_commands() -> None:
    event = parse("note.merge_request.json", issue_note("/lock staging incident 42"))
    assert isinstance(event, IssueCommand) and event.command == Command("lock", ("staging", "incident", "42"))
    assert isinstance(parse("note.merge_request.json", issue_note("/unlock staging")), IssueCommand)


def test_pull_request_commands_on_an_issue_and_drift_commands_on_a_merge_request_are_ignored() -> None:
    assert parse("note.merge_request.json", issue_note("/preview")) == Ignored(
        "/preview is answered on pull requests, not on issues"
    )
    assert isinstance(parse("note.merge_request.json", note("/revert-drift")), Ignored)


def test_note_without_action_from_older_gitlab_is_a_new_comment() -> None:
    payload = note("/help")
    del payload["object_attributes"]["action"]
    assert isinstance(parse("note.merge_request.json", payload), CommentCommand)


def test_the_bots_own_notes_are_ignored() -> None:
    result = parse("note.merge_request.json", note("/help", username="Mergeway-Bot"), bot_logins=("mergeway-bot",))
    assert result == Ignored("comment written by Mergeway itself")


def test_push_and_unknown_hooks_are_ignored() -> None:
    assert isinstance(parse("push.json"), Ignored)
    assert gitlab.parse(gitlab.event_kind("Pipeline Hook"), "d", load("push.json")) == Ignored(
        "GitLab event 'pipeline' is not handled"
    )


def test_event_kind_falls_back_to_object_kind() -> None:
    assert gitlab.event_kind(None, load("merge_request.open.json")) == "merge_request"
    assert gitlab.event_kind("Merge Request Hook", {}) == "merge_request"


def test_fork_merge_requests_are_marked() -> None:
    payload = copy.deepcopy(load("merge_request.open.json"))
    payload["object_attributes"]["source_project_id"] = 99
    event = parse("merge_request.open.json", payload)
    assert isinstance(event, PullRequestUpdated) and event.pr.is_fork


def test_missing_iid_is_invalid() -> None:
    payload = copy.deepcopy(load("merge_request.open.json"))
    del payload["object_attributes"]["iid"]
    with pytest.raises(InvalidPayloadError, match="object_attributes.iid|iid"):
        parse("merge_request.open.json", payload)


@pytest.mark.parametrize("path", fixture_files("gitlab"), ids=fixture_id)
def test_every_fixture_parses_and_events_round_trip_as_json(path: Path) -> None:
    result = gitlab.parse(gitlab.event_kind(event_header(path)), "d-1", json.loads(path.read_bytes()))
    if isinstance(result, Ignored):
        return
    assert from_dict(json.loads(json.dumps(to_dict(result)))) == result
