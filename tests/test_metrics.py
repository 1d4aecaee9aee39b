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
