"""The DCNN under scikit-learn's own estimator checks, and why ``compat.py`` exists."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.model_selection import KFold, StratifiedKFold, check_cv
from sklearn.utils.estimator_checks import check_estimator

from karyobench.estimators.dcnn import DCNNClassifier

# Every check that fails for DCNNClassifier under scikit-learn 1.9 with scikeras 0.13, and
# why. The list is exact: the test fails if a listed check passes (remove it) or if an
# unlisted check fails.
#
# * check_estimator_tags_renamed - scikeras' BaseWrapper/KerasClassifier define
#   ``_more_tags`` without ``__sklearn_tags__`` in the same class; the check walks the MRO,
#   so our subclass's ``__sklearn_tags__`` cannot satisfy it (fix belongs in scikeras).
# * check_mixin_order - scikeras declares ``KerasClassifier(BaseWrapper, ClassifierMixin)``
#   (BaseEstimator left of ClassifierMixin); a subclass cannot reorder it (C3 MRO conflict).
# * check_n_features_in_after_fitting - scikeras' predict does not compare the number of
#   features with ``n_features_in_`` and raise sklearn's standard message.
# * check_estimator_sparse_array / check_estimator_sparse_matrix / check_estimator_sparse_tag -
#   scikeras fails on sparse input with an error that does not say sparse input is
#   unsupported.
# * check_supervised_y_2d - scikeras accepts a column-vector y without sklearn's
#   DataConversionWarning.
# * check_sample_weight_equivalence_on_dense_data - mini-batch SGD: weighting a sample by 2 is
#   not numerically the same as repeating it (batch composition and steps differ).
# * check_classifiers_train / check_class_weight_classifiers - accuracy thresholds (0.83 /
#   0.87) that a 4-filter, 1-epoch network cannot reach on the checks' tiny tabular data;
#   a bigger or longer-trained model would pass but would make this test minutes long.
EXPECTED_FAILED_CHECKS = {
    "check_estimator_tags_renamed": "scikeras defines _more_tags without __sklearn_tags__",
    "check_mixin_order": "scikeras: KerasClassifier(BaseWrapper, ClassifierMixin)",
    "check_n_features_in_after_fitting": "scikeras predict does not validate n_features_in_",
    "check_estimator_sparse_array": "scikeras sparse-input error does not mention sparse",
    "check_estimator_sparse_matrix": "scikeras sparse-input error does not mention sparse",
    "check_estimator_sparse_tag": "scikeras sparse-input error does not mention sparse",
    "check_supervised_y_2d": "scikeras does not warn on a column-vector y",
    "check_sample_weight_equivalence_on_dense_data":
        "mini-batch SGD: sample weights are not equivalent to repeated samples",
    "check_classifiers_train": "tiny 1-epoch network is below the 0.83 accuracy threshold",
    "check_class_weight_classifiers": "tiny 1-epoch network is below the 0.87 threshold",
}


def tiny():
    return DCNNClassifier(conv_filters=(4,), dense_units=(8,), epochs=1, padding="same",
                          random_state=0)


def tiny_resnet():
    from karyobench.estimators.resnet import ResNetClassifier

    return ResNetClassifier(widths=(4,), blocks=1, epochs=1, random_state=0)


@pytest.mark.slow
@pytest.mark.parametrize("make", [tiny, tiny_resnet], ids=["dcnn", "resnet"])
def test_check_estimator_with_exact_expected_failures(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(make(), expected_failed_checks=EXPECTED_FAILED_CHECKS,
                                  on_fail=None, on_skip=None)
    failed = {r["check_name"]: repr(r["exception"])[:300] for r in results
              if r["status"] == "failed"}
    assert not failed, f"unexpected failing checks: {failed}"
    xfailed = {r["check_name"] for r in results if r["status"] == "xfail"}
    passing_but_listed = set(EXPECTED_FAILED_CHECKS) - xfailed
    assert not passing_but_listed, f"listed as failing but passed: {passing_but_listed}"
    assert sum(r["status"] == "passed" for r in results) >= 40


def test_unpatched_scikeras_is_not_a_classifier_but_ours_is():
    """Why compat.py exists: sklearn >= 1.7 reads only __sklearn_tags__."""
    from scikeras.wrappers import KerasClassifier

    y = np.repeat([0, 1, 2], 10)
    plain = KerasClassifier(model=None)
    assert not is_classifier(plain)
    # ...so cross_val_score(cv=5) would use unshuffled KFold on label-sorted data
    assert type(check_cv(5, y, classifier=is_classifier(plain))) is KFold

    ours = tiny()
    assert is_classifier(ours)
    assert isinstance(check_cv(5, y, classifier=is_classifier(ours)), StratifiedKFold)
    tags = ours.__sklearn_tags__()
    assert tags.estimator_type == "classifier" and tags.classifier_tags is not None
