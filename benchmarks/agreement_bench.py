"""Benchmark: Krippendorff's alpha against the ``krippendorff`` package, and the full quality report.

    PYTHONPATH=.:platform python benchmarks/agreement_bench.py                 # everything, as in the README
    PYTHONPATH=.:platform python benchmarks/agreement_bench.py --only matrix --units 1000,30000
    PYTHONPATH=.:platform python benchmarks/agreement_bench.py --only report --report-annotations 300000

Sections (``--only``, comma separated):

- ``matrix``: the same raters × units matrices (``--units`` 1k, 30k, 300k; ``--values`` 2, 4, 24 distinct values;
  ``--levels`` nominal, ordinal, interval) given to ``krippendorff.alpha`` and to Sentio. Sentio's time includes
  encoding the matrix (``ratings_from_matrix``), which a user holding a matrix pays; "pre-encoded" leaves it out.
- ``labels``: per-label alpha of multi-label emotion data (``--labels`` labels, 3-5 raters per unit): binary
  present/absent (nominal) and intensity 0-3 (ordinal). Sentio encodes the long ratings once and computes every
  label from them (``alpha_per_label``); the package gets one raters × units matrix per label. "incl. encoding"
  adds, on each side, turning the same long ratings into its input (Sentio: ``ratings_from_long`` once; the
  package: one matrix per label).
- ``bootstrap``: ``--resamples`` bootstrap resamples (Sentio's interval) against what the package would need for
  the same interval: ``krippendorff.alpha`` on that many resampled matrices, timed on a few and scaled.
- ``report``: ``agreement_report_build`` (everything the stored report holds: every question, per label, per
  language, per annotator, pairwise, per week, the aggregated answers, ``--resamples`` resamples everywhere) on
  ``--report-annotations`` synthetic annotations (three questions each: single choice, multi-label with
  intensities, numeric; and a free-text one that is skipped) from a pool of ``--report-raters`` annotators.

Every time is the median of ``--repeats`` runs; Sentio and the package alternate inside each repeat, so both see
the same load. Wall time is what the targets are about; the process CPU time is printed beside it because the
development machine is shared (other jobs inflate wall time, not CPU time). Ratios are ours / package.
Numbers are checked: Sentio's alpha must equal the package's to 1e-9, or the run stops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]

from annotation.agreement import (  # noqa: E402
    Ratings,
    alpha_per_label,
    krippendorff_alpha,
    ratings_from_long,
    ratings_from_matrix,
)

EMOTIONS = ["joy", "sadness", "anger", "fear", "surprise", "disgust", "neutral", "trust", "anticipation", "love"]


class Timing:
    """Median wall and CPU seconds of a callable over repeats."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        result = function(*args, **kwargs)
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)
        return result

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def seconds(value: float) -> str:
    return f"{value * 1e3:9.2f} ms" if value < 1 else f"{value:9.3f} s "


