"""The Markdown building blocks every Mergeway comment shares, in one place.

Comments carry repository content (object names, API server messages, values from manifests) that
an attacker may control, so every piece of it goes through one of these helpers: a fence that
content cannot close, a table cell that cannot break the table, inline code that cannot open HTML.
The hidden markers and the texts that tell people what they can do next live here too, so the
preview, deploy and summary comments never drift apart in wording.
"""

from __future__ import annotations

import html
import re

#: The label that lets a pull request's destructive changes be applied on merge.
ALLOW_LABEL = "mergeway/allow-destructive"

ROLLBACK_HINT = (
    "> Comment `/rollback` on this pull request to open a pull request that reverts it; "
    "merging that deploys the previous state."
)


def marker(kind: str, env: str) -> str:
    """The hidden marker that lets the same comment be found and edited on every push."""
    return f"<!-- mergeway:{kind}:{env} -->"


def clip(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (commit status descriptions stop at 140)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fence(text: str, lang: str = "") -> str:
    """A code fence longer than any backtick run inside, so content cannot close it early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{ticks}{lang}\n{body}{ticks}\n"


def cell(text: str) -> str:
    """Text that stays inside one table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def code(text: str) -> str:
    """Inline code for untrusted text: HTML-escaped ``<code>``, which backticks inside cannot end."""
    return f"<code>{cell(html.escape(text, quote=False))}</code>"


def sha(full: str) -> str:
    """A commit as the forge links it: the full SHA as plain text (GitHub and GitLab autolink it)."""
    return full if re.fullmatch(r"[0-9a-f]{40}", full) else code(full)
