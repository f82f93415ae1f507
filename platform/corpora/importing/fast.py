"""The fast path for plain tabular files: CSV/TSV rows whose fields are plain columns, without audio.

Most corpora (and the million-row benchmark) are such files. Rows are handled as lists of cells in a
tight loop instead of one dict, draft object and validator call each: languages, turn indexes and
label answers are validated once per distinct value (cached), and only rows that look wrong in any
way go through the general ``RowValidator``, so every error is the very one the general path gives.
Accepted rows are kept column-wise (``CompactRows``) for the writer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from annotation.schema import Question
from corpora.importing.presets import FilePlan
from corpora.importing.readers import CellRow, RawRow
from corpora.importing.validation import MAX_ID_LENGTH, RowInvalid, RowValidator, UtteranceDraft
from jobs.services import RowError

_SIMPLE_FIELDS = ("text", "language", "speaker", "conversation", "turn_index", "external_id")
_CACHE_LIMIT = 50_000
_INVALID = object()  # cache marker: the value makes the row invalid; the general validator says why


@dataclass
class CompactRows:
    """Accepted utterances of one chunk, column-wise; values are raw (COPY escaping is the writer's job)."""

    metadata: str  # JSON of the metadata every row of the file carries
    rater: str
    external_ids: list[str] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)
    turns: list[int | None] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    answers: list[str | None] = field(default_factory=list)  # JSON of the answers; None: unlabelled

    def __len__(self) -> int:
        return len(self.hashes)


# One valid row: (row, external id, conversation, turn, speaker, language, text, content hash, answers JSON).
FastRow = tuple[int, str, str, "int | None", str, str, str, str, "str | None"]


def fast_path_fits(*, plan: FilePlan, fmt: str, encoding: str, header: list[str], has_audio: bool,
                   metadata_table: dict[str, dict[str, Any]]) -> bool:
    """Whether every row of this file can go through ``FastRowReader`` (else the general path reads it)."""
    mapping = plan.mapping
    if fmt not in ("csv", "tsv") or not encoding.startswith("utf-8") or plan.role != "utterances" or has_audio:
        return False
    if set(mapping.fields) - set(_SIMPLE_FIELDS) or not all(t.is_column for t in mapping.fields.values()):
        return False
    if "text" not in mapping.fields or mapping.metadata:
        return False
    if mapping.extra_columns == "metadata" and any(h and h not in mapping.columns_used() for h in header):
        return False
    if metadata_table and "external_id" in mapping.fields:
        return False
    if mapping.provenance.rater_column or mapping.provenance.rater_numbering or mapping.raters is not None:
        return False
    used = mapping.columns_used()
    present = set(header)
    return used <= present


