-- 0007_aggregator_offsets.sql
-- Progress of the streaming aggregator per source Kafka partition. PostgreSQL, not Kafka, is the
-- source of truth for what the aggregator has applied: every flush writes the absolute hourly
-- metric rows of a partition AND its next offset in ONE transaction, so a crash, restart or
-- rebalance resumes exactly after the last committed event (no loss, no double count).

CREATE TABLE aggregator_offsets (
    consumer_group   text        NOT NULL,
    topic            text        NOT NULL,
    partition        integer     NOT NULL,
    next_offset      bigint      NOT NULL,
    watermark        timestamptz NULL,
    events_counted   bigint      NOT NULL DEFAULT 0,
    duplicates       bigint      NOT NULL DEFAULT 0,
    dead_lettered    bigint      NOT NULL DEFAULT 0,
    writer           text        NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT aggregator_offsets_pkey PRIMARY KEY (consumer_group, topic, partition),
    CONSTRAINT aggregator_offsets_partition_nonneg CHECK (partition >= 0),
    CONSTRAINT aggregator_offsets_next_offset_nonneg CHECK (next_offset >= 0),
    CONSTRAINT aggregator_offsets_counters_nonneg CHECK (
        events_counted >= 0 AND duplicates >= 0 AND dead_lettered >= 0)
);

COMMENT ON TABLE aggregator_offsets IS
'Streaming aggregator progress per (consumer group, source topic, partition): next_offset = the '
'offset of the first record NOT yet applied to the hourly metric rows of that source_partition; '
'watermark = the largest completed_at applied from the partition (event time; events older than '
'watermark minus the allowed lateness are dead-lettered as too_late). Written in the same '
'transaction as the metric rows, guarded by compare-and-set on next_offset, so a stale worker '
'(e.g. after a rebalance) can never overwrite newer progress. events_counted / duplicates / '
'dead_lettered are running totals of distinct executions counted, duplicate deliveries skipped and '
'records sent to the dead-letter topic. writer = the worker that committed last (diagnostics).';

-- The aggregator refreshes the cached metrics of schema_variants from the hourly rows of the
-- variants it touched; without this index every refresh would scan the whole table.
CREATE INDEX aggregator_version_metrics_variant_idx
    ON version_performance_metrics (variant_id, period_type)
    WHERE variant_id IS NOT NULL;

-- Write path of the hourly metric rows. The aggregator rewrites thousands of rows per second
-- (absolute values, every flush). Two changes keep that cheap without changing what readers
-- see:
-- 1. the generic optimistic-concurrency trigger (zz_touch_row: compares to_jsonb of the old
--    and new row, sketch included) is skipped for the aggregator's own transactions, which
--    run SET LOCAL abflow.writer = 'aggregator' and set version = version + 1 and
--    updated_at = now() themselves; every other writer (e.g. aggregate_version_metrics())
--    keeps the trigger exactly as before;
-- 2. fillfactor 80 leaves room on each page for HOT updates (the indexed key columns never
--    change), so rewriting a row does not touch the indexes.
DROP TRIGGER zz_touch_row ON version_performance_metrics;
CREATE TRIGGER zz_touch_row BEFORE UPDATE ON version_performance_metrics
    FOR EACH ROW WHEN (current_setting('abflow.writer', true) IS DISTINCT FROM 'aggregator')
    EXECUTE FUNCTION abflow_touch_row();

DROP TRIGGER zz_touch_row ON experiment_variant_metrics;
CREATE TRIGGER zz_touch_row BEFORE UPDATE ON experiment_variant_metrics
    FOR EACH ROW WHEN (current_setting('abflow.writer', true) IS DISTINCT FROM 'aggregator')
    EXECUTE FUNCTION abflow_touch_row();

ALTER TABLE version_performance_metrics SET (fillfactor = 80);
ALTER TABLE experiment_variant_metrics SET (fillfactor = 80);
