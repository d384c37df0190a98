"""The per-request assignment decision: a compiled, immutable table per schema.

:meth:`CompiledSchema.from_config` turns one :class:`~shared.events.AssignmentConfig`
into lookup tables once (when the config arrives); :func:`decide` then only hashes the
unit id and scans a handful of ranges. Nothing is merged or validated per request.

Selection order for a request with a unit id:

a. **experiment**: the schema's running experiment, when the unit's bucket
   (GrowthBook hash v2 of the unit id with the experiment's ``seed``, or its
   ``experiment_key`` when the seed is empty, as GrowthBook does) falls in an arm's
   coverage range (:func:`~shared.assignment.ranges.bucket_ranges`): that arm's
   variant, ``in_experiment=True``.
b. **rollout**: otherwise the schema's *active* variants (``status == "active"``) by
   ``traffic_allocation``: hash v2 of the unit id with the seed
   :func:`rollout_seed` (``f"{schema_key}:rollout"``, independent of any experiment)
   and contiguous ranges of ``traffic_allocation / 100`` laid out in ``cfg.variants``
   order from 0; a bucket beyond the last range lands on the base version. Allocations
   summing to more than 100 are truncated at 1.0 (the later variants lose the excess).
   Ranges only stay put when variants are appended, so the control plane should keep
   the list in creation order.
c. **default**: otherwise the schema's base version.

A request without a unit id (``None`` or ``""``, which GrowthBook also treats as
missing) gets a weighted random choice drawn from ``rng.random()``: among the
experiment arms by weight when an experiment runs (coverage is not applied), else
among the rollout shares (the remainder on the base version); reason ``"random"``,
``bucket=None`` and ``in_experiment=False`` (no exposure can be recorded without a
unit id; ``experiment_id``/``experiment_key`` still say which experiment's arm was
drawn). When there is nothing to draw (no experiment, no allocated rollout) the
answer is the base version with reason ``"default"`` and ``rng`` is not used.

An experiment arm references its variant by ``variant_id``; when that variant is not
in ``cfg.variants`` (e.g. it was paused) the arm runs the schema's base definition
and base version but keeps the arm's ``variant_id``/``variant_key``, so the
assignment itself never changes with a variant's status. A variant that is listed
but not active is still used by the experiment arms that reference it.

``Decision.bucket`` is the last hash value computed on the way to the decision: the
experiment bucket for ``"experiment"``, the rollout bucket for ``"rollout"``, and for
``"default"`` the rollout bucket when a rollout was evaluated, else the experiment
bucket when only an experiment was, else ``None``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final, Literal, Protocol
from uuid import UUID

from shared.events import AssignmentConfig, SchemaDefinition, VariantConfig

from .hashing import make_hasher_v2
from .ranges import bucket_ranges

__all__ = [
    "CompiledSchema",
    "Decision",
    "Reason",
    "SupportsRandom",
    "decide",
    "rollout_seed",
]

Reason = Literal["experiment", "rollout", "default", "random"]


class SupportsRandom(Protocol):
    """Anything with ``random() -> float`` in [0, 1), e.g. :class:`random.Random`."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`decide` for one request.

    ``variant_id``/``variant_key`` are None for the base version; ``schema_version`` is
    the variant's ``base_version`` or the schema's; ``definition`` is the precomputed
    effective definition (shared, never copied: treat it as read-only). Equality and
    hashing ignore ``definition``.
    """

    schema_id: UUID
    schema_version: int
    variant_id: UUID | None
    variant_key: str | None
    experiment_id: UUID | None
    experiment_key: str | None
    in_experiment: bool
    bucket: float | None
    reason: Reason
    definition: SchemaDefinition = field(compare=False, repr=False)


_new = object.__new__
# The slots' member descriptors: setting them directly skips the frozen __setattr__
# guard and the generated __init__, which is about twice as fast on the hot path.
_SLOT_SETTERS: Final[tuple[Any, ...]] = tuple(
    getattr(Decision, f.name).__set__ for f in fields(Decision)
)


def _bucket_maker(template: Decision) -> Callable[[float], Decision]:
    """A fast constructor of ``template`` with another ``bucket``."""
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = _SLOT_SETTERS
    schema_id = template.schema_id
    schema_version = template.schema_version
    variant_id = template.variant_id
    variant_key = template.variant_key
    experiment_id = template.experiment_id
    experiment_key = template.experiment_key
    in_experiment = template.in_experiment
    reason = template.reason
    definition = template.definition

    def make(bucket: float) -> Decision:
        d: Decision = _new(Decision)
        s0(d, schema_id)
        s1(d, schema_version)
        s2(d, variant_id)
        s3(d, variant_key)
        s4(d, experiment_id)
        s5(d, experiment_key)
        s6(d, in_experiment)
        s7(d, bucket)
        s8(d, reason)
        s9(d, definition)
        return d

    return make


def rollout_seed(schema_key: str) -> str:
    """The hash seed of a schema's variant rollout: ``f"{schema_key}:rollout"``."""
    return f"{schema_key}:rollout"


_Table = tuple[tuple[float, float, Callable[[float], Decision]], ...]

_DEFAULT_RNG: Final = random.Random()


