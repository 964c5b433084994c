"""Render a kustomization with ``kubectl kustomize`` (the same kustomize kubectl users run).

A kustomization is written by whoever opens the pull request, and kustomize will fetch a remote
base with ``git`` (in spellings no prefix filter catches: ``user@host:org/repo.git``,
``host:org/repo//path?ref=x``, ``git::https://…``, ``github.com/org/repo``), load patches,
generator files, replacements, CRDs and OpenAPI schemas over HTTP, inflate Helm charts and run
plugins. So before kustomize runs, every kustomization reachable from the environment is read and
every path-like field checked: it must name a file or directory that exists inside the repository,
spelled as a plain relative path. Anything else — a URL, a remote base, ``helmCharts``, a plugin or
KRM function, a field this check does not know — is refused with the file and field named. Each
kustomization file is confined to the repository before it is read, so one that is a symlink out
of it is refused without showing a byte of what it points to. kustomize then runs on a private
copy of the environment directory and of everything the check found referenced
(:mod:`mergeway.render.stage`), with every symlink resolved, in :func:`mergeway.proc.sandbox`
(empty HOME, no git on PATH, only the copy readable, memory and CPU time limited), in case a
check is ever missed. The directory comes after ``--``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mergeway import binaries, proc, yamlsafe
from mergeway.limits import Budget, LimitError, read_text
from mergeway.render.manifests import Manifest, parse_manifests
from mergeway.render.paths import PathError, kustomization_file
from mergeway.render.stage import staged, unstaged

#: Fields whose values are plain data (names, labels, inline patches): nothing is loaded from them.
_DATA_FIELDS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata",
        "namespace",
        "namePrefix",
        "nameSuffix",
        "commonLabels",
        "labels",
        "commonAnnotations",
        "images",
        "replicas",
        "vars",
        "generatorOptions",
        "buildMetadata",
        "sortOptions",
    }
)
_REFUSED_FIELDS = {
    "helmCharts": "Helm chart inflation is not allowed in a kustomization (it downloads charts)",
    "helmChartInflationGenerator": "Helm chart inflation is not allowed in a kustomization (it downloads charts)",
    "helmGlobals": "Helm chart inflation is not allowed in a kustomization (it downloads charts)",
}
#: kustomize's built-in transformers and generators (``apiVersion: builtin``); anything else is a plugin.
_BUILTIN_KINDS = frozenset(
    {
        "AnnotationsTransformer",
        "ConfigMapGenerator",
        "HashTransformer",
        "ImageTagTransformer",
        "LabelTransformer",
        "NamespaceTransformer",
        "PatchJson6902Transformer",
        "PatchStrategicMergeTransformer",
        "PatchTransformer",
        "PrefixSuffixTransformer",
        "PrefixTransformer",
        "SuffixTransformer",
        "ReplacementTransformer",
        "ReplicaCountTransformer",
        "SecretGenerator",
        "SortOrderTransformer",
        "ValueAddTransformer",
    }
)
#: What a configMapGenerator/secretGenerator entry may hold (``kvSources`` would load plugins).
_GENERATOR_KEYS = frozenset({"name", "namespace", "behavior", "files", "envs", "env", "literals", "options", "type"})
_FUNCTION_ANNOTATIONS = ("config.kubernetes.io/function", "config.k8s.io/function")
#: Characters no local path needs but remote spellings do: scheme/scp ``:``, ``?ref=``, ``user@``.
_REMOTE_CHARS = re.compile(r"[:?@#\\\x00-\x1f]")
#: A first path segment that reads as a host name (``github.com/org/repo`` is fetched with git).
_HOST_LIKE = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$", re.IGNORECASE)


class _Checker:
    """Walks every kustomization reachable from one environment and confines what each references.

    ``needed`` collects every file and directory the walk found referenced: what kustomize reads.
    """

    def __init__(self, root: Path, budget: Budget) -> None:
        self.root = root.resolve()
        self.budget = budget
        self.limits = budget.limits
        self.seen: set[Path] = set()
        self.needed: set[Path] = set()

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def kustomization(self, directory: Path) -> None:
        directory = directory.resolve()
        if directory in self.seen:
            return
        self.seen.add(directory)
        file = kustomization_file(directory)
        if file is None:
            raise PathError(f"{self.rel(directory)} is referenced as a kustomization but has none")
        real = file.resolve()
        if real != self.root and self.root not in real.parents:
            # Refused before reading: a parse error or a field name from the file would show its content.
            raise PathError(f"{self.rel(file)} is a symlink that leads outside the repository")
        self.needed.add(directory)
        data = self._load(real)
        if not isinstance(data, dict):
            raise PathError(f"{self.rel(file)}: not a kustomization (expected a mapping)")
        for name, value in data.items():
            self._field(file, str(name), value)

    def _load(self, file: Path) -> Any:
        try:
            text = read_text(file, self.rel(file), self.limits)
            return yamlsafe.safe_load(text, source=self.rel(file), budget=self.budget)
        except LimitError as exc:
            raise PathError(str(exc)) from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise PathError(f"{self.rel(file)}: not valid YAML ({exc})") from None

    def _field(self, file: Path, name: str, value: Any) -> None:
        where = f"{self.rel(file)}: {name}"
        if name in _DATA_FIELDS or value is None:
            return
        if name in _REFUSED_FIELDS:
            raise PathError(f"{where}: {_REFUSED_FIELDS[name]}; render the chart into the repository instead")
        base = file.parent
        if name in ("resources", "bases", "components"):
            for ref in _strings(value, where):
                target = self.local(where, ref, base, directory_ok=True)
                if target.is_dir():
                    self.kustomization(target)
        elif name in ("crds", "configurations"):
            for ref in _strings(value, where):
                self.local(where, ref, base)
        elif name == "patchesStrategicMerge":
            for ref in _strings(value, where):
                if not _inline(ref):
                    self.local(where, ref, base)
        elif name in ("patches", "patchesJson6902", "replacements"):
            for i, item in enumerate(_items(value, where)):
                if item.get("path") is not None:
                    self.local(f"{where}[{i}].path", item["path"], base)
        elif name in ("configMapGenerator", "secretGenerator"):
            for i, item in enumerate(_items(value, where)):
                self._generator_files(f"{where}[{i}]", item, base)
        elif name == "openapi":
            if not isinstance(value, dict):
                raise PathError(f"{where} must be a mapping")
            if value.get("path") is not None:
                self.local(f"{where}.path", value["path"], base)
        elif name in ("transformers", "generators", "validators"):
            for ref in _strings(value, where):
                self._plugin_configs(where, ref, base)
        else:
            raise PathError(f"{where}: unknown kustomization field, refused (Mergeway checks every field it renders)")

    def _generator_files(self, where: str, item: dict[str, Any], base: Path) -> None:
        unknown = sorted(str(k) for k in item if k not in _GENERATOR_KEYS)
        if unknown:
            # e.g. the old ``kvSources``, which loads key/value plugins.
            raise PathError(f"{where}: unknown generator field(s) {', '.join(unknown)}, refused")
        for ref in _strings(item.get("files") or [], f"{where}.files"):
            # ``key=path`` names the data key; the path is what is read.
            self.local(f"{where}.files", ref.partition("=")[2] if "=" in ref else ref, base)
        for ref in _strings(item.get("envs") or [], f"{where}.envs"):
            self.local(f"{where}.envs", ref, base)
        if item.get("env") is not None:
            self.local(f"{where}.env", item["env"], base)

    def _plugin_configs(self, where: str, ref: str, base: Path) -> None:
        """Only kustomize's builtins, configured with local files: no plugin, no KRM function."""
        file = None if _inline(ref) else self.local(where, ref, base)
        source = "an inline configuration" if file is None else self.rel(file)
        try:
            text = ref if file is None else read_text(file, source, self.limits)
            docs = list(yamlsafe.load_all(text, yamlsafe.BoundedSafeLoader, source=source, budget=self.budget))
        except LimitError as exc:
            raise PathError(str(exc)) from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise PathError(f"{source}: not valid YAML ({exc})") from None
        for doc in docs:
            if doc is not None:
                self._plugin_config(where, source, doc, base)

    def _plugin_config(self, where: str, source: str, doc: Any, base: Path) -> None:
        if not isinstance(doc, dict):
            raise PathError(f"{where}: {source} is not a transformer/generator configuration")
        annotations = (doc.get("metadata") or {}).get("annotations") or {}
        if isinstance(annotations, dict) and any(a in annotations for a in _FUNCTION_ANNOTATIONS):
            raise PathError(f"{where}: {source} is a KRM function; functions are not allowed")
        kind = doc.get("kind")
        if kind == "HelmChartInflationGenerator":
            raise PathError(f"{where}: {source}: {_REFUSED_FIELDS['helmCharts']}")
        if doc.get("apiVersion") != "builtin" or kind not in _BUILTIN_KINDS:
            raise PathError(
                f"{where}: {source} configures {kind or 'an unnamed'} plugin; only kustomize's builtin "
                "transformers and generators (apiVersion: builtin) are allowed"
            )
        for key in ("path", "env"):
            if doc.get(key) is not None:
                self.local(f"{where} ({source}).{key}", doc[key], base)
        for key in ("paths", "files", "envs"):
            for ref in _strings(doc.get(key) or [], f"{where} ({source}).{key}"):
                self.local(f"{where} ({source}).{key}", ref.partition("=")[2] if "=" in ref else ref, base)
        for i, item in enumerate(_items(doc.get("replacements") or [], f"{where} ({source}).replacements")):
            if item.get("path") is not None:
                self.local(f"{where} ({source}).replacements[{i}].path", item["path"], base)

    def local(self, where: str, ref: Any, base: Path, *, directory_ok: bool = False) -> Path:
        """``ref`` as an existing file (or, when allowed, kustomization directory) inside the repository."""
        if not isinstance(ref, str) or not ref or ref.strip() != ref:
            raise PathError(f"{where}: {ref!r} is not a path")
        refuse = f"{where}: {ref!r} is not allowed:"
        hint = "only files inside the repository can be referenced (vendor remote content into it)"
        if "://" in ref or "::" in ref or _REMOTE_CHARS.search(ref) or "//" in ref:
            raise PathError(f"{refuse} it is a URL or a remote reference; {hint}")
        if ref.startswith(("/", "~")):
            raise PathError(f"{refuse} paths must be relative; {hint}")
        target = (base / ref).resolve()
        if target != self.root and self.root not in target.parents:
            raise PathError(f"{refuse} it leads outside the repository; {hint}")
        if not target.exists():
            raise PathError(f"{refuse} no such file or directory in this commit; {hint}")
        if target.is_dir():
            first = next((part for part in Path(ref).parts if part not in (".", "..")), "")
            if not directory_ok:
                raise PathError(f"{refuse} it is a directory, a file is expected here")
            if _HOST_LIKE.match(first) and not ref.startswith(("./", "../")):
                raise PathError(f"{refuse} kustomize would fetch it as a remote repository; prefix it with ./")
        self.needed.add(target)
        return target


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PathError(f"{where} must be a list of strings")
    return value


