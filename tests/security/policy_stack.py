"""The end-to-end stack (tests/fixtures/e2e.py) started with a real policy file instead of allow-all.

``policy_stack(text)`` writes ``text`` (``{ns}`` is replaced by the test's namespace) to a file,
starts the Procfile's web service and worker with ``MERGEWAY_POLICY_FILE`` pointing at it, and
returns the same :class:`~tests.fixtures.e2e.Stack` the e2e tests use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.e2e import Stack, StackFactory


@pytest.fixture
def policy_stack(make_stack: StackFactory, namespace: str, tmp_path: Path) -> Callable[[str], Stack]:
    def start(policy: str) -> Stack:
        path = tmp_path / "policy.yaml"
        path.write_text(policy.replace("{ns}", namespace))
        return make_stack(MERGEWAY_POLICY=None, MERGEWAY_POLICY_FILE=str(path))

    return start
