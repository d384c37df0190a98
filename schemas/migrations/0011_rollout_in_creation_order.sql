-- 0011_rollout_in_creation_order.sql
-- The rollout ranges of select_variant_for_execution() were laid out in variant_key order,
-- so activating a variant whose key sorts before the others' moved their units to other
-- variants. They are now laid out in creation order (created_at, then id): a new variant
-- takes its share from the end, i.e. from units that were on the base version, and no
-- unit of an existing variant moves. The assignment service's config publisher lists the
-- variants in the same order (services/assignment/control/config_builder.py).

CREATE OR REPLACE FUNCTION select_variant_for_execution(p_schema_id uuid, p_unit_id text)
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

    -- the rollout: ACTIVE variants with a positive allocation, in creation order
    SELECT array_agg(sv.id ORDER BY sv.created_at, sv.id),
           array_agg(sv.variant_key ORDER BY sv.created_at, sv.id),
           array_agg(sv.base_version ORDER BY sv.created_at, sv.id),
           array_agg(sv.traffic_allocation::double precision / 100 ORDER BY sv.created_at, sv.id)
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
'(b) Rollout: ACTIVE variants with traffic_allocation > 0 in creation order (created_at, then id: '
'a new variant takes its share from the base version, no existing unit moves); variant i owns [c_i, min(c_i + traffic_allocation_i::float8 / 100, 1)); '
'bucket = gb_hash_v2(schema key || '':rollout'', unit) -> reason rollout. '
'(c) Otherwise the base version: variant_id NULL, schema_version = current_version, reason default, '
'bucket = the rollout bucket, else the experiment bucket, else NULL. '
'p_unit_id NULL or empty: random() draw, bucket NULL, in_experiment false: among the arms by weight '
'when an experiment runs (experiment_id set, coverage ignored), else among the rollout shares with '
'the remainder on the base version (reason random), else the base version with reason default. '
'All arithmetic is IEEE double precision in the same order as the Python code, so range '
'boundaries compare identically (the config publisher must compute weight = '
'float(traffic_percentage) / 100 and list variants in creation order, created_at then id).';
