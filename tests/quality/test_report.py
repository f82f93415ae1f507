"""The stored report equals annotation.agreement called directly on the same ratings; stale detection; imports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotation.agreement import (
    alpha_by_group,
    annotator_agreement,
    classification_report,
    concordance_correlation,
    fleiss_kappa,
    krippendorff_alpha,
    label_set_ratings,
    majority_vote,
    masi_alpha,
    observed_agreement,
    pairwise_alpha,
    per_label_alpha,
    ratings_from_long,
)
from annotation.models import AggregatedLabel, Annotation, Origin
from annotation.quality.selectors import (
    agreement_report_state,
    quality_source_for_corpus,
    quality_source_for_project,
)
from annotation.quality.services import agreement_report_compute
from annotation.services import annotation_create
from corpora.models import Corpus

from .conftest import human_rows, utterance_make

pytestmark = pytest.mark.django_db

SEED, RESAMPLES = 11, 300


def _block(report, key, perspective=""):  # type: ignore[no-untyped-def]
    question = next(q for q in report["questions"] if q["key"] == key)
    return next(b for b in question["perspectives"] if b["perspective"] == perspective)


def test_single_choice_numbers_equal_the_library(quality_world) -> None:  # type: ignore[no-untyped-def]
    report = agreement_report_compute(
        source=quality_source_for_project(quality_world.project), n_resamples=RESAMPLES, seed=SEED
    ).result
    rows = human_rows(quality_world.project)
    units = [r[0] for r in rows]
    raters = [r[1] for r in rows]
    labels = [r[2]["emotion"] for r in rows]
    ratings = ratings_from_long(units, raters, labels)
    expected = krippendorff_alpha(ratings, "nominal", n_resamples=RESAMPLES, seed=SEED)
    block = _block(report, "emotion")

    assert block["alpha"]["alpha"] == pytest.approx(expected.alpha, abs=1e-12)
    assert block["alpha"]["interval"] == pytest.approx(list(expected.interval), abs=1e-12)
    assert block["alpha"]["n_resamples"] == RESAMPLES and block["alpha"]["seed"] == SEED
    assert 0.0 < expected.alpha < 1.0  # the fixture has real, imperfect agreement
    assert block["observed_agreement"] == pytest.approx(observed_agreement(ratings))
    assert block["kappa"]["fleiss"]["applicable"] is fleiss_kappa(ratings).applicable
    assert block["kappa"]["cohen"]["applicable"] is False  # four raters
    per_unit = pd.Series(units).value_counts()
    assert block["counts"]["n_units_with_two_or_more"] == int((per_unit >= 2).sum())
    assert block["counts"]["n_ratings"] == len(rows)

    by_label = per_label_alpha(units, raters, [[x] for x in labels], labels=["joy", "sadness", "anger", "fear", "neutral"],
                               n_resamples=RESAMPLES, seed=SEED)
    for label, result in by_label.items():
        assert block["by_label"][label]["alpha"] == pytest.approx(result.alpha, abs=1e-12)

    languages = alpha_by_group(ratings, [r[3] for r in rows], "nominal", n_resamples=RESAMPLES, seed=SEED)
    got = {row["language"]: row for row in block["by_language"]}
    assert set(got) == {"en", "mr"}
    for language, row in languages.iterrows():
        assert got[language]["alpha"] == pytest.approx(row["alpha"], abs=1e-12)
        assert got[language]["interval_low"] == pytest.approx(row["interval_low"], abs=1e-12)

    annotators = annotator_agreement(ratings, "nominal")
    got_annotators = {row["rater"]: row for row in block["annotators"]}
    for rater, row in annotators.iterrows():
        assert got_annotators[rater]["alpha_without"] == pytest.approx(row["alpha_without"], abs=1e-12)
        assert got_annotators[rater]["alpha_with_rest"] == pytest.approx(row["alpha_with_rest"], abs=1e-12)

    alphas, shared = pairwise_alpha(ratings, "nominal")
    order = [str(r) for r in alphas.index]
    assert block["pairwise"]["raters"] == order
    matrix = np.array(block["pairwise"]["alpha"], dtype=float)
    assert np.allclose(np.nan_to_num(matrix, nan=-9), np.nan_to_num(alphas.to_numpy(), nan=-9))
    assert block["pairwise"]["shared_units"] == shared.to_numpy().tolist()


def test_multi_label_and_numeric_numbers_equal_the_library(quality_world) -> None:  # type: ignore[no-untyped-def]
    report = agreement_report_compute(
        source=quality_source_for_project(quality_world.project), n_resamples=RESAMPLES, seed=SEED
    ).result
    rows = human_rows(quality_world.project)
    units, raters = [r[0] for r in rows], [r[1] for r in rows]

    sets = label_set_ratings(units, raters, [r[2]["emotions"] for r in rows])
    masi = masi_alpha(sets, n_resamples=RESAMPLES, seed=SEED)
    block = _block(report, "emotions")
    assert block["level"] == "masi"
    assert block["alpha"]["alpha"] == pytest.approx(masi.alpha, abs=1e-12)
    assert block["alpha"]["interval"] == pytest.approx(list(masi.interval), abs=1e-12)
    intensity = per_label_alpha(units, raters, [r[2]["emotions"] for r in rows], labels=["joy", "sadness", "anger", "fear"],
                                level="ordinal", n_resamples=RESAMPLES, seed=SEED)
    binary = per_label_alpha(units, raters, [sorted(r[2]["emotions"]) for r in rows],
                             labels=["joy", "sadness", "anger", "fear"], n_resamples=RESAMPLES, seed=SEED)
    for label in ["joy", "sadness", "anger", "fear"]:
        assert block["by_label"]["intensity"][label]["alpha"] == pytest.approx(intensity[label].alpha, abs=1e-12)
        assert block["by_label"]["binary"][label]["alpha"] == pytest.approx(binary[label].alpha, abs=1e-12)
        assert block["by_label"]["intensity"][label]["metric"] == "ordinal"

    valence = ratings_from_long(units, raters, pd.Series([float(r[2]["valence"]) for r in rows]))
    interval = krippendorff_alpha(valence, "interval", n_resamples=RESAMPLES, seed=SEED)
    numeric = _block(report, "valence")
    assert numeric["level"] == "interval"
    assert numeric["alpha"]["alpha"] == pytest.approx(interval.alpha, abs=1e-12)
    assert numeric["alpha"]["interval"] == pytest.approx(list(interval.interval), abs=1e-12)

    skipped = {q["key"]: q.get("skipped") for q in report["questions"]}
    assert "free text" in skipped["rationale"] and "segments" in skipped["regions"]


def test_model_versus_human_gold_equals_the_library(quality_world) -> None:  # type: ignore[no-untyped-def]
    report = agreement_report_compute(
        source=quality_source_for_project(quality_world.project), n_resamples=0, seed=SEED
    ).result
    rows = human_rows(quality_world.project)
    ratings = ratings_from_long([r[0] for r in rows], [r[1] for r in rows], [r[2]["emotion"] for r in rows])
    gold = majority_vote(ratings, tie_policy="abstain")["label"].dropna().to_dict()
    machine = dict(Annotation.objects.filter(project=quality_world.project, origin=Origin.MODEL)
                   .values_list("utterance_id", "value"))
    pairs = [(gold[u], v["emotion"]) for u, v in machine.items() if u in gold]
    expected = classification_report([p[0] for p in pairs], [p[1] for p in pairs],
                                     labels=["joy", "sadness", "anger", "fear", "neutral"])
    model = _block(report, "emotion")["models"][0]
    assert model["model_version"] == "distilroberta@1"
    assert model["n_items"] == expected.n_items > 0
    assert model["accuracy"] == pytest.approx(expected.accuracy)
    assert model["macro_f1"] == pytest.approx(expected.macro_f1)
    assert model["confusion"]["matrix"] == expected.confusion.to_numpy().tolist()

    means = pd.DataFrame([(r[0], float(r[2]["valence"])) for r in rows]).groupby(0)[1].mean().to_dict()
    pairs_v = [(means[u], float(v["valence"])) for u, v in machine.items() if u in means]
    numeric = _block(report, "valence")["models"][0]
    assert numeric["ccc"] == pytest.approx(concordance_correlation([p[0] for p in pairs_v], [p[1] for p in pairs_v]))
    assert report["totals"]["model_versions"] == ["distilroberta@1"]
    assert report["totals"]["human_raters"] == 4


def test_aggregated_labels_are_stored_with_confidence_and_distribution(quality_world) -> None:  # type: ignore[no-untyped-def]
    agreement_report_compute(source=quality_source_for_project(quality_world.project), n_resamples=0)
    utterance = quality_world.utterances[0]
    values = list(Annotation.objects.filter(project=quality_world.project, utterance=utterance, origin=Origin.HUMAN)
                  .values_list("value", flat=True))
    emotion = AggregatedLabel.objects.get(project=quality_world.project, utterance=utterance, question_key="emotion")
    counts = pd.Series([v["emotion"] for v in values]).value_counts()
    assert emotion.n_ratings == len(values)
    assert emotion.distribution == pytest.approx((counts / counts.sum()).to_dict())
    if (counts == counts.max()).sum() == 1:
        assert emotion.value == counts.idxmax() and emotion.confidence == pytest.approx(counts.max() / len(values))
    else:
        assert emotion.value is None and emotion.confidence is None  # tie policy abstain
    valence = AggregatedLabel.objects.get(project=quality_world.project, utterance=utterance, question_key="valence")
    numbers = np.array([v["valence"] for v in values], dtype=float)
    assert valence.value == pytest.approx(numbers.mean())
    assert valence.distribution["median"] == pytest.approx(np.median(numbers))
    assert valence.distribution["std"] == pytest.approx(numbers.std(ddof=1))
    assert not AggregatedLabel.objects.filter(question_key__in=["rationale", "regions"]).exists()


def test_stale_after_a_new_or_changed_annotation(quality_world) -> None:  # type: ignore[no-untyped-def]
    source = quality_source_for_project(quality_world.project)
    assert agreement_report_state(source).stale  # nothing computed yet
    agreement_report_compute(source=source, n_resamples=0)
    assert not agreement_report_state(source).stale

    extra = utterance_make(quality_world.corpus, "one more", "en")
    annotation = annotation_create(
        utterance=extra, schema_version=quality_world.schema, project=quality_world.project,
        annotator=quality_world.raters[0], value={"emotion": "joy"},
    )
    assert agreement_report_state(source).stale
    agreement_report_compute(source=source, n_resamples=0)
    assert not agreement_report_state(source).stale

    annotation.value = {"emotion": "anger"}
    annotation.save(update_fields=["value", "updated_at"])  # an edit keeps the count but moves updated_at
    assert agreement_report_state(source).stale


def test_imported_corpus_labels_per_perspective(emotion_schema) -> None:  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="EmoBank-like", slug="emobank-like", license="CC-BY-SA-4.0")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(15):
        utterance = utterance_make(corpus, f"sentence {i}", "en")
        for perspective, shift in (("writer", 0.0), ("reader", 1.0)):
            for rater in ("r1", "r2", "r3"):
                value = float(np.clip(round(2 + (i % 3) + shift + rng.normal(0, 0.5)), 1, 5))
                annotation_create(utterance=utterance, schema_version=emotion_schema, external_rater=rater,
                                  perspective=perspective, value={"emotion": "neutral", "valence": value})
                rows.append((utterance.pk, f"ext:{rater}", value, perspective))
    source = quality_source_for_corpus(corpus, emotion_schema)
    report = agreement_report_compute(source=source, n_resamples=100, seed=1)
    assert report.project_id is None and report.corpus_id == corpus.pk
    valence = next(q for q in report.result["questions"] if q["key"] == "valence")
    assert [b["perspective"] for b in valence["perspectives"]] == ["reader", "writer"]
    for block in valence["perspectives"]:
        mine = [r for r in rows if r[3] == block["perspective"]]
        ratings = ratings_from_long([r[0] for r in mine], [r[1] for r in mine], pd.Series([r[2] for r in mine]))
        assert block["alpha"]["alpha"] == pytest.approx(krippendorff_alpha(ratings, "interval").alpha, abs=1e-12)
        assert {row["rater"] for row in block["annotators"]} == {"ext:r1", "ext:r2", "ext:r3"}
    assert AggregatedLabel.objects.filter(project__isnull=True, perspective="reader", question_key="valence").count() == 15
    assert not agreement_report_state(source).stale