@dataclass(frozen=True, slots=True, eq=False)
class CompiledSchema:
    """Immutable decision tables of one schema, built by :meth:`from_config`.

    The fields after ``config`` are internal lookup tables of :func:`decide`.
    """

    config: AssignmentConfig
    experiment_hash: Callable[[str], float] | None
    experiment_table: _Table
    rollout_hash: Callable[[str], float] | None
    rollout_table: _Table
    make_default: Callable[[float], Decision]
    static_default: Decision
    random_table: tuple[tuple[float, Decision], ...]
    experiment_ranges: tuple[tuple[float, float], ...] = ()
    rollout_ranges: tuple[tuple[float, float], ...] = ()

    @property
    def schema_id(self) -> UUID:
        return self.config.schema_id

    @property
    def schema_key(self) -> str:
        return self.config.schema_key

    @property
    def revision(self) -> int:
        return self.config.revision

    @classmethod
    def from_config(cls, cfg: AssignmentConfig) -> CompiledSchema:
        """Compile ``cfg`` (see the module docstring for the rules)."""
        schema_id = cfg.schema_id
        by_id: dict[UUID, VariantConfig] = {v.variant_id: v for v in cfg.variants}

        def template(
            variant: VariantConfig | None,
            variant_id: UUID | None,
            variant_key: str | None,
            reason: Reason,
            *,
            in_experiment: bool = False,
            experiment_id: UUID | None = None,
            experiment_key: str | None = None,
        ) -> Decision:
            return Decision(
                schema_id=schema_id,
                schema_version=cfg.base_version if variant is None else variant.base_version,
                variant_id=variant_id,
                variant_key=variant_key,
                experiment_id=experiment_id,
                experiment_key=experiment_key,
                in_experiment=in_experiment,
                bucket=None,
                reason=reason,
                definition=(
                    cfg.base_definition if variant is None else variant.effective_definition
                ),
            )

        default = template(None, None, None, "default")
        random_table: list[tuple[float, Decision]] = []

        # (a) the running experiment
        exp = cfg.experiment
        experiment_hash: Callable[[str], float] | None = None
        experiment_table: list[tuple[float, float, Callable[[float], Decision]]] = []
        experiment_ranges: tuple[tuple[float, float], ...] = ()
        if exp is not None:
            experiment_hash = make_hasher_v2(exp.seed or exp.experiment_key)
            weights = [arm.weight for arm in exp.arms]
            experiment_ranges = bucket_ranges(len(exp.arms), exp.coverage, weights)
            cumulative = 0.0
            for arm, (start, end) in zip(exp.arms, experiment_ranges, strict=True):
                arm_template = template(
                    by_id.get(arm.variant_id),
                    arm.variant_id,
                    arm.variant_key,
                    "experiment",
                    in_experiment=True,
                    experiment_id=exp.experiment_id,
                    experiment_key=exp.experiment_key,
                )
                if end > start:
                    experiment_table.append((start, end, _bucket_maker(arm_template)))
                if arm.weight > 0:
                    cumulative += arm.weight
                    random_table.append(
                        (cumulative, replace(arm_template, in_experiment=False, reason="random"))
                    )

        # (b) the rollout of active variants
        rollout_table: list[tuple[float, float, Callable[[float], Decision]]] = []
        rollout_ranges: list[tuple[float, float]] = []
        rollout_random: list[tuple[float, Decision]] = []
        cumulative = 0.0
        for v in cfg.variants:
            if v.status != "active" or v.traffic_allocation <= 0 or cumulative >= 1.0:
                continue
            start = cumulative
            cumulative = min(start + v.traffic_allocation / 100, 1.0)
            rollout_ranges.append((start, cumulative))
            rollout_table.append(
                (
                    start,
                    cumulative,
                    _bucket_maker(template(v, v.variant_id, v.variant_key, "rollout")),
                )
            )
            rollout_random.append((cumulative, template(v, v.variant_id, v.variant_key, "random")))
        rollout_hash = make_hasher_v2(rollout_seed(cfg.schema_key)) if rollout_table else None
        if exp is None and rollout_random:
            random_table = rollout_random
            if cumulative < 1.0:
                random_table.append((2.0, template(None, None, None, "random")))

        return cls(
            config=cfg,
            experiment_hash=experiment_hash,
            experiment_table=tuple(experiment_table),
            rollout_hash=rollout_hash,
            rollout_table=tuple(rollout_table),
            make_default=_bucket_maker(default),
            static_default=default,
            random_table=tuple(random_table),
            experiment_ranges=experiment_ranges,
            rollout_ranges=tuple(rollout_ranges),
        )


def decide(
    compiled: CompiledSchema, unit_id: str | None, rng: SupportsRandom = _DEFAULT_RNG
) -> Decision:
    """Assign one request of ``compiled``'s schema (see the module docstring).

    Deterministic for a unit id; ``rng`` is only drawn from without one.
    """
    if not unit_id:
        table = compiled.random_table
        if not table:
            return compiled.static_default
        r = rng.random()
        for threshold, decision in table:
            if r < threshold:
                return decision
        return table[-1][1]  # r at the very top of a cumulative sum that rounded down

    exp_hash = compiled.experiment_hash
    if exp_hash is not None:
        bucket = exp_hash(unit_id)
        for start, end, make in compiled.experiment_table:
            if start <= bucket < end:
                return make(bucket)
        roll_hash = compiled.rollout_hash
        if roll_hash is None:
            return compiled.make_default(bucket)
    else:
        roll_hash = compiled.rollout_hash
        if roll_hash is None:
            return compiled.static_default
    bucket = roll_hash(unit_id)
    for start, end, make in compiled.rollout_table:
        if start <= bucket < end:
            return make(bucket)
    return compiled.make_default(bucket)
