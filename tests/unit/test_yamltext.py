"""The diff text of an object is exactly ``yaml.dump``'s, on generated objects and real manifests.

A reviewer compares live and planned YAML line by line: a quoting or indentation slip would show a
change that is not one (or hide one), and a diff rendered before and after an upgrade would differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mergeway.kube import yamltext

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "manifests"
OPTIONS: dict[str, Any] = {"sort_keys": True, "default_flow_style": False, "allow_unicode": True, "width": 10_000}


def reference(obj: Any) -> str:
    return yaml.dump(obj, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), **OPTIONS)


#: Characters that make YAML quote, fold or escape, next to the ones identifiers are made of.
TRICKY = st.sampled_from(
    ["", "a", "Z", "_", "/", ".", "-", "0", "9", " ", ":", "#", "'", '"', "\n", "\t", "{", "[", ",", "&", "*", "!",
     "|", ">", "%", "@", "`", "?", "~", "=", "<", "é", "ü", "\u2028", "\x85", "\ufeff", "\x00", "yes", "No", "NULL",
     "true", "off", "1.5", "0x1F", "1e3", ".inf", "2024-01-01", "12:30", "---", "...", "<<"]
)  # fmt: skip
TEXT = st.one_of(
    st.lists(TRICKY, max_size=4).map("".join),
    st.from_regex(r"[A-Za-z_/][A-Za-z0-9_./@:+ -]{0,40}", fullmatch=True),
    # What the fast path writes unquoted, mixed with every indicator it must not.
    st.from_regex(r"[A-Za-z_/][A-Za-z0-9_./@:+ #,!&*?|>'\"%=~\[\]{}-]{0,8}", fullmatch=True),
    st.text(max_size=12),
    st.text(alphabet="ab-", min_size=120, max_size=140),
)
SCALAR = st.one_of(TEXT, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=True))
OBJECTS = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=5)),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(TEXT, OBJECTS, min_size=1, max_size=6))
def test_generated_objects_read_exactly_as_yaml_dump_writes_them(obj: dict[str, Any]) -> None:
    assert yamltext.dump(obj) == reference(obj)


def test_shared_objects_are_written_as_yaml_dump_writes_them() -> None:
    inner = {"k": "v"}
    obj = {"a": inner, "b": inner, "c": [inner]}  # one object twice: yaml.dump writes an anchor and an alias
    assert yamltext.dump(obj) == reference(obj)
    assert "&id001" in yamltext.dump(obj)


def real_objects() -> list[Any]:
    docs: list[Any] = []
    for path in sorted(SHARED.rglob("*.yaml")) + sorted(SHARED.rglob("*.yml")):
        try:
            docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict))
        except yaml.YAMLError:
            continue  # a chart template, not YAML yet
    return docs


def test_real_manifests_read_exactly_as_yaml_dump_writes_them() -> None:
    docs = real_objects()
    assert len(docs) > 20
    for doc in docs:
        assert yamltext.dump(doc) == reference(doc)


def test_a_typical_object_is_written_without_yaml_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}], "env": []},
                    ],
                    "hostNetwork": False,
                }
            },
        },
    }
    expected = reference(deployment)

    def refuse(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("yaml.dump was called")

    monkeypatch.setattr(yaml, "dump", refuse)
    assert yamltext.dump(deployment) == expected
