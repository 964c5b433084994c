"""The words of drift on a pull request: /drift's reply and the preview's notes, as a reviewer reads them."""

from __future__ import annotations

from mergeway.drift import DriftCheck, FieldDrift, ObjectDrift
from mergeway.report import driftcheck as texts
from mergeway.report.help import render_help

REPO = "github:acme/shop"
SCALED = FieldDrift("/spec/replicas", "5", "3", "kubectl-scale", "")


def test_the_preview_note_says_what_merging_overwrites_and_what_it_keeps() -> None:
    assert texts.overwrite_note("Deployment/web", SCALED, applied="3") == (
        "<code>Deployment/web</code> <code>spec.replicas</code>: live <code>5</code> "
        "(set by <code>kubectl-scale</code>), Git <code>3</code> → this PR keeps <code>3</code>"
    )
    assert texts.overwrite_note(
        "Deployment/web", FieldDrift("/spec/replicas", "5", "4", "kubectl-scale"), "3"
    ).endswith("Git <code>3</code> → this PR sets <code>4</code>")
    # No check yet: the Git value is not guessed.
    assert "Git" not in texts.overwrite_note("Deployment/web", SCALED)
    # Cluster content cannot inject markup.
    hostile = FieldDrift("/metadata/annotations/x", "<img src=x>", "a", "<b>me</b>")
    assert "<img" not in texts.overwrite_note("ConfigMap/x", hostile) and "<b>" not in texts.overwrite_note(
        "ConfigMap/x", hostile
    )
    assert (
        texts.autoscaled("Deployment", "web", "web")
        == "Deployment/web: replicas managed by HorizontalPodAutoscaler/web"
    )


def test_the_drift_reply_lists_each_environment_with_objects_fields_and_managers() -> None:
    web = ObjectDrift("apps/v1", "Deployment", "shop", "web", "changed", (SCALED,), default_namespace="shop")
    gone = ObjectDrift("v1", "ConfigMap", "shop", "settings", "deleted", default_namespace="shop")
    body = texts.reply(
        "alice",
        [
            DriftCheck(REPO, "prod", "a" * 40, 1.0, (web, gone)),
            DriftCheck(REPO, "staging", "b" * 40, 1.0),
            DriftCheck(REPO, "dev", "", 1.0, error="cannot reach the API server"),
        ],
        unknown=["qa"],
    )
    lines = body.splitlines()
    assert lines[0].startswith("@alice drift check")
    assert "**prod**: 2 object(s) drifted from aaaaaaaaaaaa, the commit last applied:" in lines
    assert "- <code>Deployment/web</code>" in lines
    assert (
        "  - <code>/spec/replicas</code>: live <code>5</code> (set by <code>kubectl-scale</code>), Git <code>3</code>"
        in lines
    )
    assert "- <code>ConfigMap/settings</code> was deleted" in lines
    assert "**staging**: no drift from bbbbbbbbbbbb" in lines
    assert "**dev**: could not be checked: cannot reach the API server" in lines
    assert lines[-1] == "Not an environment of this repository: <code>qa</code>."
    assert texts.render_reply(body).startswith("<!-- mergeway:drift -->\n")


def test_help_lists_drift() -> None:
    assert "| `/drift` |" in render_help()
