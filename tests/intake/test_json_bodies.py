"""Payloads the fast JSON parser refuses are still read the way the json module reads them.

Intake parses bodies with orjson for speed; it is stricter than Python's json module. A forge (or
a proxy in front of the service) that sends a byte-order mark, or a payload with a value the json
module accepts, must see the same answer as before: the delivery is queued, not refused as
"not a JSON object".
"""

from __future__ import annotations

import json
import uuid

import redis

from mergeway.intake.service import Intake
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.services import FIXTURES, github_headers, queued_jobs
from tests.intake.test_service import settings

OPENED = json.loads((FIXTURES / "github" / "pull_request.opened.json").read_bytes())


def test_bodies_only_the_json_module_reads_are_still_queued(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    intake = Intake(settings(redis_server.url), redis_client)
    with_bom = b"\xef\xbb\xbf" + json.dumps(OPENED).encode()
    with_nan = json.dumps({**OPENED, "extra": float("nan")}).encode()  # NaN: valid for json, not for orjson
    lone_surrogate = json.dumps({**OPENED, "note": "\ud800"}).encode()  # escaped as \\ud800
    for body in (with_bom, with_nan, lone_surrogate):
        reply = intake.handle("github", github_headers(body, "pull_request", delivery=str(uuid.uuid4())), body)
        assert (reply.status, reply.body["status"]) == (202, "queued"), reply.body
    assert len(queued_jobs(redis_client)) == 3


def test_a_body_no_parser_reads_is_refused_clearly(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    intake = Intake(settings(redis_server.url), redis_client)
    for body in (b'{"action": "opened",', b"[1, 2]", b"\xff\xfe{}"):
        reply = intake.handle("github", github_headers(body, "pull_request", delivery=str(uuid.uuid4())), body)
        assert (reply.status, reply.body) == (400, {"error": "body is not a JSON object"})
    assert queued_jobs(redis_client) == []
