from __future__ import annotations

import pytest

from models_zoo.labels import (
    EKMAN_LABELS,
    GOEMOTIONS_LABELS,
    LabelMapping,
    LabelMappingError,
    goemotions_to_ekman,
)
from models_zoo.outputs import LabelScores

SEVEN = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "contempt")


def test_goemotions_28_labels_fold_into_6_ekman_with_neutral_dropped() -> None:
    mapping = goemotions_to_ekman()
    assert len(GOEMOTIONS_LABELS) == 28
    assert mapping.target_labels == EKMAN_LABELS
    assert mapping.dropped == ("neutral",)
    assert set(mapping.mapping) | {"neutral"} == set(GOEMOTIONS_LABELS)

    probabilities = dict.fromkeys(GOEMOTIONS_LABELS, 0.0)
    probabilities.update({"amusement": 0.3, "gratitude": 0.2, "annoyance": 0.1, "neutral": 0.4})
    mapped = mapping.apply(LabelScores.from_probabilities(GOEMOTIONS_LABELS, list(probabilities.values())))

    assert mapped.dropped_mass == pytest.approx(0.4)
    assert mapped.scores.scores["joy"] == pytest.approx(0.5 / 0.6)
    assert mapped.scores.scores["anger"] == pytest.approx(0.1 / 0.6)
    assert sum(mapped.scores.scores.values()) == pytest.approx(1.0)
    assert mapped.scores.top == "joy"
    assert mapped.scores.margin == pytest.approx(0.4 / 0.6)


def test_goemotions_keeps_neutral_when_the_schema_has_it() -> None:
    mapping = goemotions_to_ekman(keep_neutral=True)
    assert mapping.dropped == ()
    assert mapping.mapping["neutral"] == "neutral"


def test_iemocap_four_classes_onto_seven_labels_drop_neutral_and_report_unreached() -> None:
    iemocap = ("neu", "hap", "ang", "sad")
    mapping = LabelMapping.by_synonyms(iemocap, SEVEN)
    assert mapping.mapping == {"hap": "joy", "ang": "anger", "sad": "sadness"}
    assert mapping.dropped == ("neu",)
    assert mapping.unreached == ("disgust", "fear", "surprise", "contempt")
    assert "dropped: neu" in mapping.report()
    assert "never predicted: disgust, fear, surprise, contempt" in mapping.report()

    mapped = mapping.apply(LabelScores.from_probabilities(iemocap, [0.5, 0.25, 0.125, 0.125]))
    assert mapped.dropped_mass == pytest.approx(0.5)
    assert mapped.scores.scores == pytest.approx(
        {"anger": 0.25, "disgust": 0.0, "fear": 0.0, "joy": 0.5, "sadness": 0.25, "surprise": 0.0, "contempt": 0.0})


def test_every_model_label_must_be_mapped_or_dropped_explicitly() -> None:
    with pytest.raises(LabelMappingError, match=r"neither mapped nor dropped: \['neu'\]"):
        LabelMapping.build(("neu", "hap"), SEVEN, {"hap": "joy"})
    with pytest.raises(LabelMappingError, match=r"not labels of the project: \['happiness'\]"):
        LabelMapping.build(("hap",), SEVEN, {"hap": "happiness"})
    with pytest.raises(LabelMappingError, match=r"both mapped and dropped: \['hap'\]"):
        LabelMapping.build(("hap",), SEVEN, {"hap": "joy"}, drop=["hap"])


def test_all_mass_on_dropped_labels_gives_uniform_scores_and_full_dropped_mass() -> None:
    mapping = LabelMapping.by_synonyms(("neu", "hap"), ("joy", "anger"))
    mapped = mapping.apply(LabelScores.from_probabilities(("neu", "hap"), [1.0, 0.0]))
    assert mapped.dropped_mass == pytest.approx(1.0)
    assert mapped.scores.scores == pytest.approx({"joy": 0.5, "anger": 0.5})
    assert mapped.scores.entropy == pytest.approx(1.0)


def test_multi_label_scores_merge_as_any_of() -> None:
    mapping = LabelMapping.build(("joy", "amusement", "anger"), ("joy", "anger"), {"joy": "joy", "amusement": "joy",
                                                                                   "anger": "anger"})
    mapped = mapping.apply(LabelScores.from_probabilities(("joy", "amusement", "anger"), [0.5, 0.5, 0.1],
                                                          multi_label=True))
    assert mapped.scores.scores == pytest.approx({"joy": 0.75, "anger": 0.1})
    assert mapped.scores.multi_label


def test_uncertainty_entropy_and_margin() -> None:
    certain = LabelScores.from_probabilities(("a", "b", "c"), [1.0, 0.0, 0.0])
    uniform = LabelScores.from_probabilities(("a", "b", "c"), [1 / 3, 1 / 3, 1 / 3])
    assert (certain.entropy, certain.margin) == (pytest.approx(0.0), pytest.approx(1.0))
    assert (uniform.entropy, uniform.margin) == (pytest.approx(1.0), pytest.approx(0.0))
    with pytest.raises(ValueError, match="2 scores for 3 labels"):
        LabelScores.from_probabilities(("a", "b", "c"), [0.5, 0.5])
