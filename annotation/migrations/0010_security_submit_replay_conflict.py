"""A replayed submission ``client_id`` with a different answer is refused with the stored answer (issue 18.6).

Replaces ``sentio_annotation_submit`` of ``0005_distribution_sql_functions`` (``CREATE OR REPLACE``); the ORM service
``annotation.distribution.services.annotation_submit`` does the same, and ``tests/distribution/test_sql_parity.py``
keeps the two equal. Reversing restores the 0005 body.
"""

from django.db import migrations

SUBMIT_SQL = r"""
CREATE OR REPLACE FUNCTION sentio_annotation_submit(
    p_project bigint, p_user integer, p_utterance bigint, p_client_id uuid, p_value jsonb, p_lead_time_ms integer,
    p_perspective text, p_schema_version bigint, p_disagreement_key text, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    v_existing record;
    v_item record;
    v_reservation record;
    v_late boolean;
    v_annotation_id bigint;
    v_disagreement double precision;
BEGIN
    -- One annotator's requests run one at a time; other annotators in parallel.
    PERFORM 1 FROM annotation_membership WHERE project_id = p_project AND user_id = p_user ORDER BY id LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    -- The caller validated the answer against the version it knew; a lead may have switched versions since.
    PERFORM 1 FROM annotation_project WHERE id = p_project AND schema_version_id = p_schema_version;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'schema_changed');
    END IF;
    SELECT id, project_id, annotator_id, utterance_id, value, perspective INTO v_existing
        FROM annotation_annotation WHERE client_id = p_client_id;
    IF FOUND THEN
        IF v_existing.project_id IS DISTINCT FROM p_project OR v_existing.annotator_id IS DISTINCT FROM p_user
                OR v_existing.utterance_id <> p_utterance THEN
            RETURN jsonb_build_object('outcome', 'client_id_reused');
        END IF;
        -- A retry carries the same answer; a different one is refused with the stored answer (never a silent 200).
        IF v_existing.value IS DISTINCT FROM p_value OR v_existing.perspective IS DISTINCT FROM p_perspective THEN
            RETURN jsonb_build_object('outcome', 'client_id_conflict', 'annotation', sentio_annotation_json(v_existing.id));
        END IF;
        RETURN jsonb_build_object('outcome', 'replayed', 'annotation', sentio_annotation_json(v_existing.id));
    END IF;
    SELECT id, is_gold, target_count, annotation_count, reserved_count INTO v_item
        FROM annotation_projectitem WHERE project_id = p_project AND utterance_id = p_utterance FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    -- Read under the item lock: holds of an item change only while it is locked.
    SELECT id, status INTO v_reservation
        FROM annotation_reservation WHERE item_id = v_item.id AND annotator_id = p_user ORDER BY id LIMIT 1;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    IF v_reservation.status = 'submitted' THEN
        RETURN jsonb_build_object('outcome', 'already_annotated', 'annotation_id', (
            SELECT id FROM annotation_annotation
            WHERE project_id = p_project AND utterance_id = p_utterance AND annotator_id = p_user ORDER BY id LIMIT 1));
    END IF;
    v_late := v_reservation.status <> 'held';
    IF v_late AND NOT v_item.is_gold AND v_item.annotation_count + v_item.reserved_count >= v_item.target_count THEN
        RETURN jsonb_build_object('outcome', 'item_complete');
    END IF;
    INSERT INTO annotation_annotation (
        utterance_id, project_id, schema_version_id, value, perspective, origin, external_rater, model_version,
        annotator_id, client_id, lead_time_ms, created_at, updated_at)
    VALUES (
        p_utterance, p_project, p_schema_version, p_value, p_perspective, 'human', '', '',
        p_user, p_client_id, p_lead_time_ms, p_now, p_now)
    RETURNING id INTO v_annotation_id;
    UPDATE annotation_reservation SET status = 'submitted', updated_at = p_now WHERE id = v_reservation.id;
    IF v_item.annotation_count + 1 >= 2 THEN
        IF p_disagreement_key IS NULL THEN
            v_disagreement := 0.0;
        ELSE
            -- 1 - share of the most frequent answer to the first single-choice question
            SELECT COALESCE(CASE WHEN sum(n) >= 2 THEN 1.0 - max(n)::float8 / sum(n) END, 0.0) INTO v_disagreement
            FROM (
                SELECT count(*) AS n FROM annotation_annotation
                WHERE project_id = p_project AND utterance_id = p_utterance AND origin = 'human'
                    AND jsonb_typeof(value -> p_disagreement_key) <> 'null'
                GROUP BY value -> p_disagreement_key
            ) answers;
        END IF;
    END IF;
    UPDATE annotation_projectitem SET
        annotation_count = annotation_count + 1,
        reserved_count = reserved_count - CASE WHEN v_late OR v_item.is_gold THEN 0 ELSE 1 END,
        disagreement = COALESCE(v_disagreement, disagreement)
    WHERE id = v_item.id;
    RETURN jsonb_build_object('outcome', 'created', 'late', v_late, 'annotation', sentio_annotation_json(v_annotation_id));
END
$fn$;
"""

