"""A comment on a pull/merge request → a command event, the same way for every forge.

What makes a comment a command is forge-neutral: not written by Mergeway itself (its own replies
quote commands), and starting with one of our slash commands. Only where the pull request, the
repository and the comment id sit in the payload differs, so each forge's parser passes that as
``where``, read only once the comment is known to be a command: an unrelated comment with a
payload that lacks a field is ignored, not refused.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from mergeway.commands import parse_command
from mergeway.events import EITHER_COMMANDS, ISSUE_COMMANDS, CommentCommand, IssueCommand, PullRequest, Repository
from mergeway.intake import Ignored, Parsed

#: The parts of a command event that sit in a different place in each forge's payload.
Where = Callable[[], tuple[Repository, PullRequest, int]]
#: The same for a comment on an issue: the repository, the issue's number and the comment's id.
IssueWhere = Callable[[], tuple[Repository, int, int]]


def comment_command(delivery_id: str, body: object, author: str, bot_logins: Collection[str], where: Where) -> Parsed:
    """The command event for a comment, or why it is :class:`~mergeway.intake.Ignored`."""
    if is_bot(author, bot_logins):
        return Ignored("comment written by Mergeway itself")
    command = parse_command(body)
    if command is None:
        return Ignored("comment is not a Mergeway command")
    if command.name in ISSUE_COMMANDS:
        return Ignored(f"/{command.name} is answered on the drift issue, not on a pull request")
    repo, pr, comment_id = where()
    return CommentCommand(
        delivery_id=delivery_id, repo=repo, pr=pr, command=command, comment_id=comment_id, author=author
    )


def issue_command(
    delivery_id: str, body: object, author: str, bot_logins: Collection[str], where: IssueWhere
) -> Parsed:
    """The command event for a comment on an issue: only the issue commands (``/revert-drift``...) and
    ``/lock``, ``/unlock`` count; which issue is Mergeway's drift issue, the job reads from the forge."""
    if is_bot(author, bot_logins):
        return Ignored("comment written by Mergeway itself")
    command = parse_command(body)
    if command is None:
        return Ignored("comment is not a Mergeway command")
    if command.name not in ISSUE_COMMANDS | EITHER_COMMANDS:
        return Ignored(f"/{command.name} is answered on pull requests, not on issues")
    repo, number, comment_id = where()
    return IssueCommand(
        delivery_id=delivery_id, repo=repo, issue=number, command=command, comment_id=comment_id, author=author
    )


def is_bot(login: str, bot_logins: Collection[str]) -> bool:
    """Whether ``login`` is one of Mergeway's own accounts (forge logins are case-insensitive)."""
    lowered = login.lower()
    return any(lowered == b.lower() for b in bot_logins)
