-- 0009_aggregator_variant_durations.sql
-- Running duration sketch of each variant per source partition, all hours together, written
-- by the streaming aggregator in the same transaction as the hourly rows (absolute values).
-- It lets the aggregator keep schema_variants.p95_execution_time_ms current by merging at
-- most one sketch per partition, instead of every hourly sketch the variant ever had.

CREATE TABLE aggregator_variant_durations (
    variant_id       uuid        NOT NULL,
    source_partition integer     NOT NULL,
    duration_count   bigint      NOT NULL,
    duration_sketch  bytea       NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT aggregator_variant_durations_pkey PRIMARY KEY (variant_id, source_partition),
    CONSTRAINT aggregator_variant_durations_partition_nonneg CHECK (source_partition >= 0),
    CONSTRAINT aggregator_variant_durations_count_nonneg CHECK (duration_count >= 0)
);

COMMENT ON TABLE aggregator_variant_durations IS
'Merge of every hourly duration_sketch of version_performance_metrics for one variant and one '
'source partition (the aggregator''s sketch format 1, see docs/aggregator.md). Merging the rows '
'of a variant gives the sketch of all its executions: the aggregator derives '
'schema_variants.p95_execution_time_ms from it.';
