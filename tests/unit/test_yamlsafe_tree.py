"""Manifests load exactly as PyYAML's own safe constructor builds them, on generated and real YAML.

The bounded loader builds alias-free documents itself (:mod:`mergeway.yamlsafe`); a value read
differently (``yes`` as a string, ``0x1F`` as text, a merge key ignored) would change what is
dry-run and applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mergeway import yamlsafe
from mergeway.render.manifests import _KubeLoader

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "manifests"
_CSafe: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ReferenceKubeLoader(_CSafe):  # type: ignore[valid-type,misc]
    """PyYAML's constructor with the same resolvers as the manifest loader (no timestamps)."""


ReferenceKubeLoader.yaml_implicit_resolvers = _KubeLoader.yaml_implicit_resolvers


def both(text: str) -> tuple[list[Any], list[Any]]:
    fast = list(yamlsafe.load_all(text, _KubeLoader, source="t.yaml"))
    reference = list(yaml.load_all(text, Loader=ReferenceKubeLoader))
    return fast, reference


SCALARS = st.sampled_from(
    ["yes", "No", "on", "OFF", "true", "~", "null", "", "0x1F", "0o17", "017", "1_000", "1:20", "1.5", ".inf",
     "-.inf", ".nan", "1e3", "2024-01-01", "2024-01-01T10:00:00Z", "=", "<<", "'quoted'", '"dq"', "!!binary aGk=",
     "!!str 1", "!!int '7'", "!!float 1", "plain text", "a: b", "- x", "|\n  block\n  text\n", ">\n  folded\n"]
)  # fmt: skip
KEYS = st.sampled_from(["a", "b", "name", "80", "1", "null", "~", "yes", "<<", "=", "'q'", "!!str 5", "[1, 2]"])


def node_text(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return SCALARS
    inner = node_text(depth - 1)
    flow = st.lists(inner.filter(lambda t: "\n" not in t and not t.startswith(("-", "|", ">"))), max_size=3)
    return st.one_of(
        SCALARS,
        flow.map(lambda items: "[" + ", ".join(items) + "]"),
        st.lists(st.tuples(KEYS, inner), max_size=3).map(
            lambda pairs: (
                "{"
                + ", ".join(f"{k}: {v}" for k, v in pairs if "\n" not in v and not v.startswith(("-", "|", ">")))
                + "}"
            )
        ),
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(KEYS, node_text(2)), min_size=1, max_size=5))
def test_generated_documents_load_as_pyyaml_builds_them(pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"{k}: {v}\n" if "\n" not in v else f"{k}: {v}" for k, v in pairs)
    try:
        reference = list(yaml.load_all(text, Loader=ReferenceKubeLoader))
    except yaml.YAMLError:
        try:
            list(yamlsafe.load_all(text, _KubeLoader, source="t.yaml"))
        except yaml.YAMLError:
            return  # both refuse it
        raise AssertionError("the bounded loader accepted what PyYAML refuses") from None
    assert list(yamlsafe.load_all(text, _KubeLoader, source="t.yaml")) == reference


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=25,
), st.sampled_from([None, False, True]))  # fmt: skip
def test_dumped_objects_load_back_as_pyyaml_reads_them(obj: Any, flow: bool | None) -> None:
    fast, reference = both(yaml.safe_dump({"root": obj}, default_flow_style=flow))
    assert fast == reference


def test_merge_keys_and_odd_keys_load_as_pyyaml_builds_them() -> None:
    text = "base: {a: 1}\nmerged:\n  b: 2\n  <<: {a: 1}\n1: int key\n~: null key\n=: value key\n"
    fast, reference = both(text)
    assert fast == reference and fast[0]["merged"] == {"a": 1, "b": 2} and fast[0][1] == "int key"


def test_real_manifests_load_as_pyyaml_builds_them() -> None:
    count = 0
    for path in sorted(SHARED.rglob("*.yaml")) + sorted(SHARED.rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        try:
            reference = list(yaml.load_all(text, Loader=ReferenceKubeLoader))
        except yaml.YAMLError:
            continue  # a chart template, not YAML yet
        assert list(yamlsafe.load_all(text, _KubeLoader, source=path.name)) == reference, path
        count += 1
    assert count > 20
