"""Where an HTTP/1.1 request ends, found incrementally as its bytes arrive.

The web worker (:mod:`webhook_service.buffered_worker`) reads each request into memory before any
thread sees it, so that a client sending slowly holds a few bytes of buffer instead of a thread.
To do that it must know when a request is whole: the header section ends at the first empty line,
and the body is ``Content-Length`` bytes or a chunked body up to its last chunk and trailers.

This module only *frames*: it does not validate what gunicorn's parser validates (methods, header
syntax, the CRLF after each chunk). Anything it cannot frame is handed over as is (``Verdict.HAND_OVER``),
and gunicorn's parser refuses it from the bytes already buffered, as it always did. Each call
scans only the bytes that arrived since the last one, so a 25 MB body read in 64 KiB pieces is
scanned once, not 400 times.
"""

from __future__ import annotations

import enum
import re

_HEAD_END = b"\r\n\r\n"
#: A chunk-size line longer than this (hex digits plus extensions) is not a real client.
_MAX_SIZE_LINE = 1024
_LENGTH = re.compile(rb"[0-9]{1,20}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Verdict(enum.Enum):
    """What the worker does with the bytes buffered so far."""

    #: The request is not whole yet: keep reading (until the deadline).
    INCOMPLETE = "incomplete"
    #: The whole request (and possibly the start of a pipelined next one) is buffered.
    COMPLETE = "complete"
    #: Not worth buffering further: a declared body over the limit, a chunked body past it, or
    #: framing this module does not understand. The application (413) or gunicorn's parser (400)
    #: answers from what is buffered, and the connection is closed afterwards.
    HAND_OVER = "hand over"
    #: No end of the header section within the limit on headers: refused with 431.
    HEAD_TOO_LARGE = "head too large"


class RequestFraming:
    """Feed it the connection's whole buffer after each read; it remembers how far it got.

    ``max_head`` bounds the request line plus headers, ``max_body`` the (decoded) body.
    """

    def __init__(self, max_head: int, max_body: int) -> None:
        self.max_head = max_head
        self.max_body = max_body
        #: Offset just after the header section's empty line, once found.
        self.head_end: int | None = None
        #: The client sent ``Expect: 100-continue`` and waits for a go-ahead before its body.
        self.expects_continue = False
        self._searched = 0  # the empty line cannot start before this offset
        self._length: int | None = None  # Content-Length, for a body of declared length
        self._chunked = False
        self._pos = 0  # chunked: offset of the next size line, chunk data or trailer line
        self._in_data = 0  # chunked: bytes of the current chunk's data and CRLF still to come
        self._decoded = 0  # chunked: body bytes announced by the chunks framed so far
        self._trailer: int | None = None  # chunked: bytes of trailer fields, once the last chunk is in

    @property
    def needs_body(self) -> bool:
        """The header section is in and a body is still to come."""
        return self.head_end is not None and (self._chunked or bool(self._length))

    def feed(self, buffer: bytes | bytearray) -> Verdict:
        """The verdict on ``buffer``: every byte received on this request so far (and nothing else)."""
        if self.head_end is None:
            verdict = self._find_head(buffer)
            if verdict is not None:
                return verdict
        assert self.head_end is not None
        if self._chunked:
            return self._frame_chunks(buffer)
        if self._length is not None and len(buffer) - self.head_end < self._length:
            return Verdict.INCOMPLETE
        return Verdict.COMPLETE

    def _find_head(self, buffer: bytes | bytearray) -> Verdict | None:
        end = buffer.find(_HEAD_END, max(self._searched - 3, 0), self.max_head + len(_HEAD_END))
        if end < 0:
            self._searched = len(buffer)
            return Verdict.HEAD_TOO_LARGE if len(buffer) > self.max_head else Verdict.INCOMPLETE
        self.head_end = end + len(_HEAD_END)
        return self._read_head(bytes(buffer[:end]))

    def _read_head(self, head: bytes) -> Verdict | None:
        """Read the headers that frame the body; ``HAND_OVER`` when they are contradictory or too large."""
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in head.split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                continue  # malformed: gunicorn's parser says so (400)
            name = name.strip().lower()
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",")]
            elif name == b"expect":
                self.expects_continue = value.strip().lower() == b"100-continue"
        if codings:
            if lengths or codings[-1] != b"chunked":
                return Verdict.HAND_OVER  # request smuggling territory: gunicorn refuses it
            self._chunked = True
            self._pos = self.head_end or 0
            return None
        if not lengths:
            self._length = 0
            return None
        if len(set(lengths)) != 1 or not _LENGTH.fullmatch(lengths[0]):
            return Verdict.HAND_OVER
        self._length = int(lengths[0])
        if self._length > self.max_body:
            return Verdict.HAND_OVER  # refused (413) from the declared length, before any byte of it
        return None

    def _frame_chunks(self, buffer: bytes | bytearray) -> Verdict:
        size = len(buffer)
        while True:
            if self._in_data:
                available = size - self._pos
                if available < self._in_data:
                    # Count the part of this chunk that is already here: past the limit, hand over now.
                    if self._decoded - self._in_data + 2 + available > self.max_body:
                        return Verdict.HAND_OVER
                    return Verdict.INCOMPLETE
                self._pos += self._in_data
                self._in_data = 0
            line_end = buffer.find(b"\r\n", self._pos, self._pos + _MAX_SIZE_LINE + 2)
            if line_end < 0:
                return Verdict.HAND_OVER if size - self._pos > _MAX_SIZE_LINE else Verdict.INCOMPLETE
            line = bytes(buffer[self._pos : line_end])
            self._pos = line_end + 2
            if self._trailer is not None:
                if not line:
                    return Verdict.COMPLETE
                self._trailer += len(line) + 2
                if self._trailer > self.max_head:
                    return Verdict.HAND_OVER
                continue
            digits = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(digits):
                return Verdict.HAND_OVER
            chunk = int(digits, 16)
            if chunk == 0:
                self._trailer = 0
                continue
            self._decoded += chunk
            self._in_data = chunk + 2  # the data and its CRLF
