from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage

from annotation.export.label_studio import label_studio_validate
from annotation.export.options import ExportOptionsError
from annotation.export.services import export_job_create, export_run
from jobs.dispatch import Task
from jobs.models import Job, JobKind, JobStatus
from tests.export.conftest import build_meld_like

pytestmark = pytest.mark.django_db(transaction=False)

ALL_FORMATS = ["parquet", "csv", "jsonl", "hf", "label_studio"]


def run_export(meld: Any, lead: Any, django_capture_on_commit_callbacks: Any, **options: Any) -> Job:
    with mock.patch("jobs.dispatch.task_send") as delay, django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(created_by=lead, project=meld.project, options=options)
    delay.assert_called_once_with(Task.EXPORT, job.pk)
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def stored_path(job: Job, name: str) -> Path:
    entry = next(f for f in job.result["files"] if f["name"] == name)
    return Path(default_storage.path(entry["storage_name"]))


def exported_frame(job: Job) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(stored_path(job, f"parquet/{s}.parquet")) for s in ("train", "dev", "test")])


def test_no_conversation_or_speaker_leaks_across_splits(meld, lead, django_capture_on_commit_callbacks):
    job = run_export(meld, lead, django_capture_on_commit_callbacks, seed=3)
    frame = exported_frame(job)
    assert len(set(frame["split"])) >= 2
    assert frame.groupby("conversation")["split"].nunique().max() == 1
    assert frame.groupby("speaker")["split"].nunique().max() == 1
    # Speakers do recur across conversations in the fixture, so this is a real constraint.
    assert frame.groupby("speaker")["conversation"].nunique().max() > 1


def test_conversation_grouping_keeps_conversations_whole_only(meld, lead, django_capture_on_commit_callbacks):
    job = run_export(meld, lead, django_capture_on_commit_callbacks, grouping="conversation", seed=5,
                     splits={"train": 0.6, "dev": 0.2, "test": 0.2})
    frame = exported_frame(job)
    assert frame.groupby("conversation")["split"].nunique().max() == 1
    assert job.result["splits"]["dev"]["groups"] > 1


def test_split_is_deterministic_for_a_seed(meld, lead, django_capture_on_commit_callbacks):
    first = exported_frame(run_export(meld, lead, django_capture_on_commit_callbacks, seed=11, grouping="conversation"))
    again = exported_frame(run_export(meld, lead, django_capture_on_commit_callbacks, seed=11, grouping="conversation"))
    other = exported_frame(run_export(meld, lead, django_capture_on_commit_callbacks, seed=12, grouping="conversation"))
    as_map = lambda f: dict(zip(f["utterance_id"], f["split"]))  # noqa: E731
    assert as_map(first) == as_map(again)
    assert as_map(first) != as_map(other)


def test_provenance_rule_keeps_synthetic_labels_out_of_dev_and_test(meld, lead, django_capture_on_commit_callbacks):
    job = run_export(meld, lead, django_capture_on_commit_callbacks, grouping="conversation", seed=1)
    frame = exported_frame(job)
    assert set(frame.loc[frame["split"] != "train", "label_origin"]) == {"human"}
    assert set(frame.loc[frame["utterance_id"].isin(meld.llm_only_utterances), "split"]) == {"train"}
    assert (frame["label_origin"] == "llm").sum() == len(meld.llm_only_utterances)
    # Dev and test got their share of the human-labelled utterances.
    assert (frame["split"] == "dev").sum() > 0 and (frame["split"] == "test").sum() > 0


def test_human_only_rule_drops_synthetic_labels_everywhere(meld, lead, django_capture_on_commit_callbacks):
    job = run_export(meld, lead, django_capture_on_commit_callbacks,
                     provenance={"train": ["human"], "dev": ["human"], "test": ["human"]})
    frame = exported_frame(job)
    assert set(frame["label_origin"]) == {"human"}
    assert not set(frame["utterance_id"]) & meld.llm_only_utterances


