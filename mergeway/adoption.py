"""What ``/adopt-drift`` changes in a checkout so that Git says what the cluster has.

Given an environment's directory and its drifted objects, :func:`adopt` returns the files to write
(path → new text) and the objects it could not adopt, with why. How depends on how the environment
is rendered, since only the repository's own files may change:

* **plain YAML**: the file that defines the object is edited in place at exactly the drifted
  fields (:mod:`mergeway.yamledit`), everything else of it kept;
* **kustomize**: the base may be shared with other environments, so it is not touched; a JSON 6902
  patch per object (``drift-<kind>-<name>.patch.yaml``) is added to the environment's own
  kustomization, listed under ``patches:``;
* **Helm**: which values render the live state cannot be known from the objects, so nothing is
  adopted; the issue says which fields differ.

Never adopted: objects deleted by hand (adopting a deletion means removing the object from Git,
which a person should decide, in a pull request of their own), Secrets (their values arrive
masked), and fields a file does not have the parent of.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from mergeway import yamledit
from mergeway.drift import ObjectDrift
from mergeway.render.paths import confine, kustomization_file
from mergeway.render.plain import wanted

log = logging.getLogger("mergeway.adoption")

Renderer = Literal["plain", "kustomize", "helm"]
Reason = Literal["deleted", "secret", "helm", "not-found", "field"]


@dataclass
class Adoption:
    """Files to write (repository-relative path → text) and what was left out, per reason."""

    files: dict[str, str] = field(default_factory=dict)
    adopted: list[str] = field(default_factory=list)
    skipped: dict[Reason, list[str]] = field(default_factory=dict)

    def skip(self, reason: Reason, ref: str) -> None:
        self.skipped.setdefault(reason, []).append(ref)


def renderer_of(root: Path, path: str) -> Renderer:
    """How Mergeway renders the environment at ``path`` (the rule :func:`mergeway.render.render` applies)."""
    directory = confine(root.resolve(), path, what="environment path")
    if directory.is_dir() and kustomization_file(directory):
        return "kustomize"
    if directory.is_dir() and (directory / "Chart.yaml").is_file():
        return "helm"
    return "plain"


def adopt(root: Path, path: str, objects: list[ObjectDrift], default_namespace: str) -> Adoption:
    """The edits that write ``objects``' live values into the environment at ``path`` of checkout ``root``."""
    result = Adoption()
    renderer = renderer_of(root, path)
    candidates = []
    for obj in objects:
        if obj.state == "deleted":
            result.skip("deleted", obj.ref)
        elif obj.kind == "Secret":
            result.skip("secret", obj.ref)
        elif renderer == "helm":
            result.skip("helm", obj.ref)
        else:
            candidates.append(obj)
    if renderer == "kustomize":
        _kustomize(root, path, candidates, result)
    else:
        _plain(root, path, candidates, default_namespace, result)
    return result


def _apply(document: Any, obj: ObjectDrift) -> None:
    for drift in obj.fields:
        if drift.live == "":
            yamledit.remove_field(document, drift.path)
        else:
            yamledit.set_field(document, drift.path, yamledit.value_of(drift.live))


def _plain_files(root: Path, path: str) -> list[Path]:
    directory = confine(root.resolve(), path, what="environment path")
    if directory.is_file():
        return [directory]
    found = []
    for file in sorted(directory.rglob("*")):
        relative = file.relative_to(directory).as_posix()
        if file.is_symlink() or not file.is_file() or not wanted(relative) or file.suffix == ".json":
            continue  # never edit through a symlink; JSON files are not YAML someone formatted
        found.append(file)
    return found


def _plain(root: Path, path: str, objects: list[ObjectDrift], namespace: str, result: Adoption) -> None:
    texts: dict[Path, list[Any]] = {}
    originals: dict[Path, str] = {}
    for obj in objects:
        spot = _find(root, path, obj, namespace, texts, originals)
        if spot is None:
            result.skip("not-found", obj.ref)
            continue
        file, document = spot
        try:
            _apply(document, obj)
        except yamledit.EditError:
            result.skip("field", obj.ref)
            # Start again from what is written so far: a partly applied object must not be written.
            texts[file] = yamledit.load_all(result.files.get(_relative(root, file), originals[file]))
            continue
        text = yamledit.dump_all(texts[file], originals[file])
        if text == result.files.get(_relative(root, file), originals[file]):
            result.skip("field", obj.ref)  # the file already says so: the drift comes from elsewhere
            continue
        result.files[_relative(root, file)] = text
        result.adopted.append(obj.ref)


