"""Corpus import: presets on small fixtures shaped like the real corpora, bad input, modes, formats."""

from __future__ import annotations

import io
import json
import threading
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connections

from annotation.models import Annotation, LabelSchema, Origin
from annotation.services import label_schema_create
from corpora.importing import writer
from corpora.importing.services import ImportOptionsError, import_job_create, import_run
from corpora.models import Conversation, Corpus, Speaker, Utterance
from jobs.models import Job, JobStatus

pytestmark = pytest.mark.django_db

MELD_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\r\n"
MELD_ROWS = [
    '1,"Oh my God, he\u2019s lost it. He\u2019s totally lost it.",Phoebe,sadness,negative,0,0,4,7,"00:20:57,256","00:21:00,049"\r\n',
    '2,What?,Monica,surprise,negative,0,1,4,7,"00:21:01,927","00:21:03,261"\r\n',
    '3,What?,Ross,surprise,negative,1,0,4,4,"00:12:24,660","00:12:30,915"\r\n',
    '4,You\u2019re a genius!,Chandler,joy,positive,1,1,4,4,"00:12:32,334","00:12:33,960"\r\n',
]


def errors_of(job: Job) -> list[tuple[str, int | None, str, str]]:
    return list(job.errors.order_by("id").values_list("file", "row", "column", "reason"))


@pytest.fixture
def emotion_labels(db):  # type: ignore[no-untyped-def]
    return label_schema_create(name="Basic", slug="basic", questions=[
        {"key": "emotion", "type": "single_choice", "labels": ["joy", "sadness", "anger", "neutral"]}])


# -- presets --------------------------------------------------------------------------------------------------


