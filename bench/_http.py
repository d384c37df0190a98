"""Raw HTTP/1.1 response framing for the benchmarks' load generators.

The load generators (``bench/assignment.py``, ``bench/sustained_load.py``) speak HTTP/1.1
over keep-alive connections from an :class:`asyncio.Protocol`; ``data_received`` gets
arbitrary chunks, and :func:`next_response` splits the complete answers off the buffer::

    buf = self.buf + data if self.buf else data
    while (response := next_response(buf)) is not None:
        status, buf = response
        ...
    self.buf = buf

Only ``Content-Length`` framing is understood (what the services and uvicorn send to
these requests); no chunked transfer encoding.
"""

from __future__ import annotations


def next_response(buf: bytes) -> tuple[str, bytes] | None:
    """``(status code, the rest of buf)`` when ``buf`` starts with a complete response
    (status line, headers, ``Content-Length`` bytes of body), else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    headers = buf[: end + 2].lower()  # each header line ends with CRLF, the last one too
    i = headers.find(b"content-length:")
    length = int(headers[i + 15 : headers.find(b"\r\n", i)]) if i >= 0 else 0
    total = end + 4 + length
    if len(buf) < total:
        return None
    return buf[9:12].decode(), buf[total:]
