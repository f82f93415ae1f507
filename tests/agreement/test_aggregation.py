"""Majority vote with tie policies, soft labels, dimension summaries, Dawid–Skene and MACE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from annotation.agreement import (
    AgreementInputError,
    dawid_skene,
    dimension_summary,
    mace,
    majority_vote,
    ratings_from_long,
    soft_labels,
)

TIED = ratings_from_long(
    ["u1", "u1", "u1", "u2", "u2", "u3"],
    ["a", "b", "c", "a", "b", "a"],
    ["joy", "joy", "fear", "fear", "joy", "anger"],
)


def test_majority_vote_tie_policies() -> None:
    abstain = majority_vote(TIED, tie_policy="abstain")
    assert abstain.loc["u1", "label"] == "joy" and abstain.loc["u1", "confidence"] == pytest.approx(2 / 3)
    assert abstain.loc["u2", "label"] is None and bool(abstain.loc["u2", "tied"])
    assert np.isnan(abstain.loc["u2", "confidence"])
    assert abstain.loc["u3", "label"] == "anger" and abstain.loc["u3", "confidence"] == 1.0
    preferred = majority_vote(TIED, tie_policy="prefer_order", label_order=["fear", "joy", "anger"])
    assert preferred.loc["u2", "label"] == "fear" and preferred.loc["u2", "confidence"] == 0.5
    picks = {majority_vote(TIED, tie_policy="random", seed=seed).loc["u2", "label"] for seed in range(20)}
    assert picks == {"fear", "joy"}
    same = [majority_vote(TIED, tie_policy="random", seed=3).loc["u2", "label"] for _ in range(3)]
    assert len(set(same)) == 1
    with pytest.raises(AgreementInputError, match="label_order lacks"):
        majority_vote(TIED, tie_policy="prefer_order", label_order=["joy"])
    with pytest.raises(AgreementInputError, match="tie policy must be one of"):
        majority_vote(TIED, tie_policy="coin")  # type: ignore[arg-type]


def test_soft_labels() -> None:
    soft = soft_labels(TIED)
    assert soft.loc["u1", "joy"] == pytest.approx(2 / 3) and soft.loc["u1", "anger"] == 0
    assert np.allclose(soft.sum(axis=1), 1.0)
    smoothed = soft_labels(TIED, smoothing=1.0)
    assert smoothed.loc["u3", "anger"] == pytest.approx(2 / 4)


def test_dimension_summary_matches_pandas() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"unit": rng.integers(0, 40, 200), "rater": np.arange(200), "value": np.round(rng.uniform(1, 5, 200), 1)}
    )
    summary = dimension_summary(ratings_from_long(frame.unit, frame.rater, frame.value))
    grouped = frame.groupby("unit")["value"]
    for column, expected in [("mean", grouped.mean()), ("median", grouped.median()), ("std", grouped.std())]:
        assert np.allclose(summary[column].sort_index(), expected.sort_index(), equal_nan=True)
    assert (summary["n"].sort_index() == grouped.size().sort_index()).all()


def _noisy_crowd(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Five raters with accuracies 0.9, 0.75, 0.6, 0.35 and a pure spammer on 4 classes; 3-5 ratings per item."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, size=600)
    accuracy = [*ACCURACY, 0.0]
    rows = []
    for item, label in enumerate(truth):
        for rater, acc in enumerate(accuracy):
            if rng.random() < 0.15:
                continue
            if rater == 4:
                given = 0  # always says class 0
            elif rng.random() < acc:
                given = int(label)
            else:
                given = int(rng.choice([c for c in range(4) if c != label]))
            rows.append((item, f"r{rater}", given))
    return pd.DataFrame(rows, columns=["unit", "rater", "value"]), truth


ACCURACY = [0.9, 0.75, 0.6, 0.35]


def _accuracy(labels: pd.Series, truth: np.ndarray) -> float:
    return float(np.mean(labels.sort_index().to_numpy().astype(int) == truth))


def _oracle_accuracy(frame: pd.DataFrame, truth: np.ndarray) -> float:
    """Accuracy of the Bayes decision that knows every rater's true accuracy (and ignores the spammer)."""
    log_post = np.zeros((truth.size, 4))
    for unit, rater, given in frame.itertuples(index=False):
        index = int(rater[1:])
        if index < 4:
            acc = ACCURACY[index]
            log_post[unit] += np.where(np.arange(4) == given, np.log(acc), np.log((1 - acc) / 3))
    return float(np.mean(log_post.argmax(axis=1) == truth))


def test_dawid_skene_recovers_truth_better_than_majority_vote() -> None:
    frame, truth = _noisy_crowd(1)
    ratings = ratings_from_long(frame.unit, frame.rater, frame.value)
    result = dawid_skene(ratings)
    vote = majority_vote(ratings, tie_policy="random", seed=0)
    assert result.converged
    # Without knowing who is reliable, EM gets within 2 points of the oracle and well above the majority vote.
    assert _accuracy(result.labels["label"], truth) >= _oracle_accuracy(frame, truth) - 0.02
    assert _accuracy(result.labels["label"], truth) > _accuracy(vote["label"], truth) + 0.05
    confusion = result.rater_parameters["confusion"]
    assert isinstance(confusion, np.ndarray)
    raters = list(result.rater_parameters["raters"])  # type: ignore[call-overload]
    diagonal = {r: float(np.mean(np.diag(confusion[i]))) for i, r in enumerate(raters)}
    assert diagonal["r0"] > diagonal["r1"] > diagonal["r2"] > diagonal["r3"]
    assert np.allclose(result.posteriors.sum(axis=1), 1.0)
    assert ((result.labels["confidence"] > 0) & (result.labels["confidence"] <= 1)).all()


def test_mace_finds_the_spammer_and_recovers_truth() -> None:
    frame, truth = _noisy_crowd(2)
    ratings = ratings_from_long(frame.unit, frame.rater, frame.value)
    result = mace(ratings)
    competence = dict(zip(result.rater_parameters["raters"], result.rater_parameters["competence"]))  # type: ignore[call-overload]
    # Copy probabilities implied by the simulation: accuracy = theta + (1 - theta) / 4 -> 0.87, 0.67, 0.47, 0.13, 0.
    assert competence["r4"] < 0.02 < competence["r3"] < competence["r2"] < competence["r1"] < competence["r0"]
    assert competence["r0"] == pytest.approx(0.867, abs=0.05) and competence["r2"] == pytest.approx(0.467, abs=0.05)
    spam = result.rater_parameters["spam_distribution"]
    assert isinstance(spam, np.ndarray) and spam[4, 0] > 0.95  # the spammer always answers class 0
    assert _accuracy(result.labels["label"], truth) >= _oracle_accuracy(frame, truth) - 0.02