def make_matrix(units: int, max_raters: int, categories: int, seed: int) -> np.ndarray:
    """Raters × units matrix: each unit gets 3..max_raters ratings that agree with a hidden label 60% of the time."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, categories, size=units)
    noise = rng.integers(0, categories, size=(max_raters, units))
    data = np.where(rng.random((max_raters, units)) < 0.6, truth, noise).astype(np.float64)
    raters_per_unit = rng.integers(3, max_raters + 1, size=units)
    rank = np.argsort(rng.random((max_raters, units)), axis=0).argsort(axis=0)
    data[rank >= raters_per_unit] = np.nan  # which raters rated a unit varies
    data[rng.random(data.shape) < 0.02] = np.nan  # a few more missing values (some units end up unpairable)
    return data


def check(ours: float, theirs: float, what: str) -> None:
    if not (np.isnan(ours) and np.isnan(theirs)) and abs(ours - theirs) > 1e-9:
        raise SystemExit(f"{what}: Sentio {ours!r} differs from the krippendorff package {theirs!r}")


def header(title: str, columns: str) -> None:
    print(f"\n## {title}\n")
    print(columns)


def encode_and_alpha(matrix: np.ndarray, level: str, **kwargs: Any) -> Any:
    """What a user holding a matrix runs: encode it, then alpha."""
    return krippendorff_alpha(ratings_from_matrix(matrix), level, **kwargs)


def package_per_label(matrices: list[np.ndarray] | tuple[np.ndarray, ...], level: str) -> list[float]:
    import krippendorff

    return [float(krippendorff.alpha(reliability_data=m, level_of_measurement=level)) for m in matrices]


# --- matrices ---------------------------------------------------------------------------------------------------------


def bench_matrix(args: argparse.Namespace) -> None:
    import krippendorff

    header(
        "Alpha on the same matrix (wall median; CPU median in brackets)",
        f"{'units':>7} {'values':>6} {'level':8} | {'package':>12} | {'Sentio incl. encoding':>21} | "
        f"{'pre-encoded':>12} | ratio  (CPU ratio) | pre-enc. ratio",
    )
    for units in args.units:
        for values in args.values:
            matrix = make_matrix(units, args.raters, values, args.seed)
            for level in args.levels:
                package, ours, pre = Timing(), Timing(), Timing()
                ratings = ratings_from_matrix(matrix)
                for _ in range(args.repeats):
                    theirs = package.run(krippendorff.alpha, reliability_data=matrix, level_of_measurement=level)
                    result = ours.run(encode_and_alpha, matrix, level)
                    pre.run(krippendorff_alpha, ratings, level)
                check(result.alpha, float(theirs), f"{units} units, {values} values, {level}")
                print(
                    f"{units:7d} {values:6d} {level:8} | {seconds(package.median)} | {seconds(ours.median):>21} | "
                    f"{seconds(pre.median)} | {ours.median / package.median:5.2f} ({ours.median_cpu / package.median_cpu:5.2f})"
                    f"    | {pre.median / package.median:5.2f}",
                    flush=True,
                )


def resampled_matrices(matrix: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """Matrices of pairable units drawn with replacement, as a bootstrap with the package would give it."""
    pairable = np.flatnonzero((~np.isnan(matrix)).sum(axis=0) >= 2)
    rng = np.random.default_rng(seed)
    return [matrix[:, rng.choice(pairable, size=pairable.size)] for _ in range(count)]


def bench_bootstrap(args: argparse.Namespace) -> None:
    import krippendorff

    header(
        f"Alpha with a {args.resamples}-resample interval, against the package on that many resampled matrices "
        f"(timed on {args.package_resamples}, scaled)",
        f"{'units':>7} {'values':>6} {'level':8} | {'package x ' + str(args.resamples):>16} | "
        f"{'Sentio incl. encoding':>21} | ratio  (CPU ratio) | vs one package alpha",
    )
    for units in args.units:
        for values in args.values:
            matrix = make_matrix(units, args.raters, values, args.seed)
            samples = resampled_matrices(matrix, args.package_resamples, args.seed)
            for level in args.levels:
                package, once, ours = Timing(), Timing(), Timing()
                once.run(krippendorff.alpha, reliability_data=matrix, level_of_measurement=level)
                for sample in samples:  # small inputs: several runs each, as single runs are at the mercy of the load
                    for _ in range(args.repeats if units < 100_000 else 1):
                        package.run(krippendorff.alpha, reliability_data=sample, level_of_measurement=level)
                for _ in range(max(1, args.repeats // 2)):
                    ours.run(encode_and_alpha, matrix, level, n_resamples=args.resamples)
                scaled, scaled_cpu = package.median * args.resamples, package.median_cpu * args.resamples
                print(
                    f"{units:7d} {values:6d} {level:8} | {seconds(scaled):>16} | {seconds(ours.median):>21} | "
                    f"{ours.median / scaled:5.3f} ({ours.median_cpu / scaled_cpu:5.3f}) | {ours.median / once.median:6.2f}",
                    flush=True,
                )


# --- per label --------------------------------------------------------------------------------------------------------


def make_label_sets(units: int, labels: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Long multi-label ratings: (unit, rater, chosen (ratings × labels, bool), intensity (ratings × labels, 0-3)).

    Each unit has 3-5 raters from a pool of 40; a unit's true emotions (one, sometimes two) are chosen by a rater
    with probability 0.7, other labels with probability 0.05; intensities are near the unit's own level.
    """
    rng = np.random.default_rng(seed)
    per_unit = rng.integers(3, 6, size=units)
    unit = np.repeat(np.arange(units), per_unit)
    position = np.arange(unit.size) - np.repeat(np.cumsum(per_unit) - per_unit, per_unit)
    rater = (rng.integers(0, 40, size=units)[unit] + 7 * position) % 40
    truth = np.zeros((units, labels), dtype=bool)
    truth[np.arange(units), rng.integers(0, labels, size=units)] = True
    second = rng.random(units) < 0.3
    truth[np.flatnonzero(second), rng.integers(0, labels, size=int(second.sum()))] = True
    chosen = np.where(truth[unit], rng.random((unit.size, labels)) < 0.7, rng.random((unit.size, labels)) < 0.05)
    level = np.clip(rng.integers(1, 4, size=(units, labels))[unit] + rng.integers(-1, 2, size=(unit.size, labels)), 1, 3)
    return unit, rater, chosen, np.where(chosen, level, 0)


