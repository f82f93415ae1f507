"""Column mapping: which column of a file feeds which field of an utterance or of its labels.

A mapping is JSON. Each utterance field names a column, or a template that combines columns
(``"{Dialogue_ID}"`` style, e.g. ``"dev-dia{Dialogue_ID}_utt{Utterance_ID}"``)::

    {"text": "Utterance", "language": "lang", "speaker": "Speaker", "conversation": "Dialogue_ID",
     "turn_index": "Utterance_ID", "external_id": "id", "audio": "path", "start": "StartTime",
     "end": "EndTime",
     "labels": {"emotion": "Emotion",                       # one column per question ...
                "emotions": {"anger": "anger", "joy": "joy"}},  # ... or label -> 0/1 (0-3) column
     "metadata": ["Season", "Episode"],                     # or {"key": "column"}
     "extra_columns": "error" | "ignore" | "metadata",
     "target": "new" | "existing",     # existing: rows only add labels to utterances found by external_id
     "origin": "human" | "model" | "llm", "model_version": "...", "rater": "...", "rater_column": "...",
     "rater_numbering": "emobank-reader",  # external_rater = "<prefix>-<n>" for the nth rating of an item
     "perspective": "reader",
     "split": "partition",              # the split (train/dev/test) of each row; else the file's name or folder
     "raters": {"question": "emotions", "columns": "Annotator-*",   # one column per rater (a list, or a glob)
                "label_column": "emotion", "prefix": "mar:"}}

``raters`` reads per-rater files without reshaping. Each listed column is one rater (named by its header, after
``prefix``). Without ``label_column`` a rater's cell holds their whole answer to ``question`` (a label, labels
joined with ``;``, a number). With ``label_column`` (multi-label questions) a row is one (item, label) pair and a
rater's cell holds their level for that label: 0/1, or 0–3 with intensities; the rows of one item are gathered
into one answer per rater. A blank cell is "this rater gave no answer" (missing, not 0); a rater whose cells are
all blank did not rate the item. The README's import section documents every key.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from annotation.models import Origin

FIELD_NAMES = ("text", "language", "speaker", "conversation", "turn_index", "external_id", "audio", "start", "end",
               "split")
MAPPING_KEYS = frozenset(FIELD_NAMES) | {
    "labels", "metadata", "extra_columns", "target", "origin", "model_version", "rater", "rater_column",
    "rater_numbering", "perspective", "split", "raters",
}
RATERS_KEYS = frozenset({"question", "columns", "label_column", "prefix"})
EXTRA_COLUMN_POLICIES = ("error", "ignore", "metadata")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class MappingError(ValueError):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class Template:
    """A column name, or literal text with ``{column}`` placeholders."""

    source: str
    parts: tuple[tuple[bool, str], ...]  # (is_column, text)

    @classmethod
    def parse(cls, source: str) -> Template:
        if "{" not in source:
            return cls(source, ((True, source),))
        parts: list[tuple[bool, str]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(source):
            if match.start() > pos:
                parts.append((False, source[pos:match.start()]))
            parts.append((True, match.group(1)))
            pos = match.end()
        if pos < len(source):
            parts.append((False, source[pos:]))
        return cls(source, tuple(parts))

    @property
    def columns(self) -> list[str]:
        return [text for is_column, text in self.parts if is_column]

    @property
    def is_column(self) -> bool:
        return len(self.parts) == 1 and self.parts[0][0]

    def column_for_errors(self) -> str:
        columns = self.columns
        return columns[0] if len(columns) == 1 else self.source

    def render(self, values: Mapping[str, Any]) -> Any:
        """The raw cell for a plain column (keeps its type); a string for a template."""
        if self.is_column:
            return values.get(self.parts[0][1])
        out = []
        for is_column, text in self.parts:
            if is_column:
                value = values.get(text)
                out.append("" if value is None else str(value).strip())
            else:
                out.append(text)
        return "".join(out)


@dataclass(frozen=True)
class LabelSpec:
    """Where one question's answer comes from: one column, or one 0/1 (or 0–3) column per label."""

    question: str
    column: Template | None = None
    label_columns: tuple[tuple[str, str], ...] = ()  # (label, column)

    @property
    def columns(self) -> list[str]:
        if self.column is not None:
            return self.column.columns
        return [column for _, column in self.label_columns]

    def column_for_errors(self) -> str:
        if self.column is not None:
            return self.column.column_for_errors()
        return ",".join(self.columns)


