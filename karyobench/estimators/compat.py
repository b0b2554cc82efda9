"""The one place that adapts scikeras 0.13 to current scikit-learn.

scikeras 0.13 (unmaintained) declares its estimator type through ``_estimator_type`` and
``_more_tags``; scikit-learn >= 1.7 reads only ``__sklearn_tags__``. Without this subclass
``is_classifier()`` is False, ``cross_val_score(cv=5)`` silently uses unshuffled ``KFold``
instead of ``StratifiedKFold`` and scores on sorted labels collapse to 0.
"""

from __future__ import annotations

from sklearn.utils import ClassifierTags

from karyobench._tf import import_tensorflow

import_tensorflow()  # before scikeras imports it, so its banner is muted

from scikeras.wrappers import KerasClassifier  # noqa: E402


class SklearnKerasClassifier(KerasClassifier):
    """``KerasClassifier`` that scikit-learn recognises as a classifier."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.regressor_tags = None
        tags.target_tags.required = True
        tags.non_deterministic = True
        tags.input_tags.allow_nan = False
        return tags
