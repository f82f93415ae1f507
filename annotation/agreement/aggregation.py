"""Aggregating several ratings of a unit into one label (with a confidence) or a distribution.

- majority vote with an explicit tie policy: ``abstain`` (no label), ``random`` (seeded), ``prefer_order``
  (the first tied label in a given order); confidence = the winner's share of the unit's votes;
- soft labels: the share of each label among a unit's votes (optionally smoothed);
- Dawid & Skene (1979): EM over one confusion matrix per rater and class priors; confidence = posterior;
- MACE (Hovy et al. 2013): EM over a competence (probability of not spamming) and a spam distribution per
  rater, uniform prior over true labels; confidence = posterior;
- dimensions: mean, median, standard deviation, standard error per unit.

All EM steps are ``numpy.bincount`` sums over the encoded ratings; nothing loops over units or ratings.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotation.agreement.ratings import AgreementInputError, FloatArray, IntArray, Ratings

TiePolicy = Literal["abstain", "random", "prefer_order"]
TIE_POLICIES: tuple[TiePolicy, ...] = ("abstain", "random", "prefer_order")


def _rated_units(ratings: Ratings) -> tuple[IntArray, IntArray]:
    """Units with at least one rating, and each rating's position among them."""
    per_unit = np.bincount(ratings.unit_idx, minlength=ratings.n_units)
    rated = np.flatnonzero(per_unit > 0)
    remap = np.full(ratings.n_units, -1, dtype=np.int64)
    remap[rated] = np.arange(rated.size)
    return rated, remap[ratings.unit_idx]


def vote_counts(ratings: Ratings) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """Rated units and their (rated units × values) vote-count matrix."""
    rated, unit = _rated_units(ratings)
    size = max(ratings.n_values, 1)
    counts = np.bincount(unit * size + ratings.value_idx, minlength=rated.size * size).reshape(rated.size, size)
    return rated, counts.astype(np.float64)


def majority_vote(
    ratings: Ratings,
    *,
    tie_policy: TiePolicy = "abstain",
    label_order: Sequence[Hashable] | None = None,
    seed: int | None = 0,
) -> pd.DataFrame:
    """One row per rated unit: label (None when abstaining on a tie), confidence, n_ratings, n_top, tied."""
    if tie_policy not in TIE_POLICIES:
        raise AgreementInputError(f"tie policy must be one of {', '.join(TIE_POLICIES)}, got {tie_policy!r}")
    rated, counts = vote_counts(ratings)
    top = counts.max(axis=1)
    is_top = counts == top[:, None]
    n_top = is_top.sum(axis=1)
    if tie_policy == "prefer_order":
        if label_order is None:
            raise AgreementInputError("tie policy 'prefer_order' needs label_order")
        rank = {label: i for i, label in enumerate(label_order)}
        missing = [value for value in ratings.values if value not in rank]
        if missing:
            raise AgreementInputError(f"label_order lacks {missing[:5]!r}")
        preference = -np.array([rank[value] for value in ratings.values], dtype=np.float64)
    elif tie_policy == "random":
        preference = np.random.default_rng(seed).random((rated.size, counts.shape[1]))
    else:
        preference = np.zeros(counts.shape[1])
    score = np.where(is_top, np.broadcast_to(preference, counts.shape), -np.inf)
    winner = np.argmax(score, axis=1)
    labels = np.asarray(ratings.values[winner], dtype=object)
    tied = n_top > 1
    if tie_policy == "abstain":
        labels[tied] = None
    total = counts.sum(axis=1)
    index = pd.Index(ratings.units[rated], name="unit")
    return pd.DataFrame(
        {
            # object dtype keeps None (abstained) distinct from any label; a string dtype would turn it into NaN.
            "label": pd.Series(labels, index=index, dtype=object),
            "confidence": np.where(tied & (tie_policy == "abstain"), np.nan, top / total),
            "n_ratings": total.astype(np.int64),
            "n_top": n_top,
            "tied": tied,
        },
        index=index,
    )


