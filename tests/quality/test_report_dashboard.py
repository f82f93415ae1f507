"""Report parts the lead dashboard plots: confusion between annotators, label distribution per language, alpha per week.

Each is checked against a hand count or against annotation.agreement called directly on the same ratings.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from annotation.agreement import krippendorff_alpha, ratings_from_long
from annotation.models import AgreementReport, Annotation, Origin
from annotation.quality.report import REPORT_VERSION, annotator_confusion, week_starts
from annotation.quality.selectors import agreement_report_state, quality_source_for_project
from annotation.quality.services import agreement_report_compute

from .conftest import human_rows

pytestmark = pytest.mark.django_db

SEED, RESAMPLES = 5, 200


def _block(report, key):  # type: ignore[no-untyped-def]
    question = next(q for q in report["questions"] if q["key"] == key)
    return next(b for b in question["perspectives"] if b["perspective"] == "")


def test_confusion_by_hand() -> None:
    # u1: a, a, b (three raters); u2: a, b; u3: c (rated once: adds nothing)
    ratings = ratings_from_long(
        ["u1", "u1", "u1", "u2", "u2", "u3"], ["r1", "r2", "r3", "r1", "r2", "r1"], ["a", "a", "b", "a", "b", "c"]
    )
    confusion = annotator_confusion(ratings, ("a", "b", "c", "d"))
    assert confusion["labels"] == ["a", "b", "c", "d"]
    # u1 gives a-a twice (ordered), a-b and b-a twice each; u2 gives a-b and b-a once.
    assert confusion["pairs"].tolist() == [[2, 3, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    # Coincidences weight u1's pairs by 1/2: they sum to the 5 pairable values.
    np.testing.assert_allclose(confusion["coincidences"], [[1, 2, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_confusion_keeps_labels_outside_the_schema_at_the_end() -> None:
    ratings = ratings_from_long(["u1", "u1"], ["r1", "r2"], ["joy", "other"])
    confusion = annotator_confusion(ratings, ("joy", "fear"))
    assert confusion["labels"] == ["joy", "fear", "other"]
    assert confusion["pairs"][0][2] == confusion["pairs"][2][0] == 1


def test_report_confusion_matches_the_ratings(quality_world) -> None:  # type: ignore[no-untyped-def]
    report = agreement_report_compute(
        source=quality_source_for_project(quality_world.project), n_resamples=RESAMPLES, seed=SEED
    ).result
    block = _block(report, "emotion")
    confusion = block["confusion"]
    labels = confusion["labels"]
    assert labels[:5] == ["joy", "sadness", "anger", "fear", "neutral"]
    # Hand count: every ordered pair of ratings by different annotators of one utterance.
    by_unit: dict[int, list[str]] = {}
    for unit, _rater, value, _language in human_rows(quality_world.project):
        by_unit.setdefault(unit, []).append(value["emotion"])
    expected = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for answers in by_unit.values():
        for i, first in enumerate(answers):
            for j, second in enumerate(answers):
                if i != j:
                    expected[labels.index(first), labels.index(second)] += 1
    assert confusion["pairs"] == expected.tolist()
    coincidences = np.array(confusion["coincidences"])
    np.testing.assert_allclose(coincidences, coincidences.T)
    # Nominal alpha's observed disagreement is the off-diagonal share of the coincidence matrix.
    assert coincidences.sum() == pytest.approx(block["alpha"]["n_pairable_values"])
    assert 1 - np.trace(coincidences) / coincidences.sum() == pytest.approx(block["alpha"]["observed_disagreement"])
    # Only single-choice questions get a category confusion.
    assert "confusion" not in _block(report, "emotions") and "confusion" not in _block(report, "valence")


def test_report_label_distribution_per_language(quality_world) -> None:  # type: ignore[no-untyped-def]
    report = agreement_report_compute(
        source=quality_source_for_project(quality_world.project), n_resamples=RESAMPLES, seed=SEED
    ).result
    rows = human_rows(quality_world.project)

    single = _block(report, "emotion")["label_distribution"]
    got = {entry["language"]: dict(zip(single["labels"], entry["counts"])) for entry in single["languages"]}
    assert set(got) == {"en", "mr"}
    for language in ("en", "mr"):
        counted = Counter(value["emotion"] for _u, _r, value, code in rows if code == language)
        assert {label: n for label, n in got[language].items() if n} == dict(counted)
        entry = next(e for e in single["languages"] if e["language"] == language)
        assert entry["n_ratings"] == sum(counted.values())

    multi = _block(report, "emotions")["label_distribution"]
    assert multi["labels"] == ["joy", "sadness", "anger", "fear"]
    en = next(e for e in multi["languages"] if e["language"] == "en")
    chosen = Counter(label for _u, _r, value, code in rows if code == "en" for label, level in value["emotions"].items() if level)
    assert dict(zip(multi["labels"], en["counts"])) == {label: chosen.get(label, 0) for label in multi["labels"]}
    assert en["n_ratings"] == sum(1 for row in rows if row[3] == "en")
    assert _block(report, "valence")["label_distribution"] is None  # numbers have no labels


def test_week_starts_are_mondays() -> None:
    moments = [datetime(2024, 6, 3, 0, 0, tzinfo=UTC), datetime(2024, 6, 9, 23, 59, tzinfo=UTC),
               datetime(2024, 6, 10, 0, 0, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)]
    starts = week_starts(np.array([int(m.timestamp()) for m in moments], dtype=np.int64))
    assert [str(np.datetime64(int(day), "D")) for day in starts] == ["2024-06-03", "2024-06-03", "2024-06-10", "1969-12-29"]


def test_report_alpha_per_week_equals_alpha_on_those_units(quality_world) -> None:  # type: ignore[no-untyped-def]
    project = quality_world.project
    first_week = datetime(2024, 6, 4, 12, tzinfo=UTC)  # a Tuesday
    humans = list(Annotation.objects.filter(project=project, origin=Origin.HUMAN).order_by("id"))
    early_units = {u.pk for u in quality_world.utterances[:12]}
    straddling = quality_world.utterances[12].pk  # one rating a week later: the unit counts in the later week
    moved_late = None
    for annotation in humans:
        late = annotation.utterance_id not in early_units
        if annotation.utterance_id == straddling and moved_late is None:
            late = False
            moved_late = annotation.pk
        when = first_week + (timedelta(days=7) if late else timedelta())
        Annotation.objects.filter(pk=annotation.pk).update(created_at=when)

    report = agreement_report_compute(source=quality_source_for_project(project), n_resamples=RESAMPLES, seed=SEED).result
    over_time = _block(report, "emotion")["over_time"]
    assert over_time["period"] == "week"
    weeks = over_time["weeks"]
    assert [w["week_start"] for w in weeks] == ["2024-06-03", "2024-06-10"]

    rows = human_rows(project)
    everything = ratings_from_long([r[0] for r in rows], [r[1] for r in rows], [r[2]["emotion"] for r in rows])
    for week, units in zip(weeks, (early_units, {u.pk for u in quality_world.utterances[12:]})):
        mine = [row for row in rows if row[0] in units]
        ratings = ratings_from_long([r[0] for r in mine], [r[1] for r in mine], [r[2]["emotion"] for r in mine])
        assert week["alpha"] == pytest.approx(krippendorff_alpha(ratings, "nominal").alpha, abs=1e-12)
        # The bootstrap draws depend on unit positions, so the interval is checked on the same subset of all ratings.
        subset = everything.subset(np.isin(np.asarray([r[0] for r in rows]), list(units)))
        expected = krippendorff_alpha(subset, "nominal", n_resamples=RESAMPLES, seed=SEED)
        assert [week["interval_low"], week["interval_high"]] == pytest.approx(list(expected.interval), abs=1e-12)
        assert week["interval_low"] <= week["alpha"] <= week["interval_high"]
        assert week["n_units"] == len({r[0] for r in mine})
        assert week["n_ratings"] == len(mine)
    # Numeric and multi-label questions get the same series at their own level.
    assert [w["week_start"] for w in _block(report, "valence")["over_time"]["weeks"]] == ["2024-06-03", "2024-06-10"]


def test_a_report_of_an_older_version_is_stale(quality_world) -> None:  # type: ignore[no-untyped-def]
    source = quality_source_for_project(quality_world.project)
    agreement_report_compute(source=source, n_resamples=0)
    assert agreement_report_state(source).stale is False
    report = AgreementReport.objects.get(project=quality_world.project)
    assert report.result["version"] == REPORT_VERSION
    report.result = {**report.result, "version": REPORT_VERSION - 1}
    report.save(update_fields=["result"])
    assert agreement_report_state(source).stale is True
