"""Event models, their JSON Schemas and the topic definitions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from pydantic import ValidationError

from shared import jsonschemas
from shared.events import (
    AssignmentConfig,
    ExecutionEvent,
    ExperimentArm,
    ExperimentConfig,
    ExposureEvent,
    SchemaDefinition,
)
from shared.topics import ALL_TOPICS, CONFIG, topic_name

pytestmark = pytest.mark.unit
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def execution(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "execution_id": "exec-1",
        "schema_id": str(uuid.uuid4()),
        "schema_version": 1,
        "unit_id": "unit-1",
        "success": True,
        "duration_ms": 1234.5,
        "risk_score": 0.25,
        "steps": [{"name": "review", "success": True, "duration_ms": 10.0}],
        "started_at": (NOW - timedelta(seconds=2)).isoformat(),
        "completed_at": NOW.isoformat(),
    }
    base.update(overrides)
    return base


def test_json_schemas_match_the_models() -> None:
    assert jsonschemas.drifted() == [], "run `make schemas` and commit the result"


def test_a_valid_execution_event_round_trips_and_matches_its_json_schema() -> None:
    event = ExecutionEvent.model_validate(execution())
    again = ExecutionEvent.model_validate_json(event.model_dump_json())
    assert again == event and again.event_version == 1
    schema = json.loads(jsonschemas.render(ExecutionEvent))
    jsonschema.validate(json.loads(event.model_dump_json()), schema)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("risk_score", 1.5),
        ("risk_score", -0.1),
        ("duration_ms", -1),
        ("duration_ms", float("nan")),
        ("schema_version", 0),
        ("event_version", 2),
        ("schema_id", "not-a-uuid"),
        ("started_at", "2026-01-01T00:00:00"),  # naive time is refused
        ("unexpected", 1),
        # strict: JSON types are not coerced
        ("success", "true"),
        ("success", 1),
        ("schema_version", "2"),
        ("schema_version", 2.0),
        ("duration_ms", "12.5"),
        ("risk_score", "0.5"),
        ("event_version", True),
        ("started_at", 1767225600),
        ("started_at", "1767225600"),
    ],
)
def test_invalid_execution_events_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        ExecutionEvent.model_validate(execution(**{field: value}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("success", "yes"), ("success", 1), ("duration_ms", "12.5"), ("schema_version", "2")],
)
def test_wire_json_is_strict(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        ExecutionEvent.model_validate_json(json.dumps(execution(**{field: value})))


def test_ids_and_times_still_parse_from_strings() -> None:
    event = ExecutionEvent.model_validate(execution(duration_ms=5))  # an int is a float
    assert event.duration_ms == 5.0 and isinstance(event.duration_ms, float)
    assert event.started_at.tzinfo is not None
    again = ExecutionEvent.model_validate_json(event.model_dump_json())
    assert again == event


def test_completion_before_start_is_refused() -> None:
    with pytest.raises(ValidationError, match="completed_at"):
        ExecutionEvent.model_validate(
            execution(started_at=NOW.isoformat(), completed_at=(NOW - timedelta(1)).isoformat())
        )


def test_experiment_weights_must_sum_to_one() -> None:
    arms = [
        ExperimentArm(variant_id=uuid.uuid4(), variant_key="a", weight=0.5, is_control=True),
        ExperimentArm(variant_id=uuid.uuid4(), variant_key="b", weight=0.4),
    ]
    with pytest.raises(ValidationError, match="sum"):
        ExperimentConfig(
            experiment_id=uuid.uuid4(), experiment_key="e", seed="e", coverage=1, arms=arms
        )


def test_assignment_config_and_exposure_validate() -> None:
    cfg = AssignmentConfig(
        schema_id=uuid.uuid4(),
        schema_key="s",
        revision=1,
        base_version=1,
        base_definition=SchemaDefinition(workflow_steps=[{"name": "a"}]),
    )
    jsonschema.validate(
        json.loads(cfg.model_dump_json()), json.loads(jsonschemas.render(AssignmentConfig))
    )
    exp = ExposureEvent(
        experiment_id=uuid.uuid4(),
        experiment_key="e",
        variant_id=uuid.uuid4(),
        variant_key="a",
        schema_id=cfg.schema_id,
        unit_id="u",
        bucket=0.5,
        exposed_at=NOW,
    )
    assert ExposureEvent.model_validate_json(exp.model_dump_json()) == exp


def test_topics_are_defined_once_with_distinct_names() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert CONFIG.config["cleanup.policy"] == "compact"
    assert topic_name("x", "p.") == "p.x" and topic_name("x") == "x"
