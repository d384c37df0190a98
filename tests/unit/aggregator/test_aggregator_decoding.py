"""Decoding: the fast path agrees with the pydantic contract; every dead-letter reason."""

from __future__ import annotations

import base64
import copy
import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
import pytest
from pydantic import ValidationError

from services.aggregator import decoding
from services.aggregator.decoding import (
    Rejection,
    decode_execution,
    decode_exposure,
    from_model,
    make_dead_letter,
)
from services.aggregator.state import Execution, hour_of
from shared.events import DeadLetter, ExecutionEvent

pytestmark = pytest.mark.unit


def event(**overrides: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "event_version": 1,
        "execution_id": "exec-1",
        "schema_id": "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f",
        "schema_version": 3,
        "variant_id": "0b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
        "experiment_id": "11111111-2222-4333-8444-555555555555",
        "unit_id": "user-9",
        "success": True,
        "duration_ms": 1234.5,
        "risk_score": 0.25,
        "steps": [{"name": "fetch", "success": True, "duration_ms": 10}],
        "started_at": "2026-01-02T03:04:05.123456+00:00",
        "completed_at": "2026-01-02T03:04:06Z",
    }
    ev.update(overrides)
    return {k: v for k, v in ev.items() if v is not _DROP}


_DROP = object()


def same(a: object, b: object) -> bool:
    """Equal executions, with the same stored steps."""
    assert isinstance(a, Execution) and isinstance(b, Execution), (a, b)
    return a._replace(steps_doc=b"") == b._replace(steps_doc=b"") and orjson.loads(
        a.steps_doc
    ) == orjson.loads(b.steps_doc)


def enc(ev: Any) -> bytes:
    return orjson.dumps(ev)


def test_a_valid_event_decodes_to_normalised_fields() -> None:
    ex = decode_execution(enc(event(schema_id="6F1C2D3E-4B5A-4C6D-8E9F-0A1B2C3D4E5F")))
    assert isinstance(ex, Execution)
    assert ex.schema_id == "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
    assert ex.completed_at == datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert ex.steps == (("fetch", True, 10.0),)
    assert orjson.loads(ex.steps_doc) == [{"name": "fetch", "success": True, "duration_ms": 10}]
    model = ExecutionEvent.model_validate_json(enc(event()))
    assert same(from_model(model), decode_execution(enc(event())))


def test_optional_fields_may_be_missing_or_null() -> None:
    ex = decode_execution(
        enc(
            event(variant_id=_DROP, experiment_id=None, risk_score=_DROP, steps=_DROP, unit_id=None)
        )
    )
    assert isinstance(ex, Execution)
    assert (
        ex.variant_id is None and ex.risk_score is None and ex.steps == () and ex.steps_doc == b"[]"
    )


