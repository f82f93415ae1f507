"""Presets: the column mapping, label schema and provenance of known corpora, so they load unedited.

A preset turns (file name, header, options) into a ``FilePlan``. The user's ``mapping`` option is laid
over the preset's mapping key by key, so a preset can be adjusted (e.g. add an ``audio`` template)
without being rewritten. The split (train/dev/test) is given as the ``split`` option, or read from the file name
(``dev_sent_emo.csv``, ``validation.csv``) or its folder (``train/mar.csv``), or per row from a ``split`` column of
the mapping; it goes into each utterance's metadata and is part of its identity, so a test row whose text repeats
a train text stays a test item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from annotation.models import Origin
from corpora.importing.mapping import ColumnMapping, mapping_parse
from corpora.importing.readers import FileRejected

SPLIT_WORDS = {"train": "train", "training": "train", "dev": "dev", "validation": "validation", "val": "validation",
               "valid": "validation", "test": "test"}
PERSPECTIVE_WORDS = ("reader", "writer")


@dataclass(frozen=True)
class SchemaDefinition:
    slug: str
    name: str
    questions: list[dict[str, Any]]
    perspectives: list[str] = field(default_factory=list)
    description: str = ""


@dataclass(frozen=True)
class FilePlan:
    """How to read one file of a job."""

    role: str  # "utterances", "labels" (rows label existing utterances) or "metadata_table"
    mapping: ColumnMapping
    language: str = ""  # fixed language tag when the file has no language column
    constant_metadata: dict[str, Any] = field(default_factory=dict)
    optional_columns: frozenset[str] = frozenset()
    key_column: str = ""  # metadata_table: the column matched against utterance external ids
    multi_label_intensity: bool = False


def split_from_name(name: str) -> str:
    """The split a file's name says (``dev_sent_emo.csv``), else its nearest folder that says one (``test/x.csv``)."""
    path = PurePosixPath(name)
    for part in (path.stem, *reversed(path.parent.parts)):
        for word in re.split(r"[^a-z0-9]+", part.lower()):
            if word in SPLIT_WORDS:
                return SPLIT_WORDS[word]
    return ""


def split_normalise(value: str) -> str:
    """A split name as Sentio writes it: train, dev, validation, test for the usual words, else as given."""
    cleaned = value.strip()
    return SPLIT_WORDS.get(cleaned.lower(), cleaned)


def perspective_from_name(name: str) -> str:
    stem = PurePosixPath(name).stem.lower()
    found = [p for p in PERSPECTIVE_WORDS if p in stem]
    return found[0] if len(found) == 1 else ""


def _merged_mapping(base: dict[str, Any], options: dict[str, Any]) -> ColumnMapping:
    user = options.get("mapping") or {}
    merged = {**base, **user} if isinstance(user, dict) else user
    return mapping_parse(merged)


class Preset:
    name = ""
    schema: SchemaDefinition

    def schema_for(self, options: dict[str, Any]) -> SchemaDefinition:
        return self.schema

    def check_options(self, options: dict[str, Any], file_names: list[str]) -> dict[str, str]:
        """Errors (option -> reason) that can be found before any file is read."""
        return {}

    def plan(self, *, file_name: str, header: list[str], options: dict[str, Any]) -> FilePlan:
        raise NotImplementedError

    def _split(self, file_name: str, options: dict[str, Any]) -> str:
        return str(options.get("split") or split_from_name(file_name))


