"""Ratings in long form, encoded as integer arrays that every agreement function works on.

A rating is one (unit, rater, value) triple. Units and raters may be any hashable ids; values are
labels (nominal) or numbers (ordinal, interval, ratio). Encoding maps each to a dense integer index so
that the metrics can use ``numpy.bincount`` instead of Python loops.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


class AgreementInputError(ValueError):
    """Ratings cannot be used as given; the message says which rating or column and why."""


@dataclass(frozen=True)
class Ratings:
    """Encoded ratings: ``unit_idx[r]``, ``rater_idx[r]``, ``value_idx[r]`` describe rating ``r``.

    ``units``, ``raters`` and ``values`` hold the original ids; ``values`` is sorted when numeric, so that
    ``value_idx`` is also the rank used by the ordinal metric.
    """

    unit_idx: IntArray
    rater_idx: IntArray
    value_idx: IntArray
    units: np.ndarray
    raters: np.ndarray
    values: np.ndarray

    @property
    def n_ratings(self) -> int:
        return int(self.unit_idx.size)

    @property
    def n_units(self) -> int:
        return int(self.units.size)

    @property
    def n_raters(self) -> int:
        return int(self.raters.size)

    @property
    def n_values(self) -> int:
        return int(self.values.size)

    def numeric_values(self) -> FloatArray:
        """The value domain as floats; raises AgreementInputError when a value is not a number."""
        try:
            numeric = np.asarray(self.values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise AgreementInputError(
                f"values must be numbers for this level of measurement, got {self.values[:5].tolist()!r}…"
            ) from exc
        return numeric

    def subset(self, mask: npt.NDArray[np.bool_]) -> Ratings:
        """The ratings selected by a boolean mask, keeping the id tables (indices stay valid)."""
        return Ratings(
            unit_idx=self.unit_idx[mask],
            rater_idx=self.rater_idx[mask],
            value_idx=self.value_idx[mask],
            units=self.units,
            raters=self.raters,
            values=self.values,
        )

    def to_frame(self) -> pd.DataFrame:
        """Decoded long form with columns unit, rater, value."""
        return pd.DataFrame(
            {
                "unit": self.units[self.unit_idx],
                "rater": self.raters[self.rater_idx],
                "value": self.values[self.value_idx],
            }
        )


def _factorize(column: Any, name: str, sort: bool) -> tuple[IntArray, np.ndarray]:
    codes, uniques = pd.factorize(pd.Series(column), sort=sort, use_na_sentinel=True)
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        raise AgreementInputError(f"row {row}: column '{name}' is missing")
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def _id_column(ids: Any) -> pd.Series:
    """Unit or rater ids as a Series; numeric arrays stay numeric (fast to factorize), anything else becomes objects."""
    if isinstance(ids, pd.Series):
        return ids
    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iuf":
        return pd.Series(ids)
    return pd.Series(np.asarray(ids, dtype=object), dtype=object)  # not an Arrow string copy of every id


def ratings_from_long(
    units: Sequence[Hashable] | np.ndarray | pd.Series,
    raters: Sequence[Hashable] | np.ndarray | pd.Series,
    values: Sequence[Any] | np.ndarray | pd.Series,
    *,
    allow_duplicates: bool = False,
) -> Ratings:
    """Encode parallel columns of unit ids, rater ids and values; missing values (None/NaN) are dropped.

    A rater rating the same unit twice is an error unless ``allow_duplicates`` (alpha itself is defined
    over the values in a unit, but per-rater breakdowns need one value per rater and unit).
    """
    unit_col, rater_col = _id_column(units), _id_column(raters)
    if isinstance(values, np.ndarray) and values.dtype.kind in "OUS":
        value_col = pd.Series(values.astype(object), dtype=object)  # strings stay Python objects (no Arrow copy)
    else:
        value_col = values if isinstance(values, pd.Series) else pd.Series(list(values) if not isinstance(values, np.ndarray) else values)
    if not (len(unit_col) == len(rater_col) == len(value_col)):
        raise AgreementInputError(
            f"units, raters and values must have the same length, got {len(unit_col)}, {len(rater_col)}, {len(value_col)}"
        )
    present = value_col.notna().to_numpy()
    if not present.all():
        unit_col = unit_col[present].reset_index(drop=True)
        rater_col = rater_col[present].reset_index(drop=True)
        value_col = value_col[present].reset_index(drop=True)
    unit_idx, unit_ids = _factorize(unit_col, "unit", sort=False)
    rater_idx, rater_ids = _factorize(rater_col, "rater", sort=False)
    unit_ids, rater_ids = unit_ids.astype(object), rater_ids.astype(object)  # ids as given, whatever their type
    numeric = pd.api.types.is_numeric_dtype(value_col.dtype) and not pd.api.types.is_bool_dtype(value_col.dtype)
    value_idx, value_ids = _factorize(value_col, "value", sort=numeric)
    if not allow_duplicates and unit_idx.size:
        key = unit_idx * max(rater_ids.size, 1) + rater_idx
        ordered = np.sort(key)
        repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
        if repeated.size:
            where = int(np.flatnonzero(key == ordered[repeated[0]])[0])
            raise AgreementInputError(
                f"rater {rater_ids[rater_idx[where]]!r} rated unit {unit_ids[unit_idx[where]]!r} more than once"
            )
    return Ratings(unit_idx, rater_idx, value_idx, unit_ids, rater_ids, value_ids)


def ratings_from_frame(
    frame: pd.DataFrame,
    unit: str = "unit",
    rater: str = "rater",
    value: str = "value",
    *,
    allow_duplicates: bool = False,
) -> Ratings:
    """Encode a long DataFrame with one row per rating."""
    missing = [c for c in (unit, rater, value) if c not in frame.columns]
    if missing:
        raise AgreementInputError(f"missing column(s) {', '.join(missing)}; have {', '.join(map(str, frame.columns))}")
    return ratings_from_long(frame[unit], frame[rater], frame[value], allow_duplicates=allow_duplicates)


def _encode_numbers(values: FloatArray) -> tuple[FloatArray, IntArray]:
    """Sorted distinct values and each value's index among them (``numpy.unique`` with ``return_inverse``).

    Whole numbers in a modest range, the usual rating scales, are counted instead of sorted.
    """
    if values.size:
        low, high = float(values.min()), float(values.max())
        if high - low < 1 << 20:
            shifted = values - low
            codes = shifted.astype(np.int64)
            if np.array_equal(codes, shifted):
                present = np.bincount(codes) > 0
                distinct = (np.flatnonzero(present) + low).astype(np.float64)
                if present.all():
                    return distinct, codes
                rank = np.cumsum(present) - 1
                return distinct, rank[codes].astype(np.int64, copy=False)
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, inverse.astype(np.int64).reshape(-1)


def ratings_from_matrix(reliability_data: Any) -> Ratings:
    """Encode a raters × units matrix (the layout of ``krippendorff.alpha``); NaN marks a missing value."""
    matrix = np.asarray(reliability_data, dtype=np.float64)
    if matrix.ndim != 2:
        raise AgreementInputError(f"reliability data must be a 2-D raters × units matrix, got shape {matrix.shape}")
    present = ~np.isnan(matrix)
    if matrix.shape[0] <= 256:  # a few raters: row by row, which spares dividing every position
        columns = [np.flatnonzero(row) for row in present]
        unit_pos = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)
        rater_pos = np.repeat(np.arange(matrix.shape[0]), [c.size for c in columns])
        values = np.concatenate([row[c] for row, c in zip(matrix, columns)]) if columns else np.zeros(0)
    else:
        flat = np.flatnonzero(present)
        rater_pos, unit_pos = np.divmod(flat, matrix.shape[1])
        values = matrix.reshape(-1)[flat]
    value_ids, value_idx = _encode_numbers(values)
    return Ratings(
        unit_idx=unit_pos,
        rater_idx=rater_pos,
        value_idx=value_idx,
        units=np.arange(matrix.shape[1]),
        raters=np.arange(matrix.shape[0]),
        values=value_ids,
    )