def test_non_canonical_but_valid_forms_go_through_the_model() -> None:
    raw = enc(
        event(
            schema_id="6f1c2d3e4b5a4c6d8e9f0a1b2c3d4e5f",  # no hyphens
            started_at="2026-01-02 03:04:05+00:00",  # space separator
        )
    )
    assert _typed(raw) is None
    ex = decode_execution(raw)
    assert isinstance(ex, Execution)
    assert ex.schema_id == "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
    assert ex.schema_version == 3


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "not_json"),
        (b"{nope", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1]", "schema_error"),
        (enc(event(event_version=2)), "unknown_event_version"),
        (enc(event(event_version="1")), "unknown_event_version"),
        (enc(event(schema_id=_DROP)), "schema_error"),
        (enc(event(colour="blue")), "schema_error"),
        (enc(event(success="maybe")), "schema_error"),
        # strict contract: no coercion of JSON types
        (enc(event(success="true")), "schema_error"),
        (enc(event(success=1)), "schema_error"),
        (enc(event(schema_version="3")), "schema_error"),
        (enc(event(schema_version=3.0)), "schema_error"),
        (enc(event(duration_ms="12.5")), "schema_error"),
        (enc(event(risk_score="0.5")), "schema_error"),
        (enc(event(execution_id=7)), "schema_error"),
        (enc(event(completed_at=1767322000)), "schema_error"),
        (enc(event(completed_at="1767322000")), "schema_error"),
        (enc(event(steps=[{"name": "x", "success": 1, "duration_ms": 1}])), "schema_error"),
        (enc(event(schema_id="not-a-uuid")), "schema_error"),
        (enc(event(steps=[{"name": "x", "success": True}])), "schema_error"),
        (enc(event(risk_score=1.01)), "out_of_range"),
        (enc(event(duration_ms=-1)), "out_of_range"),
        (enc(event(duration_ms=1e11)), "out_of_range"),
        (enc(event(schema_version=0)), "out_of_range"),
        (enc(event(schema_version=2**31)), "out_of_range"),
        (enc(event(execution_id="")), "out_of_range"),
        (enc(event(execution_id="x" * 201)), "out_of_range"),
        (enc(event(assignment_reason="r" * 33)), "out_of_range"),
        (
            enc(event(steps=[{"name": "s", "success": True, "duration_ms": 1}] * 201)),
            "out_of_range",
        ),
        (enc(event(started_at="2026-01-02T03:04:07Z")), "invalid_value"),
        (enc(event(started_at="2026-01-02T03:04:05")), "schema_error"),  # naive time
        (enc(event(unit_id="")), "invalid_value"),
        (enc(event(unit_id="a\x00b")), "invalid_value"),
        (enc(event(steps=[{"name": "n\x00", "success": True, "duration_ms": 1}])), "invalid_value"),
    ],
)
def test_bad_records_get_their_reason(raw: bytes | None, code: str) -> None:
    res = decode_execution(raw)
    assert isinstance(res, Rejection), res
    assert res.code == code, res


def test_oversize_is_checked_before_parsing() -> None:
    big = enc(event(variant_key="k")) + b" " * (1024 * 1024)
    res = decode_execution(big)
    assert isinstance(res, Rejection) and res.code == "oversize"
    assert isinstance(decode_execution(enc(event()), max_bytes=2000), Execution)
    assert decode_execution(enc(event()), max_bytes=100) == Rejection(
        "oversize", f"record of {len(enc(event()))} bytes exceeds 100"
    )


def _mutations(rng: random.Random) -> Any:
    values: list[Any] = [
        None,
        True,
        False,
        0,
        1,
        -1,
        2.5,
        1e10,
        1e11,
        2**31,
        "",
        "x",
        "2026-01-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00+00:00",
        "2026-01-01T00:00:00.1234567Z",
        "2026-01-01T00:00:00+05:30",
        "\u0663\u0660\u0662\u0666-01-01T00:00:00Z",
        str(uuid.UUID(int=rng.getrandbits(128))),
        "A" * 36,
        [],
        {},
        [{"name": "a"}],
        [{"name": "a", "success": True, "duration_ms": -0.0}],
        "0" * 8 + "-" + "0" * 4 + "-" + "0" * 4 + "-" + "0" * 4 + "-" + "0" * 12,
        # what a lax model would coerce
        "1",
        "0.5",
        "true",
        1.0,
        3.0,
        1767322000,
        "1767322000",
        [{"name": "a", "success": 1, "duration_ms": 1}],
        [{"name": "a", "success": True, "duration_ms": "1"}],
    ]
    base = event()
    for _ in range(3000):
        ev = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*list(ev), "extra", "event_version"])
            if rng.random() < 0.15:
                ev.pop(key, None)
            else:
                ev[key] = rng.choice(values)
        yield ev


def test_the_fast_path_never_accepts_what_the_model_rejects() -> None:
    rng = random.Random(42)
    accepted = rejected = 0
    for ev in _mutations(rng):
        raw = enc(ev)
        try:
            model = ExecutionEvent.model_validate_json(raw)
        except ValidationError:
            model = None
        typed = _typed(raw)
        if isinstance(typed, Execution):
            assert model is not None, ev
            assert same(typed, from_model(model)), ev
        res = decode_execution(raw)
        if isinstance(res, Execution):
            accepted += 1
            assert model is not None
        else:
            rejected += 1
            if model is not None:  # only our database checks reject what the model accepts
                assert res.code in ("invalid_value", "out_of_range", "unknown_event_version"), (
                    ev,
                    res,
                )
    assert accepted > 50 and rejected > 1000


