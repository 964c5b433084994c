"""What people read about gates: a deploy waiting (locked, frozen, after another environment), a
waiting merge replaced by a newer one, the replies to ``/lock``, ``/unlock`` and ``/deploy``, and
the lines previews and ``/help`` add about locks and freezes.

Lock reasons are comment text anyone with write access typed: they go through :func:`code`-style
escaping (:func:`plain`) wherever they reach Markdown.
"""

from __future__ import annotations

from typing import Final

from mergeway.gates import Gate, Lock
from mergeway.report.markdown import cell, marker, sha

MARKER: Final = marker("command", "gates")


def plain(text: str) -> str:
    """Untrusted one-line text that can open no HTML, link, image or code span in a comment.

    Mentions stay: a lock's reason is written by someone with write access, who could mention in
    their own comment anyway.
    """
    out = cell(" ".join(text.split()))
    for ch in "<>`[]*_~#!":
        out = out.replace(ch, "\\" + ch)
    return out


def waiting_paragraph(env: str, gate: Gate) -> str:
    """The deploy comment's body while a merge waits: why, and what releases it."""
    why = plain(gate.reason)
    if gate.kind == "lock":
        then = (
            f"It deploys when someone with write access comments `/unlock {env}`; "
            "the newest merge waiting then deploys and older ones are marked superseded."
        )
    elif gate.kind == "freeze":
        then = (
            f"It deploys when the freeze ends. A repository admin can deploy it now with "
            f"`/deploy {env} --during-freeze` on this pull request."
        )
    else:
        then = "It deploys once every environment it follows is healthy on this merge; a later merge replaces it."
    return f"This merge waits before deploying `{env}`: {why}.\n\n{then}"


def render_waiting(env: str, merge_sha: str, paragraph: str) -> list[str]:
    return [f"### ⏸️ Waiting · `{env}` · {sha(merge_sha)}", "", paragraph]


def superseded_while_waiting(newer: str) -> str:
    """The note on a waiting merge a newer one replaced (the newer merge includes it)."""
    return f"A newer merge ({sha(newer)}) replaced this one while it waited; it deploys instead."


def superseded_reason(newer: str) -> str:
    """The record's reason for a waiting merge a newer one replaced."""
    return f"replaced while waiting by the newer merge {newer[:12]}"


def why_unlocked(author: str) -> str:
    return f"unlocked by @{author}"


def why_during_freeze(author: str) -> str:
    return f"/deploy --during-freeze by @{author}"


def why_healthy(env: str) -> str:
    return f"`{env}` turned healthy"


WHY_OPENED = "the gate opened as it began to wait"
WHY_THAWED = "the freeze ended"


def released_reason(why: str) -> str:
    """The record's reason when a waiting merge is let through (``unlocked by @bob``, ``the freeze ended``)."""
    return f"released: {why}"


# -- replies to /lock, /unlock, /deploy --------------------------------------------------------------


def render_reply(text: str) -> str:
    return f"{MARKER}\n{text}\n"


def locked(author: str, env: str, lock: Lock) -> str:
    return (
        f"🔒 @{author} locked `{env}`"
        + (f": {plain(lock.reason)}" if lock.reason else "")
        + (f". Merges wait until `/unlock {env}`.")
    )


def lock_line(env: str, lock: Lock) -> str:
    """``prod`` is locked by @alice since 14:02 UTC: incident 42 (the reason escaped)."""
    return lock._replace(reason=plain(lock.reason)).footer(env)


def already_locked(author: str, env: str, lock: Lock) -> str:
    return f"@{author} {lock_line(env, lock)}; nothing changed."


def unlocked(author: str, env: str, waiting: int) -> str:
    then = f" The newest of {waiting} waiting merge(s) deploys now." if waiting else " No merge was waiting."
    return f"🔓 @{author} unlocked `{env}`.{then}"


def not_locked(author: str, env: str) -> str:
    return f"@{author} `{env}` is not locked; nothing changed."


def usage(author: str, command: str) -> str:
    examples = {
        "lock": "/lock production incident 42",
        "unlock": "/unlock production",
        "deploy": "/deploy production --during-freeze",
    }
    return f"@{author} write it as `{examples.get(command, command)}`. Nothing was run."


def unknown_environment(author: str, env: str, known: list[str]) -> str:
    listing = ", ".join(f"`{k}`" for k in known) or "none that could be read"
    return f"@{author} this repository has no environment `{plain(env)}` (it has: {listing}). Nothing was run."


def not_on_this_issue(author: str, command: str) -> str:
    """The reply to a gate command on an issue that is not Mergeway's drift issue (or to ``/deploy`` on one)."""
    if command == "deploy":
        return f"@{author} `/deploy` works on the merged pull request it deploys. Nothing was run."
    return (
        f"@{author} `/{command}` works on pull requests and on Mergeway's drift issue "
        "(titled `Drift in <environment>`). Nothing was run."
    )


def admins_only(author: str, env: str) -> str:
    return f"@{author} only repository admins can deploy `{env}` during a freeze. Nothing was deployed."


def not_merged(author: str) -> str:
    return f"@{author} `/deploy` works on a merged pull request: it deploys that merge. Nothing was deployed."


def not_frozen(author: str, env: str) -> str:
    return f"@{author} `{env}` is not in a freeze window; merges deploy it as usual. Nothing was deployed."


def deploying_during_freeze(author: str, env: str, reason: str) -> str:
    return f"❄️ @{author} deploys `{env}` during the freeze ({plain(reason)}); the deploy comment follows."


# -- previews and /help --------------------------------------------------------------------------------


def preview_lines(env: str, lock: Lock | None, after: tuple[str, ...]) -> list[str]:
    """Lines for the preview's footer: a lock, the environments this one follows (freezes: report/freeze.py)."""
    lines = []
    if lock is not None:
        lines.append(f"🔒 {lock_line(env, lock)}: merges wait until it is unlocked.")
    if after:
        names = ", ".join(f"`{a}`" for a in after)
        lines.append(f"Deploys after {names} is healthy on the same merge.")
    return [*lines, ""] if lines else []
