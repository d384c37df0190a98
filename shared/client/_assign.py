"""``POST /api/v1/assign`` with a per-attempt timeout, retries, a TTL cache and a
fallback to the base version when the service cannot be reached."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from ._cache import TTLCache
from ._errors import AssignmentRejectedError, AssignmentUnavailableError
from ._http import Answer, Poster, TransportFailure, describe, make_poster
from ._models import Assignment, ClientStats, SchemaFallback

log = logging.getLogger("shared.client")

__all__ = ["ASSIGN_PATH", "AssignmentAPI"]

ASSIGN_PATH = "/api/v1/assign"
_WARN_INTERVAL_S = 10.0
"""At most one warning per this many seconds while the service is unavailable."""
_RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class _Unavailable(Exception):
    """One attempt failed in a way that another attempt (or the fallback) may fix."""


class AssignmentAPI:
    """The assignment half of :class:`~shared.client.AbflowClient` (see its docs)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retries: int,
        retry_backoff: float,
        cache_ttl: float,
        cache_size: int,
        fallback_cooldown: float,
        fallbacks: Mapping[str, SchemaFallback] | None,
        learn_fallbacks: bool,
        stats: ClientStats,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.fallback_cooldown = fallback_cooldown
        self.learn_fallbacks = learn_fallbacks
        self.stats = stats
        self._clock = clock
        self._cache: TTLCache[Assignment] = TTLCache(cache_ttl, cache_size, clock)
        self._configured: dict[str, SchemaFallback] = dict(fallbacks or {})
        self._learned: dict[str, SchemaFallback] = {}
        self._unavailable_until = 0.0
        self._down = False
        self._last_warning = -1e9
        self._transport = transport
        self._headers = dict(headers or {})
        self._http: Poster | None = None

    # ------------------------------------------------------------------ lifecycle

    def _client(self) -> Poster:
        if self._http is None:
            self._http = make_poster(self.base_url, self._headers, self._transport)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------------ fallbacks

    def set_fallback(self, schema: str, fallback: SchemaFallback) -> None:
        self._configured[schema] = fallback

    def fallback_for(self, schema: str) -> SchemaFallback | None:
        """The configured fallback of ``schema``, else the one remembered from the last
        base-version answer, else None."""
        return self._configured.get(schema) or self._learned.get(schema)

    def clear_cache(self) -> None:
        self._cache.clear()

    # ------------------------------------------------------------------ assign

    async def assign(
        self, schema: str, unit_id: str | None, attributes: Mapping[str, Any] | None
    ) -> Assignment:
        key = _cache_key(schema, unit_id, attributes) if unit_id else None
        if key is not None:
            hit = self._cache.get(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit.model_copy(update={"cached": True})
        if self._clock() < self._unavailable_until:
            return self._fallback(schema, unit_id, "marked unavailable", loud=False)
        body = {"schema": schema, "unit_id": unit_id, "attributes": dict(attributes or {})}
        reason = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.assign_retries += 1
                if self.retry_backoff > 0:
                    await asyncio.sleep(self.retry_backoff)
            try:
                answer = await self._attempt(body, unit_id)
            except _Unavailable as exc:
                reason = str(exc)
                log.debug("assign attempt %d for %r failed: %s", attempt + 1, schema, reason)
                continue
            self._unavailable_until = 0.0
            if self._down:
                self._down = False
                log.info("assignment service at %s answers again", self.base_url)
            if key is not None:
                self._cache.put(key, answer)
            if self.learn_fallbacks and answer.is_base:
                self._learned[schema] = SchemaFallback(
                    schema_id=answer.schema_id,
                    schema_version=answer.schema_version,
                    definition=answer.config,
                )
            return answer
        if self.fallback_cooldown > 0:
            self._unavailable_until = self._clock() + self.fallback_cooldown
        self._down = True
        now = self._clock()
        loud = now - self._last_warning >= _WARN_INTERVAL_S
        if loud:
            self._last_warning = now
        return self._fallback(schema, unit_id, reason, loud=loud)

    async def _attempt(self, body: dict[str, Any], unit_id: str | None) -> Assignment:
        self.stats.assign_requests += 1
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self._client().post(ASSIGN_PATH, json.dumps(body).encode())
        except TransportFailure as exc:
            raise _Unavailable(str(exc)) from exc
        except TimeoutError as exc:
            raise _Unavailable(describe(exc)) from exc
        if resp.status in _RETRIABLE_STATUS or resp.status >= 500:
            raise _Unavailable(f"HTTP {resp.status}")
        if resp.status >= 400:
            hint = (
                " (set CLIENT_API_KEY or api_key= to a key with scope client)"
                if resp.status in (401, 403)
                else ""
            )
            raise AssignmentRejectedError(
                f"assignment service rejected the request: HTTP {resp.status} "
                f"{resp.text[:300]}{hint}",
                resp.status,
                _json_or_text(resp),
            )
        try:
            data = resp.json()
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return Assignment.model_validate({**data, "unit_id": unit_id})
        except (ValueError, ValidationError) as exc:
            raise _Unavailable(f"malformed answer: {exc}") from exc

    def _fallback(self, schema: str, unit_id: str | None, why: str, *, loud: bool) -> Assignment:
        fb = self.fallback_for(schema)
        if fb is None:
            raise AssignmentUnavailableError(
                f"assignment service at {self.base_url} unavailable ({why}) and no fallback "
                f"is known for schema {schema!r}: configure one with set_fallback()"
            )
        self.stats.fallbacks += 1
        log.log(
            logging.WARNING if loud else logging.DEBUG,
            "assign %r: assignment service unavailable (%s); serving the base version",
            schema,
            why,
        )
        return fb.assignment(unit_id)


def _cache_key(
    schema: str, unit_id: str, attributes: Mapping[str, Any] | None
) -> tuple[str, str, str]:
    attrs = json.dumps(attributes, sort_keys=True, default=str) if attributes else ""
    return (schema, unit_id, attrs)


def _json_or_text(resp: Answer) -> object:
    try:
        return resp.json()
    except ValueError:
        return resp.text