PREVIOUS_SUBMIT_SQL = r"""
CREATE OR REPLACE FUNCTION sentio_annotation_submit(
    p_project bigint, p_user integer, p_utterance bigint, p_client_id uuid, p_value jsonb, p_lead_time_ms integer,
    p_perspective text, p_schema_version bigint, p_disagreement_key text, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    v_existing record;
    v_item record;
    v_reservation record;
    v_late boolean;
    v_annotation_id bigint;
    v_disagreement double precision;
BEGIN
    -- One annotator's requests run one at a time; other annotators in parallel.
    PERFORM 1 FROM annotation_membership WHERE project_id = p_project AND user_id = p_user ORDER BY id LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    -- The caller validated the answer against the version it knew; a lead may have switched versions since.
    PERFORM 1 FROM annotation_project WHERE id = p_project AND schema_version_id = p_schema_version;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'schema_changed');
    END IF;
    SELECT id, project_id, annotator_id, utterance_id INTO v_existing
        FROM annotation_annotation WHERE client_id = p_client_id;
    IF FOUND THEN
        IF v_existing.project_id IS DISTINCT FROM p_project OR v_existing.annotator_id IS DISTINCT FROM p_user
                OR v_existing.utterance_id <> p_utterance THEN
            RETURN jsonb_build_object('outcome', 'client_id_reused');
        END IF;
        RETURN jsonb_build_object('outcome', 'replayed', 'annotation', sentio_annotation_json(v_existing.id));
    END IF;
    SELECT id, is_gold, target_count, annotation_count, reserved_count INTO v_item
        FROM annotation_projectitem WHERE project_id = p_project AND utterance_id = p_utterance FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    -- Read under the item lock: holds of an item change only while it is locked.
    SELECT id, status INTO v_reservation
        FROM annotation_reservation WHERE item_id = v_item.id AND annotator_id = p_user ORDER BY id LIMIT 1;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    IF v_reservation.status = 'submitted' THEN
        RETURN jsonb_build_object('outcome', 'already_annotated', 'annotation_id', (
            SELECT id FROM annotation_annotation
            WHERE project_id = p_project AND utterance_id = p_utterance AND annotator_id = p_user ORDER BY id LIMIT 1));
    END IF;
    v_late := v_reservation.status <> 'held';
    IF v_late AND NOT v_item.is_gold AND v_item.annotation_count + v_item.reserved_count >= v_item.target_count THEN
        RETURN jsonb_build_object('outcome', 'item_complete');
    END IF;
    INSERT INTO annotation_annotation (
        utterance_id, project_id, schema_version_id, value, perspective, origin, external_rater, model_version,
        annotator_id, client_id, lead_time_ms, created_at, updated_at)
    VALUES (
        p_utterance, p_project, p_schema_version, p_value, p_perspective, 'human', '', '',
        p_user, p_client_id, p_lead_time_ms, p_now, p_now)
    RETURNING id INTO v_annotation_id;
    UPDATE annotation_reservation SET status = 'submitted', updated_at = p_now WHERE id = v_reservation.id;
    IF v_item.annotation_count + 1 >= 2 THEN
        IF p_disagreement_key IS NULL THEN
            v_disagreement := 0.0;
        ELSE
            -- 1 - share of the most frequent answer to the first single-choice question
            SELECT COALESCE(CASE WHEN sum(n) >= 2 THEN 1.0 - max(n)::float8 / sum(n) END, 0.0) INTO v_disagreement
            FROM (
                SELECT count(*) AS n FROM annotation_annotation
                WHERE project_id = p_project AND utterance_id = p_utterance AND origin = 'human'
                    AND jsonb_typeof(value -> p_disagreement_key) <> 'null'
                GROUP BY value -> p_disagreement_key
            ) answers;
        END IF;
    END IF;
    UPDATE annotation_projectitem SET
        annotation_count = annotation_count + 1,
        reserved_count = reserved_count - CASE WHEN v_late OR v_item.is_gold THEN 0 ELSE 1 END,
        disagreement = COALESCE(v_disagreement, disagreement)
    WHERE id = v_item.id;
    RETURN jsonb_build_object('outcome', 'created', 'late', v_late, 'annotation', sentio_annotation_json(v_annotation_id));
END
$fn$;
"""


def _forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SUBMIT_SQL)


def _backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS_SUBMIT_SQL)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0009_next_item_transcript")]

    operations = [migrations.RunPython(_forward, _backward)]
