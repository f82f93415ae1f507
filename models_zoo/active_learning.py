"""Active learning on stored embeddings: query strategies, batch priorities, and suspected label errors.

Pure numpy / scikit-learn (no Django). Probabilities come from a ``LinearHead`` (rows of items, columns of labels;
softmax rows for single-label questions, independent sigmoids for multi-label ones).

- Uncertainty scores (higher = ask a human first): least confidence, margin (log-odds gap of the two most likely
  labels, the distance to the decision boundary of a linear head), entropy, breaking ties (probability gap of the
  two most likely labels, Luo et al. 2005). Multi-label questions are scored per label as binary decisions and the
  item takes its most uncertain label (the sum of binary entropies for entropy).
- ``select_batch`` picks a batch: by a score, or diversity-aware (``cluster_uncertainty``: the most uncertain item
  in each k-means cluster of the most uncertain candidates, Zhdanov 2019, so a batch is not near-duplicates), a
  share of random items for exploration, and a diverse cold start (the items nearest the k-means centres) while
  there is no model yet.
- ``suspected_label_errors``: confident learning (Northcutt et al. 2021) on out-of-fold probabilities: a label is
  suspect when another label's probability reaches that label's per-class threshold (the mean probability the
  model gives the items labelled with it) and is the most likely of those that do.

small-text (MIT) and modAL (MIT) implement the same scores, but neither is installed here and both pull in their own
classifier wrappers; the formulas are a few lines over the head's probabilities. cleanlab is AGPL: not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

EPS = 1e-12


class Strategy(StrEnum):
    RANDOM = "random"
    LEAST_CONFIDENCE = "least_confidence"
    MARGIN = "margin"
    ENTROPY = "entropy"
    BREAKING_TIES = "breaking_ties"
    CLUSTER_UNCERTAINTY = "cluster_uncertainty"


STRATEGIES = tuple(s.value for s in Strategy)
CANDIDATES_PER_PICK = 10  # cluster_uncertainty clusters the batch x this many most uncertain items
MAX_KMEANS_ROWS = 20_000  # cold start clusters at most this many pool rows (a random sample of a larger pool)


def _top_two(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    part = -np.partition(-p, 1, axis=1)[:, :2] if p.shape[1] > 1 else np.hstack([p, np.zeros_like(p)])
    return part[:, 0], part[:, 1]


def uncertainty(probabilities: np.ndarray, strategy: Strategy | str, *, multi_label: bool = False,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """One score per row, higher = more worth a human label. Random scores are uniform (``rng`` seeds them)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPS, 1.0)
    strategy = Strategy(strategy)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be a matrix of items x labels, got shape {p.shape}")
    if strategy is Strategy.RANDOM:
        return (rng or np.random.default_rng()).random(p.shape[0])
    if multi_label:
        q = np.clip(1.0 - p, EPS, 1.0)  # each label is a binary decision: p against 1 - p
        if strategy is Strategy.ENTROPY:
            return (-(p * np.log(p) + q * np.log(q)) / np.log(2)).sum(axis=1)
        if strategy is Strategy.MARGIN:
            return -np.abs(np.log(p) - np.log(q)).min(axis=1)
        if strategy is Strategy.BREAKING_TIES:
            return -np.abs(p - q).min(axis=1)
        return (1.0 - np.maximum(p, q)).max(axis=1)  # least confidence, also the base of cluster_uncertainty
    if strategy is Strategy.ENTROPY or strategy is Strategy.CLUSTER_UNCERTAINTY:
        return -(p * np.log(p)).sum(axis=1) / np.log(max(p.shape[1], 2))
    first, second = _top_two(p)
    if strategy is Strategy.LEAST_CONFIDENCE:
        return 1.0 - first
    if strategy is Strategy.MARGIN:
        return -(np.log(first) - np.log(np.maximum(second, EPS)))
    return -(first - second)  # breaking ties


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=max(1024, 3 * k))
    assignment = model.fit_predict(x)
    return assignment, model.cluster_centers_


