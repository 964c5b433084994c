"""Hypothesis strategies from JSON Schema: payloads shaped by GitHub's own webhook schemas.

Why not ``hypothesis-jsonschema``: its last release (0.23.1) breaks with current Hypothesis
(``'many' object has no attribute 'more'``) and works only with ``hypothesis<6.100``, which would
pin the whole suite to an old Hypothesis or need a second environment. The webhook schemas use a
small part of JSON Schema (``type`` incl. lists, ``enum``, ``properties``/``required``, ``items``,
``additionalProperties``, ``anyOf``/``oneOf``/``allOf``, ``$ref``, and the formats ``uri``,
``uri-template``, ``date-time``, ``email``), so this generator covers exactly that and refuses
anything else loudly (:class:`UnsupportedSchemaError`) rather than silently generating junk.

Choices that keep payloads realistic and cheap:

- every required property is present; each optional one is present or absent (Hypothesis decides,
  and shrinks towards absent, which is what an older delivery missing newer fields looks like);
  ``optional=False`` generates required properties only;
- strings are short and never empty (GitHub never sends an empty login or SHA) and contain no ``/``,
  so a random comment body is never mistaken for a command;
- arrays have at most two items; ``oneOf`` picks a branch (the caller validates the result).

Every generated payload is validated against the schema by the tests, so a generator bug shows up
as a failure instead of as a weaker test.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

Resolve = Callable[[str], dict[str, Any]]

KNOWN_KEYWORDS = {
    "type",
    "format",
    "enum",
    "const",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    # annotations: no effect on what is valid
    "title",
    "description",
    "examples",
    "example",
    "default",
    "deprecated",
    "readOnly",
    "externalDocs",
}
TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_.", min_size=1, max_size=12)
_DATES = st.datetimes(min_value=datetime(2008, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))


class UnsupportedSchemaError(ValueError):
    """The schema uses a keyword this generator does not implement."""


def merge_all_of(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One schema equivalent to ``allOf`` of object schemas: properties and requirements combined."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "properties":
                props = merged.setdefault("properties", {})
                for name, sub in value.items():
                    props[name] = merge_all_of([props[name], sub]) if name in props else sub
            elif key == "required":
                merged["required"] = sorted(set(merged.get("required", [])) | set(value))
            elif key == "type" and "type" in merged:
                left = set(merged["type"] if isinstance(merged["type"], list) else [merged["type"]])
                right = set(value if isinstance(value, list) else [value])
                both = sorted(left & right)
                merged["type"] = both[0] if len(both) == 1 else both
            elif key == "enum" and "enum" in merged:
                merged["enum"] = [v for v in merged["enum"] if v in value]
            else:
                merged.setdefault(key, value)
    return merged


class SchemaStrategies:
    """Builds (and caches per ``$ref``) strategies for schemas from one description."""

    def __init__(self, resolve: Resolve, *, optional: bool = True) -> None:
        self.resolve = resolve
        self.optional = optional
        self._refs: dict[str, st.SearchStrategy[Any]] = {}

    def strategy(self, schema: dict[str, Any] | bool) -> st.SearchStrategy[Any]:
        if schema is True or schema == {}:
            return st.none() | st.booleans() | TEXT
        if schema is False:
            raise UnsupportedSchemaError("false schema")
        assert isinstance(schema, dict)
        unknown = set(schema) - KNOWN_KEYWORDS
        if unknown:
            raise UnsupportedSchemaError(f"keywords {sorted(unknown)}")
        if "$ref" in schema:
            return self._ref(schema["$ref"])
        if "allOf" in schema:
            parts = [self._deref(p) for p in schema["allOf"]]
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.strategy(merge_all_of([rest, *parts]))
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                rest = {k: v for k, v in schema.items() if k != combinator}
                return st.one_of([self.strategy(merge_all_of([rest, self._deref(b)])) for b in schema[combinator]])
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        types = schema.get("type")
        if types is None:
            types = ["object"] if "properties" in schema else ["null", "boolean", "string"]
        if isinstance(types, str):
            types = [types]
        return st.one_of([self._typed(t, schema) for t in types])

    def _deref(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema and len(schema) == 1:
            schema = self.resolve(schema["$ref"])
        return schema

    def _ref(self, ref: str) -> st.SearchStrategy[Any]:
        if ref not in self._refs:
            self._refs[ref] = st.deferred(lambda: self.strategy(self.resolve(ref)))
        return self._refs[ref]

    def _typed(self, kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
        if kind == "null":
            return st.none()
        if kind == "boolean":
            return st.booleans()
        if kind == "integer":
            return st.integers(min_value=1, max_value=2**53)
        if kind == "number":
            return st.integers(min_value=0, max_value=10**6) | st.floats(0, 10**6, allow_nan=False)
        if kind == "string":
            return self._string(schema.get("format"))
        if kind == "array":
            items = schema.get("items", True)
            return st.lists(self.strategy(items), max_size=2)
        if kind == "object":
            return self._object(schema)
        raise UnsupportedSchemaError(f"type {kind!r}")

    @staticmethod
    def _string(fmt: str | None) -> st.SearchStrategy[str]:
        if fmt == "date-time":
            return _DATES.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if fmt in ("uri", "uri-template"):
            return TEXT.map(lambda t: "https://github.example/" + t.replace(" ", "-"))
        if fmt == "email":
            return TEXT.map(lambda t: t.replace(" ", "") + "@users.example")
        return TEXT

    def _object(self, schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        if not properties:
            extra = schema.get("additionalProperties", False)
            if isinstance(extra, dict) and extra:
                return st.dictionaries(TEXT, self.strategy(extra), max_size=2)
            return st.just({})
        mandatory = {name: self.strategy(sub) for name, sub in properties.items() if name in required}
        optional = (
            {name: self.strategy(sub) for name, sub in properties.items() if name not in required}
            if self.optional
            else {}
        )
        missing = required - set(properties)
        if missing:  # required but not described: any value will do
            mandatory.update({name: TEXT for name in missing})
        return st.fixed_dictionaries(mandatory, optional=optional)
