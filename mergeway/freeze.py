"""Freeze windows: the times at which merges must not deploy an environment.

A window is written either as a cron expression with a duration (``cron: "0 18 * * 5"``,
``duration: 62h``: every Friday 18:00 for 62 hours) or as one stretch of time (``from``/``to``),
each in a time zone (``timezone``, default UTC). Windows come from two places, the repository's
``.mergeway.yaml`` (per environment) and the operator's policy (per repository glob and cluster);
both are parsed here, by :func:`parse_windows`, so they mean exactly the same thing.

Times are computed in the window's own zone and compared in UTC: "Friday 18:00 Europe/Berlin" is
18:00 on the wall clock whether the clocks show winter or summer time, and a duration is wall-clock
time too (62h from Friday 18:00 ends Monday 08:00 local, also across a DST switch, when 61 or 63
hours actually pass). A freeze ends at the end of the whole chain of windows that overlap or touch,
so a caller waiting for :attr:`Freeze.ends_at` does not wake up into the next window.

This module is a leaf (standard library and ``croniter`` only): the repository config, the policy,
the preview and the deploy gate all read it, and it reads none of them. Its input may come from a
pull request, so everything is bounded: the expression's length, the number of windows, and how
far evaluation looks ahead (:data:`HORIZON`).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

#: How far :func:`next_start` looks for a window, and the longest ``duration``.
HORIZON = timedelta(days=366)
#: How many occurrences :func:`active` takes along a chain of windows, each way: a longer chain (a
#: cron window longer than its own period never ends) is reported as open-ended. Bounds the work a
#: window list from a pull request can cause.
MAX_CHAIN = 500
#: At most this many windows in one list: the list may come from a pull request.
MAX_WINDOWS = 50
_MAX_CRON = 200
_MAX_REASON = 200
_MINUTE = timedelta(minutes=1)
_KEYS = ("cron", "duration", "from", "to", "timezone", "reason")
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")
#: A cron expression that never matches fails validation instead of searching decades at each use.
_MAX_YEARS_BETWEEN_MATCHES = 5


class FreezeError(ValueError):
    """A freeze window is invalid; the message names the place (``...freeze[0].cron: ...``)."""


@dataclass(frozen=True)
class FreezeWindow:
    """One freeze window as written: a cron expression with a duration, or a from/to stretch.

    Exactly one form is set: ``cron`` and ``duration``, or ``start`` and ``end`` (aware datetimes).
    ``timezone`` is where cron times and ``duration`` are counted, and how times are shown.
    """

    reason: str = ""
    timezone: str = "UTC"
    cron: str = ""
    duration: timedelta = timedelta(0)
    start: datetime | None = None
    end: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        """The window as written, for messages: ``cron "0 18 * * 5" for 62h (Europe/Berlin)``."""
        if self.start is not None and self.end is not None:
            return f"from {self.start.isoformat()} to {self.end.isoformat()}"
        return f'cron "{self.cron}" for {format_duration(self.duration)} ({self.timezone})'

    def forward(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Occurrences ``(start, end)`` in UTC by rising start: the last starting by ``at``, then each later one."""
        if self.start is not None and self.end is not None:
            yield self.start, self.end
            return
        it = _iter(self.cron, _floor(_naive_local(at, self.zone)) + _MINUTE)
        yield self._occurrence(it.get_prev(datetime))
        while True:
            yield self._occurrence(it.get_next(datetime))

    def backward(self, before: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Occurrences starting before ``before``, by falling start (and so falling end)."""
        if self.start is not None and self.end is not None:
            if self.start < before:
                yield self.start, self.end
            return
        it = _iter(self.cron, _naive_local(before, self.zone))
        while True:
            yield self._occurrence(it.get_prev(datetime))

    def first_start_after(self, at: datetime) -> datetime | None:
        """The earliest start strictly after ``at`` (UTC), or ``None`` when there is none."""
        if self.start is not None:
            return self.start if self.start > at else None
        local = _naive_local(at, self.zone)
        starts = (self._occurrence(naive)[0] for naive in _nexts(self.cron, _floor(local) - _MINUTE, 3))
        return min((s for s in starts if s > at), default=None)

    def _occurrence(self, naive_start: datetime) -> tuple[datetime, datetime]:
        """The occurrence starting at local wall-clock ``naive_start``, in UTC (duration: wall clock too)."""
        return _to_utc(naive_start, self.zone), _to_utc(naive_start + self.duration, self.zone)


@dataclass(frozen=True)
class Freeze:
    """A freeze in force (or the next one): which window, since when, until when, and why."""

    window: FreezeWindow
    #: When the chain of overlapping or touching windows began (UTC).
    since: datetime
    #: When the chain ends (UTC): deploys may go on from this instant.
    ends_at: datetime
    reason: str
    #: The chain goes on past :data:`MAX_CHAIN` occurrences; ``ends_at`` is only as far as it was followed
    #: (a caller waiting for it finds the freeze still in force then, and waits again).
    open_ended: bool = False


def _floor(local: datetime) -> datetime:
    return local.replace(second=0, microsecond=0)


def _naive_local(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


def _to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: a wall-clock time that happens twice (clocks going back) is its first occurrence; one
    # that never happens (clocks going forward) is read with the offset before the switch.
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _iter(cron: str, base: datetime) -> croniter:
    return croniter(cron, base, max_years_between_matches=_MAX_YEARS_BETWEEN_MATCHES)


def _nexts(cron: str, base: datetime, count: int) -> Iterator[datetime]:
    """The ``count`` matches of ``cron`` after local ``base`` (naive, earliest first)."""
    it = _iter(cron, base)
    for _ in range(count):
        yield it.get_next(datetime)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("freeze windows are evaluated at an aware datetime (a time zone is required)")
    return at.astimezone(UTC)


def _sweep_forward(windows: Sequence[FreezeWindow], at: datetime) -> tuple[datetime, bool]:
    """The end of the chain of occurrences in force at ``at`` (``at`` itself when none is), and open-ended?

    One iterator per window, merged by start: an occurrence starting by the chain's current end
    (overlapping, or starting right then) extends it. Occurrences that end inside the chain are
    skipped in one step, so each step either extends the chain or moves a window past it; after
    :data:`MAX_CHAIN` steps the chain is reported open-ended.
    """
    heads = [(next(it), i, it) for i, it in enumerate(w.forward(at) for w in windows)]
    heapq.heapify(heads)
    end = at
    for _ in range(MAX_CHAIN):
        if not heads or heads[0][0][0] > end:
            return end, False
        (_, occurrence_end), i, it = heapq.heappop(heads)
        end = max(end, occurrence_end)
        following = next(it, None)
        if following is not None and following[1] <= end:
            it = windows[i].forward(end)  # jump over the occurrences inside the chain
            following = next(it, None)
            while following is not None and following[0] <= end and following[1] <= end:
                following = next(it, None)  # at most twice: the last start by ``end``, then one after it
        if following is not None:
            heapq.heappush(heads, (following, i, it))
    return end, True


def _sweep_backward(windows: Sequence[FreezeWindow], since: datetime) -> datetime:
    """The start of the chain reaching back from ``since``: occurrences ending at or after it extend it."""
    heads: list[tuple[float, int, datetime, Iterator[tuple[datetime, datetime]]]] = []
    for i, it in enumerate(w.backward(since) for w in windows):
        if (first := next(it, None)) is not None:
            heads.append((-_epoch(first[1]), i, first[0], it))  # latest end first
    heapq.heapify(heads)
    for _ in range(MAX_CHAIN):
        if not heads or -heads[0][0] < _epoch(since):
            break
        _, i, start, it = heapq.heappop(heads)
        since = min(since, start)
        if (earlier := next(it, None)) is not None:
            heapq.heappush(heads, (-_epoch(earlier[1]), i, earlier[0], it))
    return since


def _epoch(at: datetime) -> float:
    return at.timestamp()


def active(windows: Sequence[FreezeWindow], at: datetime) -> Freeze | None:
    """The freeze in force at ``at`` (an aware datetime), or ``None``.

    ``window`` and ``reason`` are those of the first window in ``windows`` that is in force; ``since``
    and ``ends_at`` span the whole chain of windows that overlap or touch it.
    """
    at = _utc(at)
    # The occurrence of each window that started last by ``at``: it ends last too, so it is in force
    # if any occurrence of its window is.
    hits = [(w, s) for w in windows for s, e in [next(w.forward(at))] if s <= at < e]
    if not hits:
        return None
    ends_at, open_ended = _sweep_forward(windows, at)
    since = _sweep_backward(windows, min(s for _, s in hits))
    window = hits[0][0]
    return Freeze(window, since, ends_at, window.reason, open_ended)


def next_start(windows: Sequence[FreezeWindow], at: datetime) -> Freeze | None:
    """The first freeze starting after ``at`` (within :data:`HORIZON`), or ``None``.

    Its ``since`` is that start; ``ends_at`` is the end of the chain it begins.
    """
    at = _utc(at)
    starts = [s for w in windows if (s := w.first_start_after(at)) is not None and s <= at + HORIZON]
    return active(windows, min(starts)) if starts else None


# --- parsing -----------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``3d``, ``1h30m`` → a positive :class:`timedelta`; :class:`ValueError` otherwise."""
    match = _DURATION.match(text.strip().lower()) if text.strip() else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration (write it like 90m, 2h, 3d or 1h30m)")
    days, hours, minutes = (int(match.group(k) or 0) for k in ("d", "h", "m"))
    value = timedelta(days=days, hours=hours, minutes=minutes)
    if not value:
        raise ValueError(f"{text!r} is not a positive duration")
    if value > HORIZON:
        raise ValueError(f"{text!r} is longer than {HORIZON.days} days")
    return value


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``timedelta(hours=1, minutes=30)`` → ``1h30m``."""
    minutes = int(value.total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"


def _zone(raw: Any, where: str) -> ZoneInfo:
    if not isinstance(raw, str) or not raw.strip():
        raise FreezeError(f"{where}: must be an IANA time zone name such as Europe/Berlin or UTC")
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise FreezeError(
            f"{where}: unknown time zone {raw!r} (use an IANA name such as Europe/Berlin or UTC)"
        ) from None


def _cron(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise FreezeError(f'{where}: must be a cron expression such as "0 18 * * 5"')
    text = " ".join(raw.split())
    if len(text) > _MAX_CRON:
        raise FreezeError(f"{where}: longer than {_MAX_CRON} characters")
    if len(text.split(" ")) != 5:
        raise FreezeError(f"{where}: {raw!r} must have 5 fields (minute hour day-of-month month day-of-week)")
    try:
        _iter(text, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise FreezeError(f"{where}: {raw!r} never matches (not within {_MAX_YEARS_BETWEEN_MATCHES} years)") from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError, IndexError, TypeError):
        raise FreezeError(f"{where}: {raw!r} is not a valid cron expression") from None
    return text


def _instant(raw: Any, zone: ZoneInfo, where: str) -> datetime:
    """``from``/``to``: ISO 8601, with an offset or read in the window's zone (YAML may pre-parse it)."""
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise FreezeError(f"{where}: {raw!r} is not an ISO 8601 time such as 2026-12-20T00:00") from None
    else:
        raise FreezeError(f"{where}: must be an ISO 8601 time such as 2026-12-20T00:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _reason(raw: Any, where: str) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or "\n" in raw.strip() or len(raw.strip()) > _MAX_REASON:
        raise FreezeError(f"{where}: must be one line of at most {_MAX_REASON} characters")
    return raw.strip()


def parse_window(raw: Any, where: str, *, extra_keys: Iterable[str] = ()) -> FreezeWindow:
    """One window from its mapping; ``extra_keys`` are allowed and ignored (the policy's ``repositories``)."""
    if not isinstance(raw, dict):
        raise FreezeError(f"{where}: must be a mapping with cron and duration, or from and to")
    known = (*_KEYS, *extra_keys)
    unknown = set(raw) - set(known)
    if unknown:
        raise FreezeError(
            f"{where}: unknown key(s): {', '.join(sorted(map(str, unknown)))} (known: {', '.join(known)})"
        )
    zone_name = raw.get("timezone", "UTC")
    zone = _zone(zone_name, f"{where}.timezone")
    reason = _reason(raw.get("reason"), f"{where}.reason")
    if "cron" in raw:
        if "from" in raw or "to" in raw:
            raise FreezeError(f"{where}: use either cron and duration, or from and to, not both")
        if "duration" not in raw:
            raise FreezeError(f"{where}.duration: required with cron (write it like 90m, 2h, 3d or 1h30m)")
        cron = _cron(raw["cron"], f"{where}.cron")
        try:
            duration = parse_duration(str(raw["duration"]))
        except ValueError as exc:
            raise FreezeError(f"{where}.duration: {exc}") from None
        return FreezeWindow(reason, zone.key, cron=cron, duration=duration)
    if "from" not in raw or "to" not in raw:
        raise FreezeError(f"{where}: needs cron and duration, or from and to")
    if "duration" in raw:
        raise FreezeError(f"{where}.duration: only with cron (from/to already say how long)")
    start = _instant(raw["from"], zone, f"{where}.from")
    end = _instant(raw["to"], zone, f"{where}.to")
    if start >= end:
        raise FreezeError(f"{where}: from ({raw['from']}) must be before to ({raw['to']})")
    return FreezeWindow(reason, zone.key, start=start, end=end)


def parse_windows(raw: Any, where: str) -> tuple[FreezeWindow, ...]:
    """A ``freeze:`` list; :class:`FreezeError` names the first mistake (``{where}[1].cron: ...``)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FreezeError(f"{where}: must be a list of windows")
    if len(raw) > MAX_WINDOWS:
        raise FreezeError(f"{where}: at most {MAX_WINDOWS} windows")
    return tuple(parse_window(item, f"{where}[{i}]") for i, item in enumerate(raw))
