"""Drop redeliveries and replays: a delivery is claimed once in Redis, by its id *and* its body.

GitHub keeps ``X-GitHub-Delivery`` on redelivery and GitLab keeps ``Idempotency-Key`` across
retries, so a claim that already exists means "this delivery was already queued". But the delivery
id is not covered by GitHub's signature (and GitLab signs nothing): a captured body re-sent with a
fresh id would pass an id-only check. So each delivery also claims the SHA-256 of its raw body, and
a delivery is new only when neither key exists. Both keys are set with ``NX`` and the same TTL in one
Lua script: one Redis round trip, and no window in which one key is set without the other.

The TTL bounds memory; it only needs to outlast the forges' retry windows (default 72 h). A claim is
released again (both keys) when the job could not be enqueued after all, so the forge's retry is not
mistaken for a duplicate and silently dropped.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

KEY_PREFIX = "mergeway:delivery:"
BODY_PREFIX = "mergeway:body:"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

#: KEYS: the claims; ARGV[1]: the value, ARGV[2]: the TTL. 1 when every key was free (all are now set).
_CLAIM = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return 1
"""


def body_digest(body: bytes) -> str:
    """What a replay cannot change without breaking the signature: the exact received bytes."""
    return hashlib.sha256(body).hexdigest()


def delivery_id_for(header_value: str | None, body: bytes) -> str | None:
    """A usable delivery id: the header when well-formed, else a digest of the body.

    Senders that give no id (very old GitLab) are still deduplicated for byte-identical retries.
    Returns ``None`` for a header that is present but malformed, which intake answers with 400.
    """
    if header_value is None or not header_value.strip():
        return "sha256-" + body_digest(body)
    value = header_value.strip()
    return value if _SAFE_ID.fullmatch(value) else None


class Deduper:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._claim = client.register_script(_CLAIM)

    @staticmethod
    def key(forge: str, delivery_id: str) -> str:
        return f"{KEY_PREFIX}{forge}:{delivery_id}"

    @staticmethod
    def body_key(forge: str, digest: str) -> str:
        return f"{BODY_PREFIX}{forge}:{digest}"

    def _keys(self, forge: str, delivery_id: str, digest: str | None) -> list[str]:
        keys = [self.key(forge, delivery_id)]
        if digest is not None:
            keys.append(self.body_key(forge, digest))
        return keys

    def claim(self, forge: str, delivery_id: str, value: str = "1", *, digest: str | None = None) -> bool:
        """True when neither the delivery id nor the body ``digest`` was seen (the caller must enqueue)."""
        return bool(self._claim(keys=self._keys(forge, delivery_id, digest), args=[value, self.ttl_seconds]))

    def release(self, forge: str, delivery_id: str, *, digest: str | None = None) -> None:
        """Forget a claim whose job never made it onto the queue."""
        self.client.delete(*self._keys(forge, delivery_id, digest))