def _items(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise PathError(f"{where} must be a list of mappings")
    return value


def _inline(ref: str) -> bool:
    """Whether a patch/transformer entry is inline YAML rather than a file name (kustomize accepts both)."""
    return "\n" in ref or ref.lstrip().startswith("{")


def check_kustomization(root: Path, directory: Path, budget: Budget | None = None) -> set[Path]:
    """Refuse a kustomization tree that references anything but local files in the repository.

    Returns what it references (kustomization directories and files, resolved), for the copy
    kustomize runs on.
    """
    checker = _Checker(root, budget or Budget())
    checker.kustomization(directory)
    return checker.needed


def render_kustomize(
    root: Path, directory: Path, *, budget: Budget | None = None, timeout: float = 120.0
) -> list[Manifest]:
    """``kubectl kustomize`` of ``directory`` (under ``root``), on a private copy of what it references."""
    root = root.resolve()
    budget = budget or Budget()
    needed = check_kustomization(root, directory, budget)
    kubectl = binaries.find("kubectl")
    with staged(root, [directory, *needed], budget.limits) as copy:
        inner = copy / directory.relative_to(root)
        with proc.sandbox(readable=[copy]) as box:
            try:
                result = proc.run(
                    [kubectl, "kustomize", "--", str(inner)],
                    cwd=str(box.home),
                    timeout=timeout,
                    env=box.env,
                    max_output=budget.limits.max_bytes,
                    output_setting="MERGEWAY_MAX_RENDERED_BYTES",
                    confine=box.confinement,
                )
            except proc.ToolError as exc:
                raise proc.ToolError(exc.tool, unstaged(exc.message, copy)) from None
    return parse_manifests(result.stdout, f"{directory.relative_to(root)} (kustomize)", budget=budget)
