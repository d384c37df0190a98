-- 0003_metrics_and_executions.sql
-- Raw executions, additive hourly metric rows written by the streaming aggregator, exposures
-- and cached version comparisons.
--
-- Convention for the two *_metrics tables: the aggregator keeps ADDITIVE sufficient statistics
-- per (entity, UTC hour, source Kafka partition) and writes the ABSOLUTE current value of the
-- window with an idempotent upsert (INSERT ... ON CONFLICT ... DO UPDATE SET col = EXCLUDED.col).
-- Replaying a partition rewrites the same values. Readers SUM over source_partition and hours.
-- Rows with source_partition = -1 are not per-partition (e.g. the day/week rollups written by
-- aggregate_version_metrics()); readers always filter on period_type so hours and rollups are
-- never added together.

-- Start of the UTC hour/day/ISO week (Monday) containing p_ts.
CREATE FUNCTION abflow_period_start(p_period_type text, p_ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT date_trunc(CASE p_period_type WHEN 'hour' THEN 'hour' WHEN 'day' THEN 'day'
                                          WHEN 'week' THEN 'week' END,
                      p_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;

COMMENT ON FUNCTION abflow_period_start(text, timestamptz) IS
'Start of the UTC hour, UTC day or ISO week (Monday 00:00 UTC) containing p_ts; NULL for another '
'period type. Metric rows must have period_start = abflow_period_start(period_type, period_start).';

CREATE FUNCTION abflow_period_end(p_period_type text, p_start timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT p_start + CASE p_period_type WHEN 'hour' THEN interval '1 hour'
                                        WHEN 'day' THEN interval '1 day'
                                        WHEN 'week' THEN interval '7 days' END
$$;

COMMENT ON FUNCTION abflow_period_end(text, timestamptz) IS
'Exclusive end of the period of the given type starting at p_start (UTC periods).';

-- ---------------------------------------------------------------------------------
-- workflow_executions
-- ---------------------------------------------------------------------------------

CREATE TABLE workflow_executions (
    execution_id      text             NOT NULL,
    schema_id         uuid             NOT NULL,
    schema_version    integer          NOT NULL,
    variant_id        uuid             NULL,
    variant_key       text             NULL,
    experiment_id     uuid             NULL,
    unit_id           text             NULL,
    success           boolean          NOT NULL,
    duration_ms       double precision NOT NULL,
    risk_score        double precision NULL,
    steps             jsonb            NOT NULL DEFAULT '[]'::jsonb,
    assignment_reason text             NULL,
    started_at        timestamptz      NOT NULL,
    completed_at      timestamptz      NOT NULL,
    ingested_at       timestamptz      NOT NULL DEFAULT now(),
    source_partition  integer          NULL,
    source_offset     bigint           NULL,
    CONSTRAINT workflow_executions_pkey PRIMARY KEY (execution_id),
    CONSTRAINT workflow_executions_id_length CHECK (char_length(execution_id) BETWEEN 1 AND 200),
    CONSTRAINT workflow_executions_schema_version_positive CHECK (schema_version >= 1),
    CONSTRAINT workflow_executions_variant_key_length CHECK (variant_key IS NULL OR char_length(variant_key) <= 100),
    CONSTRAINT workflow_executions_unit_id_length CHECK (unit_id IS NULL OR char_length(unit_id) BETWEEN 1 AND 200),
    CONSTRAINT workflow_executions_duration_check CHECK (duration_ms >= 0 AND duration_ms <= 1e10),
    CONSTRAINT workflow_executions_risk_check CHECK (risk_score IS NULL OR risk_score BETWEEN 0 AND 1),
    CONSTRAINT workflow_executions_steps_array CHECK (jsonb_typeof(steps) = 'array'),
    CONSTRAINT workflow_executions_reason_length CHECK (assignment_reason IS NULL OR char_length(assignment_reason) <= 32),
    CONSTRAINT workflow_executions_completed_after_start CHECK (completed_at >= started_at),
    CONSTRAINT workflow_executions_source_check CHECK (
        (source_partition IS NULL OR source_partition >= 0) AND (source_offset IS NULL OR source_offset >= 0))
);

COMMENT ON TABLE workflow_executions IS
'One finished execution (ExecutionEvent), inserted idempotently with ON CONFLICT (execution_id) '
'DO NOTHING. Append-only facts from the stream: ids are not foreign keys so that ingestion never '
'rejects an event for an unknown or deleted schema. Hourly windows use completed_at (UTC).';

CREATE INDEX workflow_executions_schema_completed_idx ON workflow_executions (schema_id, completed_at);
CREATE INDEX workflow_executions_experiment_variant_idx ON workflow_executions (experiment_id, variant_id)
    WHERE experiment_id IS NOT NULL;
CREATE INDEX workflow_executions_variant_completed_idx ON workflow_executions (variant_id, completed_at)
    WHERE variant_id IS NOT NULL;

-- ---------------------------------------------------------------------------------
-- version_performance_metrics
-- ---------------------------------------------------------------------------------

CREATE TABLE version_performance_metrics (
    id                    bigserial        NOT NULL,
    schema_id             uuid             NOT NULL,
    schema_version        integer          NOT NULL,
    variant_id            uuid             NULL,
    period_type           text             NOT NULL,
    period_start          timestamptz      NOT NULL,
    source_partition      integer          NOT NULL DEFAULT -1,
    total_executions      bigint           NOT NULL DEFAULT 0,
    successful_executions bigint           NOT NULL DEFAULT 0,
    failed_executions     bigint           NOT NULL DEFAULT 0,
    duration_count        bigint           NOT NULL DEFAULT 0,
    duration_sum          double precision NOT NULL DEFAULT 0,
    duration_sum_sq       double precision NOT NULL DEFAULT 0,
    duration_min          double precision NULL,
    duration_max          double precision NULL,
    risk_count            bigint           NOT NULL DEFAULT 0,
    risk_sum              double precision NOT NULL DEFAULT 0,
    risk_sum_sq           double precision NOT NULL DEFAULT 0,
    risk_min              double precision NULL,
    risk_max              double precision NULL,
    duration_sketch       bytea            NULL,
    p50_execution_time_ms double precision NULL,
    p95_execution_time_ms double precision NULL,
    p99_execution_time_ms double precision NULL,
    step_metrics          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    version               integer          NOT NULL DEFAULT 1,
    created_at            timestamptz      NOT NULL DEFAULT now(),
    updated_at            timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT version_performance_metrics_pkey PRIMARY KEY (id),
    CONSTRAINT version_performance_metrics_natural_key UNIQUE NULLS NOT DISTINCT
        (schema_id, schema_version, variant_id, period_type, period_start, source_partition),
    CONSTRAINT version_performance_metrics_schema_version_positive CHECK (schema_version >= 1),
    CONSTRAINT version_performance_metrics_period_type_check CHECK (period_type IN ('hour', 'day', 'week')),
    CONSTRAINT version_performance_metrics_period_aligned CHECK (period_start = abflow_period_start(period_type, period_start)),
    CONSTRAINT version_performance_metrics_source_partition_check CHECK (source_partition >= -1),
    CONSTRAINT version_performance_metrics_counts_check CHECK (
        total_executions >= 0 AND successful_executions >= 0 AND failed_executions >= 0
        AND successful_executions + failed_executions = total_executions
        AND duration_count BETWEEN 0 AND total_executions
        AND risk_count BETWEEN 0 AND total_executions),
    CONSTRAINT version_performance_metrics_duration_stats_check CHECK (
        duration_sum >= 0 AND duration_sum_sq >= 0
        AND (duration_min IS NULL OR duration_min >= 0)
        AND (duration_min IS NULL OR duration_max IS NULL OR duration_min <= duration_max)),
    CONSTRAINT version_performance_metrics_risk_stats_check CHECK (
        risk_sum >= 0 AND risk_sum_sq >= 0
        AND (risk_min IS NULL OR risk_min BETWEEN 0 AND 1)
        AND (risk_max IS NULL OR risk_max BETWEEN 0 AND 1)
        AND (risk_min IS NULL OR risk_max IS NULL OR risk_min <= risk_max)),
    CONSTRAINT version_performance_metrics_percentiles_check CHECK (
        (p50_execution_time_ms IS NULL OR p50_execution_time_ms >= 0)
        AND (p95_execution_time_ms IS NULL OR p95_execution_time_ms >= 0)
        AND (p99_execution_time_ms IS NULL OR p99_execution_time_ms >= 0)),
    CONSTRAINT version_performance_metrics_step_metrics_object CHECK (jsonb_typeof(step_metrics) = 'object'),
    CONSTRAINT version_performance_metrics_version_positive CHECK (version >= 1)
);

COMMENT ON TABLE version_performance_metrics IS
'Additive metrics per (schema, version, variant (NULL = base version), period, source partition). '
'Hourly rows: one per Kafka partition of the executions topic, absolute values upserted by the '
'aggregator. Day/week rows: source_partition = -1, written by aggregate_version_metrics(). '
'Readers SUM over partitions and periods of ONE period_type.';

CREATE INDEX version_performance_metrics_range_idx
    ON version_performance_metrics (schema_id, period_type, period_start);

CREATE TRIGGER zz_touch_row BEFORE UPDATE ON version_performance_metrics
    FOR EACH ROW EXECUTE FUNCTION abflow_touch_row();

-- ---------------------------------------------------------------------------------
-- experiment_variant_metrics
-- ---------------------------------------------------------------------------------

CREATE TABLE experiment_variant_metrics (
    id                    bigserial        NOT NULL,
    experiment_id         uuid             NOT NULL,
    variant_id            uuid             NOT NULL,
    period_type           text             NOT NULL,
    period_start          timestamptz      NOT NULL,
    source_partition      integer          NOT NULL DEFAULT -1,
    total_executions      bigint           NOT NULL DEFAULT 0,
    successful_executions bigint           NOT NULL DEFAULT 0,
    failed_executions     bigint           NOT NULL DEFAULT 0,
    duration_count        bigint           NOT NULL DEFAULT 0,
    duration_sum          double precision NOT NULL DEFAULT 0,
    duration_sum_sq       double precision NOT NULL DEFAULT 0,
    duration_min          double precision NULL,
    duration_max          double precision NULL,
    risk_count            bigint           NOT NULL DEFAULT 0,
    risk_sum              double precision NOT NULL DEFAULT 0,
    risk_sum_sq           double precision NOT NULL DEFAULT 0,
    risk_min              double precision NULL,
    risk_max              double precision NULL,
    duration_sketch       bytea            NULL,
    p50_execution_time_ms double precision NULL,
    p95_execution_time_ms double precision NULL,
    p99_execution_time_ms double precision NULL,
    step_metrics          jsonb            NOT NULL DEFAULT '{}'::jsonb,
    version               integer          NOT NULL DEFAULT 1,
    created_at            timestamptz      NOT NULL DEFAULT now(),
    updated_at            timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT experiment_variant_metrics_pkey PRIMARY KEY (id),
    CONSTRAINT experiment_variant_metrics_natural_key UNIQUE
        (experiment_id, variant_id, period_type, period_start, source_partition),
    CONSTRAINT experiment_variant_metrics_period_type_check CHECK (period_type IN ('hour', 'day', 'week')),
    CONSTRAINT experiment_variant_metrics_period_aligned CHECK (period_start = abflow_period_start(period_type, period_start)),
    CONSTRAINT experiment_variant_metrics_source_partition_check CHECK (source_partition >= -1),
    CONSTRAINT experiment_variant_metrics_counts_check CHECK (
        total_executions >= 0 AND successful_executions >= 0 AND failed_executions >= 0
        AND successful_executions + failed_executions = total_executions
        AND duration_count BETWEEN 0 AND total_executions
        AND risk_count BETWEEN 0 AND total_executions),
    CONSTRAINT experiment_variant_metrics_duration_stats_check CHECK (
        duration_sum >= 0 AND duration_sum_sq >= 0
        AND (duration_min IS NULL OR duration_min >= 0)
        AND (duration_min IS NULL OR duration_max IS NULL OR duration_min <= duration_max)),
    CONSTRAINT experiment_variant_metrics_risk_stats_check CHECK (
        risk_sum >= 0 AND risk_sum_sq >= 0
        AND (risk_min IS NULL OR risk_min BETWEEN 0 AND 1)
        AND (risk_max IS NULL OR risk_max BETWEEN 0 AND 1)
        AND (risk_min IS NULL OR risk_max IS NULL OR risk_min <= risk_max)),
    CONSTRAINT experiment_variant_metrics_percentiles_check CHECK (
        (p50_execution_time_ms IS NULL OR p50_execution_time_ms >= 0)
        AND (p95_execution_time_ms IS NULL OR p95_execution_time_ms >= 0)
        AND (p99_execution_time_ms IS NULL OR p99_execution_time_ms >= 0)),
    CONSTRAINT experiment_variant_metrics_step_metrics_object CHECK (jsonb_typeof(step_metrics) = 'object'),
    CONSTRAINT experiment_variant_metrics_version_positive CHECK (version >= 1)
);

COMMENT ON TABLE experiment_variant_metrics IS
'Additive metrics per (experiment, arm variant, period, source partition); same conventions as '
'version_performance_metrics. Only executions carrying this experiment_id are counted.';

CREATE INDEX experiment_variant_metrics_range_idx
    ON experiment_variant_metrics (experiment_id, period_type, period_start);

CREATE TRIGGER zz_touch_row BEFORE UPDATE ON experiment_variant_metrics
    FOR EACH ROW EXECUTE FUNCTION abflow_touch_row();

-- ---------------------------------------------------------------------------------
-- experiment_exposures
-- ---------------------------------------------------------------------------------

CREATE TABLE experiment_exposures (
    experiment_id    uuid             NOT NULL,
    unit_id          text             NOT NULL,
    variant_id       uuid             NOT NULL,
    first_exposed_at timestamptz      NOT NULL,
    bucket           double precision NOT NULL,
    recorded_at      timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT experiment_exposures_pkey PRIMARY KEY (experiment_id, unit_id),
    CONSTRAINT experiment_exposures_unit_id_length CHECK (char_length(unit_id) BETWEEN 1 AND 200),
    CONSTRAINT experiment_exposures_bucket_range CHECK (bucket >= 0 AND bucket < 1)
);

COMMENT ON TABLE experiment_exposures IS
'Distinct units exposed to an experiment (first exposure wins: INSERT ... ON CONFLICT DO NOTHING). '
'Counted per arm by v_experiment_exposure_counts for the sample-ratio-mismatch check.';

CREATE INDEX experiment_exposures_variant_idx ON experiment_exposures (experiment_id, variant_id);

-- ---------------------------------------------------------------------------------
-- version_comparisons (cache of statistical comparisons)
-- ---------------------------------------------------------------------------------

CREATE TABLE version_comparisons (
    id                    uuid             NOT NULL DEFAULT gen_random_uuid(),
    schema_id             uuid             NOT NULL,
    baseline_version      integer          NOT NULL,
    comparison_version    integer          NOT NULL,
    baseline_variant_id   uuid             NULL,
    comparison_variant_id uuid             NULL,
    period_start          timestamptz      NOT NULL,
    period_end            timestamptz      NOT NULL,
    primary_metric        text             NOT NULL,
    metrics               text[]           NOT NULL DEFAULT '{}',
    results               jsonb            NOT NULL DEFAULT '{}'::jsonb,
    primary_p_value       double precision NULL,
    primary_effect_size   double precision NULL,
    ci_low                double precision NULL,
    ci_high               double precision NULL,
    is_significant        boolean          NOT NULL DEFAULT false,
    recommendation        text             NOT NULL,
    compared_by           text             NULL,
    created_at            timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT version_comparisons_pkey PRIMARY KEY (id),
    CONSTRAINT version_comparisons_schema_fkey FOREIGN KEY (schema_id)
        REFERENCES workflow_schemas (id) ON DELETE CASCADE,
    CONSTRAINT version_comparisons_baseline_version_fkey FOREIGN KEY (schema_id, baseline_version)
        REFERENCES workflow_schema_versions (schema_id, version_number) ON DELETE CASCADE,
    CONSTRAINT version_comparisons_comparison_version_fkey FOREIGN KEY (schema_id, comparison_version)
        REFERENCES workflow_schema_versions (schema_id, version_number) ON DELETE CASCADE,
    CONSTRAINT version_comparisons_baseline_variant_fkey FOREIGN KEY (baseline_variant_id)
        REFERENCES schema_variants (id) ON DELETE CASCADE,
    CONSTRAINT version_comparisons_comparison_variant_fkey FOREIGN KEY (comparison_variant_id)
        REFERENCES schema_variants (id) ON DELETE CASCADE,
    CONSTRAINT version_comparisons_period_check CHECK (period_end > period_start),
    CONSTRAINT version_comparisons_primary_metric_check CHECK (
        primary_metric IN ('success_rate', 'execution_time', 'risk_score')),
    CONSTRAINT version_comparisons_metrics_check CHECK (
        metrics <@ ARRAY['success_rate', 'execution_time', 'risk_score']::text[]),
    CONSTRAINT version_comparisons_results_object CHECK (jsonb_typeof(results) = 'object'),
    CONSTRAINT version_comparisons_p_value_range CHECK (
        primary_p_value IS NULL OR primary_p_value BETWEEN 0 AND 1),
    CONSTRAINT version_comparisons_ci_order CHECK (ci_low IS NULL OR ci_high IS NULL OR ci_low <= ci_high),
    CONSTRAINT version_comparisons_recommendation_check CHECK (
        recommendation IN ('adopt_comparison', 'keep_baseline', 'inconclusive', 'needs_more_data'))
);

COMMENT ON TABLE version_comparisons IS
'Insert-only cache of statistical comparisons between two versions/variants of one schema over '
'[period_start, period_end). results holds the per-metric results keyed by metric name.';

CREATE INDEX version_comparisons_schema_created_idx ON version_comparisons (schema_id, created_at DESC);