def test_exposures() -> None:
    ok = {
        "event_version": 1,
        "experiment_id": str(uuid.uuid4()),
        "experiment_key": "e",
        "variant_id": str(uuid.uuid4()),
        "variant_key": "v",
        "schema_id": str(uuid.uuid4()),
        "unit_id": "u1",
        "bucket": 0.5,
        "exposed_at": "2026-01-01T00:00:00Z",
    }
    exp = decode_exposure(enc(ok))
    assert not isinstance(exp, Rejection) and exp.unit_id == "u1"
    assert decode_exposure(b"x") == Rejection("not_json", decode_exposure(b"x").message)  # type: ignore[union-attr]
    for bad, code in [
        ({**ok, "bucket": 1.0}, "out_of_range"),
        ({**ok, "event_version": 9}, "unknown_event_version"),
        ({**ok, "unit_id": "a\x00"}, "invalid_value"),
    ]:
        res = decode_exposure(enc(bad))
        assert isinstance(res, Rejection) and res.code == code


def test_dead_letter_carries_the_original_bytes_and_the_reason() -> None:
    raw = b"\x00\x01 not json"
    rej = decode_execution(raw)
    assert isinstance(rej, Rejection)
    letter = DeadLetter.model_validate_json(
        make_dead_letter(topic="t", partition=2, offset=7, key=b"k", value=raw, rejection=rej)
    )
    assert base64.b64decode(letter.value_b64 or "") == raw
    assert base64.b64decode(letter.key_b64 or "") == b"k"
    assert (letter.error_code, letter.partition, letter.offset, letter.service) == (
        "not_json",
        2,
        7,
        "aggregator",
    )
    tomb = DeadLetter.model_validate_json(
        make_dead_letter(
            topic="t",
            partition=0,
            offset=0,
            key=None,
            value=None,
            rejection=Rejection("not_json", "x"),
        )
    )
    assert tomb.value_b64 is None and tomb.key_b64 is None


def _typed(raw: bytes) -> Execution | Rejection | None:
    """The msgspec path alone (None: it leaves the record to the others)."""
    try:
        return decoding._typed(decoding._decode_wire(raw), None, None)
    except (msgspec.MsgspecError, ValueError):
        return None


def _reference(raw: bytes) -> Execution | Rejection:
    """The decision of the contract alone: the strict model, then the database checks."""
    envelope = decoding._envelope(raw, 1024 * 1024)
    if isinstance(envelope, Rejection):
        return envelope
    try:
        model = ExecutionEvent.model_validate_json(raw)
    except ValidationError as exc:
        return decoding._rejection(exc)
    return decoding._db_checks(from_model(model))


