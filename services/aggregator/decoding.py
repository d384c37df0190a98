"""Record bytes → :class:`~services.aggregator.state.Execution` or a dead-letter reason.

The contract is :class:`shared.events.ExecutionEvent`. Validating every record with
pydantic costs ~12 µs; most records are well formed, so a fast path checks a strict
subset of what the model accepts and hands anything outside it to
``ExecutionEvent.model_validate_json``, which decides and names the error. The fast path
(:func:`_typed`): msgspec decodes the bytes straight into :class:`_WireExecution` (the
model's types, lengths and bounds, checked in C; msgspec is strict like the model), then
the ids (canonical UUID text) and timestamps (``YYYY-MM-DDTHH:MM:SS[.ffffff]`` with an
offset) are checked in Python. It never accepts what the model rejects (unit tests check
this on many mutations, and that the decoder as a whole decides exactly as the model).

On top of the model, the checks PostgreSQL would otherwise fail a whole flush on:
``schema_version`` within ``integer``, no NUL character in any text, ``unit_id`` not
empty. Reasons (``DeadLetter.error_code``):

``oversize``, ``not_json``, ``unknown_event_version``, ``schema_error`` (missing, extra or
mistyped field), ``out_of_range`` (a value outside its bounds), ``invalid_value``
(inconsistent values, e.g. completed before started, or text PostgreSQL cannot store);
``too_late`` and ``too_far_in_future`` are decided later with the partition watermark
(:func:`services.aggregator.state.classify_time`).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, Final, NamedTuple

import msgspec
import orjson
from pydantic import ValidationError

from services.aggregator.state import Execution, hour_of, steps_json
from shared.events import DeadLetter, ExecutionEvent, ExposureEvent

__all__ = [
    "Rejection",
    "decode_execution",
    "decode_exposure",
    "make_dead_letter",
]

INT4_MAX: Final = 2**31 - 1
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_TS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
)
_RANGE_ERRORS: Final = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
        "string_too_short",
        "string_too_long",
        "too_long",
        "too_short",
    }
)


class Rejection(NamedTuple):
    """Why a record goes to the dead-letter topic."""

    code: str
    message: str


def _envelope(raw: bytes | None, max_bytes: int) -> tuple[bytes, dict[str, Any]] | Rejection:
    """The checks every consumed record passes first: a value, its size, a JSON object,
    a known ``event_version``."""
    if raw is None:
        return Rejection("not_json", "record has no value (tombstone)")
    if len(raw) > max_bytes:
        return Rejection("oversize", f"record of {len(raw)} bytes exceeds {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejection("schema_error", f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("event_version", 1)
    if version != 1 or type(version) is not int:
        return Rejection("unknown_event_version", f"unknown event_version {version!r}")
    return raw, obj


def decode_execution(
    raw: bytes | None,
    max_bytes: int = 1024 * 1024,
    partition: int | None = None,
    offset: int | None = None,
) -> Execution | Rejection:
    """Decode one record value of the executions topic (read at ``partition``/``offset``)."""
    if raw is not None and len(raw) <= max_bytes:
        try:
            ex = _typed(_decode_wire(raw), partition, offset)
        except (msgspec.MsgspecError, ValueError):  # (invalid UTF-8: UnicodeDecodeError)
            ex = None
        if ex is not None:
            if b"\\u0000" in raw and type(ex) is Execution:  # JSON can only carry NUL escaped
                return _db_checks(ex)
            return ex  # (msgspec refuses invalid UTF-8 and lone surrogates, like orjson)
    checked = _envelope(raw, max_bytes)
    if isinstance(checked, Rejection):
        return checked
    return _slow(checked[0], partition, offset)


_uuid_match = _UUID.match
_ts_match = _TS.match
_fromiso = datetime.fromisoformat
_intern = sys.intern
_new_tuple = tuple.__new__

# Schema, variant and experiment ids repeat in almost every record: each distinct text is
# checked and normalised once (lower case, interned: one copy in memory). Bounded.
_UUIDS: dict[str, str] = {}
_UUIDS_MAX: Final = 100_000
_uuid_get = _UUIDS.get


def _new_uuid(text: str) -> str | None:
    """The normalised id of ``text``, or None when it is not a canonical UUID."""
    if not _uuid_match(text):
        return None
    if len(_UUIDS) >= _UUIDS_MAX:
        _UUIDS.clear()
    out = _UUIDS[text] = _intern(text.lower())
    return out


_Text200 = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
_Duration = Annotated[float, msgspec.Meta(ge=0.0, le=1e10)]


class _WireStep(msgspec.Struct, forbid_unknown_fields=True):
    name: _Text200
    success: bool
    duration_ms: _Duration


class _WireExecution(msgspec.Struct, forbid_unknown_fields=True):
    """The fields of :class:`ExecutionEvent` with the model's types and bounds; ids and
    timestamps as text, checked by :func:`_typed` (msgspec is strict: no ``"1"`` for an
    int, no ``2.0`` for an int, no ``1`` for a bool, like the model)."""

    execution_id: _Text200
    schema_id: str
    schema_version: Annotated[int, msgspec.Meta(ge=1)]
    success: bool
    duration_ms: _Duration
    started_at: str
    completed_at: str
    event_version: int = 1
    variant_id: str | None = None
    variant_key: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    experiment_id: str | None = None
    unit_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    risk_score: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | None = None
    steps: Annotated[list[_WireStep], msgspec.Meta(max_length=200)] = []
    assignment_reason: Annotated[str, msgspec.Meta(max_length=32)] | None = None


_decode_wire = msgspec.json.Decoder(_WireExecution).decode
_encode_steps = msgspec.json.Encoder().encode


def _typed(
    ev: _WireExecution, partition: int | None, offset: int | None
) -> Execution | Rejection | None:
    """The checks msgspec's types cannot express, or None to let the model decide."""
    if ev.event_version != 1:
        return None
    schema_id = _uuid_get(ev.schema_id) or _new_uuid(ev.schema_id)
    if schema_id is None:
        return None
    variant_id = ev.variant_id
    if variant_id is not None:
        variant_id = _uuid_get(variant_id) or _new_uuid(variant_id)
        if variant_id is None:
            return None
    experiment_id = ev.experiment_id
    if experiment_id is not None:
        experiment_id = _uuid_get(experiment_id) or _new_uuid(experiment_id)
        if experiment_id is None:
            return None
    started_raw = ev.started_at
    completed_raw = ev.completed_at
    if not _ts_match(started_raw) or not _ts_match(completed_raw):
        return None
    try:
        started = _fromiso(started_raw)
        completed = _fromiso(completed_raw)
    except ValueError:
        return None
    if completed < started:
        return Rejection("invalid_value", "completed_at is before started_at")
    schema_version = ev.schema_version
    if schema_version > INT4_MAX:
        return Rejection("out_of_range", f"schema_version {schema_version} exceeds {INT4_MAX}")
    unit_id = ev.unit_id
    if unit_id == "":
        return Rejection("invalid_value", "unit_id is empty")
    wire_steps = ev.steps
    if wire_steps:
        steps = tuple([(_intern(st.name), st.success, st.duration_ms) for st in wire_steps])
        steps_doc = _encode_steps(wire_steps)
    else:
        steps = ()
        steps_doc = b"[]"
    completed_s = completed.timestamp()
    # tuple.__new__ skips the NamedTuple's Python-level constructor (about 2 µs here)
    return _new_tuple(
        Execution,
        (
            ev.execution_id,
            schema_id,
            schema_version,
            variant_id,
            ev.variant_key,
            experiment_id,
            unit_id,
            ev.success,
            ev.duration_ms,
            ev.risk_score,
            steps_doc,
            ev.assignment_reason,
            started,
            completed,
            partition,
            offset,
            steps,
            # the hour by float floor division equals hour_of(completed) for any time
            # with microseconds before the year 2242 (the float's spacing stays under 1 µs)
            int(completed_s // 3600.0),
            completed_s,
        ),
    )


def _slow(raw: bytes, partition: int | None, offset: int | None) -> Execution | Rejection:
    try:
        ev = ExecutionEvent.model_validate_json(raw)
    except ValidationError as exc:
        return _rejection(exc)
    return _db_checks(from_model(ev, partition, offset))


def from_model(
    ev: ExecutionEvent, partition: int | None = None, offset: int | None = None
) -> Execution:
    """The :class:`Execution` of a validated model."""
    steps = tuple((s.name, s.success, float(s.duration_ms)) for s in ev.steps)
    return Execution(
        execution_id=ev.execution_id,
        schema_id=str(ev.schema_id),
        schema_version=ev.schema_version,
        variant_id=None if ev.variant_id is None else str(ev.variant_id),
        variant_key=ev.variant_key,
        experiment_id=None if ev.experiment_id is None else str(ev.experiment_id),
        unit_id=ev.unit_id,
        success=ev.success,
        duration_ms=float(ev.duration_ms),
        risk_score=None if ev.risk_score is None else float(ev.risk_score),
        steps_doc=steps_json(steps),
        assignment_reason=ev.assignment_reason,
        started_at=ev.started_at,
        completed_at=ev.completed_at,
        source_partition=partition,
        source_offset=offset,
        steps=steps,
        hour=hour_of(ev.completed_at),
        completed_s=ev.completed_at.timestamp(),
    )


def _rejection(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"type": "value_error", "loc": (), "msg": str(exc)}
    loc = ".".join(str(p) for p in first.get("loc", ())) or "event"
    msg = f"{loc}: {first.get('msg', '')}"
    etype = str(first.get("type", ""))
    if etype in _RANGE_ERRORS:
        return Rejection("out_of_range", msg)
    if etype == "value_error":
        return Rejection("invalid_value", msg)
    return Rejection("schema_error", msg)


def _db_checks(ex: Execution) -> Execution | Rejection:
    if ex.schema_version > INT4_MAX:
        return Rejection("out_of_range", f"schema_version {ex.schema_version} exceeds {INT4_MAX}")
    if ex.unit_id == "":
        return Rejection("invalid_value", "unit_id is empty")
    texts = [ex.execution_id, ex.variant_key, ex.unit_id, ex.assignment_reason]
    texts.extend(s[0] for s in ex.steps)
    for text in texts:
        if text is None:
            continue
        if "\x00" in text:
            return Rejection("invalid_value", "text contains a NUL character")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return Rejection("invalid_value", "text is not valid Unicode (lone surrogate)")
    for ts in (ex.started_at, ex.completed_at):
        if not 1 <= ts.astimezone(UTC).year <= 9999:  # pragma: no cover - datetime bounds
            return Rejection("out_of_range", "timestamp out of range")
    return ex


class Exposure(NamedTuple):
    experiment_id: str
    unit_id: str
    variant_id: str
    exposed_at: datetime
    bucket: float


def decode_exposure(raw: bytes | None, max_bytes: int = 1024 * 1024) -> Exposure | Rejection:
    """Decode one record value of the exposures topic (pydantic: lower volume)."""
    checked = _envelope(raw, max_bytes)
    if isinstance(checked, Rejection):
        return checked
    raw, _ = checked
    try:
        ev = ExposureEvent.model_validate_json(raw)
    except ValidationError as exc:
        return _rejection(exc)
    if "\x00" in ev.unit_id:
        return Rejection("invalid_value", "unit_id contains a NUL character")
    try:
        ev.unit_id.encode("utf-8")
    except UnicodeEncodeError:
        return Rejection("invalid_value", "unit_id is not valid Unicode (lone surrogate)")
    return Exposure(str(ev.experiment_id), ev.unit_id, str(ev.variant_id), ev.exposed_at, ev.bucket)


def make_dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    rejection: Rejection,
    service: str = "aggregator",
    now: datetime | None = None,
) -> bytes:
    """The JSON of a :class:`~shared.events.DeadLetter` for one rejected record (values
    too large to embed are replaced by their size and SHA-256)."""
    letter = DeadLetter.for_record(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        reason=rejection.message,
        error_code=rejection.code,
        service=service,
        failed_at=now,
    )
    return letter.model_dump_json().encode()
