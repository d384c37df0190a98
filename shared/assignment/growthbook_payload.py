"""Export assignment configs as a GrowthBook SDK payload.

Any official GrowthBook SDK loaded with this payload and the attribute
``{"id": unit_id}`` evaluates feature ``schema_key`` to the same assignment as
:func:`~shared.assignment.decision.decide` (checked against the Python SDK in the unit
tests):

* one feature per schema, keyed by ``schema_key``, whose ``defaultValue`` is
  :data:`BASE_VALUE` (``"__base__"``, the schema's base version; so no variant may be
  keyed ``"__base__"``);
* when an experiment runs, a first rule that is a GrowthBook experiment: ``key`` =
  ``experiment_key``, ``seed`` (the experiment's, or its key when empty),
  ``hashVersion`` 2, ``hashAttribute`` ``"id"``, ``coverage``, ``weights`` and
  ``variations`` = the arms' variant keys, with ``meta`` (one ``{"key", "name"}`` per
  arm) and ``name``; value = the arm's variant key, ``inExperiment`` True;
* then one force rule per allocated active variant of the rollout, with ``range`` =
  its rollout range, ``seed`` = :func:`~shared.assignment.decision.rollout_seed` and
  ``hashVersion`` 2; value = the variant key, ``inExperiment`` False (source
  ``"force"``);
* otherwise the default value (source ``"defaultValue"``).

A request without a unit id is not expressible (the SDK then always serves the
default); ``decide`` draws at random instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from shared.events import AssignmentConfig

from .decision import CompiledSchema, rollout_seed

__all__ = ["BASE_VALUE", "sdk_feature", "sdk_features", "sdk_payload"]

BASE_VALUE: Final = "__base__"


def sdk_feature(cfg: AssignmentConfig) -> dict[str, Any]:
    """The GrowthBook feature definition of one schema."""
    compiled = CompiledSchema.from_config(cfg)
    names = {v.variant_id: v.variant_name for v in cfg.variants}
    rules: list[dict[str, Any]] = []
    exp = cfg.experiment
    if exp is not None:
        rules.append(
            {
                "id": f"experiment:{exp.experiment_id}",
                "key": exp.experiment_key,
                "name": exp.experiment_key,
                "seed": exp.seed or exp.experiment_key,
                "hashVersion": 2,
                "hashAttribute": "id",
                "coverage": exp.coverage,
                "weights": [arm.weight for arm in exp.arms],
                "variations": [arm.variant_key for arm in exp.arms],
                "meta": [
                    {"key": arm.variant_key, "name": names.get(arm.variant_id) or arm.variant_key}
                    for arm in exp.arms
                ],
            }
        )
    if compiled.rollout_ranges:
        seed = rollout_seed(cfg.schema_key)
        allocated = (v for v in cfg.variants if v.status == "active" and v.traffic_allocation > 0)
        for v, (start, end) in zip(allocated, compiled.rollout_ranges, strict=False):
            rules.append(
                {
                    "id": f"rollout:{v.variant_id}",
                    "force": v.variant_key,
                    "seed": seed,
                    "hashVersion": 2,
                    "hashAttribute": "id",
                    "range": [start, end],
                }
            )
    return {"defaultValue": BASE_VALUE, "rules": rules}


def sdk_features(configs: Iterable[AssignmentConfig]) -> dict[str, Any]:
    """The ``features`` map, for ``growthbook.GrowthBook(features=...)``."""
    return {cfg.schema_key: sdk_feature(cfg) for cfg in configs}


def sdk_payload(configs: Iterable[AssignmentConfig]) -> dict[str, Any]:
    """A full SDK payload ``{"features": {...}, "dateUpdated": ...}``, as served by a
    GrowthBook SDK endpoint (``GrowthBook.set_payload`` accepts it)."""
    cfgs = list(configs)
    payload: dict[str, Any] = {"features": sdk_features(cfgs)}
    if cfgs:
        payload["dateUpdated"] = max(c.published_at for c in cfgs).isoformat()
    return payload
