"""Per-rater files import as raters: the long BRIGHTER-style form, one row per (text, rater), blanks that stay
missing, "no emotion" answers, duplicates, splits from folders and columns, and agreement equal to ``krippendorff``.

Every fixture is made here (a seeded generator writes the files); nothing comes from ../shared/datasets.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.agreement import masi_distance
from annotation.models import Annotation, LabelSchemaVersion
from annotation.quality.selectors import quality_source_for_corpus
from annotation.quality.services import agreement_report_compute
from corpora.models import Corpus, Utterance
from jobs.models import JobStatus
from tests.agreement.slow_reference import literal_alpha

pytestmark = pytest.mark.django_db

LABELS = ["anger", "joy", "sadness"]
RATERS = ["Annotator-1", "Annotator-2", "Annotator-3", "Annotator-4"]


def long_per_rater_file(seed: int = 3, items: int = 18) -> tuple[str, dict]:
    """A long per-rater CSV (text_id, text, emotion, Annotator-1..4 with 0-3) and the truth it encodes:
    levels[(item, rater)] = {label: level or None} for every rater who rated the item."""
    rng = np.random.default_rng(seed)
    levels: dict[tuple[str, str], dict[str, int | None]] = {}
    rows = []
    for i in range(items):
        item = f"mar_{i}"
        truth = {label: int(rng.integers(0, 4)) if rng.random() < 0.4 else 0 for label in LABELS}
        for r, rater in enumerate(RATERS):
            if i % 5 == r:  # this rater did not rate this item: every cell blank
                continue
            answer: dict[str, int | None] = {}
            for label in LABELS:
                level = truth[label] if rng.random() < 0.75 else int(rng.integers(0, 4))
                if i % 3 == 0 and r == 1:
                    level = 0  # an all-zero rater: "no emotion"
                answer[label] = level
            if i % 4 == 1 and r == 2:
                answer["joy"] = None  # a blank cell: no answer for joy, the rest answered
            levels[(item, rater)] = answer
        for label in LABELS:
            cells = []
            for rater in RATERS:
                value = levels.get((item, rater), {}).get(label)
                cells.append("" if value is None else str(value))
            rows.append([item, f"वाक्य {i}", label, *cells])
    rows.append(rows[4])  # one row twice, with the same ratings: a duplicate, reported and skipped
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text_id", "text", "emotion", *RATERS])
    writer.writerows(rows)
    return out.getvalue(), levels


def test_long_per_rater_file_imports_raters_blanks_and_no_emotion(corpus, run_import):
    data, levels = long_per_rater_file()
    job = run_import(corpus, {"mar.csv": data.encode()},
                     {"preset": "brighter_raters", "intensity": True, "paths": ["train/mar.csv"]})
    assert job.status == JobStatus.SUCCEEDED, job.message
    blank_cells = sum(row[3:].count("") for row in list(csv.reader(io.StringIO(data)))[1:])  # the duplicate too
    assert job.counts["created"] == 18 and job.counts["annotations"] == len(levels)
    assert job.counts["blank_cells"] == blank_cells > 18
    assert job.counts["duplicates"] == 1 and job.counts["unlabelled_rows"] == 0
    assert "blank label cell(s) kept as 'no answer'" in job.message
    stored = {(a.utterance.external_id, a.external_rater): a.value["emotions"]
              for a in Annotation.objects.select_related("utterance")}
    assert set(stored) == {(item, f"mr:{rater}") for item, rater in levels}  # raters named from the header
    assert stored[("mar_0", "mr:Annotator-2")] == {"anger": 0, "joy": 0, "sadness": 0}  # "no emotion"
    assert stored[("mar_1", "mr:Annotator-3")]["joy"] is None  # missing, not 0
    assert all(u.metadata["split"] == "train" for u in Utterance.objects.all())  # from the folder


def test_per_label_and_masi_alpha_of_the_import_equal_the_references(corpus, run_import):
    data, levels = long_per_rater_file(seed=11, items=30)
    job = run_import(corpus, {"mar.csv": data.encode()}, {"preset": "brighter_raters", "intensity": True})
    assert job.status == JobStatus.SUCCEEDED, job.message
    version = LabelSchemaVersion.objects.get(schema__slug="brighter-intensity")
    report = agreement_report_compute(source=quality_source_for_corpus(corpus, version), n_resamples=0).result
    block = next(q for q in report["questions"] if q["key"] == "emotions")["perspectives"][0]
    items = sorted({item for item, _ in levels})

    for label in LABELS:
        # raters x units, NaN where a rater did not rate the item or left the label blank.
        matrix = np.array([[np.nan if levels.get((item, rater), {}).get(label) is None
                            else levels[(item, rater)][label] for item in items] for rater in RATERS], dtype=float)
        binary = np.where(np.isnan(matrix), np.nan, (matrix > 0).astype(float))
        assert block["by_label"]["binary"][label]["alpha"] == pytest.approx(
            krippendorff.alpha(reliability_data=binary, level_of_measurement="nominal"), abs=1e-12)
        assert block["by_label"]["intensity"][label]["alpha"] == pytest.approx(
            krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal"), abs=1e-12)

    # MASI over the label sets; a rating with a blank label is an unknown set and stays out.
    units = {item: [frozenset(label for label, level in answer.items() if level)
                    for (other, _), answer in levels.items() if other == item and None not in answer.values()]
             for item in items}
    assert block["alpha"]["alpha"] == pytest.approx(literal_alpha(units, distance=masi_distance), abs=1e-12)
    assert block["counts"]["n_unknown_label_sets"] == sum(1 for a in levels.values() if None in a.values())
    empty = sum(1 for a in levels.values() if not any(a.values()))
    assert sum(row["n_none"] for row in block["label_distribution"]["languages"]) == empty > 0


ROWS_PER_RATER = (
    "id,text,rater,anger,fear,joy\n"
    "t1,one,ana,1,0,0\n"
    "t1,one,ben,1,0,1\n"
    "t1,one,cai,0,0,0\n"
    "t2,two,ana,0,1,\n"
    "t2,two,ben,0,1,0\n"
    "t1,one,ben,1,0,1\n"  # the same rater and text again: the one true duplicate
    "t2,two,cai,0,0,1\n"
)


def test_rows_per_text_and_rater_attach_every_rater(corpus, run_import, emotion_labels_multi):
    mapping = {"external_id": "id", "text": "text", "rater_column": "rater",
               "labels": {"emotions": {"anger": "anger", "fear": "fear", "joy": "joy"}}}
    job = run_import(corpus, {"ratings.csv": ROWS_PER_RATER.encode()},
                     {"mapping": mapping, "schema": "multi", "language": "en"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["created"] == 2 and job.counts["annotations"] == 6 and job.counts["duplicates"] == 1
    assert job.counts["labels_attached"] == 4 and job.counts["blank_cells"] == 1
    assert "duplicate" in job.result["notes"][0]["reason"] and job.result["notes"][0]["row"] == 6
    values = {(a.utterance.external_id, a.external_rater): a.value["emotions"] for a in Annotation.objects.all()}
    assert values[("t1", "cai")] == [] and values[("t2", "ana")] == {"fear": 1, "joy": None}
    # The same file again: every label is already there; nothing is added.
    again = run_import(corpus, {"ratings.csv": ROWS_PER_RATER.encode()},
                       {"mapping": mapping, "schema": "multi", "language": "en"})
    assert again.counts["annotations"] == 0 and again.counts["duplicates"] == 7
    # A new rater's file for the same texts attaches to the utterances already in the corpus.
    more = run_import(corpus, {"dan.csv": b"id,text,rater,anger,fear,joy\nt1,one,dan,0,1,0\n"},
                      {"mapping": mapping, "schema": "multi", "language": "en"})
    assert more.counts["created"] == 0 and more.counts["annotations"] == 1
    assert Annotation.objects.filter(external_rater="dan", utterance__external_id="t1").exists()


def test_wide_per_rater_columns_for_a_single_choice_question(corpus, run_import, emotion_labels):
    data = "text,r1,r2,r3\nhappy day,joy,joy,\nso sad,sadness,neutral,sadness\n"
    job = run_import(corpus, {"wide.csv": data.encode()}, {
        "mapping": {"text": "text", "raters": {"question": "emotion", "columns": ["r1", "r2", "r3"]}},
        "schema": "basic", "language": "en"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["annotations"] == 5 and job.counts["blank_cells"] == 1
    assert sorted(Annotation.objects.values_list("external_rater", flat=True)) == ["r1", "r1", "r2", "r2", "r3"]


def test_splits_from_folders_columns_and_repeated_texts(corpus, run_import):
    train = "Tweet,Label\nसमान वाक्य,Anger\nफक्त ट्रेन,Neutral\n"
    test = "Tweet,Label\nसमान वाक्य ,anger\n"  # the same text as a train row (a stray space)
    job = run_import(corpus, {"a.csv": train.encode(), "b.csv": test.encode()},
                     {"preset": "mahaemotions", "paths": ["train/tweets.csv", "test/tweets.csv"]})
    assert job.status == JobStatus.SUCCEEDED, job.message
    # The test row stays a test item, and the repeated text is reported with both splits named.
    same = Utterance.objects.filter(text="समान वाक्य").order_by("id")
    assert [u.metadata["split"] for u in same] == ["train", "test"]
    assert job.counts["cross_split_texts"] == 1 and "appear in more than one split" in job.message
    (example,) = job.result["cross_split_texts"]
    assert set(example["splits"]) == {"train", "test"} and example["language"] == "mr"
    assert {e["file"] for e in job.errors.values("file")} == set()
    assert set(Annotation.objects.values_list("origin", flat=True)) == {"llm", "human"}

    column = "text,partition\nhello,Train\nhello,dev\nbye,validation\n"
    split_job = run_import(corpus, {"rows.csv": column.encode()},
                           {"mapping": {"text": "text", "split": "partition"}, "language": "en"})
    assert split_job.status == JobStatus.SUCCEEDED and split_job.counts["created"] == 3
    assert sorted(u.metadata["split"] for u in Utterance.objects.filter(language__code="en")) == [
        "dev", "train", "validation"]


def test_same_named_files_need_their_folders(corpus, lead):
    from django.core.files.base import ContentFile

    from corpora.importing.services import ImportOptionsError, import_job_create

    files = [ContentFile(b"text\nx\n", name="mar.csv"), ContentFile(b"text\ny\n", name="mar.csv")]
    with pytest.raises(ImportOptionsError) as same:
        import_job_create(corpus=corpus, files=files, options={"mapping": {"text": "text"}, "language": "mr"},
                          created_by=lead, enqueue=False)
    assert "paths option" in same.value.errors["files"]
    with pytest.raises(ImportOptionsError) as bad:
        import_job_create(corpus=corpus, files=files, options={"mapping": {"text": "text"}, "language": "mr",
                                                               "paths": ["train/mar.csv"]},
                          created_by=lead, enqueue=False)
    assert "one relative path per uploaded file" in bad.value.errors["paths"]
    job = import_job_create(corpus=corpus, files=files, created_by=lead, enqueue=False,
                            options={"mapping": {"text": "text"}, "language": "mr",
                                     "paths": ["train/mar.csv", "../../dev/mar.csv"]})
    assert [f["original"] for f in job.params["files"]] == ["train/mar.csv", "dev/mar.csv"]


def test_failed_create_leaves_no_corpus(tmp_path: Path, db):
    bad = tmp_path / "train" / "broken.csv"
    bad.parent.mkdir()
    bad.write_text("text,emotion\nfine,joy\n,anger\n")
    with pytest.raises(CommandError):
        call_command("import_corpus", "will-fail", str(bad), "--mapping", '{"text": "text"}', "--language", "en",
                     "--create", "--license", "CC-BY-4.0", verbosity=0)
    assert not Corpus.objects.filter(slug="will-fail").exists()
    good = tmp_path / "train" / "good.csv"
    good.write_text("text\nfine\n")
    call_command("import_corpus", "made", str(good), "--mapping", '{"text": "text"}', "--language", "en",
                 "--create", "--license", "CC-BY-4.0", verbosity=0)
    made = Corpus.objects.get(slug="made")
    assert made.utterances.get().metadata == {"split": "train"}  # the folder named the split
    again = tmp_path / "test" / "good.csv"
    again.parent.mkdir()
    again.write_text("text\nfine\n")
    out = io.StringIO()
    call_command("import_corpus", "made", str(again), "--mapping", '{"text": "text"}', "--language", "en", stdout=out)
    assert "cross_split_texts=1" in out.getvalue() and "the same text in more than one split" in out.getvalue()


@pytest.fixture
def emotion_labels(db):  # type: ignore[no-untyped-def]
    from annotation.services import label_schema_create

    return label_schema_create(name="Basic", slug="basic", questions=[
        {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "anger", "neutral"]}])


@pytest.fixture
def emotion_labels_multi(db):  # type: ignore[no-untyped-def]
    from annotation.services import label_schema_create

    return label_schema_create(name="Multi", slug="multi", questions=[
        {"key": "emotions", "type": "multi_label", "labels": ["anger", "fear", "joy"]}])


def test_utterances_imported_before_splits_were_identity_are_still_found(corpus, run_import):
    from corpora.importing.validation import content_hash
    from corpora.languages import language_get_or_create

    # As an import before this change stored it: the split in the metadata, not in the content hash.
    old = Utterance.objects.create(
        corpus=corpus, text="नमस्कार", language=language_get_or_create("mr"), metadata={"split": "validation"},
        content_hash=content_hash(language="mr", conversation="", turn_index=None, speaker="", text="नमस्कार",
                                  audio_digest="", external_id=""))
    job = run_import(corpus, {"validation.csv": "Tweet,Label\nनमस्कार,Anger\n".encode()}, {"preset": "mahaemotions"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["created"] == 0 and job.counts["labels_attached"] == 1
    assert old.annotations.get().value == {"emotion": "Anger"}
    # The same text in another split is another item.
    test = run_import(corpus, {"test.csv": "Tweet,Label\nनमस्कार,Anger\n".encode()}, {"preset": "mahaemotions"})
    assert test.counts["created"] == 1 and test.counts["cross_split_texts"] == 1
