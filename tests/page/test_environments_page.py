"""The environments page in a real browser, after real deploys through the whole chain.

Three repositories merge through the forge simulator, the webhook, the worker and the local
cluster: one deploys and is healthy (its PR is titled like a script), one fails its rollout (pods
never Ready), one merges a destructive change that is held. Then Debian's Chromium, headless,
opens ``/`` and each environment's page and reads what a person reads; the JSON twin says the
same; screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests.fixtures.browser import screenshot
from tests.fixtures.cluster import SIMULATE_ANNOTATION
from tests.fixtures.e2e import Stack, StackFactory
from tests.security.guard_support import protected
from tools.forgesim import SimRepo

pytestmark = pytest.mark.cluster
DEPLOY = "mergeway/deploy/staging"
SCRIPT_TITLE = "<script>alert(1)</script>"


def deployment(name: str, version: int, simulate: str = "") -> str:
    """A one-replica Deployment; ``simulate: not-ready`` keeps its pods from ever being Ready."""
    annotations = {SIMULATE_ANNOTATION: simulate} if simulate else {}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "progressDeadlineSeconds": 5,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations},
                    "spec": {"containers": [{"name": "app", "image": f"example.com/{name}:{version}"}]},
                },
            },
        }
    )


def merge(stack: Stack, repo: SimRepo, branch: str, files: dict[str, str | None], title: str = "") -> tuple[int, str]:
    """Open and merge a PR (titled ``title``); wait for its deploy's final status; ``(number, merge sha)``."""
    pr = stack.sim.open_pr(repo, branch, files=files, **({"title": title} if title else {}))
    stack.sim.merge(repo, pr, by="carol")
    sha = stack.sim.pr(repo, pr.number).merge_commit_sha
    assert sha
    stack.status(repo, sha, DEPLOY, timeout=120)
    return pr.number, sha


