"""Agreement on multi-label answers: alpha with the MASI distance, and per-label binary (or intensity) alpha.

MASI (Passonneau 2006, "Measuring Agreement on Set-valued Items (MASI) for Semantic and Pragmatic
Annotation", LREC): similarity = Jaccard(A, B) * M(A, B) with M = 1 if A = B, 2/3 if one set contains the
other, 1/3 if they overlap otherwise, 0 if disjoint; the distance is 1 - similarity. Two empty sets are
identical (distance 0). NLTK's ``masi_distance`` rounds the weights to 0.67 and 0.33; these are exact.

An empty answer is the label set "none of these" (a real value). In a label → level mapping, ``None`` marks a label
the rater gave no answer for (missing, not absent): per-label alpha leaves that rating out for that label, and MASI
leaves out a rating whose set is unknown because another rating of its unit answered a label it left unanswered
(``masi_usable``). A label every rating of a unit left unanswered (a column the source lacks) does not matter there.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from annotation.agreement.alpha import (
    AlphaResult,
    Metric,
    _alpha_of_pairable,
    _Pairable,
    krippendorff_alpha,
    metric_from_matrix,
)
from annotation.agreement.ratings import AgreementInputError, FloatArray, Ratings, ratings_from_long

_MAX_DISTINCT_SETS = 10_000
UNANSWERED = -1.0  # the level of a label left unanswered in an answer key (NaN would make every key distinct)


def masi_distance(first: Iterable[Hashable], second: Iterable[Hashable]) -> float:
    """1 - Jaccard * monotonicity between two label sets."""
    a, b = set(first), set(second)
    if a == b:
        return 0.0
    common = len(a & b)
    jaccard = common / len(a | b)
    if common == 0:
        weight = 0.0
    elif a <= b or b <= a:
        weight = 2.0 / 3.0
    else:
        weight = 1.0 / 3.0
    return 1.0 - jaccard * weight


def _as_label_set(answer: Any, where: int) -> tuple[str, ...] | None:
    """A canonical sorted tuple for a list/set of labels or a label → intensity mapping (labels > 0 count)."""
    if answer is None or (isinstance(answer, float) and np.isnan(answer)):
        return None
    if isinstance(answer, Mapping):
        return tuple(sorted(str(label) for label, level in answer.items() if level))
    if isinstance(answer, str) or not isinstance(answer, Iterable):
        raise AgreementInputError(f"row {where}: a multi-label answer must be a list of labels, got {answer!r}")
    return tuple(sorted({str(label) for label in answer}))


def _unanswered(answer: Any) -> frozenset[str]:
    """Labels a label → level mapping leaves unanswered (``None``); a list answers every label."""
    if isinstance(answer, Mapping):
        return frozenset(str(label) for label, level in answer.items() if level is None)
    return frozenset()


def masi_usable(units: Sequence[Hashable] | np.ndarray | pd.Series, unanswered: Sequence[frozenset[str]]) -> np.ndarray:
    """Which ratings have a known label set for MASI: those whose unanswered labels no other rating of the unit
    answered, i.e. whose unanswered set equals the intersection of the unit's unanswered sets."""
    unit_col = np.asarray(units, dtype=object)
    keep = np.ones(len(unanswered), dtype=bool)
    partial = [row for row, labels in enumerate(unanswered) if labels]
    if not partial:
        return keep
    affected = set(unit_col[partial].tolist())
    common: dict[Any, frozenset[str]] = {}
    for row in np.flatnonzero(pd.Series(unit_col).isin(affected).to_numpy()):
        unit = unit_col[row]
        common[unit] = common[unit] & unanswered[row] if unit in common else unanswered[row]
    for row in partial:
        keep[row] = unanswered[row] == common[unit_col[row]]
    return keep


