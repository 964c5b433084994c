"""Hook and wave annotations, three dialects with one meaning (mergeway/hooks.py): what each spelling
does to an object, and that README's table is exactly the module's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mergeway.hooks import TABLE, Hook, Normal, Refused, Skipped, classify, wave_of

ROOT = Path(__file__).resolve().parents[2]


def obj(kind: str = "Job", **annotations: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "x", "annotations": annotations}}


def job(**annotations: str) -> Any:
    return classify("batch", "Job", obj(**annotations), installed=True)


def readme_rows() -> list[tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Deploy hooks and sync waves", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return [(cells[0].strip().strip("`"), cells[1].strip().strip("`"), cells[2].strip()) for cells in rows]


def test_the_readme_table_is_the_modules_table_row_for_row() -> None:
    assert readme_rows() == [(r.annotation, r.value, r.meaning) for r in TABLE]


@pytest.mark.parametrize(
    ("annotations", "phases"),
    [
        ({"mergeway.io/hook": "pre-deploy"}, ("pre-deploy",)),
        ({"mergeway.io/hook": "post-deploy"}, ("post-deploy",)),
        ({"helm.sh/hook": "pre-upgrade"}, ("pre-deploy",)),
        ({"helm.sh/hook": "pre-install,pre-upgrade"}, ("pre-deploy",)),
        ({"helm.sh/hook": "post-install, post-upgrade"}, ("post-deploy",)),
        ({"helm.sh/hook": "pre-upgrade,post-upgrade"}, ("pre-deploy", "post-deploy")),
        ({"argocd.argoproj.io/hook": "PreSync"}, ("pre-deploy",)),
        ({"argocd.argoproj.io/hook": "Sync"}, ("sync",)),
        ({"argocd.argoproj.io/hook": "PostSync"}, ("post-deploy",)),
        ({"argocd.argoproj.io/hook": "SyncFail"}, ("on-failure",)),
        # Mergeway's own spelling wins over the others.
        ({"mergeway.io/hook": "post-deploy", "helm.sh/hook": "pre-upgrade"}, ("post-deploy",)),
    ],
)
def test_each_dialect_names_the_same_phases(annotations: dict[str, str], phases: tuple[str, ...]) -> None:
    found = job(**annotations)
    assert isinstance(found, Hook), found
    assert found.phases == phases


def test_helm_install_and_upgrade_hooks_follow_whether_the_environment_has_objects() -> None:
    install = obj(**{"helm.sh/hook": "pre-install"})
    assert isinstance(classify("batch", "Job", install, installed=False), Hook)
    assert isinstance(classify("batch", "Job", install, installed=True), Skipped)
    upgrade = obj(**{"helm.sh/hook": "post-upgrade"})
    assert isinstance(classify("batch", "Job", upgrade, installed=True), Hook)
    assert isinstance(classify("batch", "Job", upgrade, installed=False), Skipped)


@pytest.mark.parametrize(
    "annotations",
    [
        {"helm.sh/hook": "test"},
        {"helm.sh/hook": "test-success"},
        {"helm.sh/hook": "pre-delete"},
        {"helm.sh/hook": "post-rollback"},
        {"argocd.argoproj.io/hook": "Skip"},
    ],
)
def test_tests_delete_and_rollback_hooks_and_skip_are_never_applied(annotations: dict[str, str]) -> None:
    # helm create's test-connection is a Pod: as a hook it would be valid, as a test it is never applied.
    found = classify("", "Pod", obj("Pod", **annotations), installed=True)
    assert isinstance(found, Skipped), found


@pytest.mark.parametrize(
    ("group", "kind", "annotations", "says"),
    [
        ("batch", "Job", {"argocd.argoproj.io/hook": "PostDelete"}, "PostDelete is not supported"),
        ("apps", "Deployment", {"mergeway.io/hook": "pre-deploy"}, "a Deployment would never be waited for"),
        ("batch", "Job", {"mergeway.io/hook": "before"}, "unknown hook 'before'"),
        ("batch", "Job", {"mergeway.io/hook": "pre-deploy", "helm.sh/hook-weight": "first"}, "not an integer"),
        ("batch", "Job", {"helm.sh/hook": "pre-upgrade", "helm.sh/hook-delete-policy": "never"}, "unknown delete"),
        ("apps", "Deployment", {"argocd.argoproj.io/sync-wave": "soon"}, "is not an integer"),
    ],
)
def test_what_cannot_be_honoured_is_refused_with_the_reason(
    group: str, kind: str, annotations: dict[str, str], says: str
) -> None:
    found = classify(group, kind, obj(kind, **annotations), installed=True)
    assert isinstance(found, Refused), found
    assert says in found.why


def test_weights_delete_policies_and_waves() -> None:
    found = job(**{"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/sync-wave": "-2"})
    assert isinstance(found, Hook) and found.weight == -2
    assert found.policies == {"before-hook-creation"}  # the default in Helm and Argo CD alike
    argo = job(**{"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"})
    helm = job(**{"helm.sh/hook": "pre-upgrade", "helm.sh/hook-delete-policy": "hook-succeeded"})
    assert isinstance(argo, Hook) and isinstance(helm, Hook) and argo.policies == helm.policies == {"hook-succeeded"}
    normal = classify("apps", "Deployment", obj("Deployment", **{"argocd.argoproj.io/sync-wave": "3"}), installed=True)
    assert normal == Normal(3)
    assert wave_of(obj("Deployment", **{"mergeway.io/sync-wave": "-1"})) == -1
    assert wave_of(obj("Deployment")) == 0