def row_of(browser: Any, repository: str) -> Any:
    """The table row (a card on a phone) of ``repository``'s staging environment."""
    rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if repository in r.text]
    assert len(rows) == 1, [r.text for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr")]
    return rows[0]


def cell(row: Any, label: str) -> str:
    return str(row.find_element(By.CSS_SELECTOR, f'td[data-label="{label}"]').text)


def test_the_page_shows_a_deploy_a_failed_deploy_and_a_hold(make_stack: StackFactory, browser: Any) -> None:
    stack = make_stack(MERGEWAY_PAGE="public", MERGEWAY_HEALTH_TIMEOUT_SECONDS="20")
    shop = stack.repo(name="acme/shop")
    shop_pr, shop_sha = merge(
        stack, shop, "checkout", {"deploy/checkout.yaml": deployment("checkout", 1)}, SCRIPT_TITLE
    )
    pay = stack.repo(name="acme/pay")
    pay_pr, pay_sha = merge(stack, pay, "pay", {"deploy/pay.yaml": deployment("pay", 1, simulate="not-ready")})
    keep = stack.repo({"deploy/keep.yaml": protected("keep")}, name="acme/keep")
    merge(stack, keep, "first", {"README.md": "# keep\n\ndeployed\n"})
    keep_pr, keep_sha = merge(stack, keep, "drop", {"deploy/keep.yaml": None})
    assert stack.sim.latest_status(shop, shop_sha, DEPLOY).state == "success"
    assert stack.sim.latest_status(pay, pay_sha, DEPLOY).state == "failure"

    browser.get(stack.web.url + "/")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 (reading it is the check: no script ran)
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert browser.title == "Mergeway · environments"
    screenshot(browser, "page-index")

    healthy = row_of(browser, "github:acme/shop")
    assert cell(healthy, "Environment").startswith("staging")
    assert cell(healthy, "Where") == f"local/{stack.namespace}"
    assert cell(healthy, "Commit") == shop_sha[:7]
    assert cell(healthy, "Pull request") == f"#{shop_pr} {SCRIPT_TITLE} merged by carol"  # the title, as text
    assert cell(healthy, "Phase") == "healthy"
    link = healthy.find_element(By.CSS_SELECTOR, 'td[data-label="Commit"] a').get_attribute("href")
    assert link == f"{stack.sim.repository(shop).web_url}/commit/{shop_sha}"

    failed = row_of(browser, "github:acme/pay")
    assert cell(failed, "Commit") == pay_sha[:7] and cell(failed, "Pull request").startswith(f"#{pay_pr}")
    phase = cell(failed, "Phase")
    assert phase.startswith("failed") and f"Deployment/{stack.namespace}/pay" in phase, phase

    held = row_of(browser, "github:acme/keep")
    assert cell(held, "Commit") == keep_sha[:7] and cell(held, "Pull request").startswith(f"#{keep_pr}")
    phase = cell(held, "Phase")
    assert phase.startswith("held") and "destructive" in phase, phase

    healthy.find_element(By.CSS_SELECTOR, 'td[data-label="Environment"] a').click()
    assert browser.current_url == f"{stack.web.url}/environments/github/acme/shop/staging"
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("staging")
    history = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(history) == 1 and SCRIPT_TITLE in history[0].text
    assert [line.split()[-1] for line in cell(history[0], "Phases").splitlines()] == [
        "queued",
        "applying",
        "applied",
        "healthy",
    ]
    screenshot(browser, "page-environment")

    browser.set_window_size(390, 844)  # a phone: each row is a card, every value labelled
    browser.get(stack.web.url + "/")
    assert browser.find_element(By.TAG_NAME, "thead").is_displayed() is False
    card = row_of(browser, "github:acme/shop")
    cells = [card.find_element(By.CSS_SELECTOR, f'td[data-label="{n}"]').rect for n in ("Commit", "Phase")]
    assert cells[0]["x"] == cells[1]["x"] and cells[0]["y"] < cells[1]["y"]  # stacked, not side by side
    assert max(c["x"] + c["width"] for c in cells) <= 390  # nothing to scroll sideways
    screenshot(browser, "page-phone")

    status, answer = stack.web.request("GET", "/api/environments")
    assert status == 200 and isinstance(answer, dict)
    twin = {e["repository"]: e for e in answer["environments"]}
    assert sorted(twin) == ["github:acme/keep", "github:acme/pay", "github:acme/shop"]
    assert (twin["github:acme/shop"]["commit"], twin["github:acme/shop"]["pr_title"]) == (shop_sha, SCRIPT_TITLE)
    assert [twin[r]["phase"] for r in sorted(twin)] == ["held", "failed", "healthy"]
    assert f"Deployment/{stack.namespace}/pay" in twin["github:acme/pay"]["reason"]
    status, one = stack.web.request("GET", "/api/environments/github/acme/pay/staging")
    assert status == 200 and isinstance(one, dict) and one["history"][0]["commit"] == pay_sha


def test_a_gitlab_merge_shows_with_gitlab_links(make_stack: StackFactory) -> None:
    stack = make_stack(MERGEWAY_PAGE="public")
    repo = stack.repo(forge="gitlab", name="acme/platform/shop")
    number, sha = merge(stack, repo, "checkout", {"deploy/checkout.yaml": deployment("checkout", 1)}, "Checkout v1")
    assert stack.sim.latest_status(repo, sha, DEPLOY).state == "success"

    status, answer = stack.web.request("GET", "/api/environments/gitlab/acme/platform/shop/staging")
    assert status == 200 and isinstance(answer, dict), answer
    web_url = stack.sim.repository(repo).web_url
    assert (answer["phase"], answer["commit"], answer["pr"], answer["pr_title"]) == (
        "healthy",
        sha,
        number,
        "Checkout v1",
    )
    assert answer["commit_url"] == f"{web_url}/-/commit/{sha}"
    assert answer["pr_url"] == f"{web_url}/-/merge_requests/{number}"
    assert (answer["cluster"], answer["namespace"], answer["merged_by"]) == ("local", stack.namespace, "carol")
    status, page = stack.web.request("GET", "/")
    assert status == 200 and f'href="{web_url}/-/merge_requests/{number}"' in str(page)
