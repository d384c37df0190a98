-- 0002_variants_and_experiments.sql
-- Schema variants (parallel configurations with traffic allocation), experiments and their arms.

-- ---------------------------------------------------------------------------------
-- schema_variants
-- ---------------------------------------------------------------------------------

CREATE TABLE schema_variants (
    id                     uuid             NOT NULL DEFAULT gen_random_uuid(),
    schema_id              uuid             NOT NULL,
    base_version           integer          NOT NULL,
    variant_key            text             NOT NULL,
    variant_name           text             NOT NULL DEFAULT '',
    description            text             NULL,
    config_overrides       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    workflow_steps_override jsonb           NULL,
    risk_config_override   jsonb            NOT NULL DEFAULT '{}'::jsonb,
    traffic_allocation     numeric(5,2)     NOT NULL DEFAULT 0,
    status                 text             NOT NULL DEFAULT 'draft',
    -- cached metrics, written by update_variant_metrics()
    total_executions       bigint           NOT NULL DEFAULT 0,
    successful_executions  bigint           NOT NULL DEFAULT 0,
    failed_executions      bigint           NOT NULL DEFAULT 0,
    conversion_rate        double precision NULL,
    avg_execution_time_ms  double precision NULL,
    p95_execution_time_ms  double precision NULL,
    avg_risk_score         double precision NULL,
    metrics_updated_at     timestamptz      NULL,
    created_by             text             NULL,
    version                integer          NOT NULL DEFAULT 1,
    created_at             timestamptz      NOT NULL DEFAULT now(),
    updated_at             timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT schema_variants_pkey PRIMARY KEY (id),
    CONSTRAINT schema_variants_schema_key_key UNIQUE (schema_id, variant_key),
    CONSTRAINT schema_variants_schema_fkey FOREIGN KEY (schema_id)
        REFERENCES workflow_schemas (id) ON DELETE CASCADE,
    -- base_version must be a published version of the same schema. CASCADE only ever fires
    -- while the whole schema is deleted: versions cannot be deleted on their own.
    CONSTRAINT schema_variants_base_version_fkey FOREIGN KEY (schema_id, base_version)
        REFERENCES workflow_schema_versions (schema_id, version_number) ON DELETE CASCADE,
    CONSTRAINT schema_variants_key_format CHECK (variant_key ~ '^[a-z0-9][a-z0-9_.-]{0,99}$'),
    CONSTRAINT schema_variants_name_length CHECK (char_length(variant_name) <= 200),
    CONSTRAINT schema_variants_config_overrides_object CHECK (jsonb_typeof(config_overrides) = 'object'),
    CONSTRAINT schema_variants_steps_override_array CHECK (
        workflow_steps_override IS NULL OR jsonb_typeof(workflow_steps_override) = 'array'),
    CONSTRAINT schema_variants_risk_override_object CHECK (jsonb_typeof(risk_config_override) = 'object'),
    CONSTRAINT schema_variants_traffic_range CHECK (traffic_allocation BETWEEN 0 AND 100),
    CONSTRAINT schema_variants_status_check CHECK (status IN ('draft', 'active', 'paused', 'archived')),
    CONSTRAINT schema_variants_counts_nonneg CHECK (
        total_executions >= 0 AND successful_executions >= 0 AND failed_executions >= 0),
    CONSTRAINT schema_variants_conversion_range CHECK (
        conversion_rate IS NULL OR conversion_rate BETWEEN 0 AND 1),
    CONSTRAINT schema_variants_version_positive CHECK (version >= 1)
);

COMMENT ON TABLE schema_variants IS
'A variant of a schema: a base version plus overrides, with a share of the rollout traffic. '
'The traffic_allocation of the ACTIVE variants of one schema sums to at most 100 '
'(SQLSTATE 23514 "traffic_allocation_exceeds_100"). Cached metric columns are maintained by '
'update_variant_metrics() and do not bump version/updated_at.';

-- Cached metrics are not user edits: they must not break optimistic concurrency.
CREATE TRIGGER zz_touch_row BEFORE UPDATE ON schema_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_touch_row(
        'total_executions', 'successful_executions', 'failed_executions', 'conversion_rate',
        'avg_execution_time_ms', 'p95_execution_time_ms', 'avg_risk_score', 'metrics_updated_at');

CREATE TRIGGER t05_schema_id_immutable BEFORE UPDATE OF schema_id ON schema_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_forbid_column_change('schema_id');

