-- 0006_views.sql
-- Read models for dashboards. All metric views read the HOURLY rows only, summed over source
-- partitions, so day/week rollups are never double counted.

-- ---------------------------------------------------------------------------------
-- v_schema_performance_summary
-- ---------------------------------------------------------------------------------

CREATE VIEW v_schema_performance_summary AS
SELECT s.id                                   AS schema_id,
       s.key                                  AS schema_key,
       s.name                                 AS schema_name,
       s.deliverable_type,
       s.status,
       s.current_version,
       s.config_revision,
       coalesce(av.active_variant_count, 0)   AS active_variant_count,
       coalesce(re.running_experiment_count, 0) AS running_experiment_count,
       coalesce(m.total_executions, 0)        AS total_executions,
       coalesce(m.successful_executions, 0)   AS successful_executions,
       coalesce(m.failed_executions, 0)       AS failed_executions,
       CASE WHEN m.total_executions > 0
            THEN m.successful_executions::double precision / m.total_executions END AS success_rate,
       CASE WHEN m.duration_count > 0
            THEN m.duration_sum / m.duration_count END                                AS avg_execution_time_ms,
       CASE WHEN m.risk_count > 0
            THEN m.risk_sum / m.risk_count END                                        AS avg_risk_score,
       m.first_period_start,
       m.last_period_start
  FROM workflow_schemas s
  LEFT JOIN (SELECT v.schema_id, count(*)::bigint AS active_variant_count
               FROM schema_variants v WHERE v.status = 'active'
              GROUP BY v.schema_id) av ON av.schema_id = s.id
  LEFT JOIN (SELECT e.schema_id, count(*)::bigint AS running_experiment_count
               FROM experiments e WHERE e.status = 'running'
              GROUP BY e.schema_id) re ON re.schema_id = s.id
  LEFT JOIN (SELECT h.schema_id,
                    sum(h.total_executions)::bigint      AS total_executions,
                    sum(h.successful_executions)::bigint AS successful_executions,
                    sum(h.failed_executions)::bigint     AS failed_executions,
                    sum(h.duration_count)::bigint        AS duration_count,
                    sum(h.duration_sum)                  AS duration_sum,
                    sum(h.risk_count)::bigint            AS risk_count,
                    sum(h.risk_sum)                      AS risk_sum,
                    min(h.period_start)                  AS first_period_start,
                    max(h.period_start)                  AS last_period_start
               FROM version_performance_metrics h
              WHERE h.period_type = 'hour'
              GROUP BY h.schema_id) m ON m.schema_id = s.id;

COMMENT ON VIEW v_schema_performance_summary IS
'One row per schema: identity, current_version, number of active variants and running experiments, '
'and execution totals / success rate / mean duration / mean risk over all hourly '
'version_performance_metrics rows (every version and variant, all partitions).';

-- ---------------------------------------------------------------------------------
-- v_version_performance
-- ---------------------------------------------------------------------------------

CREATE VIEW v_version_performance AS
SELECT m.schema_id,
       s.key                AS schema_key,
       m.schema_version,
       m.variant_id,
       v.variant_key,
       m.total_executions,
       m.successful_executions,
       m.failed_executions,
       CASE WHEN m.total_executions > 0
            THEN m.successful_executions::double precision / m.total_executions END AS success_rate,
       CASE WHEN m.duration_count > 0 THEN m.duration_sum / m.duration_count END      AS avg_execution_time_ms,
       CASE WHEN m.duration_count > 1
            THEN sqrt(greatest(0::double precision,
                 (m.duration_sum_sq - m.duration_sum * m.duration_sum / m.duration_count)
                 / (m.duration_count - 1))) END                                       AS stddev_execution_time_ms,
       m.min_execution_time_ms,
       m.max_execution_time_ms,
       CASE WHEN m.risk_count > 0 THEN m.risk_sum / m.risk_count END                  AS avg_risk_score,
       m.first_period_start,
       m.last_period_start
  FROM (SELECT h.schema_id, h.schema_version, h.variant_id,
               sum(h.total_executions)::bigint      AS total_executions,
               sum(h.successful_executions)::bigint AS successful_executions,
               sum(h.failed_executions)::bigint     AS failed_executions,
               sum(h.duration_count)::double precision AS duration_count,
               sum(h.duration_sum)                  AS duration_sum,
               sum(h.duration_sum_sq)               AS duration_sum_sq,
               min(h.duration_min)                  AS min_execution_time_ms,
               max(h.duration_max)                  AS max_execution_time_ms,
               sum(h.risk_count)::double precision  AS risk_count,
               sum(h.risk_sum)                      AS risk_sum,
               min(h.period_start)                  AS first_period_start,
               max(h.period_start)                  AS last_period_start
          FROM version_performance_metrics h
         WHERE h.period_type = 'hour'
         GROUP BY h.schema_id, h.schema_version, h.variant_id) m
  LEFT JOIN workflow_schemas s ON s.id = m.schema_id
  LEFT JOIN schema_variants v ON v.id = m.variant_id;