def masi_matrix(label_sets: Sequence[tuple[str, ...]]) -> FloatArray:
    """MASI distances between every two of the given label sets (vectorised over a label-incidence matrix)."""
    vocabulary = sorted({label for labels in label_sets for label in labels})
    position = {label: i for i, label in enumerate(vocabulary)}
    incidence = np.zeros((len(label_sets), max(len(vocabulary), 1)), dtype=np.float64)
    for row, labels in enumerate(label_sets):
        incidence[row, [position[label] for label in labels]] = 1.0
    common = incidence @ incidence.T
    sizes = incidence.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - common
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, common / np.where(union > 0, union, 1.0), 1.0)
    smaller = np.minimum(sizes[:, None], sizes[None, :])
    equal = (common == sizes[:, None]) & (common == sizes[None, :])
    weight = np.where(equal, 1.0, np.where(common == smaller, 2.0 / 3.0, np.where(common > 0, 1.0 / 3.0, 0.0)))
    # Subset test above treats the empty set as a subset of everything, but its Jaccard with a non-empty set is 0.
    distance = 1.0 - jaccard * weight
    np.fill_diagonal(distance, 0.0)
    return np.asarray(distance, dtype=np.float64)


def label_set_ratings(
    units: Sequence[Hashable] | np.ndarray | pd.Series,
    raters: Sequence[Hashable] | np.ndarray | pd.Series,
    answers: Sequence[Any] | pd.Series,
) -> Ratings:
    """Encode multi-label answers; each distinct label set becomes one value (a sorted tuple of labels).

    A rating whose set is unknown (see ``masi_usable``) is left out, like a missing value."""
    answers = list(answers)
    canonical = [_as_label_set(answer, row) for row, answer in enumerate(answers)]
    usable = masi_usable(units, [_unanswered(answer) for answer in answers])
    canonical = [value if ok else None for value, ok in zip(canonical, usable)]
    return ratings_from_long(units, raters, pd.Series(canonical, dtype=object))


def masi_alpha(
    ratings: Ratings, *, n_resamples: int = 0, confidence_level: float = 0.95, seed: int | None = 0
) -> AlphaResult:
    """Krippendorff's alpha with the MASI distance, for ratings encoded by ``label_set_ratings``."""
    if ratings.n_values > _MAX_DISTINCT_SETS:
        raise AgreementInputError(f"{ratings.n_values} distinct label sets; MASI alpha supports up to {_MAX_DISTINCT_SETS}")
    matrix = masi_matrix([tuple(value) for value in ratings.values])
    return krippendorff_alpha(
        ratings,
        metric=metric_from_matrix("masi", matrix),
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        seed=seed,
    )


def _answer_key(answer: Any, where: int) -> tuple[tuple[str, float], ...] | None:
    """(label, level) pairs of an answer: level 1 for a label list, the intensity for a mapping; UNANSWERED for a
    label left unanswered."""
    if answer is None or (isinstance(answer, float) and np.isnan(answer)):
        return None
    if isinstance(answer, Mapping):
        pairs = []
        for label, level in answer.items():
            if level is None:
                pairs.append((str(label), UNANSWERED))
                continue
            if not isinstance(level, (int, float)) or isinstance(level, bool) or not np.isfinite(level):
                raise AgreementInputError(f"row {where}: intensity of {label!r} must be a number, got {level!r}")
            if level:
                pairs.append((str(label), float(level)))
        return tuple(sorted(pairs))
    labels = _as_label_set(answer, where)
    return None if labels is None else tuple((label, 1.0) for label in labels)


def per_label_alpha(
    units: Sequence[Hashable] | np.ndarray | pd.Series,
    raters: Sequence[Hashable] | np.ndarray | pd.Series,
    answers: Sequence[Any] | pd.Series,
    *,
    labels: Sequence[str] | None = None,
    level: str | None = None,
    n_resamples: int = 0,
    confidence_level: float = 0.95,
    seed: int | None = 0,
) -> dict[str, AlphaResult]:
    """Alpha per label: binary present/absent (nominal) for label lists, or intensity (ordinal) for mappings.

    An absent label counts as "no" (intensity 0) for every rater who answered; a missing answer is skipped, and so
    is a rating for a label it left unanswered (``None``). An empty answer ("none of these") says "no" to every
    label. Each distinct answer is parsed once, so the cost per label is a few array operations.
    """
    answers = list(answers)
    intensity = any(isinstance(answer, Mapping) for answer in answers)
    level = level or ("ordinal" if intensity else "nominal")
    keys = pd.Series([_answer_key(answer, row) for row, answer in enumerate(answers)], dtype=object)
    encoded = ratings_from_long(units, raters, keys)
    distinct: list[dict[str, float]] = [dict(value) for value in encoded.values]
    if labels is None:
        labels = sorted({label for value in distinct for label, level in value.items() if level != UNANSWERED})
    levels = np.array([[value.get(label, 0.0) for label in labels] for value in distinct], dtype=np.float64)
    levels = levels.reshape(len(distinct), len(labels))
    levels[levels == UNANSWERED] = np.nan
    return alpha_per_label(encoded, levels, labels, level, n_resamples=n_resamples,
                           confidence_level=confidence_level, seed=seed)


