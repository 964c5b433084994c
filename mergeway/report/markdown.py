"""The Markdown building blocks every Mergeway comment shares, in one place.

Comments carry repository content (object names, API server messages, values from manifests) that
an attacker may control, so every piece of it goes through one of these helpers: a fence that
content cannot close, a table cell that cannot break the table, inline code that cannot open HTML.
The hidden markers, the commit status names and the texts that tell people what they can do next
live here too, so the preview, deploy, summary and command replies never drift apart in wording.
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


def marker(kind: str, env: str = "") -> str:
    """The hidden marker that lets the same comment be found and edited on every push.

    ``env`` is the environment (or the command, for a refusal); the help and rollback replies,
    one per pull request, have none.
    """
    return f"<!-- mergeway:{kind}:{env} -->" if env else f"<!-- mergeway:{kind} -->"


def status_name(kind: str, env: str = "") -> str:
    """The commit status context of the ``kind`` job in ``env``: ``mergeway/preview/staging``.

    Without ``env``, the job's own context, for a job that ended before it knew its environments.
    """
    return f"mergeway/{kind}/{env}" if env else f"mergeway/{kind}"


def status_kind(context: str) -> tuple[str, str]:
    """``(kind, env)`` of a context :func:`status_name` built; ``env`` is ``""`` when it has none."""
    _, kind, env = [*context.split("/", 2), "", ""][:3]
    return kind, env


def refusal(author: str, command: str, *, nothing: str = "run") -> str:
    """The reply to a command its author may not use; ``nothing`` says what did not happen."""
    return f"@{author} only users with write access to this repository can use `/{command}`. Nothing was {nothing}."


def clip_body(body: str, limit: int) -> str:
    """A whole comment cut to the forge's size limit, saying so at the end."""
    return body if len(body) <= limit else body[: limit - 60] + "\n\n_Cut to fit the comment size limit._\n"


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
