"""The words of ``/allow-destructive``: the command to write, why one does not count, and the replies.

The rules themselves (who may allow what, for which commit) are :mod:`mergeway.jobs.allowance`;
this module only says them, so the reply, the deploy comment's hint and ``/help`` agree.
"""

from __future__ import annotations

from typing import Final

from mergeway.report.markdown import marker, refusal

#: The sticky reply to ``/allow-destructive`` on a pull request.
MARKER: Final = marker("allow", "reply")


def usage(env: str, head_sha: str) -> str:
    """The exact command that allows ``env`` at the pull request's head, for replies and hints."""
    return f"/allow-destructive {env} {head_sha[:12]}"


def own_changes(author: str) -> str:
    return (
        f"@{author} the author of a pull request cannot allow its own destructive changes: someone else "
        "with write access must review them and comment"
    )


def not_the_head(author: str, commit: str, number: int, head_sha: str, env: str) -> str:
    return (
        f"@{author} commit `{commit}` is not the head of #{number} (`{head_sha[:12]}`): review "
        f"the latest push, then comment `{usage(env, head_sha)}`"
    )


def no_write_access(author: str) -> str:
    return f"@{author} only users with write access can allow destructive changes"


def may_not_allow(author: str) -> str:
    """The reply to ``/allow-destructive`` from someone without write access."""
    return refusal(author, "allow-destructive", nothing="changed")


def malformed(author: str, env: str, head_sha: str) -> str:
    return f"@{author} name one environment and the commit you reviewed: `{usage(env, head_sha)}`. Nothing was changed."


def refused(why: str) -> str:
    """A well-formed allowance that does not count, and why (see :func:`own_changes` and the others)."""
    return f"{why}. Nothing was changed."


def unknown_environment(author: str, env: str, names: list[str]) -> str:
    known = ", ".join(f"`{n}`" for n in names) or "none"
    return f"@{author} `{env}` is not an environment of this repository ({known}). Nothing was changed."


def noted(author: str, number: int, head_sha: str, env: str) -> str:
    """An allowance given before the merge: it counts when the pull request is merged at that head."""
    return (
        f"Noted: merging #{number} at `{head_sha[:12]}` will apply its own destructive changes to "
        f"`{env}` (allowed by @{author}). A later push needs a new allowance."
    )


def render_reply(text: str) -> str:
    return f"{MARKER}\n{text}"