def test_gold_is_the_stored_aggregation_of_human_annotations(meld, lead, django_capture_on_commit_callbacks):
    """The export and the agreement report's stored aggregation are one rule: every exported human label equals the
    AggregatedLabel of its item, and a tie left open (the default policy) is exported as no label, never as the
    label listed first."""
    from annotation.models import AggregatedLabel, Annotation
    from annotation.quality.selectors import quality_source_for_project
    from annotation.quality.services import agreement_report_compute

    agreement_report_compute(source=quality_source_for_project(meld.project), n_resamples=0)
    job = run_export(meld, lead, django_capture_on_commit_callbacks, heldout_min_annotations=1)
    frame = exported_frame(job).set_index("utterance_id")
    stored = {(uid, key): (value, tied) for uid, key, value, tied in AggregatedLabel.objects.filter(
        project=meld.project).values_list("utterance_id", "question_key", "value", "tied")}
    human = frame[frame["label_origin"] == "human"]
    assert len(human) > 20 and human.index.isin(meld.human_only_utterances).all()
    ties = 0
    for uid, row in human.iterrows():
        value, tied = stored[(uid, "emotion")]
        assert (None if pd.isna(row["emotion"]) else row["emotion"]) == value
        assert list(row["emotions"]) == stored[(uid, "emotions")][0]
        ties += tied
        n = Annotation.objects.filter(utterance_id=uid, origin="human").count()
        assert row["n_annotations"] == row["n_human_annotations"] == n
        assert row["label_source"] == ("single_annotation" if n == 1 else "aggregated")
    assert ties > 0  # the fixture has real ties, and they stayed open
    assert job.counts["open_ties"] >= ties


def test_every_format_reads_back(meld, lead, django_capture_on_commit_callbacks):
    from datasets import load_from_disk

    job = run_export(meld, lead, django_capture_on_commit_callbacks, formats=ALL_FORMATS, seed=2, grouping="conversation")
    assert all(job.result["splits"][s]["utterances"] for s in ("train", "dev", "test"))
    parquet = {s: pq.read_table(stored_path(job, f"parquet/{s}.parquet")).to_pandas() for s in ("train", "dev", "test")}
    for split, frame in parquet.items():
        csv_frame = pd.read_csv(stored_path(job, f"csv/{split}.csv"), keep_default_na=False)
        jsonl_frame = pd.read_json(stored_path(job, f"jsonl/{split}.jsonl"), lines=True)
        assert list(csv_frame["utterance_id"]) == list(frame["utterance_id"]) == list(jsonl_frame["utterance_id"])
        # A tie left open is an empty cell in CSV and null in Parquet and JSONL.
        plain = lambda column: [None if v is None or v == "" or v != v else v for v in column]  # noqa: E731
        assert plain(csv_frame["emotion"]) == plain(frame["emotion"]) == plain(jsonl_frame["emotion"])
        assert list(csv_frame["label_source"]) == list(frame["label_source"]) == list(jsonl_frame["label_source"])
        assert [[] if v == "[]" else v.split(";") if v else None for v in csv_frame["emotions"]] == [
            None if v is None else list(v) for v in frame["emotions"]]
        row_groups = pq.ParquetFile(stored_path(job, f"parquet/{split}.parquet")).metadata.num_row_groups
        assert row_groups >= 1
    hf_dir = stored_path(job, "hf/dataset_dict.json").parent
    dataset = load_from_disk(str(hf_dir))
    assert set(dataset.keys()) == {"train", "dev", "test"}
    assert dataset["train"]["utterance_id"] == list(parquet["train"]["utterance_id"])
    config = stored_path(job, "label_studio/label_config.xml").read_text()
    tasks = json.loads(stored_path(job, "label_studio/dev.json").read_text())
    assert len(tasks) == len(parquet["dev"])
    assert label_studio_validate(config, tasks) == []
    train_tasks = json.loads(stored_path(job, "label_studio/train.json").read_text())
    assert label_studio_validate(config, train_tasks) == []
    assert any(t["predictions"] for t in train_tasks) and all(t["annotations"] for t in tasks)
    assert all(not t["predictions"] for t in tasks)  # dev holds human-labelled utterances only
    broken = [{**tasks[0], "annotations": [{"result": [{"from_name": "emotion", "to_name": "text", "type": "choices",
                                                         "value": {"choices": ["bored"]}}]}]}]
    assert label_studio_validate(config, broken)


