from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models_zoo.errors import PermanentModelError
from models_zoo.heads import HeadTrainingError, LinearHead, train_linear_head

LABELS = ("joy", "anger", "fear")


def _blobs(seed: int, per_label: int = 40) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (len(LABELS), 16)) * 4
    rows, targets = [], []
    for centre, label in zip(centres, LABELS):
        rows.append(centre + rng.normal(0, 1, (per_label, 16)))
        targets += [label] * per_label
    return np.vstack(rows), targets


def test_head_learns_a_separable_problem_and_round_trips(tmp_path: Path) -> None:
    x, y = _blobs(seed=1)
    head, report = train_linear_head(x, y, labels=LABELS, feature="toy")
    assert report.train_accuracy == 1.0
    assert report.per_label == {"joy": 40, "anger": 40, "fear": 40}

    predictions = head.predict(x)
    assert [p.top for p in predictions] == y
    assert all(p.margin > 0.5 and p.entropy < 0.5 for p in predictions)

    path = head.save(tmp_path / "head.safetensors")
    loaded = LinearHead.load(path)
    assert loaded.labels == LABELS and loaded.feature == "toy" and not loaded.multi_label
    np.testing.assert_allclose(loaded.predict_proba(x), head.predict_proba(x), rtol=1e-6)


def test_uncertain_inputs_between_classes_have_high_entropy_low_margin() -> None:
    x, y = _blobs(seed=2)
    head, _ = train_linear_head(x, y, labels=LABELS, feature="toy")
    joy_centre = x[:40].mean(axis=0)
    anger_centre = x[40:80].mean(axis=0)
    sure, unsure = head.predict(np.stack([joy_centre, (joy_centre + anger_centre) / 2]))
    assert sure.top == "joy"
    assert unsure.margin < sure.margin
    assert unsure.entropy > sure.entropy


def test_multi_label_head() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (200, 8))
    targets = [[label for label, on in (("joy", row[0] > 0), ("anger", row[1] > 0)) if on] for row in x]
    head, report = train_linear_head(x, targets, labels=("joy", "anger"), feature="toy", multi_label=True)
    assert report.train_accuracy > 0.95
    both = head.predict(np.array([[3.0, 3.0] + [0.0] * 6]))[0]
    assert both.multi_label and both.scores["joy"] > 0.9 and both.scores["anger"] > 0.9


def test_training_refuses_bad_labels_with_row_and_reason() -> None:
    x, _ = _blobs(seed=4, per_label=2)
    with pytest.raises(HeadTrainingError, match=r"row 1: label 'happy' is not one of"):
        train_linear_head(x[:2], ["joy", "happy"], labels=LABELS, feature="toy")
    with pytest.raises(HeadTrainingError, match="at least two different labels"):
        train_linear_head(x[:2], ["joy", "joy"], labels=LABELS, feature="toy")


def test_loading_refuses_files_that_are_not_heads(tmp_path: Path) -> None:
    pickle_like = tmp_path / "head.pkl"
    pickle_like.write_bytes(b"\x80\x04\x95 not a safetensors file")
    with pytest.raises(PermanentModelError, match="not a readable safetensors head"):
        LinearHead.load(pickle_like)

    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros((2, 2), dtype=np.float32)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(PermanentModelError, match="not a Sentio classifier head"):
        LinearHead.load(other)


def test_head_refuses_features_of_the_wrong_width() -> None:
    x, y = _blobs(seed=5)
    head, _ = train_linear_head(x, y, labels=LABELS, feature="toy")
    with pytest.raises(PermanentModelError, match=r"expects features of width 16, got shape \(1, 384\)"):
        head.predict(np.zeros((1, 384)))


def test_cross_validated_probabilities_never_score_a_row_with_a_head_that_saw_it() -> None:
    from models_zoo.heads import cross_validated_probabilities

    x, y = _blobs(seed=4)
    probabilities = cross_validated_probabilities(x, y, labels=LABELS, folds=5)
    assert probabilities.shape == (len(y), len(LABELS)) and not np.isnan(probabilities).any()
    assert (np.array(LABELS)[probabilities.argmax(axis=1)] == np.array(y)).mean() > 0.95  # separable: still learnt

    # Labels that carry no signal: a head scoring its own training rows looks good, out-of-fold it is at chance.
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 1, (90, 40))
    random_labels = [LABELS[i] for i in rng.integers(0, 3, 90)]
    head, report = train_linear_head(noise, random_labels, labels=LABELS, feature="toy")
    out_of_fold = cross_validated_probabilities(noise, random_labels, labels=LABELS, folds=5)
    honest = (np.array(LABELS)[out_of_fold.argmax(axis=1)] == np.array(random_labels)).mean()
    assert report.train_accuracy > 0.8 and honest < 0.55


def test_device_chooses_batch_sizes() -> None:
    from models_zoo.device import DeviceChoice

    assert DeviceChoice("cpu", False).batch_items(cpu=64, gpu=256) == 64
    assert DeviceChoice("cuda", True, 16.0).batch_items(cpu=64, gpu=256) == 256
    assert DeviceChoice("cuda", True, 141.0).batch_items(cpu=64, gpu=256) == 2048  # grows with memory, up to 8x
    assert DeviceChoice("cuda", True, 8.0).batch_items(cpu=64, gpu=256) == 256  # never below the GPU default
    assert DeviceChoice("cuda", True, 141.0).batch_items(cpu=8, gpu=16, cap=64) == 64
