"""Who may release a pull request's destructive changes, for which environment and commit, and which ones.

A deploy holds back what :func:`mergeway.report.risk.destructive` finds (prunes of storage, namespaces,
CRDs and protected objects; recreates; changes that let Kubernetes delete data). An allowance releases
them, and it has to mean that a second person looked at exactly what is merged:

* ``/allow-destructive <env> <commit>`` names the environment and the pull request's head commit
  (7 to 40 hex digits). A later push changes the head, so an allowance given before it no longer
  matches: whoever allows has seen the last push. Anything else (no commit, two environments, extra
  words) is malformed and never counts, at merge or anywhere else.
* The commenter has write access and is not the pull request's author (an author allowing their own
  deletions is no review). Comments are read from the forge, with their forge-given author.
* The label ``mergeway/allow-destructive`` counts when whoever last added it (the forge's label
  events, not the label itself: GitHub Triage and GitLab Reporter may set labels) passes the same
  two checks. A label names no commit.
* An allowance releases only what *this* pull request changes: objects whose rendered manifests
  differ between the commit before the merge and the merge commit (:func:`changed_identities`). A change held
  from another pull request merged earlier stays held until that pull request is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from mergeway.commands import parse_command
from mergeway.events import Command
from mergeway.forge.base import Forge, PullRequestInfo
from mergeway.kube.changeset import ObjectRef
from mergeway.render import Rendered
from mergeway.report import allowance as texts
from mergeway.report.markdown import ALLOW_LABEL

COMMAND = "allow-destructive"
_COMMIT = re.compile(r"[0-9a-f]{7,40}")


@dataclass(frozen=True)
class Request:
    """What a well-formed ``/allow-destructive`` names."""

    env: str
    commit: str


@dataclass(frozen=True)
class Allowance:
    """A valid allowance for one environment of one pull request, and who gave it."""

    env: str
    by: str
    #: ``comment`` or ``label``
    via: str


def parse(command: Command | None) -> Request | None:
    """The environment and commit of a well-formed ``/allow-destructive env commit``; ``None`` otherwise."""
    if command is None or command.name != COMMAND or len(command.args) != 2:
        return None
    env, commit = command.args[0], command.args[1].lower()
    return Request(env, commit) if _COMMIT.fullmatch(commit) else None


def refusal(forge: Forge, pr: PullRequestInfo, author: str, request: Request) -> str:
    """Why ``author``'s well-formed request does not count (``""``: it counts), in the reply's words."""
    if author.lower() == pr.author.lower():
        return texts.own_changes(author)
    if not pr.head_sha.startswith(request.commit):
        return texts.not_the_head(author, request.commit, pr.number, pr.head_sha, request.env)
    if not forge.get_permission(author).can_write:
        return texts.no_write_access(author)
    return ""


def find(forge: Forge, pr: PullRequestInfo, env: str) -> Allowance | None:
    """A valid allowance of ``env`` for ``pr`` as it is now (its head, comments and label events), if any."""
    me = forge.identity()
    for comment in forge.list_comments(pr.number):
        request = parse(parse_command(comment.body))
        if request is None or request.env != env or not comment.author or me.wrote(comment):
            continue
        if not refusal(forge, pr, comment.author, request):
            return Allowance(env, comment.author, "comment")
    if ALLOW_LABEL in pr.labels:
        by = forge.label_added_by(pr.number, ALLOW_LABEL)
        if by and by.lower() != pr.author.lower() and forge.get_permission(by).can_write:
            return Allowance(env, by, "label")
    return None


Identity = tuple[str, str, str, str]


def changed_identities(before: Rendered, after: Rendered) -> set[Identity]:
    """Objects added, removed or changed between two renders, as (group, kind, namespace, name)."""
    old = {(m.group, m.kind, m.namespace, m.name): m.obj for m in before.manifests}
    new = {(m.group, m.kind, m.namespace, m.name): m.obj for m in after.manifests}
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def owns(changed: Collection[Identity], ref: ObjectRef) -> bool:
    """Whether ``ref`` is one of ``changed`` (a manifest without a namespace matches any)."""
    return (ref.group, ref.kind, ref.namespace, ref.name) in changed or (ref.group, ref.kind, "", ref.name) in changed
