"""Give renderers a private copy of exactly the repository files they may read, with no symlink left.

A checkout is hostile input, and its symlinks are its sharpest part: Helm's chart loader follows a
symlinked directory (``deploy/chart/link -> ../../other``) and then any symlink inside it
(``other/env -> /proc/1/environ``), so ``{{ .Files.Get "link/env" }}`` would print a file of the
worker's into a PR comment. Checking symlinks in place means predicting how each tool walks a tree;
copying does not. :func:`staged` copies the environment's inputs into a fresh directory, resolving
every symlink on the way and refusing any whose target leaves the repository (symlinked
directories are walked too, and a loop is refused). Renderers then run on the copy, where there is
nothing to follow. The copy is bounded by the render's byte and file limits, like every other input.
Plain YAML, read by Mergeway itself, needs no copy: :func:`walk` lists the same confined files
and their real locations, and they are read from there.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from mergeway.limits import InputLimits, LimitError
from mergeway.render.paths import PathError

#: Never copied: git's own data is not an input, and a nested ``.git`` could be large.
_SKIPPED = frozenset({".git"})


class Input(NamedTuple):
    """One file a renderer may read: where it is in the repository as the renderer sees it, and really."""

    #: Its path relative to the repository, through any symlinks (``deploy/chart/link/app.conf``).
    shown: str
    #: The resolved file it is, inside the repository.
    real: Path


class _Walker:
    """Lists resolved, confined files under ``root``, counting them against ``limits``."""

    def __init__(self, root: Path, limits: InputLimits, keep: Callable[[str], bool]) -> None:
        self.root = root
        self.limits = limits
        self.keep = keep
        self.count = 0
        self.bytes = 0
        self.files: list[Input] = []
        #: Directories to create in a copy (by their shown path), so empty ones exist there too.
        self.directories: list[str] = []

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def _count(self, shown: str, size: int = 0) -> None:
        self.count += 1
        self.bytes += size
        if self.count > self.limits.max_files:
            raise LimitError(
                f"{shown}: refused: the render needs more than {self.limits.max_files} files and directories "
                "(MERGEWAY_MAX_RENDER_FILES)"
            )
        if self.bytes > self.limits.max_bytes:
            raise LimitError(
                f"{shown}: refused: the render's input files are larger than {self.limits.max_bytes} bytes "
                "together (MERGEWAY_MAX_RENDERED_BYTES)"
            )

    def resolve(self, logical: Path, shown: str) -> Path:
        """Where ``logical`` really is, refused when that is outside the repository."""
        real = logical.resolve()
        if real != self.root and self.root not in real.parents:
            raise PathError(f"{shown} is a symlink that leads outside the repository")
        return real

    def add(self, real: Path, shown: str, ancestors: frozenset[Path] = frozenset()) -> None:
        """Add ``real`` (already resolved and confined), seen by renderers as ``shown``."""
        info = real.stat()
        if stat.S_ISREG(info.st_mode):
            self._file(real, shown, info.st_size)
        elif stat.S_ISDIR(info.st_mode):
            self._directory(real, shown, ancestors)
        else:
            raise PathError(f"{shown} is not a regular file or directory")

    def _file(self, real: Path, shown: str, size: int) -> None:
        if self.keep(shown):
            self._count(shown, size)
            self.files.append(Input(shown, real))

    def _directory(self, real: Path, shown: str, ancestors: frozenset[Path]) -> None:
        if real in ancestors:
            raise PathError(f"{shown} is a symlink to a directory that contains it (a loop)")
        self._count(shown)
        self.directories.append(shown)
        inner = ancestors | {real}
        with os.scandir(real) as scan:
            entries = sorted((entry for entry in scan if entry.name not in _SKIPPED), key=lambda e: e.name)
        for entry in entries:
            child = f"{shown}/{entry.name}" if shown != "." else entry.name
            if entry.is_symlink():  # the common case needs no resolving: ``real`` has no symlink in it
                self.add(self.resolve(real / entry.name, child), child, inner)
            elif entry.is_dir(follow_symlinks=False):
                self._directory(real / entry.name, child, inner)
            elif entry.is_file(follow_symlinks=False):
                self._file(real / entry.name, child, entry.stat(follow_symlinks=False).st_size)
            else:
                raise PathError(f"{child} is not a regular file or directory")


def _walk(root: Path, inputs: Iterable[Path], limits: InputLimits, keep: Callable[[str], bool]) -> _Walker:
    walker = _Walker(root, limits, keep)
    done: list[Path] = []
    for logical in sorted({Path(p) for p in inputs}, key=lambda p: len(p.parts)):
        if any(logical == d or d in logical.parents for d in done):
            continue  # already listed with a directory that holds it
        shown = walker.rel(logical) if logical != root else "."
        real = walker.resolve(logical, shown)
        if not real.exists():
            raise PathError(f"{shown} does not exist in this commit")
        walker.add(real, shown)
        done.append(logical)
    return walker


def walk(
    root: Path, inputs: Iterable[Path], limits: InputLimits, *, keep: Callable[[str], bool] = lambda shown: True
) -> list[Input]:
    """The files below ``inputs`` (paths under ``root``), symlinks resolved and confined, in sorted order.

    ``keep`` may leave out files (by their path in the repository) the renderer will never read.
    """
    return _walk(root.resolve(), inputs, limits, keep).files


@contextmanager
def staged(
    root: Path, inputs: Iterable[Path], limits: InputLimits, *, keep: Callable[[str], bool] = lambda shown: True
) -> Iterator[Path]:
    """A private directory holding a copy of ``inputs`` (files or directories under ``root``).

    Each input keeps its place relative to ``root``, so relative references between them (a
    kustomize base, a values file) still hold; what a symlink points to is copied where the
    symlink was. The directory (mode 0700) is removed when the block ends.
    """
    import shutil  # here, not at the top: a plain-YAML render (the CLI's common case) needs neither
    import tempfile  # with shutil, for the same reason

    root = root.resolve()
    walker = _walk(root, inputs, limits, keep)
    with tempfile.TemporaryDirectory(prefix="mergeway-inputs-") as tmp:
        dest = Path(tmp)
        for shown in walker.directories:
            (dest / shown).mkdir(parents=True, exist_ok=True)
        for item in walker.files:
            target = dest / item.shown
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.real, target, follow_symlinks=False)
        yield dest


def unstaged(message: str, copy: Path) -> str:
    """A tool's message with the copy's location taken out, so paths read as the repository's own."""
    return message.replace(f"{copy}/", "").replace(str(copy), ".")