def _generated(rng: random.Random, n: int) -> Any:
    """Valid events of many shapes, and the same with one value mistyped or out of range."""
    bad_values: dict[str, list[Any]] = {
        "execution_id": [7, "", "x" * 201, None, True],
        "schema_id": ["nope", 5, None, "6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5"],
        "schema_version": ["3", 3.0, True, 0, -2, 2**31, None],
        "variant_id": ["x", 1, True],
        "experiment_id": ["", 0],
        "unit_id": [5, "", "u" * 201, False, "a\x00b"],
        "success": ["true", 1, 0, None, "yes"],
        "duration_ms": ["12.5", True, -1, 1e11, None],
        "risk_score": ["0.5", True, 1.5, -0.1],
        "steps": [
            None,
            {},
            "[]",
            [{"name": "a"}],
            [{"name": "", "success": True, "duration_ms": 1}],
        ],
        "started_at": [1767322000, "1767322000", "2026-01-02", "2026-01-02T03:04:05", True],
        "completed_at": ["2020-01-01T00:00:00Z", 1.5e9, "yesterday"],
        "assignment_reason": ["r" * 33, 3],
        "variant_key": ["k" * 101, 1.5],
        "event_version": [True, 1.0, "1", 2],
    }
    for i in range(n):
        started = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + rng.random() * 86400 * 30
        duration = rng.choice([0, 1, rng.random() * 1000, rng.randint(0, 10**6)])
        ev: dict[str, Any] = {
            "execution_id": f"gen-{i}",
            "schema_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "schema_version": rng.randint(1, 5),
            "success": rng.random() < 0.5,
            "duration_ms": duration,
            "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
            "completed_at": datetime.fromtimestamp(started + duration / 1000, UTC).isoformat(),
        }
        if rng.random() < 0.5:
            ev["event_version"] = 1
        if rng.random() < 0.7:
            ev["variant_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
            ev["experiment_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
        if rng.random() < 0.7:
            ev["unit_id"] = f"unit-{rng.randint(1, 99)}"
        if rng.random() < 0.7:
            ev["risk_score"] = rng.choice([0, 1, rng.random()])
        if rng.random() < 0.5:
            ev["steps"] = [
                {"name": f"s{k}", "success": rng.random() < 0.9, "duration_ms": rng.random() * 9}
                for k in range(rng.randint(0, 3))
            ]
        if rng.random() < 0.2:
            ev["assignment_reason"] = "experiment"
        if rng.random() < 0.1:
            ev["completed_at"] = ev["completed_at"].replace("+00:00", "Z")
        yield ev
        field = rng.choice(list(bad_values))
        yield {**ev, field: rng.choice(bad_values[field])}


def test_the_fast_path_decides_exactly_as_the_strict_model() -> None:
    """On thousands of generated valid and invalid events, ``decode_execution`` (fast path
    with its fallback) returns what the strict model plus the database checks return."""
    rng = random.Random(5)
    typed_accepted = accepted = rejected = 0
    for ev in _generated(rng, 3000):
        raw = enc(ev)
        want = _reference(raw)
        got = decode_execution(raw)
        if isinstance(want, Execution):
            assert isinstance(got, Execution) and same(got, want), ev
            assert orjson.loads(got.steps_doc) == orjson.loads(want.steps_doc), ev
            accepted += 1
            typed_accepted += isinstance(_typed(raw), Execution)
        else:
            assert isinstance(got, Rejection), (ev, got)
            assert got.code == want.code, (ev, got, want)
            rejected += 1
    assert accepted > 2900 and rejected > 2000
    assert typed_accepted > 0.9 * accepted  # the common case does take the fast path


@pytest.mark.parametrize("year", [1971, 2026, 2099, 2200])
def test_the_fast_paths_hour_equals_exact_hour_arithmetic_at_the_boundaries(year: int) -> None:
    """The fast path takes the hour by float floor division of the epoch seconds."""
    rng = random.Random(year)
    for _ in range(300):
        base = datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(8760))
        for delta_us in (-1, 0, 1, -999_999, 3_599_999_999):
            completed = base + timedelta(microseconds=delta_us)
            for offset in ("+00:00", "+05:30", "-11:00"):
                tz = timezone(timedelta(hours=int(offset[:3]), minutes=int(offset[4:])))
                text = completed.astimezone(tz).isoformat(timespec="microseconds")
                ex = decode_execution(enc(event(started_at=text, completed_at=text, steps=[])))
                assert isinstance(ex, Execution), ex
                assert ex.hour == hour_of(completed), text


def test_escaped_characters_take_the_fast_path() -> None:
    """Python's ``json.dumps`` escapes every non-ASCII character (``\\u00e9``): such a
    record is decoded by the fast path too, and a NUL escaped the same way is refused."""
    raw = json.dumps(
        event(unit_id="Zoë", steps=[{"name": "révision", "success": True, "duration_ms": 2}])
    ).encode()
    assert b"\\u00eb" in raw
    typed = _typed(raw)
    assert isinstance(typed, Execution) and typed.unit_id == "Zoë"
    assert typed.steps[0][0] == "révision"
    assert same(typed, from_model(ExecutionEvent.model_validate_json(raw)))
    nul = json.dumps(event(unit_id="a\x00b")).encode()
    res = decode_execution(nul)
    assert isinstance(res, Rejection) and res.code == "invalid_value", res
