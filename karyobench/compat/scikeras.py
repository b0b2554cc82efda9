"""The one place that adapts scikeras 0.13 to current scikit-learn, and the one place
that reads scikeras' private wrapper state (for karyobench's own fit loop).

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


def fit_callbacks(estimator) -> list:
    """The Keras callbacks ``fit`` must pass (``callbacks`` plus ``fit__callbacks``, as
    scikeras initialised them for this fit: ``_fit_callbacks``), as a new list."""
    return list(getattr(estimator, "_fit_callbacks", None) or [])


def fit_seed(estimator):
    """The integer seed (or None) scikeras derived from ``random_state`` for this fit
    (``_random_state``: a ``RandomState`` is turned into an int at fit start)."""
    return estimator._random_state
