"""The drift issue's text: a line per object (what, who, since when), the diffs cut to fit, the two commands."""

from __future__ import annotations

from mergeway.drift import DriftCheck, FieldDrift, ObjectDrift
from mergeway.report import drift as texts

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def obj(
    name: str, *fields: FieldDrift, state: str = "changed", diff: str = "", kind: str = "Deployment"
) -> ObjectDrift:
    return ObjectDrift("apps/v1", kind, "shop", name, state, tuple(fields), diff, default_namespace="shop")  # type: ignore[arg-type]


def check(*objects: ObjectDrift) -> DriftCheck:
    return DriftCheck("github:acme/shop", "production", COMMIT, 1.0, objects)


def test_the_issue_leads_with_a_line_per_object_and_ends_with_the_commands() -> None:
    scaled = obj(
        "web", FieldDrift("/spec/replicas", "5", "3", "kubectl-scale", "2026-12-05T00:10:07Z"), diff="-3\n+5\n"
    )
    gone = obj("worker", state="deleted")
    body = texts.render_issue(check(scaled, gone), limit=65_536)
    lines = body.splitlines()
    assert lines[0] == "<!-- mergeway:drift:production -->"
    assert f"differ from {COMMIT}**, the commit last applied there" in lines[1]
    assert lines[3] == (
        "- <code>Deployment/web</code>: <code>/spec/replicas</code> live <code>5</code>, Git <code>3</code>, "
        "by <code>kubectl-scale</code> (since 2026-12-05 00:10 UTC)"
    )
    assert lines[4] == "- <code>Deployment/worker</code> was **deleted** from the cluster"
    assert body.index("<details><summary><code>Deployment/web</code></summary>") > body.index(lines[4])
    assert "```diff\n-3\n+5\n```" in body
    assert body.index("`/revert-drift`") < body.index("`/adopt-drift`") and "Deleted objects are not adopted" in body


def test_values_and_names_cannot_break_out_of_the_text() -> None:
    hostile = obj("web", FieldDrift("/metadata/annotations/x", "</code><img src=x>` | `", "", "evil`</code>", ""))
    body = texts.render_issue(check(hostile), limit=65_536)
    assert "<img" not in body and "&lt;img src=x&gt;" in body
    assert "(since unknown)" in body


def test_long_diffs_are_cut_longest_first_to_fit_the_limit() -> None:
    small = obj("small", FieldDrift("/spec/replicas", "2", "1", "kubectl-scale"), diff="-1\n+2\n")
    huge = obj("huge", FieldDrift("/data/x", "y", "z", "kubectl-edit"), diff="+line\n" * 20_000, kind="ConfigMap")
    body = texts.render_issue(check(huge, small), limit=20_000)
    assert len(body) <= 20_000
    assert "diff of 20000 lines cut to fit" in body and "```diff\n-1\n+2\n```" in body
    assert body.rstrip().endswith("closed when it is gone._")


def test_helm_environments_say_adopting_is_manual() -> None:
    body = texts.render_issue(
        check(obj("web", FieldDrift("/spec/replicas", "5", "3", "kubectl-scale"))), limit=65_536, helm=True
    )
    assert "rendered by Helm" in body and "adopting is manual" in body and "opens a pull request" not in body
