"""GitHub deliveries → forge-neutral events.

The event name comes from the ``X-GitHub-Event`` header and the action from the body, as GitHub
advises ("check both, because new ones keep being added"). Anything not in :data:`KNOWN_EVENTS`
(with the actions handled below) is :class:`~mergeway.intake.Ignored`, with a reason a person
reading the delivery log understands.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mergeway.events import (
    PullRequest,
    PullRequestClosed,
    PullRequestMerged,
    PullRequestUpdated,
    Repository,
)
from mergeway.intake import Ignored, Parsed, Ping
from mergeway.intake.comments import comment_command, issue_command
from mergeway.intake.fields import obj, opt_bool, opt_int, opt_str, req_int, req_str
from mergeway.intake.mergegroup import merge_group

PREVIEW_ACTIONS = frozenset({"opened", "synchronize", "reopened"})
#: Event names we recognise, for metrics labels (anything else is counted as "other").
KNOWN_EVENTS = frozenset({"ping", "pull_request", "issue_comment", "push", "merge_group"})


def parse(event_name: str, delivery_id: str, payload: dict[str, Any], *, bot_logins: Collection[str] = ()) -> Parsed:
    """Interpret one verified GitHub delivery; ``InvalidPayloadError`` when a needed field is missing."""
    if event_name == "ping":
        return Ping(zen=opt_str(payload, "zen"))
    if event_name == "pull_request":
        return _pull_request(delivery_id, payload)
    if event_name == "issue_comment":
        return _issue_comment(delivery_id, payload, bot_logins)
    if event_name == "merge_group":
        return merge_group(delivery_id, payload, _repository)
    if event_name == "push":
        return Ignored("push events do not run jobs; deploys follow merged pull requests")
    return Ignored(f"GitHub event {_short(event_name)!r} is not handled")


def _pull_request(delivery_id: str, payload: dict[str, Any]) -> Parsed:
    action = opt_str(payload, "action")
    if action not in PREVIEW_ACTIONS and action != "closed":
        return Ignored(f"pull_request action {_short(action)!r} does not run a job")
    repo = _repository(payload)
    data = obj(payload, "pull_request")
    merged = opt_bool(data, "merged")
    pr = _pull(data, payload, merged=merged)
    if action in PREVIEW_ACTIONS:
        return PullRequestUpdated(delivery_id=delivery_id, repo=repo, pr=pr, action=action)
    if merged:
        merged_by = opt_str(data, "merged_by", "login") or opt_str(payload, "sender", "login")
        return PullRequestMerged(delivery_id=delivery_id, repo=repo, pr=pr, merged_by=merged_by)
    return PullRequestClosed(delivery_id=delivery_id, repo=repo, pr=pr)


def _issue_comment(delivery_id: str, payload: dict[str, Any], bot_logins: Collection[str]) -> Parsed:
    action = opt_str(payload, "action")
    if action != "created":
        return Ignored(f"issue_comment action {_short(action)!r} does not run a job")
    issue = obj(payload, "issue")
    comment = obj(payload, "comment")
    author = opt_str(comment, "user", "login") or opt_str(payload, "sender", "login")
    if "pull_request" not in issue:

        def on_issue() -> tuple[Repository, int, int]:
            return _repository(payload), req_int(payload, "issue", "number"), req_int(payload, "comment", "id")

        return issue_command(delivery_id, comment.get("body"), author, bot_logins, on_issue)

    def where() -> tuple[Repository, PullRequest, int]:
        # The issue_comment payload has no head/base refs: jobs look the pull request up.
        pr = PullRequest(
            number=req_int(payload, "issue", "number"),
            title=opt_str(issue, "title"),
            head_sha="",
            head_ref="",
            base_ref="",
            author=opt_str(issue, "user", "login"),
            url=opt_str(issue, "pull_request", "html_url") or opt_str(issue, "html_url"),
        )
        return _repository(payload), pr, req_int(payload, "comment", "id")

    return comment_command(delivery_id, comment.get("body"), author, bot_logins, where)


def _repository(payload: dict[str, Any]) -> Repository:
    """The delivery's claim about the repository; the worker checks it against the API.

    ``clone_url`` is deliberately not read: git talks only to the configured forge host.
    """
    repo = obj(payload, "repository")
    full_name = req_str(payload, "repository", "full_name")
    return Repository(
        forge="github",
        full_name=full_name,
        clone_url="",
        default_branch=opt_str(repo, "default_branch") or opt_str(repo, "master_branch") or "main",
        web_url=opt_str(repo, "html_url"),
        installation_id=opt_int(payload, "installation", "id"),
    )


def _pull(data: dict[str, Any], payload: dict[str, Any], *, merged: bool) -> PullRequest:
    base_repo = opt_str(data, "base", "repo", "full_name") or opt_str(payload, "repository", "full_name")
    head_repo = opt_str(data, "head", "repo", "full_name")
    return PullRequest(
        number=req_int(payload, "pull_request", "number"),
        title=opt_str(data, "title"),
        head_sha=req_str(payload, "pull_request", "head", "sha"),
        head_ref=opt_str(data, "head", "ref"),
        base_ref=req_str(payload, "pull_request", "base", "ref"),
        author=opt_str(data, "user", "login"),
        url=opt_str(data, "html_url"),
        # A deleted fork leaves head.repo null: still a fork, and still untrusted.
        is_fork=head_repo.lower() != base_repo.lower(),
        # Before the merge, GitHub's merge_commit_sha is a throwaway test merge: not worth keeping.
        merge_commit_sha=(opt_str(data, "merge_commit_sha") or None) if merged else None,
    )


def _short(text: str) -> str:
    """Untrusted names go into replies and logs: keep them short."""
    return text[:64]
