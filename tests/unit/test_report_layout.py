"""The layout of Mergeway's comments, from hand-built plans: no cluster, no forge, no Redis.

What a reviewer relies on: the heading says where and what, risky changes come before the table,
the table lists failures first, every comment stays within the forge's size limit and says when it
was cut, untrusted text cannot break out of its fence, and /help documents every command there is.
"""

from __future__ import annotations

import re

import pytest

from mergeway.commands import parse_command
from mergeway.events import COMMAND_NAMES
from mergeway.kube.apply import DeployResult
from mergeway.kube.changeset import ObjectDiff, ObjectRef, Plan
from mergeway.report import rollback
from mergeway.report.deploy import DeployReport, render_deploy
from mergeway.report.help import MARKER as HELP_MARKER
from mergeway.report.help import render_help
from mergeway.report.markdown import marker, refusal, status_kind, status_name
from mergeway.report.planned import planned_of
from mergeway.report.preview import PreviewReport, render_preview, render_summary, summary_rows

HEAD = "c" * 40
NS = "shop"


def ref(kind: str, name: str) -> ObjectRef:
    return ObjectRef("apps" if kind == "Deployment" else "", kind, NS, name)


def deployment(replicas: int, image: str) -> dict[str, object]:
    container = {"name": "web", "image": image}
    return {"spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}}}


def risky_plan() -> Plan:
    """What a reviewer must not miss: a rejected object, a new one, a restart and a volume prune."""
    return Plan(
        [
            ObjectDiff(ref("ConfigMap", "unchanged"), "unchanged"),
            ObjectDiff(ref("PersistentVolumeClaim", "data"), "delete", diff="-kind: PersistentVolumeClaim\n"),
            ObjectDiff(
                ref("Deployment", "web"),
                "update",
                source="deploy/web.yaml",
                diff="-  replicas: 2\n+  replicas: 3\n",
                before=deployment(2, "web:v1"),
                after=deployment(3, "web:v2"),
            ),
            ObjectDiff(ref("ConfigMap", "new"), "create", source="deploy/new.yaml", diff="+kind: ConfigMap\n"),
            ObjectDiff(
                ref("Service", "bad"), "error", source="deploy/bad.yaml", message='spec.ports: Invalid value: "x"'
            ),
        ]
    )


def table_rows(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("| ") and "`" in line and "object" not in line]


def test_a_preview_says_where_first_then_the_risks_then_the_table_failures_first() -> None:
    report = PreviewReport(
        "staging", HEAD, planned=planned_of(risky_plan()), namespace=NS, cluster="local", renderer="plain"
    )
    body = render_preview(report, limit=65_536)
    lines = body.splitlines()
    assert lines[0] == "<!-- mergeway:preview:staging -->"
    assert lines[1] == f"### Mergeway preview · `staging` · {HEAD}"
    assert "cluster `local`, namespace `shop`, rendered with plain" in lines
    assert lines[5] == "**1 to add, 1 to change, 1 to prune, 1 unchanged, 1 failed**"
    risks, table = body.index("#### ⚠️ Look at these first"), body.index("| | object | changed fields | source |")
    assert risks < table
    assert "🔥 **prunes** `PersistentVolumeClaim/shop/data`" in body[risks:table]
    assert "labels this pull request `mergeway/allow-destructive`" in body[risks:table]
    assert f"comments `/allow-destructive staging {HEAD[:12]}`" in body[risks:table]
    assert "other than the author" in body[risks:table]
    kinds = [row.split("|")[1].strip() for row in table_rows(body)]
    assert kinds == ["❌ failed", "➕ add", "✏️ change", "🗑️ prune"]  # unchanged objects are not listed
    assert "<code>spec.replicas 2→3</code>" in body
    rejected = body.index("#### Rejected by the API server")
    assert '**`Service/shop/bad`** (deploy/bad.yaml)\n\n```\nspec.ports: Invalid value: "x"\n```' in body[rejected:]
    assert rejected < body.index("<details>")  # the API server's words before any diff


def test_a_preview_too_big_for_the_forge_keeps_its_table_and_names_the_cut_diffs() -> None:
    items = [
        ObjectDiff(ref("ConfigMap", f"cm-{n}"), "create", diff="".join(f"+  key{k}: value\n" for k in range(400)))
        for n in range(6)
    ]
    body = render_preview(PreviewReport("staging", HEAD, planned=planned_of(Plan(items))), limit=20_000)
    assert len(body) <= 20_000
    assert len(table_rows(body)) == 6  # every object still listed
    assert re.search(r"_\d diff\(s\) were cut to fit the comment size limit: `ConfigMap/shop/cm-", body)


def test_the_summary_links_each_environment_and_is_cut_with_a_note_when_too_long() -> None:
    reports = [
        PreviewReport("staging", HEAD, planned=planned_of(risky_plan()), on_merge="deploys"),
        PreviewReport("prod", HEAD, error="Not allowed by this server's policy: no", on_merge="not deployed"),
    ]
    links = {"staging": "https://forge.example/c/1", "prod": "https://forge.example/c/2"}
    body = render_summary(reports, links, limit=65_536)
    assert body.startswith(f"<!-- mergeway:summary:preview -->\n### Mergeway preview summary · {HEAD}\n")
    rows = table_rows(body)
    assert rows[0].startswith("| [`staging`](https://forge.example/c/1) | ❌ failure |")
    assert rows[0].endswith("| deploys |") and "🔥 prunes `data`" in rows[0]
    assert rows[1].startswith("| [`prod`](https://forge.example/c/2) | ❌ failure | Preview failed: Not allowed")
    short = render_summary(reports, links, limit=200)
    assert len(short) <= 200 and short.endswith("\n\n_Cut to fit the comment size limit._\n")


def test_a_summary_of_one_environment_keeps_the_others_rows_of_the_same_commit() -> None:
    """``/preview staging``: the rewritten summary still has prod's row, in the configuration's order."""
    links = {"staging": "https://forge.example/c/1", "prod": "https://forge.example/c/2"}
    both = render_summary(
        [PreviewReport("staging", HEAD, planned=planned_of(risky_plan())), PreviewReport("prod", HEAD, error="no")],
        links,
        limit=65_536,
    )
    prod_row = table_rows(both)[1]
    again = PreviewReport("staging", HEAD, planned=planned_of(Plan([])), on_merge="deploys")
    kept = {k: v for k, v in summary_rows(both, HEAD).items() if k != "staging"}
    body = render_summary([again], links, limit=65_536, order=["staging", "prod"], kept=kept)
    rows = table_rows(body)
    assert len(rows) == 2 and rows[1] == prod_row
    assert rows[0].startswith("| [`staging`](https://forge.example/c/1) | ✅ success | 0 to add")
    # A summary of another commit keeps nothing: its rows are not about this one.
    assert summary_rows(both, "f" * 40) == {}


def test_a_deploy_comment_too_big_for_the_forge_is_cut_and_says_so() -> None:
    applied = [ObjectDiff(ref("ConfigMap", f"cm-{n:04}"), "create") for n in range(3000)]
    result = DeployResult(plan=Plan(applied), applied=applied)
    body = render_deploy(DeployReport("staging", HEAD, HEAD, state="success", result=result), limit=10_000)
    assert len(body) <= 10_000
    assert body.startswith(f"<!-- mergeway:deploy:staging -->\n### ✅ Deployed · `staging` · {HEAD}\n")
    assert body.endswith("\n\n_Cut to fit the comment size limit._\n")


def test_help_documents_every_command_the_parser_accepts_and_only_those() -> None:
    body = render_help()
    assert body.startswith(f"{HELP_MARKER}\n**Mergeway commands**")
    listed = re.findall(r"^\| `(/[^`]+)` \|", body, flags=re.MULTILINE)
    parsed = [parse_command(usage) for usage in listed]
    assert all(parsed), f"/help lists a command the parser refuses: {listed}"
    assert sorted(c.name for c in parsed if c) == sorted(COMMAND_NAMES)


def test_a_conflicting_revert_quotes_the_git_error_in_a_fence_it_cannot_close() -> None:
    error = "git revert failed: CONFLICT in ```\n**you have been pwned**"
    reply = rollback.render_reply(rollback.not_reverted("rita", 7, "main", error))
    assert reply.startswith("<!-- mergeway:rollback -->\n@rita the merge of #7 could not be reverted")
    fence = re.search(r"^(`{3,})\n(.*?)^\1\n", reply, flags=re.MULTILINE | re.DOTALL)
    assert fence is not None and len(fence.group(1)) > 3 and "**you have been pwned**" in fence.group(2)
    assert reply.endswith("\nRevert it by hand and open a pull request.")


def test_a_refused_command_names_the_person_and_the_command() -> None:
    assert refusal("rita", "preview") == (
        "@rita only users with write access to this repository can use `/preview`. Nothing was run."
    )
    assert rollback.refused("rita").endswith("can use `/rollback`. Nothing was changed.")


@pytest.mark.parametrize(("kind", "env"), [("preview", "staging"), ("deploy", "eu/west"), ("deploy", "")])
def test_a_status_name_reads_back_as_its_kind_and_environment(kind: str, env: str) -> None:
    name = status_name(kind, env)
    assert name == (f"mergeway/{kind}/{env}" if env else f"mergeway/{kind}")
    assert status_kind(name) == (kind, env)


def test_every_comment_kind_has_its_own_hidden_marker() -> None:
    markers = [
        marker("preview", "staging"),
        marker("deploy", "staging"),
        marker("summary", "preview"),
        marker("command", "preview"),
        HELP_MARKER,
        rollback.MARKER,
    ]
    assert len(set(markers)) == len(markers)
    assert all(re.fullmatch(r"<!-- mergeway:[a-z-]+(:[a-z-]+)? -->", m) for m in markers)
