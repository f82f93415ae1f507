"""Suggestions come only from models registered on the project (issue: predictions stay in their project).

``sentio_suggestion`` holds the rule (the same as ``distribution.services.project_prediction_versions``): the newest
prediction for the utterance by a model version registered on this project for one of its questions (not a
speech recogniser), narrowed to the project's ``prediction_model_version`` when one is chosen. ``sentio_next_item``
is the function of migration 0005 with its suggestion query replaced by a call to it; changing the rule later only
needs a CREATE OR REPLACE of ``sentio_suggestion``.
"""

import importlib

from django.db import migrations

FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION sentio_suggestion(p_project bigint, p_utterance bigint, p_model_version text)
RETURNS jsonb LANGUAGE sql STABLE AS $fn$
    SELECT jsonb_build_object('model_version', p.model_version, 'label', p.label, 'scores', p.scores,
                              'uncertainty', p.uncertainty)
    FROM annotation_prediction p
    WHERE p.utterance_id = p_utterance
        AND p.model_version IN (
            SELECT m.model_version FROM annotation_projectmodel m
            WHERE m.project_id = p_project AND m.task <> 'asr'
                AND (p_model_version = '' OR m.model_version = p_model_version))
    ORDER BY p.created_at DESC, p.id DESC LIMIT 1
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
        v_suggestion := sentio_suggestion(p_project, v_item_utterance, v_project.prediction_model_version);
    END IF;

    RETURN jsonb_build_object('outcome', 'item', 'utterance', v_utterance, 'context', v_context,
                              'suggestion_policy', v_project.suggestion_policy, 'suggestion', v_suggestion,
                              'schema_version_id', v_project.schema_version_id, 'expires_at', v_expires,
                              'resumed', v_resumed);
END
$fn$;
"""


def _create(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS_SQL)


def _restore(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("annotation.migrations.0005_distribution_sql_functions")
        schema_editor.execute(previous.FUNCTIONS_SQL)
        schema_editor.execute("DROP FUNCTION IF EXISTS sentio_suggestion(bigint, bigint, text);")


class Migration(migrations.Migration):
    dependencies = [("annotation", "0006_gold_quality_rules")]

    operations = [migrations.RunPython(_create, _restore)]
