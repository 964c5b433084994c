"""Signed webhook deliveries from the simulator to a receiver (Mergeway's web service in tests).

Deliveries go out in order from one background thread, like a forge's delivery queue. Helpers that
a test calls (open a PR, push, merge, comment) wait until their delivery was answered, so the test
continues with the receiver's response known; deliveries caused by API calls (a comment Mergeway
posts) are queued without waiting, so an API call never blocks on the receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from tools.forgesim import recording
from tools.forgesim.state import ForgeName


def github_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    id: str
    forge: ForgeName
    event: str  # X-GitHub-Event (e.g. "pull_request") or X-Gitlab-Event (e.g. "Merge Request Hook")
    action: str
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    url: str | None
    status: int | None = None
    response: str = ""
    error: str = ""
    done: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class Target:
    url: str
    secret: str


class WebhookSender:
    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.targets: dict[ForgeName, Target] = {}
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="forgesim-webhooks", daemon=True)
        self._thread.start()
        self._session = requests.Session()

    def configure(self, forge: ForgeName, url: str | None, secret: str = "") -> None:
        with self._lock:
            if url:
                self.targets[forge] = Target(url, secret)
            else:
                self.targets.pop(forge, None)

    def send(
        self,
        forge: ForgeName,
        event: str,
        payload: dict[str, Any],
        *,
        wait: bool,
        repo_id: int = 0,
        installation_id: int | None = None,
    ) -> Delivery:
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = str(uuid.uuid4())
        with self._lock:
            target = self.targets.get(forge)
        headers = {"Content-Type": "application/json"}
        if forge == "github":
            headers.update(
                {
                    "User-Agent": "GitHub-Hookshot/forgesim",
                    "X-GitHub-Event": event,
                    "X-GitHub-Delivery": delivery_id,
                    "X-GitHub-Hook-ID": "1",
                    "X-GitHub-Hook-Installation-Target-Type": "repository",
                    "X-GitHub-Hook-Installation-Target-ID": str(repo_id),
                }
            )
            if target and target.secret:
                headers["X-Hub-Signature-256"] = github_signature(body, target.secret)
                headers["X-Hub-Signature"] = "sha1=" + hmac.new(target.secret.encode(), body, hashlib.sha1).hexdigest()
        else:
            headers.update(
                {
                    "User-Agent": "GitLab/17.0.0-forgesim",
                    "X-Gitlab-Event": event,
                    "X-Gitlab-Event-UUID": delivery_id,
                    "Idempotency-Key": delivery_id,
                    "X-Gitlab-Webhook-UUID": "00000000-0000-4000-8000-000000000001",
                    "X-Gitlab-Instance": "http://forgesim.invalid",
                }
            )
            if target and target.secret:
                headers["X-Gitlab-Token"] = target.secret
        action = str(payload.get("action") or payload.get("object_attributes", {}).get("action") or "")
        delivery = Delivery(delivery_id, forge, event, action, payload, body, headers, target.url if target else None)
        with self._lock:
            self.deliveries.append(delivery)
        recording.tap_hook(recording.HookRecord(forge, event, action, dict(headers), body))
        self._queue.put(delivery)
        if wait:
            delivery.done.wait(self.timeout + 5)
        return delivery

    def redeliver(self, original: Delivery, *, wait: bool = True) -> Delivery:
        """Send the same bytes with the same delivery id again, as the forge's "Redeliver" button does."""
        copy = Delivery(
            original.id,
            original.forge,
            original.event,
            original.action,
            original.payload,
            original.body,
            dict(original.headers),
            original.url,
        )
        with self._lock:
            self.deliveries.append(copy)
        self._queue.put(copy)
        if wait:
            copy.done.wait(self.timeout + 5)
        return copy

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued delivery has been attempted."""
        with self._lock:
            pending = [d for d in self.deliveries if not d.done.is_set()]
        for d in pending:
            d.done.wait(timeout)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                if delivery.url:
                    resp = self._session.post(
                        delivery.url, data=delivery.body, headers=delivery.headers, timeout=self.timeout
                    )
                    delivery.status = resp.status_code
                    delivery.response = resp.text[:2000]
            except requests.RequestException as exc:
                delivery.error = type(exc).__name__
            finally:
                delivery.done.set()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._session.close()