def test_csv_neutralises_formulas(db, lead, export_media, django_capture_on_commit_callbacks):
    meld = build_meld_like(lead=lead, shows=3, conversations_per_show=2, formula_texts=True)
    job = run_export(meld, lead, django_capture_on_commit_callbacks, formats=["csv", "parquet"],
                     splits={"train": 1, "dev": 0, "test": 0})
    with stored_path(job, "csv/train.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    formula_rows = [r for r in rows if "HYPERLINK" in r["text"]]
    assert formula_rows and all(r["text"].startswith("'=HYPERLINK") for r in formula_rows)
    # Parquet keeps the text as it is; only the spreadsheet-facing format is guarded.
    parquet_texts = pq.read_table(stored_path(job, "parquet/train.parquet")).column("text").to_pylist()
    assert any(t.startswith("=HYPERLINK") for t in parquet_texts)


def test_data_card_states_sources_recipe_distribution_and_agreement(meld, lead, django_capture_on_commit_callbacks):
    job = run_export(meld, lead, django_capture_on_commit_callbacks, seed=9, bootstrap_resamples=200,
                     heldout_min_annotations=1)
    card = Path(default_storage.path(job.result["card"]["storage_name"])).read_text()
    assert "| train | " in card and "What each gold label rests on" in card
    assert "emotion: majority, ties: abstain" in card and "more than 0.5 of its raters chose it" in card
    assert "GPL-3.0" in card and "https://example.org/meld-like" in card
    assert "- seed: 9" in card and "train 0.8, dev 0.1, test 0.1" in card
    assert "grouping: conversation+speaker" in card
    assert "train from human, llm, model labels; dev from human labels; test from human labels" in card
    assert "### emotion" in card and "| dev | " in card and "| train | hi |" in card
    assert "Human annotators: 6." in card and "gemma-cot" in card
    agreement = job.result["agreement"][0]
    assert agreement["question"] == "emotion" and agreement["n_resamples"] == 200
    low, high = agreement["interval"]
    assert low <= agreement["alpha"] <= high
    assert f"{agreement['alpha']:.3f}" in card and "Krippendorff's alpha (nominal)" in card


def test_held_out_splits_need_complete_items_unless_the_lead_says_so(meld, lead, django_capture_on_commit_callbacks):
    # The project's overlap is 3: by default dev and test hold only items with 3 human annotations.
    frame = exported_frame(run_export(meld, lead, django_capture_on_commit_callbacks, seed=4, grouping="conversation"))
    held_out = frame[frame["split"] != "train"]
    assert len(held_out) > 0 and (held_out["n_human_annotations"] >= 3).all()
    assert (frame.loc[frame["split"] == "train", "n_human_annotations"] < 3).any()  # the rest still trains
    relaxed = exported_frame(run_export(meld, lead, django_capture_on_commit_callbacks, seed=4, grouping="conversation",
                                        heldout_min_annotations=1))
    assert (relaxed.loc[relaxed["split"] != "train", "n_human_annotations"] < 3).any()
    strict = run_export(meld, lead, django_capture_on_commit_callbacks, seed=4, complete_only=True,
                        provenance={"train": ["human"], "dev": ["human"], "test": ["human"]})
    strict_frame = exported_frame(strict)
    assert (strict_frame["n_human_annotations"] >= 3).all() and strict.counts["below_min_annotations"] > 0


def test_job_progress_result_and_storage_names(meld, lead, django_capture_on_commit_callbacks):
    job = run_export(meld, lead, django_capture_on_commit_callbacks, formats=["parquet", "csv"])
    assert job.kind == JobKind.EXPORT and job.project_id == meld.project.pk
    assert job.progress_total and job.progress_done == job.progress_total
    assert job.counts["utterances_exported"] == sum(job.result["splits"][s]["utterances"] for s in ("train", "dev", "test"))
    for entry in job.result["files"]:
        assert entry["storage_name"].startswith(f"exports/{job.pk}/")
        assert default_storage.size(entry["storage_name"]) == entry["size"] > 0
    # A redelivered message for a finished job does nothing.
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_bad_options_fail_before_any_job(meld, lead):
    with pytest.raises(ExportOptionsError) as caught:
        export_job_create(created_by=lead, project=meld.project, options={
            "splits": {"train": 0.8, "dev": 0.2}, "grouping": "family", "stratify_on": "rationale",
            "provenance": {"dev": ["crowd"]}, "formats": ["xlsx"], "name": "../../etc/passwd",
        })
    assert set(caught.value.errors) == {"splits", "grouping", "stratify_on", "provenance.dev", "formats", "name"}
    assert not Job.objects.filter(kind=JobKind.EXPORT).exists()


def test_imported_corpus_labels_export_without_a_project(db, lead, export_media, django_capture_on_commit_callbacks):
    from annotation.models import Annotation

    meld = build_meld_like(lead=lead, shows=4, conversations_per_show=3)
    Annotation.objects.filter(project=meld.project).update(project=None)
    with mock.patch("jobs.dispatch.task_send"), django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(created_by=lead, corpus=meld.corpus, schema_version=meld.schema_version,
                                options={"formats": ["jsonl"]})
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["utterances_exported"] > 0 and job.corpus_id == meld.corpus.pk


def test_export_with_nothing_to_export_fails_with_a_reason(db, lead, export_media, django_capture_on_commit_callbacks):
    from annotation.services import project_create

    meld = build_meld_like(lead=lead, shows=1, conversations_per_show=1)
    empty = project_create(name="Not started", corpus=meld.corpus, schema_version=meld.schema_version, created_by=lead)
    with mock.patch("jobs.dispatch.task_send"), django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(created_by=lead, project=empty, options={})
    export_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "has no annotations" in job.message


def test_streaming_keeps_memory_flat(db, lead, export_media, django_capture_on_commit_callbacks, monkeypatch):
    """Texts total ~8 MB; with small chunks and row groups the export's Python heap peak stays far below that."""
    from annotation.export import formats, selectors
    from corpora.models import Utterance

    meld = build_meld_like(lead=lead, shows=8, conversations_per_show=40)
    for utterance in Utterance.objects.filter(corpus=meld.corpus).only("id", "text"):
        utterance.text = f"{utterance.pk} " + "x" * 4000
        utterance.save(update_fields=["text"])
    total_text = sum(len(t) for t in Utterance.objects.filter(corpus=meld.corpus).values_list("text", flat=True))
    assert total_text > 6_000_000
    monkeypatch.setattr(selectors, "CHUNK_SIZE", 100)
    monkeypatch.setattr(formats, "ROW_GROUP_SIZE", 128)
    monkeypatch.setattr(formats, "READ_BATCH_SIZE", 128)
    with mock.patch("jobs.dispatch.task_send"), django_capture_on_commit_callbacks(execute=True):
        job = export_job_create(created_by=lead, project=meld.project,
                                options={"formats": ["parquet", "csv", "jsonl"], "bootstrap_resamples": 0})
    tracemalloc.start()
    try:
        export_run(job_id=job.pk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["utterances_exported"] > 1000
    assert peak < total_text / 3, f"peak {peak} bytes for {total_text} bytes of text"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_round_trip_through_the_importer(meld, lead, django_capture_on_commit_callbacks, fmt):
    from django.core.files import File

    from annotation.models import Annotation
    from annotation.quality.services import quality_policy_update
    from corpora.importing.services import import_job_create, import_run
    from corpora.models import Corpus, Utterance

    # Ties settled (and marked tie_broken): the schema's emotion question is required, so every row needs one.
    quality_policy_update(project=meld.project, tie_policy="prefer_order")
    job = run_export(meld, lead, django_capture_on_commit_callbacks, formats=sorted({"parquet", fmt}), seed=4,
                     grouping="conversation", provenance={"train": ["human"], "dev": ["human"], "test": ["human"]},
                     heldout_min_annotations=1)
    exported = exported_frame(job).set_index("external_id")
    target = Corpus.objects.create(name="Round trip", slug=f"round-trip-{fmt}", license="GPL-3.0")
    mapping = {
        "text": "text", "language": "language", "speaker": "speaker", "conversation": "conversation",
        "turn_index": "turn_index", "external_id": "external_id", "extra_columns": "ignore", "rater": "gold",
        "labels": {"emotion": "emotion", "emotions": "emotions", "valence": "valence"},
    }
    splits = [s for s in ("train", "dev", "test") if job.result["splits"][s]["utterances"]]
    assert len(splits) == 3
    handles = [stored_path(job, f"{fmt}/{s}.{fmt}").open("rb") for s in splits]
    try:
        files = [File(h, name=f"{s}.{fmt}") for h, s in zip(handles, splits)]
        imported = import_job_create(corpus=target, files=files, created_by=lead, enqueue=False,
                                     options={"mapping": mapping, "schema": meld.schema_version.schema.slug})
    finally:
        for h in handles:
            h.close()
    import_run(job_id=imported.pk)
    imported.refresh_from_db()
    assert imported.status == JobStatus.SUCCEEDED, (imported.message, list(imported.errors.all()[:3]))
    assert Utterance.objects.filter(corpus=target).count() == len(exported)
    back = {a.utterance.external_id: a.value for a in
            Annotation.objects.filter(utterance__corpus=target).select_related("utterance")}
    assert len(back) == len(exported)
    for external_id, value in back.items():
        row = exported.loc[external_id]
        assert value["emotion"] == row["emotion"]
        assert value.get("emotions") == (None if row["emotions"] is None else list(row["emotions"]))
        assert value.get("valence") == pytest.approx(row["valence"])
