"""Read ``.mergeway.yaml``: which environments a repository deploys, from which paths.

The file is written by whoever opens a pull request, so it is validated strictly and every error
names the field at fault: a typo must produce a clear message on the PR rather than a silently
skipped environment. It can name clusters but never carries credentials; what a repository may
actually reach is decided by the operator's policy (:mod:`mergeway.policy`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mergeway import yamlsafe
from mergeway.freeze import FreezeError, FreezeWindow, parse_windows
from mergeway.ignorerules import IgnoreSpec, parse_ignore
from mergeway.limits import LimitError

CONFIG_FILES = (".mergeway.yaml", ".mergeway.yml")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_KNOWN_ENV_KEYS = {
    *("name", "path", "cluster", "namespace", "helm", "auto_deploy", "branch", "freeze", "ignore", "url"),
    "self_heal",
    "after",
}


class RepoConfigError(ValueError):
    """The repository config is missing or invalid; the message is shown on the PR."""


@dataclass(frozen=True)
class HelmOptions:
    release: str = ""
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    """One deploy target: a path rendered and applied to a namespace on a named cluster."""

    name: str
    path: str
    cluster: str
    namespace: str = ""
    helm: HelmOptions = HelmOptions()
    #: Merges into this branch deploy; empty means the repository's default branch.
    branch: str = ""
    auto_deploy: bool = True
    #: When merges must not deploy this environment (:mod:`mergeway.freeze`), besides the operator's.
    freeze: tuple[FreezeWindow, ...] = ()
    #: Environments this one deploys after: each must be healthy on the same merge first (mergeway.gates).
    after: tuple[str, ...] = ()
    #: Fields Git does not decide (``ignore:``, :mod:`mergeway.ignorerules`): the engine options preview,
    #: deploy and drift use.
    ignore: IgnoreSpec = field(default_factory=IgnoreSpec)
    #: Drift found by a check is reverted at once (the last applied commit re-applied), and the drift issue says so.
    self_heal: bool = False
    #: Where the environment is reached (``https://…``), shown by the forge's Deployments; "" for none.
    url: str = ""


@dataclass(frozen=True)
class RepoConfig:
    environments: tuple[Environment, ...]
    source: str = ".mergeway.yaml"

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)


def _str(value: Any, where: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise RepoConfigError(f"{where} must be a non-empty string")
    return value.strip()


def _dns_name(value: str, where: str) -> str:
    if not _NAME.match(value):
        raise RepoConfigError(f"{where} {value!r} must be a lowercase DNS label (a-z, 0-9, '-')")
    return value


def parse(text: str, source: str = ".mergeway.yaml") -> RepoConfig:
    """Validate config text; raise :class:`RepoConfigError` naming the first problem."""
    envs = _environments_list(text, source)
    parsed: list[Environment] = []
    seen: set[str] = set()
    for i, raw in enumerate(envs):
        parsed.append(_environment(raw, f"{source}: environments[{i}]", source, seen))
    _check_order(parsed, source)
    return RepoConfig(environments=tuple(parsed), source=source)


def _environments_list(text: str, source: str) -> list[Any]:
    """The document's ``environments`` list, after checking the YAML and the top-level keys."""
    try:
        data = yamlsafe.safe_load(text, source=source)
    except LimitError as exc:
        raise RepoConfigError(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RepoConfigError(f"{source} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise RepoConfigError(f"{source} must be a mapping with an 'environments' list")
    unknown = set(data) - {"environments", "version"}
    if unknown:
        raise RepoConfigError(f"{source}: unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    envs = data.get("environments")
    if not isinstance(envs, list) or not envs:
        raise RepoConfigError(f"{source}: 'environments' must be a non-empty list")
    return envs


def _environment(raw: Any, where: str, source: str, seen: set[str]) -> Environment:
    """One entry of ``environments``; ``seen`` holds the names before it (a name may appear once)."""
    if not isinstance(raw, dict):
        raise RepoConfigError(f"{where} must be a mapping")
    extra = set(raw) - _KNOWN_ENV_KEYS
    if extra:
        raise RepoConfigError(f"{where}: unknown key(s): {', '.join(sorted(map(str, extra)))}")
    name = _dns_name(_str(raw.get("name"), f"{where}.name"), f"{where}.name")
    where = f"{source}: environment {name!r}"
    if name in seen:
        raise RepoConfigError(f"{where} is declared twice")
    seen.add(name)
    path = _str(raw.get("path"), f"{where}.path")
    if path.startswith("/") or ".." in Path(path).parts:
        raise RepoConfigError(f"{where}.path must be relative to the repository root, without '..'")
    cluster = _str(raw.get("cluster"), f"{where}.cluster")
    namespace = _str(raw.get("namespace"), f"{where}.namespace", required=False)
    if namespace:
        _dns_name(namespace, f"{where}.namespace")
    helm = _helm(raw.get("helm") or {}, where)
    auto = raw.get("auto_deploy", True)
    if not isinstance(auto, bool):
        raise RepoConfigError(f"{where}.auto_deploy must be true or false")
    branch = _str(raw.get("branch"), f"{where}.branch", required=False)
    try:
        freeze = parse_windows(raw.get("freeze"), f"{where}.freeze")
    except FreezeError as exc:
        raise RepoConfigError(str(exc)) from None
    try:
        ignore = parse_ignore(raw.get("ignore"), where)
    except ValueError as exc:
        raise RepoConfigError(str(exc)) from None
    self_heal = raw.get("self_heal", False)
    if not isinstance(self_heal, bool):
        raise RepoConfigError(f"{where}.self_heal must be true or false")
    url = _url(raw.get("url"), f"{where}.url")
    after = _after(raw, where)
    return Environment(
        name,
        path,
        cluster,
        namespace,
        helm,
        branch=branch,
        auto_deploy=auto,
        freeze=freeze,
        ignore=ignore,
        url=url,
        after=after,
        self_heal=self_heal,
    )


def _url(value: Any, where: str) -> str:
    """An environment's ``url:``: an absolute http(s) URL (the forge links to it; no other scheme is a link)."""
    url = _str(value, where, required=False)
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in url) or len(url) > 2048:
        raise RepoConfigError(f"{where} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:  # shown on the forge to everyone who reads it
        raise RepoConfigError(f"{where} must not carry a user name or password")
    return url


# -- environment order (`after:`), see mergeway.gates --------------------------------------------------


def _after(raw: dict[str, Any], where: str) -> tuple[str, ...]:
    after = raw.get("after") or []
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) and a for a in after):
        raise RepoConfigError(f"{where}.after must be a list of environment names")
    return tuple(dict.fromkeys(after))


def _check_order(envs: list[Environment], source: str) -> None:
    """Every ``after`` names a declared environment, and following never goes round in a circle."""
    names = {e.name for e in envs}
    follows = {e.name: e.after for e in envs}
    for env in envs:
        for name in env.after:
            if name not in names:
                known = ", ".join(sorted(names))
                raise RepoConfigError(
                    f"{source}: environment {env.name!r}.after names {name!r}, which is not declared (known: {known})"
                )
    for start in follows:
        path = [start]
        stack = [(start, iter(follows[start]))]
        while stack:
            _, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                continue
            if child == start:
                cycle = " → ".join([*path, start])
                raise RepoConfigError(f"{source}: environments follow each other in a cycle ({cycle}) in `after`")
            if child not in path:
                path.append(child)
                stack.append((child, iter(follows[child])))


def in_order(envs: list[Environment] | tuple[Environment, ...]) -> list[Environment]:
    """``envs`` with every environment after the ones it follows (otherwise in their declared order)."""
    pending, done, out = list(envs), set[str](), []
    present = {e.name for e in envs}
    while pending:
        ready = next((e for e in pending if all(a in done or a not in present for a in e.after)), pending[0])
        pending.remove(ready)
        done.add(ready.name)
        out.append(ready)
    return out


def _helm(raw: Any, where: str) -> HelmOptions:
    if not isinstance(raw, dict):
        raise RepoConfigError(f"{where}.helm must be a mapping")
    values = raw.get("values") or []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RepoConfigError(f"{where}.helm.values must be a list of paths")
    release = _str(raw.get("release"), f"{where}.helm.release", required=False)
    if release:
        _dns_name(release, f"{where}.helm.release")
    return HelmOptions(release=release, values=tuple(values))


def load(root: Path) -> RepoConfig:
    """Read the config from a checkout's root."""
    for name in CONFIG_FILES:
        path = root / name
        if path.is_symlink():
            raise RepoConfigError(f"{name} must be a regular file, not a symlink")
        if path.is_file():
            return parse(path.read_text(encoding="utf-8"), name)
    raise RepoConfigError(
        "no .mergeway.yaml in the repository root; add one that lists your environments "
        "(name, path, cluster, namespace)"
    )
