-- 0008_control_plane_rules.sql
-- Rules of the control API (services/assignment/control) that the database enforces too.
--
-- 1. workflow_schemas.version counts edits of the schema itself (name, description, current
--    version, status). Publishing an assignment configuration only bumps config_revision; it no
--    longer bumps version, so an If-Match on the schema is not made stale by variant traffic.
-- 2. experiments.arms_revision counts changes of the experiment's arms (maintained by a trigger
--    on experiment_variants), so that the experiment's version covers its arms: an If-Match
--    taken before an arm was added or removed is stale afterwards.
-- 3. Arms change only while the experiment is draft (SQLSTATE 55000 "experiment_arms_locked"),
--    stricter than 0002, which also allowed paused: resuming with other arms would move units.
-- 4. The analysis and bucketing settings of an experiment (metrics, sample size, confidence,
--    significance, seed, coverage, sequential settings, minimum detectable effect,
--    deliverable type) change only while it is draft (SQLSTATE 55000 "experiment_config_locked").

-- 1 ---------------------------------------------------------------------------------------------
DROP TRIGGER zz_touch_row ON workflow_schemas;
CREATE TRIGGER zz_touch_row BEFORE UPDATE ON workflow_schemas
    FOR EACH ROW EXECUTE FUNCTION abflow_touch_row('config_revision');

-- 2 ---------------------------------------------------------------------------------------------
ALTER TABLE experiments ADD COLUMN arms_revision integer NOT NULL DEFAULT 0;
ALTER TABLE experiments ADD CONSTRAINT experiments_arms_revision_nonneg CHECK (arms_revision >= 0);

COMMENT ON COLUMN experiments.arms_revision IS
'Number of changes of this experiment''s arms (experiment_variants rows inserted, updated or '
'deleted); maintained by abflow_control_arms_revision(). Bumps experiments.version.';

CREATE FUNCTION abflow_control_arms_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE experiments
       SET arms_revision = arms_revision + 1
     WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.experiment_id ELSE NEW.experiment_id END;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION abflow_control_arms_revision() IS
'AFTER INSERT/UPDATE/DELETE trigger on experiment_variants: arms_revision + 1 on the experiment '
'(a no-op when the experiment itself is being deleted).';

CREATE TRIGGER t30_arms_revision AFTER INSERT OR UPDATE OR DELETE ON experiment_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_control_arms_revision();

-- 3 ---------------------------------------------------------------------------------------------
CREATE FUNCTION abflow_control_arms_draft_only() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    exp_id     uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.experiment_id ELSE NEW.experiment_id END;
    exp_status text;
BEGIN
    SELECT e.status INTO exp_status FROM experiments e WHERE e.id = exp_id;
    IF FOUND AND exp_status <> 'draft' THEN
        RAISE EXCEPTION 'experiment_arms_locked: arms of experiment % cannot change while it is %',
            exp_id, exp_status
            USING ERRCODE = '55000',
                  HINT = 'Arms change only while the experiment is draft.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_control_arms_draft_only() IS
'BEFORE INSERT/UPDATE/DELETE trigger on experiment_variants: arms change only while the experiment '
'is draft (SQLSTATE 55000 "experiment_arms_locked"); deletes cascading from the experiment''s own '
'deletion pass.';

-- runs after t10_arm_guard (which locks the experiment row)
CREATE TRIGGER t20_arms_draft_only BEFORE INSERT OR UPDATE OR DELETE ON experiment_variants
    FOR EACH ROW EXECUTE FUNCTION abflow_control_arms_draft_only();

-- 4 ---------------------------------------------------------------------------------------------
CREATE FUNCTION abflow_control_experiment_config_locked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft'
       AND (NEW.primary_metric, NEW.secondary_metrics, NEW.min_sample_size, NEW.confidence_level,
            NEW.significance_threshold, NEW.hash_seed, NEW.coverage, NEW.sequential_testing,
            NEW.sequential_tuning, NEW.minimum_detectable_effect, NEW.deliverable_type)
           IS DISTINCT FROM
           (OLD.primary_metric, OLD.secondary_metrics, OLD.min_sample_size, OLD.confidence_level,
            OLD.significance_threshold, OLD.hash_seed, OLD.coverage, OLD.sequential_testing,
            OLD.sequential_tuning, OLD.minimum_detectable_effect, OLD.deliverable_type) THEN
        RAISE EXCEPTION 'experiment_config_locked: experiment % is %; only its name, description and '
            'hypothesis can change', OLD.id, OLD.status
            USING ERRCODE = '55000';
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_control_experiment_config_locked() IS
'BEFORE UPDATE trigger on experiments: once an experiment has left draft, its metrics, sample size, '
'confidence, significance, hash seed, coverage, sequential settings, minimum detectable effect and '
'deliverable type are frozen (SQLSTATE 55000 "experiment_config_locked").';

CREATE TRIGGER t20_config_locked BEFORE UPDATE ON experiments
    FOR EACH ROW EXECUTE FUNCTION abflow_control_experiment_config_locked();
