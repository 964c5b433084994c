"""Lenient, typed access to webhook JSON.

Real payloads from older deliveries lack newer fields, and a signed payload is still untrusted data
with arbitrary shapes. These helpers never raise ``KeyError``/``TypeError``: optional fields fall
back to a default, and a field a job cannot do without raises :class:`InvalidPayloadError` naming the
JSON path (never its value), which intake answers with 400.
"""

from __future__ import annotations

from typing import Any


class InvalidPayloadError(ValueError):
    """A payload lacks a field Mergeway cannot do without; the message names the path only."""


def obj(data: Any, *path: str) -> dict[str, Any]:
    """The object at ``path``, or an empty dict when it is missing or not an object."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def opt_str(data: Any, *path: str, default: str = "") -> str:
    """The string at ``path``; numbers are accepted as their text, anything else gives ``default``."""
    value = _get(data, path)
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return default


def opt_int(data: Any, *path: str) -> int | None:
    value = _get(data, path)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdecimal() and len(value) < 19:
        return int(value)
    return None


def opt_bool(data: Any, *path: str, default: bool = False) -> bool:
    value = _get(data, path)
    return value if isinstance(value, bool) else default


def req_str(data: Any, *path: str) -> str:
    value = opt_str(data, *path)
    if not value:
        raise InvalidPayloadError(f"payload lacks {'.'.join(path)}")
    return value


def req_int(data: Any, *path: str) -> int:
    value = opt_int(data, *path)
    if value is None:
        raise InvalidPayloadError(f"payload lacks {'.'.join(path)}")
    return value


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
