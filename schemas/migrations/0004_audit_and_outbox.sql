-- 0004_audit_and_outbox.sql
-- Audit trail of API mutations and the transactional outbox of assignment configurations.

-- ---------------------------------------------------------------------------------
-- audit_log (append-only)
-- ---------------------------------------------------------------------------------

CREATE TABLE audit_log (
    id          bigserial   NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor       text        NOT NULL,
    action      text        NOT NULL,
    entity_type text        NOT NULL,
    entity_id   text        NOT NULL,
    before      jsonb       NULL,
    after       jsonb       NULL,
    request_id  text        NULL,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id),
    CONSTRAINT audit_log_actor_nonempty CHECK (char_length(actor) BETWEEN 1 AND 200),
    CONSTRAINT audit_log_action_nonempty CHECK (char_length(action) BETWEEN 1 AND 100),
    CONSTRAINT audit_log_entity_type_nonempty CHECK (char_length(entity_type) BETWEEN 1 AND 100)
);

COMMENT ON TABLE audit_log IS
'Append-only record of every mutation made through the API (written in the same transaction as '
'the change): who (actor), what (action, entity_type, entity_id), the row before and after as '
'JSON, and the request id. UPDATE is rejected; DELETE is left to retention jobs.';

CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, occurred_at);

CREATE FUNCTION abflow_audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log_append_only: audit_log row % cannot be updated', OLD.id
        USING ERRCODE = '55000';
END;
$$;

COMMENT ON FUNCTION abflow_audit_log_append_only() IS
'BEFORE UPDATE trigger on audit_log: raises SQLSTATE 55000 "audit_log_append_only".';

CREATE TRIGGER t10_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION abflow_audit_log_append_only();

-- ---------------------------------------------------------------------------------
-- config_outbox (transactional outbox of the compacted config topic)
-- ---------------------------------------------------------------------------------

CREATE TABLE config_outbox (
    id           bigserial   NOT NULL,
    schema_id    uuid        NOT NULL,
    revision     bigint      NOT NULL,
    event_type   text        NOT NULL,
    payload      jsonb       NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz NULL,
    CONSTRAINT config_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT config_outbox_schema_revision_key UNIQUE (schema_id, event_type, revision),
    CONSTRAINT config_outbox_revision_positive CHECK (revision >= 1),
    CONSTRAINT config_outbox_event_type_check CHECK (event_type IN ('config', 'tombstone')),
    CONSTRAINT config_outbox_payload_check CHECK (
        (event_type = 'config' AND payload IS NOT NULL AND jsonb_typeof(payload) = 'object')
        OR (event_type = 'tombstone' AND payload IS NULL)),
    CONSTRAINT config_outbox_published_after_created CHECK (published_at IS NULL OR published_at >= created_at)
);

COMMENT ON TABLE config_outbox IS
'Transactional outbox: the API inserts the new AssignmentConfig (event_type config, payload = the '
'JSON of the config, revision = workflow_schemas.config_revision) or a tombstone (payload NULL, '
'schema deleted) in the same transaction as the change. A relay publishes unpublished rows in id '
'order to the compacted config topic (key = schema_id) and then sets published_at. schema_id is '
'deliberately not a foreign key: tombstones outlive their schema.';

CREATE INDEX config_outbox_unpublished_idx ON config_outbox (id) WHERE published_at IS NULL;
CREATE INDEX config_outbox_schema_idx ON config_outbox (schema_id, revision);

-- Only published_at may change after insert; wake the relay on insert.
CREATE FUNCTION abflow_config_outbox_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.schema_id, NEW.revision, NEW.event_type, NEW.payload, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.schema_id, OLD.revision, OLD.event_type, OLD.payload, OLD.created_at) THEN
        RAISE EXCEPTION 'config_outbox_immutable: only published_at of outbox row % may change', OLD.id
            USING ERRCODE = '55000';
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION abflow_config_outbox_guard() IS
'BEFORE UPDATE trigger on config_outbox: only published_at may change (SQLSTATE 55000 '
'"config_outbox_immutable").';

CREATE TRIGGER t10_guard BEFORE UPDATE ON config_outbox
    FOR EACH ROW EXECUTE FUNCTION abflow_config_outbox_guard();

CREATE FUNCTION abflow_config_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('config_outbox', NEW.id::text);
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION abflow_config_outbox_notify() IS
'AFTER INSERT trigger on config_outbox: NOTIFY config_outbox, <id> (delivered at commit) so a '
'relay can LISTEN instead of polling tightly.';

CREATE TRIGGER t20_notify AFTER INSERT ON config_outbox
    FOR EACH ROW EXECUTE FUNCTION abflow_config_outbox_notify();
