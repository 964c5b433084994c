"""Which changes the preview puts first, and the field paths it names (pure functions of a plan)."""

from __future__ import annotations

from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan
from mergeway.report.markdown import code
from mergeway.report.preview import PreviewReport, render_preview
from mergeway.report.risk import destructive, field_changes, risks


def ref(kind: str, name: str, namespace: str = "shop", group: str = "") -> ObjectRef:
    return ObjectRef(group, kind, namespace, name)


def deployment(image: str, replicas: int, env: str = "dns") -> dict[str, object]:
    container = {"name": "web", "image": image, "env": [{"name": "MODE", "value": env}]}
    return {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
    }


def test_prunes_of_namespaces_crds_and_protected_objects_are_destructive_others_are_not():
    protected = {"metadata": {"name": "keep", "annotations": {"mergeway.io/protect": "true"}}}
    plan = Plan(
        [
            ObjectDiff(ref("Namespace", "shop", ""), "delete", before={"metadata": {"name": "shop"}}),
            ObjectDiff(ref("CustomResourceDefinition", "widgets.acme.io", ""), "delete", before={}),
            ObjectDiff(ref("ConfigMap", "keep"), "delete", before=protected),
            ObjectDiff(ref("ConfigMap", "plain"), "delete", before={"metadata": {"name": "plain"}}),
        ]
    )
    found = {(r.ref.name, r.why) for r in destructive(plan)}
    assert found == {
        ("shop", "every object in the namespace is deleted with it"),
        ("widgets.acme.io", "every custom resource of this kind is deleted with it"),
        ("keep", "it is annotated `mergeway.io/protect`"),
    }


def test_an_immutable_change_of_an_object_that_opts_in_to_recreate_is_a_recreate():
    item = ObjectDiff(ref("Job", "job"), "update", recreate=True, message="this change touches an immutable field")
    assert [(r.kind, r.destructive) for r in risks(Plan([item]))] == [("recreate", True)]


def test_pod_restarts_say_why_and_scaling_is_its_own_line():
    item = ObjectDiff(
        ref("Deployment", "web"),
        "update",
        before=deployment("app:v5", 3),
        after=deployment("app:v6", 5, env="env"),
    )
    found = [(r.kind, r.why) for r in risks(Plan([item]))]
    assert found == [
        ("restart", "env of `web` changed (MODE)"),
        ("restart", "image of `web` app:v5 → app:v6"),
        ("scale", "replicas 3 → 5"),
    ]
    scaled_only = ObjectDiff(ref("Deployment", "web"), "update", before=deployment("a", 3), after=deployment("a", 4))
    assert [r.kind for r in risks(Plan([scaled_only]))] == ["scale"]


def test_changed_fields_match_named_list_items_by_name_not_position():
    before = {"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}}
    after = {"spec": {"containers": [{"name": "b", "image": "y:2"}, {"name": "a", "image": "x:1"}]}}
    assert [c.describe() for c in field_changes(before, after)] == ["spec.containers[b].image y:1→y:2"]


def test_hostile_names_and_values_cannot_break_out_of_the_comment_markup():
    assert code("</code><img src=x>`|") == "<code>&lt;/code&gt;&lt;img src=x&gt;`\\|</code>"
    item = ObjectDiff(
        ref("ConfigMap", "c"),
        "update",
        before={"data": {"k": "a"}},
        after={"data": {"k": "</code><script>"}},
    )
    body = render_preview(PreviewReport("staging", "0" * 40, plan=Plan([item])), limit=65_536)
    assert "<script>" not in body and "&lt;/code&gt;&lt;script&gt;" in body


def test_the_terminal_uses_the_comment_words_and_lists_failures_first():
    import io

    from mergeway.report.terminal import print_plan

    plan = Plan(
        [
            ObjectDiff(ref("ConfigMap", "a"), "create", diff="+x\n"),
            ObjectDiff(ref("ConfigMap", "b"), "update"),
            ObjectDiff(ref("ConfigMap", "c"), "delete"),
            ObjectDiff(ref("ConfigMap", "z"), "error", message="denied"),
        ]
    )
    out = io.StringIO()
    print_plan(plan, out, color=False)
    lines = out.getvalue().splitlines()
    summary = "1 to add, 1 to change, 1 to prune, 0 unchanged, 1 failed"
    assert lines[0] == summary and lines[-1] == summary
    titles = [line for line in lines if ": ConfigMap/" in line]
    assert titles == [
        "failed: ConfigMap/shop/z",
        "add: ConfigMap/shop/a",
        "change: ConfigMap/shop/b",
        "prune: ConfigMap/shop/c",
    ]
