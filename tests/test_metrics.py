import numpy as np
import pytest

from crackcli.model.metrics import classification_report, confusion_matrix


def test_confusion_matrix_rows_are_truth():
    m = confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 2)
    assert m.tolist() == [[1, 1], [1, 2]]


def test_report_figures_match_hand_computation():
    report = classification_report(np.array([[8, 2], [1, 9]]), ["crack", "no_crack"])
    crack = report["per_class"]["crack"]
    assert crack["precision"] == pytest.approx(8 / 9) and crack["recall"] == pytest.approx(0.8)
    assert crack["f1"] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8)) and crack["support"] == 10
    assert report["accuracy"] == pytest.approx(17 / 20)
    assert report["f1"] == pytest.approx((crack["f1"] + report["per_class"]["no_crack"]["f1"]) / 2)


def test_absent_class_does_not_enter_the_macro_average_and_empty_ratios_are_zero():
    report = classification_report(np.array([[5, 0, 0], [0, 5, 0], [0, 0, 0]]), ["a", "b", "scratch"])
    assert report["f1"] == 1.0
    assert report["per_class"]["scratch"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert classification_report(np.zeros((2, 2), dtype=int), ["a", "b"])["accuracy"] == 0.0


def test_ranking_curves_match_hand_computation():
    from crackcli.model.metrics import ranking_curves

    # Ranked: pos 0.9, neg 0.8, pos 0.7, then neg and pos tied at 0.2.
    curves = ranking_curves(np.array([1, 0, 1, 0, 1], bool), np.array([0.9, 0.8, 0.7, 0.2, 0.2]))
    assert list(curves["thresholds"]) == [0.9, 0.8, 0.7, 0.2]  # one point per distinct score
    assert list(curves["recall"]) == [1 / 3, 1 / 3, 2 / 3, 1.0]
    assert np.allclose(curves["precision"], [1.0, 0.5, 2 / 3, 0.6])
    assert curves["ap"] == pytest.approx(1 / 3 * 1.0 + 1 / 3 * 2 / 3 + 1 / 3 * 0.6)
    # AUROC is the share of (positive, negative) pairs ordered right, ties counting half.
    pairs = [(p, n) for p in (0.9, 0.7, 0.2) for n in (0.8, 0.2)]
    assert curves["auroc"] == pytest.approx(sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / 6)
    assert ranking_curves(np.ones(3, bool), np.array([0.1, 0.5, 0.9]))["auroc"] is None


def test_a_threshold_decides_for_the_crack_class_and_argmax_among_the_others():
    from crackcli.train.evaluate import decide

    probs = np.array([[0.30, 0.50, 0.20], [0.25, 0.35, 0.40], [0.60, 0.10, 0.30]])
    assert list(decide(probs, 0, None)) == [1, 2, 0]
    assert list(decide(probs, 0, 0.28)) == [0, 2, 0]
    assert list(decide(probs, 0, 0.7)) == [1, 2, 2]
