"""The texts of ``/rollback``: its replies on the merged pull request, and the revert pull request.

Each reply says what happened and what the person can do next; none of them is ever left saying
"working on it". The git error of a revert that conflicts is repository content (file names), so
it is fenced the way every untrusted text is (:func:`mergeway.report.markdown.fence`).
"""

from __future__ import annotations

from typing import Final

from mergeway.report.markdown import fence, marker, refusal

MARKER: Final = marker("rollback")


def render_reply(text: str) -> str:
    """A reply as the sticky rollback comment: asking again edits it instead of adding another."""
    return f"{MARKER}\n{text}"


def refused(author: str) -> str:
    return refusal(author, "rollback", nothing="changed")


def not_merged(author: str, number: int, state: str) -> str:
    return f"@{author} `/rollback` works on merged pull requests only; #{number} is {state}. Nothing was changed."


def already_open(url: str) -> str:
    return f"The revert pull request is already open: {url}"


def not_reverted(author: str, number: int, base_ref: str, error: str) -> str:
    return (
        f"@{author} the merge of #{number} could not be reverted "
        f"automatically on `{base_ref}` (a later change probably conflicts):\n\n"
        f"{fence(error)}Revert it by hand and open a pull request."
    )


def opened(author: str, url: str) -> str:
    return f"@{author} opened {url} to revert this pull request. Review its preview, then merge it to roll back."


def revert_title(title: str) -> str:
    """The revert pull request's title, the way ``git revert`` names its commit."""
    return f'Revert "{title}"'


def revert_message(title: str, commits: int, number: int) -> str:
    """The commit message of one revert of a rebase-merge's ``commits`` commits."""
    return f"{revert_title(title)}\n\nThis reverts the {commits} commits of #{number}."


def revert_body(number: int, url: str, author: str) -> str:
    """The revert pull request's description: what it undoes, who asked, and what merging it does."""
    return (
        f"Reverts #{number} ({url}), as requested by @{author} with `/rollback`.\n\n"
        f"Merging this pull request deploys the state from before #{number}; Mergeway previews it first."
    )
