"""GitHub payloads → events, for every fixture and the variations real deliveries show."""

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
from mergeway.intake import Ignored, Ping, github
from mergeway.intake.fields import InvalidPayloadError
from tests.fixtures.services import FIXTURES, event_header, fixture_files, fixture_id

HELLO = Repository(
    forge="github",
    full_name="Codertocat/Hello-World",
    clone_url="",  # never taken from the payload: the worker builds it on the configured host
    default_branch="master",
    web_url="https://github.com/Codertocat/Hello-World",
    installation_id=1,
)
HELLO_PR = PullRequest(
    number=2,
    title="Update the README with new information.",
    head_sha="ec26c3e57ca3a959ca5aad62de7213c562f8c821",
    head_ref="changes",
    base_ref="master",
    author="Codertocat",
    url="https://github.com/Codertocat/Hello-World/pull/2",
)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "github" / name).read_text())
    return data


def parse(name: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    path = FIXTURES / "github" / name
    return github.parse(event_header(path), "delivery-1", payload or load(name), **kwargs)


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_pr_opened_synchronize_reopened_run_a_preview(action: str) -> None:
    assert parse(f"pull_request.{action}.json") == PullRequestUpdated(
        delivery_id="delivery-1", repo=HELLO, pr=HELLO_PR, action=action
    )


def test_pr_merged_runs_a_deploy() -> None:
    event = parse("pull_request.closed.merged.json")
    assert isinstance(event, PullRequestMerged)
    assert event.repo.full_name == "anbraten/test-ready-release-go"
    assert event.repo.default_branch == "main"
    assert event.pr.number == 62
    assert event.pr.merge_commit_sha == "473d70eb7c50a54ae62bf9b124efa1c3eb245be8"
    assert event.pr.head_sha == "c88b9ee719285134957cbc698c9b7ef9b78007bf"
    assert (event.pr.head_ref, event.pr.base_ref) == ("anbraten-patch-3", "main")
    assert event.merged_by == "anbraten"
    assert not event.pr.is_fork


def test_pr_closed_unmerged_is_reported_without_a_merge_commit() -> None:
    # GitHub still sends a (test-merge) merge_commit_sha on unmerged PRs; it must not look deployable.
    assert parse("pull_request.closed.unmerged.json") == PullRequestClosed(
        delivery_id="delivery-1", repo=HELLO, pr=HELLO_PR
    )


def test_pr_edited_is_ignored() -> None:
    result = parse("pull_request.edited.json")
    assert isinstance(result, Ignored)
    assert "edited" in result.reason


def test_issue_comment_fixture_is_on_a_pr_but_not_our_command() -> None:
    payload = load("issue_comment.created.json")
    assert "pull_request" in payload["issue"], "the fixture is a comment on a pull request"
    assert payload["comment"]["body"] == "/build"
    assert parse("issue_comment.created.json") == Ignored("comment is not a Mergeway command")


def comment(body: str, *, login: str = "chhsia0", on_pr: bool = True) -> dict[str, Any]:
    payload = copy.deepcopy(load("issue_comment.created.json"))
    payload["comment"]["body"] = body
    payload["comment"]["user"]["login"] = login
    payload["sender"]["login"] = login
    if not on_pr:
        del payload["issue"]["pull_request"]
    return payload


def test_rollback_comment_on_a_pr() -> None:
    event = parse("issue_comment.created.json", comment("/rollback\nplease"))
    assert event == CommentCommand(
        delivery_id="delivery-1",
        repo=Repository(
            forge="github",
            full_name="chhsia0/knative-route-demo",
            clone_url="",
            default_branch="master",
            web_url="https://github.com/chhsia0/knative-route-demo",
        ),
        pr=PullRequest(
            number=3,
            title=load("issue_comment.created.json")["issue"]["title"],
            head_sha="",
            head_ref="",
            base_ref="",
            author="chhsia0",
            url="https://github.com/chhsia0/knative-route-demo/pull/3",
        ),
        command=Command("rollback"),
        comment_id=546616131,
        author="chhsia0",
    )


def test_preview_with_environments() -> None:
    event = parse("issue_comment.created.json", comment("/preview staging"))
    assert isinstance(event, CommentCommand)
    assert event.command == Command("preview", ("staging",))


def test_pull_request_commands_on_a_plain_issue_are_ignored() -> None:
    assert parse("issue_comment.created.json", comment("/rollback", on_pr=False)) == Ignored(
        "/rollback is answered on pull requests, not on issues"
    )


def test_drift_commands_on_an_issue_are_issue_commands() -> None:
    event = parse("issue_comment.created.json", comment("/revert-drift", on_pr=False))
    assert isinstance(event, IssueCommand)
    assert (event.issue, event.command, event.comment_id, event.author) == (
        3,
        Command("revert-drift"),
        546616131,
        "chhsia0",
    )
    assert event.repo.full_name == "chhsia0/knative-route-demo"
    assert from_dict(to_dict(event)) == event  # what the worker receives


def test_lock_and_unlock_are_commands_on_an_issue_and_on_a_pull_request() -> None:
    on_issue = parse("issue_comment.created.json", comment("/lock staging incident 42", on_pr=False))
    assert isinstance(on_issue, IssueCommand) and on_issue.command == Command("lock", ("staging", "incident", "42"))
    assert isinstance(parse("issue_comment.created.json", comment("/unlock staging", on_pr=False)), IssueCommand)
    assert isinstance(parse("issue_comment.created.json", comment("/unlock staging")), CommentCommand)


def test_drift_commands_on_a_pull_request_are_ignored() -> None:
    assert parse("issue_comment.created.json", comment("/adopt-drift")) == Ignored(
        "/adopt-drift is answered on the drift issue, not on a pull request"
    )


@pytest.mark.parametrize("login", ["mergeway-bot", "Mergeway[bot]"])
def test_the_bots_own_comments_are_ignored(login: str) -> None:
    result = parse(
        "issue_comment.created.json", comment("/help", login=login), bot_logins=("mergeway-bot", "mergeway[bot]")
    )
    assert result == Ignored("comment written by Mergeway itself")


def test_edited_and_deleted_comments_are_ignored() -> None:
    payload = comment("/rollback")
    payload["action"] = "edited"
    assert isinstance(parse("issue_comment.created.json", payload), Ignored)


def test_ping_and_push() -> None:
    assert isinstance(parse("ping.json"), Ping)
    assert isinstance(parse("push.json"), Ignored)


def test_unknown_event_is_ignored_with_its_name() -> None:
    result = github.parse("workflow_run", "d", load("push.json"))
    assert result == Ignored("GitHub event 'workflow_run' is not handled")


def test_fork_pull_requests_are_marked() -> None:
    payload = copy.deepcopy(load("pull_request.opened.json"))
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    event = parse("pull_request.opened.json", payload)
    assert isinstance(event, PullRequestUpdated) and event.pr.is_fork
    payload["pull_request"]["head"]["repo"] = None  # the fork was deleted
    event = parse("pull_request.opened.json", payload)
    assert isinstance(event, PullRequestUpdated) and event.pr.is_fork


def test_old_payloads_without_newer_fields_parse() -> None:
    payload = copy.deepcopy(load("pull_request.opened.json"))
    for key in ("draft", "auto_merge", "active_lock_reason", "requested_teams", "labels", "merged"):
        payload["pull_request"].pop(key, None)
    payload["repository"].pop("default_branch")
    event = parse("pull_request.opened.json", payload)
    assert isinstance(event, PullRequestUpdated)
    assert event.repo.default_branch == "main"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("pull_request", "number"), "pull_request.number"),
        (("pull_request", "head"), "pull_request.head.sha"),
        (("repository",), "repository.full_name"),
    ],
)
def test_payload_missing_required_fields_is_invalid(path: tuple[str, ...], message: str) -> None:
    payload = copy.deepcopy(load("pull_request.opened.json"))
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    with pytest.raises(InvalidPayloadError, match=message):
        parse("pull_request.opened.json", payload)


@pytest.mark.parametrize("path", fixture_files("github"), ids=fixture_id)
def test_every_fixture_parses_and_events_round_trip_as_json(path: Path) -> None:
    result = github.parse(event_header(path), "d-1", json.loads(path.read_bytes()))
    if isinstance(result, (Ignored, Ping)):
        return
    data = json.loads(json.dumps(to_dict(result)))
    assert from_dict(data) == result