@dataclass(frozen=True)
class RaterColumns:
    """One column per rater: each holds that rater's answer to ``question`` (or, with ``label_column``, their level
    for the row's label). ``pattern`` is a glob over the header until ``mapping_resolve`` turns it into columns."""

    question: str
    columns: tuple[str, ...] = ()
    pattern: str = ""
    label_column: str = ""
    prefix: str = ""

    def rater(self, column: str) -> str:
        return f"{self.prefix}{column}"[:200]


@dataclass(frozen=True)
class Provenance:
    origin: str = Origin.HUMAN
    model_version: str = ""
    rater: str = ""
    rater_column: str = ""
    rater_numbering: str = ""
    perspective: str = ""


@dataclass(frozen=True)
class ColumnMapping:
    fields: dict[str, Template]
    labels: tuple[LabelSpec, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()  # (key, column)
    extra_columns: str = "error"
    target: str = "new"
    provenance: Provenance = field(default_factory=Provenance)
    raters: RaterColumns | None = None

    def get(self, name: str) -> Template | None:
        return self.fields.get(name)

    def columns_used(self) -> set[str]:
        used: set[str] = set()
        for template in self.fields.values():
            used.update(template.columns)
        for spec in self.labels:
            used.update(spec.columns)
        used.update(column for _, column in self.metadata)
        if self.provenance.rater_column:
            used.add(self.provenance.rater_column)
        if self.raters is not None:
            used.update(self.raters.columns)
            if self.raters.label_column:
                used.add(self.raters.label_column)
        return used


def _str_option(raw: Mapping[str, Any], key: str, errors: dict[str, str], *, where: str) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[f"{where}.{key}"] = "must be a string"
        return ""
    return value.strip()


def mapping_parse(raw: Any, *, where: str = "mapping") -> ColumnMapping:
    """Check a mapping's shape (not yet against a file's header); raise MappingError naming each bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise MappingError({where: "must be an object mapping fields to column names"})
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - MAPPING_KEYS)
    if unknown:
        errors[where] = f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(MAPPING_KEYS))}"
    fields: dict[str, Template] = {}
    for name in FIELD_NAMES:
        value = raw.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > 500:
            errors[f"{where}.{name}"] = "must be a column name (or a template like 'dia{Dialogue_ID}')"
            continue
        fields[name] = Template.parse(value)
    labels: list[LabelSpec] = []
    raw_labels = raw.get("labels") or {}
    if not isinstance(raw_labels, dict):
        errors[f"{where}.labels"] = "must map question keys to a column, or to {label: column}"
    else:
        for question, source in raw_labels.items():
            if isinstance(source, str) and source:
                labels.append(LabelSpec(question=str(question), column=Template.parse(source)))
            elif isinstance(source, dict) and source and all(isinstance(c, str) and c for c in source.values()):
                labels.append(LabelSpec(question=str(question), label_columns=tuple((str(k), v) for k, v in source.items())))
            elif isinstance(source, list) and source and all(isinstance(c, str) and c for c in source):
                labels.append(LabelSpec(question=str(question), label_columns=tuple((c, c) for c in source)))
            else:
                errors[f"{where}.labels.{question}"] = "must be a column name, a list of columns or {label: column}"
    metadata: list[tuple[str, str]] = []
    raw_meta = raw.get("metadata") or []
    if isinstance(raw_meta, list) and all(isinstance(c, str) and c for c in raw_meta):
        metadata = [(c, c) for c in raw_meta]
    elif isinstance(raw_meta, dict) and all(isinstance(c, str) and c for c in raw_meta.values()):
        metadata = [(str(k), v) for k, v in raw_meta.items()]
    else:
        errors[f"{where}.metadata"] = "must be a list of columns or {key: column}"
    extra = raw.get("extra_columns", "error")
    if extra not in EXTRA_COLUMN_POLICIES:
        errors[f"{where}.extra_columns"] = f"must be one of {', '.join(EXTRA_COLUMN_POLICIES)}"
    target = raw.get("target", "new")
    if target not in ("new", "existing"):
        errors[f"{where}.target"] = "must be 'new' (rows are utterances) or 'existing' (rows label utterances by external_id)"
    origin = raw.get("origin", Origin.HUMAN)
    if origin not in Origin.values:
        errors[f"{where}.origin"] = f"must be one of {', '.join(Origin.values)}"
    provenance = Provenance(
        origin=str(origin),
        model_version=_str_option(raw, "model_version", errors, where=where),
        rater=_str_option(raw, "rater", errors, where=where),
        rater_column=_str_option(raw, "rater_column", errors, where=where),
        rater_numbering=_str_option(raw, "rater_numbering", errors, where=where),
        perspective=_str_option(raw, "perspective", errors, where=where),
    )
    if provenance.origin != Origin.HUMAN and not provenance.model_version:
        errors[f"{where}.model_version"] = "labels made by a model or an LLM need the model_version that made them"
    raters = _raters_parse(raw.get("raters"), errors, where=f"{where}.raters")
    if raters is not None and (provenance.rater_column or provenance.rater_numbering):
        errors[f"{where}.raters"] = "raters are named by their columns; leave out rater_column and rater_numbering"
    if raters is not None and provenance.origin != Origin.HUMAN:
        errors[f"{where}.raters"] = "per-rater columns hold human ratings (origin human)"
    if target == "existing":
        if "external_id" not in fields:
            errors[f"{where}.external_id"] = "rows that label existing utterances must name the external_id column"
        if not labels:
            errors[f"{where}.labels"] = "rows that label existing utterances must map at least one label column"
    elif "text" not in fields and "audio" not in fields:
        errors[f"{where}.text"] = "map the text column (or an audio column)"
    if target == "existing" and raters is not None:
        errors[f"{where}.raters"] = "per-rater columns come with their utterances (target 'new')"
    if errors:
        raise MappingError(errors)
    return ColumnMapping(
        fields=fields, labels=tuple(labels), metadata=tuple(metadata), extra_columns=str(extra), target=str(target),
        provenance=provenance, raters=raters,
    )


def _raters_parse(raw: Any, errors: dict[str, str], *, where: str) -> RaterColumns | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors[where] = 'must be an object: {"question": ..., "columns": [...] or "Annotator-*", "label_column": ...}'
        return None
    unknown = sorted(set(raw) - RATERS_KEYS)
    if unknown:
        errors[where] = f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(RATERS_KEYS))}"
    question, columns = raw.get("question"), raw.get("columns")
    if not isinstance(question, str) or not question:
        errors[f"{where}.question"] = "name the question the raters answer"
    pattern, listed = "", ()
    if isinstance(columns, str) and columns.strip():
        pattern = columns.strip()
    elif isinstance(columns, list) and columns and all(isinstance(c, str) and c for c in columns):
        if len(set(columns)) != len(columns):
            errors[f"{where}.columns"] = "lists a column twice"
        listed = tuple(columns)
    else:
        errors[f"{where}.columns"] = "a list of the raters' columns, or a pattern such as 'Annotator-*'"
    label_column = _str_option(raw, "label_column", errors, where=where)
    prefix = _str_option(raw, "prefix", errors, where=where)
    return RaterColumns(question=str(question), columns=listed, pattern=pattern, label_column=label_column,
                        prefix=prefix)


def mapping_resolve(mapping: ColumnMapping, header: list[str]) -> ColumnMapping:
    """The mapping with a rater-column pattern replaced by the header's matching columns (MappingError if none)."""
    raters = mapping.raters
    if raters is None or not raters.pattern:
        return mapping
    matched = tuple(h for h in header if h and fnmatch.fnmatchcase(h, raters.pattern) and h != raters.label_column)
    if not matched:
        raise MappingError({"mapping.raters.columns": f"no column matches {raters.pattern!r} "
                                                      f"(columns: {', '.join(h for h in header if h)})"})
    return replace(mapping, raters=replace(raters, columns=matched, pattern=""))


def mapping_check_header(mapping: ColumnMapping, header: list[str], *, optional: set[str] | None = None) -> tuple[list[str], list[str]]:
    """(missing columns, extra columns) of a file's header against a mapping.

    Columns with an empty name (spreadsheet artefacts such as MahaEmotions' trailing ``,,``) are never
    extra; ``optional`` columns may be absent.
    """
    present = set(header)
    missing = sorted(c for c in mapping.columns_used() - present if c not in (optional or set()))
    extra = [h for h in header if h and h not in mapping.columns_used()]
    return missing, extra

