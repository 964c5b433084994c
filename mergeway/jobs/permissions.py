"""Who may run a command: ``/preview`` and ``/rollback`` need write access, ``/help`` is open.

``/preview`` renders the pull request's content with the worker's tools and dry-runs it with the
worker's cluster credentials, so it is as sensitive as ``/rollback``: anyone who can comment
(on a public repository, anyone at all) must not be able to start it. The check asks the forge for
the commenter's permission on the repository at the time the job runs; the answer to a refused
commenter is one sticky reply per command, and nothing else happens.
"""

from __future__ import annotations

from mergeway.events import CommentCommand
from mergeway.forge.base import Forge
from mergeway.report.publish import Publisher


def may_run(forge: Forge, event: CommentCommand, out: Publisher) -> bool:
    """True when ``event.author`` can write to the repository; otherwise reply through ``out`` and return False."""
    if forge.get_permission(event.author).can_write:
        return True
    out.refusal(event.command.name, event.author, nothing="run")
    return False
