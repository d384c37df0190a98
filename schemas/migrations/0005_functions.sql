-- 0005_functions.sql
-- Hashing helpers (GrowthBook hash v2), variant selection, metric rollups and summaries.

DO $$
BEGIN
    IF getdatabaseencoding() <> 'UTF8' THEN
        RAISE WARNING 'database encoding is %, not UTF8: fnv1a32() hashes non-ASCII text wrongly',
            getdatabaseencoding();
    END IF;
END;
$$;

-- Extra index for the rollup job, which scans hourly rows of every schema by time.
CREATE INDEX version_performance_metrics_period_idx
    ON version_performance_metrics (period_type, period_start);

-- ---------------------------------------------------------------------------------
-- Hashing
-- ---------------------------------------------------------------------------------

CREATE FUNCTION fnv1a32(p_input text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    h  bigint := 2166136261;          -- FNV offset basis 0x811C9DC5
    ch text;
    cp integer;
BEGIN
    FOREACH ch IN ARRAY string_to_array(p_input, NULL) LOOP
        cp := ascii(ch);              -- Unicode code point (UTF8 database)
        IF cp > 65535 THEN
            -- outside the BMP: hash the UTF-16 surrogate pair, like GrowthBook's SDKs
            cp := cp - 65536;
            h := ((h # (55296 + (cp >> 10))) * 16777619) & 4294967295;
            h := ((h # (56320 + (cp & 1023))) * 16777619) & 4294967295;
        ELSE
            h := ((h # cp) * 16777619) & 4294967295;
        END IF;
    END LOOP;
    RETURN h;
END;
$$;

COMMENT ON FUNCTION fnv1a32(text) IS
'32-bit FNV-1a over the UTF-16 code units of the text (= the Unicode code points for every '
'character of the Basic Multilingual Plane; characters above U+FFFF are hashed as their surrogate '
'pair, exactly like growthbook.core.fnv1a32 and the JS SDK). h = 2166136261; per unit: '
'h = ((h XOR unit) * 16777619) mod 2^32. Requires a UTF8 database. '
'fnv1a32('''') = 2166136261, fnv1a32(''a'') = 3826002220.';

CREATE FUNCTION gb_hash_v2(p_seed text, p_value text) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (fnv1a32(fnv1a32(p_seed || p_value)::text) % 10000)::double precision / 10000
$$;

COMMENT ON FUNCTION gb_hash_v2(text, text) IS
'GrowthBook hash version 2: n = fnv1a32(decimal text of fnv1a32(seed || value)); returns '
'(n % 10000) / 10000 as double precision, bit-identical to Python''s (n % 10000) / 10000. '
'Range [0, 0.9999].';

-- ---------------------------------------------------------------------------------
-- select_variant_for_execution
-- ---------------------------------------------------------------------------------

CREATE FUNCTION select_variant_for_execution(p_schema_id uuid, p_unit_id text)
RETURNS TABLE (
    variant_id     uuid,
    variant_key    text,
    schema_version integer,
    experiment_id  uuid,
    in_experiment  boolean,
    bucket         double precision,
    reason         text
)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    s_key     text;
    s_version integer;
    e_id      uuid;
    e_seed    text;
    e_cov     double precision;
    a_ids     uuid[];
    a_keys    text[];
    a_vers    integer[];
    a_w       double precision[];
    g_w       double precision[];
    k         integer := 0;
    i         integer;
    total     double precision;
    cum       double precision;
    lo        double precision;
    hi        double precision;
    n         double precision;
    r         double precision;
    eb        double precision;          -- experiment bucket, when one was computed
    r_ids     uuid[];
    r_keys    text[];
    r_vers    integer[];
    r_w       double precision[];
    rk        integer;
    no_unit   boolean := p_unit_id IS NULL OR p_unit_id = '';
BEGIN
    SELECT s.key, s.current_version INTO s_key, s_version
      FROM workflow_schemas s WHERE s.id = p_schema_id;
    IF NOT FOUND THEN
        RETURN;                                   -- unknown schema: no row
    END IF;

    -- the running experiment's arms, in position order
    SELECT x.id, coalesce(nullif(x.hash_seed, ''), x.experiment_key), x.coverage::double precision
      INTO e_id, e_seed, e_cov
      FROM experiments x WHERE x.schema_id = p_schema_id AND x.status = 'running';
    IF FOUND THEN
        SELECT array_agg(ev.variant_id ORDER BY ev.position),
               array_agg(sv.variant_key ORDER BY ev.position),
               array_agg(sv.base_version ORDER BY ev.position),
               array_agg(ev.traffic_percentage::double precision / 100 ORDER BY ev.position)
          INTO a_ids, a_keys, a_vers, a_w
          FROM experiment_variants ev
          JOIN schema_variants sv ON sv.id = ev.variant_id
         WHERE ev.experiment_id = e_id;
        k := coalesce(array_length(a_ids, 1), 0);
    END IF;

    -- the rollout: ACTIVE variants with a positive allocation, in variant_key byte order
    SELECT array_agg(sv.id ORDER BY sv.variant_key COLLATE "C"),
           array_agg(sv.variant_key ORDER BY sv.variant_key COLLATE "C"),
           array_agg(sv.base_version ORDER BY sv.variant_key COLLATE "C"),
           array_agg(sv.traffic_allocation::double precision / 100 ORDER BY sv.variant_key COLLATE "C")
      INTO r_ids, r_keys, r_vers, r_w
      FROM schema_variants sv
     WHERE sv.schema_id = p_schema_id AND sv.status = 'active' AND sv.traffic_allocation > 0;
    rk := coalesce(array_length(r_ids, 1), 0);

    -- without a unit id: a weighted random draw, reason 'random', bucket NULL
    IF no_unit THEN
        r := random();
        IF k > 0 THEN
            -- among the experiment arms by weight (coverage not applied); not an exposure
            cum := 0;
            FOR i IN 1 .. k LOOP
                IF a_w[i] > 0 THEN
                    cum := cum + a_w[i];
                    IF r < cum OR i = k THEN
                        RETURN QUERY SELECT a_ids[i], a_keys[i], a_vers[i], e_id, false,
                                            NULL::double precision, 'random'::text;
                        RETURN;
                    END IF;
                END IF;
            END LOOP;
            -- r at the very top of a sum that rounded down: the last arm with a weight
            FOR i IN REVERSE k .. 1 LOOP
                IF a_w[i] > 0 THEN
                    RETURN QUERY SELECT a_ids[i], a_keys[i], a_vers[i], e_id, false,
                                        NULL::double precision, 'random'::text;
                    RETURN;
                END IF;
            END LOOP;
        ELSIF e_id IS NULL AND rk > 0 THEN
            cum := 0;
            FOR i IN 1 .. rk LOOP
                cum := least(cum + r_w[i], 1.0);
                IF r < cum THEN
                    RETURN QUERY SELECT r_ids[i], r_keys[i], r_vers[i], NULL::uuid, false,
                                        NULL::double precision, 'random'::text;
                    RETURN;
                END IF;
            END LOOP;
            RETURN QUERY SELECT NULL::uuid, NULL::text, s_version, NULL::uuid, false,
                                NULL::double precision, 'random'::text;
            RETURN;
        END IF;
        RETURN QUERY SELECT NULL::uuid, NULL::text, s_version, NULL::uuid, false,
                            NULL::double precision, 'default'::text;
        RETURN;
    END IF;

    -- (a) experiment: GrowthBook getBucketRanges + chooseVariation
    IF k > 0 THEN
        -- a weight vector whose float sum is outside [0.99, 1.01] becomes equal weights
        total := 0;
        FOR i IN 1 .. k LOOP
            total := total + a_w[i];
        END LOOP;
        g_w := CASE WHEN total < 0.99 OR total > 1.01
                    THEN array_fill(1::double precision / k, ARRAY[k]) ELSE a_w END;
        e_cov := least(greatest(e_cov, 0), 1);
        eb := gb_hash_v2(e_seed, p_unit_id);
        cum := 0;
        FOR i IN 1 .. k LOOP
            lo := cum;
            cum := cum + g_w[i];
            hi := lo + e_cov * g_w[i];
            IF eb >= lo AND eb < hi THEN
                RETURN QUERY SELECT a_ids[i], a_keys[i], a_vers[i], e_id, true, eb, 'experiment'::text;
                RETURN;
            END IF;
        END LOOP;
        -- in no arm's range (coverage miss): not in the experiment, go on with the rollout
    END IF;

    -- (b) rollout: variant i owns [c_i, c_i + allocation_i / 100)
    IF rk > 0 THEN
        n := gb_hash_v2(s_key || ':rollout', p_unit_id);
        cum := 0;
        FOR i IN 1 .. rk LOOP
            EXIT WHEN cum >= 1.0;
            lo := cum;
            cum := least(lo + r_w[i], 1.0);
            IF n >= lo AND n < cum THEN
                RETURN QUERY SELECT r_ids[i], r_keys[i], r_vers[i], NULL::uuid, false, n, 'rollout'::text;
                RETURN;
            END IF;
        END LOOP;
    ELSE
        n := eb;                                 -- NULL when no experiment was evaluated either
    END IF;

    -- (c) the base version
    RETURN QUERY SELECT NULL::uuid, NULL::text, s_version, NULL::uuid, false, n, 'default'::text;
END;
$$;

COMMENT ON FUNCTION select_variant_for_execution(uuid, text) IS
'The assignment decision of the assignment service (shared/assignment/decision.py), in SQL. '
'No row for an unknown schema. Hash: gb_hash_v2 (GrowthBook v2, FNV-1a 32). '
'(a) Running experiment: arms = experiment_variants by position, weight_i = '
'traffic_percentage::float8 / 100 (all replaced by 1/k when their float sum is outside '
'[0.99, 1.01]), coverage clamped to [0, 1]; arm i owns [c_i, c_i + coverage*w_i), c_i = running '
'float sum of the previous weights (GrowthBook getBucketRanges); bucket = gb_hash_v2(hash_seed, '
'unit) -> reason experiment, in_experiment true, schema_version = the arm variant''s base_version. '
'A coverage miss is not in the experiment and falls through to (b). '
'(b) Rollout: ACTIVE variants with traffic_allocation > 0 ordered by variant_key COLLATE "C" '
'(Python str order); variant i owns [c_i, min(c_i + traffic_allocation_i::float8 / 100, 1)); '
'bucket = gb_hash_v2(schema key || '':rollout'', unit) -> reason rollout. '
'(c) Otherwise the base version: variant_id NULL, schema_version = current_version, reason default, '
'bucket = the rollout bucket, else the experiment bucket, else NULL. '
'p_unit_id NULL or empty: random() draw, bucket NULL, in_experiment false: among the arms by weight '
'when an experiment runs (experiment_id set, coverage ignored), else among the rollout shares with '
'the remainder on the base version (reason random), else the base version with reason default. '
'All arithmetic is IEEE double precision in the same order as the Python code, so range '
'boundaries compare identically (the config publisher must compute weight = '
'float(traffic_percentage) / 100 and list variants in variant_key order).';

-- ---------------------------------------------------------------------------------
-- aggregate_version_metrics
-- ---------------------------------------------------------------------------------

CREATE FUNCTION aggregate_version_metrics(
    p_period_type text DEFAULT 'day',
    p_from        timestamptz DEFAULT now() - interval '30 days',
    p_to          timestamptz DEFAULT now()
) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    first_start timestamptz;
    written     integer;
BEGIN
    IF p_period_type IS NULL OR p_period_type NOT IN ('day', 'week') THEN
        RAISE EXCEPTION 'invalid_period_type: % (expected day or week)', p_period_type
            USING ERRCODE = '22023';
    END IF;
    IF p_from IS NULL OR p_to IS NULL OR p_to <= p_from THEN
        RAISE EXCEPTION 'invalid_range: [%, %) is empty', p_from, p_to
            USING ERRCODE = '22023';
    END IF;
    first_start := abflow_period_start(p_period_type, p_from);

    WITH hourly AS (
        SELECT m.*,
               abflow_period_start(p_period_type, m.period_start) AS rollup_start,
               coalesce(m.variant_id, '00000000-0000-0000-0000-000000000000'::uuid) AS variant_k
          FROM version_performance_metrics m
         WHERE m.period_type = 'hour'
           AND m.period_start >= first_start
           AND m.period_start < abflow_period_end(p_period_type, abflow_period_start(p_period_type, p_to))
           AND abflow_period_start(p_period_type, m.period_start) < p_to
    ),
    agg AS (
        SELECT h.schema_id, h.schema_version, h.variant_id, h.variant_k, h.rollup_start,
               sum(h.total_executions)::bigint       AS total_executions,
               sum(h.successful_executions)::bigint  AS successful_executions,
               sum(h.failed_executions)::bigint      AS failed_executions,
               sum(h.duration_count)::bigint         AS duration_count,
               sum(h.duration_sum)                   AS duration_sum,
               sum(h.duration_sum_sq)                AS duration_sum_sq,
               min(h.duration_min)                   AS duration_min,
               max(h.duration_max)                   AS duration_max,
               sum(h.risk_count)::bigint             AS risk_count,
               sum(h.risk_sum)                       AS risk_sum,
               sum(h.risk_sum_sq)                    AS risk_sum_sq,
               min(h.risk_min)                       AS risk_min,
               max(h.risk_max)                       AS risk_max
          FROM hourly h
         GROUP BY h.schema_id, h.schema_version, h.variant_id, h.variant_k, h.rollup_start
    ),
    step_rows AS (
        SELECT h.schema_id, h.schema_version, h.variant_k, h.rollup_start, st.key AS step,
               sum((st.value ->> 'count')::numeric)::bigint      AS cnt,
               sum((st.value ->> 'successes')::numeric)::bigint  AS successes,
               sum((st.value ->> 'duration_sum')::double precision)    AS duration_sum,
               sum((st.value ->> 'duration_sum_sq')::double precision) AS duration_sum_sq
          FROM hourly h
         CROSS JOIN LATERAL jsonb_each(h.step_metrics) AS st
         WHERE jsonb_typeof(st.value) = 'object'
         GROUP BY h.schema_id, h.schema_version, h.variant_k, h.rollup_start, st.key
    ),
    steps AS (
        SELECT r.schema_id, r.schema_version, r.variant_k, r.rollup_start,
               jsonb_object_agg(r.step, jsonb_build_object(
                   'count', coalesce(r.cnt, 0), 'successes', coalesce(r.successes, 0),
                   'duration_sum', coalesce(r.duration_sum, 0),
                   'duration_sum_sq', coalesce(r.duration_sum_sq, 0))) AS step_metrics
          FROM step_rows r
         GROUP BY r.schema_id, r.schema_version, r.variant_k, r.rollup_start
    )
    INSERT INTO version_performance_metrics AS t (
        schema_id, schema_version, variant_id, period_type, period_start, source_partition,
        total_executions, successful_executions, failed_executions,
        duration_count, duration_sum, duration_sum_sq, duration_min, duration_max,
        risk_count, risk_sum, risk_sum_sq, risk_min, risk_max,
        duration_sketch, p50_execution_time_ms, p95_execution_time_ms, p99_execution_time_ms,
        step_metrics)
    SELECT a.schema_id, a.schema_version, a.variant_id, p_period_type, a.rollup_start, -1,
           a.total_executions, a.successful_executions, a.failed_executions,
           a.duration_count, a.duration_sum, a.duration_sum_sq, a.duration_min, a.duration_max,
           a.risk_count, a.risk_sum, a.risk_sum_sq, a.risk_min, a.risk_max,
           NULL, pc.p[1], pc.p[2], pc.p[3],
           coalesce(s.step_metrics, '{}'::jsonb)
      FROM agg a
      LEFT JOIN steps s
        ON s.schema_id = a.schema_id AND s.schema_version = a.schema_version
       AND s.variant_k = a.variant_k AND s.rollup_start = a.rollup_start
      CROSS JOIN LATERAL (
          SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]::double precision[])
                     WITHIN GROUP (ORDER BY w.duration_ms) AS p
            FROM workflow_executions w
           WHERE w.schema_id = a.schema_id
             AND w.schema_version = a.schema_version
             AND w.variant_id IS NOT DISTINCT FROM a.variant_id
             AND w.completed_at >= a.rollup_start
             AND w.completed_at < abflow_period_end(p_period_type, a.rollup_start)
      ) pc
    ON CONFLICT ON CONSTRAINT version_performance_metrics_natural_key DO UPDATE SET
        total_executions      = EXCLUDED.total_executions,
        successful_executions = EXCLUDED.successful_executions,
        failed_executions     = EXCLUDED.failed_executions,
        duration_count        = EXCLUDED.duration_count,
        duration_sum          = EXCLUDED.duration_sum,
        duration_sum_sq       = EXCLUDED.duration_sum_sq,
        duration_min          = EXCLUDED.duration_min,
        duration_max          = EXCLUDED.duration_max,
        risk_count            = EXCLUDED.risk_count,
        risk_sum              = EXCLUDED.risk_sum,
        risk_sum_sq           = EXCLUDED.risk_sum_sq,
        risk_min              = EXCLUDED.risk_min,
        risk_max              = EXCLUDED.risk_max,
        duration_sketch       = NULL,
        -- keep earlier exact percentiles when the raw executions have since been purged
        p50_execution_time_ms = coalesce(EXCLUDED.p50_execution_time_ms, t.p50_execution_time_ms),
        p95_execution_time_ms = coalesce(EXCLUDED.p95_execution_time_ms, t.p95_execution_time_ms),
        p99_execution_time_ms = coalesce(EXCLUDED.p99_execution_time_ms, t.p99_execution_time_ms),
        step_metrics          = EXCLUDED.step_metrics;

    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;

COMMENT ON FUNCTION aggregate_version_metrics(text, timestamptz, timestamptz) IS
'Rolls the hourly version_performance_metrics rows (summed over source partitions) up into '
'''day'' or ''week'' rows (UTC days, ISO weeks from Monday; source_partition = -1) for every '
'period that overlaps [p_from, p_to); each rollup covers its whole period, so re-running is '
'idempotent (absolute upsert). Counts and sums are added, min/max combined, step_metrics merged '
'per step; duration_sketch is NULL on rollups; p50/p95/p99 are exact percentile_cont over '
'workflow_executions of that schema/version/variant with completed_at in the period (previous '
'values kept when no raw executions remain). Returns the number of rows written. SQLSTATE 22023 '
'for a period type other than day/week or an empty range.';

-- ---------------------------------------------------------------------------------
-- update_variant_metrics
-- ---------------------------------------------------------------------------------

CREATE FUNCTION update_variant_metrics(p_variant_id uuid DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    written integer;
BEGIN
    WITH targets AS (
        SELECT v.id, v.schema_id
          FROM schema_variants v
         WHERE p_variant_id IS NULL OR v.id = p_variant_id
    ),
    sums AS (
        SELECT t.id,
               coalesce(sum(m.total_executions), 0)::bigint      AS total,
               coalesce(sum(m.successful_executions), 0)::bigint AS successes,
               coalesce(sum(m.failed_executions), 0)::bigint     AS failures,
               coalesce(sum(m.duration_count), 0)::bigint        AS d_count,
               coalesce(sum(m.duration_sum), 0)                  AS d_sum,
               coalesce(sum(m.risk_count), 0)::bigint            AS r_count,
               coalesce(sum(m.risk_sum), 0)                      AS r_sum
          FROM targets t
          LEFT JOIN version_performance_metrics m
            ON m.schema_id = t.schema_id AND m.variant_id = t.id AND m.period_type = 'hour'
         GROUP BY t.id
    )
    UPDATE schema_variants v SET
        total_executions      = s.total,
        successful_executions = s.successes,
        failed_executions     = s.failures,
        conversion_rate       = CASE WHEN s.total > 0 THEN s.successes::double precision / s.total END,
        avg_execution_time_ms = CASE WHEN s.d_count > 0 THEN s.d_sum / s.d_count END,
        p95_execution_time_ms = CASE WHEN s.total > 0 THEN coalesce(
            (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY w.duration_ms)
               FROM workflow_executions w WHERE w.variant_id = v.id),
            v.p95_execution_time_ms) END,
        avg_risk_score        = CASE WHEN s.r_count > 0 THEN s.r_sum / s.r_count END,
        metrics_updated_at    = now()
      FROM sums s
     WHERE v.id = s.id;

    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;

COMMENT ON FUNCTION update_variant_metrics(uuid) IS
'Recomputes the cached metric columns of one variant (p_variant_id) or of every variant (NULL) '
'from the hourly version_performance_metrics rows of that variant (all hours, all partitions): '
'total/successful/failed executions, conversion_rate = successes / total, avg_execution_time_ms = '
'duration_sum / duration_count, avg_risk_score = risk_sum / risk_count, p95_execution_time_ms = '
'exact percentile_cont(0.95) over workflow_executions of the variant (previous value kept when no '
'raw executions remain), metrics_updated_at = now(). Does not bump version/updated_at. Returns '
'the number of variants updated.';

-- ---------------------------------------------------------------------------------
-- get_version_comparison_summary
-- ---------------------------------------------------------------------------------

CREATE FUNCTION get_version_comparison_summary(
    p_schema_id          uuid,
    p_baseline_version   integer,
    p_comparison_version integer,
    p_days               integer DEFAULT 30
) RETURNS TABLE (
    schema_version           integer,
    total_executions         bigint,
    successful_executions    bigint,
    success_rate             double precision,
    avg_execution_time_ms    double precision,
    stddev_execution_time_ms double precision,
    avg_risk_score           double precision
)
LANGUAGE sql STABLE AS $$
    SELECT v.ver,
           coalesce(sum(m.total_executions), 0)::bigint,
           coalesce(sum(m.successful_executions), 0)::bigint,
           CASE WHEN sum(m.total_executions) > 0
                THEN sum(m.successful_executions)::double precision / sum(m.total_executions)::double precision END,
           CASE WHEN sum(m.duration_count) > 0
                THEN sum(m.duration_sum) / sum(m.duration_count)::double precision END,
           CASE WHEN sum(m.duration_count) > 1
                THEN sqrt(greatest(0::double precision,
                     (sum(m.duration_sum_sq)
                      - sum(m.duration_sum) * sum(m.duration_sum) / sum(m.duration_count)::double precision)
                     / (sum(m.duration_count)::double precision - 1))) END,
           CASE WHEN sum(m.risk_count) > 0
                THEN sum(m.risk_sum) / sum(m.risk_count)::double precision END
      FROM (SELECT DISTINCT x.ver
              FROM unnest(ARRAY[p_baseline_version, p_comparison_version]) AS x(ver)
             WHERE x.ver IS NOT NULL) v
      LEFT JOIN version_performance_metrics m
        ON m.schema_id = p_schema_id
       AND m.schema_version = v.ver
       AND m.variant_id IS NULL
       AND m.period_type = 'hour'
       AND m.period_start >= abflow_period_start('hour', now() - make_interval(days => p_days))
     GROUP BY v.ver
     ORDER BY (v.ver IS DISTINCT FROM p_baseline_version), v.ver
$$;

COMMENT ON FUNCTION get_version_comparison_summary(uuid, integer, integer, integer) IS
'One row per requested version (baseline first; a single row when both are equal), from the '
'hourly version_performance_metrics rows of the BASE version (variant_id IS NULL; variant '
'executions run a modified definition and are excluded) whose hour starts within the last p_days '
'days, summed over partitions. success_rate = successes / total; avg and sample standard deviation '
'of duration from (count, sum, sum of squares): sqrt((sum_sq - sum^2/n) / (n - 1)), NULL for n < 2; '
'avg_risk_score = risk_sum / risk_count. Versions without data return zero counts and NULL stats.';