-- Traffic invariant, part 1: serialise writers of one schema's active variants by locking the
-- parent workflow_schemas row (FOR NO KEY UPDATE: it conflicts with itself and FOR UPDATE, but
-- not with the KEY SHARE locks that foreign-key checks take).
CREATE FUNCTION abflow_variant_lock_schema() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM workflow_schemas WHERE id = NEW.schema_id FOR NO KEY UPDATE;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_variant_lock_schema() IS
'BEFORE INSERT/UPDATE trigger on schema_variants (only for rows that are or become active): locks '
'the parent workflow_schemas row FOR NO KEY UPDATE so that concurrent traffic changes of one schema '
'serialise and the traffic check sees the other transaction''s committed rows.';

CREATE TRIGGER t10_lock_schema BEFORE INSERT OR UPDATE ON schema_variants
    FOR EACH ROW WHEN (NEW.status = 'active')
    EXECUTE FUNCTION abflow_variant_lock_schema();

-- Traffic invariant, part 2: checked at the end of the statement (so a single UPDATE that
-- rebalances several variants is judged on its final state), or at commit when the caller
-- runs SET CONSTRAINTS schema_variants_traffic_sum DEFERRED.
CREATE FUNCTION abflow_variant_traffic_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total numeric;
BEGIN
    SELECT coalesce(sum(v.traffic_allocation), 0) INTO total
      FROM schema_variants v
     WHERE v.schema_id = NEW.schema_id AND v.status = 'active';
    IF total > 100 THEN
        RAISE EXCEPTION 'traffic_allocation_exceeds_100: active variants of schema % would total % percent',
            NEW.schema_id, total
            USING ERRCODE = '23514',
                  CONSTRAINT = 'schema_variants_traffic_sum',
                  HINT = 'Lower or pause another active variant first, or change them in one statement.';
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION abflow_variant_traffic_check() IS
'Constraint trigger on schema_variants: the sum of traffic_allocation over a schema''s active '
'variants must not exceed 100; raises SQLSTATE 23514 "traffic_allocation_exceeds_100: ...".';

CREATE CONSTRAINT TRIGGER schema_variants_traffic_sum
    AFTER INSERT OR UPDATE ON schema_variants
    DEFERRABLE INITIALLY IMMEDIATE
    FOR EACH ROW WHEN (NEW.status = 'active')
    EXECUTE FUNCTION abflow_variant_traffic_check();

CREATE INDEX schema_variants_active_idx ON schema_variants (schema_id) WHERE status = 'active';

-- ---------------------------------------------------------------------------------
-- experiments
-- ---------------------------------------------------------------------------------

