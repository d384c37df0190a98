"""The client's HTTP POST: aiohttp on the network, httpx when a transport is given.

The assign call is the client's hot path. On the 2-vCPU development VM an httpx
request costs 2-7 ms of client CPU (its connection pool re-examines every pooled
connection on each request), an aiohttp request 0.3-0.55 ms (``bench/client_http.py``).
So the client talks to the service through aiohttp. An ``httpx.AsyncBaseTransport``
passed to the client (an ``httpx.MockTransport`` or ``httpx.ASGITransport`` in tests, a
proxy set-up) is still honoured: the request then goes through httpx with it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

import aiohttp
import httpx
from yarl import URL

__all__ = ["Answer", "Poster", "TransportFailure", "describe", "make_poster"]

MAX_CONNECTIONS = 200


class TransportFailure(Exception):
    """The request did not get an answer (refused, reset, closed, protocol error)."""


def describe(exc: BaseException) -> str:
    """``Type: message``, or ``Type`` alone when the message is empty (a bare timeout)."""
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


class Answer(NamedTuple):
    """A response: its status and body."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Poster(Protocol):
    async def post(self, path: str, body: bytes) -> Answer: ...

    async def close(self) -> None: ...


def make_poster(
    base_url: str, headers: Mapping[str, str], transport: httpx.AsyncBaseTransport | None
) -> Poster:
    """aiohttp to ``base_url``, or httpx through ``transport`` when one is given."""
    all_headers = {"accept": "application/json", "content-type": "application/json", **headers}
    if transport is not None:
        return _HttpxPoster(base_url, all_headers, transport)
    return _AiohttpPoster(base_url, all_headers)


class _AiohttpPoster:
    """One aiohttp session, opened on first use (inside the caller's event loop)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = headers
        self._urls: dict[str, URL] = {}
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                # the caller bounds each attempt (asyncio.timeout): no second clock here
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post(self, path: str, body: bytes) -> Answer:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self._base_url + path)
        try:
            async with self._open().post(url, data=body) as resp:
                return Answer(resp.status, await resp.read())
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportFailure(describe(exc)) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _HttpxPoster:
    def __init__(
        self, base_url: str, headers: dict[str, str], transport: httpx.AsyncBaseTransport
    ) -> None:
        _remember_missing_sniffio()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            headers=headers,
            timeout=None,  # the caller bounds each attempt
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
        )

    async def post(self, path: str, body: bytes) -> Answer:
        try:
            resp = await self._http.post(path, content=body)
        except httpx.TransportError as exc:
            raise TransportFailure(describe(exc)) from exc
        return Answer(resp.status_code, resp.content)

    async def close(self) -> None:
        await self._http.aclose()


def _remember_missing_sniffio() -> None:
    """httpcore 1.0 runs ``import sniffio`` on every request; when sniffio is not
    installed, each failed import searches ``sys.path`` again, which costs about a third
    of the client's CPU per request. Record the absence once so that the import fails
    at once, exactly as before. A no-op when sniffio is installed."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