def _relative(root: Path, file: Path) -> str:
    return file.relative_to(root.resolve()).as_posix()


def _find(
    root: Path, path: str, obj: ObjectDrift, namespace: str, loaded: dict[Path, list[Any]], originals: dict[Path, str]
) -> tuple[Path, Any] | None:
    for file in _plain_files(root, path):
        if file not in loaded:
            try:
                originals[file] = file.read_text(encoding="utf-8")
                loaded[file] = yamledit.load_all(originals[file])
            except Exception as exc:  # ruamel's parse errors have no common base; unreadable is not where it lives
                log.info("%s is not YAML adoption can edit: %s", file.name, type(exc).__name__)
                loaded[file] = []
        for document in loaded[file]:
            if yamledit.matches(document, obj.kind, obj.name, obj.namespace, namespace):
                return file, document
    return None


def patch_name(obj: ObjectDrift) -> str:
    """The patch file of one object: ``drift-deployment-web.patch.yaml``."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{obj.kind}-{obj.name}".lower()).strip("-")
    return f"drift-{slug}.patch.yaml"


def _ops(obj: ObjectDrift) -> CommentedSeq:
    ops = CommentedSeq()
    for drift in obj.fields:
        op = CommentedMap()
        if drift.live == "":
            op["op"], op["path"] = "remove", drift.path
        else:
            op["op"], op["path"], op["value"] = "add", drift.path, yamledit.value_of(drift.live)
        ops.append(op)
    return ops


def _merged_patch(file: Path, obj: ObjectDrift) -> str:
    """The object's patch: an earlier adoption's ops kept, each field's op replaced by this one's.

    The applied commit already contains the earlier patch, so its fields are not drift now; dropping
    them would take them back on the next deploy.
    """
    ops = _ops(obj)
    if file.is_file() and not file.is_symlink():
        try:
            [earlier] = yamledit.load_all(file.read_text(encoding="utf-8"))
        except ValueError:
            earlier = None
        if isinstance(earlier, CommentedSeq):
            fresh = {op["path"] for op in ops}
            kept = [op for op in earlier if isinstance(op, CommentedMap) and op.get("path") not in fresh]
            ops = CommentedSeq([*kept, *ops])
    return yamledit.dump_all([ops])


def _kustomize(root: Path, path: str, objects: list[ObjectDrift], result: Adoption) -> None:
    if not objects:
        return
    directory = confine(root.resolve(), path, what="environment path")
    kfile = kustomization_file(directory)
    if kfile is None or kfile.is_symlink():
        for obj in objects:
            result.skip("not-found", obj.ref)
        return
    original = kfile.read_text(encoding="utf-8")
    [kustomization] = yamledit.load_all(original)
    patches = kustomization.get("patches")
    if not isinstance(patches, CommentedSeq):
        patches = CommentedSeq()
        kustomization["patches"] = patches
    listed = {str(p.get("path")) for p in patches if isinstance(p, CommentedMap)}
    for obj in objects:
        name = patch_name(obj)
        if name not in listed:
            target = CommentedMap()
            target["kind"], target["name"] = obj.kind, obj.name
            entry = CommentedMap()
            entry["path"], entry["target"] = name, target
            patches.append(entry)
        result.files[(directory / name).relative_to(root.resolve()).as_posix()] = _merged_patch(directory / name, obj)
        result.adopted.append(obj.ref)
    result.files[kfile.relative_to(root.resolve()).as_posix()] = yamledit.dump_all([kustomization], original)


def write(root: Path, adoption: Adoption) -> str:
    """Write the adoption's files into checkout ``root``; a digest of them (names the bot branch)."""
    digest = hashlib.sha256()
    for path in sorted(adoption.files):
        confine(root.resolve(), path, what="adopted file").write_text(adoption.files[path], encoding="utf-8")
        digest.update(path.encode() + b"\0" + adoption.files[path].encode() + b"\0")
    return digest.hexdigest()
