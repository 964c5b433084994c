"""A flaky, slow forge: 30 % of API calls fail (5xx, 429 with Retry-After) or crawl; PRs still end right."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from tests.faults.conftest import config_map
from tools.forgesim.state import Fault

pytestmark = [pytest.mark.faults, pytest.mark.cluster]
ENVS = ("staging", "production")


class FlakyForge:
    """Wraps the simulator's fault lookup: a seeded 30 % of API requests get a fault of their own."""

    def __init__(self, sim, rate: float = 0.3, seed: int = 20261201) -> None:
        self.sim, self.rate, self.rng = sim, rate, random.Random(seed)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.original = sim._take_fault
        sim._take_fault = self.take

    def take(self, forge, method, path):
        planned = self.original(forge, method, path)
        if planned is not None:
            return planned
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            roll = self.rng.random()
        if roll < 0.4:
            status = (500, 502, 503)[int(roll * 10) % 3]
            self.injected[str(status)] += 1
            return Fault(forge, None, None, status, {}, None, 0.0, 1)
        if roll < 0.8:
            self.injected["429"] += 1
            return Fault(forge, None, None, 429, {"Retry-After": "1"}, {"message": "API rate limit exceeded"}, 0.0, 1)
        self.injected["slow"] += 1
        return Fault(forge, None, None, None, {}, None, 1.5, 1)

    def stop(self) -> None:
        self.sim._take_fault = self.original


# Its waits add up past the suite's 300 s: a preview and a deploy status per environment and PR, each
# waited up to 180 s while a quarter of the forge calls fail and are retried with back-off.
@pytest.mark.timeout(900)
def test_every_pr_ends_with_one_comment_per_env_and_the_right_statuses(chain_factory):
    # 8 retries: with 24 % of attempts failing, a call then fails for good once in ~400,000 (with the
    # default 5, once in ~5,000 calls, i.e. in a few percent of runs of this test).
    chain = chain_factory(workers=1, concurrency=2, MERGEWAY_FORGE_RETRIES="8")
    environments = [
        {"name": env, "path": f"deploy/{env}", "cluster": "local", "namespace": chain.namespace} for env in ENVS
    ]
    files = {f"deploy/{env}/base.yaml": config_map(f"base-{env}", v="0") for env in ENVS}
    repo = chain.repo(files, environments=environments)
    flaky = FlakyForge(chain.sim)
    try:
        prs = [
            chain.sim.open_pr(
                repo, f"change-{i}", files={f"deploy/{env}/c{i}.yaml": config_map(f"c{i}-{env}", v="1") for env in ENVS}
            )
            for i in range(3)
        ]
        for pr in prs:
            for env in ENVS:
                status = chain.status(repo, pr.head_sha, f"mergeway/preview/{env}", timeout=180)
                assert status.state == "success", status.description
                assert status.description.startswith("2 to add"), status.description  # base + its own
        for pr in prs:
            chain.sim.merge(repo, pr)
            sha = chain.sim.pr(repo, pr.number).merge_commit_sha
            for env in ENVS:
                status = chain.status(repo, sha, f"mergeway/deploy/{env}", timeout=180)
                assert status.state == "success", status.description
        # Everything has settled: no job is still writing when the comments are counted.
        for i, pr in enumerate(prs):
            for env in ENVS:
                assert "✅ Deployed" in chain.only_comment(repo, pr.number, f"<!-- mergeway:deploy:{env} -->").body
                preview = chain.only_comment(repo, pr.number, f"<!-- mergeway:preview:{env} -->").body
                assert f"c{i}-{env}" in preview, preview
    finally:
        flaky.stop()
    assert sum(flaky.injected.values()) >= 20, flaky.injected
    assert {"429", "slow"} <= set(flaky.injected), flaky.injected
    print(f"forge faults injected: {dict(flaky.injected)}")