class FastRowReader:
    """Validates cell rows of one file: the common valid row in a few dict lookups, the rest via RowValidator."""

    def __init__(self, *, plan: FilePlan, validator: RowValidator, header: list[str], questions: list[Question]):
        self.validator = validator
        self.header = header
        index = {name: i for i, name in enumerate(header) if name}
        fields = plan.mapping.fields

        def column(name: str) -> int | None:
            template = fields.get(name)
            return None if template is None else index[template.parts[0][1]]

        self.i_text = column("text")
        self.i_language = column("language")
        self.i_speaker = column("speaker")
        self.i_conversation = column("conversation")
        self.i_turn = column("turn_index")
        self.i_external_id = column("external_id")
        self.label_columns = sorted({index[c] for spec in plan.mapping.labels for c in spec.columns})
        self.label_names = [header[i] for i in self.label_columns]
        self.fixed_language = validator.fixed_language
        self.metadata = json.dumps(dict(plan.constant_metadata), ensure_ascii=False)
        split = str(plan.constant_metadata.get("split") or "")
        # content_hash()'s split suffix (validation.py), constant per file here.
        self.hash_suffix = f"|split{len(split)}:{split}" if split else ""
        self.rater = validator._rater({})
        self.blank_cells = 0
        self._blanks: dict[tuple[str, ...], int] = {}
        self._languages: dict[str, Any] = {}
        self._turns: dict[str, Any] = {}
        self._answers: dict[tuple[str, ...], Any] = {}

    def _language(self, cell: str) -> Any:
        try:
            return self.validator.language(cell, column="language", row=0)
        except ValueError:
            return _INVALID

    @staticmethod
    def _turn(cell: str) -> Any:
        try:
            turn = int(cell)
        except ValueError:
            return _INVALID
        return turn if 0 <= turn <= 2**31 - 1 else _INVALID

    def _answers_for(self, cells: tuple[str, ...]) -> Any:
        errors: list[RowError] = []
        before = self.validator.blank_cells
        answers = self.validator._answers(dict(zip(self.label_names, cells)), 0, errors)
        if errors:
            return _INVALID
        blank = self.validator.blank_cells - before
        self.validator.blank_cells = before  # counted per row in read(), not once per distinct cells
        if blank:
            self._blanks[cells] = blank
        return None if answers is None else json.dumps(answers, ensure_ascii=False)

    def read(self, chunk: list[CellRow], errors: list[RowError], on_invalid: Callable[[], None]) -> list[FastRow]:
        """The valid rows of a chunk; row errors are appended to ``errors`` (on_invalid called per bad row)."""
        out: list[FastRow] = []
        i_text, i_language, i_speaker, i_conversation, i_turn, i_external_id = (
            self.i_text, self.i_language, self.i_speaker, self.i_conversation, self.i_turn, self.i_external_id)
        label_columns = self.label_columns
        fixed_language = self.fixed_language
        languages, turns, answers_cache, blanks = self._languages, self._turns, self._answers, self._blanks
        suffix = self.hash_suffix
        blake2b = hashlib.blake2b
        invalid = _INVALID
        for number, cells, error in chunk:
            if cells is None:
                self._general(number, cells, error, errors, out, on_invalid)
                continue
            assert i_text is not None
            text = cells[i_text].strip()
            if not text or "\x00" in text:
                self._general(number, cells, error, errors, out, on_invalid)
                continue
            external_id = cells[i_external_id].strip() if i_external_id is not None else ""
            conversation = cells[i_conversation].strip() if i_conversation is not None else ""
            speaker = cells[i_speaker].strip() if i_speaker is not None else ""
            if len(external_id) > MAX_ID_LENGTH or len(conversation) > MAX_ID_LENGTH or len(speaker) > MAX_ID_LENGTH:
                self._general(number, cells, error, errors, out, on_invalid)
                continue
            language: Any = fixed_language
            if i_language is not None:
                cell = cells[i_language].strip()
                if cell or not fixed_language:
                    language = languages.get(cell)
                    if language is None:
                        language = languages[cell] = self._language(cell)
            if not language or language is invalid:
                self._general(number, cells, error, errors, out, on_invalid)
                continue
            turn: Any = None
            turn_text = ""
            if i_turn is not None:
                cell = cells[i_turn].strip()
                if cell:
                    turn = turns.get(cell)
                    if turn is None:
                        if len(turns) > _CACHE_LIMIT:
                            turns.clear()
                        turn = turns[cell] = self._turn(cell)
                    if turn is invalid:
                        self._general(number, cells, error, errors, out, on_invalid)
                        continue
                    turn_text = str(turn)
            answers: Any = None
            if label_columns:
                key = tuple([cells[i] for i in label_columns])
                answers = answers_cache.get(key, invalid)
                if answers is invalid:
                    answers = self._answers_for(key)
                    if len(answers_cache) > _CACHE_LIMIT:
                        answers_cache.clear()
                    answers_cache[key] = answers
                    if answers is invalid:
                        self._general(number, cells, error, errors, out, on_invalid)
                        continue
                if blanks:
                    self.blank_cells += blanks.get(key, 0)
            # content_hash() of validation.py, inlined: it runs once per row.
            joined = (f"{len(language)}:{language}{len(conversation)}:{conversation}{len(turn_text)}:{turn_text}"
                      f"{len(speaker)}:{speaker}{len(text)}:{text}0:{len(external_id)}:{external_id}{suffix}")
            digest = blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
            out.append((number, external_id, conversation, turn, speaker, language, text, digest, answers))
        return out

    def _general(self, number: int, cells: list[str] | None, error: str, errors: list[RowError],
                 out: list[FastRow], on_invalid: Callable[[], None]) -> None:
        """A row the fast checks did not pass: the general validator gives its errors (or, rarely, accepts it)."""
        values = dict(zip(self.header, cells)) if cells is not None else {}
        try:
            draft = self.validator.validate(RawRow(number, values, error=error))
        except RowInvalid as exc:
            errors.extend(exc.errors)
            on_invalid()
            return
        assert isinstance(draft, UtteranceDraft)
        answers = None if draft.answers is None else json.dumps(draft.answers, ensure_ascii=False)
        out.append((number, draft.external_id, draft.conversation, draft.turn_index, draft.speaker,
                    draft.language, draft.text, draft.content_hash, answers))
