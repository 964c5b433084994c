"""Structured logs: JSON lines with context, and no secret in any part of a record."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from mergeway.config import Settings
from mergeway.logs import configure_logging, log_context
from mergeway.redaction import redact, register_secret

SETTINGS = Settings.from_env(
    {
        "GITHUB_WEBHOOK_SECRET": "whsec-github-abc123XYZ",
        "GITLAB_WEBHOOK_SECRET": "gl-hook-token-987",
        "GITHUB_TOKEN": "plain-token-without-a-known-shape",
        "REDIS_URL": "redis://:redispass@127.0.0.1:6379/0",
    }
)


#: Loggers whose level configure_logging changes (quietened libraries).
QUIETENED = ("urllib3", "kubernetes.client.rest")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured as a Mergeway process does, into a buffer; everything it changed (root
    handlers and level, filters added to pytest's own handlers, quietened libraries) is put back,
    or later tests that capture DEBUG logs would silently capture nothing."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_filters = {handler: list(handler.filters) for handler in saved_handlers}
    saved_levels = {name: logging.getLogger(name).level for name in QUIETENED}
    buffer = io.StringIO()
    configure_logging(SETTINGS, stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        handler.filters[:] = saved_filters[handler]
        root.addHandler(handler)
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


def records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_the_context(stream: io.StringIO) -> None:
    log = logging.getLogger("mergeway.test")
    with log_context(delivery_id="d-1", repo="o/r", pr=7):
        with log_context(job_id="j-1"):
            log.info("queued %s job", "preview", extra={"job": "preview"})
        log.info("outside the job")
    log.info("no context")
    first, second, third = records(stream)
    assert first["msg"] == "queued preview job"
    assert first["level"] == "INFO" and first["logger"] == "mergeway.test"
    assert (first["delivery_id"], first["repo"], first["pr"], first["job_id"], first["job"]) == (
        "d-1",
        "o/r",
        7,
        "j-1",
        "preview",
    )
    assert "job_id" not in second and second["delivery_id"] == "d-1"
    assert "delivery_id" not in third


def test_configured_secrets_never_reach_the_log(stream: io.StringIO) -> None:
    log = logging.getLogger("some.library")
    log.warning("secret in message whsec-github-abc123XYZ and %s", "gl-hook-token-987")
    log.warning("token in extra", extra={"headers": {"X-Token": "plain-token-without-a-known-shape"}})
    try:
        raise RuntimeError("boom with whsec-github-abc123XYZ")
    except RuntimeError:
        log.exception("failed calling https://x-access-token:ghs_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r")
    log.error("redis at redis://:redispass@127.0.0.1:6379/0 down; password was redispass")
    text = stream.getvalue()
    for secret in (
        "whsec-github-abc123XYZ",
        "gl-hook-token-987",
        "plain-token-without-a-known-shape",
        "ghs_abcdefghijklmnopqrstuvwxyz0123",
        "redispass",
        "x-access-token:",
    ):
        assert secret not in text
    out = records(stream)
    assert out[2]["msg"] == "failed calling https://***@github.com/o/r"
    assert "RuntimeError: boom with ***" in out[2]["exc"]
    assert out[3]["msg"] == "redis at redis://***@127.0.0.1:6379/0 down; password was ***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clone https://oauth2:glpat-abcdefghij0123456789@gitlab.com/g/p.git", "clone https://***@gitlab.com/g/p.git"),
        ("Authorization: Bearer abc.def.ghi", "Authorization: Bearer ***"),
        ("header X-Gitlab-Token: hunter2", "header X-Gitlab-Token: ***"),
        ('{"token": "abc123"}', '{"token": "***"}'),
        ("found ghp_0123456789abcdefghijABCDEFGHIJ here", "found *** here"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop ok", "*** ok"),
        ("nothing to hide: pr=7 repo=o/r", "nothing to hide: pr=7 repo=o/r"),
    ],
)
def test_redact_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_registered_secrets_are_redacted_anywhere() -> None:
    register_secret("s3cr3t-value-registered-later")
    assert redact("x s3cr3t-value-registered-later y") == "x *** y"
    register_secret("")  # ignored, does not redact everything
    assert redact("abc") == "abc"


def test_extra_fields_may_repeat_context_fields(stream: io.StringIO) -> None:
    # logging refuses extras that collide with record attributes; context must not cause that.
    with log_context(repo="from-context", pr=1):
        logging.getLogger("mergeway.test").info("x", extra={"repo": "from-extra"})
    [record] = records(stream)
    assert (record["repo"], record["pr"]) == ("from-extra", 1)
