"""The array form of the majority rule (what the export runs) agrees with the item-by-item rule everywhere."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from annotation.export.gold import NO_ANSWER, GoldBuilder, GoldTable, majority_gold_table
from annotation.schema import parse_questions

QUESTIONS = parse_questions([
    {"key": "emotion", "type": "single_choice", "labels": ["joy", "anger", "fear"]},
    {"key": "emotions", "type": "multi_label", "labels": ["joy", "anger", "fear"]},
    {"key": "graded", "type": "multi_label", "labels": ["joy", "anger"], "intensity": True},
    {"key": "valence", "type": "numeric", "min": 1, "max": 5},
    {"key": "note", "type": "text"},
])
ORIGINS = ("human", "llm")


def random_answer(rng: random.Random) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if rng.random() < 0.8:
        value["emotion"] = rng.choice(["joy", "anger", "fear", ""])
    if rng.random() < 0.7:
        value["emotions"] = rng.sample(["joy", "anger", "fear"], rng.randint(0, 3))
    if rng.random() < 0.5:
        value["graded"] = {label: rng.randint(1, 3) for label in rng.sample(["joy", "anger"], rng.randint(0, 2))}
    if rng.random() < 0.6:
        value["valence"] = rng.choice([1, 2.5, 3, 4.5, 5])
    value["note"] = "free text is not aggregated"
    return value


def as_dict(table: GoldTable) -> dict[tuple[str, int], tuple[int, list[Any]]]:
    """(origin, utterance) -> (n_annotations, gold in GoldValue form) for every row of the table."""
    out = {}
    for origin, rows in table.by_origin.items():
        for r, uid in enumerate(rows.utterance_ids.tolist()):
            out[(origin, uid)] = (int(rows.n_annotations[r]),
                                  [table.value(origin, i, r) for i in range(len(table.questions))])
    return out


def test_array_majority_matches_the_item_rule_on_random_annotations():
    rng = random.Random(5)
    annotations: list[tuple[int, str, dict[str, Any]]] = []
    for uid in range(1, 1500):
        for _ in range(rng.choice([1, 1, 1, 2, 3, 4])):
            annotations.append((uid, rng.choice(["human", "human", "llm", "model"]), random_answer(rng)))

    builder = GoldBuilder(QUESTIONS, ORIGINS)
    for uid in sorted({a[0] for a in annotations}):
        for origin in ORIGINS:
            builder.add_item(uid, origin, [v for u, o, v in annotations if u == uid and o == origin])
    expected = as_dict(builder.table())

    gold_qs = builder.questions
    distinct: list[list[Any]] = [[] for _ in gold_qs]
    columns: list[list[Any]] = [[] for _ in gold_qs]
    for _, _, value in annotations:
        for i, q in enumerate(gold_qs):
            answer = value.get(q.key)
            if q.type == "numeric":
                columns[i].append(np.nan if answer is None else answer)
            elif answer in (None, "", [], {}):
                columns[i].append(NO_ANSWER)
            elif q.type == "single_choice":
                columns[i].append(q.labels.index(answer))
            else:
                distinct[i].append(answer)
                columns[i].append(len(distinct[i]) - 1)
    table = majority_gold_table(
        QUESTIONS, ORIGINS, np.array([a[0] for a in annotations], dtype=np.int64),
        np.array([ORIGINS.index(a[1]) if a[1] in ORIGINS else NO_ANSWER for a in annotations], dtype=np.int8),
        [np.array(c, dtype=np.float64 if q.type == "numeric" else np.int64) for q, c in zip(gold_qs, columns)],
        distinct,
    )
    got = as_dict(table)
    assert len(expected) > 1000
    assert got == expected
    # Ties, several annotators and empty majorities all occurred, so every branch was compared.
    assert any(n > 1 for n, _ in expected.values())
    assert any(gold[1] == () for _, gold in expected.values())
