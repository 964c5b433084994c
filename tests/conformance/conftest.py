"""Conformance tests: one recorder sees every simulator's traffic for the whole test session.

When this directory is collected, :data:`SESSION` is registered with the simulator's recording
hook (``pytest_configure`` runs for a conftest as soon as it is imported, before any test), so the
end-to-end tests' real traffic (PyGithub and python-gitlab inside Mergeway's workers, webhooks to
the web service) is recorded as it happens. The tests marked ``session_traffic`` validate what was
recorded, so they are moved to the very end of the run.
"""

from __future__ import annotations

import pytest

from tests.conformance import oracle
from tools.forgesim.recording import RECORDERS, Recorder

SESSION = Recorder(per_kind=20)
MARK = "session_traffic"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}: validates the traffic recorded during the whole session")
    if SESSION not in RECORDERS:
        RECORDERS.append(SESSION)


def pytest_unconfigure(config: pytest.Config) -> None:
    if SESSION in RECORDERS:
        RECORDERS.remove(SESSION)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    last = [item for item in items if item.get_closest_marker(MARK)]
    items[:] = [item for item in items if not item.get_closest_marker(MARK)] + last


@pytest.fixture(scope="session")
def session_traffic() -> Recorder:
    return SESSION


@pytest.fixture(scope="session")
def rest_description() -> oracle.RestDescription:
    return oracle.rest()


@pytest.fixture(scope="session")
def webhook_description() -> oracle.WebhookDescription:
    return oracle.webhooks()
