"""Regenerate docs/page.png: the environments page over a seeded Redis, in Debian's headless Chromium.

    .venv/bin/python tools/page_screenshot.py [--out docs/page.png] [--width 1200]

Starts a private redis-server on a free port, writes a handful of deployment records (the same
:class:`~mergeway.deployments.Deployments` the workers use) and a drift result, serves the real
web app (``MERGEWAY_PAGE=public``) on a loopback port, and saves what the browser shows. Nothing
outside this process and its children is touched. Needs ``tools/browser/ensure.sh`` (and redis).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis
from werkzeug.serving import make_server

from mergeway.config import Settings
from mergeway.deployments import Counts, Deployment, Deployments, Failure
from webhook_service import create_app

ROOT = Path(__file__).resolve().parents[1]
SHA = {
    "prod": "9f1c2e4b7a0d3c5e8f6a1b2c3d4e5f60718293a4",
    "staging": "4be07d1c9a2f3e5b6c7d8e9f0a1b2c3d4e5f6071",
    "next": "c3d2a1f0e9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4",
    "payments": "71aa3c5e0b9d8f7e6d5c4b3a291807f6e5d4c3b2",
    "search": "e2d4f6a8c0b1d3f5e7a9c1b3d5f7e9a1c3e5a7b9",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(client: redis.Redis, now: float) -> None:
    """Records a person would meet: healthy with a deploy in flight, failed, held, drifted."""
    store = Deployments(client)
    shop = {"repository_url": "https://github.com/acme/shop", "cluster": "eu-prod"}

    def record(env: str, sha: str, pr: int, title: str, who: str, ago: float, **fields: object) -> Deployment:
        base = Deployment("github:acme/shop", env, sha, pr=pr, merged_by=who, title=title, **shop)  # type: ignore[arg-type]
        base = base._replace(**fields)  # type: ignore[arg-type]
        return base.enter("queued", at=now - ago).enter("applying", at=now - ago + 2, applied_commit=sha)

    prod = record("production", SHA["prod"], 481, "Raise checkout replicas to 6", "maria", 3 * 3600, namespace="shop")
    store.save(
        prod.enter("applied", at=now - 3 * 3600 + 9, counts=Counts(3, 0, 41)).enter(
            "healthy", at=now - 3 * 3600 + 40, healthy_commit=SHA["prod"]
        )
    )
    client.set(
        "mergeway:drift:last:github:acme/shop:production",
        json.dumps({"objects": [{"kind": "Deployment", "name": "checkout"}], "checked_at": now - 120}),
    )
    staging = record("staging", SHA["staging"], 483, "Cart: retry payment webhooks <with backoff>", "sam", 1500)
    store.save(
        staging.enter("applied", at=now - 1490)
        .enter("healthy", at=now - 1460, healthy_commit=SHA["staging"])
        ._replace(namespace="shop-staging")
    )
    store.save(record("staging", SHA["next"], 484, "Bump api to 2.14", "sam", 40, namespace="shop-staging"))
    client.set("mergeway:drift:last:github:acme/shop:staging", json.dumps({"objects": [], "checked_at": now - 90}))
    pay = Deployment(
        "gitlab:acme/payments",
        "production",
        SHA["payments"],
        pr=77,
        merged_by="lee",
        title="Switch ledger to v3",
        cluster="eu-prod",
        namespace="payments",
        repository_url="https://gitlab.com/acme/payments",
    )
    reason = "Deployment/payments/ledger: rollout did not finish in time (ProgressDeadlineExceeded)"
    store.save(
        pay.enter("queued", at=now - 900)
        .enter("applying", at=now - 898, applied_commit=SHA["payments"])
        .enter("applied", at=now - 890)
        .enter(
            "failed",
            at=now - 590,
            reason=reason,
            failures=(
                Failure("Deployment/payments/ledger", "rollout did not finish in time (ProgressDeadlineExceeded)"),
            ),
        )
    )
    search = Deployment(
        "github:acme/search",
        "production",
        SHA["search"],
        pr=212,
        merged_by="ana",
        title="Drop the legacy index",
        cluster="us-prod",
        namespace="search",
        repository_url="https://github.com/acme/search",
    )
    store.save(
        search.enter("queued", at=now - 5400)
        .enter("applying", at=now - 5398, applied_commit=SHA["search"])
        .enter("applied", at=now - 5390)
        .enter("healthy", at=now - 5360, healthy_commit=SHA["search"])
        .enter("held", at=now - 5360, reason="1 destructive change(s) wait for an allowance")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--out", default=str(ROOT / "docs" / "page.png"))
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            seed(client, time.time())
            env = {
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "GITHUB_WEBHOOK_SECRET": "unused",
                "GITLAB_WEBHOOK_SECRET": "unused",
                "MERGEWAY_POLICY": "allow-all",
                "MERGEWAY_PAGE": "public",
            }
            app = create_app(Settings.from_env(env, role="web"), configure_logs=False)
            web = make_server("127.0.0.1", 0, app, threaded=True)
            threading.Thread(target=web.serve_forever, daemon=True).start()
            options = webdriver.ChromeOptions()
            options.binary_location = shutil.which("chromium") or "chromium"
            for arg in (
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
            ):
                options.add_argument(arg)
            options.add_argument(f"--window-size={args.width},800")
            driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))
            try:
                driver.get(f"http://127.0.0.1:{web.server_port}/")
                height = int(driver.execute_script("return document.documentElement.scrollHeight"))
                driver.set_window_size(args.width, height + 140)
                driver.save_screenshot(args.out)
            finally:
                driver.quit()
                web.shutdown()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
