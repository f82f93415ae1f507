"""Aggregating several ratings of a unit into one label (with a confidence) or a distribution.

- majority vote with an explicit tie policy: ``abstain`` (no label), ``random`` (seeded), ``prefer_order``
  (the first tied label in a given order); confidence = the winner's share of the unit's votes;
- soft labels: the share of each label among a unit's votes (optionally smoothed);
- Dawid & Skene (1979): EM over one confusion matrix per rater and class priors; confidence = posterior;
- MACE (Hovy et al. 2013): EM over a competence (probability of not spamming) and a spam distribution per
  rater, uniform prior over true labels; confidence = posterior;
- dimensions: mean, median, standard deviation, standard error per unit;
- multi-label answers label by label (``multi_label_decide``): more than a share of the raters who answered the
  label chose it, a mean level at or above a threshold, or a binary Dawid–Skene / MACE per label; an unanswered
  label is missing (it counts for neither side) and decisions exactly on the boundary are reported as ties.

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


# --- multi-label answers, label by label ------------------------------------------------------------------------

MULTI_LABEL_RULES = ("share", "mean_intensity", "dawid_skene", "mace")
_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MultiLabelDecision:
    """Per unit (rows, in unit index order) and label (columns): whether the label is in the aggregated answer.

    ``answered`` counts the ratings that answered the label (an unanswered label is missing, not absent), ``share``
    is the share of those that chose it (NaN when none answered), ``mean`` their mean level (absent = 0),
    ``posterior`` the EM posterior of "present" (Dawid–Skene, MACE; else None), ``intensity`` the level of a
    present label, ``tied`` the decisions that sat exactly on the rule's boundary (left absent here; the caller's
    tie policy settles them) and ``confidence`` per unit the weakest decision.
    """

    rule: str
    present: npt.NDArray[np.bool_]
    tied: npt.NDArray[np.bool_]
    answered: IntArray
    share: FloatArray
    mean: FloatArray
    intensity: IntArray
    confidence: FloatArray
    posterior: FloatArray | None = None


def _lower_median_levels(unit_idx: IntArray, levels: FloatArray, n_units: int) -> IntArray:
    """Per unit and label, the lower median of the levels > 0 given to it (0 where nobody chose it)."""
    rows, labels = np.nonzero(np.nan_to_num(levels, nan=0.0) > 0)
    out = np.zeros((n_units, levels.shape[1]), dtype=np.int64)
    if not rows.size:
        return out
    unit, given = unit_idx[rows], levels[rows, labels]
    order = np.lexsort((given, labels, unit))
    unit, labels, given = unit[order], labels[order], given[order]
    starts = np.flatnonzero(np.r_[True, (unit[1:] != unit[:-1]) | (labels[1:] != labels[:-1])])
    counts = np.diff(np.r_[starts, unit.size])
    pick = starts + (counts - 1) // 2
    out[unit[starts], labels[starts]] = given[pick].astype(np.int64)
    return out


def multi_label_decide(
    unit_idx: IntArray,
    rater_idx: IntArray,
    levels: FloatArray,
    n_units: int,
    *,
    rule: str = "share",
    share_above: float = 0.5,
    threshold: float = 0.5,
    inclusive: bool = True,
) -> MultiLabelDecision:
    """Decide each label of each unit from per-rating levels (ratings × labels; 0 absent, NaN unanswered).

    - ``share``: present when more than ``share_above`` of the raters who answered the label chose it (level > 0);
      exactly ``share_above`` is a tie; intensity = lower median of the levels of those who chose it;
    - ``mean_intensity``: present when the mean level over the raters who answered it is ≥ ``threshold``
      (``inclusive``) or > it, the rule multi-label intensity corpora publish; intensity = the mean rounded half up;
    - ``dawid_skene`` / ``mace``: one binary (chosen / not) EM per label over the raters who answered it; present
      when the posterior of "chosen" is above 0.5, exactly 0.5 is a tie; intensity as for ``share``.
    A label nobody answered is not present. Confidence per unit: the weakest decision, min over answered labels
    of max(share, 1 − share) (``share``, ``mean_intensity``) or of the posterior of the side taken (EM).
    """
    if rule not in MULTI_LABEL_RULES:
        raise AgreementInputError(f"multi-label rule must be one of {', '.join(MULTI_LABEL_RULES)}, got {rule!r}")
    if not 0.0 <= share_above < 1.0:
        raise AgreementInputError(f"share_above must be from 0 to below 1, got {share_above}")
    n_labels = levels.shape[1]
    answered_mask = ~np.isnan(levels)
    given = np.where(answered_mask, levels, 0.0)

    def per_unit(weights: FloatArray) -> FloatArray:
        return np.column_stack(
            [np.bincount(unit_idx, weights=weights[:, j], minlength=n_units) for j in range(n_labels)]
        ) if n_labels else np.zeros((n_units, 0))

    answered = per_unit(answered_mask.astype(np.float64)).astype(np.int64)
    chosen = per_unit((given > 0).astype(np.float64))
    total = per_unit(given)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(answered > 0, chosen / np.maximum(answered, 1), np.nan)
        mean = np.where(answered > 0, total / np.maximum(answered, 1), np.nan)
    has = answered > 0
    posterior: FloatArray | None = None
    intensity = _lower_median_levels(unit_idx, levels, n_units)
    if rule == "share":
        tied = has & (np.abs(share - share_above) <= _TIE_TOLERANCE)
        present = has & ~tied & (share > share_above)
        decision = np.where(has, np.maximum(share, 1.0 - share), np.nan)
    elif rule == "mean_intensity":
        tied = np.zeros_like(has)
        present = has & ((mean >= threshold - _TIE_TOLERANCE) if inclusive else (mean > threshold + _TIE_TOLERANCE))
        intensity = np.where(present, np.maximum(np.floor(np.nan_to_num(mean) + 0.5), 1), 0).astype(np.int64)
        decision = np.where(has, np.maximum(share, 1.0 - share), np.nan)
    else:
        posterior = np.full((n_units, n_labels), np.nan)
        for j in range(n_labels):
            rows = np.flatnonzero(answered_mask[:, j])
            if not rows.size:
                continue
            binary = Ratings(unit_idx=unit_idx[rows], rater_idx=rater_idx[rows],
                             value_idx=(given[rows, j] > 0).astype(np.int64), units=np.arange(n_units),
                             raters=np.arange(int(rater_idx.max()) + 1 if rater_idx.size else 0),
                             values=np.array([0, 1]))
            crowd = dawid_skene(binary) if rule == "dawid_skene" else mace(binary)
            rated, _ = _rated_units(binary)
            posterior[rated, j] = crowd.posteriors.to_numpy()[:, 1]
        tied = has & (np.abs(posterior - 0.5) <= _TIE_TOLERANCE)
        present = has & ~tied & (posterior > 0.5)
        decision = np.where(has, np.maximum(posterior, 1.0 - posterior), np.nan)
    intensity = np.where(present, np.maximum(intensity, 1), 0)
    with np.errstate(invalid="ignore"):
        confidence = np.where(has.any(axis=1), np.nanmin(np.where(has, decision, np.inf), axis=1), np.nan) \
            if n_labels else np.full(n_units, np.nan)
    return MultiLabelDecision(rule=rule, present=present, tied=tied, answered=answered, share=share, mean=mean,
                              intensity=intensity.astype(np.int64), confidence=confidence, posterior=posterior)


def tied_winners(counts: FloatArray, *, tie_policy: TiePolicy, preference: FloatArray | None = None,
                 seed: int | None = 0) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Per row of scores (units × values), the index of the top value and whether the top was shared.

    A shared top goes to the highest ``preference`` (``prefer_order``), a seeded random one (``random``), or
    the first (``abstain``: the caller leaves it open)."""
    top = counts.max(axis=1, keepdims=True) if counts.size else np.zeros((counts.shape[0], 1))
    is_top = np.abs(counts - top) <= _TIE_TOLERANCE * np.maximum(1.0, np.abs(top))
    tied = is_top.sum(axis=1) > 1
    if tie_policy == "prefer_order" and preference is not None:
        score = np.broadcast_to(preference, counts.shape)
    elif tie_policy == "random":
        score = np.random.default_rng(seed).random(counts.shape)
    else:
        score = np.zeros(counts.shape)
    winner = np.argmax(np.where(is_top, score, -np.inf), axis=1)
    return winner.astype(np.int64), tied