class MeldPreset(Preset):
    """MELD ``*_sent_emo.csv``: Friends dialogues; Dialogue_ID restarts in every split, so ids carry the split."""

    name = "meld"
    schema = SchemaDefinition(
        slug="meld", name="MELD emotion and sentiment",
        questions=[
            {"key": "emotion", "type": "single_choice", "title": "Emotion",
             "labels": ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]},
            {"key": "sentiment", "type": "single_choice", "title": "Sentiment",
             "labels": ["neutral", "positive", "negative"]},
        ],
        description="Ekman's six emotions plus neutral, and sentiment, as annotated in MELD.",
    )

    def plan(self, *, file_name: str, header: list[str], options: dict[str, Any]) -> FilePlan:
        split = self._split(file_name, options)
        prefix = f"{split}-" if split else ""
        mapping = _merged_mapping({
            "text": "Utterance", "speaker": "Speaker",
            "conversation": prefix + "{Dialogue_ID}", "turn_index": "Utterance_ID",
            "external_id": prefix + "dia{Dialogue_ID}_utt{Utterance_ID}",
            "start": "StartTime", "end": "EndTime",
            "labels": {"emotion": "Emotion", "sentiment": "Sentiment"},
            "metadata": {"sr_no": "Sr No.", "season": "Season", "episode": "Episode"},
            "extra_columns": "metadata", "origin": Origin.HUMAN, "rater": "meld-gold",
        }, options)
        return FilePlan(role="utterances", mapping=mapping, language=options.get("language") or "en",
                        constant_metadata={"split": split} if split else {},
                        optional_columns=frozenset({"Sr No.", "Season", "Episode", "StartTime", "EndTime"}))


MAHAEMOTIONS_LABELS = ["Happiness", "Sadness", "Respect", "Anger", "Fear", "Surprise", "Disgust", "Excitement",
                       "Pride", "Sarcasm", "Neutral"]
MAHAEMOTIONS_LLM = "gpt-4-chain-of-translation"


class MahaEmotionsPreset(Preset):
    """L3Cube-MahaEmotions: train labelled by GPT-4 (Chain-of-Translation), validation/test by people."""

    name = "mahaemotions"
    schema = SchemaDefinition(
        slug="mahaemotions", name="MahaEmotions (11 emotions)",
        questions=[{"key": "emotion", "type": "single_choice", "title": "Emotion", "labels": MAHAEMOTIONS_LABELS}],
        description="The 11 labels of L3Cube-MahaEmotions, Anger and Disgust separate.",
    )

    def check_options(self, options: dict[str, Any], file_names: list[str]) -> dict[str, str]:
        unknown = [n for n in file_names if not self._split(n, options)]
        if unknown:
            return {"split": f"cannot tell the split of {', '.join(unknown)} from the name (train labels come from "
                             "GPT-4, validation/test from people); pass split: train, validation or test"}
        return {}

    def plan(self, *, file_name: str, header: list[str], options: dict[str, Any]) -> FilePlan:
        split = self._split(file_name, options)
        provenance: dict[str, Any] = (
            {"origin": Origin.LLM, "model_version": MAHAEMOTIONS_LLM} if split == "train"
            else {"origin": Origin.HUMAN, "rater": "mahaemotions-gold"}
        )
        mapping = _merged_mapping({"text": "Tweet", "labels": {"emotion": "Label"}, "extra_columns": "metadata",
                                   **provenance}, options)
        return FilePlan(role="utterances", mapping=mapping, language=options.get("language") or "mr",
                        constant_metadata={"split": split} if split else {})


BRIGHTER_EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]


def _brighter_schema(intensity: bool) -> SchemaDefinition:
    return SchemaDefinition(
        slug="brighter-intensity" if intensity else "brighter",
        name="BRIGHTER emotions" + (" with intensity" if intensity else ""),
        questions=[{"key": "emotions", "type": "multi_label", "title": "Emotions", "labels": BRIGHTER_EMOTIONS,
                    "intensity": intensity}],
        description="Perceived emotions of BRIGHTER" + (", intensity 0–3" if intensity else ", present or not"),
    )


