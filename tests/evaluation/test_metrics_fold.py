"""Fold metrics against hand-computed values; one fold job end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from karyobench.evaluation.fold import FoldJob, class_scores, predictions, run_fold
from karyobench.evaluation.metrics import fold_metrics, roc_auc


def test_multiclass_metrics_by_hand():
    classes = ["a", "b", "c"]
    y_true = np.array(["a", "a", "a", "a", "b", "b", "c", "c"])
    y_pred = np.array(["a", "a", "a", "b", "b", "c", "c", "c"])
    proba = np.eye(3)[[classes.index(p) for p in y_pred]]
    m = fold_metrics(y_true, y_pred, proba, classes)
    assert m["accuracy"] == pytest.approx(6 / 8)
    # recalls: a 3/4, b 1/2, c 2/2
    assert m["balanced_accuracy"] == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    # F1: a: p=1, r=.75 -> 6/7; b: p=.5, r=.5 -> .5; c: p=2/3, r=1 -> .8
    assert m["macro_f1"] == pytest.approx((6 / 7 + 0.5 + 0.8) / 3)
    # one-hot scores: AUC per class = (TPR + TNR) / 2
    auc_a = (0.75 + 1.0) / 2
    auc_b = (0.5 + 5 / 6) / 2
    auc_c = (1.0 + 5 / 6) / 2
    assert m["roc_auc"] == pytest.approx((auc_a + auc_b + auc_c) / 3)


def test_binary_auc_by_hand():
    classes = ["5", "del(5)(p14)"]
    y_true = np.array(["5", "5", "del(5)(p14)", "del(5)(p14)"])
    positive = np.array([0.1, 0.6, 0.4, 0.9])
    proba = np.column_stack([1 - positive, positive])
    # pairs (pos, neg): (0.4, 0.1) ok, (0.4, 0.6) wrong, (0.9, *) ok -> 3/4
    assert roc_auc(y_true, proba, classes) == pytest.approx(0.75)
    y_pred = np.where(positive > 0.5, classes[1], classes[0])
    m = fold_metrics(y_true, y_pred, proba, classes)
    assert m["accuracy"] == pytest.approx(0.5)


def test_auc_undefined_when_a_class_is_missing():
    classes = ["a", "b", "c"]
    y_true = np.array(["a", "b", "a"])
    proba = np.full((3, 3), 1 / 3)
    assert math.isnan(roc_auc(y_true, proba, classes))
    assert math.isnan(roc_auc(np.array(["a", "a"]), np.full((2, 2), .5), ["a", "b"]))


def test_macro_f1_counts_a_class_never_predicted_or_present_as_zero():
    classes = ["a", "b", "c"]
    y = np.array(["a", "b"])
    m = fold_metrics(y, y, np.eye(3)[[0, 1]], classes)
    assert m["accuracy"] == 1.0
    assert m["macro_f1"] == pytest.approx(2 / 3)  # 'c' absent: F1 0 with zero_division=0


class _MarginOnly:
    classes_ = np.array(["b", "a"])

    def decision_function(self, X):
        return np.array([2.0, -1.0])


def test_class_scores_reorders_and_uses_decision_values():
    scores = class_scores(_MarginOnly(), None, ["a", "b"])
    # binary decision > 0 means classes_[1] ('a'); columns follow the task order a, b
    expected_a = 1 / (1 + np.exp(-np.array([2.0, -1.0])))
    np.testing.assert_allclose(scores[:, 0], expected_a)
    np.testing.assert_allclose(scores.sum(axis=1), 1)


def test_run_fold_with_a_baseline(small_bioimlab):
    data = small_bioimlab
    classes = ("1", "2", "16", "21")
    groups = data.groups["karyotype_id"]
    train, test = np.flatnonzero(groups != "3"), np.flatnonzero(groups == "3")
    job = FoldJob(split="group", task="t", estimator="svm", kind="svm_linear_pixels",
                  params={}, repeat=0, fold=0, seed=1, classes=classes, train=train,
                  test=test, data_fingerprint=data.fingerprint())
    result = run_fold(job, data.images, data.labels)
    assert result.y_pred.shape == (len(test),)
    assert result.proba.shape == (len(test), 4)
    np.testing.assert_allclose(result.proba.sum(axis=1), 1, atol=1e-9)
    assert result.metrics["accuracy"] == pytest.approx(
        float(np.mean(result.y_pred == data.labels[test])))
    # the key covers what determines the result
    other = FoldJob(**{**job.__dict__, "params": {"svc__C": 2.0}})
    assert other.key != job.key
    same = FoldJob(**{**job.__dict__})
    assert same.key == job.key
    moved = FoldJob(**{**job.__dict__, "test": test[:-1]})
    assert moved.key != job.key


def test_fold_refuses_to_fit_on_a_test_image():
    images = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    labels = np.array(["a", "b"] * 4)
    job = FoldJob(split="group", task="t", estimator="svm", kind="svm_linear_pixels",
                  params={}, repeat=0, fold=0, seed=1, classes=("a", "b"),
                  train=np.arange(6), test=np.array([5, 6, 7]))
    with pytest.raises(AssertionError, match="train and test share images"):
        run_fold(job, images, labels)


def test_multiclass_auc_with_classes_in_karyotype_order():
    # Task order 1, 2, 10, X is not sorted as strings; AUC must still be defined.
    classes = ["1", "2", "10", "X"]
    y_true = np.array(classes * 3)
    proba = np.tile(np.eye(4), (3, 1)) * 0.7 + 0.075
    assert roc_auc(y_true, proba, classes) == pytest.approx(1.0)
    swapped = proba[:, [1, 0, 2, 3]]  # classes 1 and 2 confused both ways
    # classes 1 and 2: positives tie with 6 of 9 negatives and lose to 3 -> AUC 1/3 each
    assert roc_auc(y_true, swapped, classes) == pytest.approx((1 / 3 + 1 / 3 + 1 + 1) / 4)


@pytest.mark.parametrize("labels, tta", [(("x", "y"), False), (("p", "q", "r"), True)])
def test_keras_labels_come_from_the_one_scoring_pass(labels, tta):
    """``predictions`` infers once for a Keras model; its labels must be what the model's
    own ``predict`` says and its scores what ``class_scores`` says (binary sigmoid head and
    softmax head with test-time flips; a task order unlike the fitted one)."""
    from karyobench.estimators import build

    rng = np.random.default_rng(0)
    y = np.resize(np.array(labels), 48)
    # each class its own brightness: something to learn at once, so labels are not constant
    X = (0.1 * rng.random((48, 16, 16))
         + 0.4 * np.searchsorted(labels, y)[:, None, None]).astype(np.float32)
    clf = build("dcnn", {"epochs": 4, "batch_size": 16, "padding": "same",
                         "conv_filters": [4], "dense_units": [8], "tta": tta},
                random_state=0).fit(X, y)
    task = list(reversed(labels))
    y_pred, proba = predictions(clf, X, task)
    np.testing.assert_array_equal(y_pred, np.asarray(clf.predict(X)).astype(str))
    np.testing.assert_allclose(proba, class_scores(clf, X, task), rtol=1e-6)
    assert len(set(y_pred)) > 1
