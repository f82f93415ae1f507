"""The data card (README.md) written into every export: where the data comes from, how it was split, what
the labels look like per split and language, who labelled it and how well they agreed."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annotation.export.options import SPLIT_NAMES, ExportOptions


@dataclass
class AgreementFacts:
    question: str
    alpha: float | None
    interval: tuple[float, float] | None
    confidence_level: float
    n_resamples: int
    n_pairable_units: int
    n_raters: int
    note: str = ""


def nominal_alpha_with_interval(
    units: np.ndarray, raters: np.ndarray, values: np.ndarray, *, n_resamples: int, seed: int, question: str,
) -> AgreementFacts:
    """Nominal Krippendorff's alpha with a bootstrap interval over units (the agreement service's definition)."""
    from annotation.agreement.alpha import krippendorff_alpha
    from annotation.agreement.ratings import ratings_from_long

    n_raters = int(np.unique(raters).size)
    if units.size == 0:
        return AgreementFacts(question, None, None, 0.95, 0, 0, 0, note="no human annotations")
    ratings = ratings_from_long(units, raters, values, allow_duplicates=True)
    result = krippendorff_alpha(ratings, "nominal", n_resamples=n_resamples, seed=seed)
    note = "" if result.n_pairable_units else "no utterance has two human annotations"
    return AgreementFacts(
        question=question, alpha=result.alpha if result.defined else None, interval=result.interval,
        confidence_level=result.confidence_level or 0.95, n_resamples=result.n_resamples,
        n_pairable_units=result.n_pairable_units, n_raters=n_raters, note=note,
    )


@dataclass
class CorpusFacts:
    name: str
    slug: str
    license: str
    source: str


@dataclass
class CardFacts:
    job_id: int
    title: str
    source_description: str
    corpus: CorpusFacts
    schema: str
    options: ExportOptions
    stratified_on: str
    items_per_split: dict[str, int]
    groups_per_split: dict[str, int]
    label_counts: Counter[tuple[str, str, str, str]]  # (question, split, language, label) -> items
    numeric_values: dict[tuple[str, str], list[float]]  # (question, split) -> [sum, sum of squares, count]
    origin_counts: Counter[tuple[str, str]]  # (split, origin of the gold label) -> items
    annotations_by_origin: Counter[str]
    n_human_annotators: int
    model_versions: list[str]
    left_out_by_provenance: dict[str, int]
    items_without_gold: int
    agreement: list[AgreementFacts] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    source_counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (split, label source) -> items
    aggregation: dict[str, str] = field(default_factory=dict)  # question -> the rule in words
    open_ties: int = 0
    min_annotations: int = 1
    heldout_min_annotations: int = 1
    below_minimum: int = 0
    synthetic_counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (split, LLM model version) -> items


def _cell(value: Any) -> str:
    """Table cells hold user text (label and corpus names): keep it from breaking out of the table or markup."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.split())


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _fmt(value: float | None) -> str:
    return "undefined" if value is None or not math.isfinite(value) else f"{value:.3f}"


