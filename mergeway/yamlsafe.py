"""YAML loading that refuses input built to exhaust memory or the stack.

PyYAML composes an alias (``*a``) as a second reference to the anchored node, so a 500-byte
"billion laughs" document parses instantly into a tiny graph — and then expands to gigabytes in the
first ``json.dumps`` (the config hash), ``yaml.dump`` (the diff) or deep copy. An anchor can also
refer to itself (``&a [*a]``), which nothing downstream survives. So before constructing a
document, its node graph is measured as if every alias were expanded: the expanded size (in the
bytes its JSON takes), nesting depth and number of alias uses must stay within
:class:`~mergeway.limits.InputLimits`, and recursive aliases are refused. Measuring is one pass
over the nodes, memoised per node, so a bomb is refused in microseconds without ever being
expanded. Sizes and alias uses are drawn from a :class:`~mergeway.limits.Budget` the caller may
share across every file of one render, so splitting a bomb over many files gains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mergeway.limits import DEFAULT_LIMITS, Budget, InputLimits, LimitError

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


#: What JSON adds around a scalar: two quotes and a separator, with the space Python's ``json`` writes.
_SCALAR_OVERHEAD = 4
#: What JSON adds around a collection: its brackets.
_COLLECTION_OVERHEAD = 2


def _scalar_size(value: str) -> int:
    """The bytes ``value`` takes in JSON with its quotes and separator (escapes counted when there are any)."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return len(value) + _SCALAR_OVERHEAD
    return len(json.dumps(value)) + _SCALAR_OVERHEAD - 2


class _Measure:
    """Expanded size and depth of a node graph, computed once per node (aliases share nodes).

    Sizes and alias uses are charged to ``budget``, which may be shared by every file of a render.
    """

    def __init__(self, budget: Budget, source: str, *, may_alias: bool = True) -> None:
        self.limits = budget.limits
        self.budget = budget
        #: Without a ``*`` in the text there is no alias: only the depth needs checking.
        self.may_alias = may_alias
        self.source = source
        self._size: dict[int, int] = {}
        self._depth: dict[int, int] = {}

    def document(self, root: Node) -> None:
        # Node ids are only meaningful within one document: anchors do not cross documents, and
        # a constructed document's nodes are freed, so their ids may be reused by the next one.
        self.budget.add_document(self.source)
        if not self.may_alias:
            self._check_depth(root)
            return
        self._size.clear()
        self._depth.clear()
        self.budget.add_size(self._node(root), self.source)

    def _check_depth(self, root: Node) -> None:
        """The fast path for alias-free text: a tree, so only how deep it goes can hurt.

        Depth counts scalars as a level, as :meth:`_close` does: ``{a: 1}`` is two levels deep.
        """
        limit = self.limits.max_depth
        stack: list[tuple[Node, int]] = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            kids = _children(node)
            if depth + (1 if kids else 0) > limit:
                raise self._too_deep()
            stack.extend((kid, depth + 1) for kid in kids if not isinstance(kid, ScalarNode))

    def _too_deep(self) -> LimitError:
        return LimitError(
            f"{self.source}: refused: nesting deeper than {self.limits.max_depth} levels (MERGEWAY_MAX_YAML_DEPTH)"
        )

    def _too_big(self) -> LimitError:
        return self.budget.too_big(self.source)

    def _node(self, root: Node) -> int:
        """Expanded size of ``root``, iteratively (hostile depth must not recurse), in document order.

        Walking in document order means an alias always points at a node already measured (YAML
        defines an anchor before its aliases) or at one still open above it: a recursive alias.
        """
        seen = {id(root)}
        open_nodes: set[int] = set()
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, closing = stack.pop()
            key = id(node)
            if isinstance(node, ScalarNode):
                self._size[key], self._depth[key] = _scalar_size(node.value), 1
                continue
            kids = _children(node)
            if closing:
                open_nodes.discard(key)
                self._close(key, kids)
                continue
            open_nodes.add(key)
            stack.append((node, True))
            for kid in reversed(kids):
                kid_key = id(kid)
                if kid_key in open_nodes:
                    raise LimitError(f"{self.source}: refused: a YAML alias refers to itself (recursive data)")
                if kid_key in seen:
                    self._alias()
                    continue
                seen.add(kid_key)
                stack.append((kid, False))
        return self._size[id(root)]

    def _close(self, key: int, kids: list[Node]) -> None:
        size = _COLLECTION_OVERHEAD + sum(self._size[id(k)] for k in kids)
        depth = 1 + max((self._depth[id(k)] for k in kids), default=0)
        if self.budget.size + size > self.limits.max_bytes:
            raise self._too_big()
        if depth > self.limits.max_depth:
            raise self._too_deep()
        self._size[key], self._depth[key] = size, depth

    def _alias(self) -> None:
        self.budget.add_alias(self.source)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class _Generic(Exception):
    """The tree holds something only PyYAML's constructor handles alike (a merge key, an odd key)."""


