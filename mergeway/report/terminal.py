"""Print a plan in the terminal, like ``kubectl diff`` but with a summary and per-object status."""

from __future__ import annotations

from typing import TextIO

from mergeway.hooks import PHASE_WORDS
from mergeway.kube.changeset import Plan

_COLORS = {"+": "\033[32m", "-": "\033[31m", "@": "\033[36m"}
_RESET = "\033[0m"
_BOLD = "\033[1m"


#: The same words as the pull request comments and statuses.
_WORDS = {"create": "add", "update": "change", "delete": "prune", "error": "failed"}
_ORDER = {"error": 0, "create": 1, "update": 2, "delete": 3}


def print_plan(plan: Plan, out: TextIO, *, color: bool, warnings: list[str] | None = None) -> None:
    """Summary first, then failures, then each change; the summary again last, next to the prompt."""
    out.write(f"{plan.summary()}\n")
    for warning in warnings or []:
        out.write(f"warning: {warning}\n")
    for item in sorted(plan.items, key=lambda i: (_ORDER.get(i.action, 9), i.ref)):
        if item.action == "unchanged":
            continue
        title = f"{_WORDS[item.action]}: {item.ref}"
        out.write(f"{_BOLD}{title}{_RESET}\n" if color else f"{title}\n")
        if item.message:
            out.write(f"  {item.message}\n")
        for line in item.diff.splitlines():
            code = _COLORS.get(line[:1]) if color and not line.startswith(("+++", "---")) else None
            out.write(f"{code}{line}{_RESET}\n" if code else f"{line}\n")
    for phase, words in PHASE_WORDS.items():  # hooks are runs: listed, never diffed
        for hook in (h for h in plan.hooks if phase in h.phases):
            out.write(f"hook, {words}: {hook.ref} ({hook.said})\n")
    for skipped in plan.skipped:
        out.write(f"hook not applied: {skipped.ref} ({skipped.said}: {skipped.why})\n")
    out.write(f"{plan.summary()}\n")
