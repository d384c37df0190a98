"""Kafka topics, defined once.

Every topic the platform uses is declared here with its partition count and its
configuration. Services and tests build names through :func:`topic_name` so that a
``topic_prefix`` isolates a test run from any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL_TOPICS",
    "CONFIG",
    "DEAD_LETTER",
    "EXECUTIONS",
    "EXPOSURES",
    "TopicSpec",
    "topic_name",
]


@dataclass(frozen=True)
class TopicSpec:
    """A topic's logical name, partition count and topic-level configuration."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def full_name(self, prefix: str = "") -> str:
        return topic_name(self.name, prefix)


def topic_name(name: str, prefix: str = "") -> str:
    """The physical topic name for a logical name and an optional prefix."""
    return f"{prefix}{name}" if prefix else name


EXECUTIONS = TopicSpec(
    name="abflow.executions.v1",
    partitions=6,
    config={"retention.ms": str(7 * 24 * 3600 * 1000), "min.insync.replicas": "1"},
    description="One event per finished workflow execution, keyed by execution id.",
)
EXPOSURES = TopicSpec(
    name="abflow.exposures.v1",
    partitions=6,
    config={"retention.ms": str(7 * 24 * 3600 * 1000)},
    description="One event per assignment of a unit into an experiment, keyed by unit id.",
)
CONFIG = TopicSpec(
    name="abflow.config.v1",
    partitions=1,
    config={
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "0",
        "segment.ms": str(60 * 60 * 1000),
        "min.cleanable.dirty.ratio": "0.1",
    },
    description=(
        "Compacted: the complete assignment configuration of each schema, keyed by "
        "schema id; a null value (tombstone) removes the schema."
    ),
)
DEAD_LETTER = TopicSpec(
    name="abflow.deadletter.v1",
    partitions=1,
    config={"retention.ms": str(30 * 24 * 3600 * 1000)},
    description="Events that could not be processed, with the original bytes and a reason.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (EXECUTIONS, EXPOSURES, CONFIG, DEAD_LETTER)
