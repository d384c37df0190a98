"""Poison records for every consumed topic, each with the dead-letter code expected.

A poison record is something a producer could put on a topic by mistake or malice:
random bytes, an empty value, a tombstone, truncated JSON, JSON that is not an object,
wrong types, missing or unknown fields, values out of range, an unknown event version,
text PostgreSQL cannot store, absurd nesting, and payloads larger than the consumers'
1 MiB limit (the local broker accepts 2 MiB).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MIB = 1024 * 1024
HUGE_BYTES = int(1.5 * MIB)
"""Above the consumers' 1 MiB limit, below the broker's 2 MiB ``message.max.bytes``."""


@dataclass(frozen=True)
class Poison:
    name: str
    key: bytes | None
    value: bytes | None
    codes: frozenset[str]
    """Dead-letter ``error_code`` values accepted for this record (the aggregator's
    codes; the config follower uses its own)."""

    @property
    def huge(self) -> bool:
        return self.value is not None and len(self.value) > MIB


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def execution(
    *,
    execution_id: str,
    schema_id: str,
    version: int = 1,
    variant_id: str | None = None,
    experiment_id: str | None = None,
    unit_id: str | None = None,
    success: bool = True,
    duration_ms: float = 100.0,
    risk_score: float | None = 0.25,
    completed_at: datetime | None = None,
) -> dict[str, Any]:
    completed = completed_at or datetime.now(UTC) - timedelta(minutes=5)
    return {
        "event_version": 1,
        "execution_id": execution_id,
        "schema_id": schema_id,
        "schema_version": version,
        "variant_id": variant_id,
        "variant_key": None if variant_id is None else "arm",
        "experiment_id": experiment_id,
        "unit_id": unit_id,
        "success": success,
        "duration_ms": duration_ms,
        "risk_score": risk_score,
        "steps": [{"name": "collect", "success": success, "duration_ms": duration_ms / 2}],
        "started_at": iso(completed - timedelta(milliseconds=duration_ms)),
        "completed_at": iso(completed),
    }


def exposure(
    *, experiment_id: str, variant_id: str, schema_id: str, unit_id: str, bucket: float = 0.5
) -> dict[str, Any]:
    return {
        "event_version": 1,
        "experiment_id": experiment_id,
        "experiment_key": "poison-exp",
        "variant_id": variant_id,
        "variant_key": "arm",
        "schema_id": schema_id,
        "unit_id": unit_id,
        "bucket": bucket,
        "exposed_at": iso(datetime.now(UTC) - timedelta(minutes=1)),
        "replica": "reliability",
    }


def _generic(rng: random.Random, valid: dict[str, Any], required: tuple[str, ...]) -> list[Poison]:
    """Poison any JSON-event topic shares: bytes, framing, JSON shape, version, size."""
    raw = dumps(valid)
    not_json = frozenset({"not_json"})
    shape = frozenset({"schema_error"})
    version = frozenset({"unknown_event_version"})
    out = [
        Poison(
            "random-bytes",
            rng.randbytes(16),
            b"\xff" + rng.randbytes(rng.randint(0, 512)),
            not_json,
        ),
        Poison("invalid-utf8-in-json", b"k", raw.replace(b'"', b'"\xff', 1), not_json),
        Poison("empty-value", b"k", b"", not_json),
        Poison("tombstone", b"k", None, not_json),
        Poison("truncated-json", b"k", raw[: len(raw) // 2], not_json),
        Poison("truncated-one-byte", b"k", raw[:-1], not_json),
        Poison("nan-literal", b"k", b'{"event_version": 1, "x": NaN}', not_json),
        Poison("deep-nesting", b"k", b"[" * 100_000 + b"]" * 100_000, not_json | shape),
        Poison("json-array", b"k", dumps([valid]), shape),
        Poison("json-string", b"k", dumps("hello"), shape),
        Poison("json-null", b"k", b"null", shape),
        Poison("json-number", b"k", b"42", shape),
        Poison("empty-object", b"k", b"{}", shape),
        Poison("wrong-version-2", b"k", dumps({**valid, "event_version": 2}), version),
        Poison("wrong-version-str", b"k", dumps({**valid, "event_version": "1"}), version),
        Poison("wrong-version-float", b"k", dumps({**valid, "event_version": 1.0}), version),
        Poison("wrong-version-null", b"k", dumps({**valid, "event_version": None}), version),
        Poison("unknown-field", b"k", dumps({**valid, "surprise": True}), shape),
        Poison(
            "huge-over-1MiB",
            b"k",
            dumps({**valid, "padding": "x" * HUGE_BYTES}),
            frozenset({"oversize"}),
        ),
        Poison("huge-random-over-1MiB", b"k", rng.randbytes(HUGE_BYTES), frozenset({"oversize"})),
    ]
    # fields of the valid event, one at a time: missing, then of the wrong type
    for name in required:
        if name in valid:
            missing = {k: v for k, v in valid.items() if k != name}
            out.append(Poison(f"missing-{name}", b"k", dumps(missing), shape))
    for name, bad in (("schema_id", 12345), ("unit_id", ["u"]), ("variant_id", "not-a-uuid")):
        if name in valid:
            out.append(Poison(f"wrong-type-{name}", b"k", dumps({**valid, name: bad}), shape))
    return out


def execution_poison(rng: random.Random, schema_id: str) -> list[Poison]:
    """Every dead-letter reason of the executions topic, on the schema of the valid
    events (so that a bad record counted by mistake would change its aggregates)."""
    now = datetime.now(UTC)
    valid = execution(
        execution_id=f"poison-{uuid.uuid4().hex}", schema_id=schema_id, unit_id="poison-unit"
    )
    rng_range = frozenset({"out_of_range"})
    shape = frozenset({"schema_error"})
    invalid = frozenset({"invalid_value"})
    required = ("execution_id", "schema_id", "schema_version", "success", "duration_ms")
    out = _generic(rng, valid, (*required, "started_at", "completed_at"))
    out += [
        Poison("success-as-string", b"k", dumps({**valid, "success": "maybe"}), shape),
        Poison("duration-as-string", b"k", dumps({**valid, "duration_ms": "fast"}), shape),
        Poison("steps-as-object", b"k", dumps({**valid, "steps": {"a": 1}}), shape),
        Poison("timestamp-garbage", b"k", dumps({**valid, "completed_at": "yesterday"}), shape),
        Poison("negative-duration", b"k", dumps({**valid, "duration_ms": -1}), rng_range),
        Poison("risk-above-1", b"k", dumps({**valid, "risk_score": 1.5}), rng_range),
        Poison("huge-number", b"k", dumps({**valid, "duration_ms": 1e300}), rng_range),
        Poison(
            "number-overflow",
            b"k",
            dumps(valid).replace(b'"duration_ms":100.0', b'"duration_ms":1e400'),
            frozenset({"not_json", "out_of_range", "schema_error"}),
        ),
        Poison("version-zero", b"k", dumps({**valid, "schema_version": 0}), rng_range),
        Poison("version-int8", b"k", dumps({**valid, "schema_version": 2**40}), rng_range),
        Poison("long-execution-id", b"k", dumps({**valid, "execution_id": "e" * 201}), rng_range),
        Poison(
            "completed-before-started",
            b"k",
            dumps({**valid, "started_at": iso(now), "completed_at": iso(now - timedelta(hours=1))}),
            invalid,
        ),
        Poison("nul-in-unit-id", b"k", dumps({**valid, "unit_id": "a\u0000b"}), invalid),
        Poison("empty-unit-id", b"k", dumps({**valid, "unit_id": ""}), invalid),
        Poison(
            "lone-surrogate", b"k", dumps({**valid, "unit_id": "\ud800"}), invalid | {"not_json"}
        ),
        Poison(
            "far-future",
            b"k",
            dumps(
                {
                    **valid,
                    "started_at": iso(now + timedelta(days=3650)),
                    "completed_at": iso(now + timedelta(days=3650, seconds=1)),
                }
            ),
            frozenset({"too_far_in_future"}),
        ),
    ]
    return out


def exposure_poison(
    rng: random.Random, *, experiment_id: str, variant_id: str, schema_id: str
) -> list[Poison]:
    valid = exposure(
        experiment_id=experiment_id,
        variant_id=variant_id,
        schema_id=schema_id,
        unit_id="poison-unit",
    )
    rng_range = frozenset({"out_of_range"})
    shape = frozenset({"schema_error"})
    invalid = frozenset({"invalid_value"})
    out = _generic(rng, valid, ("experiment_id", "variant_id", "unit_id", "bucket", "exposed_at"))
    out += [
        Poison("bucket-as-string", b"k", dumps({**valid, "bucket": "half"}), shape),
        Poison("bucket-one", b"k", dumps({**valid, "bucket": 1.0}), rng_range),
        Poison("bucket-negative", b"k", dumps({**valid, "bucket": -0.1}), rng_range),
        Poison(
            "naive-timestamp", b"k", dumps({**valid, "exposed_at": "2024-01-01T00:00:00"}), shape
        ),
        Poison("empty-unit-id", b"k", dumps({**valid, "unit_id": ""}), rng_range),
        Poison("long-unit-id", b"k", dumps({**valid, "unit_id": "u" * 201}), rng_range),
        Poison("nul-in-unit-id", b"k", dumps({**valid, "unit_id": "a\u0000b"}), invalid),
    ]
    return out


def config_poison(rng: random.Random, valid: dict[str, Any]) -> list[Poison]:
    """Poison for the compacted config topic (key = schema id). The codes are the
    follower's; the test only requires a reason and the original bytes. (A record with
    neither key nor value cannot be produced: clients refuse it, and a compacted topic
    refuses any record without a key.)"""
    sid = str(valid["schema_id"]).encode()
    any_code = frozenset()
    out = [
        Poison(p.name, sid if p.key == b"k" else p.key, p.value, any_code)
        for p in _generic(rng, valid, ("schema_id", "schema_key", "revision", "base_definition"))
        if p.name != "tombstone"  # a tombstone under a schema id is legitimate
    ]
    out += [
        Poison("tombstone-non-uuid-key", b"not-a-uuid", None, any_code),
        Poison("wrong-config-version", sid, dumps({**valid, "config_version": 2}), any_code),
        Poison("revision-zero", sid, dumps({**valid, "revision": 0}), any_code),
        Poison(
            "weights-not-summing-to-one",
            sid,
            dumps(
                {
                    **valid,
                    "experiment": {
                        **valid["experiment"],
                        "arms": [{**a, "weight": 0.9} for a in valid["experiment"]["arms"]],
                    },
                }
            ),
            any_code,
        ),
        Poison("variants-not-a-list", sid, dumps({**valid, "variants": {"a": 1}}), any_code),
    ]
    return out


def coercible_execution_poison(schema_id: str) -> list[Poison]:
    """Mistyped values that pydantic's lax mode converts (``"yes"`` -> True, ``"12.5"``
    -> 12.5): the published JSON Schema (``schemas/events/``) refuses them, so a consumer
    must dead-letter them rather than count them."""
    valid = execution(
        execution_id=f"coerced-{uuid.uuid4().hex}", schema_id=schema_id, unit_id="coerced-unit"
    )
    shape = frozenset({"schema_error"})
    out = []
    for name, bad in (
        ("success", "yes"),
        ("success", 1),
        ("duration_ms", "12.5"),
        ("schema_version", "2"),
        ("schema_version", 2.0),
        ("risk_score", "0.5"),
    ):
        event = {**valid, name: bad, "execution_id": f"coerced-{uuid.uuid4().hex}"}
        out.append(Poison(f"coercible-{name}-{bad!r}", b"k", dumps(event), shape))
    return out
