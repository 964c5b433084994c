"""The environments page's rows for a terminal: what ``mergeway status`` prints.

The same :class:`~mergeway.page.model.Row` the page shows, as a header line per environment
(``repository environment short-sha #pr merged by who: phase``) and indented details, so a script
can read the first line and a person the rest.
"""

from __future__ import annotations

import re
import time

from mergeway.page.model import Row

SHORT = 7
#: Control characters (C0, DEL, C1): a PR title could otherwise move the cursor or retitle the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at else "—"


def lines(row: Row) -> list[str]:
    """One environment: its header, then where, what, since when, why, drift and what is in flight.

    Titles and reasons are untrusted: control characters (a newline, an escape sequence) become
    spaces, so each line stays one line and nothing reaches the terminal as a command.
    """
    who = f" #{row.pr}" if row.pr else ""
    who += f" merged by {row.merged_by}" if row.merged_by else ""
    out = [f"{row.repository} {row.environment} {row.commit[:SHORT] or '—'}{who}: {row.phase}"]
    out.append(f"  where:     {row.cluster or '—'}/{row.namespace or 'default'}")
    if row.pr_title:
        out.append(f"  title:     {row.pr_title}")
    out.append(f"  since:     {_when(row.since)}")
    if row.reason:
        out.append(f"  reason:    {row.reason}")
    out.extend(f"  failed:    {obj}: {why}" for obj, why in row.failures)
    if row.drift is not None:
        drifted = f"{row.drift.objects} object(s) drifted" if row.drift.objects else "in sync"
        drifted = f"not checked: {row.drift.error}" if row.drift.error else drifted
        out.append(f"  drift:     {drifted} (checked {_when(row.drift.checked_at)})")
    out.extend(
        f"  in flight: {p.commit[:SHORT]} {p.phase}{f' #{p.pr}' if p.pr else ''} since {_when(p.since)}"
        + (f" ({p.reason})" if p.reason else "")
        for p in row.pending
    )
    return [_CONTROL.sub(" ", line) for line in out]