def test_meld_preset_keeps_dialogue_structure_and_labels(corpus, run_import):
    data = (MELD_HEADER + "".join(MELD_ROWS)).encode()
    job = run_import(corpus, {"dev_sent_emo.csv": data}, {"preset": "meld"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["created"] == 4 and job.counts["annotations"] == 4 and job.counts["conversations"] == 2
    first = Utterance.objects.get(external_id="dev-dia0_utt0")
    assert first.text == "Oh my God, he\u2019s lost it. He\u2019s totally lost it."  # curly apostrophes intact
    assert first.conversation.external_id == "dev-0" and first.turn_index == 0 and first.speaker.external_id == "Phoebe"
    assert first.audio_start_s == pytest.approx(1257.256) and first.audio_end_s == pytest.approx(1260.049)
    assert first.metadata == {"split": "dev", "sr_no": "1", "season": "4", "episode": "7"}
    # Two different turns that both say "What?" are two utterances.
    assert Utterance.objects.filter(text="What?").count() == 2
    label = first.annotations.get()
    assert label.value == {"emotion": "sadness", "sentiment": "negative"}
    assert (label.origin, label.external_rater, label.import_job_id, label.project_id) == (Origin.HUMAN, "meld-gold", job.pk, None)
    assert label.schema_version.schema.slug == "meld" and label.schema_version.version == 1
    assert list(corpus.languages.values_list("code", flat=True)) == ["en"]
    # The same file again: every row is a duplicate, reported and skipped; the schema is reused.
    again = run_import(corpus, {"dev_sent_emo.csv": data}, {"preset": "meld"})
    assert again.status == JobStatus.SUCCEEDED and again.counts["duplicates"] == 4 and again.counts["created"] == 0
    assert again.result["notes"][0] == {
        "file": "dev_sent_emo.csv", "row": 1,
        "reason": "a duplicate: this utterance and its label by meld-gold are already in the corpus; skipped"}
    assert Utterance.objects.count() == 4 and LabelSchema.objects.filter(slug="meld").count() == 1


def test_meld_splits_do_not_collide(corpus, run_import):
    data = (MELD_HEADER + MELD_ROWS[0]).encode()
    job = run_import(corpus, {"train_sent_emo.csv": data, "test_sent_emo.csv": data}, {"preset": "meld"})
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 2
    assert set(Conversation.objects.values_list("external_id", flat=True)) == {"train-0", "test-0"}
    assert Speaker.objects.count() == 1


MAHA_VALIDATION = (
    "Tweet,Label,,\r\n"
    "\u0915\u093e\u092f?? \u0906\u0935\u094d\u0939\u093e\u0921,Anger,,\r\n"
    "\u0906\u0927\u0940 \u091c\u092f,respect,,\r\n"
    "\u092e\u094b\u0926\u0940\u091c\u0940,Happiness ,, \r\n"
    "\u0939\u094b\u0924\u093e,Joyful,,\r\n"
)


def test_mahaemotions_quirks_and_provenance(corpus, run_import):
    job = run_import(corpus, {"validation.csv": MAHA_VALIDATION.encode()}, {"preset": "mahaemotions", "mode": "skip_invalid"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["created"] == 3 and job.counts["rejected_rows"] == 1
    values = sorted(a.value["emotion"] for a in Annotation.objects.all())
    assert values == ["Anger", "Happiness", "Respect"]  # lowercase and trailing space normalised
    assert set(Annotation.objects.values_list("origin", "external_rater", "model_version")) == {
        (Origin.HUMAN, "mahaemotions-gold", "")}
    [(file, row, column, reason)] = errors_of(job)
    assert (file, row, column) == ("validation.csv", 4, "Label") and "'Joyful' is not one of the labels" in reason
    assert Utterance.objects.first().language.code == "mr"
    assert all(u.metadata == {"split": "validation"} for u in Utterance.objects.all())

    train = run_import(corpus, {"train.csv": "Tweet,Label\r\n\u0928\u0935\u0940\u0928,Neutral\r\n".encode()},
                       {"preset": "mahaemotions"})
    assert train.status == JobStatus.SUCCEEDED
    llm = Annotation.objects.get(import_job_id=train.pk)
    assert (llm.origin, llm.model_version, llm.external_rater) == (Origin.LLM, "gpt-4-chain-of-translation", "")


def test_mahaemotions_needs_a_split(corpus, lead):
    with pytest.raises(ImportOptionsError) as exc:
        import_job_create(corpus=corpus, files=[ContentFile(b"Tweet,Label\n", name="tweets.csv")],
                          options={"preset": "mahaemotions"}, created_by=lead, enqueue=False)
    assert "split" in exc.value.errors
    assert not Job.objects.exists()


BRIGHTER = "id,text,anger,fear,joy,sadness,surprise\nmar_1,one,0,1,1,0,0\nmar_2,two,0,0,0,0,0\nmar_3,three,2,0,0,0,0\n"


def test_brighter_binary_labels(corpus, run_import):
    job = run_import(corpus, {"mar.csv": BRIGHTER.encode()}, {"preset": "brighter", "mode": "skip_invalid"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert Utterance.objects.get(external_id="mar_1").annotations.get().value == {"emotions": ["fear", "joy"]}
    # Every emotion 0 is the answer "no emotion", not an unlabelled row.
    assert Utterance.objects.get(external_id="mar_2").annotations.get().value == {"emotions": []}
    assert job.counts["unlabelled_rows"] == 0
    [(_, row, column, reason)] = errors_of(job)
    assert row == 3 and column == "anger,fear,joy,sadness,surprise" and "outside 0–1" in reason
    assert Utterance.objects.first().language.code == "mr"  # from the file name


def test_brighter_intensity(corpus, run_import):
    job = run_import(corpus, {"eng.csv": BRIGHTER.encode()}, {"preset": "brighter", "intensity": True})
    assert job.status == JobStatus.SUCCEEDED, job.message
    three = Utterance.objects.get(external_id="mar_3").annotations.get()
    assert three.value == {"emotions": {"anger": 2, "fear": 0, "joy": 0, "sadness": 0, "surprise": 0}}
    assert three.schema_version.schema.slug == "brighter-intensity"


EMOBANK = ('id,split,V,A,D,text\n'
           'doc_1_10,train,3.0,3.0,3.2,"Remember what she said in my last letter? """\n'
           'doc_11_20,test,2.8,3.1,2.8,If I wasn\'t working here.\n'
           'doc_21_30,dev,3.0,3.0,3.0,".."\n'
           'doc_31_40,dev,3.0,3.0,3.0,".."\n')
META = "id\tdocument\tcategory\tsubcategory\ndoc_1_10\tdoc\tletters\tfundraising\ndoc_99_100\tdoc\tblog\t \n"
READER = "id,V,A,D\ndoc_1_10,3,3,3\ndoc_1_10,3,5,3\ndoc_11_20,2,4,4\nnot_there,3,3,3\n"


def test_emobank_with_meta_then_reader_ratings(corpus, run_import):
    job = run_import(corpus, {"emobank.csv": EMOBANK.encode(), "meta.tsv": META.encode()}, {"preset": "emobank"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["created"] == 4  # the two ".." sentences are different items (different ids)
    first = Utterance.objects.get(external_id="doc_1_10")
    assert first.text == 'Remember what she said in my last letter? "'
    assert first.metadata == {"split": "train", "document": "doc", "category": "letters", "subcategory": "fundraising"}
    assert first.annotations.get().value == {"valence": 3, "arousal": 3, "dominance": 3.2}

    ratings = run_import(corpus, {"individual_reader_ratings.csv": READER.encode()},
                         {"preset": "emobank_ratings", "mode": "skip_invalid"})
    assert ratings.status == JobStatus.SUCCEEDED, ratings.message
    assert ratings.counts["annotations"] == 3 and ratings.counts["created"] == 0
    assert sorted(Annotation.objects.filter(import_job_id=ratings.pk).values_list(
        "utterance__external_id", "external_rater", "perspective")) == [
        ("doc_11_20", "emobank-reader-1", "reader"), ("doc_1_10", "emobank-reader-1", "reader"),
        ("doc_1_10", "emobank-reader-2", "reader")]
    [(file, row, column, reason)] = errors_of(ratings)
    assert (file, row, column) == ("individual_reader_ratings.csv", 4, "id") and "'not_there'" in reason
    # Ratings imported twice are duplicates, not new raters.
    again = run_import(corpus, {"individual_reader_ratings.csv": READER.encode()},
                       {"preset": "emobank_ratings", "mode": "skip_invalid"})
    assert again.counts["annotations"] == 0 and again.counts["duplicates"] == 3


def test_emobank_ratings_in_the_same_job_as_the_sentences(corpus, run_import):
    writer_ratings = "id,V,A,D\ndoc_21_30,4,3,3\n"
    job = run_import(corpus, {"individual_writer_ratings.csv": writer_ratings.encode(), "emobank.csv": EMOBANK.encode()},
                     {"preset": "emobank"})
    assert job.status == JobStatus.SUCCEEDED, job.message
    rating = Annotation.objects.get(perspective="writer")
    assert rating.utterance.external_id == "doc_21_30" and rating.external_rater == "emobank-writer-1"


# -- formats and encodings ------------------------------------------------------------------------------------

GENERIC = {"mapping": {"text": "text", "external_id": "id", "labels": {"emotion": "emotion"}}, "schema": "basic",
           "language": "hi"}


@pytest.mark.parametrize("encoding,option", [("utf-8-sig", None), ("utf-16", None), ("utf-16-le", "utf-16"),
                                             ("utf-16-be", None)])
def test_bom_and_utf16(corpus, run_import, emotion_labels, encoding, option):
    text = "id,text,emotion\n1,\u0916\u0941\u0936\u0940 \u2019quoted\u2019,joy\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    job = run_import(corpus, {"data.csv": data}, {**GENERIC, **({"encoding": option} if option else {})})
    assert job.status == JobStatus.SUCCEEDED, (job.message, errors_of(job))
    assert Utterance.objects.get().text == "\u0916\u0941\u0936\u0940 \u2019quoted\u2019"


def test_jsonl_and_parquet(corpus, run_import, emotion_labels):
    jsonl = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"id": "a", "text": "\u0906\u0928\u0902\u0926", "emotion": "joy"},
        {"id": "b", "text": "dukh", "emotion": "sadness"}]) + "\n{broken\n"
    job = run_import(corpus, {"rows.jsonl": jsonl.encode()}, {**GENERIC, "mode": "skip_invalid"})
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 2
    [(file, row, _, reason)] = errors_of(job)
    assert (file, row) == ("rows.jsonl", 3) and "not valid JSON" in reason

    table = pa.table({"id": ["c", "d"], "text": ["krodh", "shanti"], "emotion": ["anger", "neutral"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    job = run_import(corpus, {"rows.parquet": buffer.getvalue()}, GENERIC)
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 2
    assert Annotation.objects.get(utterance__external_id="d").value == {"emotion": "neutral"}


def test_tsv_with_language_column_and_metadata(corpus, run_import, emotion_labels):
    tsv = "sentence\tlang\tlabel\tsource\nहाय\tmr\tjoy\tweb\nhello\ten\t\tweb\n"
    job = run_import(corpus, {"x.tsv": tsv.encode()}, {
        "mapping": {"text": "sentence", "language": "lang", "labels": {"emotion": "label"}, "metadata": ["source"]},
        "schema": "basic"})
    assert job.status == JobStatus.SUCCEEDED, errors_of(job)
    assert sorted(corpus.languages.values_list("code", flat=True)) == ["en", "mr"]
    assert Utterance.objects.get(text="hello").metadata == {"source": "web"}
    assert job.counts["unlabelled_rows"] == 1 and Annotation.objects.count() == 1


# -- bad input ------------------------------------------------------------------------------------------------


def test_wrong_encoding_names_the_byte_offset(corpus, run_import, emotion_labels):
    data = "id,text,emotion\n1,caf\u00e9,joy\n".encode("latin-1")
    job = run_import(corpus, {"latin.csv": data}, GENERIC)
    assert job.status == JobStatus.FAILED and Utterance.objects.count() == 0
    [(file, row, _, reason)] = errors_of(job)
    assert file == "latin.csv" and "not valid UTF-8" in reason and "byte 0xe9 at byte offset 21 (line 2)" in reason


def test_missing_and_extra_columns(corpus, run_import, emotion_labels):
    job = run_import(corpus, {"m.csv": b"id,emotion\n1,joy\n"}, GENERIC)
    [(file, _, column, reason)] = errors_of(job)
    assert job.status == JobStatus.FAILED and column == "text" and "'text' named in the mapping" in reason
    job = run_import(corpus, {"e.csv": b"id,text,emotion,notes\n1,hi,joy,x\n"}, GENERIC)
    [(_, _, column, reason)] = errors_of(job)
    assert job.status == JobStatus.FAILED and column == "notes" and "unexpected column(s) 'notes'" in reason
    job = run_import(corpus, {"e.csv": b"id,text,emotion,notes\n1,hi,joy,x\n"},
                     {**GENERIC, "mapping": {**GENERIC["mapping"], "extra_columns": "metadata"}})
    assert job.status == JobStatus.SUCCEEDED and Utterance.objects.get().metadata == {"notes": "x"}


def test_rows_with_too_many_or_too_few_fields(corpus, run_import, emotion_labels):
    job = run_import(corpus, {"r.csv": b"id,text,emotion\n1,hi,joy\n2,a,b,joy\n3,short\n4,fine,anger\n"},
                     {**GENERIC, "mode": "skip_invalid"})
    assert job.counts["created"] == 2
    assert [(row, "fields" in reason) for _, row, _, reason in errors_of(job)] == [(2, True), (3, True)]


def test_empty_file_and_header_only(corpus, run_import, emotion_labels):
    job = run_import(corpus, {"empty.csv": b""}, GENERIC)
    assert job.status == JobStatus.FAILED and errors_of(job)[0][3] == "the file is empty"
    job = run_import(corpus, {"header.csv": b"id,text,emotion\n"}, GENERIC)
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 0


def test_oversized_file(corpus, run_import, emotion_labels, settings, lead):
    data = b"id,text,emotion\n" + b"".join(b"%d,row %d,joy\n" % (i, i) for i in range(200))
    settings.IMPORT_MAX_FILE_BYTES = 1000
    with pytest.raises(ImportOptionsError) as exc:
        import_job_create(corpus=corpus, files=[ContentFile(data, name="big.csv")], options=GENERIC, created_by=lead,
                          enqueue=False)
    assert "big.csv is" in exc.value.errors["files"] and not Job.objects.exists()
    # A limit lowered after upload is still enforced when the job runs.
    settings.IMPORT_MAX_FILE_BYTES = 10**6
    job = import_job_create(corpus=corpus, files=[ContentFile(data, name="big.csv")], options=GENERIC,
                            created_by=lead, enqueue=False)
    settings.IMPORT_MAX_FILE_BYTES = 1000
    import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "the limit is 1,000 bytes" in errors_of(job)[0][3]


def test_one_megabyte_line(corpus, run_import, emotion_labels):
    line = b"1," + b"x" * (1024 * 1024 + 10) + b",joy\n"
    job = run_import(corpus, {"long.csv": b"id,text,emotion\n" + line + b"2,ok,joy\n"}, {**GENERIC, "mode": "skip_invalid"})
    assert job.status == JobStatus.FAILED and Utterance.objects.count() == 0
    [(file, _, _, reason)] = errors_of(job)
    assert file == "long.csv" and "line 2 is longer than 1,048,576 bytes" in reason


def test_duplicates_are_counted_not_errors(corpus, run_import, emotion_labels):
    data = b"id,text,emotion\n1,same,joy\n1,same,joy\n2,other,anger\n"
    job = run_import(corpus, {"d.csv": data}, GENERIC)  # all_or_nothing: duplicates do not fail it
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 2 and job.counts["duplicates"] == 1
    assert job.result["notes"] == [{"file": "d.csv", "row": 2,
                                    "reason": "a duplicate: this utterance and its label by source are already in an "
                                              "earlier row of this import; skipped"}]
    assert job.error_count == 0
    clash = run_import(corpus, {"c.csv": b"id,text,emotion\n1,different text,joy\n"}, GENERIC)
    assert clash.status == JobStatus.FAILED and "external id '1' is already used in the corpus" in errors_of(clash)[0][3]


def test_unknown_language_code(corpus, run_import, emotion_labels):
    data = b"text,lang\nok,mr\nbad,xx-notalang\nalso bad,\n"
    job = run_import(corpus, {"l.csv": data}, {"mapping": {"text": "text", "language": "lang"}, "mode": "skip_invalid"})
    assert job.counts["created"] == 1
    assert [(row, column) for _, row, column, _ in errors_of(job)] == [(2, "lang"), (3, "lang")]
    assert "not a valid BCP-47" in errors_of(job)[0][3]
    with pytest.raises(ImportOptionsError) as exc:
        import_job_create(corpus=corpus, files=[ContentFile(b"text\nx\n", name="a.csv")],
                          options={"mapping": {"text": "text"}, "language": "zz-nope"}, created_by=None, enqueue=False)
    assert "language" in exc.value.errors


def test_all_or_nothing_writes_nothing_and_skip_invalid_writes_the_rest(corpus, run_import, emotion_labels):
    data = b"id,text,emotion\n1,good,joy\n2,bad label,ecstasy\n3,,joy\n4,fine,neutral\n"
    strict = run_import(corpus, {"m.csv": data}, GENERIC)
    assert strict.status == JobStatus.FAILED and "all_or_nothing" in strict.message
    assert Utterance.objects.count() == 0 and Annotation.objects.count() == 0
    assert [(r, c) for _, r, c, _ in errors_of(strict)] == [(2, "emotion"), (3, "text")]
    assert strict.counts["rejected_rows"] == 2
    lenient = run_import(corpus, {"m.csv": data}, {**GENERIC, "mode": "skip_invalid"})
    assert lenient.status == JobStatus.SUCCEEDED and lenient.error_count == 2
    # Round trip of counts: what the job says is what the database holds.
    assert lenient.counts["created"] == Utterance.objects.count() == 2
    assert lenient.counts["annotations"] == Annotation.objects.filter(import_job_id=lenient.pk).count() == 2
    assert lenient.counts["rows"] == 4 and lenient.counts["rejected_rows"] == 2


def test_unexpected_failure_rolls_back_everything(corpus, run_import, emotion_labels, monkeypatch):
    """Never a half-written corpus: on either database, a failure after the utterances were written undoes them."""
    calls = {"n": 0}
    last_step = "_copy_annotations" if writer.use_copy() else "_bulk_annotations"  # PostgreSQL's COPY or SQLite's
    original = getattr(writer, last_step)

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        original(*args, **kwargs)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(writer, last_step, explode)
    job = run_import(corpus, {"x.csv": b"id,text,emotion\n1,a,joy\n2,b,joy\n"}, GENERIC)
    assert calls["n"] == 1
    assert job.status == JobStatus.FAILED and "disk on fire" in job.message and "nothing was written" in job.message
    assert Utterance.objects.count() == 0 and Annotation.objects.count() == 0 and Conversation.objects.count() == 0
    assert not corpus.languages.exists()


def test_bulk_create_path_used_without_copy(corpus, run_import, monkeypatch):
    monkeypatch.setattr(writer, "use_copy", lambda: False)
    data = (MELD_HEADER + "".join(MELD_ROWS)).encode()
    job = run_import(corpus, {"dev_sent_emo.csv": data}, {"preset": "meld"})
    assert job.status == JobStatus.SUCCEEDED and Utterance.objects.count() == 4 and Annotation.objects.count() == 4
    assert Utterance.objects.get(external_id="dev-dia1_utt1").speaker.external_id == "Chandler"


# -- audio ----------------------------------------------------------------------------------------------------


def _wav(seconds: float = 0.2) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(int(16000 * seconds), dtype="float32"), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_audio_rows(corpus, run_import, lead):
    archive = io.BytesIO()
    good = _wav()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("clips/a.wav", good)
        zf.writestr("clips/text.wav", b"this is not audio at all, just text " * 20)
        zf.writestr("clips/cut.wav", good[: len(good) // 2])
    data = "path,text\nclips/a.wav,hello\nclips/missing.wav,gone\nclips/text.wav,fake\nclips/cut.wav,cut\n,no audio\n"
    job = run_import(corpus, {"audio.csv": data.encode()},
                     {"mapping": {"text": "text", "audio": "path"}, "language": "en", "mode": "skip_invalid"},
                     audio_archive=ContentFile(archive.getvalue(), name="clips.zip"))
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.counts["created"] == 2
    with_audio = Utterance.objects.get(text="hello")
    assert with_audio.audio.name.startswith(f"audio/{corpus.pk}/") and with_audio.audio_sample_rate == 16000
    assert with_audio.audio_duration_s == pytest.approx(0.2)
    assert with_audio.audio.read() == good
    assert [(row, column) for _, row, column, _ in errors_of(job)] == [(2, "path"), (3, "path"), (4, "path")]


def test_audio_of_a_failed_import_is_removed(corpus, run_import):
    from django.core.files.storage import default_storage

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.wav", _wav())
    data = "path,text,lang\na.wav,hello,en\n,bad language,xx-nope\n"
    job = run_import(corpus, {"audio.csv": data.encode()},
                     {"mapping": {"text": "text", "audio": "path", "language": "lang"}},
                     audio_archive=ContentFile(archive.getvalue(), name="clips.zip"))
    assert job.status == JobStatus.FAILED and Utterance.objects.count() == 0
    _, stored = default_storage.listdir(f"audio/{corpus.pk}") if default_storage.exists(f"audio/{corpus.pk}") else ([], [])
    assert stored == []


# -- jobs, progress, task, command ----------------------------------------------------------------------------


def test_job_create_validates_and_enqueues_after_commit(corpus, lead, emotion_labels, django_capture_on_commit_callbacks,
                                                        monkeypatch):
    with pytest.raises(ImportOptionsError) as exc:
        import_job_create(corpus=corpus, files=[ContentFile(b"x", name="a.csv")],
                          options={"mode": "sometimes", "preset": "nope", "bogus": 1}, created_by=lead)
    assert set(exc.value.errors) >= {"mode", "preset", "options"}
    with pytest.raises(ImportOptionsError) as exc:
        import_job_create(corpus=corpus, files=[ContentFile(b"x", name="a.csv")],
                          options={"mapping": {"text": "text", "labels": {"emotion": "e"}}, "language": "en"},
                          created_by=lead)
    assert "schema" in exc.value.errors
    sent: list[int] = []
    from jobs import dispatch

    monkeypatch.setattr(dispatch, "task_send", lambda task, job_id: sent.append(job_id))
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_create(corpus=corpus, files=[ContentFile(b"id,text,emotion\n1,a,joy\n", name="a.csv")],
                                options=GENERIC, created_by=lead)
        assert sent == []  # not before the commit
    assert sent == [job.pk]
    assert job.params["files"][0]["name"] == f"imports/{job.pk}/0-a.csv" and job.params["options"]["mode"] == "all_or_nothing"


def test_task_runs_the_import_and_retries_lost_connections(corpus, lead, emotion_labels, monkeypatch):
    from workers.tasks import run_import_job

    job = import_job_create(corpus=corpus, files=[ContentFile(b"id,text,emotion\n1,a,joy\n", name="a.csv")],
                            options=GENERIC, created_by=lead, enqueue=False)
    run_import_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and Utterance.objects.count() == 1
    run_import_job.apply(args=[job.pk])  # redelivered: nothing happens twice
    assert Utterance.objects.count() == 1

    import corpora.importing.services as services

    def lost(**kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "import_run", lost)
    other = import_job_create(corpus=corpus, files=[ContentFile(b"id,text,emotion\n2,b,joy\n", name="b.csv")],
                              options=GENERIC, created_by=lead, enqueue=False)
    result = run_import_job.apply(args=[other.pk])
    other.refresh_from_db()
    assert other.status == JobStatus.FAILED and "unreachable after 3 retries" in other.message
    assert result.state == "SUCCESS"  # gave up cleanly after the retries


@pytest.mark.postgres("drops a real PostgreSQL connection")
@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_while_writing_is_retried_and_the_import_lands_once(lead, emotion_labels, monkeypatch):
    """The server drops the worker's connection in the middle of the write transaction (the utterances are copied,
    the labels' COPY fails): the task retries (the same message takes its job over), nothing of the first attempt
    remains, and every row lands exactly once."""
    import psycopg
    from django.db import connection

    from corpora.services import corpus_create
    from workers.tasks import run_import_job

    corpus = corpus_create(name="Dropped", license="CC0-1.0", created_by=lead)
    rows = "".join(f"{i},text {i},joy\n" for i in range(500))
    job = import_job_create(corpus=corpus, files=[ContentFile(("id,text,emotion\n" + rows).encode(), name="d.csv")],
                            options=GENERIC, created_by=lead, enqueue=False)
    original = writer._copy_annotations
    dropped: list[int] = []

    def drop_then_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not dropped:  # first attempt, utterances written in the open transaction: now the server hangs up
            db = connection.settings_dict
            dropped.append(connection.connection.info.backend_pid)
            with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                                 password=db["PASSWORD"] or None, dbname=db["NAME"], autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", dropped)
        return original(*args, **kwargs)

    monkeypatch.setattr(writer, "_copy_annotations", drop_then_write)
    result = run_import_job.apply(args=[job.pk], task_id="import-message-1")  # eager: a retry runs at once

    job.refresh_from_db()
    assert dropped and result.state == "SUCCESS"
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2 and job.runner == "import-message-1", job.message
    assert Utterance.objects.filter(corpus=corpus).count() == 500
    assert Annotation.objects.filter(utterance__corpus=corpus).count() == 500
    assert Utterance.objects.filter(corpus=corpus).values("external_id").distinct().count() == 500


def test_command_imports_and_reports(tmp_path, db, capsys):
    path = tmp_path / "dev_sent_emo.csv"
    path.write_bytes((MELD_HEADER + "".join(MELD_ROWS) + MELD_ROWS[0].replace("Phoebe", "Phoebe")).encode())
    call_command("import_corpus", "meld-dev", str(path), "--preset", "meld", "--create", "--name", "MELD",
                 "--license", "GPL-3.0", verbosity=0)
    out = capsys.readouterr().out
    assert "succeeded" in out and "created=4" in out and "duplicates=1" in out
    assert Corpus.objects.get(slug="meld-dev").utterances.count() == 4
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,lang\nhello,xx-nope\n")
    with pytest.raises(CommandError, match="failed"):
        call_command("import_corpus", "meld-dev", str(bad), "--mapping", '{"text": "text", "language": "lang"}',
                     verbosity=0)
    out = capsys.readouterr().out
    assert "bad.csv, row 1, column 'lang':" in out
    with pytest.raises(CommandError, match="no corpus"):
        call_command("import_corpus", "nope", str(bad), verbosity=0)


@pytest.mark.postgres("SQLite has one writer: progress cannot be written beside the open import transaction")
@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_while_the_import_transaction_is_open(lead, emotion_labels):
    from corpora.services import corpus_create

    corpus = corpus_create(name="Progress", license="CC0-1.0", created_by=lead)
    rows = "".join(f"{i},text {i},joy\n" for i in range(12_000))
    job = import_job_create(corpus=corpus, files=[ContentFile(("id,text,emotion\n" + rows).encode(), name="p.csv")],
                            options=GENERIC, created_by=lead, enqueue=False)
    seen: list[tuple[int, int, int]] = []
    calls: list[int] = []
    original = writer._copy_annotations

    def observe(*args, **kwargs):  # type: ignore[no-untyped-def]
        original(*args, **kwargs)
        calls.append(1)
        if len(calls) != 2:  # the first chunk's progress is reported after this call
            return
        # Inside the import transaction: ask another connection what it sees.
        def look() -> None:
            try:
                for _ in range(50):
                    job_row = Job.objects.get(pk=job.pk)
                    if job_row.progress_done > 12_000:
                        break
                    threading.Event().wait(0.1)
                seen.append((job_row.progress_done, job_row.progress_total or 0,
                             Utterance.objects.filter(corpus=corpus).count()))
            finally:
                connections.close_all()
        reader = threading.Thread(target=look)
        reader.start()
        reader.join()

    writer_module_attr = "_copy_annotations"
    setattr(writer, writer_module_attr, observe)
    try:
        import_run(job_id=job.pk)
    finally:
        setattr(writer, writer_module_attr, original)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 12_000
    done, total, visible_utterances = seen[0]
    assert total == 24_000 and 12_000 < done < 24_000  # reading done, writing under way, seen from outside
    assert visible_utterances == 0  # while nothing of the import is visible yet
    assert job.progress_done == job.progress_total == 24_000


# -- the fast path for plain tabular files ----------------------------------------------------------------------

TRICKY = (
    "id,text,lang,speaker,conv,turn,emotion\n"
    "a1,  plain row  ,mr,s1,c1,0,joy\n"
    'a2,"quoted, with comma and ""quotes""\nand a newline",en,s1,c1,1,Sadness \n'
    "a3,bad language,xx-nope,s2,c1,2,joy\n"
    "a4,,mr,s2,c2,0,joy\n"
    "a5,bad turn,mr,s2,c2,-1,joy\n"
    "a6,bad label,mr,s2,c2,3,ecstasy\n"
    "a7,no label,mr,,,,\n"
    "a1,  plain row  ,mr,s1,c1,0,joy\n"
    "a8,short row\n"
    "a9,tab\tand back\\slash,hi,s3,c3,01,anger\n"
    "a1,same id other text,mr,s1,c1,0,joy\n"
    "   \n"
    "a10,trailing cells,en,s3,c3,2,neutral,,\n"
    + "x" * 201 + ",long id,mr,s1,c1,5,joy\n"
)
TRICKY_OPTIONS = {"mapping": {"text": "text", "external_id": "id", "language": "lang", "speaker": "speaker",
                              "conversation": "conv", "turn_index": "turn", "labels": {"emotion": "emotion"}},
                  "schema": "basic", "mode": "skip_invalid"}


def _outcome(job: Job) -> tuple[object, ...]:
    utterances = sorted(Utterance.objects.filter(corpus_id=job.corpus_id).values_list(
        "external_id", "text", "language__code", "speaker__external_id", "conversation__external_id", "turn_index",
        "metadata", "content_hash"))
    labels = sorted(Annotation.objects.filter(import_job_id=job.pk).values_list(
        "utterance__external_id", "value", "external_rater", "origin"))
    return job.status, dict(job.counts), errors_of(job), job.result["notes"], utterances, labels


@pytest.mark.parametrize("use_copy", [pytest.param(True, marks=pytest.mark.postgres("COPY is PostgreSQL's")), False])
def test_fast_path_gives_what_the_general_path_gives(lead, emotion_labels, run_import, monkeypatch, use_copy):
    import corpora.importing.services as services
    from corpora.services import corpus_create

    monkeypatch.setattr(writer, "use_copy", lambda: use_copy)
    calls: list[str] = []
    original = services.FastRowReader.read

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("fast")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(services.FastRowReader, "read", counting)
    fast = run_import(corpus_create(name="Fast", license="CC0-1.0", created_by=lead), {"t.csv": TRICKY.encode()},
                      TRICKY_OPTIONS)
    assert calls  # the fast path read this file
    monkeypatch.setattr(services, "fast_path_fits", lambda **kwargs: False)
    calls.clear()
    general = run_import(corpus_create(name="General", license="CC0-1.0", created_by=lead), {"t.csv": TRICKY.encode()},
                         TRICKY_OPTIONS)
    assert not calls
    assert fast.status == JobStatus.SUCCEEDED and fast.counts["created"] == 5 and fast.counts["duplicates"] == 1
    assert fast.counts["rejected_rows"] == 7 and fast.counts["unlabelled_rows"] == 1
    assert _outcome(fast) == _outcome(general)


def test_fast_path_rules_across_chunks(lead, emotion_labels, run_import, monkeypatch):
    """Chunks that are all new go in whole columns; a later chunk with a repeated row or external id does not."""
    import corpora.importing.services as services
    from corpora.importing.readers import CHUNK_ROWS
    from corpora.services import corpus_create

    rows = "".join(f"{i},text {i},mr,s{i % 7},c{i // 10},{i % 10},joy\n" for i in range(CHUNK_ROWS + 10))
    rows += "3,other text,mr,s1,c1,1,joy\n"  # the external id of a row of the first chunk, with other content
    rows += "4,text 4,mr,s4,c0,4,joy\n"  # the very row 5 again
    rows += "n1,new,mr,s1,c9999,0,\n"
    data = ("id,text,lang,speaker,conv,turn,emotion\n" + rows).encode()
    whole: list[bool] = []
    original = services._ImportRun._accept_fast_all

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        whole.append(original(self, *args, **kwargs))
        return whole[-1]

    monkeypatch.setattr(services._ImportRun, "_accept_fast_all", spy)
    fast = run_import(corpus_create(name="Fast", license="CC0-1.0", created_by=lead), {"t.csv": data}, TRICKY_OPTIONS)
    monkeypatch.setattr(services, "fast_path_fits", lambda **kwargs: False)
    general = run_import(corpus_create(name="General", license="CC0-1.0", created_by=lead), {"t.csv": data},
                         TRICKY_OPTIONS)
    assert whole == [True, False]  # the first chunk as columns, the second row by row
    assert fast.status == JobStatus.SUCCEEDED and fast.counts["created"] == CHUNK_ROWS + 11
    assert fast.counts["duplicates"] == 1 and fast.counts["rejected_rows"] == 1 and fast.counts["unlabelled_rows"] == 1
    assert _outcome(fast) == _outcome(general)


def test_a_second_import_reuses_the_corpus_conversations_and_speakers(corpus, run_import, emotion_labels):
    first = run_import(corpus, {"a.csv": b"id,text,lang,speaker,conv,turn,emotion\n1,hello,mr,s1,c1,0,joy\n"},
                       TRICKY_OPTIONS)
    second = run_import(corpus, {"b.csv": b"id,text,lang,speaker,conv,turn,emotion\n2,again,mr,s1,c1,1,joy\n"
                                          b"3,new,mr,s2,c2,0,joy\n"}, TRICKY_OPTIONS)
    assert first.counts["conversations"] == 1 and second.counts["conversations"] == 1
    assert second.counts["speakers"] == 1 and second.counts["created"] == 2
    assert Conversation.objects.filter(corpus=corpus).count() == 2 and Speaker.objects.filter(corpus=corpus).count() == 2
    one, two = Utterance.objects.get(external_id="1"), Utterance.objects.get(external_id="2")
    assert (one.conversation_id, one.speaker_id) == (two.conversation_id, two.speaker_id)


def test_projects_on_the_corpus_get_their_items_in_the_import_transaction(corpus, lead, emotion_labels, run_import,
                                                                          monkeypatch):
    from annotation.models import ProjectItem
    from annotation.services import project_create
    from corpora.models import Language
    from jobs import dispatch

    sent: list[object] = []
    monkeypatch.setattr(dispatch, "task_send", lambda task, *ids: sent.append(task))
    hindi_only = project_create(name="Hindi", corpus=corpus, schema_version=emotion_labels, created_by=lead, overlap=2,
                                languages=[Language.objects.get_or_create(code="hi", defaults={"name": "Hindi"})[0]])
    everyone = project_create(name="All", corpus=corpus, schema_version=emotion_labels, created_by=lead, overlap=3)
    assert not ProjectItem.objects.exists()  # the corpus was empty
    job = run_import(corpus, {"a.csv": b"id,text,emotion\n1,a,joy\n2,b,anger\n3,c,\n"}, GENERIC)
    assert job.status == JobStatus.SUCCEEDED, job.message
    # No follow-up task: the items were committed with the utterances.
    assert sent == []
    for project, overlap in ((hindi_only, 2), (everyone, 3)):
        items = ProjectItem.objects.filter(project=project).order_by("id")
        assert [item.utterance.external_id for item in items] == ["1", "2", "3"]
        assert {item.target_count for item in items} == {overlap}
        assert all(0 <= item.random_key < 2**31 for item in items)
    # A second import adds only the new utterances' items, in the projects' languages.
    run_import(corpus, {"b.csv": b"id,text,emotion\n4,d,joy\n"}, {**GENERIC, "language": "mr"})
    assert ProjectItem.objects.filter(project=everyone).count() == 4
    assert ProjectItem.objects.filter(project=hindi_only).count() == 3
# -- resource limits on every input (issue 18.5) ---------------------------------------------------------------


def test_a_parquet_bomb_obeys_the_line_limit_of_csv(corpus, run_import, emotion_labels, settings):
    # A few kB on disk: one 5 MB text repeated in 40 cells of one row (dictionary-encoded and compressed).
    settings.IMPORT_MAX_ZIP_RATIO = 10**9  # the page ratio is tested below; here the row limit must catch it
    big = pa.DictionaryArray.from_arrays(pa.array([0], pa.int32()), pa.array(["a" * (5 * 1024 * 1024)]))
    table = pa.table({"id": ["x"], "text": ["t"], "emotion": ["joy"], **{f"c{i}": big for i in range(40)}})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", use_dictionary=True)
    assert len(buffer.getvalue()) < 100_000
    job = run_import(corpus, {"bomb.parquet": buffer.getvalue()}, GENERIC)
    assert job.status == JobStatus.FAILED
    [(file, row, _, reason)] = errors_of(job)
    assert (file, row) == ("bomb.parquet", 1)
    assert "row 1 holds 209,715,2" in reason and "IMPORT_MAX_LINE_BYTES" in reason
    assert not Utterance.objects.filter(corpus=corpus).exists()


def test_a_parquet_file_that_decompresses_far_beyond_its_size_is_refused(corpus, run_import, emotion_labels):
    # Rows of 10 kB each (under the row limit): only the ratio of unpacked pages to file size gives it away.
    rows = 1000
    table = pa.table({"id": [str(i) for i in range(rows)], "text": ["x" * 10_000] * rows, "emotion": ["joy"] * rows})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", use_dictionary=False)
    job = run_import(corpus, {"dense.parquet": buffer.getvalue()}, GENERIC)
    assert job.status == JobStatus.FAILED
    assert "IMPORT_MAX_ZIP_RATIO" in errors_of(job)[0][3]


def test_parquet_rows_under_the_limit_import_in_slices(corpus, run_import, emotion_labels, monkeypatch):
    from corpora.importing import readers

    monkeypatch.setattr(readers, "PARQUET_SLICE_BYTES", 64)  # several slices per batch
    table = pa.table({"id": [f"r{i}" for i in range(30)], "text": [f"text number {i}" for i in range(30)],
                      "emotion": ["joy", "anger", "sadness"] * 10})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    job = run_import(corpus, {"ok.parquet": buffer.getvalue()}, GENERIC)
    assert job.status == JobStatus.SUCCEEDED and job.counts["created"] == 30
    assert Utterance.objects.get(external_id="r29").text == "text number 29"


def test_the_csv_header_duplicate_check_is_linear(corpus, run_import, emotion_labels):
    import time

    header = ",".join(["id", "text", "emotion"] + [f"extra{i}" for i in range(50_000)] + ["extra7"])
    started = time.process_time()
    job = run_import(corpus, {"wide.csv": (header + "\n").encode()}, GENERIC)
    assert job.status == JobStatus.FAILED and "'extra7' more than once" in errors_of(job)[0][3]
    # The quadratic check took about 23 s of CPU for this header; a linear one takes a fraction of a second.
    assert time.process_time() - started < 5


def test_uploaded_files_are_deleted_when_the_job_ends(corpus, run_import, emotion_labels, settings):
    from django.core.files.storage import default_storage

    settings.IMPORT_UPLOADS_KEEP_DAYS = 0
    ok = run_import(corpus, {"ok.csv": b"id,text,emotion\na,hello,joy\n"}, GENERIC)
    bad = run_import(corpus, {"bad.csv": b"id,text,emotion\n" + b"x" * (settings.IMPORT_MAX_LINE_BYTES + 1)}, GENERIC)
    assert (ok.status, bad.status) == (JobStatus.SUCCEEDED, JobStatus.FAILED)
    for job in (ok, bad):
        name = job.params["files"][0]["name"]
        assert name.startswith(f"imports/{job.pk}/") and not default_storage.exists(name)
        assert job.params["uploads_deleted_at"]


def test_uploads_are_kept_the_configured_days_then_swept(corpus, run_import, emotion_labels, settings):
    from datetime import timedelta

    from django.core.files.storage import default_storage
    from django.utils import timezone

    from corpora.importing.services import import_uploads_sweep

    settings.IMPORT_UPLOADS_KEEP_DAYS = 3
    job = run_import(corpus, {"ok.csv": b"id,text,emotion\na,hello,joy\n"}, GENERIC)
    name = job.params["files"][0]["name"]
    assert default_storage.exists(name)
    assert import_uploads_sweep(now=timezone.now() + timedelta(days=2)) == 0 and default_storage.exists(name)
    assert import_uploads_sweep(now=timezone.now() + timedelta(days=3, minutes=1)) == 1
    assert not default_storage.exists(name)
    job.refresh_from_db()
    assert job.params["uploads_deleted_at"] and job.counts["created"] == 1  # the job's record stays
    assert import_uploads_sweep(now=timezone.now() + timedelta(days=30)) == 0  # once
