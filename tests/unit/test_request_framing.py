"""Where a buffered request ends (webhook_service/framing.py), fed byte by byte as a slow client sends it.

The web worker hands a request to a thread only when this says it is whole, so a wrong
"complete" would let a thread block on the client again, and a wrong "incomplete" would answer a
real delivery 408. Each case is fed in every split a client could produce, one byte at a time.
"""

from __future__ import annotations

import pytest

from webhook_service.framing import RequestFraming, Verdict

HEAD = b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def verdicts(request: bytes, *, max_head: int = 8192, max_body: int = 1024) -> list[Verdict]:
    """The verdict after each byte of ``request`` arrives."""
    framing = RequestFraming(max_head, max_body)
    return [framing.feed(request[: n + 1]) for n in range(len(request))]


def whole_at_last_byte(request: bytes, **limits: int) -> bool:
    seen = verdicts(request, **limits)
    return seen[-1] is Verdict.COMPLETE and all(v is Verdict.INCOMPLETE for v in seen[:-1])


def test_a_body_of_declared_length_is_whole_at_its_last_byte() -> None:
    assert whole_at_last_byte(HEAD + b'Content-Length: 7\r\n\r\n{"a":1}')


def test_no_body_is_whole_at_the_empty_line() -> None:
    assert whole_at_last_byte(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert whole_at_last_byte(HEAD + b"Content-Length: 0\r\n\r\n")


def test_a_chunked_body_is_whole_after_its_last_chunk_and_trailers() -> None:
    body = b'4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    assert whole_at_last_byte(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    trailers = b'4\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    assert whole_at_last_byte(HEAD + b"Transfer-Encoding: Chunked\r\n\r\n" + trailers)


def test_chunk_data_that_looks_like_framing_is_data() -> None:
    body = b"a\r\n0\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n"  # a 10-byte chunk holding "0\r\n\r\n0\r\n\r\n"
    assert whole_at_last_byte(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body)


def test_a_pipelined_request_after_a_whole_one_does_not_matter() -> None:
    framing = RequestFraming(8192, 1024)
    first = HEAD + b"Content-Length: 2\r\n\r\n{}"
    assert framing.feed(first + b"GET /healthz HT") is Verdict.COMPLETE


def test_expect_continue_is_noticed_when_the_head_is_in() -> None:
    framing = RequestFraming(8192, 1024)
    assert framing.feed(HEAD + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n") is Verdict.INCOMPLETE
    assert framing.expects_continue and framing.needs_body


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 2000\r\n",  # declared over the limit: refused (413) before any of it is read
        b"Content-Length: 2\r\nContent-Length: 3\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 0x10\r\n",
        b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",  # smuggling: gunicorn answers 400
        b"Transfer-Encoding: gzip\r\n",
    ],
)
def test_what_cannot_or_need_not_be_buffered_is_handed_over_at_the_empty_line(headers: bytes) -> None:
    seen = verdicts(HEAD + headers + b"\r\n")
    assert seen[-1] is Verdict.HAND_OVER
    assert all(v is Verdict.INCOMPLETE for v in seen[:-1])


@pytest.mark.parametrize("size_line", [b"0x4\r\n", b"-4\r\n", b"zz\r\n", b"1_0\r\n", b"f" * 2000])
def test_a_malformed_chunk_size_is_handed_over(size_line: bytes) -> None:
    framing = RequestFraming(8192, 1024)
    assert framing.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + size_line) is Verdict.HAND_OVER


def test_a_chunked_body_past_the_limit_is_handed_over_once_the_limit_is_buffered() -> None:
    """The application reads limit + 1 bytes and refuses (413) from the buffer, never from the socket."""
    head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    framing = RequestFraming(8192, 1024)
    assert framing.feed(head + b"400\r\n" + b"x" * 1024 + b"\r\n") is Verdict.INCOMPLETE
    assert framing.feed(head + b"400\r\n" + b"x" * 1024 + b"\r\n1\r\n") is Verdict.INCOMPLETE
    assert framing.feed(head + b"400\r\n" + b"x" * 1024 + b"\r\n1\r\nx") is Verdict.HAND_OVER


def test_headers_without_an_end_are_too_large_past_the_limit() -> None:
    seen = verdicts(HEAD + b"X-Padding: " + b"a" * 200, max_head=100)
    assert Verdict.HEAD_TOO_LARGE in seen
    assert all(v is Verdict.INCOMPLETE for v in seen[: seen.index(Verdict.HEAD_TOO_LARGE)])
    assert seen.index(Verdict.HEAD_TOO_LARGE) == 100  # the 101st byte
