"""The orchestrator client: ask which schema version to run, then report how it went."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx
from pydantic import Field

from shared.events import ExecutionEvent, StepResult
from shared.settings import DEFAULT_KAFKA, BaseServiceSettings
from shared.topics import EXECUTIONS

from ._assign import AssignmentAPI
from ._errors import EmitError
from ._execution import Execution, build_execution_event
from ._models import Assignment, ClientStats, SchemaFallback
from ._sink import EventSink, KafkaEventSink

log = logging.getLogger("shared.client")

__all__ = ["DEFAULT_ASSIGNMENT_URL", "AbflowClient", "ClientSettings"]

DEFAULT_ASSIGNMENT_URL = "http://127.0.0.1:18001"


class ClientSettings(BaseServiceSettings):
    """Client settings from the environment: ``ASSIGNMENT_URL`` (the assignment service
    or the gateway), ``CLIENT_API_KEY``, ``KAFKA_BOOTSTRAP_SERVERS``, ``TOPIC_PREFIX``,
    ``ASSIGN_TIMEOUT``, ``ASSIGN_RETRIES``, ``ASSIGN_CACHE_TTL``."""

    assignment_url: str = Field(default=DEFAULT_ASSIGNMENT_URL)
    client_api_key: str = Field(
        default="", description="API key with scope client (or admin); sent as Bearer."
    )
    assign_timeout: float = Field(default=0.5, gt=0, description="Seconds per attempt.")
    assign_retries: int = Field(default=1, ge=0)
    assign_cache_ttl: float = Field(default=10.0, ge=0)


class AbflowClient:
    """Async client for orchestrators.

    ``assign`` asks the assignment service (``POST /api/v1/assign``) which version of a
    schema to run for a unit. Each attempt is bounded by ``timeout`` seconds; transport
    errors, timeouts, malformed answers and HTTP 408/425/429/5xx are retried ``retries``
    times after ``retry_backoff`` seconds; a 4xx answer raises
    :class:`AssignmentRejectedError`. Answers for a unit id are cached for ``cache_ttl``
    seconds (LRU, ``cache_size`` entries); requests without a unit id are never cached
    (the service draws them at random). So ``assign`` returns within
    ``(retries + 1) * timeout + retries * retry_backoff`` seconds.

    When every attempt fails, ``assign`` answers the schema's **fallback**, the base
    version, with ``reason="fallback"`` and ``fallback=True``: the one configured for
    that schema string (``fallbacks={"checkout": SchemaFallback(...)}`` or
    :meth:`set_fallback`), else the base version remembered from this client's last
    successful base-version answer for it (``learn_fallbacks``); with neither it raises
    :class:`AssignmentUnavailableError`. For ``fallback_cooldown`` seconds after such a
    failure, ``assign`` answers the fallback at once without trying the network.

    ``emit_execution`` sends an :class:`~shared.events.ExecutionEvent` built from the
    assignment (schema id and version, variant, experiment, reason) to the executions
    topic (``topic_prefix`` + ``abflow.executions.v1``) through an idempotent producer
    (``acks=all``, ``enable_idempotence=True``) keyed by the execution id, so a retried
    emission of the same execution id is counted once. :meth:`execution` is a context
    manager that times a block and emits its outcome.

    ``api_key`` (default: the environment variable ``CLIENT_API_KEY``) is sent as
    ``Authorization: Bearer <key>``; the assignment service needs a key with scope
    ``client`` (or ``admin``). A missing or refused key is a 401/403, raised as
    :class:`AssignmentRejectedError` (not hidden behind the fallback).

    Use one client per process and event loop, as ``async with AbflowClient(...) as c``
    or call :meth:`close`. ``sink`` and ``transport`` replace Kafka and HTTP in tests.
    """

    def __init__(
        self,
        assignment_url: str = DEFAULT_ASSIGNMENT_URL,
        *,
        kafka_bootstrap: str = DEFAULT_KAFKA,
        topic_prefix: str = "",
        timeout: float = 0.5,
        retries: int = 1,
        retry_backoff: float = 0.05,
        cache_ttl: float = 10.0,
        cache_size: int = 10_000,
        fallback_cooldown: float = 2.0,
        fallbacks: Mapping[str, SchemaFallback] | None = None,
        learn_fallbacks: bool = True,
        strict_emit: bool = False,
        sink: EventSink | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        producer_options: Mapping[str, Any] | None = None,
        api_key: str | None = None,
    ) -> None:
        self.stats = ClientStats()
        key = api_key if api_key is not None else os.environ.get("CLIENT_API_KEY", "")
        all_headers = dict(headers or {})
        if key and not any(k.lower() == "authorization" for k in all_headers):
            all_headers["Authorization"] = f"Bearer {key}"
        self.topic = EXECUTIONS.full_name(topic_prefix)
        self.strict_emit = strict_emit
        self._assign = AssignmentAPI(
            assignment_url,
            timeout=timeout,
            retries=retries,
            retry_backoff=retry_backoff,
            cache_ttl=cache_ttl,
            cache_size=cache_size,
            fallback_cooldown=fallback_cooldown,
            fallbacks=fallbacks,
            learn_fallbacks=learn_fallbacks,
            stats=self.stats,
            transport=transport,
            headers=all_headers,
        )
        self.sink: EventSink = sink or KafkaEventSink(kafka_bootstrap, self.topic, producer_options)

    @classmethod
    def from_settings(cls, settings: ClientSettings | None = None, **kwargs: Any) -> AbflowClient:
        """A client configured from :class:`ClientSettings` (the environment by default);
        ``kwargs`` are passed on and win over the settings."""
        s = settings or ClientSettings()
        options: dict[str, Any] = {
            "kafka_bootstrap": s.kafka_bootstrap_servers,
            "topic_prefix": s.topic_prefix,
            "timeout": s.assign_timeout,
            "retries": s.assign_retries,
            "cache_ttl": s.assign_cache_ttl,
        }
        if s.client_api_key:
            options["api_key"] = s.client_api_key
        options.update(kwargs)
        return cls(s.assignment_url, **options)

    @property
    def assignment_url(self) -> str:
        return self._assign.base_url

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AbflowClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Deliver pending events, then close the producer and the HTTP connections."""
        try:
            await self.sink.close()
        finally:
            await self._assign.close()

    async def flush(self) -> None:
        """Wait until every event emitted with ``wait=False`` is delivered."""
        await self.sink.flush()

    # ------------------------------------------------------------------ assignment

    def set_fallback(self, schema: str, fallback: SchemaFallback) -> None:
        """Answer ``fallback`` for ``schema`` (the string passed to :meth:`assign`) when
        the assignment service cannot be reached."""
        self._assign.set_fallback(schema, fallback)

    def fallback_for(self, schema: str) -> SchemaFallback | None:
        """The fallback :meth:`assign` would answer for ``schema`` now, if any."""
        return self._assign.fallback_for(schema)

    def clear_cache(self) -> None:
        self._assign.clear_cache()

    async def assign(
        self,
        schema: str,
        unit_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Assignment:
        """Which version of ``schema`` (key or id) to run for ``unit_id``.

        Raises :class:`AssignmentRejectedError` on a 4xx answer (e.g. unknown schema) and
        :class:`AssignmentUnavailableError` when the service is unreachable and no
        fallback is known.
        """
        return await self._assign.assign(schema, unit_id or None, attributes)

    # ------------------------------------------------------------------ emission

    async def emit(self, event: ExecutionEvent, *, wait: bool = True) -> None:
        """Send a ready-made event. Raises :class:`EmitError` when it cannot be delivered
        (with ``wait=False``, only when it cannot even be enqueued)."""
        try:
            await self.sink.send(event, wait=wait)
        except EmitError:
            self.stats.emit_failures += 1
            raise
        self.stats.emitted += 1

    async def emit_execution(
        self,
        assignment: Assignment,
        *,
        success: bool,
        duration_ms: float,
        execution_id: str | None = None,
        unit_id: str | None = None,
        risk_score: float | None = None,
        steps: Iterable[StepResult] = (),
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        wait: bool = True,
    ) -> ExecutionEvent:
        """Emit the outcome of one finished execution of ``assignment`` and return the
        event (see :func:`build_execution_event` for the defaults). Pass your
        orchestrator's run id as ``execution_id`` to make re-emissions idempotent."""
        event = build_execution_event(
            assignment,
            success=success,
            duration_ms=duration_ms,
            execution_id=execution_id,
            unit_id=unit_id,
            risk_score=risk_score,
            steps=steps,
            started_at=started_at,
            completed_at=completed_at,
        )
        await self.emit(event, wait=wait)
        return event

    def execution(
        self,
        assignment: Assignment,
        unit_id: str | None = None,
        *,
        execution_id: str | None = None,
    ) -> Execution:
        """``async with client.execution(assignment) as ex:`` times the block and emits
        its event on exit (see :class:`Execution`)."""
        return Execution(
            assignment,
            emit=self.emit,
            unit_id=unit_id,
            execution_id=execution_id,
            strict_emit=self.strict_emit,
        )
