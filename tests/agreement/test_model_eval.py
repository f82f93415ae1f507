"""Model or LLM versus human labels."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import (
    AgreementInputError,
    calibration_report,
    classification_report,
    concordance_correlation,
    macro_f1,
    multi_label_report,
)


def test_accuracy_macro_f1_and_confusion_by_hand() -> None:
    truth = ["joy", "joy", "joy", "anger", "anger", "fear", None]
    predicted = ["joy", "joy", "anger", "anger", "joy", "joy", "joy"]
    report = classification_report(truth, predicted)
    assert report.n_items == 6
    assert report.accuracy == pytest.approx(3 / 6)
    # joy: P = 2/4, R = 2/3 -> F1 = 4/7; anger: P = 1/2, R = 1/2 -> 1/2; fear: 0.
    assert report.per_label.loc["joy", "f1"] == pytest.approx(4 / 7)
    assert report.macro_f1 == pytest.approx((4 / 7 + 1 / 2 + 0) / 3)
    assert report.confusion.loc["joy", "anger"] == 1
    assert report.confusion.loc["fear", "joy"] == 1
    assert report.confusion.to_numpy().sum() == 6
    assert report.as_dict()["confusion"]["labels"] == ["anger", "fear", "joy"]  # type: ignore[index]
    # UAR: mean recall over labels present in the truth: joy 2/3, anger 1/2, fear 0.
    assert report.uar == pytest.approx((2 / 3 + 1 / 2 + 0) / 3) and report.as_dict()["uar"] == report.uar
    # A label that never occurs in the truth does not count towards UAR (its recall is undefined).
    assert classification_report(["joy", "anger"], ["joy", "joy"], labels=["joy", "anger", "fear"]).uar == 0.5
    with pytest.raises(AgreementInputError, match="not among the given labels"):
        classification_report(["joy"], ["fear"], labels=["joy"])


def test_concordance_correlation() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert concordance_correlation(x, x) == pytest.approx(1.0)
    # A constant shift keeps Pearson's r at 1 but lowers CCC: 2 * 2 / (2 + 2 + 1) = 0.8 (population variances).
    assert concordance_correlation(x, x + 1.0) == pytest.approx(0.8)
    y = np.array([1.5, 1.8, 3.3, 3.9, 5.6])
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    assert concordance_correlation(x, y) == pytest.approx(2 * sxy / (x.var() + y.var() + (x.mean() - y.mean()) ** 2))
    assert concordance_correlation([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    with pytest.raises(AgreementInputError, match="same length"):
        concordance_correlation([1.0, 2.0], [1.0])


def test_calibration_report_by_hand() -> None:
    # Bin [0.6, 0.7): confidences 0.6 and 0.65, one right -> |0.5 - 0.625|; bin [0.9, 1.0]: 0.9 and 1.0, both right.
    report = calibration_report([0.6, 0.65, 0.9, 1.0], [True, False, True, True], bins=10)
    expected = 2 / 4 * abs(0.5 - 0.625) + 2 / 4 * abs(1.0 - 0.95)
    assert report["ece"] == pytest.approx(expected) and report["n_items"] == 4
    bins = report["bins"]
    assert len(bins) == 10 and bins[6]["count"] == 2 and bins[9]["count"] == 2  # type: ignore[index]
    assert bins[6]["accuracy"] == 0.5 and bins[0]["mean_confidence"] is None  # type: ignore[index]
    perfect = calibration_report([0.75] * 4, [True, True, True, False])
    assert perfect["ece"] == pytest.approx(0.0)
    with pytest.raises(AgreementInputError, match="in \\[0, 1\\]"):
        calibration_report([1.5], [True])


def test_one_macro_f1_for_single_and_multi_label() -> None:
    # "fear" is listed but neither side ever says it: it is left out of macro-F1 (scikit-learn's default).
    report = classification_report(["joy", "anger", "joy"], ["joy", "joy", "joy"], labels=["joy", "anger", "fear"])
    assert report.macro_f1 == pytest.approx((0.8 + 0.0) / 2) == macro_f1([0.8, 0.0, 0.0], [True, True, False])
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=bool)
    predicted = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=bool)
    multi = multi_label_report(truth, predicted, ["joy", "anger", "fear"])
    # joy: F1 1; anger: P 1, R 1/2 -> 2/3; fear: never chosen by either side -> left out
    assert multi.per_label["f1"].tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    assert multi.macro_f1 == pytest.approx((1 + 2 / 3) / 2)
    assert multi.exact_match_accuracy == pytest.approx(2 / 3)
    assert multi.per_label.loc["anger", "fn"] == 1 and multi.per_label.loc["fear", "tn"] == 3
    assert np.isnan(macro_f1([0.0], [False]))
    with pytest.raises(AgreementInputError, match="items × 3 labels"):
        multi_label_report(truth[:, :2], predicted[:, :2], ["joy", "anger", "fear"])
