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
    #: Alias uses (``*name``) in all the YAML one environment's render reads (MERGEWAY_MAX_YAML_ALIASES).
    max_aliases: int = 100
    #: Files (and directories) an environment's render copies from the checkout (MERGEWAY_MAX_RENDER_FILES).
    max_files: int = 10000


DEFAULT_LIMITS = InputLimits()


def read_text(path: Path, source: str, limits: InputLimits = DEFAULT_LIMITS) -> str:
    """A repository file's text, refused before reading when it is larger than the byte bound."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise LimitError(f"{source}: refused: {size} bytes, more than {limits.max_bytes} (MERGEWAY_MAX_RENDERED_BYTES)")
    return path.read_text(encoding="utf-8")


class Budget:
    """What one environment's render has read so far, against one :class:`InputLimits`.

    A bound per file would let a pull request split its input: sixteen alias bombs each just
    under the per-file bound reached 1.8 GB. So one render (every file it reads, every renderer's
    output) draws on one budget, and the refusal names the file where it ran out. Sizes are counted
    as the serialized JSON the engine later writes (quotes, separators and all), which is what the
    expanded objects cost downstream, not as the YAML text that spelled them.
    """

    __slots__ = ("aliases", "documents", "limits", "size")

    def __init__(self, limits: InputLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.aliases = 0
        self.size = 0
        self.documents = 0

    def mark(self) -> tuple[int, int, int]:
        """The counters now, for :meth:`restore` when the same text is read a second time."""
        return (self.aliases, self.size, self.documents)

    def restore(self, mark: tuple[int, int, int]) -> None:
        self.aliases, self.size, self.documents = mark

    def add_size(self, size: int, source: str) -> None:
        """Count ``size`` serialized bytes read from ``source``; refuse past the byte bound."""
        self.size += size
        if self.size > self.limits.max_bytes:
            raise self.too_big(source)

    def too_big(self, source: str) -> LimitError:
        return LimitError(
            f"{source}: refused: the YAML expands to more than {self.limits.max_bytes} bytes once its aliases "
            "(*name) are expanded, counted as JSON across every file of the environment (MERGEWAY_MAX_RENDERED_BYTES)"
        )

    def add_alias(self, source: str) -> None:
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            raise LimitError(
                f"{source}: refused: more than {self.limits.max_aliases} YAML aliases (*name) in the environment's "
                "files together (MERGEWAY_MAX_YAML_ALIASES)"
            )

    def add_document(self, source: str) -> None:
        """Count one YAML document; far more than the object bound is refused before it is built."""
        self.documents += 1
        if self.documents > 2 * self.limits.max_objects + 100:
            raise LimitError(
                f"{source}: refused: more than {2 * self.limits.max_objects + 100} YAML documents in the "
                f"environment's files, and at most {self.limits.max_objects} objects are allowed (MERGEWAY_MAX_OBJECTS)"
            )
