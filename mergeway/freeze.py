"""Freeze windows: spans of time in which merges do not deploy, and when each one ends.

Written by a repository (``freeze:`` on an environment in ``.mergeway.yaml``) or by the operator
(``freezes:`` in the policy file), in one of two forms::

    - cron: "0 18 * * 5"          # every Friday at 18:00 ...
      duration: 62h               # ... until Monday 08:00
      timezone: Europe/Paris      # the wall clock the cron expression reads (default UTC)
      reason: weekend
    - from: 2026-12-20 00:00      # a one-off span, read in ``timezone`` unless it carries an offset
      to: 2027-01-04 09:00
      timezone: America/New_York

Cron expressions have five fields (minute resolution) and are read on the wall clock of their time
zone, so "09:00 on weekdays" stays 09:00 local across daylight-saving changes; the duration is
elapsed time from that start. A start in the hour a spring change skips happens at the end of the
skipped hour; one in the hour an autumn change repeats may happen twice, and the freeze then runs
from the first start to the last end (overlapping occurrences merge, see :func:`frozen_until`).

Plain data and the standard library plus ``croniter``: the repository config, the policy and the
web process read it without any engine import.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_KEYS = {"cron", "duration", "from", "to", "timezone", "reason"}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
#: Overlapping occurrences merged into one freeze at most (a window covering all time would loop).
_MAX_CHAIN = 1000
#: The longest a cron window may last: a year (a longer one would be a permanent freeze in disguise).
_MAX_DURATION = 366 * 24 * 3600
MAX_REASON = 200


class FreezeError(ValueError):
    """A freeze window is invalid; the message names it (``where``) and what is wrong."""


class Span(NamedTuple):
    """One occurrence of a window: from ``start`` (included) to ``end`` (excluded), both aware."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class FreezeWindow:
    """One window, in either form: ``cron`` with ``duration`` (seconds), or ``start``/``end``."""

    cron: str = ""
    duration: float = 0.0
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    timezone: str = "UTC"
    reason: str = ""

    def covering(self, at: dt.datetime) -> Span | None:
        """The occurrence of this window that ``at`` falls in (``None``: not frozen by it)."""
        if self.start is not None and self.end is not None:
            return Span(self.start, self.end) if self.start <= at < self.end else None
        local = at.astimezone(ZoneInfo(self.timezone))
        # get_prev is strictly before its start; one second later includes a start exactly at ``at``.
        begun: dt.datetime = croniter(self.cron, local + dt.timedelta(seconds=1)).get_prev(dt.datetime)
        span = Span(begun, begun + dt.timedelta(seconds=self.duration))
        return span if span.start <= at < span.end else None

    def next_start(self, at: dt.datetime) -> dt.datetime | None:
        """When this window next begins strictly after ``at`` (``None``: never again)."""
        if self.start is not None:
            return self.start if self.start > at else None
        local = at.astimezone(ZoneInfo(self.timezone))
        nxt: dt.datetime = croniter(self.cron, local).get_next(dt.datetime)
        return nxt

    def describe(self) -> str:
        """The window as people wrote it, for comments and errors."""
        if self.cron:
            text = f"`{self.cron}` ({self.timezone}) for {_duration_text(self.duration)}"
        else:
            assert self.start is not None and self.end is not None
            text = f"{_stamp(self.start, self.timezone)} to {_stamp(self.end, self.timezone)}"
        return f"{text}: {self.reason}" if self.reason else text


class Freeze(NamedTuple):
    """A freeze in force: until when (all overlapping occurrences merged) and the window that began it."""

    until: dt.datetime
    window: FreezeWindow

    def describe(self) -> str:
        """``frozen until 2026-12-21 08:00 UTC (weekend)``: for statuses, comments and the record."""
        why = f" ({self.window.reason})" if self.window.reason else ""
        return f"frozen until {_stamp(self.until, 'UTC')}{why}"


def frozen_until(windows: tuple[FreezeWindow, ...] | list[FreezeWindow], at: dt.datetime) -> Freeze | None:
    """The freeze in force at ``at`` (aware), or ``None``; back-to-back or overlapping windows merge."""
    found: Freeze | None = None
    for window in windows:
        span = window.covering(at)
        if span is not None and (found is None or span.end > found.until):
            found = Freeze(span.end, window)
    if found is None:
        return None
    for _ in range(_MAX_CHAIN):
        later = [(s.end, w) for w in windows if (s := w.covering(found.until)) is not None and s.end > found.until]
        if not later:
            return found
        found = Freeze(*max(later, key=lambda pair: pair[0]))
    return found


