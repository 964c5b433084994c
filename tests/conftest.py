"""Test configuration: each real component comes from a plugin in ``tests/fixtures``."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Read-only material beside the checkout (the manifests the engine tests render and apply).
SHARED = ROOT.parent / "shared"
#: The real webhook bodies, kept in the repository byte for byte (see SOURCES.md there).
WEBHOOKS = ROOT / "tests" / "data" / "webhooks"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = [
    "tests.fixtures.forgesim",
    "tests.fixtures.redis_server",
    "tests.fixtures.services",
    "tests.fixtures.cluster",
    "tests.fixtures.e2e",
    "tests.fixtures.secrets",
    "tests.fixtures.browser",
]

#: Marker implied by a fixture: a test that (directly or through another fixture) uses the fixture
#: needs that component, whether or not its module remembered to say so.
IMPLIED_MARKERS = {"redis_server": "redis", "kube_cluster": "cluster"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with what its fixtures start, so ``-m 'not redis and not cluster'`` (``make
    test-quick``) really selects the tests that need neither. ``tryfirst``: it must run before ``-m``
    deselects."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in IMPLIED_MARKERS.items():
            if fixture in used and item.get_closest_marker(marker) is None:
                item.add_marker(marker)
