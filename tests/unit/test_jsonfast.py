"""The hot-path JSON helpers read and write the same with and without orjson.

orjson is optional (``mergeway[speedups]``): a deployment without it must accept, queue and log
exactly what one with it does, and a value orjson cannot handle must not lose a delivery or a log line.
"""

from __future__ import annotations

import io
import json
import logging
import math
from typing import Any

import pytest

from mergeway import jsonfast, logs

SAMPLES: list[Any] = [
    {"a": [1, 2.5, None, True], "b": {"c": "d"}},
    {"text": "é ü \u2028 \U0001f600", "big": 2**70},
    [1, "two", {"three": 3}],
]


@pytest.fixture(params=["orjson", "json module"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "orjson":
        pytest.importorskip("orjson")
    else:
        monkeypatch.setattr(jsonfast, "orjson", None)
    return str(request.param)


@pytest.mark.parametrize("value", SAMPLES)
def test_dumps_then_loads_gives_the_value_back(codec: str, value: Any) -> None:
    text = jsonfast.dumps(value)
    assert json.loads(text) == value
    assert jsonfast.loads(text.encode()) == value


def test_what_orjson_refuses_the_json_module_still_parses(codec: str) -> None:
    assert math.isnan(jsonfast.loads(b'{"n": NaN}')["n"])  # orjson refuses NaN
    assert jsonfast.loads(b'"\\ud800"') == "\ud800"  # and a lone surrogate
    with pytest.raises(ValueError):
        jsonfast.loads(b"{not json")


def test_a_log_line_with_an_integer_past_64_bits_is_still_written(codec: str) -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.jsonfast")
    handler = logs.make_handler(stream)
    logger.addHandler(handler)
    try:
        logger.warning("odd payload", extra={"number": 2**70, "when": object()})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["msg"] == "odd payload" and line["number"] == 2**70 and line["when"].startswith("<object")


@pytest.mark.parametrize(
    "value",
    [
        *SAMPLES,
        {"z": 1, "a": {"y": '\x00\x1f\x7f\n\t"\\/', "b": None}},
        {"reason": "déjà vu", "repo": "acme/ünïcode"},
        {"error": "", "pr": 2**70},
    ],
)
def test_answers_are_the_bytes_flask_jsonify_writes(codec: str, value: Any) -> None:
    """Compact, sorted keys, ``\\u`` escapes for anything beyond printable ASCII, one newline."""
    expected = (json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True) + "\n").encode()
    assert jsonfast.dumps_sorted_ascii(value) == expected
