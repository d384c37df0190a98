"""Lifecycle rules of experiments and variants (pure; the database enforces them too).

Experiment: ``draft -> running <-> paused -> completed | cancelled``; a draft may be
cancelled; completed and cancelled are final. Variant: ``draft -> active <-> paused``,
any of them ``-> archived`` (final).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from shared.errors import ConflictError

__all__ = [
    "DESCRIPTIVE_FIELDS",
    "EXPERIMENT_ACTIONS",
    "VARIANT_ACTIONS",
    "Transition",
    "start_problems",
    "transition",
]

ExperimentAction = Literal["start", "pause", "resume", "complete", "cancel"]
VariantAction = Literal["activate", "pause", "archive"]


@dataclass(frozen=True, slots=True)
class Transition:
    allowed_from: frozenset[str]
    target: str


EXPERIMENT_ACTIONS: Mapping[str, Transition] = {
    "start": Transition(frozenset({"draft"}), "running"),
    "pause": Transition(frozenset({"running"}), "paused"),
    "resume": Transition(frozenset({"paused"}), "running"),
    "complete": Transition(frozenset({"running", "paused"}), "completed"),
    "cancel": Transition(frozenset({"draft", "running", "paused"}), "cancelled"),
}
VARIANT_ACTIONS: Mapping[str, Transition] = {
    "activate": Transition(frozenset({"draft", "paused"}), "active"),
    "pause": Transition(frozenset({"active"}), "paused"),
    "archive": Transition(frozenset({"draft", "active", "paused"}), "archived"),
}

# what a non-draft experiment may still change
DESCRIPTIVE_FIELDS = frozenset({"experiment_name", "description", "hypothesis"})


def transition(table: Mapping[str, Transition], action: str, current: str, *, entity: str) -> str:
    """The status after ``action``; 409 (with the current status) when not allowed."""
    rule = table[action]
    if current not in rule.allowed_from:
        raise ConflictError(
            f"cannot {action} a {current} {entity}",
            code="illegal_transition",
            current_status=current,
            requested_status=rule.target,
            allowed_from=sorted(rule.allowed_from),
        )
    return rule.target


def start_problems(schema_id: UUID, arms: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why an experiment with these arms cannot run (empty when it can).

    ``arms``: rows with ``is_control``, ``traffic_percentage``, ``variant_schema_id``
    and ``variant_status``.
    """
    problems: list[str] = []
    if len(arms) < 2:
        problems.append(f"needs at least 2 variants, has {len(arms)}")
    controls = sum(1 for a in arms if a["is_control"])
    if controls != 1:
        problems.append(f"needs exactly one control variant, has {controls}")
    total = sum((Decimal(str(a["traffic_percentage"])) for a in arms), Decimal(0))
    if total != 100:
        problems.append(f"traffic percentages must sum to 100, they sum to {total.normalize():f}")
    for a in arms:
        if a["variant_schema_id"] != schema_id:
            problems.append(f"variant {a['variant_id']} belongs to another schema")
        if a["variant_status"] == "archived":
            problems.append(f"variant {a['variant_id']} is archived")
    return problems
