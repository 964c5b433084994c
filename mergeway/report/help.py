"""The ``/help`` answer: every command Mergeway understands, what it does and who may use it.

The table is built from :data:`USAGE`, keyed by the command names themselves (the type checker
refuses a name Mergeway does not have, and the report layout tests a command left out), so /help
cannot drift from what the parser accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mergeway.events import CommandName
from mergeway.report.markdown import marker

MARKER: Final = marker("help")

#: Per command, in the order /help lists them: how to write it, and what it does.
USAGE: Final[dict[CommandName, tuple[str, str]]] = {
    "preview": (
        "/preview",
        "re-run the preview of every environment (`/preview staging` for one; needs write access)",
    ),
    "rollback": ("/rollback", "on a merged pull request: open a pull request that reverts it (needs write access)"),
    "allow-destructive": (
        "/allow-destructive staging 1a2b3c4d5e6f",
        "let merging this pull request at that head commit prune storage, namespaces or CRDs in `staging` "
        "(needs write access; not the author)",
    ),
    "lock": (
        "/lock production incident 42",
        "stop merges from deploying `production` until `/unlock production`; they wait, the newest then deploys "
        "(needs write access; also on the drift issue)",
    ),
    "unlock": (
        "/unlock production",
        "lift the lock: the newest merge waiting deploys (needs write access; also on the drift issue)",
    ),
    "deploy": (
        "/deploy production --during-freeze",
        "on a merged pull request: deploy its merge to `production` once during a freeze window (repository admins)",
    ),
    "drift": (
        "/drift",
        "compare the cluster with the commit last applied and say what drifted, by whom "
        "(`/drift staging` for one; needs write access)",
    ),
    "revert-drift": (
        "/revert-drift",
        "on the drift issue: re-apply the commit last applied to that environment, so Git's values win "
        "(needs write access)",
    ),
    "adopt-drift": (
        "/adopt-drift",
        "on the drift issue: open a pull request that writes the live values into the repository (needs write access)",
    ),
    "help": ("/help", "this message"),
}


def render_help(locks: Sequence[str] = ()) -> str:
    """The help comment, with its marker so asking again edits the same comment; ``locks``: lines on locks in force."""
    rows = [f"| `{usage}` | {what} |" for usage, what in USAGE.values()]
    held = ["**Locked now:**", "", *(f"- 🔒 {line}" for line in locks), ""] if locks else []
    return "\n".join(
        [
            MARKER,
            "**Mergeway commands** (comment on a pull request or merge request):",
            "",
            "| command | what it does |",
            "|---|---|",
            *rows,
            "",
            "Previews run by themselves when the pull request is opened or new commits are pushed; merging deploys.",
            "",
            *held,
        ]
    )
