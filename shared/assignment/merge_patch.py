"""JSON Merge Patch (RFC 7396) and the effective definition of a schema variant."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from shared.events import SchemaDefinition

__all__ = ["effective_definition", "merge_patch"]


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply the JSON Merge Patch ``patch`` to ``target`` (RFC 7396, section 2).

    Pure: neither argument is mutated and the result shares no mutable value with
    them. A patch that is an object is merged member by member (a ``None``/null member
    removes the key, a non-object target is first replaced by ``{}``); any other patch
    (array, string, number, boolean, null) replaces the target as a whole.
    """
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = (
        {k: copy.deepcopy(v) for k, v in target.items()} if isinstance(target, Mapping) else {}
    )
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def effective_definition(
    base: SchemaDefinition,
    config_overrides: Mapping[str, Any] | None = None,
    workflow_steps_override: Sequence[Mapping[str, Any]] | None = None,
    risk_config_override: Mapping[str, Any] | None = None,
) -> SchemaDefinition:
    """The definition a variant runs: its base version's definition with its overrides.

    The rules, applied in this order to the base definition as a JSON object
    ``{"workflow_steps": [...], "risk_config": {...}, "config": {...}}``:

    1. ``config_overrides`` (when not None) is a JSON Merge Patch (RFC 7396) on that
       whole object, e.g. ``{"config": {"timeout_s": 30, "legacy": None}}`` sets one key
       of ``config`` and removes another; a top-level null resets that field to its
       empty default.
    2. ``risk_config_override`` (when not None) is a JSON Merge Patch on ``risk_config``.
    3. ``workflow_steps_override`` (when not None, even if empty) *replaces*
       ``workflow_steps`` as a whole: steps are an ordered list, which a merge patch
       cannot edit piecewise anyway.

    Later steps win over earlier ones. The base is not modified. The result is
    validated as a :class:`SchemaDefinition`, so an unknown top-level key or a value of
    the wrong type raises ``pydantic.ValidationError`` (a ``ValueError``).
    """
    doc: Any = base.model_dump(mode="json")
    if config_overrides is not None:
        doc = merge_patch(doc, config_overrides)
    if risk_config_override is not None:
        doc = dict(doc)
        doc["risk_config"] = merge_patch(doc.get("risk_config"), risk_config_override)
    if workflow_steps_override is not None:
        doc = dict(doc)
        doc["workflow_steps"] = copy.deepcopy(list(workflow_steps_override))
    return SchemaDefinition.model_validate(doc)
