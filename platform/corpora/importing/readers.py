"""Read CSV, TSV, JSONL and Parquet files in chunks, after checking size, encoding and line length.

Every file first gets a streaming byte-level check (``file_check``): its size against
``settings.IMPORT_MAX_FILE_BYTES``, its encoding (UTF-8 with or without BOM, UTF-16 by BOM or when
given) and the length of its longest physical line against ``settings.IMPORT_MAX_LINE_BYTES``. A
file that fails is refused as a whole with the byte offset of the problem, so nothing is ever
decoded into mojibake. Only then are rows read, a chunk at a time, so memory stays flat.

CSV/TSV go through the standard ``csv`` module rather than pandas: a short or long row must become
one row error with its row number, not a parser exception that loses the whole chunk.

Parquet obeys the same limits on what it expands to, which its compression hides from the file size: a row's
bytes against ``IMPORT_MAX_LINE_BYTES`` (a CSV line's limit), the whole table's against ``IMPORT_MAX_FILE_BYTES``,
and the decompressed pages against ``IMPORT_MAX_ZIP_RATIO`` times the file. Text columns are read dictionary-
encoded, so a value repeated a million times costs its bytes once while it is measured, and rows become Python
values in slices of at most ``PARQUET_SLICE_BYTES``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

FORMATS = ("csv", "tsv", "jsonl", "parquet")
ENCODINGS = ("utf-8", "utf-16")
EXTENSION_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                     ".parquet": "parquet", ".pq": "parquet"}
CHUNK_ROWS = 5000
_BLOCK_BYTES = 1024 * 1024
PARQUET_BATCH_ROWS = 1024
PARQUET_SLICE_BYTES = 32 * 1024 * 1024


class FileRejected(ValueError):
    """The whole file cannot be read; the message names the file and where the problem is."""

    def __init__(self, file: str, reason: str, row: int | None = None, column: str = ""):
        self.file = file
        self.reason = reason
        self.row = row
        self.column = column
        super().__init__(f"{file}: {reason}")


@dataclass(frozen=True)
class FileFacts:
    """What the byte-level check learnt: the decoder to use and an upper bound on data rows."""

    encoding: str  # a Python codec name: utf-8, utf-8-sig or utf-16
    size: int
    estimated_rows: int


@dataclass
class RawRow:
    """One data row: its 1-based number (header not counted) and values keyed by column name."""

    number: int
    values: dict[str, Any]
    error: str = ""  # set when the row itself is malformed (wrong field count, bad JSON)


CellRow = tuple[int, "list[str] | None", str]  # (row number, cells in header order or None, error)


def format_for(name: str, given: str | None) -> str:
    if given:
        return given
    suffix = Path(name).suffix.lower()
    if suffix not in EXTENSION_FORMATS:
        raise FileRejected(name, f"cannot tell the format from the extension {suffix or '(none)'!r}; "
                                 f"name the file .csv, .tsv, .jsonl or .parquet, or pass format")
    return EXTENSION_FORMATS[suffix]


def _detect_encoding(head: bytes, given: str | None) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if given == "utf-16":
        return "utf-16-le"  # no BOM: little-endian, as Windows writes it
    return "utf-8"


def file_check(path: Path, *, name: str, fmt: str, encoding: str | None) -> FileFacts:
    """Refuse oversized, wrongly encoded or overlong-line files before any row is read."""
    size = path.stat().st_size
    max_bytes = settings.IMPORT_MAX_FILE_BYTES
    if size > max_bytes:
        raise FileRejected(name, f"the file is {size:,} bytes; the limit is {max_bytes:,} bytes (IMPORT_MAX_FILE_BYTES)")
    if size == 0:
        raise FileRejected(name, "the file is empty")
    if fmt == "parquet":
        return FileFacts(encoding="utf-8", size=size, estimated_rows=_parquet_check(path, name, size))
    max_line = settings.IMPORT_MAX_LINE_BYTES
    with path.open("rb") as fh:
        head = fh.read(4)
        fh.seek(0)
        codec = _detect_encoding(head, encoding)
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
        if codec.startswith("utf-16"):
            newline = b"\x00\n" if head.startswith(codecs.BOM_UTF16_BE) else b"\n\x00"
        else:
            newline = b"\n"
        offset = 0  # bytes handed to the decoder so far
        lines = 0
        line_len = 0  # bytes of the physical line still open at the end of the last block
        # A block no longer than the limit holds no complete over-long line, so only lines that cross
        # block boundaries need tracking.
        block_size = min(_BLOCK_BYTES, max_line)
        while True:
            block = fh.read(block_size)
            if not block:
                break
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block, final=False)
            except UnicodeDecodeError as exc:
                bad_offset = offset - pending + exc.start
                raise FileRejected(name, _decode_error(codec, block, exc, bad_offset, lines)) from None
            except UnicodeError as exc:
                raise FileRejected(name, f"cannot be decoded as {codec} near byte offset {offset} ({exc})") from None
            first = block.find(newline)
            if first == -1:
                line_len += len(block)
            else:
                if line_len + first > max_line:
                    raise FileRejected(name, _long_line(lines + 1, max_line))
                lines += block.count(newline)
                line_len = len(block) - block.rfind(newline) - len(newline)
            if line_len > max_line:
                raise FileRejected(name, _long_line(lines + 1, max_line))
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FileRejected(name, f"the file ends in the middle of a {codec} character (byte offset {offset - 1})") from None
    if line_len:
        lines += 1
    header_lines = 0 if fmt == "jsonl" else 1
    return FileFacts(encoding=codec, size=size, estimated_rows=max(0, lines - header_lines))


def _long_line(line: int, max_line: int) -> str:
    return (f"line {line} is longer than {max_line:,} bytes (IMPORT_MAX_LINE_BYTES); "
            "is this really a line-oriented text file?")


def _decode_error(codec: str, block: bytes, exc: UnicodeDecodeError, bad_offset: int, lines_before: int) -> str:
    local = max(0, exc.start)
    line = lines_before + block[:local].count(b"\n") + 1
    bad = exc.object[exc.start:exc.start + 1]
    label = "UTF-16" if codec.startswith("utf-16") else "UTF-8"
    return (
        f"is not valid {label}: byte 0x{bad.hex() if bad else '??'} at byte offset {bad_offset} (line {line}) "
        f"cannot be decoded ({exc.reason}); save the file as UTF-8 (or UTF-16 with a BOM) and upload it again"
    )


def _parquet_open(path: Path, name: str) -> Any:
    """The file, with every text and binary column read dictionary-encoded (repeated values stored once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema_arrow
        textual = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                   or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        return pq.ParquetFile(path, read_dictionary=textual)
    except Exception as exc:  # pyarrow raises several error types for a damaged file
        raise FileRejected(name, f"is not a readable Parquet file ({exc})") from None


def _row_bytes(batch: Any) -> Any:
    """Bytes each row of an Arrow record batch holds (text by its length, other columns by their average width)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            lengths = pc.binary_length(column.dictionary).take(column.indices)
            sizes += np.nan_to_num(lengths.to_numpy(zero_copy_only=False).astype(np.float64)).astype(np.int64)
        elif batch.num_rows:
            sizes += column.nbytes // batch.num_rows
    return sizes


def _parquet_check(path: Path, name: str, size: int) -> int:
    """Refuse a Parquet file whose rows expand past the limits (module docstring); return its row count."""
    parquet = _parquet_open(path, name)
    metadata = parquet.metadata
    unpacked = sum(metadata.row_group(g).total_byte_size for g in range(metadata.num_row_groups))
    ratio = settings.IMPORT_MAX_ZIP_RATIO
    if unpacked > ratio * size:
        raise FileRejected(name, f"decompresses to {unpacked:,} bytes, more than {ratio} times its size "
                                 "(IMPORT_MAX_ZIP_RATIO)")
    max_row, max_total = settings.IMPORT_MAX_LINE_BYTES, settings.IMPORT_MAX_FILE_BYTES
    total = rows = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            sizes = _row_bytes(batch)
            over = sizes > max_row
            if over.any():
                row = rows + int(over.argmax()) + 1
                raise FileRejected(name, f"row {row} holds {int(sizes[over.argmax()]):,} bytes; the limit is "
                                         f"{max_row:,} bytes per row (IMPORT_MAX_LINE_BYTES)", row=row)
            total += int(sizes.sum())
            rows += batch.num_rows
            if total > max_total:
                raise FileRejected(name, f"expands to more than {max_total:,} bytes (IMPORT_MAX_FILE_BYTES)")
    except FileRejected:
        raise
    except Exception as exc:
        raise FileRejected(name, f"reading stopped after row {rows}: {exc}", row=rows + 1) from None
    return rows


def rows_read(path: Path, *, name: str, fmt: str, facts: FileFacts, chunk_rows: int = CHUNK_ROWS) -> tuple[list[str], Iterator[list[RawRow]]]:
    """The header (column names) and an iterator over chunks of rows."""
    if fmt in ("csv", "tsv"):
        return _delimited(path, name=name, delimiter="," if fmt == "csv" else "\t", encoding=facts.encoding,
                          chunk_rows=chunk_rows)
    if fmt == "jsonl":
        return _jsonl(path, name=name, encoding=facts.encoding, chunk_rows=chunk_rows)
    if fmt == "parquet":
        return _parquet(path, name=name, chunk_rows=chunk_rows)
    raise FileRejected(name, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _delimited(path: Path, *, name: str, delimiter: str, encoding: str, chunk_rows: int) -> tuple[list[str], Iterator[list[RawRow]]]:
    header, cell_chunks = delimited_cells(path, name=name, delimiter=delimiter, encoding=encoding, chunk_rows=chunk_rows)
    return header, raw_rows(header, cell_chunks)


def raw_rows(header: list[str], cell_chunks: Iterator[list[CellRow]]) -> Iterator[list[RawRow]]:
    """Chunks of cell rows as chunks of RawRows (values keyed by column name)."""
    for chunk in cell_chunks:
        yield [RawRow(number, dict(zip(header, values)) if values is not None else {}, error=error)
               for number, values, error in chunk]


def delimited_cells(path: Path, *, name: str, delimiter: str, encoding: str,
                    chunk_rows: int = CHUNK_ROWS) -> tuple[list[str], Iterator[list[CellRow]]]:
    """The header and chunks of (row number, cells, error) of a CSV/TSV file: rows as lists, no dicts.

    ``cells`` is None when ``error`` says why the row is malformed. ``rows_read`` builds its RawRows from this.
    """
    csv.field_size_limit(settings.IMPORT_MAX_LINE_BYTES)
    fh = io.open(path, encoding=encoding, newline="")  # noqa: UP020 - explicit: text mode with a decoder
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        fh.close()
        raise FileRejected(name, "the file has no header row") from None
    except csv.Error as exc:
        fh.close()
        raise FileRejected(name, f"the header row cannot be parsed: {exc}") from None
    header = [h.strip() for h in header]
    if not any(header):
        fh.close()
        raise FileRejected(name, "the header row is empty")
    # Counted once (a Counter, not list.count per column: 50,000 columns must not cost minutes of CPU).
    duplicates = sorted(h for h, n in Counter(h for h in header if h).items() if n > 1)
    if duplicates:
        fh.close()
        raise FileRejected(name, f"the header names column(s) {', '.join(map(repr, duplicates))} more than once")
    width = len(header)

    def chunks() -> Iterator[list[CellRow]]:
        chunk: list[CellRow] = []
        number = 0
        try:
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    number += 1
                    chunk.append((number, None, f"cannot be parsed: {exc}"))
                    continue
                if len(values) != width:
                    if not values or (len(values) == 1 and not values[0].strip() and width > 1):
                        continue  # blank line
                    # Trailing empty cells (spreadsheet artefacts) are harmless; anything else is a broken row.
                    if len(values) > width and not any(v.strip() for v in values[width:]):
                        values = values[:width]
                    else:
                        number += 1
                        chunk.append((number, None, (
                            f"has {len(values)} fields but the header has {width} "
                            "(an unquoted delimiter or a missing field?)")))
                        continue
                number += 1
                chunk.append((number, values, ""))
                if len(chunk) >= chunk_rows:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        finally:
            fh.close()

    return header, chunks()


def _jsonl(path: Path, *, name: str, encoding: str, chunk_rows: int) -> tuple[list[str], Iterator[list[RawRow]]]:
    # The columns of a JSONL file are the keys of its first object.
    header: list[str] = []
    with io.open(path, encoding=encoding) as fh:  # noqa: UP020
        for line in fh:
            if line.strip():
                try:
                    first = json.loads(line)
                except ValueError as exc:
                    raise FileRejected(name, f"the first line is not JSON: {exc}", row=1) from None
                if not isinstance(first, dict):
                    raise FileRejected(name, "each line must be a JSON object; the first is not", row=1)
                header = [str(k) for k in first]
                break
    if not header:
        raise FileRejected(name, "the file holds no JSON objects")

    def chunks() -> Iterator[list[RawRow]]:
        chunk: list[RawRow] = []
        number = 0
        with io.open(path, encoding=encoding) as fh:  # noqa: UP020
            for line in fh:
                if not line.strip():
                    continue
                number += 1
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    chunk.append(RawRow(number, {}, error=f"is not valid JSON: {exc}"))
                    continue
                if not isinstance(obj, dict):
                    chunk.append(RawRow(number, {}, error="is not a JSON object"))
                    continue
                chunk.append(RawRow(number, obj))
                if len(chunk) >= chunk_rows:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    return header, chunks()


def _parquet(path: Path, *, name: str, chunk_rows: int) -> tuple[list[str], Iterator[list[RawRow]]]:
    parquet = _parquet_open(path, name)
    header = list(parquet.schema_arrow.names)

    def chunks() -> Iterator[list[RawRow]]:
        number = 0
        try:
            for batch in parquet.iter_batches(batch_size=min(chunk_rows, PARQUET_BATCH_ROWS)):
                # Python values for a slice of rows at a time, never more than PARQUET_SLICE_BYTES of them.
                sizes, start = _row_bytes(batch), 0
                while start < batch.num_rows:
                    end, held = start + 1, int(sizes[start])
                    while end < batch.num_rows and held + int(sizes[end]) <= PARQUET_SLICE_BYTES:
                        held += int(sizes[end])
                        end += 1
                    columns = batch.slice(start, end - start).to_pydict()
                    names = list(columns)
                    chunk: list[RawRow] = []
                    for values in zip(*(columns[n] for n in names)):
                        number += 1
                        chunk.append(RawRow(number, dict(zip(names, values))))
                    yield chunk
                    start = end
        except Exception as exc:
            raise FileRejected(name, f"reading stopped after row {number}: {exc}", row=number + 1) from None

    return header, chunks()
