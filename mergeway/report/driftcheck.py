"""The words of a drift check where a pull request shows them: ``/drift``'s reply and the preview's note.

Live values are cluster content (and Secret values are already masked by the check), so every one
of them is shown as escaped inline code (:func:`mergeway.report.markdown.code`), cut to one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mergeway.drift import DriftCheck, FieldDrift, ObjectDrift
from mergeway.report.markdown import clip, code, marker

MARKER: Final = marker("drift")
#: The word cluster errors use for what was tried ("the cluster refused the drift check").
VERB: Final = "drift check"
#: Why a scheduled check runs (logs and the environment event's reason).
SCHEDULED: Final = "scheduled drift check"
#: How many drifted objects one reply lists per environment (the issue lists them all).
LISTED = 20


def render_reply(text: str) -> str:
    """``/drift``'s sticky reply: asking again edits it."""
    return f"{MARKER}\n{text}"


def asked_by(author: str) -> str:
    """The reason of a check ``/drift`` started."""
    return f"/drift by {author}"


def value(text: str) -> str:
    """One YAML value as inline code on one line (``absent`` when the field is not there)."""
    return code(clip(text, 80)) if text else "absent"


def field_line(f: FieldDrift) -> str:
    """``/spec/replicas: live 5 (set by kubectl-scale at 2026-…), Git 3``."""
    who = f" (set by {code(f.manager)}" + (f" at {f.since}" if f.since else "") + ")" if f.manager else ""
    return f"{code(f.path)}: live {value(f.live)}{who}, Git {value(f.git)}"


def object_lines(obj: ObjectDrift) -> list[str]:
    if obj.state == "deleted":
        return [f"- {code(obj.ref)} was deleted"]
    return [f"- {code(obj.ref)}", *(f"  - {field_line(f)}" for f in obj.fields)]


def summary(check: DriftCheck) -> list[str]:
    """One environment's lines of the reply."""
    head = f"**{check.environment}**"
    if check.error:
        return [f"{head}: could not be checked: {check.error}"]
    if not check.commit:
        return [f"{head}: never deployed, nothing to compare"]
    if not check.objects:
        return [f"{head}: no drift from {check.commit[:12]}"]
    lines = [f"{head}: {len(check.objects)} object(s) drifted from {check.commit[:12]}, the commit last applied:"]
    for obj in check.objects[:LISTED]:
        lines.extend(object_lines(obj))
    if len(check.objects) > LISTED:
        lines.append(f"- … and {len(check.objects) - LISTED} more")
    return lines


def reply(author: str, checks: Sequence[DriftCheck], unknown: Sequence[str] = ()) -> str:
    """The answer to ``/drift [env]``: per environment, what differs from the commit last applied there."""
    lines = [f"@{author} drift check (the cluster against the commit last applied, not the branch head):", ""]
    for check in checks:
        lines.extend(summary(check))
    if unknown:
        lines.append(f"Not an environment of this repository: {', '.join(code(n) for n in unknown)}.")
    if not checks and not unknown:
        lines.append("No environment to check.")
    return "\n".join(lines) + "\n"


def overwrite_note(ref: str, f: FieldDrift, applied: str = "") -> str:
    """The preview's warning that merging overwrites a live change (``f.live``) with ``f.git``, what the PR applies.

    ``Deployment/web spec.replicas: live 5 (set by kubectl-scale), Git 3 → this PR keeps 3``; without
    ``applied`` (the value the last applied commit set, known from the last drift check) the Git
    part is left out. Values and names come from the cluster: each is escaped inline code.
    """
    dotted = code(f.path.lstrip("/").replace("/", "."))
    who = f" (set by {code(f.manager)})" if f.manager else ""
    live, planned = (value(text) for text in (f.live, f.git))
    if not applied:
        return f"{code(ref)} {dotted}: live {live}{who} → this PR sets {planned}"
    verb = "keeps" if applied == f.git else "sets"
    return f"{code(ref)} {dotted}: live {live}{who}, Git {value(applied)} → this PR {verb} {planned}"


def autoscaled(kind: str, name: str, autoscaler: str) -> str:
    """Said once per object an HPA targets: its replicas are neither shown nor taken back."""
    return f"{kind}/{name}: replicas managed by HorizontalPodAutoscaler/{autoscaler}"
