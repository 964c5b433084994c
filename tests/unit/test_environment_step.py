"""How an environment's step words its expected failures, and that it lets a bug through."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mergeway.git import CheckoutError, GitError
from mergeway.jobs.environment import EnvironmentStep, Refused, describe
from mergeway.kube.applyset import ApplySetConflict
from mergeway.kube.client import KubeError
from mergeway.render import RenderError
from mergeway.repoconfig import Environment, RepoConfigError

ENV = Environment("staging", "deploy/staging", "prod-eu", "shop")


@dataclass(frozen=True)
class Report:
    error: str = ""
    renderer: str = ""


def test_each_expected_failure_reads_as_what_went_wrong_where():
    rendered = describe(RenderError("a.yaml: not YAML"), "preview", ENV)
    assert rendered == "Rendering deploy/staging failed:\na.yaml: not YAML"
    unreachable = KubeError(0, "Unreachable", "cannot reach the API server: refused")
    assert describe(unreachable, "deploy", ENV) == (
        "The cluster 'prod-eu' could not be reached: cannot reach the API server: refused"
    )
    forbidden = KubeError(403, "Forbidden", "configmaps is forbidden")
    assert describe(forbidden, "deploy", ENV) == "The cluster 'prod-eu' refused the deploy: configmaps is forbidden"
    conflict = ApplySetConflict(409, "Conflict", "the ApplySet parent ConfigMap shop/x belongs to another/repo")
    assert describe(conflict, "preview", ENV) == "the ApplySet parent ConfigMap shop/x belongs to another/repo"
    assert describe(CheckoutError("branch release does not exist in acme/shop"), "deploy") == (
        "Could not read the repository: branch release does not exist in acme/shop"
    )
    fetch = GitError(["fetch", "--quiet"], 128, "fatal: unable to access the remote")
    assert describe(fetch, "deploy").startswith("Could not read the repository: git fetch --quiet failed")
    assert describe(RepoConfigError(".mergeway.yaml: environments is missing"), "preview") == (
        ".mergeway.yaml: environments is missing"
    )


def _step(verb: str) -> EnvironmentStep:
    return EnvironmentStep(ctx=None, repo=None, env=ENV, verb=verb)  # type: ignore[arg-type]  # run() needs neither


def test_run_reports_an_expected_failure_in_a_copy_of_the_report_it_was_given():
    """Reports are immutable: the failure comes back in a new one that keeps what was known before."""
    report = Report(renderer="kustomize")

    def body() -> Report:
        raise Refused("Not allowed by this server's policy: cluster prod-eu")

    stopped = _step("deploy").run(report, body)
    assert stopped == Report("Not allowed by this server's policy: cluster prod-eu", "kustomize")
    assert report == Report(renderer="kustomize")


def test_run_lets_an_unexpected_error_through_to_the_worker():
    def body() -> Report:
        raise KeyError("metadata")

    with pytest.raises(KeyError):
        _step("preview").run(Report(), body)
