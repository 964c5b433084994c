"""Webhook intake as plain Python: verify, parse to a forge-neutral event, dedupe, enqueue.

Nothing here imports Flask: the web service is a thin HTTP adapter around
:class:`mergeway.intake.service.Intake`, and tests or other front ends can drive the same code
directly. Parsers return one of the types below; they never touch the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from mergeway.events import Event


@dataclass(frozen=True)
class Ignored:
    """A delivery Mergeway understood and deliberately does nothing with; ``reason`` says why."""

    reason: str


@dataclass(frozen=True)
class Ping:
    """GitHub's ``ping`` on webhook creation: answered 200 so the hook shows green."""

    zen: str = ""


Parsed = Event | Ignored | Ping

__all__ = ["Ignored", "Parsed", "Ping"]
