"""Moved to :mod:`karyobench.compat.scikeras`; kept so existing imports still work."""

from karyobench.compat.scikeras import SklearnKerasClassifier  # noqa: F401
