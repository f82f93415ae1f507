"""The split algorithm on plain arrays (no database)."""

from __future__ import annotations

import numpy as np

from annotation.export.splits import MISSING, assign_splits, group_components, powerset_strata
from annotation.schema import parse_questions


def test_speaker_links_conversations_into_one_component():
    conversation = np.array([0, 0, 1, 1, 2, MISSING, MISSING])
    speaker = np.array([10, 11, 11, 12, 13, 13, MISSING])
    both = group_components(conversation, speaker, "conversation+speaker")
    assert both[0] == both[1] == both[2] == both[3]  # speaker 11 joins conversations 0 and 1
    assert both[4] == both[5] != both[0]  # speaker 13 joins conversation 2 and a loose utterance
    assert len(set(both.tolist())) == 3  # the utterance with neither stands alone
    by_conversation = group_components(conversation, speaker, "conversation")
    assert by_conversation[1] != by_conversation[2] and by_conversation[5] != by_conversation[6]


def _random_items(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.choice(5, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])
    conversation = rng.integers(0, n // 8, size=n)
    speaker = conversation // 3  # a speaker recurs in three conversations
    return labels, conversation, speaker


def test_stratification_keeps_label_ratios_and_split_sizes():
    labels, conversation, speaker = _random_items(40_000)
    group = group_components(conversation, speaker, "conversation+speaker")
    result = assign_splits(item_ids=np.arange(labels.size), group=group, stratum=labels,
                           eligible=np.ones((labels.size, 3), bool), ratios=(0.8, 0.1, 0.1), seed=4)
    assert (result.split != MISSING).all()
    overall = np.bincount(labels, minlength=5) / labels.size
    for s, ratio in enumerate((0.8, 0.1, 0.1)):
        in_split = labels[result.split == s]
        assert abs(in_split.size / labels.size - ratio) < 0.02
        assert np.abs(np.bincount(in_split, minlength=5) / in_split.size - overall).max() < 0.03
    # Group-disjoint: every group sits in exactly one split.
    pairs = np.unique(np.stack([result.group, result.split]), axis=1)
    assert np.unique(pairs[0]).size == pairs.shape[1]


def test_same_seed_same_split_other_seed_other_split():
    labels, conversation, speaker = _random_items(5_000, seed=1)
    group = group_components(conversation, speaker, "conversation")
    args = dict(item_ids=np.arange(labels.size) * 3 + 7, group=group, stratum=labels,
                eligible=np.ones((labels.size, 3), bool), ratios=(0.7, 0.15, 0.15))
    first = assign_splits(**args, seed=99).split
    assert np.array_equal(first, assign_splits(**args, seed=99).split)
    assert not np.array_equal(first, assign_splits(**args, seed=100).split)


def test_train_only_items_fill_train_and_are_never_moved():
    n = 2_000
    labels = np.arange(n) % 3
    eligible = np.ones((n, 3), bool)
    eligible[: n // 2, 1:] = False  # synthetic labels: train only
    result = assign_splits(item_ids=np.arange(n), group=np.arange(n), stratum=labels, eligible=eligible,
                           ratios=(0.8, 0.1, 0.1), seed=0)
    assert (result.split[: n // 2] == 0).all()
    # Dev and test still get about a tenth of everything each, from the human-labelled half.
    assert abs((result.split == 1).sum() - 200) <= 10 and abs((result.split == 2).sum() - 200) <= 10


def test_rare_label_combinations_fall_back_to_their_rarest_label():
    sets = [(0,)] * 50 + [(1,)] * 20 + [(0, 1)] * 30 + [(0, 1, 2)] * 2 + [()] * 5
    strata = powerset_strata(sets, min_count=10)
    assert len(set(strata[100:102].tolist())) == 1
    assert strata[100] != strata[70]  # {0,1} is common enough to keep its own stratum
    assert strata[100] not in set(strata[:100].tolist()) | set(strata[102:].tolist())  # {2} alone


def _gold_ratings(rows: list[tuple[int, str, str, dict]], questions):  # type: ignore[no-untyped-def]
    """(utterance, origin, rater, value) rows as the arrays gold_table_build takes."""
    from annotation.export.gold import Ratings

    rows = sorted(rows, key=lambda r: r[0])
    answers = []
    for q in questions:
        column = np.empty(len(rows), dtype=object)
        column[:] = [r[3].get(q.key) for r in rows]
        answers.append(column.astype(float) if q.type == "numeric" else column)
    raters = {name: i for i, name in enumerate(sorted({r[2] for r in rows}))}
    return Ratings(np.array([r[0] for r in rows]), np.array([("human", "llm").index(r[1]) for r in rows]),
                   np.array([raters[r[2]] for r in rows]), answers)


def test_gold_follows_the_policy_and_adjudication_overrides():
    from annotation.export.gold import LABEL_SOURCES, gold_table_build
    from annotation.quality.aggregate import AggregationPolicy

    questions = parse_questions([
        {"key": "emotion", "type": "single_choice", "labels": ["joy", "anger", "fear"]},
        {"key": "emotions", "type": "multi_label", "labels": ["joy", "anger"], "intensity": True},
        {"key": "valence", "type": "numeric", "min": 1, "max": 5},
    ])
    rows = [
        (1, "human", "a", {"emotion": "anger", "emotions": {"joy": 3, "anger": 1}, "valence": 2}),
        (1, "human", "b", {"emotion": "joy", "emotions": {"joy": 1}, "valence": 3}),
        (1, "human", "c", {"emotion": "fear", "emotions": {"joy": 2}}),
        (1, "human", "d", {"emotion": "anger"}),
        (1, "human", "e", {"emotion": "joy"}),
        (2, "human", "a", {"emotion": "fear", "emotions": {}}),
        (3, "human", "a", {"emotion": "joy"}),
        (3, "human", "b", {"emotion": "anger"}),
        (3, "llm", "gemma", {"emotion": "fear"}),
    ]
    ratings = _gold_ratings(rows, questions)
    abstain = gold_table_build(questions, ("human", "llm"), ratings, AggregationPolicy())
    human = abstain.by_origin["human"]
    # Item 1: joy and anger tie at 2 -> left open for review (never settled by label order); the other questions
    # still have gold. Item 3: only its single-choice question, a tie -> no human gold at all.
    assert human.utterance_ids.tolist() == [1, 2]
    assert [abstain.value("human", 0, r) for r in range(2)] == [None, 2]
    assert abstain.value("human", 1, 0) == ((0, 2),)  # joy chosen 3 of 3 times (lower median 2); anger 1 of 3
    assert abstain.value("human", 1, 1) == ()  # "none of these" is an answer
    assert abstain.value("human", 2, 0) == 2.5
    assert [LABEL_SOURCES[k] for k in human.sources] == ["aggregated", "single_annotation"]
    assert abstain.open_ties == 2 and abstain.by_origin["llm"].utterance_ids.tolist() == [3]

    decided = gold_table_build(questions, ("human", "llm"), ratings, AggregationPolicy(tie_policy="prefer_order"),
                               adjudications={3: {"emotion": "fear"}})
    human = decided.by_origin["human"]
    assert human.utterance_ids.tolist() == [1, 2, 3]
    assert decided.value("human", 0, 0) == 0  # prefer_order: joy, listed first
    assert [LABEL_SOURCES[k] for k in human.sources] == ["tie_broken", "single_annotation", "adjudicated"]
    assert decided.value("human", 0, 2) == 2 and human.n_annotations.tolist() == [5, 1, 2]
    assert decided.open_ties == 0


def test_same_text_joins_groups_whatever_the_grouping():
    conversation = np.array([0, 1, 2, 3])
    speaker = np.full(4, MISSING)
    text = np.array([7, MISSING, 7, 8])
    groups = group_components(conversation, speaker, "conversation", same_text=text)
    assert groups[0] == groups[2] and len(set(groups.tolist())) == 3
    alone = group_components(conversation, speaker, "none", same_text=text)
    assert alone[0] == alone[2] and alone[1] != alone[3]