class BrighterPreset(Preset):
    """BRIGHTER / SemEval-2025 Task 11: id, text and one 0/1 (track A) or 0–3 (track B) column per emotion.

    Languages lack some emotion columns, so absent ones are allowed. The language comes from the
    ``language`` option or the file name (``mar.csv``, ``eng_train.csv``).
    """

    name = "brighter"
    schema = _brighter_schema(False)

    def schema_for(self, options: dict[str, Any]) -> SchemaDefinition:
        return _brighter_schema(bool(options.get("intensity")))

    def check_options(self, options: dict[str, Any], file_names: list[str]) -> dict[str, str]:
        if "intensity" in options and not isinstance(options["intensity"], bool):
            return {"intensity": "must be true (0–3 intensities) or false (0/1 labels)"}
        if options.get("language"):
            return {}
        from corpora.languages import UnknownLanguageError, normalise_language_tag

        unknown = []
        for name in file_names:
            try:
                normalise_language_tag(_language_word(name))
            except UnknownLanguageError:
                unknown.append(name)
        if unknown:
            return {"language": f"cannot tell the language of {', '.join(unknown)} from the name; pass language"}
        return {}

    def plan(self, *, file_name: str, header: list[str], options: dict[str, Any]) -> FilePlan:
        present = [e for e in BRIGHTER_EMOTIONS if e in header or e.capitalize() in header]
        if not present:
            raise FileRejected(file_name, f"has none of the BRIGHTER emotion columns {', '.join(BRIGHTER_EMOTIONS)}")
        columns = {e: (e if e in header else e.capitalize()) for e in present}
        split = self._split(file_name, options)
        mapping = _merged_mapping({
            "text": "text", "external_id": "id", "labels": {"emotions": columns}, "extra_columns": "metadata",
            "origin": Origin.HUMAN, "rater": "brighter-gold",
        }, options)
        return FilePlan(role="utterances", mapping=mapping,
                        language=options.get("language") or _language_word(file_name),
                        constant_metadata={"split": split} if split else {},
                        multi_label_intensity=bool(options.get("intensity")))


class BrighterRatersPreset(BrighterPreset):
    """BRIGHTER-style per-rater file in long form: one row per (text, emotion) with one column per annotator
    (``text_id, text, emotion, Annotator-1 … Annotator-k``) holding 0/1 (or 0–3 with ``intensity``); a blank cell
    is an annotator who gave no answer for that emotion. Raters are named ``<language>:<column>`` (annotators of
    different languages are different people); an all-zero answer is "no emotion", not "unlabelled"."""

    name = "brighter_raters"

    def plan(self, *, file_name: str, header: list[str], options: dict[str, Any]) -> FilePlan:
        from corpora.languages import UnknownLanguageError, normalise_language_tag

        language = options.get("language") or _language_word(file_name)
        try:
            tag = normalise_language_tag(str(language))
        except UnknownLanguageError:
            tag = str(language)  # the row validator reports the unknown language
        id_column = next((c for c in ("text_id", "id") if c in header), "text_id")
        label_column = next((c for c in ("emotion", "label", "Emotion") if c in header), "emotion")
        split = self._split(file_name, options)
        mapping = _merged_mapping({
            "text": "text", "external_id": id_column, "extra_columns": "metadata",
            "raters": {"question": "emotions", "columns": "Annotator*", "label_column": label_column,
                       "prefix": f"{tag}:"},
        }, options)
        return FilePlan(role="utterances", mapping=mapping, language=language,
                        constant_metadata={"split": split} if split else {},
                        multi_label_intensity=bool(options.get("intensity")))


def _language_word(name: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z-]+", PurePosixPath(name).stem) if w]
    candidates = [w for w in words if w.lower() not in SPLIT_WORDS and w.lower() not in ("track", "a", "b", "dev")]
    return candidates[0] if candidates else ""


EMOBANK_SCHEMA = SchemaDefinition(
    slug="emobank-vad", name="EmoBank valence, arousal, dominance",
    questions=[
        {"key": "valence", "type": "numeric", "title": "Valence", "min": 1, "max": 5},
        {"key": "arousal", "type": "numeric", "title": "Arousal", "min": 1, "max": 5},
        {"key": "dominance", "type": "numeric", "title": "Dominance", "min": 1, "max": 5},
    ],
    perspectives=["writer", "reader"],
    description="Valence-Arousal-Dominance on 1–5 (SAM scale), writer and reader perspectives, as in EmoBank.",
)
_RATINGS_HEADER = {"id", "V", "A", "D"}
_META_HEADER = {"id", "document", "category", "subcategory"}