def render_card(facts: CardFacts) -> str:
    o = facts.options
    lines = [f"# {_cell(facts.title)}", "",
             f"Gold-split export made by Sentio (export job {facts.job_id}) from {_cell(facts.source_description)}, "
             f"label schema {_cell(facts.schema)}.", ""]

    lines += ["## Sources and licences", ""]
    lines += _table(["corpus", "slug", "licence", "source"],
                    [[facts.corpus.name, facts.corpus.slug, facts.corpus.license or "not stated",
                      facts.corpus.source or "not stated"]])
    lines += ["", "Every row keeps the corpus licence; check it before redistributing the export.", ""]

    lines += ["## Split recipe", ""]
    ratios = ", ".join(f"{name} {ratio:.3g}" for name, ratio in zip(SPLIT_NAMES, o.ratios))
    lines += [
        f"- seed: {o.seed}",
        f"- ratios: {ratios}",
        f"- grouping: {o.grouping} (no group is shared between splits; "
        "conversation+speaker means connected components of the conversation–speaker graph)",
        f"- stratified by: {_cell(facts.stratified_on)}" + (" and language" if o.stratify_language else ""),
        "- provenance rule: " + "; ".join(f"{name} from {', '.join(o.provenance[name])} labels" for name in SPLIT_NAMES),
        "- gold label: a reviewer's adjudication where there is one; otherwise the annotations of the "
        "highest-precedence allowed origin (human, then LLM, then model) aggregated by the project's rule: "
        + "; ".join(f"{_cell(k)}: {_cell(v)}" for k, v in facts.aggregation.items()),
        f"- human gold needs at least {facts.min_annotations} human annotation(s) in train and "
        f"{facts.heldout_min_annotations} in dev and test (adjudicated items always qualify)",
        "- algorithm: annotation/export/README.md in the Sentio source",
        "",
    ]

    lines += ["## Splits", ""]
    lines += _table(["split", "utterances", "groups"],
                    [[s, facts.items_per_split.get(s, 0), facts.groups_per_split.get(s, 0)] for s in SPLIT_NAMES])
    lines += [""]
    left_out = sum(facts.left_out_by_provenance.values())
    lines += [f"Utterances left out because the provenance rule of their group's split forbids their only labels: "
              f"{left_out}" + (" (" + ", ".join(f"{k} {v}" for k, v in facts.left_out_by_provenance.items() if v) + ")"
                               if left_out else "") + ".",
              f"Annotated utterances with no usable gold answer: {facts.items_without_gold} "
              f"(ties left open for review: {facts.open_ties}; below the minimum of human annotations: "
              f"{facts.below_minimum}).", ""]

    lines += ["## Label distribution per split and language", ""]
    questions = sorted({q for q, _, _, _ in facts.label_counts})
    for question in questions:
        labels = sorted({lab for q, _, _, lab in facts.label_counts if q == question})
        rows: list[list[Any]] = []
        for split in SPLIT_NAMES:
            languages = sorted({lang for q, s, lang, _ in facts.label_counts if q == question and s == split})
            for lang in languages:
                counts = [facts.label_counts.get((question, split, lang, lab), 0) for lab in labels]
                total = sum(counts)
                rows.append([split, lang] + [f"{c} ({100.0 * c / total:.1f}%)" if total else "0" for c in counts])
        lines += [f"### {_cell(question)}", ""] + _table(["split", "language"] + labels, rows) + [""]
    for (question, split), (value_sum, squares, count) in sorted(facts.numeric_values.items()):
        if count:
            mean = value_sum / count
            sd = math.sqrt(max(0.0, squares / count - mean * mean))
            lines.append(f"- {_cell(question)} in {split}: mean {mean:.3f}, sd {sd:.3f}, n {int(count)}")
    if facts.numeric_values:
        lines.append("")

    lines += ["## Provenance", ""]
    origins = ["human", "llm", "model"]
    lines += _table(["split"] + [f"gold from {o}" for o in origins],
                    [[s] + [facts.origin_counts.get((s, org), 0) for org in origins] for s in SPLIT_NAMES])
    sources = ["adjudicated", "tie_broken", "aggregated", "single_annotation"]
    lines += ["", "What each gold label rests on (column `label_source`):", ""]
    lines += _table(["split"] + sources, [[s] + [facts.source_counts.get((s, k), 0) for k in sources]
                                          for s in SPLIT_NAMES])
    lines += ["", "Annotations read: " + ", ".join(f"{org} {facts.annotations_by_origin.get(org, 0)}" for org in origins)
              + ".",
              f"Human annotators: {facts.n_human_annotators}.",
              "Models and LLMs: " + (", ".join(_cell(m) for m in facts.model_versions) or "none") + ".", ""]
    synthetic_train = facts.origin_counts.get(("train", "llm"), 0)
    lines += [f"Synthetic (LLM-made) gold labels: train {synthetic_train} of {facts.items_per_split.get('train', 0)}"
              + "".join(f", {s} {facts.origin_counts.get((s, 'llm'), 0)}" for s in SPLIT_NAMES if s != "train")
              + " (the provenance rule above says which splits may hold them)."]
    if facts.synthetic_counts:
        versions = sorted({v for _, v in facts.synthetic_counts})
        lines += ["", "Synthetic labels by the LLMs and prompt templates that made them (`llm:` versions name the "
                      "endpoint, model, template and version, and how several were combined):", ""]
        lines += _table(["LLM labels from"] + list(SPLIT_NAMES),
                        [[v] + [facts.synthetic_counts.get((s, v), 0) for s in SPLIT_NAMES] for v in versions])
    lines += [""]

    lines += ["## Agreement", ""]
    if facts.agreement:
        rows = []
        for a in facts.agreement:
            interval = (f"[{_fmt(a.interval[0])}, {_fmt(a.interval[1])}]" if a.interval else "not computed")
            rows.append([a.question, "Krippendorff's alpha (nominal)", _fmt(a.alpha), interval,
                         f"{a.confidence_level:.0%}, {a.n_resamples} bootstrap resamples over units, seed {o.seed}",
                         a.n_pairable_units, a.n_raters, a.note])
        lines += _table(["question", "measure", "value", "interval", "interval method", "units with 2+ ratings",
                         "annotators", "note"], rows)
    else:
        lines.append("No single-choice question: agreement is reported by the agreement service.")
    lines += [""]

    if facts.files:
        lines += ["## Files", ""]
        lines += _table(["file", "format", "split", "rows"],
                        [[f["name"], f["format"], f.get("split", ""), f.get("rows", "")] for f in facts.files])
        lines += ["", "CSV cells that begin with = + - @, a tab or a carriage return start with an added apostrophe "
                  "(formula-injection guard); lists are joined with \";\" in their cell.", ""]
    return "\n".join(lines)
