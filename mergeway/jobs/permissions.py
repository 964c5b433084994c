"""Who may run a command: ``/preview`` and ``/rollback`` need write access, ``/help`` is open.

``/preview`` renders the pull request's content with the worker's tools and dry-runs it with the
worker's cluster credentials, so it is as sensitive as ``/rollback``: anyone who can comment
(on a public repository, anyone at all) must not be able to start it. The check asks the forge for
the commenter's permission on the repository at the time the job runs; the answer to a refused
commenter is one sticky reply per command, and nothing else happens.
"""

from __future__ import annotations

from mergeway.events import CommentCommand
from mergeway.forge.base import Forge, LockFactory
from mergeway.report.markdown import marker, refusal


def may_run(forge: Forge, event: CommentCommand, *, lock: LockFactory | None = None) -> bool:
    """True when ``event.author`` can write to the repository; otherwise reply and return False."""
    if forge.get_permission(event.author).can_write:
        return True
    marked = marker("command", event.command.name)
    text = f"{marked}\n{refusal(event.author, event.command.name, nothing='run')}"
    forge.upsert_comment(event.pr.number, marked, text, lock=lock)
    return False
