"""Which changes the preview puts first, and the field paths it names (pure functions of a plan)."""

from __future__ import annotations

from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan
from mergeway.report.markdown import code
from mergeway.report.planned import planned_of
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
    body = render_preview(PreviewReport("staging", "0" * 40, planned=planned_of(Plan([item]))), limit=65_536)
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


def _meta(**fields: object) -> dict[str, object]:
    return {"metadata": {"name": "data", **fields}, "spec": {}}


def _sts(replicas: int, scaled: str = "Delete", deleted: str = "Retain") -> dict[str, object]:
    policy = {"whenScaled": scaled, "whenDeleted": deleted}
    return {"metadata": {"name": "db"}, "spec": {"replicas": replicas, "persistentVolumeClaimRetentionPolicy": policy}}


def test_updates_that_let_kubernetes_delete_data_are_destructive():
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "gone", "uid": "0d4e1c4e-0000-4000-8000-000000000000"}
    claim = ref("PersistentVolumeClaim", "data")
    plan = Plan(
        [
            ObjectDiff(claim, "update", before=_meta(), after=_meta(ownerReferences=[owner])),
            ObjectDiff(
                ref("PersistentVolumeClaim", "cache"),
                "update",
                before=_meta(finalizers=["kubernetes.io/pvc-protection"]),
                after=_meta(),
            ),
            ObjectDiff(ref("StatefulSet", "db", group="apps"), "update", before=_sts(3), after=_sts(1)),
            ObjectDiff(ref("StatefulSet", "old", group="apps"), "delete", before=_sts(1, deleted="Delete")),
            # Not destructive: scaling up, a retained claim scaled down, an owner that was already there.
            ObjectDiff(ref("StatefulSet", "up", group="apps"), "update", before=_sts(1), after=_sts(3)),
            ObjectDiff(
                ref("StatefulSet", "kept", group="apps"), "update", before=_sts(3, "Retain"), after=_sts(1, "Retain")
            ),
            ObjectDiff(
                ref("ConfigMap", "child"),
                "update",
                before=_meta(ownerReferences=[owner]),
                after=_meta(ownerReferences=[owner], labels={"a": "b"}),
            ),
        ]
    )
    found = {(r.ref.name, r.kind, r.why.split(":")[0]) for r in destructive(plan)}
    assert found == {
        ("data", "delete", "an `ownerReferences` entry (ConfigMap/gone) is added"),
        ("cache", "delete", "finalizer `kubernetes.io/pvc-protection` is removed"),
        ("db", "delete", "replicas 3 → 1 with claims retained `whenScaled"),
        ("old", "destroy", "its pods' volume claims are retained `whenDeleted"),
    }
    body = render_preview(PreviewReport("staging", "abc", planned=planned_of(plan)), limit=65536)
    assert "🗑️ **lets Kubernetes delete** `PersistentVolumeClaim/shop/data`" in body
