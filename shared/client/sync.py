"""A blocking facade over :class:`~shared.client.AbflowClient` for orchestrators that
are not asyncio programs: the async client runs on an event loop in a daemon thread.

    with SyncAbflowClient("http://127.0.0.1:18080", kafka_bootstrap="127.0.0.1:19092") as c:
        a = c.assign("checkout-flow", unit_id="customer-42")
        with c.execution(a) as ex:
            run_workflow(a.config)

Thread-safe: calls from several threads are serialised onto the one loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from shared.events import ExecutionEvent

from ._execution import Execution
from ._models import Assignment
from .client import AbflowClient

__all__ = ["SyncAbflowClient"]

T = TypeVar("T")


class SyncAbflowClient:
    """Same arguments and behaviour as :class:`~shared.client.AbflowClient`, blocking."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="abflow-client", daemon=True
        )
        self._thread.start()
        self._closed = False
        self.client: AbflowClient = self._run(_construct(args, kwargs))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("SyncAbflowClient is closed")
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result()

    def assign(
        self, schema: str, unit_id: str | None = None, attributes: dict[str, Any] | None = None
    ) -> Assignment:
        return self._run(self.client.assign(schema, unit_id, attributes))

    def emit_execution(self, assignment: Assignment, **kwargs: Any) -> ExecutionEvent:
        """See :meth:`AbflowClient.emit_execution` (keyword arguments only)."""
        return self._run(self.client.emit_execution(assignment, **kwargs))

    @contextmanager
    def execution(
        self, assignment: Assignment, unit_id: str | None = None, *, execution_id: str | None = None
    ) -> Iterator[Execution]:
        """Blocking twin of :meth:`AbflowClient.execution`."""
        ex = self.client.execution(assignment, unit_id, execution_id=execution_id)
        self._run(ex.__aenter__())
        try:
            yield ex
        except BaseException as exc:
            self._run(ex.__aexit__(type(exc), exc, exc.__traceback__))
            raise
        self._run(ex.__aexit__(None, None, None))

    def flush(self) -> None:
        self._run(self.client.flush())

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._run(self.client.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> SyncAbflowClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _construct(args: tuple[Any, ...], kwargs: dict[str, Any]) -> AbflowClient:
    return AbflowClient(*args, **kwargs)
