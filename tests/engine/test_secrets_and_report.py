import base64

from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan, unified
from mergeway.kube.normalize import normalize
from mergeway.kube.secrets import mask_pair, scrub, secret_values
from mergeway.report.planned import planned_of
from mergeway.report.preview import PreviewReport, marker, render_preview

SECRET_OLD = "hunter2-old-value"
SECRET_NEW = "correct-horse-battery"


def secret(data=None, string_data=None):
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"}}
    if data is not None:
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    if string_data is not None:
        obj["stringData"] = string_data
    return obj


def test_changed_secret_shows_before_and_after_markers_but_no_value():
    live = secret({"password": SECRET_OLD, "user": "admin"})
    desired = secret({"user": "admin"}, string_data={"password": SECRET_NEW, "token": "brand-new-token"})
    before, after = mask_pair(live, desired)
    assert before["data"] == {"password": "*** (before)", "user": "***"}
    assert after["data"] == {"password": "*** (after)", "token": "***", "user": "***"}
    assert "stringData" not in after
    text = unified(ObjectRef("", "Secret", "shop", "db"), before, after)
    for value in (SECRET_OLD, SECRET_NEW, "brand-new-token", base64.b64encode(SECRET_NEW.encode()).decode()):
        assert value not in text
    assert "-  password: '*** (before)'" in text and "+  password: '*** (after)'" in text


def test_scrub_removes_values_from_server_messages():
    values = secret_values(secret(string_data={"password": SECRET_NEW}))
    message = f'Secret "db" is invalid: data[password]: Invalid value: "{SECRET_NEW}"'
    # Only the value goes: the rest of the message is what tells the user what to fix.
    assert scrub(message, values) == 'Secret "db" is invalid: data[password]: Invalid value: "***"'
    base64_form = base64.b64encode(SECRET_NEW.encode()).decode()
    assert scrub(f"got {base64_form}", values) == "got ***"


def test_normalize_drops_server_owned_fields_only():
    live = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "status": {"x": 1},
        "data": {"a": "b"},
        "metadata": {
            "name": "c",
            "uid": "u",
            "resourceVersion": "7",
            "generation": 2,
            "creationTimestamp": "t",
            "managedFields": [{}],
            "labels": {"app": "x"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
    }
    assert normalize(live) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {"a": "b"},
        "metadata": {"name": "c", "labels": {"app": "x"}},
    }


def big_plan(n_objects: int, lines_each: int) -> Plan:
    items = []
    for i in range(n_objects):
        ref = ObjectRef("", "ConfigMap", "shop", f"cm-{i:03d}")
        after = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": ref.name},
            "data": {f"k{j}": "x" * 40 for j in range(lines_each * (i + 1) // n_objects + 1)},
        }
        items.append(ObjectDiff(ref, "create", "cms.yaml", diff=unified(ref, None, after)))
    items.append(
        ObjectDiff(
            ObjectRef("apps", "Deployment", "shop", "web"),
            "error",
            "web.yaml",
            message='Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1',
        )
    )
    return Plan(items)


def test_oversized_preview_keeps_summary_table_and_errors_within_limit():
    plan = big_plan(120, 400)
    report = PreviewReport("staging", "0123456789abcdef" * 2, planned_of(plan))
    body = render_preview(report, limit=65_536)
    assert len(body) <= 65_536
    assert body.startswith(marker("preview", "staging"))
    assert "**120 to add, 0 to change, 0 to prune, 0 unchanged, 1 failed**" in body
    for i in range(120):  # every object stays in the table even though diffs were cut
        assert f"`ConfigMap/shop/cm-{i:03d}`" in body
    assert "spec.replicas: Invalid value: -1" in body
    assert "were cut to fit the comment size limit" in body
    # The longest diffs are the ones cut: the first (smallest) object keeps its whole diff.
    smallest = body.split("<code>ConfigMap/shop/cm-000</code>")[1].split("</details>")[0]
    assert "k0: xxxx" in smallest and "cut" not in smallest
    largest = body.split("<code>ConfigMap/shop/cm-119</code>")[1].split("</details>")[0]
    assert "cut" in largest


def test_small_preview_is_not_cut():
    plan = big_plan(3, 5)
    body = render_preview(PreviewReport("dev", "abc", planned_of(plan)), limit=65_536)
    assert "cut to fit" not in body
    assert body.count("<details>") == 3


def test_status_description_fits_140_chars():
    report = PreviewReport("dev", "abc", error="x" * 500)
    state, description = report.status()
    assert state == "failure" and len(description) < 140
    state, description = PreviewReport("dev", "abc", planned_of(big_plan(3, 5))).status()
    assert state == "failure" and "1 object(s) rejected" in description


def test_contains_requires_every_desired_value_unchanged():
    from mergeway.kube.diff import contains

    live = {"spec": {"replicas": 3, "ports": [{"port": 80, "protocol": "TCP"}]}, "status": {"x": 1}}
    assert contains(live, {"spec": {"replicas": 3, "ports": [{"port": 80}]}})
    assert not contains(live, {"spec": {"replicas": 2}})
    assert not contains(live, {"spec": {"replicas": "3"}})  # types matter: the server would convert
    assert not contains(live, {"spec": {"ports": [{"port": 80}, {"port": 81}]}})
    assert not contains(live, {"spec": {"missing": None}})
