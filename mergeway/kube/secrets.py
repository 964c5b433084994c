"""Mask Secret values before anything is rendered: diffs, comments, logs, errors.

A changed Secret must still be *visible* as changed (reviewers need to know a credential rotates),
so each value is replaced by a marker that says whether it is new, unchanged or different --
``***``, ``*** (before)``, ``*** (after)`` -- and never by anything derived from the value (not
even a hash, which would let a guessable value be confirmed).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
from typing import Any

MASK = "***"


def is_secret(obj: dict[str, Any] | None) -> bool:
    return bool(obj) and obj.get("kind") == "Secret" and str(obj.get("apiVersion", "")) == "v1"  # type: ignore[union-attr]


def _folded(obj: dict[str, Any]) -> dict[str, str]:
    """``data`` with ``stringData`` folded in, as the API server stores it (base64 strings)."""
    data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    for key, value in (obj.get("stringData") or {}).items():
        data[str(key)] = base64.b64encode(str(value).encode()).decode()
    return data


def stored_form(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret as the API server stores it: ``stringData`` (write-only) folded into base64 ``data``.

    The planner compares a Secret it last applied with the live one in this form, so an unchanged
    Secret needs no dry run. A shallow copy: only the top level changes. A Secret without values
    has no ``data`` at all once stored (an install bundle's placeholder Secrets), so none is
    expected then.
    """
    out = {k: v for k, v in obj.items() if k not in ("stringData", "data")}
    data = _folded(obj)
    if data:
        out["data"] = data
    return out


def mask_pair(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Mask a (live, desired) pair of Secrets so that only *whether* each value changed shows."""
    if not (is_secret(before) or is_secret(after)):
        return before, after
    old = _folded(before) if before else {}
    new = _folded(after) if after else {}

    def masked(
        obj: dict[str, Any] | None, mine: dict[str, str], other: dict[str, str], label: str
    ) -> dict[str, Any] | None:
        if obj is None:
            return None
        out = copy.deepcopy(obj)
        out.pop("stringData", None)
        out["data"] = {
            key: MASK if key not in other or other[key] == value else f"{MASK} ({label})"
            for key, value in sorted(mine.items())
        }
        if not out["data"]:
            out.pop("data")
        return out

    return masked(before, old, new, "before"), masked(after, new, old, "after")


def secret_values(obj: dict[str, Any] | None) -> set[str]:
    """Every form a Secret's values may take in text: base64 as stored, and decoded."""
    if not is_secret(obj):
        return set()
    assert obj is not None
    values: set[str] = set()
    for value in _folded(obj).values():
        values.add(value)
        with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
            values.add(base64.b64decode(value, validate=True).decode("utf-8"))
    for value in (obj.get("stringData") or {}).values():
        values.add(str(value))
    return {v for v in values if len(v) >= 4}


def scrub(text: str, values: set[str]) -> str:
    """Replace any Secret value in ``text`` (e.g. an API server error message) by ``***``."""
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text
