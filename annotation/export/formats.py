"""Export file formats. Parquet is written first, in row groups, from the database stream; CSV, JSONL and the
Hugging Face DatasetDict are converted from it batch by batch, so no format holds a whole split in memory."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from annotation.schema import Question

ROW_GROUP_SIZE = 65_536
READ_BATCH_SIZE = 16_384
HF_AUDIO_BATCH = 256  # clips read into memory at once while the Hugging Face export embeds them

# Spreadsheet programs run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
LIST_SEPARATOR = ";"
EMPTY_LIST = "[]"  # an empty multi-label answer ("none of these") in CSV, apart from an empty cell (no gold)

BASE_FIELDS: list[tuple[str, pa.DataType]] = [
    ("utterance_id", pa.int64()),
    ("external_id", pa.string()),
    ("corpus", pa.string()),
    ("language", pa.string()),
    ("conversation", pa.string()),
    ("speaker", pa.string()),
    ("turn_index", pa.int64()),
    ("text", pa.string()),
    ("audio", pa.string()),
    ("audio_duration_s", pa.float64()),
    ("split", pa.string()),
    ("label_origin", pa.string()),
    ("label_source", pa.string()),
    ("n_annotations", pa.int64()),
    ("n_human_annotations", pa.int64()),
]


def gold_fields(questions: Sequence[Question]) -> list[tuple[str, pa.DataType]]:
    fields: list[tuple[str, pa.DataType]] = []
    for q in questions:
        if q.type == "single_choice":
            fields.append((q.key, pa.string()))
        elif q.type == "multi_label":
            fields.append((q.key, pa.list_(pa.string())))
            if q.intensity:
                fields.append((f"{q.key}_intensity", pa.list_(pa.int64())))
        elif q.type == "numeric":
            fields.append((q.key, pa.float64()))
    return fields


def export_schema(questions: Sequence[Question]) -> pa.Schema:
    names = [name for name, _ in BASE_FIELDS]
    clashes = [name for name, _ in gold_fields(questions) if name in names]
    if clashes:
        raise ValueError(f"question key(s) {', '.join(clashes)} clash with export column names")
    return pa.schema([pa.field(name, dtype) for name, dtype in BASE_FIELDS + gold_fields(questions)])


class ParquetSplitWriter:
    """Takes Arrow tables of any size and writes them in row groups of exactly ``row_group_size`` rows
    (the last one may be shorter)."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_size: int | None = None) -> None:
        self.path = path
        self.schema = schema
        self.row_group_size = row_group_size or ROW_GROUP_SIZE
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(str(path), schema, compression="zstd")
        self.rows = 0

    def append_table(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.row_group_size:
            self._flush(whole_groups_only=True)

    def _flush(self, *, whole_groups_only: bool) -> None:
        if not self._pending_rows:
            return
        table = pa.concat_tables(self._pending)
        count = table.num_rows
        if whole_groups_only:
            count -= count % self.row_group_size
        self._writer.write_table(table.slice(0, count), row_group_size=self.row_group_size)
        self.rows += count
        rest = table.slice(count)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> None:
        self._flush(whole_groups_only=False)
        self._writer.close()


def parquet_batches(path: Path, batch_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
    parquet = pq.ParquetFile(str(path))
    for batch in parquet.iter_batches(batch_size=batch_size or READ_BATCH_SIZE):
        yield batch.to_pylist()


def neutralise_cell(value: Any) -> Any:
    """Prefix an apostrophe to text a spreadsheet would run as a formula; other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        # "joy;fear": the list form Sentio's importer (and most spreadsheet users) read back; "[]" for none.
        return neutralise_cell(LIST_SEPARATOR.join(str(item) for item in value)) if value else EMPTY_LIST
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return neutralise_cell(value)


def write_csv(parquet_path: Path, csv_path: Path, columns: Sequence[str]) -> int:
    """CSV (UTF-8, header row); lists are joined with ";" ("[]": an empty list, an empty cell: none);
    formula-like text cells are neutralised."""
    rows = 0
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for batch in parquet_batches(parquet_path):
            writer.writerows([_csv_cell(row[c]) for c in columns] for row in batch)
            rows += len(batch)
    return rows


def write_jsonl(parquet_path: Path, jsonl_path: Path) -> int:
    rows = 0
    with jsonl_path.open("w", encoding="utf-8") as fh:
        for batch in parquet_batches(parquet_path):
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in batch)
            rows += len(batch)
    return rows


def write_hf_dataset_dict(parquet_paths: dict[str, Path], out_dir: Path, cache_dir: Path,
                          read_audio: Callable[[str], bytes] | None = None) -> bool:
    """A ``datasets.DatasetDict`` saved with ``save_to_disk``; rows are memory-mapped Arrow, not loaded.

    When some exported utterance has audio and ``read_audio`` is given, the ``audio`` column becomes a datasets
    ``Audio`` feature holding each clip's bytes (path: its storage name), so the saved dataset plays without
    Sentio's storage; audio-less rows hold null. Batches of clips are read and written to the cache one at a time.
    Returns whether the dataset has the ``Audio`` column."""
    from datasets import Audio, Dataset, DatasetDict, Features, disable_progress_bars

    disable_progress_bars()
    splits = {}
    for name, path in parquet_paths.items():
        metadata = pq.ParquetFile(str(path)).metadata
        if metadata.num_rows:
            splits[name] = Dataset.from_parquet(str(path), cache_dir=str(cache_dir), keep_in_memory=False)
        else:  # datasets cannot read an empty Parquet file; an empty split keeps the columns
            schema = metadata.schema.to_arrow_schema()
            splits[name] = Dataset.from_dict({n: [] for n in schema.names}, features=Features.from_arrow_schema(schema))
    with_audio = read_audio is not None and any(
        pc.any(pc.not_equal(pq.read_table(str(path), columns=["audio"]).column("audio"), "")).as_py()
        for path in parquet_paths.values()
    )
    if with_audio:
        assert read_audio is not None

        def embed(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            batch["audio"] = [{"bytes": read_audio(name), "path": name} if name else None for name in batch["audio"]]
            return batch

        for name, dataset in splits.items():
            features = dataset.features.copy()
            features["audio"] = Audio()
            splits[name] = dataset.map(embed, batched=True, batch_size=HF_AUDIO_BATCH, features=features,
                                       cache_file_name=str(cache_dir / f"{name}-audio.arrow"))
    # One shard for an empty split: save_to_disk would write none, and load_from_disk then fails on the split.
    num_shards = {name: 1 for name, dataset in splits.items() if not dataset.num_rows}
    DatasetDict(splits).save_to_disk(str(out_dir), num_shards=num_shards or None)  # type: ignore[arg-type]
    return with_audio
