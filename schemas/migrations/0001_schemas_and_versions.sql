-- 0001_schemas_and_versions.sql
-- Workflow schemas and their immutable, numbered versions, plus the row-maintenance
-- helpers every later migration uses. Applied by the runner inside one transaction.

-- ---------------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------------

-- Optimistic-concurrency maintenance for every mutable table.
--   * created_at can never change;
--   * version := OLD.version + 1 and updated_at := now() when any column other than
--     version/updated_at (and the columns named in the trigger arguments) changed;
--     otherwise both keep their old values.
-- Writers therefore use  UPDATE ... WHERE id = $1 AND version = $expected RETURNING version
-- and may (but need not) write  version = version + 1  themselves: the trigger
-- overrides whatever value they put in the version column.
CREATE FUNCTION abflow_touch_row() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ignored text[] := ARRAY['version', 'updated_at', 'created_at'] || TG_ARGV;
BEGIN
    NEW.created_at := OLD.created_at;
    IF (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
    ELSE
        NEW.version := OLD.version;
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_touch_row() IS
'BEFORE UPDATE row trigger: keeps created_at, bumps version by one and sets updated_at = now() '
'when a column other than version/updated_at/created_at (and the column names given as trigger '
'arguments) changed. Used for optimistic concurrency: UPDATE ... WHERE version = $expected.';

-- Rejects a change of the listed columns (trigger arguments) on UPDATE.
CREATE FUNCTION abflow_forbid_column_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    col text;
BEGIN
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF (to_jsonb(NEW) -> col) IS DISTINCT FROM (to_jsonb(OLD) -> col) THEN
            RAISE EXCEPTION 'immutable_column: %.% cannot be changed', TG_TABLE_NAME, col
                USING ERRCODE = '55000',
                      HINT = 'Create a new row instead of re-parenting this one.';
        END IF;
    END LOOP;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_forbid_column_change() IS
'BEFORE UPDATE row trigger: raises SQLSTATE 55000 "immutable_column: <table>.<column> cannot be '
'changed" when one of the columns named in the trigger arguments changes.';

-- ---------------------------------------------------------------------------------
-- workflow_schemas
-- ---------------------------------------------------------------------------------

CREATE TABLE workflow_schemas (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    key              text        NOT NULL,
    name             text        NOT NULL,
    description      text        NULL,
    deliverable_type text        NULL,
    current_version  integer     NULL,
    status           text        NOT NULL DEFAULT 'active',
    config_revision  bigint      NOT NULL DEFAULT 0,
    created_by       text        NULL,
    version          integer     NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_schemas_pkey PRIMARY KEY (id),
    CONSTRAINT workflow_schemas_key_key UNIQUE (key),
    CONSTRAINT workflow_schemas_key_format CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,99}$'),
    CONSTRAINT workflow_schemas_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT workflow_schemas_status_check CHECK (status IN ('active', 'archived')),
    CONSTRAINT workflow_schemas_current_version_positive CHECK (current_version IS NULL OR current_version >= 1),
    CONSTRAINT workflow_schemas_config_revision_nonneg CHECK (config_revision >= 0),
    CONSTRAINT workflow_schemas_version_positive CHECK (version >= 1)
);

COMMENT ON TABLE workflow_schemas IS
'A workflow schema (one orchestrated workflow type). current_version = latest published version '
'number (NULL until the first version exists); config_revision = revision of the published '
'assignment configuration (AssignmentConfig.revision), never decreases.';

CREATE TRIGGER zz_touch_row BEFORE UPDATE ON workflow_schemas
    FOR EACH ROW EXECUTE FUNCTION abflow_touch_row();

