"""``/adopt-drift``'s edits: live values written at the exact fields, everything else of the file kept.

Plain YAML is edited in place with ``ruamel.yaml`` round trips (comments, order, quoting, other
documents kept); a kustomize environment gets a JSON 6902 patch listed in its own kustomization; Helm,
deleted objects and Secrets are not adopted, each with its reason.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mergeway.adoption import adopt, patch_name
from mergeway.drift import FieldDrift, ObjectDrift

DEPLOY = """\
# The shop's web tier. Scale with care: the database has 40 connections.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # public name
spec:
  replicas: 3 # three zones
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: "example.com/web:1"   # quoted on purpose
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  colour: blue
"""


def drift(kind: str, name: str, *fields: tuple[str, str, str], state: str = "changed") -> ObjectDrift:
    found = tuple(FieldDrift(path, live, git, "kubectl-edit") for path, live, git in fields)
    return ObjectDrift("apps/v1", kind, "shop", name, state, found, default_namespace="shop")  # type: ignore[arg-type]


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_plain_yaml_changes_only_the_drifted_lines(tmp_path: Path) -> None:
    root = tree(tmp_path, {"deploy/app.yaml": DEPLOY})
    scaled = drift(
        "Deployment",
        "web",
        ("/spec/replicas", "5", "3"),
        ("/spec/template/spec/containers/app/image", "example.com/web:2", "example.com/web:1"),
    )
    edited = drift("ConfigMap", "web-config", ("/data/colour", "red", "blue"), ("/data/size", "10", ""))
    result = adopt(root, "deploy", [scaled, edited], "shop")
    assert result.adopted == ["Deployment/web", "ConfigMap/web-config"] and not result.skipped
    text = result.files["deploy/app.yaml"]
    before, after = DEPLOY.splitlines(), text.splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=False) if b != a]
    assert changed == [
        ("  replicas: 3 # three zones", "  replicas: 5 # three zones"),
        (
            '          image: "example.com/web:2"   # quoted on purpose'.replace(":2", ":1"),
            '          image: "example.com/web:2"   # quoted on purpose',
        ),
        ("  colour: blue", "  colour: red"),
    ]
    assert after[len(before) :] == ["  size: 10"]
    docs = list(yaml.safe_load_all(text))
    assert docs[0]["spec"]["replicas"] == 5 and docs[1]["data"] == {"colour": "red", "size": 10}


def test_an_object_that_cannot_be_adopted_keeps_the_others_of_its_file(tmp_path: Path) -> None:
    third = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\ndata:\n  beta: 'off'\n"
    root = tree(tmp_path, {"deploy/app.yaml": DEPLOY + third})
    scaled = drift("Deployment", "web", ("/spec/replicas", "5", "3"))
    half = drift("ConfigMap", "web-config", ("/data/colour", "red", "blue"), ("/data/nested/deep", "1", ""))
    flags = drift("ConfigMap", "flags", ("/data/beta", "'on'", "'off'"))
    result = adopt(root, "deploy", [scaled, half, flags], "shop")
    assert result.adopted == ["Deployment/web", "ConfigMap/flags"]
    assert result.skipped == {"field": ["ConfigMap/web-config"]}
    docs = list(yaml.safe_load_all(result.files["deploy/app.yaml"]))
    assert (
        docs[0]["spec"]["replicas"] == 5 and docs[1]["data"] == {"colour": "blue"} and docs[2]["data"] == {"beta": "on"}
    )


def test_a_file_that_already_says_the_live_value_is_not_rewritten(tmp_path: Path) -> None:
    root = tree(tmp_path, {"deploy/app.yaml": DEPLOY})
    result = adopt(root, "deploy", [drift("Deployment", "web", ("/spec/replicas", "3", "2"))], "shop")
    assert result.files == {} and result.skipped == {"field": ["Deployment/web"]}


def test_a_field_gone_live_is_removed(tmp_path: Path) -> None:
    root = tree(tmp_path, {"deploy/app.yaml": DEPLOY})
    result = adopt(root, "deploy", [drift("ConfigMap", "web-config", ("/data/colour", "", "blue"))], "shop")
    assert "colour" not in result.files["deploy/app.yaml"] and "# public name" in result.files["deploy/app.yaml"]


def test_deleted_objects_secrets_and_unknown_objects_are_not_adopted(tmp_path: Path) -> None:
    root = tree(tmp_path, {"deploy/app.yaml": DEPLOY})
    result = adopt(
        root,
        "deploy",
        [
            drift("Deployment", "web", state="deleted"),
            drift("Secret", "db", ("/data/password", "KioqKio=", "c2VjcmV0")),
            drift("Deployment", "nowhere", ("/spec/replicas", "2", "1")),
            drift("ConfigMap", "web-config", ("/data/nested/deep", "1", "")),
        ],
        "shop",
    )
    assert result.files == {} and result.adopted == []
    assert result.skipped == {
        "deleted": ["Deployment/web"],
        "secret": ["Secret/db"],
        "not-found": ["Deployment/nowhere"],
        "field": ["ConfigMap/web-config"],
    }


def test_kustomize_gets_a_patch_listed_in_the_environments_kustomization(tmp_path: Path) -> None:
    kustomization = "# production overlay\nresources:\n  - ../base   # shared\nnamespace: shop\n"
    root = tree(
        tmp_path,
        {
            "base/app.yaml": DEPLOY,
            "base/kustomization.yaml": "resources: [app.yaml]\n",
            "prod/kustomization.yaml": kustomization,
        },
    )
    scaled = drift("Deployment", "web", ("/spec/replicas", "5", "3"))
    result = adopt(root, "prod", [scaled], "shop")
    name = patch_name(scaled)
    assert name == "drift-deployment-web.patch.yaml"
    assert set(result.files) == {"prod/kustomization.yaml", f"prod/{name}"}  # the shared base is not touched
    written = result.files["prod/kustomization.yaml"]
    assert written.startswith(kustomization)  # comments and layout kept; the patch appended
    assert yaml.safe_load(written)["patches"] == [{"path": name, "target": {"kind": "Deployment", "name": "web"}}]
    assert yaml.safe_load(result.files[f"prod/{name}"]) == [{"op": "add", "path": "/spec/replicas", "value": 5}]

    # Adopting again later keeps what the earlier patch set and lists the patch once.
    tree(tmp_path, result.files)
    again = adopt(
        root, "prod", [drift("Deployment", "web", ("/spec/template/metadata/labels/tier", "front", ""))], "shop"
    )
    assert yaml.safe_load(again.files["prod/kustomization.yaml"])["patches"] == [
        {"path": name, "target": {"kind": "Deployment", "name": "web"}}
    ]
    assert yaml.safe_load(again.files[f"prod/{name}"]) == [
        {"op": "add", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/spec/template/metadata/labels/tier", "value": "front"},
    ]


def test_helm_is_never_adopted(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {"chart/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 1.0.0\n", "chart/values.yaml": "replicas: 3\n"},
    )
    result = adopt(root, "chart", [drift("Deployment", "web", ("/spec/replicas", "5", "3"))], "shop")
    assert result.files == {} and result.skipped == {"helm": ["Deployment/web"]}


def test_symlinked_files_are_never_edited(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "elsewhere/app.yaml": DEPLOY,
            "deploy/keep.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n",
        },
    )
    (root / "deploy" / "app.yaml").symlink_to(root / "elsewhere" / "app.yaml")
    result = adopt(root, "deploy", [drift("Deployment", "web", ("/spec/replicas", "5", "3"))], "shop")
    assert result.files == {} and result.skipped == {"not-found": ["Deployment/web"]}
