"""Recording of what the simulator says: API responses and webhook deliveries, for conformance checks.

A :class:`Recorder` registered with :func:`record_into` sees the traffic of every simulator in the
process (tests create one simulator per test, so a recorder registered once per test session sees
the end-to-end tests' real traffic). The conformance tests validate what it kept against GitHub's
official descriptions.

Only the first ``per_kind`` samples of each kind are kept (kind: forge, method, path with ids
replaced, status; or event and action), which bounds memory and validation time however long the
session runs; :attr:`Recorder.counts` still counts everything.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

_ID_SEGMENT = re.compile(r"/(?:\d+|[0-9a-f]{40})(?=/|$)")


@dataclass(frozen=True)
class Exchange:
    """One API request and the simulator's answer, as sent on the wire."""

    forge: str
    method: str
    path: str  # after the /api/v3 or /api/v4 prefix, still percent-encoded
    query: str
    status: int
    body: bytes
    #: The answer came from a fault a test injected (``sim.inject``), not from the emulation.
    injected: bool = False
    #: The request's body as the client sent it (conformance checks it against the description too).
    request: bytes = b""


@dataclass(frozen=True)
class HookRecord:
    """One webhook delivery the simulator sent (or would have sent, without a receiver)."""

    forge: str
    event: str  # X-GitHub-Event or X-Gitlab-Event
    action: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    per_kind: int = 20
    exchanges: list[Exchange] = field(default_factory=list)
    hooks: list[HookRecord] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def exchange(self, item: Exchange) -> None:
        kind = f"{item.forge} {item.method} {_ID_SEGMENT.sub('/#', item.path)} {item.status}"
        self._keep(kind, item, self.exchanges)

    def hook(self, item: HookRecord) -> None:
        self._keep(f"{item.forge} hook {item.event} {item.action}", item, self.hooks)

    def _keep(self, kind: str, item: Exchange | HookRecord, into: list[Exchange] | list[HookRecord]) -> None:
        with self._lock:
            self.counts[kind] += 1
            if self.counts[kind] <= self.per_kind:
                into.append(item)  # type: ignore[arg-type]


#: Recorders that every simulator reports to.
RECORDERS: list[Recorder] = []


def tap_exchange(item: Exchange) -> None:
    for recorder in list(RECORDERS):
        recorder.exchange(item)


def tap_hook(item: HookRecord) -> None:
    for recorder in list(RECORDERS):
        recorder.hook(item)


def recording() -> bool:
    return bool(RECORDERS)


@contextlib.contextmanager
def record_into(recorder: Recorder) -> Iterator[Recorder]:
    """Report every simulator's traffic to ``recorder`` while the block runs."""
    RECORDERS.append(recorder)
    try:
        yield recorder
    finally:
        RECORDERS.remove(recorder)
