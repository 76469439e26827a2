"""A bound on the size of a request's head (request line and headers) for uvicorn.

uvicorn's httptools protocol has no such bound (its h11 one refuses a head over 16 KiB), and
httptools gathers a header by concatenating what arrives: an 80 MB header took the event loop
six seconds, time every other request waits. `BoundedHttpTools` answers a head over
`MAX_HEAD_BYTES` with 431 in the error envelope, then drops what else arrives (unparsed) until
the client closes or `LINGER_SECONDS` pass: closing at once, with the rest of the head unread,
would reset the connection and the client could lose the answer.
"""

from __future__ import annotations

import json
import secrets

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from soku.errors import envelope

# 64 KiB, four times what uvicorn's h11 protocol takes. What is counted is every read that lies
# wholly inside one head, so a head is refused once it passes this by at most one read (two
# behind a pipelined request: the read it began in, where that request ended, is not counted).
MAX_HEAD_BYTES = 64 * 1024
LINGER_SECONDS = 2.0


def head_too_large() -> bytes:
    """The whole 431 answer, as bytes to write before the connection closes."""
    message = f"The request line and headers are larger than {MAX_HEAD_BYTES} bytes."
    request_id = "req_" + secrets.token_hex(12)
    body = envelope(431, "headers_too_large", message, request_id, {"maxBytes": MAX_HEAD_BYTES})
    raw = json.dumps(body).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(raw)}\r\n"
        f"x-request-id: {request_id}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + raw


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head over `MAX_HEAD_BYTES`."""

    _in_head = True  # between a message's end (or the connection's start) and its headers' end
    _head_bytes = 0
    _heads = 0  # heads completed on this connection
    _refused = False
    _refusal_waits = False  # refused while an earlier request's answer is still to be written

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        in_head, heads = self._in_head, self._heads
        super().data_received(data)
        if not (in_head and self._in_head and heads == self._heads) or self.parser is None:
            return  # this read ended or began outside one head: not all of it was a head
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            # an earlier request on this connection is still being answered, and HTTP/1.1
            # answers in order: the 431 follows that answer (`on_response_complete`)
            self._refusal_waits = True
            self.flow.pause_reading()
            return
        self._answer_refusal()

    def _answer_refusal(self) -> None:
        self._refusal_waits = False
        self.flow.resume_reading()  # what else arrives is dropped until the close
        self.transport.write(head_too_large())
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def on_response_complete(self) -> None:
        if self._refusal_waits and not self.transport.is_closing():
            self.server_state.total_requests += 1
            self._answer_refusal()
            return
        super().on_response_complete()

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._heads += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()
