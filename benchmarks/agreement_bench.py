"""Benchmark: Krippendorff's alpha with a bootstrap interval on ~1,000,000 ratings (300,000 units × 3–5 raters).

    PYTHONPATH=.:platform python benchmarks/agreement_bench.py [--units 300000] [--resamples 1000] [--repeats 5]

Prints the median wall time of: encoding long-form ratings (string labels), Sentio's nominal (and interval)
alpha with a ``--resamples`` bootstrap interval, and the ``krippendorff`` package's alpha alone (no interval)
on the same raters × units matrix. Target: alpha with interval under 10 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from annotation.agreement import krippendorff_alpha, ratings_from_long, ratings_from_matrix


def make_matrix(units: int, max_raters: int, categories: int, seed: int) -> np.ndarray:
    """Raters × units matrix: each unit gets 3..max_raters ratings that agree with a hidden label 60% of the time."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, categories, size=units)
    noise = rng.integers(0, categories, size=(max_raters, units))
    data = np.where(rng.random((max_raters, units)) < 0.6, truth, noise).astype(np.float64)
    raters_per_unit = rng.integers(3, max_raters + 1, size=units)
    rank = np.argsort(rng.random((max_raters, units)), axis=0).argsort(axis=0)
    data[rank >= raters_per_unit] = np.nan  # which raters rated a unit varies
    data[rng.random(data.shape) < 0.02] = np.nan  # a few more missing values
    return data


def timed(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=300_000)
    parser.add_argument("--raters", type=int, default=5, help="most raters per unit (each unit gets 3..this many)")
    parser.add_argument("--categories", type=int, default=6)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-package", action="store_true", help="do not time the krippendorff package")
    args = parser.parse_args()

    matrix = make_matrix(args.units, args.raters, args.categories, args.seed)
    rater_pos, unit_pos = np.nonzero(~np.isnan(matrix))
    labels = np.array([f"label_{i}" for i in range(args.categories)], dtype=object)
    long_values = labels[matrix[rater_pos, unit_pos].astype(int)]
    print(f"{args.units} units, {rater_pos.size} ratings, {args.categories} categories, {args.resamples} resamples")

    encode_time, encoded = timed(lambda: ratings_from_long(unit_pos, rater_pos, long_values), args.repeats)
    print(f"encode long form (string labels)            median {encode_time:7.3f} s")
    ratings = ratings_from_matrix(matrix)
    for level in ("nominal", "interval"):
        seconds, result = timed(
            lambda level=level: krippendorff_alpha(ratings, level, n_resamples=args.resamples, seed=args.seed),
            args.repeats,
        )
        assert result is not None
        print(
            f"sentio {level:8s} alpha + {args.resamples} resamples      median {seconds:7.3f} s   "
            f"alpha={result.alpha:.5f} 95% CI={tuple(round(x, 5) for x in result.interval)}"  # type: ignore[attr-defined]
        )
        point_time, _ = timed(lambda level=level: krippendorff_alpha(ratings, level), args.repeats)
        print(f"sentio {level:8s} alpha alone                 median {point_time:7.3f} s")
        if not args.skip_package:
            import krippendorff

            package_time, package_alpha = timed(
                lambda level=level: krippendorff.alpha(reliability_data=matrix, level_of_measurement=level),
                max(1, args.repeats // 2),
            )
            print(
                f"krippendorff package {level:8s} alpha alone   median {package_time:7.3f} s   alpha={package_alpha:.5f}"
            )
    assert encoded is not None


if __name__ == "__main__":
    main()