def _ratings_plan(file_name: str, options: dict[str, Any]) -> FilePlan:
    perspective = str(options.get("perspective") or perspective_from_name(file_name))
    if perspective not in PERSPECTIVE_WORDS:
        raise FileRejected(file_name, "cannot tell whether these are reader or writer ratings; pass perspective")
    mapping = _merged_mapping({
        "external_id": "id", "target": "existing",
        "labels": {"valence": "V", "arousal": "A", "dominance": "D"},
        "origin": Origin.HUMAN, "rater_numbering": f"emobank-{perspective}", "perspective": perspective,
    }, options)
    return FilePlan(role="labels", mapping=mapping)


class EmoBankPreset(Preset):
    """EmoBank: emobank.csv (id, split, V, A, D, text; the aggregated ratings); meta.tsv joins source and
    genre into metadata; individual_*_ratings.csv in the same job add the per-rater annotations."""

    name = "emobank"
    schema = EMOBANK_SCHEMA

    def plan(self, *, file_name: str, header: list[str], options: dict[str, Any]) -> FilePlan:
        columns = set(header)
        if _META_HEADER <= columns:
            return FilePlan(role="metadata_table", mapping=mapping_parse({"text": "id", "extra_columns": "ignore"}),
                            key_column="id")
        if "text" not in columns and _RATINGS_HEADER <= columns:
            return _ratings_plan(file_name, options)
        mapping = _merged_mapping({
            "text": "text", "external_id": "id", "metadata": {"split": "split"},
            "labels": {"valence": "V", "arousal": "A", "dominance": "D"},
            "extra_columns": "metadata", "origin": Origin.HUMAN, "rater": "emobank-aggregate",
        }, options)
        return FilePlan(role="utterances", mapping=mapping, language=options.get("language") or "en")


class EmoBankRatingsPreset(Preset):
    """individual_reader_ratings.csv / individual_writer_ratings.csv: one row per rating of an utterance
    imported before from emobank.csv; raters are anonymous, so the nth rating of an item is rater n."""

    name = "emobank_ratings"
    schema = EMOBANK_SCHEMA

    def check_options(self, options: dict[str, Any], file_names: list[str]) -> dict[str, str]:
        given = options.get("perspective")
        if given is not None and given not in PERSPECTIVE_WORDS:
            return {"perspective": "must be reader or writer"}
        unknown = [n for n in file_names if not given and not perspective_from_name(n)]
        if unknown:
            return {"perspective": f"cannot tell from the name of {', '.join(unknown)} whether these are reader or "
                                   "writer ratings; pass perspective"}
        return {}

    def plan(self, *, file_name: str, header: list[str], options: dict[str, Any]) -> FilePlan:
        return _ratings_plan(file_name, options)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    MeldPreset(), MahaEmotionsPreset(), BrighterPreset(), BrighterRatersPreset(), EmoBankPreset(),
    EmoBankRatingsPreset())}
PRESET_OPTIONS = {"meld": {"split"}, "mahaemotions": {"split"}, "brighter": {"split", "intensity"},
                  "brighter_raters": {"split", "intensity"}, "emobank": {"perspective"},
                  "emobank_ratings": {"perspective"}}


def generic_plan(*, options: dict[str, Any], file_name: str = "") -> FilePlan:
    """No preset: the mapping says everything; the split comes from the option, the file's name or folder (unless
    the mapping names a split column)."""
    mapping = mapping_parse(options.get("mapping"))
    split = "" if "split" in mapping.fields else str(options.get("split") or split_from_name(file_name))
    return FilePlan(role="labels" if mapping.target == "existing" else "utterances", mapping=mapping,
                    language=str(options.get("language") or ""),
                    constant_metadata={"split": split} if split and mapping.target != "existing" else {})
