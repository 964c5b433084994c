"""Edit YAML documents at exact fields, keeping everything else of the file as it was written.

``/adopt-drift`` writes live values into a repository people maintain by hand, so a changed file
must differ from the original only at the adopted fields: comments, key order, quoting, blank
lines and the other documents of the file stay. ``ruamel.yaml``'s round-trip mode keeps them; PyYAML
(used everywhere else, for reading) would drop every comment.

Fields are addressed by JSON pointer (RFC 6901: ``/spec/template/spec/containers/0/image``, ``~1``
for ``/`` and ``~0`` for ``~``). Inside a list, a segment that is not a number names the item whose
``name`` is that segment (how Kubernetes keys containers, ports and env vars), so a pointer stays
right when Git lists the items in another order than the server.
"""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


class EditError(ValueError):
    """A field cannot be set where the pointer says (a missing parent, a scalar in the way)."""


_KEY_LINE = re.compile(r"^( *)[^\s#-][^#]*:\s*(#.*)?$")
_ITEM_LINE = re.compile(r"^( *)- ")
_NESTED_LINE = re.compile(r"^( *)[^\s#-]")


def indentation(text: str) -> tuple[int, int]:
    """``(mapping indent, dash offset)`` the file was written with (``(2, 0)`` when it does not say).

    ruamel keeps comments and quoting but writes every level with one indentation; read the file's
    own so that lines nobody changed are not re-indented (``- name`` under ``containers:`` at the
    key's column or two further in are both common).
    """
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    mapping, offset = 0, -1
    for above, line in itertools.pairwise(lines):
        key = _KEY_LINE.match(above)
        if key is None:
            continue
        item, nested = _ITEM_LINE.match(line), _NESTED_LINE.match(line)
        if item and offset < 0 and len(item.group(1)) >= len(key.group(1)):
            offset = len(item.group(1)) - len(key.group(1))
        elif nested and not mapping and len(nested.group(1)) > len(key.group(1)):
            mapping = len(nested.group(1)) - len(key.group(1))
    return mapping or 2, max(offset, 0)


def _yaml(like: str = "") -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines someone wrote on one line
    mapping, offset = indentation(like)
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return yaml


def segments(pointer: str) -> list[str]:
    """The decoded segments of a JSON pointer; ``""`` is the whole document."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise EditError(f"{pointer!r} is not a JSON pointer")
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


def load_all(text: str) -> list[Any]:
    """Every document of ``text`` in round-trip form (comments and layout attached)."""
    return list(_yaml().load_all(text))


def dump_all(documents: list[Any], like: str = "") -> str:
    """The documents as YAML, indented the way ``like`` (the file's original text) is."""
    out = io.StringIO()
    _yaml(like).dump_all(documents, out)
    return out.getvalue()


def value_of(text: str) -> Any:
    """A value given as YAML text (the drift model's ``live``), in round-trip form."""
    return _yaml().load(text) if text.strip() else None


def _step(node: Any, segment: str) -> Any:
    if isinstance(node, CommentedSeq):
        return node[_index(node, segment)]
    if isinstance(node, CommentedMap):
        if segment not in node:
            raise KeyError(segment)
        return node[segment]
    raise EditError(f"{segment!r} is below a value that is neither a mapping nor a list")


def _index(seq: CommentedSeq, segment: str) -> int:
    if segment.isdigit():
        if int(segment) >= len(seq):
            raise KeyError(segment)
        return int(segment)
    for i, item in enumerate(seq):
        if isinstance(item, CommentedMap) and item.get("name") == segment:
            return i
    raise KeyError(segment)


def set_field(document: Any, pointer: str, value: Any) -> None:
    """Set (or add) the field at ``pointer`` to ``value``; the parent must exist."""
    *parents, last = segments(pointer) or [""]
    node = document
    try:
        for segment in parents:
            node = _step(node, segment)
    except KeyError:
        raise EditError(f"{pointer}: the repository's file has no {'/'.join(parents)!r} to set it in") from None
    if isinstance(node, CommentedMap):
        node[last] = value
    elif isinstance(node, CommentedSeq):
        try:
            node[_index(node, last)] = value
        except KeyError:
            raise EditError(f"{pointer}: the list in the repository's file has no item {last!r}") from None
    else:
        raise EditError(f"{pointer}: the repository's file has a plain value where a mapping is expected")


def remove_field(document: Any, pointer: str) -> None:
    """Remove the field at ``pointer``; removing what is not there is nothing to do."""
    *parents, last = segments(pointer) or [""]
    node = document
    try:
        for segment in parents:
            node = _step(node, segment)
        if isinstance(node, CommentedMap):
            node.pop(last, None)
        elif isinstance(node, CommentedSeq):
            del node[_index(node, last)]
    except KeyError:
        return


def matches(document: Any, kind: str, name: str, namespace: str, default_namespace: str) -> bool:
    """Whether ``document`` is ``kind``/``name`` in ``namespace`` (a document without one is in the default)."""
    if not isinstance(document, CommentedMap) or document.get("kind") != kind:
        return False
    meta = document.get("metadata")
    if not isinstance(meta, CommentedMap) or meta.get("name") != name:
        return False
    written = str(meta.get("namespace") or "")
    return written == namespace or (not written and namespace in ("", default_namespace))
