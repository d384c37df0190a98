"""Pure rules of the control plane: lifecycle tables, start checks, the JSON diff."""

from __future__ import annotations

import uuid

import pytest

from services.assignment.control.diff import Change, json_diff, pointer
from services.assignment.control.lifecycle import (
    EXPERIMENT_ACTIONS,
    VARIANT_ACTIONS,
    start_problems,
    transition,
)
from shared.errors import ConflictError

pytestmark = pytest.mark.unit

STATUSES = ("draft", "running", "paused", "completed", "cancelled")
LEGAL = {
    ("draft", "running"),
    ("draft", "cancelled"),
    ("running", "paused"),
    ("paused", "running"),
    ("running", "completed"),
    ("paused", "completed"),
    ("running", "cancelled"),
    ("paused", "cancelled"),
}


def test_experiment_transitions_match_the_database_trigger() -> None:
    seen = set()
    for action, rule in EXPERIMENT_ACTIONS.items():
        for status in STATUSES:
            if status in rule.allowed_from:
                assert (
                    transition(EXPERIMENT_ACTIONS, action, status, entity="experiment")
                    == rule.target
                )
                seen.add((status, rule.target))
            else:
                with pytest.raises(ConflictError) as err:
                    transition(EXPERIMENT_ACTIONS, action, status, entity="experiment")
                assert err.value.code == "illegal_transition"
                assert err.value.details["current_status"] == status
    assert seen == LEGAL


def test_variant_transitions() -> None:
    assert transition(VARIANT_ACTIONS, "activate", "paused", entity="variant") == "active"
    for action, status in (
        ("pause", "draft"),
        ("activate", "active"),
        ("activate", "archived"),
        ("archive", "archived"),
    ):
        with pytest.raises(ConflictError):
            transition(VARIANT_ACTIONS, action, status, entity="variant")


def _arm(
    schema: uuid.UUID, pct: str, control: bool = False, status: str = "draft"
) -> dict[str, object]:
    return {
        "variant_id": uuid.uuid4(),
        "variant_schema_id": schema,
        "variant_status": status,
        "is_control": control,
        "traffic_percentage": pct,
    }


def test_start_problems() -> None:
    s = uuid.uuid4()
    assert start_problems(s, [_arm(s, "33.33", True), _arm(s, "33.33"), _arm(s, "33.34")]) == []
    assert len(start_problems(s, [])) == 3
    assert start_problems(s, [_arm(s, "50", True), _arm(s, "49.99")]) == [
        "traffic percentages must sum to 100, they sum to 99.99"
    ]
    assert "exactly one control" in start_problems(s, [_arm(s, "50", True), _arm(s, "50", True)])[0]
    problems = start_problems(s, [_arm(s, "50", True), _arm(uuid.uuid4(), "50", status="archived")])
    assert any("another schema" in p for p in problems) and any("archived" in p for p in problems)


def test_json_diff_paths_and_ops() -> None:
    old = {"a": 1, "b": {"c": [1, 2, 3], "d": "x"}, "e/f": True, "g": 1}
    new = {"a": 1.0, "b": {"c": [1, 5], "d": "x", "n": None}, "e/f": 1, "h": 2}
    assert json_diff(old, new) == [
        Change("changed", "/b/c/1", 2, 5),
        Change("removed", "/b/c/2", 3, None),
        Change("added", "/b/n", None, None),
        Change("changed", "/e~1f", True, 1),
        Change("removed", "/g", 1, None),
        Change("added", "/h", None, 2),
    ]
    assert json_diff(old, old) == []
    assert json_diff(1, "1") == [Change("changed", "", 1, "1")]
    assert pointer(("a~b", 0)) == "/a~0b/0"


def test_json_diff_is_not_recursive() -> None:
    deep_a: dict[str, object] = {}
    deep_b: dict[str, object] = {}
    for _ in range(5000):
        deep_a, deep_b = {"x": deep_a}, {"x": deep_b}
    deep_b_leaf = deep_b
    while deep_b_leaf["x"]:
        deep_b_leaf = deep_b_leaf["x"]  # type: ignore[assignment]
    deep_b_leaf["x"] = 1
    assert len(json_diff(deep_a, deep_b)) == 1