def long_to_ratings(unit: np.ndarray, rater: np.ndarray, intensity: np.ndarray) -> tuple[Ratings, np.ndarray]:
    """Encode the long ratings once: each distinct answer (its row of intensities) is one value."""
    width = intensity.shape[1]
    answer = (intensity.astype(np.int64) * (4 ** np.arange(width))).sum(axis=1)  # the row as one number
    ratings = ratings_from_long(unit, rater, answer)
    digits = ratings.values.astype(np.int64)[:, None] // (4 ** np.arange(width)) % 4
    return ratings, digits.astype(np.float64)


def label_matrices(unit: np.ndarray, rater: np.ndarray, intensity: np.ndarray, binary: bool) -> list[np.ndarray]:
    """The package's input: one raters × units matrix per label (NaN where a rater did not rate a unit)."""
    matrices = []
    for column in range(intensity.shape[1]):
        matrix = np.full((int(rater.max()) + 1, int(unit.max()) + 1), np.nan)
        matrix[rater, unit] = (intensity[:, column] > 0) if binary else intensity[:, column]
        matrices.append(matrix)
    return matrices


def bench_labels(args: argparse.Namespace) -> None:

    labels = EMOTIONS[: args.labels]
    header(
        f"Per-label alpha of multi-label data, {len(labels)} labels: Sentio from ratings encoded once, the package on "
        "one matrix per label",
        f"{'units':>7} {'kind':19} | {'package':>12} | {'Sentio':>12} | ratio (CPU) | incl. encoding: {'package':>12} "
        f"{'Sentio':>12} ratio | {args.resamples} resamples: {'package':>12} {'Sentio':>12} ratio (vs package once)",
    )
    for units in args.units:
        unit, rater, chosen, intensity = make_label_sets(units, len(labels), args.seed)
        for kind, binary, level in (("binary (nominal)", True, "nominal"), ("intensity (ordinal)", False, "ordinal")):
            package, ours, encode_theirs, encode_ours, package_boot, ours_boot = (Timing() for _ in range(6))
            matrices = label_matrices(unit, rater, intensity, binary)
            encoded, levels = long_to_ratings(unit, rater, intensity)
            levels = (levels > 0).astype(np.float64) if binary else levels
            for _ in range(args.repeats):
                encode_theirs.run(label_matrices, unit, rater, intensity, binary)
                theirs = package.run(package_per_label, matrices, level)
                encode_ours.run(long_to_ratings, unit, rater, intensity)
                result = ours.run(alpha_per_label, encoded, levels, labels, level)
            for label, value in zip(labels, theirs):
                check(result[label].alpha, float(value), f"{units} units, {kind}, {label}")
            for sample in zip(*(resampled_matrices(m, args.package_resamples, args.seed) for m in matrices)):
                for _ in range(args.repeats if units < 100_000 else 1):
                    package_boot.run(package_per_label, sample, level)
            for _ in range(max(1, args.repeats // 2)):
                ours_boot.run(alpha_per_label, encoded, levels, labels, level, n_resamples=args.resamples)
            with_theirs = encode_theirs.median + package.median
            with_ours = encode_ours.median + ours.median
            scaled = package_boot.median * args.resamples
            print(
                f"{units:7d} {kind:19} | {seconds(package.median)} | {seconds(ours.median)} | "
                f"{ours.median / package.median:4.2f} ({ours.median_cpu / package.median_cpu:4.2f}) | "
                f"{'':16}{seconds(with_theirs)} {seconds(with_ours)} {with_ours / with_theirs:4.2f} | "
                f"{'':15}{seconds(scaled)} {seconds(ours_boot.median)} {ours_boot.median / scaled:5.3f} "
                f"({ours_boot.median / package.median:4.2f}; CPU {ours_boot.median_cpu / package.median_cpu:4.2f})",
                flush=True,
            )


# --- the report -------------------------------------------------------------------------------------------------------


def make_columns(n_annotations: int, raters: int, seed: int) -> tuple[Any, list[Any]]:
    """Synthetic annotations as the report loads them, and their questions.

    Units get 3-5 annotators each from a pool of ``raters``, three languages, timestamps over several weeks; every
    annotation answers a single-choice emotion (7 labels, 65% agree with the unit's truth), a multi-label emotion
    set with intensities 1-3 (the truth, sometimes a second label), a valence 1-5 in steps of 0.5 near the truth,
    and a free-text rationale (skipped by the report). One model version annotates every tenth unit.
    """
    from annotation.quality.columns import AnnotationColumns
    from annotation.schema import Question

    labels = EMOTIONS[:7]
    rng = np.random.default_rng(seed)
    per_unit = rng.integers(3, 6, size=n_annotations // 4 + 1)
    per_unit = per_unit[np.cumsum(per_unit) <= n_annotations]
    unit = np.repeat(np.arange(per_unit.size), per_unit)
    size = unit.size
    position = np.arange(size) - np.repeat(np.cumsum(per_unit) - per_unit, per_unit)
    rater_id = (rng.integers(0, raters, size=per_unit.size)[unit] + 7 * position) % raters
    truth = rng.integers(0, len(labels), size=per_unit.size)
    emotion = np.where(rng.random(size) < 0.65, truth[unit], rng.integers(0, len(labels), size=size))
    other = (emotion + 1 + rng.integers(0, 2, size=size)) % len(labels)
    two = rng.random(size) < 0.3
    level, other_level = rng.integers(1, 4, size=size), rng.integers(1, 4, size=size)
    valence = np.clip(np.round((1 + truth[unit] % 5 + rng.normal(0, 0.7, size=size)) * 2) / 2, 1, 5)

    def objects(values: list[Any]) -> np.ndarray:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array

    single = objects([labels[e] for e in emotion.tolist()])
    multi = objects([
        {labels[a]: int(i), labels[b]: int(j)} if t else {labels[a]: int(i)}
        for a, b, i, j, t in zip(emotion.tolist(), other.tolist(), level.tolist(), other_level.tolist(), two.tolist())
    ])
    rater = objects([f"user:{r}" for r in rater_id.tolist()])
    human = np.ones(size, dtype=bool)
    model = np.flatnonzero((position == 0) & (unit % 10 == 0))  # a model's answers on every tenth unit
    unit = np.concatenate([unit, unit[model]])
    rater = np.concatenate([rater, objects(["distilroberta@1"] * model.size)])
    human = np.concatenate([human, np.zeros(model.size, dtype=bool)])
    single, multi = np.concatenate([single, single[model]]), np.concatenate([multi, multi[model]])
    valence = np.concatenate([valence, valence[model]])
    created = 1_700_000_000 + unit * 40 + rng.integers(0, 3 * 86_400, size=unit.size)
    columns = AnnotationColumns(
        annotation_id=np.arange(unit.size, dtype=np.int64), unit=unit.astype(np.int64), rater=rater,
        is_human=human, perspective=objects([""] * unit.size),
        language=np.array(["en", "hi", "ur"], dtype=object)[unit % 3],
        answers={"emotion": single, "emotions": multi, "valence": objects(valence.tolist()),
                 "rationale": objects(["because"] * unit.size)},
        created_at=created.astype(np.int64),
    )
    questions = [
        Question("emotion", "single_choice", labels=tuple(labels)),
        Question("emotions", "multi_label", labels=tuple(labels), intensity=True),
        Question("valence", "numeric", minimum=1, maximum=5, step=0.5),
        Question("rationale", "text"),
    ]
    return columns, questions


def bench_report(args: argparse.Namespace) -> None:
    from annotation.quality.report import ReportParams, agreement_report_build

    header(
        f"Full quality report (agreement_report_build), {args.resamples} resamples, {args.report_raters} annotators",
        f"{'annotations':>11} {'units':>7} | {'wall median':>12} | {'CPU median':>12} | runs (wall)",
    )
    for size in args.report_annotations:
        columns, questions = make_columns(size, args.report_raters, args.seed)
        params = ReportParams(n_resamples=args.resamples, seed=args.seed)
        timing = Timing()
        for _ in range(args.repeats):
            report, _ = timing.run(agreement_report_build, columns, questions, params)
        block = report["questions"][0]["perspectives"][0]
        assert block["alpha"]["interval"] is not None and len(block["by_label"]) == 7
        units = report["totals"]["units"]
        runs = ", ".join(f"{w:.2f}" for w in timing.wall)
        print(f"{columns.size:11d} {units:7d} | {seconds(timing.median)} | {seconds(timing.median_cpu)} | {runs}", flush=True)


SECTIONS = {"matrix": bench_matrix, "labels": bench_labels, "bootstrap": bench_bootstrap, "report": bench_report}


def main() -> None:
    def numbers(text: str) -> list[int]:
        return [int(x) for x in text.split(",")]

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run: " + ", ".join(SECTIONS))
    parser.add_argument("--units", type=numbers, default=[1_000, 30_000, 300_000])
    parser.add_argument("--values", type=numbers, default=[2, 4, 24])
    parser.add_argument("--levels", default="nominal,ordinal,interval")
    parser.add_argument("--raters", type=int, default=5, help="most raters per unit (each unit gets 3..this many)")
    parser.add_argument("--labels", type=int, default=7, help="labels of the multi-label data")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--package-resamples", type=int, default=3,
                        help="resampled matrices the package is timed on (its bootstrap time is scaled from them)")
    parser.add_argument("--report-annotations", type=numbers, default=[30_000, 300_000])
    parser.add_argument("--report-raters", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.levels = args.levels.split(",")
    print(f"repeats {args.repeats}, numpy {np.__version__}")
    for name in args.only.split(","):
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