CREATE TABLE experiments (
    id                        uuid             NOT NULL DEFAULT gen_random_uuid(),
    experiment_key            text             NOT NULL,
    experiment_name           text             NOT NULL,
    description               text             NULL,
    hypothesis                text             NULL,
    schema_id                 uuid             NOT NULL,
    deliverable_type          text             NULL,
    status                    text             NOT NULL DEFAULT 'draft',
    primary_metric            text             NOT NULL DEFAULT 'success_rate',
    secondary_metrics         text[]           NOT NULL DEFAULT '{}',
    min_sample_size           integer          NOT NULL DEFAULT 100,
    confidence_level          numeric          NOT NULL DEFAULT 0.95,
    significance_threshold    numeric          NOT NULL DEFAULT 0.05,
    hash_seed                 text             NOT NULL,
    coverage                  numeric          NOT NULL DEFAULT 1,
    sequential_testing        boolean          NOT NULL DEFAULT false,
    sequential_tuning         integer          NOT NULL DEFAULT 5000,
    minimum_detectable_effect double precision NULL,
    started_at                timestamptz      NULL,
    paused_at                 timestamptz      NULL,
    ended_at                  timestamptz      NULL,
    winning_variant_id        uuid             NULL,
    p_value                   double precision NULL,
    effect_size               double precision NULL,
    results                   jsonb            NULL,
    created_by                text             NULL,
    version                   integer          NOT NULL DEFAULT 1,
    created_at                timestamptz      NOT NULL DEFAULT now(),
    updated_at                timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT experiments_pkey PRIMARY KEY (id),
    CONSTRAINT experiments_experiment_key_key UNIQUE (experiment_key),
    CONSTRAINT experiments_schema_fkey FOREIGN KEY (schema_id)
        REFERENCES workflow_schemas (id) ON DELETE CASCADE,
    -- deferred: see experiment_variants_variant_fkey
    CONSTRAINT experiments_winning_variant_fkey FOREIGN KEY (winning_variant_id)
        REFERENCES schema_variants (id) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT experiments_key_format CHECK (experiment_key ~ '^[a-z0-9][a-z0-9_.-]{0,99}$'),
    CONSTRAINT experiments_name_length CHECK (char_length(experiment_name) BETWEEN 1 AND 200),
    CONSTRAINT experiments_status_check CHECK (
        status IN ('draft', 'running', 'paused', 'completed', 'cancelled')),
    CONSTRAINT experiments_primary_metric_check CHECK (
        primary_metric IN ('success_rate', 'execution_time', 'risk_score')),
    CONSTRAINT experiments_secondary_metrics_check CHECK (
        secondary_metrics <@ ARRAY['success_rate', 'execution_time', 'risk_score']::text[]),
    CONSTRAINT experiments_min_sample_size_check CHECK (min_sample_size >= 2),
    CONSTRAINT experiments_confidence_level_check CHECK (confidence_level >= 0.5 AND confidence_level < 1),
    CONSTRAINT experiments_significance_check CHECK (
        significance_threshold > 0 AND significance_threshold < 1),
    CONSTRAINT experiments_hash_seed_nonempty CHECK (char_length(hash_seed) BETWEEN 1 AND 200),
    CONSTRAINT experiments_coverage_check CHECK (coverage BETWEEN 0 AND 1),
    CONSTRAINT experiments_sequential_tuning_check CHECK (sequential_tuning > 0),
    CONSTRAINT experiments_p_value_range CHECK (p_value IS NULL OR p_value BETWEEN 0 AND 1),
    CONSTRAINT experiments_results_object CHECK (results IS NULL OR jsonb_typeof(results) = 'object'),
    CONSTRAINT experiments_started_when_active CHECK (
        status NOT IN ('running', 'paused', 'completed') OR started_at IS NOT NULL),
    CONSTRAINT experiments_ended_when_final CHECK (
        status NOT IN ('completed', 'cancelled') OR ended_at IS NOT NULL),
    CONSTRAINT experiments_ended_after_start CHECK (
        ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at),
    CONSTRAINT experiments_version_positive CHECK (version >= 1)
);

COMMENT ON TABLE experiments IS
'An A/B test on one schema. Lifecycle draft -> running <-> paused -> completed/cancelled '
'(SQLSTATE 55000 "illegal_transition: ..."); at most one running experiment per schema '
'(unique index experiments_one_running_per_schema, SQLSTATE 23505). hash_seed is the GrowthBook '
'hashing seed (the API defaults it to experiment_key).';

-- At most one running experiment per schema.
CREATE UNIQUE INDEX experiments_one_running_per_schema ON experiments (schema_id)
    WHERE status = 'running';
CREATE INDEX experiments_schema_status_idx ON experiments (schema_id, status);

CREATE TRIGGER zz_touch_row BEFORE UPDATE ON experiments
    FOR EACH ROW EXECUTE FUNCTION abflow_touch_row();

CREATE TRIGGER t05_schema_id_immutable BEFORE UPDATE OF schema_id ON experiments
    FOR EACH ROW EXECUTE FUNCTION abflow_forbid_column_change('schema_id');

-- ---------------------------------------------------------------------------------
-- experiment_variants (arms)
-- ---------------------------------------------------------------------------------

CREATE TABLE experiment_variants (
    id                 uuid         NOT NULL DEFAULT gen_random_uuid(),
    experiment_id      uuid         NOT NULL,
    variant_id         uuid         NOT NULL,
    position           integer      NOT NULL,
    is_control         boolean      NOT NULL DEFAULT false,
    traffic_percentage numeric(5,2) NOT NULL,
    version            integer      NOT NULL DEFAULT 1,
    created_at         timestamptz  NOT NULL DEFAULT now(),
    updated_at         timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT experiment_variants_pkey PRIMARY KEY (id),
    CONSTRAINT experiment_variants_experiment_fkey FOREIGN KEY (experiment_id)
        REFERENCES experiments (id) ON DELETE CASCADE,
    -- Deferred to commit so that deleting a whole schema (which cascades to its variants AND
    -- to its experiments and their arms, in no guaranteed order) succeeds. Deleting a variant
    -- that is still an arm is rejected immediately by abflow_variant_delete_guard().
    CONSTRAINT experiment_variants_variant_fkey FOREIGN KEY (variant_id)
        REFERENCES schema_variants (id) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT experiment_variants_experiment_variant_key UNIQUE (experiment_id, variant_id),
    CONSTRAINT experiment_variants_experiment_position_key UNIQUE (experiment_id, position),
    CONSTRAINT experiment_variants_position_nonneg CHECK (position >= 0),
    CONSTRAINT experiment_variants_traffic_range CHECK (traffic_percentage BETWEEN 0 AND 100),
    CONSTRAINT experiment_variants_version_positive CHECK (version >= 1)
);

