"""Bounds on what a repository may make Mergeway read, so hostile input fails fast and clearly.

Everything a pull request renders ends up in memory several times over (parsed objects, their
JSON for hashing and the API server, YAML for the diff), so a small input that expands hugely (a
YAML alias bomb, a template looping a million times) would exhaust the worker long before any
timeout. Each bound here is checked before that work and refused with a message naming the
setting, which the preview/deploy jobs report on the pull request as a failed render.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class LimitError(ValueError):
    """Input exceeds one of the bounds; the message names the source and the setting to raise."""


class InputLimits(NamedTuple):
    """Bounds for one environment's render; these defaults are the settings' defaults too."""

    #: Objects one environment may render (MERGEWAY_MAX_OBJECTS).
    max_objects: int = 5000
    #: Bytes of rendered YAML, and of YAML after expanding aliases (MERGEWAY_MAX_RENDERED_BYTES).
    max_bytes: int = 32 * 1024 * 1024
    #: Nesting depth of any document (MERGEWAY_MAX_YAML_DEPTH); real manifests stay well below 50.
    max_depth: int = 100
    #: Alias uses (``*name``) in one YAML stream (MERGEWAY_MAX_YAML_ALIASES).
    max_aliases: int = 100


DEFAULT_LIMITS = InputLimits()


def read_text(path: Path, source: str, limits: InputLimits = DEFAULT_LIMITS) -> str:
    """A repository file's text, refused before reading when it is larger than the byte bound."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise LimitError(f"{source}: refused: {size} bytes, more than {limits.max_bytes} (MERGEWAY_MAX_RENDERED_BYTES)")
    return path.read_text(encoding="utf-8")