class BoundedLoaderMixin:
    """Measures each document's node graph before constructing it (see the module docstring).

    A document without aliases is a tree of plain mappings, lists and scalars, and is built by
    :meth:`_tree`: PyYAML's generic constructor (two-step construction, per-node bookkeeping) was
    most of the time to load manifests. Every scalar that is not a plain string, every tag that is
    not a plain mapping or list, and any merge key (``<<``) or unhashable key go to PyYAML's own
    constructor, so the result is always what it builds (``tests/unit/test_yamlsafe_tree.py``).
    """

    measure: _Measure

    def construct_document(self, node: Node) -> Any:
        self.measure.document(node)
        if not self.measure.may_alias:
            try:
                return self._tree(node)
            except (_Generic, RecursionError):  # RecursionError: a depth limit set above Python's
                pass
            finally:
                self.constructed_objects: dict[Node, Any] = {}
        return super().construct_document(node)  # type: ignore[misc]

    def _tree(self, node: Node) -> Any:
        """Build an alias-free node tree (depth already bounded by the measure, so recursion is safe)."""
        tag = node.tag
        if isinstance(node, ScalarNode):
            return node.value if tag == _STR else self.construct_object(node)  # type: ignore[attr-defined]
        if isinstance(node, MappingNode) and tag == _MAP:
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag != _STR or not isinstance(key_node, ScalarNode):
                    raise _Generic  # a merge key, or a key that is a number, null or a collection
                mapping[key_node.value] = self._tree(value_node)
            return mapping
        if isinstance(node, SequenceNode) and tag == _SEQ:
            return [self._tree(item) for item in node.value]
        raise _Generic


class BoundedSafeLoader(BoundedLoaderMixin, _BaseLoader):  # type: ignore[valid-type,misc]
    """``yaml.SafeLoader`` (libyaml when available) with the bounds of :class:`BoundedLoaderMixin`."""


def load_all(
    text: str,
    loader: type[BoundedLoaderMixin],
    *,
    source: str,
    limits: InputLimits = DEFAULT_LIMITS,
    budget: Budget | None = None,
) -> Iterator[Any]:
    """Every document of ``text``; raises :class:`LimitError` or :class:`yaml.YAMLError`.

    ``budget`` is shared by every file of one render (a fresh one bounded by ``limits`` otherwise).
    Text without aliases is charged its own length: its JSON is a small multiple of it at most
    (``[a,b]`` becomes ``["a","b"]``), and measuring each scalar would slow the common case.
    """
    if budget is None:
        budget = Budget(limits)
    if len(text) > budget.limits.max_bytes:
        raise LimitError(
            f"{source}: refused: larger than {budget.limits.max_bytes} bytes (MERGEWAY_MAX_RENDERED_BYTES)"
        )
    may_alias = "*" in text
    if not may_alias:
        budget.add_size(len(text), source)
    instance: Any = loader(text)  # type: ignore[call-arg]
    instance.measure = _Measure(budget, source, may_alias=may_alias)
    try:
        while instance.check_data():
            yield instance.get_data()
    finally:
        instance.dispose()


def safe_load(text: str, *, source: str, limits: InputLimits = DEFAULT_LIMITS, budget: Budget | None = None) -> Any:
    """The single document of ``text`` (``None`` when empty), like ``yaml.safe_load`` but bounded."""
    docs = list(load_all(text, BoundedSafeLoader, source=source, limits=limits, budget=budget))
    if len(docs) > 1:
        raise yaml.YAMLError(f"{source}: expected a single YAML document, found {len(docs)}")
    return docs[0] if docs else None