COMMENT ON TABLE experiment_variants IS
'The arms of an experiment. position = bucketing order (order in which arms were added; filled '
'with max(position)+1, starting at 0, when inserted as NULL). weight of an arm = '
'traffic_percentage / 100; arms must sum to 100 percent when the experiment starts. Arms can only '
'be changed while the experiment is draft or paused.';

CREATE UNIQUE INDEX experiment_variants_one_control ON experiment_variants (experiment_id)
    WHERE is_control;
CREATE INDEX experiment_variants_variant_idx ON experiment_variants (variant_id);

CREATE TRIGGER zz_touch_row BEFORE UPDATE ON experiment_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_touch_row();

CREATE TRIGGER t05_experiment_id_immutable BEFORE UPDATE OF experiment_id ON experiment_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_forbid_column_change('experiment_id');

-- Arms: same schema as the experiment, editable only while draft/paused, position default.
CREATE FUNCTION abflow_experiment_arm_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    exp_id     uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.experiment_id ELSE NEW.experiment_id END;
    exp_status text;
    exp_schema uuid;
    var_schema uuid;
BEGIN
    -- lock the experiment so a concurrent start/resume sees the final arm set
    SELECT e.status, e.schema_id INTO exp_status, exp_schema
      FROM experiments e WHERE e.id = exp_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;            -- cascading from the experiment's own deletion
        END IF;
        RETURN NEW;                -- the foreign key reports the missing experiment
    END IF;
    IF exp_status NOT IN ('draft', 'paused') THEN
        RAISE EXCEPTION 'experiment_arms_locked: arms of experiment % cannot change while it is %',
            exp_id, exp_status
            USING ERRCODE = '55000',
                  HINT = 'Pause the experiment first (arms of completed/cancelled experiments never change).';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    SELECT v.schema_id INTO var_schema FROM schema_variants v WHERE v.id = NEW.variant_id;
    IF FOUND AND var_schema <> exp_schema THEN
        RAISE EXCEPTION 'experiment_variant_schema_mismatch: variant % belongs to schema %, experiment % to schema %',
            NEW.variant_id, var_schema, exp_id, exp_schema
            USING ERRCODE = '23514';
    END IF;
    IF NEW.position IS NULL THEN
        SELECT coalesce(max(ev.position) + 1, 0) INTO NEW.position
          FROM experiment_variants ev WHERE ev.experiment_id = NEW.experiment_id;
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_experiment_arm_guard() IS
'BEFORE INSERT/UPDATE/DELETE trigger on experiment_variants: locks the experiment row; rejects '
'changes unless the experiment is draft or paused (SQLSTATE 55000 "experiment_arms_locked"); '
'rejects a variant of another schema (SQLSTATE 23514 "experiment_variant_schema_mismatch"); '
'fills a NULL position with max(position)+1 (0 for the first arm).';

CREATE TRIGGER t10_arm_guard BEFORE INSERT OR UPDATE OR DELETE ON experiment_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_experiment_arm_guard();