-- config_revision only grows (consumers ignore configs whose revision is not newer).
CREATE FUNCTION abflow_config_revision_monotonic() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.config_revision < OLD.config_revision THEN
        RAISE EXCEPTION 'config_revision_regressed: schema % config_revision cannot go from % to %',
            OLD.id, OLD.config_revision, NEW.config_revision
            USING ERRCODE = '23514';
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_config_revision_monotonic() IS
'BEFORE UPDATE trigger on workflow_schemas: config_revision may not decrease (SQLSTATE 23514, '
'"config_revision_regressed").';

CREATE TRIGGER t10_config_revision_monotonic BEFORE UPDATE OF config_revision ON workflow_schemas
    FOR EACH ROW EXECUTE FUNCTION abflow_config_revision_monotonic();

-- ---------------------------------------------------------------------------------
-- workflow_schema_versions (immutable)
-- ---------------------------------------------------------------------------------

CREATE TABLE workflow_schema_versions (
    schema_id      uuid        NOT NULL,
    version_number integer     NOT NULL,
    definition     jsonb       NOT NULL,
    change_summary text        NULL,
    created_by     text        NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_schema_versions_pkey PRIMARY KEY (schema_id, version_number),
    CONSTRAINT workflow_schema_versions_schema_fkey FOREIGN KEY (schema_id)
        REFERENCES workflow_schemas (id) ON DELETE CASCADE,
    CONSTRAINT workflow_schema_versions_number_positive CHECK (version_number >= 1),
    -- SchemaDefinition: exactly {workflow_steps: [object...], risk_config: {}, config: {}}
    CONSTRAINT workflow_schema_versions_definition_shape CHECK (
        jsonb_typeof(definition) = 'object'
        AND jsonb_typeof(definition -> 'workflow_steps') = 'array'
        AND jsonb_typeof(definition -> 'risk_config') = 'object'
        AND jsonb_typeof(definition -> 'config') = 'object'
        AND (definition - ARRAY['workflow_steps', 'risk_config', 'config']) = '{}'::jsonb
        AND NOT jsonb_path_exists(definition, '$.workflow_steps[*] ? (@.type() != "object")')
    )
);

COMMENT ON TABLE workflow_schema_versions IS
'Immutable history of a schema''s definitions. definition = SchemaDefinition '
'{workflow_steps: [object], risk_config: object, config: object} (no other keys). UPDATE is '
'rejected; DELETE is rejected unless it cascades from deleting the parent schema.';

-- workflow_schemas.current_version must name an existing version. Deferred, so a schema and
-- its first version can be inserted in either order inside one transaction.
ALTER TABLE workflow_schemas
    ADD CONSTRAINT workflow_schemas_current_version_fkey
    FOREIGN KEY (id, current_version)
    REFERENCES workflow_schema_versions (schema_id, version_number)
    DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION abflow_schema_version_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'schema_version_immutable: version % of schema % cannot be updated',
            OLD.version_number, OLD.schema_id
            USING ERRCODE = '55000',
                  HINT = 'Publish a new version instead.';
    END IF;
    -- DELETE: allowed only as part of deleting the parent schema (ON DELETE CASCADE runs
    -- after the parent row is gone, so it is no longer visible here).
    IF EXISTS (SELECT 1 FROM workflow_schemas s WHERE s.id = OLD.schema_id) THEN
        RAISE EXCEPTION 'schema_version_immutable: version % of schema % cannot be deleted',
            OLD.version_number, OLD.schema_id
            USING ERRCODE = '55000',
                  HINT = 'Archive the schema instead, or delete the schema itself.';
    END IF;
    RETURN OLD;
END;
$$;

COMMENT ON FUNCTION abflow_schema_version_immutable() IS
'BEFORE UPDATE/DELETE trigger on workflow_schema_versions: raises SQLSTATE 55000 '
'"schema_version_immutable: ..." except for deletes cascading from a deleted workflow_schemas row.';

CREATE TRIGGER t10_immutable BEFORE UPDATE OR DELETE ON workflow_schema_versions
    FOR EACH ROW EXECUTE FUNCTION abflow_schema_version_immutable();
