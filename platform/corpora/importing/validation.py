"""Turn one raw row into a validated utterance (with its labels) or a label for an existing utterance.

Nothing here touches the database: languages are only normalised (rows are created when the import
is written) and answers are checked against the schema version's parsed questions, with a cache so a
million rows with a dozen distinct labels cost a dozen validations.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from annotation.schema import Question, SchemaError, is_empty_answer, validate_answers
from corpora.importing.mapping import LabelSpec, Template
from corpora.importing.presets import FilePlan, split_normalise
from corpora.importing.readers import FileRejected, RawRow
from corpora.languages import UnknownLanguageError, normalise_language_tag
from jobs.services import RowError

MAX_ID_LENGTH = 200
EMPTY_LIST = "[]"  # a multi-label cell that chose no label ("none of these"); an empty cell is no answer
_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$")
_VALIDATION_CACHE_LIMIT = 50_000


class RowInvalid(Exception):
    """Collects the errors of one row."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__("; ".join(map(str, errors)))


@dataclass
class UtteranceDraft:
    row: int
    external_id: str
    conversation: str
    turn_index: int | None
    speaker: str
    language: str
    text: str
    audio_name: str  # member of the audio bundle; replaced by the storage name once stored
    audio_data: bytes | None
    audio_digest: str
    audio_duration_s: float | None
    audio_sample_rate: int | None
    start_s: float | None
    end_s: float | None
    metadata: dict[str, Any]
    answers: dict[str, Any] | None
    rater: str
    content_hash: str = ""
    split: str = ""
    base_hash: str = ""  # the content hash without the split: how utterances imported before splits counted
    # Answers of further raters of the same row (per-rater columns): (rater, answers).
    more_labels: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class LabelDraft:
    """A label row for an utterance found by external id (imported earlier or earlier in this job)."""

    row: int
    external_id: str
    answers: dict[str, Any]
    rater: str


