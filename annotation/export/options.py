"""Export options: parsed and checked up front, so a bad request fails before a job is created."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from annotation.export.gold import ORIGIN_PRECEDENCE
from annotation.export.splits import GROUPINGS

SPLIT_NAMES = ("train", "dev", "test")
FORMATS = ("parquet", "csv", "jsonl", "hf", "label_studio")
DEFAULT_FORMATS = ("parquet", "csv", "jsonl")
DEFAULT_RATIOS = {"train": 0.8, "dev": 0.1, "test": 0.1}
# MahaEmotions recipe: train may use synthetic labels, dev and test only human-verified ones.
DEFAULT_PROVENANCE = {"train": ["human", "llm", "model"], "dev": ["human"], "test": ["human"]}
MAX_BOOTSTRAP_RESAMPLES = 10_000


class ExportOptionsError(ValueError):
    """Options that cannot be used; ``errors`` maps each option to why, for a 400 response."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class ExportOptions:
    ratios: tuple[float, ...]
    seed: int
    grouping: str
    stratify_on: str | None
    stratify_language: bool
    provenance: dict[str, tuple[str, ...]]
    formats: tuple[str, ...]
    bootstrap_resamples: int
    perspective: str | None = None
    min_annotations: int = 1
    complete_only: bool = False
    heldout_min_annotations: int | None = None  # None: the project's overlap (1 for imported labels)
    group_same_text: bool = True

    def as_params(self) -> dict[str, Any]:
        return {
            "splits": dict(zip(SPLIT_NAMES, self.ratios)),
            "seed": self.seed,
            "grouping": self.grouping,
            "stratify_on": self.stratify_on,
            "stratify_language": self.stratify_language,
            "provenance": {k: list(v) for k, v in self.provenance.items()},
            "formats": list(self.formats),
            "bootstrap_resamples": self.bootstrap_resamples,
            "perspective": self.perspective,
            "min_annotations": self.min_annotations,
            "complete_only": self.complete_only,
            "heldout_min_annotations": self.heldout_min_annotations,
            "group_same_text": self.group_same_text,
        }


_KNOWN = {"splits", "seed", "grouping", "stratify_on", "stratify_language", "provenance", "formats",
          "bootstrap_resamples", "perspective", "min_annotations", "complete_only", "heldout_min_annotations",
          "group_same_text"}
MAX_MIN_ANNOTATIONS = 50


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def export_options_parse(raw: Any, *, question_keys: dict[str, str] | None = None) -> ExportOptions:
    """Check raw JSON options; raise ExportOptionsError naming every bad option.

    ``question_keys`` maps the schema's question keys to their types, to check ``stratify_on``.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ExportOptionsError({"options": "must be an object"})
    errors: dict[str, str] = {}
    for key in sorted(set(raw) - _KNOWN):
        errors[str(key)] = f"unknown option (known: {', '.join(sorted(_KNOWN))})"

    splits = raw.get("splits", DEFAULT_RATIOS)
    ratios: tuple[float, ...] = tuple(DEFAULT_RATIOS.values())
    if not isinstance(splits, dict) or set(splits) != set(SPLIT_NAMES):
        errors["splits"] = "must map train, dev and test to ratios, e.g. {\"train\": 0.8, \"dev\": 0.1, \"test\": 0.1}"
    elif not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                 for v in splits.values()):
        errors["splits"] = "ratios must be numbers >= 0"
    elif sum(splits.values()) <= 0 or splits["train"] <= 0:
        errors["splits"] = "the train ratio must be positive"
    else:
        total = float(sum(splits.values()))
        ratios = tuple(float(splits[name]) / total for name in SPLIT_NAMES)

    seed = raw.get("seed", 0)
    if not _int(seed) or not 0 <= seed < 2**63:
        errors["seed"] = "must be an integer from 0 to 2**63 - 1"
        seed = 0

    grouping = raw.get("grouping", "conversation+speaker")
    if grouping not in GROUPINGS:
        errors["grouping"] = f"must be one of {', '.join(GROUPINGS)}"

    stratify_on = raw.get("stratify_on")
    if stratify_on is not None:
        if not isinstance(stratify_on, str):
            errors["stratify_on"] = "must be a question key or null"
        elif question_keys is not None and question_keys.get(stratify_on) not in ("single_choice", "multi_label", "numeric"):
            errors["stratify_on"] = (
                f"{stratify_on!r} is not a single-choice, multi-label or numeric question of this schema"
            )
    stratify_language = raw.get("stratify_language", True)
    if not isinstance(stratify_language, bool):
        errors["stratify_language"] = "must be true or false"

    provenance_raw = raw.get("provenance", DEFAULT_PROVENANCE)
    provenance: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in DEFAULT_PROVENANCE.items()}
    if not isinstance(provenance_raw, dict) or not set(provenance_raw) <= set(SPLIT_NAMES):
        errors["provenance"] = "must map train, dev and/or test to lists of origins (human, llm, model)"
    else:
        for name, origins in provenance_raw.items():
            if (not isinstance(origins, list) or not origins
                    or not all(o in ORIGIN_PRECEDENCE for o in origins) or len(set(origins)) != len(origins)):
                errors[f"provenance.{name}"] = "must be a non-empty list of distinct origins from human, llm, model"
            else:
                provenance[name] = tuple(o for o in ORIGIN_PRECEDENCE if o in origins)

    formats = raw.get("formats", list(DEFAULT_FORMATS))
    if (not isinstance(formats, list) or not formats or not all(f in FORMATS for f in formats)
            or len(set(formats)) != len(formats)):
        errors["formats"] = f"must be a non-empty list of distinct formats from {', '.join(FORMATS)}"
        formats = list(DEFAULT_FORMATS)

    resamples = raw.get("bootstrap_resamples", 1000)
    if not _int(resamples) or not 0 <= resamples <= MAX_BOOTSTRAP_RESAMPLES:
        errors["bootstrap_resamples"] = f"must be an integer from 0 to {MAX_BOOTSTRAP_RESAMPLES}"
        resamples = 0

    perspective = raw.get("perspective")
    if perspective is not None and (not isinstance(perspective, str) or len(perspective) > 20):
        errors["perspective"] = "must be a perspective name of the schema, or null for annotations of every perspective"

    min_annotations = raw.get("min_annotations", 1)
    if not _int(min_annotations) or not 1 <= min_annotations <= MAX_MIN_ANNOTATIONS:
        errors["min_annotations"] = f"must be an integer from 1 to {MAX_MIN_ANNOTATIONS}"
        min_annotations = 1
    heldout = raw.get("heldout_min_annotations")
    if heldout is not None and (not _int(heldout) or not 1 <= heldout <= MAX_MIN_ANNOTATIONS):
        errors["heldout_min_annotations"] = (f"must be an integer from 1 to {MAX_MIN_ANNOTATIONS}, or null for the "
                                             "project's overlap")
    for flag in ("complete_only", "group_same_text"):
        if flag in raw and not isinstance(raw[flag], bool):
            errors[flag] = "must be true or false"

    if errors:
        raise ExportOptionsError(errors)
    return ExportOptions(
        ratios=ratios, seed=int(seed), grouping=str(grouping), stratify_on=stratify_on,
        stratify_language=bool(stratify_language), provenance=provenance,
        formats=tuple(f for f in FORMATS if f in formats), bootstrap_resamples=int(resamples),
        perspective=perspective, min_annotations=int(min_annotations), complete_only=bool(raw.get("complete_only", False)),
        heldout_min_annotations=heldout, group_same_text=bool(raw.get("group_same_text", True)),
    )
