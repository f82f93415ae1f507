"""Bootstrap intervals: reproducible for a seed, around the estimate, and exact resample statistics on every path."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import alpha as alpha_module
from annotation.agreement import krippendorff_alpha, masi_alpha, ratings_from_matrix
from annotation.agreement.alpha import _pairable, bootstrap_alpha, metric_for_level
from annotation.agreement.sets import label_set_ratings


def _data(seed: int = 0, units: int = 500, raters: int = 4, values: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, values + 1, size=units)
    data = np.where(rng.random((raters, units)) < 0.7, truth, rng.integers(1, values + 1, size=(raters, units)))
    data = data.astype(float)
    data[rng.random((raters, units)) < 0.25] = np.nan
    return data


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_same_seed_same_interval_and_interval_contains_estimate(level: str) -> None:
    ratings = ratings_from_matrix(_data())
    first = krippendorff_alpha(ratings, level, n_resamples=300, seed=11)
    again = krippendorff_alpha(ratings, level, n_resamples=300, seed=11)
    other = krippendorff_alpha(ratings, level, n_resamples=300, seed=12)
    assert first.interval == again.interval
    assert first.resamples is not None and again.resamples is not None and other.resamples is not None
    assert np.array_equal(first.resamples, again.resamples)
    assert not np.array_equal(first.resamples, other.resamples)
    assert first.interval is not None
    low, high = first.interval
    assert low < first.alpha < high
    assert first.n_resamples == 300 and first.n_undefined_resamples == 0
    assert first.standard_error is not None and 0 < first.standard_error < high - low
    assert first.probability_below(-1.0) == 0.0
    assert first.probability_below(2.0) == 1.0


def test_interval_narrows_with_more_units() -> None:
    small = krippendorff_alpha(ratings_from_matrix(_data(units=200)), "nominal", n_resamples=400, seed=1)
    large = krippendorff_alpha(ratings_from_matrix(_data(units=5000)), "nominal", n_resamples=400, seed=1)
    assert small.interval is not None and large.interval is not None
    assert large.interval[1] - large.interval[0] < (small.interval[1] - small.interval[0]) / 2


class _IdentityRng:
    """Draws every unit exactly once, so each resample is the original data: it must give the point estimate."""

    def multinomial(self, n: int, pvals: np.ndarray, size: int) -> np.ndarray:
        return np.tile(np.rint(pvals * n), (size, 1)).astype(np.int64)

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        return np.arange(low, high)


LEVELS = ["nominal", "ordinal", "interval", "ratio"]
PATHS = (
    [(level, "profiles") for level in LEVELS]
    + [(level, "many_profiles") for level in LEVELS]
    + [("interval", "unit_features")]
    + [(level, "value_pairs") for level in ("nominal", "ordinal", "ratio")]
)


@pytest.mark.parametrize(("level", "path"), PATHS)
def test_every_resampling_path_reproduces_the_estimate_on_the_original_sample(
    level: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _data(seed=5, units=300)
    if path in ("unit_features", "value_pairs"):
        data = np.round(data + np.random.default_rng(1).random(data.shape), 3)  # many distinct values
    if path == "many_profiles":
        monkeypatch.setattr(alpha_module, "_MAX_MULTINOMIAL_PROFILES", 1)
    if path in ("unit_features", "value_pairs"):
        monkeypatch.setattr(alpha_module, "_MAX_DENSE_CELLS", 10)
    ratings = ratings_from_matrix(data)
    metric = metric_for_level(ratings, level)
    samples = bootstrap_alpha(_pairable(ratings), metric, 3, _IdentityRng())  # type: ignore[arg-type]
    assert samples == pytest.approx([krippendorff_alpha(ratings, level).alpha] * 3, abs=1e-9)


def test_masi_alpha_bootstrap_is_reproducible() -> None:
    rng = np.random.default_rng(4)
    labels = ["joy", "anger", "fear", "sadness"]
    units, raters, answers = [], [], []
    for unit in range(200):
        core = set(rng.choice(labels, size=int(rng.integers(1, 3)), replace=False).tolist())
        for rater in range(3):
            answer = set(core)
            if rng.random() < 0.3:
                answer ^= {str(rng.choice(labels))}
            units.append(unit)
            raters.append(rater)
            answers.append(sorted(answer))
    ratings = label_set_ratings(units, raters, answers)
    first = masi_alpha(ratings, n_resamples=200, seed=3)
    assert first.interval == masi_alpha(ratings, n_resamples=200, seed=3).interval
    assert first.interval is not None and first.interval[0] < first.alpha < first.interval[1]
