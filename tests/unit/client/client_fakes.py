"""Test doubles for the client: an in-memory event sink and a fake assignment service
(an ``httpx.MockTransport`` handler) that splits units between two arms by hash."""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import httpx

from shared.events import ExecutionEvent

SCHEMA_ID = uuid.UUID("00000000-0000-4000-8000-00000000a001")
EXPERIMENT_ID = uuid.UUID("00000000-0000-4000-8000-00000000e001")
VARIANTS = {
    "control": uuid.UUID("00000000-0000-4000-8000-00000000c001"),
    "treatment": uuid.UUID("00000000-0000-4000-8000-00000000c002"),
}
BASE_DEFINITION = {
    "workflow_steps": [{"name": "plan"}, {"name": "execute"}],
    "risk_config": {"auto_approve_threshold": 0.3},
    "config": {"model": "base"},
}


class MemorySink:
    """Collects events instead of producing them."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[ExecutionEvent] = []
        self.fail = fail
        self.closed = False

    async def send(self, event: ExecutionEvent, *, wait: bool = True) -> None:
        if self.fail:
            from shared.client import EmitError

            raise EmitError("sink configured to fail")
        self.events.append(event)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


def answer(
    variant_key: str | None, unit_id: str | None, reason: str | None = None
) -> dict[str, Any]:
    """A ``POST /api/v1/assign`` answer as the assignment service gives it."""
    in_exp = variant_key is not None
    return {
        "schema_id": str(SCHEMA_ID),
        "schema_key": "checkout",
        "revision": 7,
        "schema_version": 1,
        "variant_id": str(VARIANTS[variant_key]) if variant_key else None,
        "variant_key": variant_key,
        "experiment_id": str(EXPERIMENT_ID) if in_exp else None,
        "experiment_key": "exp-1" if in_exp else None,
        "in_experiment": in_exp,
        "bucket": 0.5 if unit_id else None,
        "reason": reason or ("experiment" if in_exp else "default"),
        "effective_config": {**BASE_DEFINITION, "config": {"model": variant_key or "base"}},
    }


def split_arm(unit_id: str) -> str:
    return "treatment" if zlib.crc32(unit_id.encode()) % 2 else "control"


class FakeAssignmentService:
    """Counts requests; answers through ``respond`` (default: a 50/50 experiment)."""

    def __init__(self, respond: Callable[[dict[str, Any]], httpx.Response] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.respond = respond or self.experiment

    @staticmethod
    def experiment(body: dict[str, Any]) -> httpx.Response:
        unit = body.get("unit_id")
        return httpx.Response(200, json=answer(split_arm(unit) if unit else None, unit))

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/assign", request.url.path
        body = json.loads(request.content)
        self.requests.append(body)
        return self.respond(body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
