"""Per-group/project GitLab webhook secrets: a delivery must carry the secret of its own project.

GitLab authenticates a webhook only by its secret token. With one secret per group, a group whose
secret leaks must not be able to speak for another group's projects (or for its subgroups that
have a secret of their own); projects outside every listed path keep the global secret.
"""

from __future__ import annotations

import json

import redis

from tests.fixtures.services import FIXTURES, ServiceManager, gitlab_headers, queued_jobs

MR_OPEN = json.loads((FIXTURES / "gitlab" / "merge_request.open.json").read_text())
GLOBAL, ACME, SHOP = "global-secret-0a1b2c", "acme-secret-3d4e5f", "shop-secret-6a7b8c"
CASES = [
    ("acme/shop", SHOP, True),
    ("acme/shop", ACME, False),  # a subgroup's own secret wins over its parent's
    ("acme/shop", GLOBAL, False),
    ("acme/other", ACME, True),
    ("ACME/Other", ACME, True),  # GitLab paths are case-insensitive
    ("acme/other", SHOP, False),
    ("acme-evil/x", ACME, False),  # prefixes match whole path segments only
    ("acme-evil/x", GLOBAL, True),
    ("elsewhere/x", ACME, False),
]


def _body(path: str, n: int) -> bytes:
    payload = json.loads(json.dumps(MR_OPEN))
    payload["project"]["path_with_namespace"] = path
    payload["object_attributes"]["iid"] = n  # each case is a delivery of its own
    return json.dumps(payload).encode()


def test_a_delivery_needs_the_secret_of_its_project(
    services: ServiceManager, service_env: dict[str, str], redis_client: redis.Redis
) -> None:
    env = {
        **service_env,
        "GITLAB_WEBHOOK_SECRET": GLOBAL,
        "MERGEWAY_GITLAB_WEBHOOK_SECRETS": f"acme={ACME},acme/shop/={SHOP}",
    }
    web = services.web(env)
    outcomes = []
    for n, (path, token, _) in enumerate(CASES, start=1):
        status, answer = web.request(
            "POST", "/webhooks/gitlab", _body(path, n), gitlab_headers("Merge Request Hook", token=token)
        )
        outcomes.append((path, token, status, answer))
    assert [(p, t, s == 202) for p, t, s, _ in outcomes] == [(p, t, ok) for p, t, ok in CASES]
    for _, _, status, answer in outcomes:
        if status != 202:
            assert (status, answer) == (401, {"error": "X-Gitlab-Token is not valid for this project"})
    assert len(queued_jobs(redis_client)) == sum(ok for _, _, ok in CASES)
    logs = web.logs()
    assert all(secret not in logs for secret in (GLOBAL, ACME, SHOP))