COMMENT ON VIEW v_version_performance IS
'One row per (schema, version, variant; variant_id NULL = base version) that has hourly metrics: '
'totals, success rate, mean / sample stddev / min / max duration, mean risk, and the first and last '
'hour with data. Filter by schema_id.';

-- ---------------------------------------------------------------------------------
-- v_experiment_status
-- ---------------------------------------------------------------------------------

CREATE VIEW v_experiment_status AS
SELECT e.id                 AS experiment_id,
       e.experiment_key,
       e.experiment_name,
       e.status,
       e.schema_id,
       s.key                AS schema_key,
       e.primary_metric,
       e.min_sample_size,
       coalesce(arms.variant_count, 0)      AS variant_count,
       coalesce(tot.total_executions, 0)    AS total_executions,
       arms.min_arm_sample_size,
       CASE WHEN coalesce(arms.variant_count, 0) = 0 THEN 0::double precision
            ELSE least(100::double precision,
                       100 * arms.min_arm_sample_size::double precision / e.min_sample_size) END
                                            AS progress_pct,
       coalesce(ex.exposed_units, 0)        AS exposed_units,
       e.started_at,
       e.ended_at,
       e.winning_variant_id,
       wv.variant_key       AS winning_variant_key,
       e.p_value,
       e.effect_size
  FROM experiments e
  JOIN workflow_schemas s ON s.id = e.schema_id
  LEFT JOIN schema_variants wv ON wv.id = e.winning_variant_id
  LEFT JOIN LATERAL (
        SELECT count(*)::integer AS variant_count, min(a.n)::bigint AS min_arm_sample_size
          FROM (SELECT ev.variant_id, coalesce(sum(m.total_executions), 0) AS n
                  FROM experiment_variants ev
                  LEFT JOIN experiment_variant_metrics m
                    ON m.experiment_id = ev.experiment_id AND m.variant_id = ev.variant_id
                   AND m.period_type = 'hour'
                 WHERE ev.experiment_id = e.id
                 GROUP BY ev.variant_id) a
       ) arms ON true
  LEFT JOIN LATERAL (
        SELECT sum(m.total_executions)::bigint AS total_executions
          FROM experiment_variant_metrics m
         WHERE m.experiment_id = e.id AND m.period_type = 'hour'
       ) tot ON true
  LEFT JOIN LATERAL (
        SELECT count(*)::bigint AS exposed_units
          FROM experiment_exposures x WHERE x.experiment_id = e.id
       ) ex ON true;

COMMENT ON VIEW v_experiment_status IS
'One row per experiment: identity, status, schema, primary metric, min_sample_size, number of arms, '
'total executions (hourly experiment_variant_metrics, all arms and partitions), the smallest arm '
'sample size, progress_pct = least(100, 100 * min arm n / min_sample_size), exposed units, '
'start/end and the winner.';

-- ---------------------------------------------------------------------------------
-- v_experiment_exposure_counts (sample-ratio-mismatch input)
-- ---------------------------------------------------------------------------------

CREATE VIEW v_experiment_exposure_counts AS
SELECT coalesce(a.experiment_id, c.experiment_id) AS experiment_id,
       coalesce(a.variant_id, c.variant_id)       AS variant_id,
       a.position,
       a.is_control,
       a.traffic_percentage,
       CASE WHEN a.arm_total > 0
            THEN a.traffic_percentage::double precision / a.arm_total::double precision END AS expected_share,
       coalesce(c.exposed_units, 0)                AS exposed_units,
       (a.variant_id IS NOT NULL)                  AS is_arm
  FROM (SELECT ev.experiment_id, ev.variant_id, ev.position, ev.is_control, ev.traffic_percentage,
               sum(ev.traffic_percentage) OVER (PARTITION BY ev.experiment_id) AS arm_total
          FROM experiment_variants ev) a
  FULL JOIN (SELECT x.experiment_id, x.variant_id, count(*)::bigint AS exposed_units
               FROM experiment_exposures x
              GROUP BY x.experiment_id, x.variant_id) c
    ON c.experiment_id = a.experiment_id AND c.variant_id = a.variant_id;

COMMENT ON VIEW v_experiment_exposure_counts IS
'Distinct exposed units per (experiment, variant) with the expected share of each arm '
'(traffic_percentage / sum over arms), for the sample-ratio-mismatch chi-squared test. Arms without '
'exposures appear with 0; exposures of a variant that is no longer an arm appear with is_arm false. '
'Filter by experiment_id.';
