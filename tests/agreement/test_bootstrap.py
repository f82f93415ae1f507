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


def _original_sample(rng: object, freq: np.ndarray, n_resamples: int):  # type: ignore[no-untyped-def]
    """Stands in for the sampler: every resample draws each unit exactly once, so it must give the point estimate."""
    yield 0, np.tile(freq, (n_resamples, 1))


LEVELS = ["nominal", "ordinal", "interval", "ratio"]
PATHS = (
    [(level, "profiles") for level in LEVELS]
    + [("ordinal", "sparse_features")]
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
        monkeypatch.setattr(alpha_module, "_MAX_DENSE_CELLS", 10)
    if path == "sparse_features":
        monkeypatch.setattr(alpha_module, "_DENSE_FEATURE_CELLS", 0)
    monkeypatch.setattr(alpha_module, "_resample_counts", _original_sample)
    ratings = ratings_from_matrix(data)
    metric = metric_for_level(ratings, level)
    samples = bootstrap_alpha(_pairable(ratings), metric, 3, np.random.default_rng(0))
    assert samples == pytest.approx([krippendorff_alpha(ratings, level).alpha] * 3, abs=1e-9)


@pytest.mark.parametrize(
    "freq",
    [
        np.array([4000.0, 2500.0, 2000.0, 1000.0, 500.0]),  # few profiles: numpy's multinomial
        np.concatenate([[3000.0, 1500.0, 800.0, 40.0], np.ones(600), np.full(200, 2.0)]),  # many rare: Poissonised
    ],
    ids=["multinomial", "poissonised"],
)
def test_resampled_profile_counts_are_multinomial(freq: np.ndarray) -> None:
    """Each row draws U units with replacement: rows sum to U, and the counts have the multinomial mean and variance."""
    n_units, n_resamples = int(freq.sum()), 4000
    assert alpha_module._poissonise(freq) is (freq.size > 5)  # both samplers are exercised
    blocks = list(alpha_module._resample_counts(np.random.default_rng(3), freq, n_resamples))
    counts = np.concatenate([block for _, block in blocks])
    assert [start for start, _ in blocks] == list(np.cumsum([0] + [b.shape[0] for _, b in blocks[:-1]]))
    assert counts.shape == (n_resamples, freq.size)
    assert (counts >= 0).all() and (counts.sum(axis=1) == n_units).all()
    share = freq / n_units
    variance = n_units * share * (1 - share)
    # Means within 5 standard errors; variances within 15 % (4000 rows give a relative SE of about 2.2 %).
    assert np.all(np.abs(counts.mean(axis=0) - freq) <= 5 * np.sqrt(variance / n_resamples) + 1e-9)
    big = freq >= 5
    assert counts[:, big].var(axis=0, ddof=1) == pytest.approx(variance[big], rel=0.15)
    # Grouped rare profiles too (a single rare profile's variance is noisy): units that fell in the f = 1 profiles.
    ones = freq == 1
    if ones.any():
        grouped = counts[:, ones].sum(axis=1)
        p = ones.sum() / n_units
        assert grouped.mean() == pytest.approx(n_units * p, rel=0.01)
        assert grouped.var(ddof=1) == pytest.approx(n_units * p * (1 - p), rel=0.15)
    # Negative covariance between two profiles, as in a multinomial: -U p_a p_b.
    covariance = np.cov(counts[:, 0], counts[:, 1])[0, 1]
    assert covariance == pytest.approx(-n_units * share[0] * share[1], rel=0.2)


def test_resampling_is_reproducible_for_a_seed_on_both_samplers() -> None:
    for freq in (np.array([5.0, 3.0, 2.0]), np.concatenate([[500.0], np.ones(400)])):
        first = np.concatenate([b for _, b in alpha_module._resample_counts(np.random.default_rng(9), freq, 50)])
        again = np.concatenate([b for _, b in alpha_module._resample_counts(np.random.default_rng(9), freq, 50)])
        assert np.array_equal(first, again)


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


@pytest.mark.parametrize("lam", [0.3, 1.0, 4.5, 30.0, 63.9])
def test_poisson_tables_are_the_poisson_distribution(lam: float) -> None:
    from scipy import stats

    cdf = alpha_module._poisson_cdf(lam)
    assert cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)
    assert cdf[:-1] == pytest.approx(stats.poisson.cdf(np.arange(cdf.size - 1), lam), abs=1e-12)
    assert 1.0 - cdf[-2] < 1e-15  # the last entry takes only a negligible tail


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_bootstrap_edge_cases(level: str) -> None:
    # One pairable unit (and units rated once): every resample is that unit again.
    one = ratings_from_matrix(np.array([[1.0, 2.0, np.nan, 3.0], [2.0, np.nan, 1.0, np.nan], [1.0, np.nan, np.nan, np.nan]]))
    result = krippendorff_alpha(one, level, n_resamples=50, seed=1)
    assert result.n_pairable_units == 1 and result.n_pairable_values == 3
    assert result.resamples is not None
    assert np.allclose(result.resamples, result.alpha, equal_nan=True)
    # Everyone used one value: no expected disagreement anywhere, every resample undefined.
    same = krippendorff_alpha(ratings_from_matrix(np.full((3, 40), 2.0)), level, n_resamples=50, seed=1)
    assert not same.defined and same.interval is None and same.n_undefined_resamples == 50
    # Many profiles (the Poissonised sampler) with missing values and units rated once: still exact on the
    # original sample, and reproducible.
    data = _data(seed=9, units=4000, raters=6, values=12)
    data[:, ::7] = np.where(np.arange(6)[:, None] == 0, data[:, ::7], np.nan)  # every 7th unit rated once at most
    ratings = ratings_from_matrix(data)
    first = krippendorff_alpha(ratings, level, n_resamples=100, seed=4)
    assert first.n_pairable_units < ratings.n_units
    assert first.resamples is not None and np.array_equal(
        first.resamples, krippendorff_alpha(ratings, level, n_resamples=100, seed=4).resamples
    )
    assert first.interval is not None and first.interval[0] < first.alpha < first.interval[1]


def test_sparse_ordinal_features_give_the_resamples_of_dense_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    ratings = ratings_from_matrix(_data(seed=6, units=2000, raters=5, values=9))
    dense = krippendorff_alpha(ratings, "ordinal", n_resamples=200, seed=8)
    monkeypatch.setattr(alpha_module, "_DENSE_FEATURE_CELLS", 0)
    sparse = krippendorff_alpha(ratings, "ordinal", n_resamples=200, seed=8)
    assert dense.resamples is not None and sparse.resamples is not None
    np.testing.assert_allclose(sparse.resamples, dense.resamples, rtol=0, atol=1e-12)