def cold_start(embeddings: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` diverse rows before any model exists: the row nearest each centre of ``n`` k-means clusters."""
    x = np.asarray(embeddings, dtype=np.float32)
    n = min(n, x.shape[0])
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    rows = rng.choice(x.shape[0], MAX_KMEANS_ROWS, replace=False) if x.shape[0] > MAX_KMEANS_ROWS \
        else np.arange(x.shape[0])
    assignment, centres = _kmeans(x[rows], n, seed)
    picked: list[int] = []
    for cluster in range(centres.shape[0]):
        members = rows[assignment == cluster]
        if members.size:
            distance = ((x[members] - centres[cluster]) ** 2).sum(axis=1)
            picked.append(int(members[distance.argmin()]))
    rest = np.setdiff1d(np.arange(x.shape[0]), picked)  # empty clusters: fill with random rows
    extra = rng.choice(rest, n - len(picked), replace=False) if len(picked) < n else np.zeros(0, dtype=np.int64)
    return np.concatenate([np.asarray(picked, dtype=np.int64), extra.astype(np.int64)])


def select_batch(probabilities: np.ndarray | None, n: int, strategy: Strategy | str, *,
                 embeddings: np.ndarray | None = None, multi_label: bool = False, exploration: float = 0.0,
                 seed: int = 0) -> np.ndarray:
    """Row indices of the next ``n`` items to label, most wanted first.

    ``probabilities`` None (no model yet): a diverse cold start from ``embeddings`` (random without them).
    ``exploration``: the share of the batch drawn at random from the rest of the pool.
    """
    strategy = Strategy(strategy)
    rng = np.random.default_rng(seed)
    size = (probabilities.shape[0] if probabilities is not None
            else embeddings.shape[0] if embeddings is not None else 0)
    n = min(n, size)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if probabilities is None:
        if embeddings is None or strategy is Strategy.RANDOM:
            return rng.permutation(size)[:n]
        return cold_start(embeddings, n, seed=seed)
    explore = int(round(n * min(max(exploration, 0.0), 1.0))) if strategy is not Strategy.RANDOM else 0
    exploit = n - explore
    scores = uncertainty(probabilities, strategy, multi_label=multi_label, rng=rng)
    if strategy is Strategy.CLUSTER_UNCERTAINTY and embeddings is not None and exploit > 1:
        candidates = np.argsort(-scores, kind="stable")[:exploit * CANDIDATES_PER_PICK]
        assignment, _ = _kmeans(np.asarray(embeddings, dtype=np.float32)[candidates], min(exploit, candidates.size),
                                seed)
        best: dict[int, int] = {}
        for row, cluster in zip(candidates, assignment):  # candidates are sorted: first seen = most uncertain
            best.setdefault(int(cluster), int(row))
        chosen = sorted(best.values(), key=lambda r: -scores[r])
        if len(chosen) < exploit:
            taken = set(chosen)
            chosen += [int(r) for r in candidates if int(r) not in taken][:exploit - len(chosen)]
        picked = np.asarray(chosen[:exploit], dtype=np.int64)
    else:
        picked = np.argsort(-scores, kind="stable")[:exploit]
    if explore:
        rest = np.setdiff1d(np.arange(size), picked)
        picked = np.concatenate([picked, rng.choice(rest, min(explore, rest.size), replace=False)])
    return picked.astype(np.int64)


def priorities(probabilities: np.ndarray | None, strategy: Strategy | str, *, batch: int,
               embeddings: np.ndarray | None = None, multi_label: bool = False, exploration: float = 0.0,
               seed: int = 0) -> np.ndarray:
    """A priority per pool row for "highest first" distribution: the selected batch above everything, in its
    order (values in (1, 2]), then the rest by uncertainty rescaled into [0, 1)."""
    size = (probabilities.shape[0] if probabilities is not None
            else embeddings.shape[0] if embeddings is not None else 0)
    out = np.zeros(size, dtype=np.float64)
    if size == 0:
        return out
    if probabilities is not None:
        scores = uncertainty(probabilities, strategy, multi_label=multi_label, rng=np.random.default_rng(seed))
        low, high = float(scores.min()), float(scores.max())
        out = (scores - low) / (high - low) * 0.999 if high > low else np.zeros(size)
    picked = select_batch(probabilities, batch, strategy, embeddings=embeddings, multi_label=multi_label,
                          exploration=exploration, seed=seed)
    out[picked] = 1.0 + (np.arange(picked.size, 0, -1) / max(picked.size, 1))
    return out


@dataclass(frozen=True)
class SuspectedError:
    row: int
    given: str
    suggested: str
    given_probability: float  # out-of-fold probability of the label the human gave
    suggested_probability: float
    threshold: float  # the suggested label's per-class threshold it reached


def suspected_label_errors(probabilities: np.ndarray, given: Sequence[str], *, labels: Sequence[str]) \
        -> list[SuspectedError]:
    """Confident learning over out-of-fold ``probabilities`` (single-label): rows whose given label the model
    confidently disagrees with, least self-confident first. Rows with NaN (never scored) are left out."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index.get(g, -1) for g in given])
    scored = ~np.isnan(p).any(axis=1) & (y >= 0)
    thresholds = np.full(len(labels), np.inf)
    for j in range(len(labels)):
        rows = scored & (y == j)
        if rows.any():
            thresholds[j] = p[rows, j].mean()
    found: list[SuspectedError] = []
    for row in np.flatnonzero(scored):
        confident = p[row] >= thresholds
        if not confident.any():
            continue
        pick = int(np.argmax(np.where(confident, p[row], -1.0)))
        if pick != y[row]:
            found.append(SuspectedError(int(row), labels[y[row]], labels[pick], float(p[row, y[row]]),
                                        float(p[row, pick]), float(thresholds[pick])))
    return sorted(found, key=lambda e: (e.given_probability, e.row))


def suspected_label_errors_multi(probabilities: np.ndarray, given: Sequence[Sequence[str]], *,
                                 labels: Sequence[str]) -> list[SuspectedError]:
    """Multi-label questions: each label is its own yes/no question, checked as above (``given`` and ``suggested``
    read "label" / "not label")."""
    p = np.asarray(probabilities, dtype=np.float64)
    found: list[SuspectedError] = []
    for j, label in enumerate(labels):
        binary = np.stack([1.0 - p[:, j], p[:, j]], axis=1)
        answers = [label if label in set(g) else f"not {label}" for g in given]
        found += suspected_label_errors(binary, answers, labels=[f"not {label}", label])
    return sorted(found, key=lambda e: (e.given_probability, e.row))