def content_hash(*, language: str, conversation: str, turn_index: int | None, speaker: str, text: str,
                 audio_digest: str, external_id: str, split: str = "") -> str:
    """blake2b-128 hex of what makes an utterance itself; the same row twice hashes the same.

    The external id is part of it: EmoBank holds distinct sentences with the same text (".."), each
    with its own ratings, and a source's id says they are different items. So is the split: a test row whose
    text repeats a train text is a test item of its own (the import reports such texts; exports keep them in one
    split).
    """
    turn = "" if turn_index is None else str(turn_index)
    # Length-prefixed, so no two different field tuples give the same byte string; no split, no suffix (the
    # hashes of rows without a split stay what they were).
    joined = (f"{len(language)}:{language}{len(conversation)}:{conversation}{len(turn)}:{turn}{len(speaker)}:{speaker}"
              f"{len(text)}:{text}{len(audio_digest)}:{audio_digest}{len(external_id)}:{external_id}"
              + (f"|split{len(split)}:{split}" if split else ""))
    return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_seconds(raw: Any) -> float:
    """Seconds from a number or a timestamp such as 00:20:57,256 (MELD) or 1:02.5."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    else:
        text = str(raw).strip()
        match = _TIME.match(text)
        if match:
            hours, minutes, seconds = match.groups()
            value = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a time (seconds, or HH:MM:SS,mmm)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{raw!r} is not a time of zero seconds or more")
    return value


class RowValidator:
    """Validates the rows of one file against its plan and the schema's questions."""

    def __init__(self, *, plan: FilePlan, file_name: str, questions: list[Question], header: list[str],
                 audio_reader: Any = None, metadata_table: dict[str, dict[str, Any]] | None = None):
        self.plan = plan
        self.file = file_name
        self.mapping = plan.mapping
        self.questions = {q.key: q for q in questions}
        self.question_list = questions
        self.audio_reader = audio_reader  # callable(name) -> (bytes, AudioInfo); raises AudioRejected
        self.metadata_table = metadata_table or {}
        self.header = header
        self._languages: dict[str, str | Exception] = {}
        self._answers_cache: dict[Any, dict[str, Any] | SchemaError] = {}
        self._label_maps = {
            q.key: {**{label.casefold(): label for label in q.labels}, **{label: label for label in q.labels}}
            for q in questions
        }
        present = set(header)
        self._missing_optional = {c for c in plan.optional_columns if c not in present}
        self._extra = [h for h in header if h and h not in self.mapping.columns_used()]
        self.blank_cells = 0  # label cells left blank: a rater who gave no answer for that label
        self.fixed_language = ""
        if plan.language:
            self.fixed_language = self.language(plan.language, column="language")
        for spec in self.mapping.labels:
            if spec.question not in self.questions:
                raise FileRejected(file_name, f"the mapping labels question {spec.question!r}, which the schema lacks "
                                              f"(questions: {', '.join(self.questions)})")
            question = self.questions[spec.question]
            if spec.label_columns and question.type != "multi_label":
                raise FileRejected(file_name, f"question {spec.question!r} is {question.type}; one column per label "
                                              "only fits a multi_label question")
            for label, _column in spec.label_columns:
                if label not in question.labels:
                    raise FileRejected(file_name, f"column for label {label!r} of question {spec.question!r}: "
                                                  f"no such label (labels: {', '.join(question.labels)})")
        raters = self.mapping.raters
        if raters is not None:
            rated = self.questions.get(raters.question)
            if rated is None:
                raise FileRejected(file_name, f"the raters answer question {raters.question!r}, which the schema "
                                              f"lacks (questions: {', '.join(self.questions)})")
            if raters.label_column and rated.type != "multi_label":
                raise FileRejected(file_name, f"question {raters.question!r} is {rated.type}; rows of one label "
                                              "each (label_column) only fit a multi_label question")
            if any(spec.question == raters.question for spec in self.mapping.labels):
                raise FileRejected(file_name, f"question {raters.question!r} is mapped both to label columns and "
                                              "to rater columns; map it once")

    # -- single fields --------------------------------------------------------------------------------------

    def language(self, raw: str, *, column: str, row: int | None = None) -> str:
        cached = self._languages.get(raw)
        if cached is None:
            try:
                cached = normalise_language_tag(raw)
            except UnknownLanguageError as exc:
                cached = exc
            self._languages[raw] = cached
        if isinstance(cached, Exception):
            if row is None:
                raise FileRejected(self.file, f"language: {cached}")
            raise ValueError(str(cached))
        return cached

    def _text_field(self, values: dict[str, Any], name: str, errors: list[RowError], row: int,
                    *, max_length: int = MAX_ID_LENGTH) -> str:
        template = self.mapping.get(name)
        if template is None:
            return ""
        text = _cell_text(template.render(values))
        if len(text) > max_length:
            errors.append(self._error(row, template, f"{name} is {len(text)} characters long; at most {max_length}"))
            return ""
        return text

    def _error(self, row: int, where: Template | LabelSpec | str, reason: str) -> RowError:
        column = where if isinstance(where, str) else where.column_for_errors()
        return RowError(reason=reason, file=self.file, row=row, column=column)

    # -- labels ---------------------------------------------------------------------------------------------

    def _level(self, question: Question, column: str, values: dict[str, Any]) -> int | None:
        """A label's level from its cell: 0/1 (0–3 with intensities); None for a blank cell (no answer)."""
        cell = _cell_text(values.get(column))
        if cell == "":
            self.blank_cells += 1
            return None
        try:
            level = int(float(cell))
            if level != float(cell):
                raise ValueError
        except ValueError:
            raise ValueError(f"column {column!r}: {cell!r} is not a whole number") from None
        top = 3 if question.intensity else 1
        if not 0 <= level <= top:
            hint = "" if question.intensity else " (0–3 intensities need the intensity option)"
            raise ValueError(f"column {column!r}: {level} is outside 0–{top}{hint}")
        return level

    def _answer(self, spec: LabelSpec, values: dict[str, Any]) -> Any:
        question = self.questions[spec.question]
        if spec.label_columns:
            # A blank cell is missing (null), a 0 is absent: an all-zero row answers "none of these".
            levels: dict[str, int | None] = {}
            for label, column in spec.label_columns:
                if column in self._missing_optional or column not in values:
                    continue  # the file has no column for this label (a language without that emotion)
                levels[label] = self._level(question, column, values)
            return None if all(level is None for level in levels.values()) else levels
        assert spec.column is not None
        return self._answer_from_cell(question, spec.column.render(values))

    def _answer_from_cell(self, question: Question, raw: Any) -> Any:
        """One question's answer from one cell: a label, labels joined by , ; or |, a number, text or segments."""
        if question.type == "numeric":
            cell = _cell_text(raw)
            if cell == "":
                return None
            try:
                number = float(cell)
            except ValueError:
                raise ValueError(f"{cell!r} is not a number") from None
            return int(number) if number.is_integer() and abs(number) < 2**53 else number
        if question.type == "multi_label":
            if isinstance(raw, list):  # JSONL and Parquet lists; [] is "none of these"
                return [self._label(question, str(item)) for item in raw]
            cell = _cell_text(raw)
            if cell == EMPTY_LIST:
                return []  # "none of these", as Sentio's CSV export writes it
            items = [p for p in re.split(r"[,;|]", cell) if p.strip()]
            return [self._label(question, item) for item in items] if items else None
        if question.type == "segments":
            if isinstance(raw, list):
                return raw
            cell = _cell_text(raw)
            try:
                return json.loads(cell) if cell else None
            except ValueError:
                raise ValueError("segments must be JSON: [{\"start\": s, \"end\": s, \"label\": l}]") from None
        if question.type == "single_choice":
            cell = _cell_text(raw)
            return self._label(question, cell) if cell else None
        return _cell_text(raw) or None  # text

    def _label(self, question: Question, cell: str) -> str:
        # Sources write labels in any case and with stray spaces ("respect", "Happiness "); the schema decides.
        cleaned = " ".join(cell.split())
        labels = self._label_maps[question.key]
        return labels.get(cleaned) or labels.get(cleaned.casefold()) or cleaned

    def _answers(self, values: dict[str, Any], row: int, errors: list[RowError]) -> dict[str, Any] | None:
        if not self.mapping.labels:
            return None
        answers: dict[str, Any] = {}
        by_question: dict[str, LabelSpec] = {}
        for spec in self.mapping.labels:
            by_question[spec.question] = spec
            try:
                answer = self._answer(spec, values)
            except ValueError as exc:
                errors.append(self._error(row, spec, f"{spec.question}: {exc}"))
                continue
            if not is_empty_answer(answer, self.questions[spec.question]):
                answers[spec.question] = answer
        return self._validated(answers, row, errors, by_question)

    def _validated(self, answers: dict[str, Any], row: int, errors: list[RowError],
                   by_question: dict[str, LabelSpec] | None = None) -> dict[str, Any] | None:
        """Answers checked against the schema (cached per distinct answers); None when there are none."""
        if not answers:
            return None
        by_question = by_question or {}
        key = _freeze(answers)
        cached = self._answers_cache.get(key)
        if cached is None:
            try:
                cached = validate_answers(self.question_list, answers)
            except SchemaError as exc:
                cached = exc
            if len(self._answers_cache) > _VALIDATION_CACHE_LIMIT:
                self._answers_cache.clear()
            self._answers_cache[key] = cached
        if isinstance(cached, SchemaError):
            for question_key, reason in cached.errors.items():
                spec_for = by_question.get(question_key)
                where: Template | LabelSpec | str = spec_for if spec_for is not None else question_key
                errors.append(self._error(row, where, f"{question_key}: {reason}"))
            return None
        return dict(cached)

    def rater_answers(self, values: dict[str, Any], row: int, errors: list[RowError]) -> list[tuple[str, dict[str, Any]]]:
        """Per-rater columns, one answer per cell: (rater, answers) of every rater whose cell is not blank."""
        raters = self.mapping.raters
        assert raters is not None and not raters.label_column
        question = self.questions[raters.question]
        out = []
        for column in raters.columns:
            raw = values.get(column)
            if _cell_text(raw) == "":
                self.blank_cells += 1
                continue
            try:
                answer = self._answer_from_cell(question, raw)
            except ValueError as exc:
                errors.append(self._error(row, column, f"{question.key}: {exc}"))
                continue
            if is_empty_answer(answer, question):
                continue
            answers = self._validated({question.key: answer}, row, errors, {question.key: LabelSpec(
                question=question.key, column=Template.parse(column))})
            if answers is not None:
                out.append((raters.rater(column), answers))
        return out

    def rater_levels(self, values: dict[str, Any], row: int, errors: list[RowError]) -> tuple[str, list[int | None]]:
        """A row of the long per-rater form: its label, and each rater column's level (None: blank)."""
        raters = self.mapping.raters
        assert raters is not None and raters.label_column
        question = self.questions[raters.question]
        cell = _cell_text(values.get(raters.label_column))
        label = self._label(question, cell) if cell else ""
        if label not in question.labels:
            errors.append(self._error(row, raters.label_column, f"{question.key}: {cell!r} is not one of the labels "
                                                               f"{list(question.labels)}"))
        levels: list[int | None] = []
        for column in raters.columns:
            try:
                levels.append(self._level(question, column, values))
            except ValueError as exc:
                errors.append(self._error(row, column, f"{question.key}: {exc}"))
                levels.append(None)
        return label, levels

    def gathered_answers(self, levels: dict[str, list[int | None]], row: int,
                         errors: list[RowError]) -> list[tuple[str, dict[str, Any]]]:
        """One answer per rater from an item's rows (label -> each rater's level): a rater whose every cell was
        blank did not rate the item; blank cells of the others stay unanswered (null)."""
        raters = self.mapping.raters
        assert raters is not None
        question = self.questions[raters.question]
        out = []
        for position, column in enumerate(raters.columns):
            answer = {label: given[position] for label, given in levels.items()}
            if all(level is None for level in answer.values()):
                continue
            answers = self._validated({question.key: answer}, row, errors)
            if answers is not None:
                out.append((raters.rater(column), answers))
        return out

    def _rater(self, values: dict[str, Any]) -> str:
        provenance = self.mapping.provenance
        rater = provenance.rater
        if provenance.rater_column:
            rater = _cell_text(values.get(provenance.rater_column))[:MAX_ID_LENGTH]
        # A human label needs someone to answer for it; unnamed ones came with the source.
        return rater or ("source" if provenance.origin == "human" else "")

    # -- rows -----------------------------------------------------------------------------------------------

    def validate(self, raw: RawRow) -> UtteranceDraft | LabelDraft:
        """A draft, or RowInvalid with every problem of the row."""
        row = raw.number
        if raw.error:
            raise RowInvalid([RowError(reason=f"row {raw.error}", file=self.file, row=row)])
        values = raw.values
        errors: list[RowError] = []
        if self.plan.role == "labels":
            return self._label_row(values, row, errors)
        return self._utterance_row(values, row, errors)

    def _label_row(self, values: dict[str, Any], row: int, errors: list[RowError]) -> LabelDraft:
        external_id = self._text_field(values, "external_id", errors, row)
        template = self.mapping.get("external_id")
        if not external_id and not errors and template is not None:
            errors.append(self._error(row, template, "the external id is empty"))
        answers = self._answers(values, row, errors)
        if answers is None and not errors:
            errors.append(RowError(reason="the row holds no label", file=self.file, row=row))
        if errors:
            raise RowInvalid(errors)
        assert answers is not None
        return LabelDraft(row=row, external_id=external_id, answers=answers, rater=self._rater(values))

    def _utterance_row(self, values: dict[str, Any], row: int, errors: list[RowError]) -> UtteranceDraft:
        mapping = self.mapping
        text_template = mapping.get("text")
        text = ""
        if text_template is not None:
            cell = text_template.render(values)
            text = "" if cell is None else str(cell).strip()
            if "\x00" in text:
                errors.append(self._error(row, text_template, "the text holds a NUL character"))
        external_id = self._text_field(values, "external_id", errors, row)
        conversation = self._text_field(values, "conversation", errors, row)
        speaker = self._text_field(values, "speaker", errors, row)
        language = self.fixed_language
        language_template = mapping.get("language")
        if language_template is not None:
            cell = _cell_text(language_template.render(values))
            if cell or not self.fixed_language:
                try:
                    language = self.language(cell, column=language_template.source, row=row)
                except ValueError as exc:
                    errors.append(self._error(row, language_template, str(exc)))
        elif not language:
            errors.append(RowError(reason="no language: map a language column or give a fixed language",
                                   file=self.file, row=row, column="language"))
        turn_index: int | None = None
        turn_template = mapping.get("turn_index")
        if turn_template is not None:
            cell = _cell_text(turn_template.render(values))
            if cell:
                try:
                    turn_index = int(cell)
                    if turn_index < 0 or turn_index > 2**31 - 1:
                        raise ValueError
                except ValueError:
                    errors.append(self._error(row, turn_template, f"turn index {cell!r} is not a whole number ≥ 0"))
        start_s = self._seconds(values, "start", row, errors)
        end_s = self._seconds(values, "end", row, errors)
        if start_s is not None and end_s is not None and end_s < start_s:
            template = mapping.get("end")
            assert template is not None
            errors.append(self._error(row, template, f"ends ({end_s:g} s) before it starts ({start_s:g} s)"))
        metadata: dict[str, Any] = dict(self.plan.constant_metadata)
        split_template = mapping.get("split")
        if split_template is not None:
            split_cell = _cell_text(split_template.render(values))
            if split_cell:
                metadata["split"] = split_normalise(split_cell)[:MAX_ID_LENGTH]
        split = str(metadata.get("split") or "")
        if external_id and external_id in self.metadata_table:
            metadata.update(self.metadata_table[external_id])
        for key, column in mapping.metadata:
            if column in values:
                cell = values[column]
                if cell is not None and cell != "" and not (isinstance(cell, str) and not cell.strip()):
                    metadata[key] = cell.strip() if isinstance(cell, str) else cell
        if mapping.extra_columns == "metadata":
            for column in self._extra:
                cell = values.get(column)
                if cell is not None and cell != "" and not (isinstance(cell, str) and not cell.strip()):
                    metadata[column] = cell.strip() if isinstance(cell, str) else cell
        answers = self._answers(values, row, errors)
        more_labels: list[tuple[str, dict[str, Any]]] = []
        if mapping.raters is not None and not mapping.raters.label_column:
            more_labels = self.rater_answers(values, row, errors)
        audio_name, audio_data, digest, duration, sample_rate = "", None, "", None, None
        audio_template = mapping.get("audio")
        if audio_template is not None:
            if any(_cell_text(values.get(c)) for c in audio_template.columns):
                audio_name = _cell_text(audio_template.render(values)).replace("\\", "/")
                while audio_name.startswith("./"):
                    audio_name = audio_name[2:]
            if audio_name and not errors:
                if self.audio_reader is None:
                    errors.append(self._error(row, audio_template,
                                              f"names audio {audio_name!r} but no audio folder or zip came with the import"))
                else:
                    try:
                        audio_data, info = self.audio_reader(audio_name)
                    except ValueError as exc:  # AudioRejected is a ValueError
                        errors.append(self._error(row, audio_template, str(exc)))
                    else:
                        digest = hashlib.blake2b(audio_data, digest_size=16).hexdigest()
                        duration, sample_rate = info.duration_s, info.sample_rate
        if not text and not audio_name and not any(e.column == getattr(text_template, "source", "") for e in errors):
            where: Template | str = text_template if text_template is not None else "text"
            errors.append(self._error(row, where, "the text is empty and the row has no audio"))
        if errors:
            raise RowInvalid(errors)
        return UtteranceDraft(
            row=row, external_id=external_id, conversation=conversation, turn_index=turn_index, speaker=speaker,
            language=language, text=text, audio_name=audio_name, audio_data=audio_data, audio_digest=digest,
            audio_duration_s=duration, audio_sample_rate=sample_rate, start_s=start_s, end_s=end_s,
            metadata=metadata, answers=answers, rater=self._rater(values), split=split, more_labels=more_labels,
            content_hash=content_hash(language=language, conversation=conversation, turn_index=turn_index,
                                      speaker=speaker, text=text, audio_digest=digest, external_id=external_id,
                                      split=split),
            base_hash=content_hash(language=language, conversation=conversation, turn_index=turn_index,
                                   speaker=speaker, text=text, audio_digest=digest, external_id=external_id)
            if split else "",
        )

    def _seconds(self, values: dict[str, Any], name: str, row: int, errors: list[RowError]) -> float | None:
        template = self.mapping.get(name)
        if template is None or any(c in self._missing_optional for c in template.columns):
            return None
        raw = template.render(values)
        if _cell_text(raw) == "":
            return None
        try:
            return parse_seconds(raw)
        except ValueError as exc:
            errors.append(self._error(row, template, str(exc)))
            return None


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("__list__", *(_freeze(v) for v in value))
    if isinstance(value, float):
        return ("__float__", value)
    return value

