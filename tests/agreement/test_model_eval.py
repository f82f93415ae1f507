"""Model or LLM versus human labels."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import AgreementInputError, classification_report, concordance_correlation


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
