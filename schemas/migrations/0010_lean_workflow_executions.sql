-- 0010_lean_workflow_executions.sql
-- workflow_executions is written at the event rate (one row per distinct execution, binary
-- COPY by the aggregator) and read rarely: the analysis service reads only the metric tables.
-- Every secondary index costs an insertion (and its WAL) per row, so keep only those a reader
-- uses:
--   * PRIMARY KEY (execution_id): the duplicate filter of the aggregator (kept);
--   * (schema_id, completed_at): aggregate_version_metrics() percentiles and per-schema
--     inspection queries (kept);
--   * (experiment_id, variant_id): no reader (dropped);
--   * (variant_id, completed_at): only update_variant_metrics()' exact p95, a maintenance
--     function the aggregator does not call (it keeps p95 from its sketches); that query now
--     scans the table (dropped).

DROP INDEX IF EXISTS workflow_executions_experiment_variant_idx;
DROP INDEX IF EXISTS workflow_executions_variant_completed_idx;

COMMENT ON INDEX workflow_executions_schema_completed_idx IS
'The only secondary index of workflow_executions (see migration 0010): per-schema reads and the '
'percentiles of aggregate_version_metrics().';
