"""Objects as the block YAML that diffs show: byte for byte ``yaml.dump``'s text, written faster.

A preview renders every changed object twice (live and planned) and the reviewer reads the diff of
the two. With ``CSafeDumper`` only the emitting is C: PyYAML's representer and resolver still visit
every node in Python, which made dumping the largest part of a preview's CPU after start-up.

Kubernetes objects are JSON data, mostly identifiers, and their YAML is regular: for mappings with
string keys, lists, and scalars that need no quoting this module writes the text directly; any
other scalar (quoted, a float) is asked of ``yaml.dump`` once and remembered. Whatever it is not
sure of (a multi-line or very long string, a list directly inside a list, a non-string key, an
object appearing twice) falls back to ``yaml.dump`` for the whole object, so the output is always
``yaml.dump``'s (``tests/unit/test_yamltext.py`` compares the two on generated and real objects).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final

import yaml

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_OPTIONS: Final[dict[str, Any]] = {
    "Dumper": _Dumper,
    "sort_keys": True,
    "default_flow_style": False,
    "allow_unicode": True,
    "width": 10_000,
}

#: Written as they are: no YAML indicator or quote, not read back as a number or date (those start
#: with a digit, a sign or a dot); ``:`` and spaces only where :func:`_plain` allows them.
_PLAIN_CHARS: Final = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@:+ -]*\Z")
#: Plain-looking words YAML 1.1 reads as booleans or null: ``yaml.dump`` quotes them.
_RESOLVED: Final = frozenset(
    spelling
    for word in ("yes", "no", "true", "false", "on", "off", "null")
    for spelling in (word, word.capitalize(), word.upper())
)
#: Longest string (and key) written without ``yaml.dump``: far below its line width and simple-key limit.
_MAX_TEXT: Final = 128


def _plain(text: str) -> bool:
    """Whether ``yaml.dump`` writes ``text`` unquoted in block style (a mapping key or value, a list item).

    A ``": "`` or a final ``:`` would start a value and a final space would be lost, so those are
    quoted; a ``:`` inside (``nginx:1.27``) and single spaces inside are not.
    """
    return (
        len(text) <= _MAX_TEXT
        and _PLAIN_CHARS.match(text) is not None
        and text not in _RESOLVED
        and not text.endswith((":", " "))
        and ": " not in text
    )


class _Unsure(Exception):
    """The fast path is not certain to match ``yaml.dump``: dump the whole object with it."""


def dump(obj: Any) -> str:
    """``yaml.dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True, width=10000)``."""
    try:
        if type(obj) is dict and obj:
            out: list[str] = []
            _mapping(obj, 0, out, set(), None)
            return "".join(out)
    except _Unsure:
        pass
    text: str = yaml.dump(obj, **_OPTIONS)
    return text


def _mapping(mapping: dict[Any, Any], indent: int, out: list[str], seen: set[int], lead: str | None) -> None:
    """A block mapping at ``indent``; ``lead`` replaces the first line's indent (``"- "`` in a list)."""
    _visit(mapping, seen)
    pad = " " * indent
    try:
        keys = sorted(mapping)
    except TypeError:
        raise _Unsure from None
    for index, key in enumerate(keys):
        if type(key) is not str:
            raise _Unsure
        prefix = (lead if index == 0 and lead is not None else pad) + _key(key)
        value = mapping[key]
        kind = type(value)
        if kind is dict and value:
            out.append(prefix + ":\n")
            _mapping(value, indent + 2, out, seen, None)
        elif kind is list and value:
            out.append(prefix + ":\n")
            _sequence(value, indent, out, seen)  # PyYAML does not indent a list under its key
        else:
            out.append(f"{prefix}: {_scalar(value)}\n")


def _sequence(items: list[Any], indent: int, out: list[str], seen: set[int]) -> None:
    _visit(items, seen)
    pad = " " * indent
    for item in items:
        kind = type(item)
        if kind is dict and item:
            _mapping(item, indent + 2, out, seen, pad + "- ")
        elif kind is list and item:
            raise _Unsure
        else:
            out.append(f"{pad}- {_scalar(item)}\n")


def _visit(container: object, seen: set[int]) -> None:
    """``yaml.dump`` writes an anchor and an alias for a container met twice; this module does not."""
    if id(container) in seen:
        raise _Unsure
    seen.add(id(container))


def _key(key: str) -> str:
    if _plain(key):
        return key
    return _dumped_key(key)


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        if _plain(value):
            return str(value)
        return _dumped_scalar(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is dict and not value:
        return "{}"
    if kind is list and not value:
        return "[]"
    if kind is float:
        return _scalar_text(value)  # not remembered: 0.0 and -0.0 are equal keys, written differently
    raise _Unsure


@functools.lru_cache(maxsize=4096)
def _dumped_scalar(value: str) -> str:
    if len(value) > 8 * _MAX_TEXT:
        raise _Unsure  # far from the line width, whatever the indent
    return _scalar_text(value)


def _scalar_text(value: str | float) -> str:
    """How ``yaml.dump`` writes a scalar in a block (a list item and a mapping value read alike)."""
    text: str = yaml.dump([value], **_OPTIONS)
    if not text.startswith("- ") or len(text.splitlines()) != 1:
        raise _Unsure  # multi-line (any line break YAML knows): continuation lines depend on the indent
    return text[2:-1]


@functools.lru_cache(maxsize=4096)
def _dumped_key(key: str) -> str:
    if len(key) > _MAX_TEXT:
        raise _Unsure  # not a simple key: yaml.dump writes "? key"
    text: str = yaml.dump({key: None}, **_OPTIONS)
    if not text.endswith(": null\n") or len(text.splitlines()) != 1 or text.startswith("? "):
        raise _Unsure
    return text[: -len(": null\n")]
