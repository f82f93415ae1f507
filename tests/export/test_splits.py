"""The split algorithm on plain arrays (no database)."""

from __future__ import annotations

import numpy as np

from annotation.export.gold import majority_aggregate
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


def test_majority_tie_rule_multi_label_and_mean():
    questions = parse_questions([
        {"key": "emotion", "type": "single_choice", "labels": ["joy", "anger", "fear"]},
        {"key": "emotions", "type": "multi_label", "labels": ["joy", "anger"], "intensity": True},
        {"key": "valence", "type": "numeric", "min": 1, "max": 5},
    ])
    answers = [
        {"emotion": "anger", "emotions": {"joy": 3, "anger": 1}, "valence": 2},
        {"emotion": "joy", "emotions": {"joy": 1}, "valence": 3},
        {"emotion": "fear", "emotions": {"joy": 2}},
        {"emotion": "anger"},
        {"emotion": "joy"},
    ]
    emotion, emotions, valence = majority_aggregate(questions, answers)
    assert emotion == 0  # joy and anger tie at 2: the label listed first wins
    assert emotions == ((0, 2),)  # joy chosen 3 of 3 times (lower median 2); anger 1 of 3
    assert valence == 2.5
