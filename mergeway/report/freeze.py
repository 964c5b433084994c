"""What a preview says about freeze windows: that merging now would wait, or that a freeze is near.

The times are shown in the window's own zone (that is how its author wrote it) and in UTC, so a
reader in another zone need not convert. A freeze starting more than :data:`UPCOMING` ahead is not
mentioned: a weekly window would otherwise be announced on every preview.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from mergeway.freeze import Freeze, FreezeWindow, active, next_start
from mergeway.report.markdown import cell

#: How far ahead a preview mentions a freeze that has not started yet.
UPCOMING = timedelta(hours=24)


def when(at: datetime, window: FreezeWindow) -> str:
    """``Mon 4 Jan 2027 09:00 UTC``, or ``Mon 30 Mar 2026 08:00 Europe/Berlin (06:00 UTC)``."""
    local = at.astimezone(window.zone)
    text = f"{local:%a} {local.day} {local:%b %Y %H:%M} {window.timezone}"
    if window.timezone == "UTC":
        return text
    utc = at.astimezone(UTC)
    return f"{text} ({utc:%H:%M} UTC)" if utc.date() == local.date() else f"{text} ({utc:%a %H:%M} UTC)"


def _why(freeze: Freeze) -> str:
    return f" ({cell(html.escape(freeze.reason, quote=False))})" if freeze.reason else ""


def frozen_now(environment: str, freeze: Freeze) -> str:
    """The note for a freeze in force: until when, why, and that a merge now waits."""
    until = when(freeze.ends_at, freeze.window)
    if freeze.open_ended:
        return (
            f"❄️ `{environment}` is frozen at least until {until}{_why(freeze)}, its freeze windows overlapping "
            "beyond: merging now waits until they end."
        )
    return f"❄️ `{environment}` is frozen until {until}{_why(freeze)}: merging now waits until then."


def frozen_soon(environment: str, freeze: Freeze) -> str:
    """The note for a freeze about to start: from when, until when, why."""
    return (
        f"❄️ A freeze of `{environment}` starts {when(freeze.since, freeze.window)} and lasts until "
        f"{when(freeze.ends_at, freeze.window)}{_why(freeze)}: a merge deployed by then is not held, "
        "one that is not waits until the freeze ends."
    )


def freeze_note(environment: str, windows: Sequence[FreezeWindow], now: datetime) -> str:
    """The preview's note about ``environment``'s freeze windows at ``now`` (``""``: nothing to say)."""
    if not windows:
        return ""
    current = active(windows, now)
    if current is not None:
        return frozen_now(environment, current)
    upcoming = next_start(windows, now)
    if upcoming is not None and upcoming.since - now <= UPCOMING:
        return frozen_soon(environment, upcoming)
    return ""
