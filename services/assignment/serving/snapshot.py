"""The in-memory snapshot of every schema's assignment config.

One :class:`SchemaEntry` per schema holds the :class:`~shared.assignment.CompiledSchema`
and, filled lazily per outcome, the pre-serialised parts of its JSON answers
(:class:`Rendered`): a response is the outcome's ``prefix`` + the bucket + its
``suffix``, so no model is built or validated per request and each effective config is
serialised once per revision.

Rules (the compacted config topic's contract, see :class:`shared.events.AssignmentConfig`):
a config is applied only when its ``revision`` is newer than the one held for its
schema; a tombstone removes the schema whatever its revision. A request names a schema
by id (any UUID spelling) or by ``schema_key``.

Everything here runs on the event loop thread: entries are replaced whole, never
mutated in a way a request could observe half-done.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal
from uuid import UUID

import orjson

from shared.assignment import BASE_VALUE, CompiledSchema, Decision, sdk_payload
from shared.events import EXPOSURE_EVENT_VERSION, AssignmentConfig, SchemaDefinition

from .metrics import ServingMetrics

__all__ = ["ApplyOutcome", "Rendered", "SchemaEntry", "Snapshot", "bucket_json", "decision_dict"]

log = logging.getLogger(__name__)

ApplyOutcome = Literal["applied", "stale", "removed", "unknown"]

_NULL: Final = b"null"


def bucket_json(bucket: float | None) -> bytes:
    """The JSON text of a bucket (``repr`` of a finite float is valid JSON)."""
    return _NULL if bucket is None else repr(bucket).encode()


def decision_dict(
    entry: SchemaEntry, decision: Decision, definition: Any | None = None
) -> dict[str, Any]:
    """The response object of one decision, field by field (the reference that the
    pre-serialised parts reproduce; used for building them and by tests)."""
    d = decision
    return {
        "schema_id": str(d.schema_id),
        "schema_key": entry.schema_key,
        "revision": entry.revision,
        "schema_version": d.schema_version,
        "variant_id": None if d.variant_id is None else str(d.variant_id),
        "variant_key": d.variant_key,
        "experiment_id": None if d.experiment_id is None else str(d.experiment_id),
        "experiment_key": d.experiment_key,
        "in_experiment": d.in_experiment,
        "bucket": d.bucket,
        "reason": d.reason,
        "effective_config": (
            d.definition.model_dump(mode="json") if definition is None else definition
        ),
    }


@dataclass(frozen=True, slots=True, eq=False)
class Rendered:
    """Everything about one outcome of a schema except the bucket and the unit.

    ``prefix + bucket_json(bucket) + suffix`` is the response body. ``exposure_prefix``
    starts the exposure event's JSON up to its ``unit_id`` (None unless the outcome is
    in an experiment). ``count`` increments the assignments counter of its labels.
    """

    prefix: bytes
    suffix: bytes
    exposure_prefix: bytes | None
    count: Callable[..., None]  # a bound ``Counter.labels(...).inc``


class SchemaEntry:
    """One schema of the snapshot: its compiled tables and rendered outcomes."""

    __slots__ = (
        "_definitions",
        "_metrics",
        "_replica",
        "compiled",
        "config",
        "rendered",
        "revision",
        "schema_id",
        "schema_key",
    )

    def __init__(
        self, cfg: AssignmentConfig, replica: str, metrics: ServingMetrics | None = None
    ) -> None:
        self.config = cfg
        self.compiled = CompiledSchema.from_config(cfg)
        self.schema_id = cfg.schema_id
        self.schema_key = cfg.schema_key
        self.revision = cfg.revision
        self._replica = replica
        self._metrics = metrics
        self._definitions: dict[int, bytes] = {}
        # (reason, variant_id, variant_key) -> Rendered; within one schema these fix every
        # other field of a decision but the bucket.
        self.rendered: dict[tuple[str, UUID | None, str | None], Rendered] = {}

    def render(self, d: Decision) -> Rendered:
        """The rendered outcome of ``d`` (built on first use)."""
        key = (d.reason, d.variant_id, d.variant_key)
        r = self.rendered.get(key)
        if r is None:
            r = self.rendered[key] = self._build(d)
        return r

    def _definition_json(self, definition: SchemaDefinition) -> bytes:
        raw = self._definitions.get(id(definition))
        if raw is None:
            raw = orjson.dumps(definition.model_dump(mode="json"))
            self._definitions[id(definition)] = raw
        return raw

    def _build(self, d: Decision) -> Rendered:
        definition = self._definition_json(d.definition)
        full = decision_dict(self, d, definition={})  # the definition is spliced in raw
        keys = list(full)
        cut = keys.index("bucket")
        head = {k: full[k] for k in keys[:cut]}
        tail = {k: full[k] for k in keys[cut + 1 : -1]}  # without effective_config
        prefix = orjson.dumps(head)[:-1] + b',"bucket":'
        suffix = b"," + orjson.dumps(tail)[1:-1] + b',"effective_config":' + definition + b"}"
        exposure_prefix: bytes | None = None
        if d.in_experiment and d.experiment_id is not None and d.variant_id is not None:
            event = {
                "event_version": EXPOSURE_EVENT_VERSION,
                "experiment_id": str(d.experiment_id),
                "experiment_key": d.experiment_key,
                "variant_id": str(d.variant_id),
                "variant_key": d.variant_key,
                "schema_id": str(d.schema_id),
                "replica": self._replica,
            }
            exposure_prefix = orjson.dumps(event)[:-1] + b',"unit_id":'
        count: Callable[..., None]
        if self._metrics is not None:
            count = self._metrics.assignments.labels(
                self.schema_key,
                d.experiment_key or "",
                d.variant_key if d.variant_key is not None else BASE_VALUE,
                d.reason,
            ).inc
        else:
            count = _noop
        return Rendered(prefix, suffix, exposure_prefix, count)


def _noop(amount: float = 1) -> None:
    return None


class Snapshot:
    """Every schema's entry, by id and by key."""

    def __init__(self, replica: str = "", metrics: ServingMetrics | None = None) -> None:
        self._replica = replica
        self._metrics = metrics
        self.by_id: dict[UUID, SchemaEntry] = {}
        self._index: dict[str, SchemaEntry] = {}
        self.version = 0  # bumped on every change
        self._payload: tuple[int, bytes, str] | None = None

    def __len__(self) -> int:
        return len(self.by_id)

    def __iter__(self) -> Iterator[SchemaEntry]:
        return iter(list(self.by_id.values()))

    def get(self, ref: str) -> SchemaEntry | None:
        """The schema named by ``ref``: its id (canonical or any UUID spelling) or key."""
        entry = self._index.get(ref)
        if entry is not None:
            return entry
        if 32 <= len(ref) <= 45:
            try:
                schema_id = UUID(ref)
            except ValueError:
                return None
            return self.by_id.get(schema_id)
        return None

    def revision_of(self, schema_id: UUID) -> int | None:
        entry = self.by_id.get(schema_id)
        return None if entry is None else entry.revision

    def apply(self, cfg: AssignmentConfig) -> ApplyOutcome:
        """Install ``cfg`` when its revision is newer than the one held."""
        old = self.by_id.get(cfg.schema_id)
        if old is not None and cfg.revision <= old.revision:
            return "stale"
        entry = SchemaEntry(cfg, self._replica, self._metrics)  # compiles; may raise
        self.by_id[cfg.schema_id] = entry
        if old is not None:
            self._unindex(old)
        self._index[str(cfg.schema_id)] = entry
        holder = self._index.get(cfg.schema_key)
        if holder is not None and holder.schema_id != cfg.schema_id:
            log.warning(
                "schema key %r now names schema %s (was %s)",
                cfg.schema_key,
                cfg.schema_id,
                holder.schema_id,
            )
        self._index[cfg.schema_key] = entry
        self._changed()
        if self._metrics is not None:
            if old is not None and old.schema_key != cfg.schema_key:
                self._forget_revision(old.schema_key)
            self._metrics.snapshot_revision.labels(cfg.schema_key).set(cfg.revision)
        return "applied"

    def remove(self, schema_id: UUID) -> ApplyOutcome:
        """Drop a schema (a tombstone)."""
        old = self.by_id.pop(schema_id, None)
        if old is None:
            return "unknown"
        self._unindex(old)
        self._changed()
        if self._metrics is not None:
            self._forget_revision(old.schema_key)
        return "removed"

    def _unindex(self, old: SchemaEntry) -> None:
        if self._index.get(str(old.schema_id)) is old:
            del self._index[str(old.schema_id)]
        if self._index.get(old.schema_key) is old:
            del self._index[old.schema_key]
            # another schema may still carry that key: it names that one now
            for other in self.by_id.values():
                if other.schema_key == old.schema_key and other is not old:
                    self._index[old.schema_key] = other
                    break

    def _forget_revision(self, schema_key: str) -> None:
        assert self._metrics is not None
        if any(e.schema_key == schema_key for e in self.by_id.values()):
            return
        with contextlib.suppress(KeyError):
            self._metrics.snapshot_revision.remove(schema_key)

    def _changed(self) -> None:
        self.version += 1
        self._payload = None

    def configs(self) -> list[AssignmentConfig]:
        return [e.config for e in self.by_id.values()]

    def sdk_payload(self) -> tuple[bytes, str]:
        """The GrowthBook SDK payload of every schema (JSON) and its ETag; cached until
        the snapshot changes."""
        cached = self._payload
        if cached is not None and cached[0] == self.version:
            return cached[1], cached[2]
        configs = sorted(self.configs(), key=lambda c: c.schema_key)
        body = orjson.dumps(sdk_payload(configs))
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self._payload = (self.version, body, etag)
        return body, etag
