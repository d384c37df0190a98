"""JSON Merge Patch (RFC 7396) and effective definitions."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from shared.assignment import effective_definition, merge_patch
from shared.events import SchemaDefinition

pytestmark = pytest.mark.unit

# RFC 7396, Appendix A: (original, patch, result)
RFC7396_APPENDIX_A: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), RFC7396_APPENDIX_A)
def test_rfc7396_appendix_a(original: Any, patch: Any, expected: Any) -> None:
    original_before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    assert merge_patch(original, patch) == expected
    assert original == original_before  # pure: inputs untouched
    assert patch == patch_before


def test_merge_patch_result_shares_nothing_mutable() -> None:
    target = {"keep": {"deep": [1, 2]}, "over": {"x": 1}}
    patch = {"over": {"y": [3]}, "new": [{"z": 1}]}
    result = merge_patch(target, patch)
    assert result == {"keep": {"deep": [1, 2]}, "over": {"x": 1, "y": [3]}, "new": [{"z": 1}]}
    result["keep"]["deep"].append(99)
    result["over"]["y"].append(99)
    result["new"][0]["z"] = 99
    assert target == {"keep": {"deep": [1, 2]}, "over": {"x": 1}}
    assert patch == {"over": {"y": [3]}, "new": [{"z": 1}]}


def test_merge_patch_is_idempotent() -> None:
    target = {"a": {"b": 1, "c": 2}, "d": [1]}
    patch = {"a": {"b": None, "e": 3}, "d": [2]}
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


BASE = SchemaDefinition(
    workflow_steps=[{"name": "fetch"}, {"name": "score", "model": "v1"}],
    risk_config={"threshold": 0.5, "rules": {"velocity": True, "geo": False}},
    config={"timeout_s": 10, "legacy": True},
)


def test_effective_definition_without_overrides_is_the_base() -> None:
    assert effective_definition(BASE) == BASE
    assert effective_definition(BASE, None, None, None) == BASE


def test_config_overrides_merge_onto_the_whole_definition() -> None:
    result = effective_definition(
        BASE,
        config_overrides={
            "config": {"timeout_s": 30, "legacy": None, "new": {"a": 1}},
            "risk_config": {"rules": {"geo": True}},
        },
    )
    assert result.config == {"timeout_s": 30, "new": {"a": 1}}
    assert result.risk_config == {"threshold": 0.5, "rules": {"velocity": True, "geo": True}}
    assert result.workflow_steps == BASE.workflow_steps


def test_config_overrides_top_level_null_resets_a_field() -> None:
    result = effective_definition(BASE, config_overrides={"config": None})
    assert result.config == {}


def test_risk_config_override_merges_onto_risk_config() -> None:
    result = effective_definition(
        BASE, risk_config_override={"threshold": 0.8, "rules": {"velocity": None}}
    )
    assert result.risk_config == {"threshold": 0.8, "rules": {"geo": False}}
    assert result.config == BASE.config


def test_workflow_steps_override_replaces_the_list() -> None:
    steps = [{"name": "fetch"}, {"name": "score", "model": "v2"}, {"name": "notify"}]
    result = effective_definition(BASE, workflow_steps_override=steps)
    assert result.workflow_steps == steps
    assert effective_definition(BASE, workflow_steps_override=[]).workflow_steps == []
    steps[0]["name"] = "mutated"  # the result does not alias the argument
    assert result.workflow_steps[0] == {"name": "fetch"}


def test_explicit_overrides_win_over_config_overrides() -> None:
    result = effective_definition(
        BASE,
        config_overrides={"risk_config": {"threshold": 0.1}, "workflow_steps": [{"name": "x"}]},
        workflow_steps_override=[{"name": "y"}],
        risk_config_override={"threshold": 0.9},
    )
    assert result.risk_config["threshold"] == 0.9
    assert result.workflow_steps == [{"name": "y"}]


def test_effective_definition_does_not_modify_the_base() -> None:
    before = BASE.model_dump()
    effective_definition(
        BASE,
        config_overrides={"config": {"timeout_s": 1}},
        workflow_steps_override=[{"name": "z"}],
        risk_config_override={"rules": {"geo": None}},
    )
    assert BASE.model_dump() == before


@pytest.mark.parametrize(
    "overrides",
    [{"unknown_field": 1}, {"workflow_steps": "not a list"}, {"config": [1, 2]}],
)
def test_invalid_result_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        effective_definition(BASE, config_overrides=overrides)