def alpha_per_label(
    encoded: Ratings,
    levels: FloatArray,
    labels: Sequence[str],
    level: str = "nominal",
    *,
    n_resamples: int = 0,
    confidence_level: float = 0.95,
    seed: int | None = 0,
) -> dict[str, AlphaResult]:
    """Alpha of every label from ratings encoded once: ``levels[k, j]`` is label j's level in value k (0 = absent,
    NaN = that answer left label j unanswered, so its ratings are left out of label j's alpha).

    Each label's value domain is the levels its ratings use, so the result equals ``krippendorff_alpha`` of
    ``label_level_ratings(encoded, levels[:, j])``; but nothing is re-encoded: per label, one lookup per rating and
    one bincount make its unit × level count matrix, which gives alpha and the bootstrap profiles.
    """
    if level not in ("nominal", "ordinal"):
        raise AgreementInputError(f"per-label alpha is nominal or ordinal, got {level!r}")
    if n_resamples > 0 and not 0.0 < confidence_level < 1.0:
        raise AgreementInputError(f"confidence level must be between 0 and 1, got {confidence_level}")
    levels = np.asarray(levels, dtype=np.float64)
    if levels.shape != (encoded.n_values, len(labels)):
        raise AgreementInputError(f"levels must be values × labels, {encoded.n_values} × {len(labels)}, got {levels.shape}")
    used = np.bincount(encoded.value_idx, minlength=encoded.n_values) > 0
    all_per_unit = np.bincount(encoded.unit_idx, minlength=encoded.n_units)
    results: dict[str, AlphaResult] = {}
    for column, label in enumerate(labels):
        answered = ~np.isnan(levels[:, column])
        unit_idx, value_idx, per_unit = encoded.unit_idx, encoded.value_idx, all_per_unit
        if not answered[used].all():  # some raters left this label unanswered: their ratings are not ratings of it
            kept = answered[encoded.value_idx]
            unit_idx, value_idx = unit_idx[kept], value_idx[kept]
            per_unit = np.bincount(unit_idx, minlength=encoded.n_units)
        domain = np.unique(levels[used & answered, column])
        code = np.searchsorted(domain, levels[:, column]).astype(np.int64)  # unused values may fall off the end
        pairs = _Pairable(unit_idx, code[value_idx], encoded.n_units, domain.size, per_unit)
        metric = Metric("nominal", "nominal") if level == "nominal" else Metric("ordinal", "ordinal", numeric_values=domain)
        results[label] = _alpha_of_pairable(pairs, metric, encoded.n_units, n_resamples, confidence_level, seed)
    return results


def label_level_ratings(encoded: Ratings, level_of_value: np.ndarray) -> Ratings:
    """Ratings of one label's level, from ratings encoded by answer: ``level_of_value[v]`` is the label's level in
    answer value ``v`` (NaN: left unanswered, so that rating is left out)."""
    levels = level_of_value[encoded.value_idx]
    answered = ~np.isnan(levels)
    domain, value_idx = np.unique(levels[answered], return_inverse=True)
    return Ratings(
        unit_idx=encoded.unit_idx[answered],
        rater_idx=encoded.rater_idx[answered],
        value_idx=value_idx.astype(np.int64).reshape(-1),
        units=encoded.units,
        raters=encoded.raters,
        values=domain,
    )
