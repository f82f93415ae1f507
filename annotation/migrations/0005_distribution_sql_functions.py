"""PostgreSQL functions for the annotator's hot path: submit an answer and reserve the next item in one round trip.

They implement, statement for statement, what ``annotation.distribution`` does with the ORM (see
``annotation/distribution.md``); ``annotation.distribution_pg`` calls them. SQLite keeps using the ORM services,
so nothing is created there. A later change to the algorithm needs a new migration with ``CREATE OR REPLACE``.
"""

from django.db import migrations

FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION sentio_annotation_json(p_annotation bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
    -- plpgsql, not sql: its plan is cached per session instead of parsed and planned on every call.
    RETURN (
        SELECT jsonb_build_object(
            'id', a.id, 'utterance', a.utterance_id, 'utterance_text', u.text, 'language', l.code,
            'direction', l.direction, 'value', a.value, 'perspective', a.perspective, 'client_id', a.client_id,
            'lead_time_ms', a.lead_time_ms, 'created_at', a.created_at, 'updated_at', a.updated_at,
            'reviewed_at', a.reviewed_at, 'editable', a.reviewed_at IS NULL)
        FROM annotation_annotation a
        JOIN corpora_utterance u ON u.id = a.utterance_id
        JOIN corpora_language l ON l.id = u.language_id
        WHERE a.id = p_annotation);
END
$fn$;

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

CREATE OR REPLACE FUNCTION sentio_next_item(
    p_project bigint, p_user integer, p_random_offset integer, p_now timestamptz
) RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    v_project record;
    v_membership_id bigint;
    v_has_languages boolean;
    v_held record;
    v_item_id bigint;
    v_item_utterance bigint;
    v_item_gold boolean;
    v_resumed boolean := false;
    v_expires timestamptz;
    v_handed bigint;
    v_gold_turn boolean := false;
    v_expired_items bigint[];
    v_locked_items bigint[];
    v_utterance jsonb;
    v_context jsonb := '[]'::jsonb;
    v_suggestion jsonb;
BEGIN
    SELECT id INTO v_membership_id
        FROM annotation_membership WHERE project_id = p_project AND user_id = p_user ORDER BY id LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('outcome', 'not_found');
    END IF;
    -- "Not done by me" is a scalar subquery on purpose: probed per candidate through reservation_item_annotator,
    -- where NOT EXISTS let the planner read the annotator's whole history for every pick.
    SELECT id, gold_rate, reservation_seconds, ordering_strategy, suggestion_policy, prediction_model_version,
           schema_version_id
        INTO v_project FROM annotation_project WHERE id = p_project;
    v_expires := p_now + make_interval(secs => v_project.reservation_seconds);

    SELECT r.id, r.item_id, r.expires_at INTO v_held FROM annotation_reservation r
        WHERE r.project_id = p_project AND r.annotator_id = p_user AND r.status = 'held' LIMIT 1;
    IF FOUND THEN
        -- The item I already hold; a lapsed hold nobody released yet is renewed (its slot was never given away).
        v_resumed := true;
        IF v_held.expires_at <= p_now THEN
            UPDATE annotation_reservation SET expires_at = v_expires, updated_at = p_now WHERE id = v_held.id;
        ELSE
            v_expires := v_held.expires_at;
        END IF;
        SELECT id, utterance_id, is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem WHERE id = v_held.item_id;
    ELSE
        -- Release lapsed holds of the project; items someone else has locked are left for the next call.
        SELECT array_agg(item_id) INTO v_expired_items FROM (
            SELECT item_id FROM annotation_reservation
            WHERE project_id = p_project AND status = 'held' AND expires_at <= p_now ORDER BY expires_at LIMIT 500
        ) lapsed;
        IF v_expired_items IS NOT NULL THEN
            SELECT array_agg(id) INTO v_locked_items FROM (
                SELECT id FROM annotation_projectitem WHERE id = ANY(v_expired_items) ORDER BY id FOR UPDATE SKIP LOCKED
            ) locked;
            IF v_locked_items IS NOT NULL THEN
                UPDATE annotation_reservation SET status = 'expired', updated_at = p_now
                    WHERE item_id = ANY(v_locked_items) AND status = 'held' AND expires_at <= p_now;
                UPDATE annotation_projectitem i SET reserved_count = (
                    SELECT count(*) FROM annotation_reservation r WHERE r.item_id = i.id AND r.status = 'held'
                ) WHERE i.id = ANY(v_locked_items);
            END IF;
        END IF;

        v_has_languages := EXISTS (SELECT 1 FROM annotation_membership_languages WHERE membership_id = v_membership_id);
        IF v_project.gold_rate > 0 THEN
            -- A stable draw per (annotator, items handed so far); distribution._gold_turn computes the same.
            SELECT count(*) INTO v_handed FROM annotation_reservation WHERE project_id = p_project AND annotator_id = p_user;
            v_gold_turn := ('x' || substr(md5(p_project || ':' || p_user || ':' || v_handed), 1, 8))::bit(32)::bigint
                / 4294967296.0 < v_project.gold_rate;
        END IF;
        IF v_gold_turn THEN
            -- Gold items are not capped, so no row lock is needed to hand one out.
            SELECT i.id, i.utterance_id, i.is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem i
            WHERE i.project_id = p_project AND i.is_gold
                AND (NOT v_has_languages OR i.language_id IN (
                    SELECT language_id FROM annotation_membership_languages WHERE membership_id = v_membership_id))
                AND COALESCE((SELECT r.status FROM annotation_reservation r WHERE r.item_id = i.id
                              AND r.annotator_id = p_user LIMIT 1), '') NOT IN ('skipped', 'submitted')
            ORDER BY i.random_key < p_random_offset, i.random_key, i.id LIMIT 1;
        END IF;
        IF v_item_id IS NULL THEN
            -- One static statement per strategy, not one built with EXECUTE: each keeps its cached plan, and
            -- sequential and random keep index order, so they stop at the first free row.
            IF v_project.ordering_strategy = 'random' THEN
                -- One shared shuffle entered at a point fixed per annotator; two range scans use the index.
                SELECT i.id, i.utterance_id, i.is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem i
                WHERE i.project_id = p_project AND NOT i.is_gold AND i.annotation_count < i.target_count
                    AND i.annotation_count < i.target_count - i.reserved_count AND i.random_key >= p_random_offset
                    AND (NOT v_has_languages OR i.language_id IN (
                        SELECT language_id FROM annotation_membership_languages WHERE membership_id = v_membership_id))
                    AND COALESCE((SELECT r.status FROM annotation_reservation r WHERE r.item_id = i.id AND r.annotator_id = p_user
                                  LIMIT 1), '') NOT IN ('skipped', 'submitted')
                ORDER BY i.random_key, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
                IF v_item_id IS NULL THEN
                    SELECT i.id, i.utterance_id, i.is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem i
                    WHERE i.project_id = p_project AND NOT i.is_gold AND i.annotation_count < i.target_count
                        AND i.annotation_count < i.target_count - i.reserved_count AND i.random_key < p_random_offset
                        AND (NOT v_has_languages OR i.language_id IN (
                            SELECT language_id FROM annotation_membership_languages WHERE membership_id = v_membership_id))
                        AND COALESCE((SELECT r.status FROM annotation_reservation r WHERE r.item_id = i.id
                                      AND r.annotator_id = p_user LIMIT 1), '') NOT IN ('skipped', 'submitted')
                    ORDER BY i.random_key, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
                END IF;
            ELSIF v_project.ordering_strategy = 'least_annotated' THEN
                SELECT i.id, i.utterance_id, i.is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem i
                WHERE i.project_id = p_project AND NOT i.is_gold AND i.annotation_count < i.target_count
                    AND i.annotation_count < i.target_count - i.reserved_count
                    AND (NOT v_has_languages OR i.language_id IN (
                        SELECT language_id FROM annotation_membership_languages WHERE membership_id = v_membership_id))
                    AND COALESCE((SELECT r.status FROM annotation_reservation r WHERE r.item_id = i.id AND r.annotator_id = p_user
                                  LIMIT 1), '') NOT IN ('skipped', 'submitted')
                ORDER BY i.annotation_count + i.reserved_count, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
            ELSIF v_project.ordering_strategy = 'disagreement' THEN
                SELECT i.id, i.utterance_id, i.is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem i
                WHERE i.project_id = p_project AND NOT i.is_gold AND i.annotation_count < i.target_count
                    AND i.annotation_count < i.target_count - i.reserved_count
                    AND (NOT v_has_languages OR i.language_id IN (
                        SELECT language_id FROM annotation_membership_languages WHERE membership_id = v_membership_id))
                    AND COALESCE((SELECT r.status FROM annotation_reservation r WHERE r.item_id = i.id AND r.annotator_id = p_user
                                  LIMIT 1), '') NOT IN ('skipped', 'submitted')
                ORDER BY i.disagreement DESC, i.annotation_count DESC, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
            ELSIF v_project.ordering_strategy = 'uncertainty' THEN
                SELECT i.id, i.utterance_id, i.is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem i
                WHERE i.project_id = p_project AND NOT i.is_gold AND i.annotation_count < i.target_count
                    AND i.annotation_count < i.target_count - i.reserved_count
                    AND (NOT v_has_languages OR i.language_id IN (
                        SELECT language_id FROM annotation_membership_languages WHERE membership_id = v_membership_id))
                    AND COALESCE((SELECT r.status FROM annotation_reservation r WHERE r.item_id = i.id AND r.annotator_id = p_user
                                  LIMIT 1), '') NOT IN ('skipped', 'submitted')
                ORDER BY i.uncertainty DESC NULLS LAST, i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
            ELSE
                SELECT i.id, i.utterance_id, i.is_gold INTO v_item_id, v_item_utterance, v_item_gold FROM annotation_projectitem i
                WHERE i.project_id = p_project AND NOT i.is_gold AND i.annotation_count < i.target_count
                    AND i.annotation_count < i.target_count - i.reserved_count
                    AND (NOT v_has_languages OR i.language_id IN (
                        SELECT language_id FROM annotation_membership_languages WHERE membership_id = v_membership_id))
                    AND COALESCE((SELECT r.status FROM annotation_reservation r WHERE r.item_id = i.id AND r.annotator_id = p_user
                                  LIMIT 1), '') NOT IN ('skipped', 'submitted')
                ORDER BY i.id LIMIT 1 FOR UPDATE OF i SKIP LOCKED;
            END IF;
        END IF;
        IF v_item_id IS NULL THEN
            RETURN jsonb_build_object('outcome', 'empty');
        END IF;
        -- An earlier hold of this item that lapsed is reused: one row per (item, annotator).
        INSERT INTO annotation_reservation (project_id, item_id, utterance_id, annotator_id, status, expires_at,
                                            created_at, updated_at)
        VALUES (p_project, v_item_id, v_item_utterance, p_user, 'held', v_expires, p_now, p_now)
        ON CONFLICT (project_id, utterance_id, annotator_id) DO UPDATE
            SET item_id = EXCLUDED.item_id, status = 'held', expires_at = EXCLUDED.expires_at,
                updated_at = EXCLUDED.updated_at;
        IF NOT v_item_gold THEN
            UPDATE annotation_projectitem SET reserved_count = reserved_count + 1 WHERE id = v_item_id;
        END IF;
    END IF;

    SELECT jsonb_build_object(
        'id', u.id, 'text', u.text, 'audio', u.audio, 'audio_duration_s', u.audio_duration_s,
        'turn_index', u.turn_index, 'conversation', c.external_id, 'conversation_id', u.conversation_id,
        'speaker', CASE WHEN s.id IS NULL THEN NULL ELSE COALESCE(NULLIF(s.attributes ->> 'name', ''), s.external_id) END,
        'language', jsonb_build_object('code', l.code, 'name', l.name, 'script', l.script, 'direction', l.direction))
    INTO v_utterance
    FROM corpora_utterance u
    JOIN corpora_language l ON l.id = u.language_id
    LEFT JOIN corpora_speaker s ON s.id = u.speaker_id
    LEFT JOIN corpora_conversation c ON c.id = u.conversation_id
    WHERE u.id = v_item_utterance;

    IF (v_utterance ->> 'conversation_id') IS NOT NULL AND (v_utterance ->> 'turn_index') IS NOT NULL THEN
        SELECT COALESCE(jsonb_agg(turn ORDER BY turn_index), '[]'::jsonb) INTO v_context FROM (
            SELECT t.turn_index, jsonb_build_object(
                'utterance_id', t.id, 'turn_index', t.turn_index, 'text', t.text, 'audio', t.audio,
                'speaker', CASE WHEN s.id IS NULL THEN NULL
                                ELSE COALESCE(NULLIF(s.attributes ->> 'name', ''), s.external_id) END,
                'language', jsonb_build_object('code', l.code, 'name', l.name, 'script', l.script,
                                               'direction', l.direction)) AS turn
            FROM corpora_utterance t
            JOIN corpora_language l ON l.id = t.language_id
            LEFT JOIN corpora_speaker s ON s.id = t.speaker_id
            WHERE t.conversation_id = (v_utterance ->> 'conversation_id')::bigint
                AND t.turn_index < (v_utterance ->> 'turn_index')::integer
            ORDER BY t.turn_index DESC LIMIT 5
        ) previous;
    END IF;

    IF v_project.suggestion_policy <> 'hidden' THEN
        SELECT jsonb_build_object('model_version', p.model_version, 'label', p.label, 'scores', p.scores,
                                  'uncertainty', p.uncertainty)
        INTO v_suggestion
        FROM annotation_prediction p
        WHERE p.utterance_id = v_item_utterance
            AND (v_project.prediction_model_version = '' OR p.model_version = v_project.prediction_model_version)
        ORDER BY p.created_at DESC, p.id DESC LIMIT 1;
    END IF;

    RETURN jsonb_build_object('outcome', 'item', 'utterance', v_utterance, 'context', v_context,
                              'suggestion_policy', v_project.suggestion_policy, 'suggestion', v_suggestion,
                              'schema_version_id', v_project.schema_version_id, 'expires_at', v_expires,
                              'resumed', v_resumed);
END
$fn$;
CREATE OR REPLACE FUNCTION sentio_submit_and_next(
    p_project bigint, p_user integer, p_utterance bigint, p_client_id uuid, p_value jsonb, p_lead_time_ms integer,
    p_perspective text, p_schema_version bigint, p_disagreement_key text, p_now timestamptz,
    p_random_offset integer, p_want_next boolean
) RETURNS jsonb LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    v_result jsonb;
BEGIN
    v_result := sentio_annotation_submit(p_project, p_user, p_utterance, p_client_id, p_value, p_lead_time_ms,
                                         p_perspective, p_schema_version, p_disagreement_key, p_now);
    IF p_want_next AND v_result ->> 'outcome' IN ('created', 'replayed') THEN
        v_result := v_result || jsonb_build_object('next', sentio_next_item(p_project, p_user, p_random_offset, p_now));
    END IF;
    RETURN v_result;
END
$fn$;
"""

DROP_SQL = """
DROP FUNCTION IF EXISTS sentio_submit_and_next(bigint, integer, bigint, uuid, jsonb, integer, text, bigint, text, timestamptz, integer, boolean);
DROP FUNCTION IF EXISTS sentio_next_item(bigint, integer, integer, timestamptz);
DROP FUNCTION IF EXISTS sentio_annotation_submit(bigint, integer, bigint, uuid, jsonb, integer, text, bigint, text, timestamptz);
DROP FUNCTION IF EXISTS sentio_annotation_json(bigint);
"""


def _create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS_SQL)


def _drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0004_quality_and_project_models")]

    operations = [migrations.RunPython(_create, _drop)]
