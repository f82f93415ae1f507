"""Query strategies and the label-error detector on small synthetic pools whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from models_zoo.active_learning import (
    STRATEGIES,
    Strategy,
    cold_start,
    priorities,
    select_batch,
    suspected_label_errors,
    suspected_label_errors_multi,
    uncertainty,
)
from models_zoo.heads import cross_validated_probabilities

# Rows: 0 sure, 1 two-way tie, 2 three-way spread, 3 leaning. Least confidence and entropy pick the flattest row
# (2); margin and breaking ties the exact two-way tie (1).
POOL = np.array([
    [0.98, 0.01, 0.01],
    [0.49, 0.49, 0.02],
    [0.34, 0.33, 0.33],
    [0.70, 0.20, 0.10],
])


@pytest.mark.parametrize(("strategy", "first"), [
    ("least_confidence", 2), ("margin", 1), ("entropy", 2), ("breaking_ties", 1),
])
def test_most_uncertain_row_first(strategy: str, first: int) -> None:
    assert select_batch(POOL, 1, strategy)[0] == first
    assert select_batch(POOL, 4, strategy)[-1] == 0  # the sure row is always last


def test_margin_and_breaking_ties_prefer_a_two_way_tie_over_a_leaning_row() -> None:
    pool = np.array([[0.5, 0.45, 0.05], [0.4, 0.3, 0.3]])
    # Least confidence prefers the flat row (max 0.4); both margin rules the near tie (gap 0.05).
    assert select_batch(pool, 1, "least_confidence")[0] == 1
    assert select_batch(pool, 1, "margin")[0] == 0
    assert select_batch(pool, 1, "breaking_ties")[0] == 0


def test_margin_and_breaking_ties_differ_in_scale() -> None:
    # Same probability gap (0.2); the log-odds gap of the low-probability pair (0.3 vs 0.1) is the larger one.
    pool = np.array([[0.6, 0.4] + [0.0] * 6, [0.3] + [0.1] * 7])
    assert uncertainty(pool, "breaking_ties")[0] == pytest.approx(uncertainty(pool, "breaking_ties")[1])
    assert np.argmax(uncertainty(pool, "margin")) == 0  # log(.6/.4) < log(.3/.1)


def test_random_is_seeded_and_covers_the_pool() -> None:
    a = select_batch(np.full((100, 2), 0.5), 100, "random", seed=1)
    assert sorted(a.tolist()) == list(range(100))
    assert (select_batch(np.full((100, 2), 0.5), 10, "random", seed=1) == a[:10]).all()


def test_multi_label_is_scored_per_label() -> None:
    # Row 1 is sure on both labels; row 0 sure on one and undecided (0.5) on the other.
    pool = np.array([[0.99, 0.5], [0.99, 0.01], [0.95, 0.05]])
    for strategy in ("least_confidence", "margin", "entropy", "breaking_ties"):
        assert select_batch(pool, 1, strategy, multi_label=True)[0] == 0, strategy
        assert select_batch(pool, 3, strategy, multi_label=True)[-1] == 1, strategy


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, 0.0], [0.0, -10.0]])
    x = np.vstack([c + rng.normal(0, 0.3, (50, 2)) for c in centres])
    return x, np.repeat(np.arange(4), 50)


def test_cold_start_is_diverse() -> None:
    x, blob = _blobs()
    picked = cold_start(x, 4, seed=0)
    assert sorted(blob[picked].tolist()) == [0, 1, 2, 3]  # one per blob; four random rows rarely are
    assert select_batch(None, 4, "entropy", embeddings=x)[0] in picked


def test_cluster_uncertainty_spreads_a_batch_over_clusters() -> None:
    x, blob = _blobs()
    # Ten items of blob 0 are the most uncertain, the other blobs come next: entropy alone takes 4 from blob 0.
    top = (blob == 0) & (np.arange(200) % 50 < 10)
    p = np.where(top[:, None], [0.5, 0.5], [0.6, 0.4]) + np.random.default_rng(0).normal(0, 1e-3, (200, 2))
    p = p / p.sum(axis=1, keepdims=True)
    assert set(blob[select_batch(p, 4, "entropy")].tolist()) == {0}
    diverse = select_batch(p, 4, "cluster_uncertainty", embeddings=x)
    assert sorted(blob[diverse].tolist()) == [0, 1, 2, 3]
    assert blob[diverse[0]] == 0  # the most uncertain cluster's pick comes first


def test_exploration_share_is_random_items_outside_the_uncertain_top() -> None:
    p = np.column_stack([np.linspace(0.5, 1.0, 1000), 1 - np.linspace(0.5, 1.0, 1000)])
    picked = select_batch(p, 10, "least_confidence", exploration=0.3, seed=3)
    assert picked[:7].tolist() == list(range(7))
    assert len(set(picked[7:].tolist()) - set(range(10))) >= 2  # three random rows, not the next most uncertain


def test_priorities_hand_out_the_batch_first() -> None:
    p = np.column_stack([np.linspace(0.5, 1.0, 50), 1 - np.linspace(0.5, 1.0, 50)])
    for strategy in STRATEGIES:
        order = np.argsort(-priorities(p, strategy, batch=5, embeddings=np.random.default_rng(0).normal(size=(50, 3))))
        expected = select_batch(p, 5, strategy, embeddings=np.random.default_rng(0).normal(size=(50, 3)))
        assert order[:5].tolist() == expected.tolist(), strategy
    assert Strategy("cluster_uncertainty") is Strategy.CLUSTER_UNCERTAINTY


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid Strategy"):
        uncertainty(POOL, "most_fun")
    with pytest.raises(ValueError, match="matrix"):
        uncertainty(np.zeros(3), "entropy")


def _noisy(n: int = 600, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = ["joy", "anger", "fear"]
    truth = rng.integers(0, 3, n)
    x = np.eye(3)[truth] * 3.0 + rng.normal(0, 0.8, (n, 3))
    flipped = rng.random(n) < noise
    given = np.where(flipped, (truth + rng.integers(1, 3, n)) % 3, truth)
    return x, [labels[i] for i in given], labels, flipped


def test_confident_learning_finds_planted_label_errors() -> None:
    x, given, labels, flipped = _noisy()
    oof = cross_validated_probabilities(x, given, labels=labels, folds=5)
    flagged = {e.row for e in suspected_label_errors(oof, given, labels=labels)}
    planted = set(np.flatnonzero(flipped).tolist())
    precision = len(flagged & planted) / len(flagged)
    recall = len(flagged & planted) / len(planted)
    assert recall >= 0.7 and precision >= 0.8, (precision, recall)  # some flips land inside the true blob


def test_confident_learning_flags_nothing_much_on_clean_labels() -> None:
    x, given, labels, _ = _noisy(noise=0.0)
    oof = cross_validated_probabilities(x, given, labels=labels, folds=5)
    assert len(suspected_label_errors(oof, given, labels=labels)) < 0.06 * len(given)


def test_confident_learning_multi_label_names_the_label() -> None:
    p = np.array([[0.95, 0.1], [0.9, 0.05], [0.05, 0.9], [0.1, 0.95], [0.97, 0.02]])
    given = [["joy"], ["joy"], ["anger"], ["anger"], ["anger"]]  # the last row: the model says joy, not anger
    errors = suspected_label_errors_multi(p, given, labels=["joy", "anger"])
    assert {(e.row, e.given, e.suggested) for e in errors} == {(4, "not joy", "joy"), (4, "anger", "not anger")}