def soft_labels(ratings: Ratings, *, smoothing: float = 0.0) -> pd.DataFrame:
    """Per rated unit, the share of each label among its votes (add-``smoothing`` counts before normalising)."""
    if smoothing < 0:
        raise AgreementInputError(f"smoothing must be >= 0, got {smoothing}")
    rated, counts = vote_counts(ratings)
    counts = counts + smoothing
    return pd.DataFrame(
        counts / counts.sum(axis=1, keepdims=True),
        index=pd.Index(ratings.units[rated], name="unit"),
        columns=pd.Index(ratings.values, name="label"),
    )


def dimension_summary(ratings: Ratings) -> pd.DataFrame:
    """Per rated unit of numeric ratings: n, mean, median, std (n - 1), sem, min, max."""
    numeric = ratings.numeric_values()
    rated, unit = _rated_units(ratings)
    x = numeric[ratings.value_idx]
    n = np.bincount(unit, minlength=rated.size).astype(np.float64)
    mean = np.bincount(unit, weights=x, minlength=rated.size) / n
    squares = np.bincount(unit, weights=(x - mean[unit]) ** 2, minlength=rated.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        std = np.where(n > 1, np.sqrt(squares / (n - 1.0)), np.nan)
    order = np.lexsort((x, unit))
    sorted_x = x[order]
    starts = np.concatenate([[0], np.cumsum(n.astype(np.int64))[:-1]])
    count = n.astype(np.int64)
    median = (sorted_x[starts + (count - 1) // 2] + sorted_x[starts + count // 2]) / 2.0
    return pd.DataFrame(
        {
            "n": count,
            "mean": mean,
            "median": median,
            "std": std,
            "sem": std / np.sqrt(n),
            "min": sorted_x[starts],
            "max": sorted_x[starts + count - 1],
        },
        index=pd.Index(ratings.units[rated], name="unit"),
    )


@dataclass(frozen=True)
class CrowdResult:
    """Labels with a posterior confidence per unit, and what the model learnt about the raters."""

    method: str
    labels: pd.DataFrame  # index unit: label, confidence
    posteriors: pd.DataFrame  # unit × label
    n_iterations: int
    converged: bool
    log_likelihood: float
    rater_parameters: dict[str, object] = field(default_factory=dict)


def _normalise_log(log_post: FloatArray) -> tuple[FloatArray, float]:
    peak = log_post.max(axis=1, keepdims=True)
    weights = np.exp(log_post - peak)
    total = weights.sum(axis=1, keepdims=True)
    return weights / total, float(np.sum(np.log(total) + peak))


def _crowd_result(
    method: str,
    ratings: Ratings,
    rated: IntArray,
    posterior: FloatArray,
    iterations: int,
    converged: bool,
    log_likelihood: float,
    parameters: dict[str, object],
) -> CrowdResult:
    index = pd.Index(ratings.units[rated], name="unit")
    best = posterior.argmax(axis=1)
    return CrowdResult(
        method=method,
        labels=pd.DataFrame({"label": ratings.values[best], "confidence": posterior.max(axis=1)}, index=index),
        posteriors=pd.DataFrame(posterior, index=index, columns=pd.Index(ratings.values, name="label")),
        n_iterations=iterations,
        converged=converged,
        log_likelihood=log_likelihood,
        rater_parameters=parameters,
    )


def dawid_skene(
    ratings: Ratings, *, max_iterations: int = 100, tolerance: float = 1e-6, smoothing: float = 0.01
) -> CrowdResult:
    """Dawid–Skene EM, started from the (soft) majority vote; ``smoothing`` pseudo-counts keep rates off zero.

    ``rater_parameters["confusion"]`` is raters × true label × given label.
    """
    if ratings.n_ratings == 0:
        raise AgreementInputError("no ratings to aggregate")
    rated, unit = _rated_units(ratings)
    size = ratings.n_values
    rater, given = ratings.rater_idx, ratings.value_idx
    _, counts = vote_counts(ratings)
    posterior = counts / counts.sum(axis=1, keepdims=True)
    previous = -np.inf
    log_likelihood = previous
    converged = False
    iteration = 0
    confusion = np.zeros((ratings.n_raters, size, size))
    priors = np.full(size, 1.0 / size)
    for step in range(1, max_iterations + 1):
        iteration = step
        # M-step: class priors and each rater's confusion matrix from the current posteriors.
        priors = (posterior.sum(axis=0) + smoothing) / (rated.size + smoothing * size)
        for true in range(size):
            confusion[:, true, :] = np.bincount(
                rater * size + given, weights=posterior[unit, true], minlength=ratings.n_raters * size
            ).reshape(ratings.n_raters, size)
        confusion += smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step: posterior over the true label of each unit.
        log_rate = np.log(confusion[rater, :, given])  # ratings × true label
        log_post = np.log(priors)[None, :] + np.column_stack(
            [np.bincount(unit, weights=log_rate[:, true], minlength=rated.size) for true in range(size)]
        )
        posterior, log_likelihood = _normalise_log(log_post)
        if abs(log_likelihood - previous) <= tolerance * max(1.0, abs(log_likelihood)):
            converged = True
            break
        previous = log_likelihood
    return _crowd_result(
        "dawid_skene", ratings, rated, posterior, iteration, converged, log_likelihood,
        {"raters": list(ratings.raters), "confusion": confusion, "priors": priors},
    )


def mace(
    ratings: Ratings, *, max_iterations: int = 200, tolerance: float = 1e-6, smoothing: float = 0.5
) -> CrowdResult:
    """MACE by EM: rater j copies the true label with probability theta_j, else draws from spam distribution xi_j.

    P(given = a | true = t) = theta_j [a = t] + (1 - theta_j) xi_j(a). Started from competence = agreement with
    the majority vote. ``rater_parameters["competence"]`` is theta per rater.
    """
    if ratings.n_ratings == 0:
        raise AgreementInputError("no ratings to aggregate")
    rated, unit = _rated_units(ratings)
    size = ratings.n_values
    rater, given = ratings.rater_idx, ratings.value_idx
    _, counts = vote_counts(ratings)
    posterior = counts / counts.sum(axis=1, keepdims=True)
    per_rater = np.bincount(rater, minlength=ratings.n_raters).astype(np.float64)
    competence = np.clip(np.bincount(rater, weights=posterior[unit, given], minlength=ratings.n_raters) / per_rater, 0.05, 0.95)
    spam: FloatArray = np.full((ratings.n_raters, size), 1.0 / size)
    previous, log_likelihood, converged, iteration = -np.inf, -np.inf, False, 0
    for step in range(1, max_iterations + 1):
        iteration = step
        # E-step: posterior over true labels (uniform prior).
        base = (1.0 - competence[rater]) * spam[rater, given]
        copied = base + competence[rater]
        log_post = np.bincount(unit, weights=np.log(base), minlength=rated.size)[:, None] + np.bincount(
            unit * size + given, weights=np.log(copied) - np.log(base), minlength=rated.size * size
        ).reshape(rated.size, size)
        posterior, log_likelihood = _normalise_log(log_post - np.log(size))
        # Expected "not spamming": the true label equals the given one and the rater copied it.
        not_spam = posterior[unit, given] * competence[rater] / copied
        competence = (np.bincount(rater, weights=not_spam, minlength=ratings.n_raters) + smoothing) / (
            per_rater + 2.0 * smoothing
        )
        spam = (
            np.bincount(rater * size + given, weights=1.0 - not_spam, minlength=ratings.n_raters * size)
            .reshape(ratings.n_raters, size)
            .astype(np.float64)
            + smoothing / size
        )
        spam /= spam.sum(axis=1, keepdims=True)
        if abs(log_likelihood - previous) <= tolerance * max(1.0, abs(log_likelihood)):
            converged = True
            break
        previous = log_likelihood
    return _crowd_result(
        "mace", ratings, rated, posterior, iteration, converged, log_likelihood,
        {"raters": list(ratings.raters), "competence": competence, "spam_distribution": spam},
    )