-- Experiment lifecycle, timestamps, winner and arm validity at start/resume.
CREATE FUNCTION abflow_experiment_lifecycle() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_status text := CASE WHEN TG_OP = 'UPDATE' THEN OLD.status ELSE NULL END;
    arm_count  integer;
    arm_total  numeric;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT ((OLD.status, NEW.status) IN (
                ('draft', 'running'), ('draft', 'cancelled'),
                ('running', 'paused'), ('paused', 'running'),
                ('running', 'completed'), ('paused', 'completed'),
                ('running', 'cancelled'), ('paused', 'cancelled'))) THEN
            RAISE EXCEPTION 'illegal_transition: experiment % cannot go from % to %',
                OLD.id, OLD.status, NEW.status
                USING ERRCODE = '55000',
                      HINT = 'Allowed: draft->running|cancelled, running->paused|completed|cancelled, '
                             'paused->running|completed|cancelled; completed and cancelled are final.';
        END IF;
    END IF;

    IF NEW.status IS DISTINCT FROM old_status THEN
        IF NEW.status = 'running' THEN
            IF TG_OP = 'UPDATE' THEN
                SELECT count(*), coalesce(sum(ev.traffic_percentage), 0) INTO arm_count, arm_total
                  FROM experiment_variants ev WHERE ev.experiment_id = NEW.id;
                IF arm_count < 2 OR arm_total <> 100 THEN
                    RAISE EXCEPTION 'experiment_arms_invalid: experiment % has % arm(s) totalling % percent; '
                        'it needs at least 2 arms totalling exactly 100', NEW.id, arm_count, arm_total
                        USING ERRCODE = '23514';
                END IF;
            END IF;
            NEW.started_at := coalesce(NEW.started_at, now());
        ELSIF NEW.status = 'paused' THEN
            IF TG_OP = 'INSERT' THEN
                NEW.paused_at := coalesce(NEW.paused_at, now());
            ELSIF NEW.paused_at IS NOT DISTINCT FROM OLD.paused_at THEN
                NEW.paused_at := now();     -- paused_at = time of the latest pause
            END IF;
            NEW.started_at := coalesce(NEW.started_at, now());
        ELSIF NEW.status IN ('completed', 'cancelled') THEN
            NEW.ended_at := coalesce(NEW.ended_at, now());
            IF NEW.status = 'completed' THEN
                NEW.started_at := coalesce(NEW.started_at, NEW.ended_at);
            END IF;
        END IF;
    END IF;

    IF NEW.winning_variant_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.winning_variant_id IS DISTINCT FROM OLD.winning_variant_id)
       AND NOT EXISTS (SELECT 1 FROM experiment_variants ev
                        WHERE ev.experiment_id = NEW.id AND ev.variant_id = NEW.winning_variant_id) THEN
        RAISE EXCEPTION 'winning_variant_not_in_experiment: variant % is not an arm of experiment %',
            NEW.winning_variant_id, NEW.id
            USING ERRCODE = '23514';
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_experiment_lifecycle() IS
'BEFORE INSERT/UPDATE trigger on experiments. Allowed status changes: draft->running, '
'draft->cancelled, running->paused, paused->running, running|paused->completed, '
'running|paused->cancelled (same-status updates always allowed); anything else raises SQLSTATE '
'55000 "illegal_transition: experiment <id> cannot go from <a> to <b>". Entering running needs >= 2 '
'arms whose traffic_percentage sums to exactly 100 (SQLSTATE 23514 "experiment_arms_invalid"). '
'Fills started_at / paused_at / ended_at when missing. winning_variant_id must be an arm '
'(SQLSTATE 23514 "winning_variant_not_in_experiment").';

CREATE TRIGGER t10_lifecycle BEFORE INSERT OR UPDATE ON experiments
    FOR EACH ROW EXECUTE FUNCTION abflow_experiment_lifecycle();

-- A variant referenced by an experiment (arm or winner) cannot be deleted on its own; it is
-- archived instead. Deletes cascading from the deletion of the whole schema are allowed.
CREATE FUNCTION abflow_variant_delete_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM workflow_schemas s WHERE s.id = OLD.schema_id)
       AND (EXISTS (SELECT 1 FROM experiment_variants ev WHERE ev.variant_id = OLD.id)
            OR EXISTS (SELECT 1 FROM experiments e WHERE e.winning_variant_id = OLD.id)) THEN
        RAISE EXCEPTION 'variant_in_use: variant % is used by an experiment and cannot be deleted', OLD.id
            USING ERRCODE = '23503',
                  HINT = 'Archive the variant (status = archived) instead.';
    END IF;
    RETURN OLD;
END;
$$;

COMMENT ON FUNCTION abflow_variant_delete_guard() IS
'BEFORE DELETE trigger on schema_variants: a variant that is an experiment arm or winner cannot be '
'deleted (SQLSTATE 23503 "variant_in_use"), except as part of deleting its schema.';

CREATE TRIGGER t10_delete_guard BEFORE DELETE ON schema_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_variant_delete_guard();
