"""How a deploy treats fields that are not only Mergeway's: one value passed to preview, deploy and prune.

Git is the truth for what Mergeway applies, but some fields belong to someone else: replicas set by
an autoscaler or ``kubectl scale``, an annotation a controller writes, a field a team edits by hand
on purpose. :class:`ApplyOptions` says which, so that every step (the dry run a preview shows, the
apply a deploy sends, and the set a prune compares) leaves them alone in the same way. The rules
are applied by :func:`mergeway.kube.prepare.prepare` and :func:`mergeway.kube.prepare.yield_to_managers`.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, NamedTuple

from mergeway.pointers import ignorable


class IgnoreRule:
    """A field to leave alone (``pointer``) on the objects the selectors match ("" matches any).

    ``kind`` is exact (``Deployment``), ``group`` exact (``apps``; ``None`` for any group), and
    ``name`` and ``namespace`` are shell-style globs, as the operator's policy spells them. A
    pointer at what identifies an object is refused here, when the rule is made.
    """

    __slots__ = ("group", "kind", "name", "namespace", "pointer", "tokens")

    def __init__(
        self, pointer: str, *, kind: str = "", group: str | None = None, name: str = "", namespace: str = ""
    ) -> None:
        tokens = ignorable(pointer)
        self.pointer, self.kind, self.group, self.name, self.namespace = pointer, kind, group, name, namespace
        self.tokens = tokens

    def _key(self) -> tuple[str, str, str | None, str, str]:
        return (self.pointer, self.kind, self.group, self.name, self.namespace)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IgnoreRule) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        selectors = f"kind={self.kind!r}, group={self.group!r}, name={self.name!r}, namespace={self.namespace!r}"
        return f"IgnoreRule({self.pointer!r}, {selectors})"

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether this rule applies to ``obj`` (its namespace already defaulted)."""
        metadata = obj.get("metadata") or {}
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        return (
            (not self.kind or self.kind == obj.get("kind"))
            and (self.group is None or self.group == group)
            and (not self.name or fnmatchcase(str(metadata.get("name", "")), self.name))
            and (not self.namespace or fnmatchcase(str(metadata.get("namespace") or ""), self.namespace))
        )


class ApplyOptions(NamedTuple):
    """The engine's options. The defaults are Mergeway's behaviour before options existed.

    - ``respect_managers``: field managers whose fields Mergeway yields to. A field such a manager
      owns on the live object is dropped from what Mergeway sends, so neither a preview shows it as
      a change nor a deploy takes it back (and Mergeway does not take ownership of it).
    - ``ignore``: fields dropped from the desired object before it is hashed, dry-run or applied.
    - ``force_conflicts``: take ownership of fields another manager owns (server-side apply's
      ``force``). Without it such a conflict is an error the preview shows and the deploy stops on.

    A named tuple, not a dataclass: the CLI's start-up does not import ``dataclasses`` (tests/unit/test_cli_startup.py).
    """

    respect_managers: frozenset[str] = frozenset()
    ignore: tuple[IgnoreRule, ...] = ()
    force_conflicts: bool = True
