"""The drift result as other parts read it: what the drift job stores is what the page and the issue get back."""

from __future__ import annotations

import redis

from mergeway.drift import DriftCheck, DriftStore, FieldDrift, ObjectDrift

REPO = "github:acme/shop"


def _check() -> DriftCheck:
    scaled = ObjectDrift(
        "apps/v1",
        "Deployment",
        "shop",
        "web",
        "changed",
        (FieldDrift("/spec/replicas", "5", "3", "kubectl-scale", "2026-12-05T00:01:02Z"),),
        diff="-  replicas: 3\n+  replicas: 5\n",
        default_namespace="shop",
    )
    gone = ObjectDrift("v1", "ConfigMap", "other", "settings", "deleted", default_namespace="shop")
    return DriftCheck(REPO, "prod", "a" * 40, 1.5, (scaled, gone), requests=7)


def test_the_last_check_round_trips_through_redis_per_repository_and_environment(redis_client: redis.Redis) -> None:
    store = DriftStore(redis_client)
    store.put(_check())
    store.put(DriftCheck(REPO, "staging", "b" * 40, 2.0))
    read = store.get(REPO, "prod")
    assert read == _check()
    assert read is not None and read.drifted
    assert [o.ref for o in read.objects] == ["Deployment/web", "ConfigMap/other/settings"]
    assert read.objects[0].managers == ("kubectl-scale",)
    assert redis_client.exists("mergeway:drift:last:github:acme/shop:prod")
    staging = store.get(REPO, "staging")
    assert staging is not None and not staging.drifted
    assert store.get(REPO, "dev") is None


def test_a_check_that_could_not_compare_is_not_drift() -> None:
    failed = DriftCheck(REPO, "prod", "", 1.0, error="cannot reach the API server")
    assert not failed.drifted
    assert DriftCheck.from_json(failed.to_json()) == failed


def test_publishing_a_check_sets_the_drift_objects_metric_of_its_environment() -> None:
    from prometheus_client import REGISTRY

    from mergeway.report.publish import Publisher

    out = Publisher(forge=None, number=0)  # type: ignore[arg-type]  # the metric needs no forge
    out.drift(_check())
    labels = {"repository": REPO, "environment": "prod"}
    assert REGISTRY.get_sample_value("mergeway_drift_objects", labels) == 2
    out.drift(DriftCheck(REPO, "prod", "a" * 40, 3.0))
    assert REGISTRY.get_sample_value("mergeway_drift_objects", labels) == 0
