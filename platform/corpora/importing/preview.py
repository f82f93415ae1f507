"""Import preview: the first rows of one uploaded file, raw and as the import would read them, with each row's errors.

Runs the import's own pieces (options check, byte check, reader, plan, row validator) on the first rows only, so what
the preview says is what the import will do; nothing is stored. Audio is read from the zip when one is sent with the
preview (only the clips the previewed rows name are opened).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.files.uploadedfile import UploadedFile

from corpora.importing.mapping import MappingError
from corpora.importing.readers import FileRejected, file_check, format_for, rows_read
from corpora.importing.services import (
    ImportOptionsError,
    _ImportFailed,
    _original_name,
    import_file_plan,
    import_options_clean,
    import_schema,
)
from corpora.importing.validation import LabelDraft, RowInvalid, RowValidator

PREVIEW_ROWS = 10
# Text formats are cut at a line end after this many bytes: the preview needs the first rows, not the whole file.
PREVIEW_TEXT_BYTES = 1 << 20


def _copy_head(upload: UploadedFile | File, target: Path, *, whole: bool) -> None:
    upload.seek(0)
    with target.open("wb") as out:
        if whole:
            shutil.copyfileobj(upload, out)
            return
        head = upload.read(PREVIEW_TEXT_BYTES)
        if len(head) == PREVIEW_TEXT_BYTES and b"\n" in head:
            head = head[: head.rindex(b"\n") + 1]
        out.write(head)


def _plain(value: Any) -> Any:
    """A cell as JSON can carry it (Parquet cells may be numpy numbers, dates or NaN)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return str(value)


def _read_row(draft: Any) -> dict[str, Any]:
    if isinstance(draft, LabelDraft):
        return {"kind": "labels", "external_id": draft.external_id, "answers": draft.answers, "rater": draft.rater}
    return {
        "kind": "utterance", "external_id": draft.external_id, "text": draft.text, "language": draft.language,
        "speaker": draft.speaker, "conversation": draft.conversation, "turn_index": draft.turn_index,
        "audio": draft.audio_name, "audio_duration_s": draft.audio_duration_s, "start_s": draft.start_s,
        "end_s": draft.end_s, "metadata": draft.metadata, "answers": draft.answers, "rater": draft.rater,
    }


def _rejected(name: str, exc: FileRejected | MappingError, options: dict[str, Any]) -> dict[str, Any]:
    rejected = exc if isinstance(exc, FileRejected) else FileRejected(name, str(exc))
    return {
        "file": name, "format": options.get("format") or "", "header": [], "role": "", "rows": [],
        "file_error": {"file": rejected.file, "row": rejected.row, "column": rejected.column, "reason": rejected.reason},
        "options": options,
    }


def import_header(*, upload: UploadedFile | File, options: dict[str, Any]) -> dict[str, Any]:
    """Only the file's column names (to map them before any mapping exists); ``format`` and ``encoding`` are used."""
    name = _original_name(upload, 0)
    given = {k: options[k] for k in ("format", "encoding") if isinstance(options, dict) and options.get(k)}
    with tempfile.TemporaryDirectory(prefix="sentio-preview-") as folder:
        path = Path(folder) / "data"
        try:
            fmt = format_for(name, given.get("format"))
            _copy_head(upload, path, whole=fmt == "parquet")
            facts = file_check(path, name=name, fmt=fmt, encoding=given.get("encoding"))
            header, _chunks = rows_read(path, name=name, fmt=fmt, facts=facts, chunk_rows=1)
        except FileRejected as exc:
            return _rejected(name, exc, given)
    return {"file": name, "format": fmt, "header": header, "role": "", "rows": [], "file_error": None, "options": given}


def import_preview(
    *, upload: UploadedFile | File, options: dict[str, Any], audio_archive: UploadedFile | File | None = None,
    rows: int = PREVIEW_ROWS,
) -> dict[str, Any]:
    """The file's header, its first ``rows`` rows (raw values, how they are read, their errors) and the plan's role.

    Options that cannot work raise ImportOptionsError (the same checks as an import); a file the import would refuse
    as a whole comes back with ``file_error`` (file, row, column, reason) instead of rows.
    """
    name = _original_name(upload, 0)
    cleaned = import_options_clean(options, file_names=[name])
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sentio-preview-")))
        path = workdir / "data"
        try:
            fmt = format_for(name, cleaned.get("format"))
            _copy_head(upload, path, whole=fmt == "parquet")
            facts = file_check(path, name=name, fmt=fmt, encoding=cleaned.get("encoding"))
            header, chunks = rows_read(path, name=name, fmt=fmt, facts=facts, chunk_rows=rows)
            plan = import_file_plan(cleaned, name=name, header=header)
            try:
                schema = import_schema(cleaned)
            except _ImportFailed as exc:
                raise ImportOptionsError({"schema": str(exc)}) from None
            audio_reader = None
            if audio_archive is not None:
                audio_reader = _audio_reader(stack, audio_archive, workdir)
            validator = RowValidator(
                plan=plan, file_name=name, questions=schema.questions, header=header, audio_reader=audio_reader,
            )
            first = next(iter(chunks), [])
        except (FileRejected, MappingError) as exc:
            return _rejected(name, exc, cleaned)
        previewed = []
        for raw in first[:rows]:
            values = {str(k): _plain(v) for k, v in raw.values.items()}
            entry: dict[str, Any] = {"row": raw.number, "values": values, "read": None, "errors": []}
            if plan.role == "metadata_table":
                entry["read"] = {"kind": "metadata", "key": values.get(plan.key_column)}
            else:
                try:
                    entry["read"] = _read_row(validator.validate(raw))
                except RowInvalid as exc:
                    entry["errors"] = [
                        {"file": e.file, "row": e.row, "column": e.column, "reason": e.reason} for e in exc.errors
                    ]
            previewed.append(entry)
        return {
            "file": name, "format": fmt, "header": header, "role": plan.role, "rows": previewed, "file_error": None,
            "options": cleaned, "questions": [q.key for q in schema.questions],
        }


def _audio_reader(stack: ExitStack, archive: UploadedFile | File, workdir: Path) -> Any:
    from corpora.importing.audio import AudioRejected, audio_bundle_open, audio_probe

    path = workdir / "audio.zip"
    _copy_head(archive, path, whole=True)
    try:
        bundle = audio_bundle_open(path)
    except AudioRejected as exc:
        raise FileRejected(_original_name(archive, 0), str(exc)) from None
    stack.callback(bundle.close)

    def read(name: str) -> tuple[bytes, Any]:
        data = bundle.read(name)
        return data, audio_probe(data, name=name)

    return read
