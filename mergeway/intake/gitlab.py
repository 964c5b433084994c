"""GitLab deliveries → forge-neutral events.

The hook type comes from ``X-Gitlab-Event`` (``Merge Request Hook``, ``Note Hook`` ...), falling
back to the body's ``object_kind`` for senders that omit the header. Notable GitLab rules:

- ``update`` runs a preview only when ``object_attributes.oldrev`` is present: GitLab sends
  ``update`` for title/label/assignee edits too, and only new commits change what would deploy.
- Merge request hooks carry ``author_id`` but not the author's username; ``user`` is whoever acted.
  So the author is known only when the actor is the author (e.g. on ``open``), and is left empty
  otherwise: jobs that need it look it up.
- System notes (``system: true``: "added 1 commit", "changed the description") are not comments.
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
from mergeway.intake import Ignored, Parsed
from mergeway.intake.comments import comment_command, issue_command
from mergeway.intake.fields import obj, opt_bool, opt_int, opt_str, req_int, req_str

#: ``X-Gitlab-Event`` values → ``object_kind``; also the metrics label for the event.
HOOKS = {
    "Merge Request Hook": "merge_request",
    "Note Hook": "note",
    "Push Hook": "push",
    "Tag Push Hook": "tag_push",
    "Issue Hook": "issue",
    "Pipeline Hook": "pipeline",
    "Job Hook": "build",
    "Wiki Page Hook": "wiki_page",
    "Release Hook": "release",
}
KNOWN_EVENTS = frozenset(HOOKS.values())


def event_kind(header: str | None, payload: dict[str, Any] | None = None) -> str:
    """The ``object_kind`` a delivery is about, from the header or else the body."""
    if header:
        return HOOKS.get(header.strip(), header.strip()[:64])
    return opt_str(payload, "object_kind")[:64] if payload is not None else ""


def parse(kind: str, delivery_id: str, payload: dict[str, Any], *, bot_logins: Collection[str] = ()) -> Parsed:
    """Interpret one verified GitLab delivery; ``kind`` is from :func:`event_kind`."""
    if kind == "merge_request":
        return _merge_request(delivery_id, payload)
    if kind == "note":
        return _note(delivery_id, payload, bot_logins)
    if kind in ("push", "tag_push"):
        return Ignored("push events do not run jobs; deploys follow merged merge requests")
    return Ignored(f"GitLab event {kind!r} is not handled" if kind else "GitLab event type is missing")


def _merge_request(delivery_id: str, payload: dict[str, Any]) -> Parsed:
    attrs = obj(payload, "object_attributes")
    action = opt_str(attrs, "action")
    if action == "update" and not opt_str(attrs, "oldrev"):
        return Ignored("merge request update without new commits")
    if action not in ("open", "reopen", "update", "merge", "close"):
        return Ignored(f"merge request action {action[:64]!r} does not run a job")
    repo = _repository(payload)
    actor = obj(payload, "user")
    author = opt_str(actor, "username") if opt_int(actor, "id") == opt_int(attrs, "author_id") else ""
    merged = action == "merge"
    pr = PullRequest(
        number=req_int(payload, "object_attributes", "iid"),
        title=opt_str(attrs, "title"),
        head_sha=req_str(payload, "object_attributes", "last_commit", "id"),
        head_ref=opt_str(attrs, "source_branch"),
        base_ref=req_str(payload, "object_attributes", "target_branch"),
        author=author,
        url=opt_str(attrs, "url") or _mr_url(repo, req_int(payload, "object_attributes", "iid")),
        is_fork=_is_fork(attrs),
        merge_commit_sha=(
            opt_str(attrs, "merge_commit_sha") or opt_str(attrs, "squash_commit_sha") or None if merged else None
        ),
    )
    if action in ("open", "reopen", "update"):
        return PullRequestUpdated(delivery_id=delivery_id, repo=repo, pr=pr, action=action)
    if merged:
        merged_by = opt_str(actor, "username")
        return PullRequestMerged(delivery_id=delivery_id, repo=repo, pr=pr, merged_by=merged_by)
    return PullRequestClosed(delivery_id=delivery_id, repo=repo, pr=pr)


def _note(delivery_id: str, payload: dict[str, Any], bot_logins: Collection[str]) -> Parsed:
    attrs = obj(payload, "object_attributes")
    noteable = opt_str(attrs, "noteable_type")
    if noteable not in ("MergeRequest", "Issue"):
        return Ignored("comment is not on a merge request or an issue")
    # Older GitLab versions send no action on notes; newer ones send "create" or "update".
    if opt_str(attrs, "action", default="create") != "create":
        return Ignored("only new comments run commands")
    if opt_bool(attrs, "system"):
        return Ignored("system note, not a comment")
    author = opt_str(payload, "user", "username")
    if noteable == "Issue":

        def on_issue() -> tuple[Repository, int, int]:
            return _repository(payload), req_int(payload, "issue", "iid"), req_int(payload, "object_attributes", "id")

        return issue_command(delivery_id, attrs.get("note"), author, bot_logins, on_issue)

    def where() -> tuple[Repository, PullRequest, int]:
        repo = _repository(payload)
        mr = obj(payload, "merge_request")
        iid = req_int(payload, "merge_request", "iid")
        pr = PullRequest(
            number=iid,
            title=opt_str(mr, "title"),
            head_sha=opt_str(mr, "last_commit", "id"),
            head_ref=opt_str(mr, "source_branch"),
            base_ref=opt_str(mr, "target_branch"),
            author="",
            url=opt_str(mr, "url") or _mr_url(repo, iid),
            is_fork=_is_fork(mr),
        )
        return repo, pr, req_int(payload, "object_attributes", "id")

    return comment_command(delivery_id, attrs.get("note"), author, bot_logins, where)


def _repository(payload: dict[str, Any]) -> Repository:
    """The delivery's claim about the project; the worker checks it against the API.

    ``git_http_url`` is deliberately not read: git talks only to the configured GitLab host.
    """
    project = obj(payload, "project")
    web_url = opt_str(project, "web_url") or opt_str(payload, "repository", "homepage")
    return Repository(
        forge="gitlab",
        full_name=req_str(payload, "project", "path_with_namespace"),
        clone_url="",
        default_branch=opt_str(project, "default_branch") or "main",
        project_id=opt_int(project, "id") or opt_int(payload, "project_id"),
        web_url=web_url,
    )


def _is_fork(attrs: dict[str, Any]) -> bool:
    """Same-project only when both ids are present and equal: a missing source project is a fork."""
    source, target = opt_int(attrs, "source_project_id"), opt_int(attrs, "target_project_id")
    return source is None or target is None or source != target


def _mr_url(repo: Repository, iid: int) -> str:
    return f"{repo.web_url}/-/merge_requests/{iid}" if repo.web_url else ""
