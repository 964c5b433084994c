"""Drop redeliveries: the forge's delivery id is claimed once in Redis with ``SET NX`` and a TTL.

GitHub keeps ``X-GitHub-Delivery`` on redelivery and GitLab keeps ``Idempotency-Key`` across
retries, so a claim that already exists means "this delivery was already queued". The TTL bounds
memory; it only needs to outlast the forges' retry windows (default 72 h).

A claim is released again when the job could not be enqueued after all, so the forge's retry is
not mistaken for a duplicate and silently dropped.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

KEY_PREFIX = "mergeway:delivery:"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def delivery_id_for(header_value: str | None, body: bytes) -> str | None:
    """A usable delivery id: the header when well-formed, else a digest of the body.

    Senders that give no id (very old GitLab) are still deduplicated for byte-identical retries.
    Returns ``None`` for a header that is present but malformed, which intake answers with 400.
    """
    if header_value is None or not header_value.strip():
        return "sha256-" + hashlib.sha256(body).hexdigest()
    value = header_value.strip()
    return value if _SAFE_ID.fullmatch(value) else None


class Deduper:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def key(forge: str, delivery_id: str) -> str:
        return f"{KEY_PREFIX}{forge}:{delivery_id}"

    def claim(self, forge: str, delivery_id: str, value: str = "1") -> bool:
        """True when this is the first time the delivery is seen (the caller must then enqueue it)."""
        return bool(self.client.set(self.key(forge, delivery_id), value, nx=True, ex=self.ttl_seconds))

    def release(self, forge: str, delivery_id: str) -> None:
        """Forget a claim whose job never made it onto the queue."""
        self.client.delete(self.key(forge, delivery_id))
