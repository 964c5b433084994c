"""Give renderers a private copy of exactly the repository files they may read, with no symlink left.

A checkout is hostile input, and its symlinks are its sharpest part: Helm's chart loader follows a
symlinked directory (``deploy/chart/link -> ../../other``) and then any symlink inside it
(``other/env -> /proc/1/environ``), so ``{{ .Files.Get "link/env" }}`` would print a file of the
worker's into a PR comment. Checking symlinks in place means predicting how each tool walks a tree;
copying does not. :func:`staged` copies the environment's inputs into a fresh directory, resolving
every symlink on the way and refusing any whose target leaves the repository (symlinked
directories are walked too, and a loop is refused). Renderers then run on the copy, where there is
nothing to follow. The copy is bounded by the render's byte and file limits, like every other input.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mergeway.limits import InputLimits, LimitError
from mergeway.render.paths import PathError

#: Never copied: git's own data is not an input, and a nested ``.git`` could be large.
_SKIPPED = frozenset({".git"})


class _Copier:
    """Copies resolved, confined files under ``root`` into ``dest``, counting against ``limits``."""

    def __init__(self, root: Path, dest: Path, limits: InputLimits, keep: Callable[[str], bool]) -> None:
        self.root = root
        self.dest = dest
        self.limits = limits
        self.keep = keep
        self.files = 0
        self.bytes = 0

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def _inside(self, real: Path) -> bool:
        return real == self.root or self.root in real.parents

    def _count(self, shown: str, size: int = 0) -> None:
        self.files += 1
        self.bytes += size
        if self.files > self.limits.max_files:
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
        if not self._inside(real):
            raise PathError(f"{shown} is a symlink that leads outside the repository")
        return real

    def copy(self, real: Path, target: Path, shown: str, ancestors: frozenset[Path]) -> None:
        """Copy ``real`` (already resolved and confined) to ``target``, which is under ``dest``."""
        info = real.stat()
        if stat.S_ISREG(info.st_mode):
            if not self.keep(shown):
                return
            self._count(shown, info.st_size)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(real, target, follow_symlinks=False)
        elif stat.S_ISDIR(info.st_mode):
            if real in ancestors:
                raise PathError(f"{shown} is a symlink to a directory that contains it (a loop)")
            self._count(shown)
            target.mkdir(parents=True, exist_ok=True)
            inner = ancestors | {real}
            with os.scandir(real) as entries:
                names = sorted(entry.name for entry in entries if entry.name not in _SKIPPED)
            for name in names:
                child = f"{shown}/{name}" if shown != "." else name
                self.copy(self.resolve(real / name, child), target / name, child, inner)
        else:
            raise PathError(f"{shown} is not a regular file or directory")


@contextmanager
def staged(
    root: Path, inputs: Iterable[Path], limits: InputLimits, *, keep: Callable[[str], bool] = lambda shown: True
) -> Iterator[Path]:
    """A private directory holding a copy of ``inputs`` (files or directories under ``root``).

    Each input keeps its place relative to ``root``, so relative references between them (a
    kustomize base, a values file) still hold; what a symlink points to is copied where the
    symlink was. ``keep`` may leave out files (by their path in the repository) the renderer will
    never read. The directory (mode 0700) is removed when the block ends.
    """
    root = root.resolve()
    with tempfile.TemporaryDirectory(prefix="mergeway-inputs-") as tmp:
        dest = Path(tmp)
        copier = _Copier(root, dest, limits, keep)
        done: list[Path] = []
        for logical in sorted({Path(p) for p in inputs}, key=lambda p: len(p.parts)):
            if any(logical == d or d in logical.parents for d in done):
                continue  # already copied with a directory that holds it
            shown = copier.rel(logical) if logical != root else "."
            real = copier.resolve(logical, shown)
            if not real.exists():
                raise PathError(f"{shown} does not exist in this commit")
            copier.copy(real, dest / logical.relative_to(root), shown, frozenset())
            done.append(logical)
        yield dest


def unstaged(message: str, copy: Path) -> str:
    """A tool's message with the copy's location taken out, so paths read as the repository's own."""
    return message.replace(f"{copy}/", "").replace(str(copy), ".")