def next_freeze(windows: tuple[FreezeWindow, ...] | list[FreezeWindow], at: dt.datetime) -> dt.datetime | None:
    """When the next freeze begins after ``at`` (``None``: no window begins again)."""
    starts = [s for w in windows if (s := w.next_start(at)) is not None]
    return min(starts) if starts else None


def parse_windows(raw: Any, where: str) -> tuple[FreezeWindow, ...]:
    """A list of windows (``freeze:``/``freezes:``); raises :class:`FreezeError` naming the first problem."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FreezeError(f"{where} must be a list of windows (each `cron` + `duration`, or `from` + `to`)")
    return tuple(parse_window(item, f"{where}[{i}]") for i, item in enumerate(raw))


def parse_window(raw: Any, where: str, *, extra_keys: frozenset[str] = frozenset()) -> FreezeWindow:
    """One window; ``extra_keys`` are keys the caller reads itself (the policy's selectors)."""
    if not isinstance(raw, dict):
        raise FreezeError(f"{where} must be a mapping")
    unknown = set(raw) - _KEYS - extra_keys
    if unknown:
        raise FreezeError(f"{where}: unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    zone = _zone(raw.get("timezone", "UTC"), where)
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise FreezeError(f"{where}.reason must be text of at most {MAX_REASON} characters")
    reason = " ".join(reason.split())
    if "cron" in raw:
        if "from" in raw or "to" in raw:
            raise FreezeError(f"{where}: use either `cron` with `duration`, or `from` with `to`, not both")
        return FreezeWindow(
            cron=_cron(raw["cron"], where), duration=_duration(raw.get("duration"), where), timezone=zone, reason=reason
        )
    if "from" not in raw or "to" not in raw:
        raise FreezeError(f"{where} needs `cron` and `duration`, or `from` and `to`")
    if "duration" in raw:
        raise FreezeError(f"{where}: `duration` goes with `cron`; a `from`/`to` window ends at `to`")
    start, end = _instant(raw["from"], zone, f"{where}.from"), _instant(raw["to"], zone, f"{where}.to")
    if end <= start:
        raise FreezeError(f"{where}: `to` ({_stamp(end, zone)}) must be after `from` ({_stamp(start, zone)})")
    return FreezeWindow(start=start, end=end, timezone=zone, reason=reason)


def _zone(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise FreezeError(f"{where}.timezone must be an IANA time zone name such as Europe/Paris")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise FreezeError(f"{where}.timezone {value!r} is not a known IANA time zone (e.g. Europe/Paris)") from None
    return value


def _cron(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise FreezeError(
            f"{where}.cron {value!r} is not a five-field cron expression (minute hour day-of-month month day-of-week)"
        )
    return " ".join(value.split())


def _duration(value: Any, where: str) -> float:
    """``90m``, ``2h``, ``1d12h``, ``1h30m`` or seconds as a number."""
    seconds: float
    if isinstance(value, bool) or value is None:
        raise FreezeError(f"{where}.duration is required with `cron` (e.g. 2h, 90m, 1d12h)")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())) and any(m.groups()):
        d, h, mi, s = (int(g or 0) for g in m.groups())
        seconds = float(((d * 24 + h) * 60 + mi) * 60 + s)
    else:
        raise FreezeError(f"{where}.duration {value!r} must be like 2h, 90m, 1d12h or a number of seconds")
    if not 0 < seconds <= _MAX_DURATION:
        raise FreezeError(f"{where}.duration must be more than 0 and at most 366d")
    return seconds


def _instant(value: Any, zone: str, where: str) -> dt.datetime:
    """A ``from``/``to`` value: YAML's timestamp or ISO 8601 text; without an offset, read in ``zone``."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise FreezeError(f"{where} {value!r} must be a date and time like 2026-12-20 18:00") from None
    else:
        raise FreezeError(f"{where} must be a date and time like 2026-12-20 18:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def _duration_text(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


def _stamp(moment: dt.datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    fmt = "%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M"
    return f"{local.strftime(fmt)} {zone}"
