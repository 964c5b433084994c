"""The operator's freeze windows: the policy file's ``freeze:`` list, per repository glob and cluster.

Kept out of :mod:`mergeway.policy`'s rules on purpose: a rule decides *what* a repository may deploy
and the first match wins, while every freeze entry that matches applies (a company-wide release
freeze and a team's Friday freeze both hold). Each entry is a window (:mod:`mergeway.freeze`) plus
where it applies::

    freeze:
      - repositories: ["github:acme/*"]     # forge:owner/name globs, as in rules
        clusters: [prod]                    # globs; default: every cluster
        cron: "0 18 * * 5"
        duration: 62h
        timezone: Europe/Berlin
        reason: weekend

A repository pattern without a ``forge:`` prefix is refused: ``acme/*`` would match nothing, and a
freeze that silently never applies is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from mergeway.freeze import MAX_WINDOWS, FreezeError, FreezeWindow, parse_window

_WHERE_KEYS = ("repositories", "clusters")


@dataclass(frozen=True)
class OperatorFreeze:
    """One ``freeze:`` entry of the policy file: a window and the repositories and clusters it holds."""

    repositories: tuple[str, ...]
    clusters: tuple[str, ...]
    window: FreezeWindow

    def applies(self, repository: str, cluster: str) -> bool:
        """Does it hold ``repository`` (``forge:owner/name``) on ``cluster``?"""
        return any(fnmatchcase(repository, p) for p in self.repositories) and any(
            fnmatchcase(cluster, p) for p in self.clusters
        )


def _patterns(raw: Any, where: str, *, forge_prefix: bool) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) and p for p in raw):
        raise FreezeError(f"{where}: must be a non-empty list of globs")
    for pattern in raw:
        if forge_prefix and pattern != "*" and ":" not in pattern:
            raise FreezeError(f"{where}: {pattern!r} must name the forge, like 'github:{pattern}' (or be '*')")
    return tuple(raw)


def parse_operator_freezes(raw: Any) -> tuple[OperatorFreeze, ...]:
    """The policy file's ``freeze`` list; :class:`FreezeError` names the first mistake (``freeze[0].cron: ...``)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FreezeError("freeze: must be a list of windows")
    if len(raw) > MAX_WINDOWS:
        raise FreezeError(f"freeze: at most {MAX_WINDOWS} windows")
    entries = []
    for i, item in enumerate(raw):
        where = f"freeze[{i}]"
        window = parse_window(item, where, extra_keys=_WHERE_KEYS)
        if "repositories" not in item:
            raise FreezeError(f"{where}.repositories: required (forge:owner/name globs, or '*')")
        repositories = _patterns(item["repositories"], f"{where}.repositories", forge_prefix=True)
        clusters = _patterns(item.get("clusters", ["*"]), f"{where}.clusters", forge_prefix=False)
        entries.append(OperatorFreeze(repositories, clusters, window))
    return tuple(entries)
