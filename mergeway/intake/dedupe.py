"""Drop redeliveries and replays: a delivery is claimed once in Redis, by its id *and* its body.

GitHub keeps ``X-GitHub-Delivery`` on redelivery and GitLab keeps ``Idempotency-Key`` across
retries, so a claim that already exists means "this delivery was already queued". But the delivery
id is not covered by GitHub's signature (and GitLab signs nothing): a captured body re-sent with a
fresh id would pass an id-only check. So each delivery also claims a fingerprint of its raw body,
and a delivery is new only when neither key exists. For GitHub the fingerprint is the verified
signature (an HMAC-SHA256 of the exact bytes, already computed), for GitLab the body's SHA-256:
hashing a 30 KB body costs about as much CPU as the rest of deduplicating it.

Claiming and enqueueing are one Lua script: both keys are set (same TTL) and the job is pushed onto
its queue atomically, in one Redis round trip. There is no state in which a delivery is claimed but
its job is not queued, so nothing needs releasing when Redis fails: either the script ran (the job
is queued; a redelivery after a lost reply is a duplicate) or it did not (nothing is claimed; the
forge's redelivery is processed).

The TTL bounds memory; it only needs to outlast the forges' retry windows (default 72 h).

Each intake thread sends the script over a connection of its own, held for the thread's life
rather than borrowed from the client's pool per delivery: the pool's checkout, the client's
command dispatch and retry wrapper cost more CPU than the round trip itself (bench/README.md,
"Fifth pass"). The connection still comes from the pool's settings (address, TLS, password,
timeouts, idle health check). A connection that fails is dropped, and the delivery tried once more
on a fresh one, which is safe because the script is atomic: either it never ran (a Redis restart
left the old socket dead) and now does, or it ran and the retry finds the claims and answers
"duplicate" for a job that is queued.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import TYPE_CHECKING, Any, Protocol, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    import redis

KEY_PREFIX = "mergeway:delivery:"
BODY_PREFIX = "mergeway:body:"
#: Body fingerprints that are a verified GitHub signature, not a SHA-256 (``mergeway:body:github:hmac-<hex>``).
HMAC_PREFIX = "hmac-"
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

#: KEYS: the claims, then the queue; ARGV: the claims' value, their TTL, the message.
#: 1 when every claim was free (all are now set and the message is queued), else 0 (nothing changed).
_CLAIM_AND_ENQUEUE = """
local queue = table.remove(KEYS)
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
redis.call('LPUSH', queue, ARGV[3])
return 1
"""
_CLAIM_AND_ENQUEUE_SHA = hashlib.sha1(_CLAIM_AND_ENQUEUE.encode(), usedforsecurity=False).hexdigest()


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


class _Connection(Protocol):
    """What dedupe uses of a redis-py connection (whose own methods are untyped)."""

    def send_command(self, *args: Any) -> None: ...
    def read_response(self) -> Any: ...
    def disconnect(self) -> None: ...


class Deduper:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._local = threading.local()

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

    def claim_and_enqueue(
        self, forge: str, delivery_id: str, value: str, *, digest: str | None, queue: str, message: str
    ) -> bool:
        """Queue ``message`` unless the delivery id or the body ``digest`` was seen; True when queued."""
        keys = [*self._keys(forge, delivery_id, digest), queue]
        args = (len(keys), *keys, value, self.ttl_seconds, message)
        try:
            return bool(self._run(args))
        except RedisConnectionError:  # e.g. a connection a Redis restart broke: once more, on a fresh one
            return bool(self._run(args))

    def _run(self, args: tuple[Any, ...]) -> Any:
        """The script's answer over this thread's connection (loaded first if Redis does not know it)."""
        conn = self._connection()
        try:
            conn.send_command("EVALSHA", _CLAIM_AND_ENQUEUE_SHA, *args)
            try:
                return conn.read_response()
            except NoScriptError:  # a restarted or flushed Redis: EVAL loads it again
                conn.send_command("EVAL", _CLAIM_AND_ENQUEUE, *args)
                return conn.read_response()
        except BaseException:
            self._local.conn = None
            conn.disconnect()
            raise

    def _connection(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = cast(_Connection, self.client.connection_pool.make_connection())
        return conn
