"""scikit-learn's parameter-constraint machinery, which it keeps private.

Estimators declare ``_parameter_constraints`` (the scikit-learn convention) with the
constraint types re-exported here, and check them with :func:`validate_params`.
"""

from __future__ import annotations

from sklearn.utils._param_validation import (  # noqa: F401 (re-exported)
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = ["Interval", "InvalidParameterError", "StrOptions", "validate_params"]


def validate_params(estimator) -> None:
    """Check ``estimator``'s own parameters against its ``_parameter_constraints`` now
    (scikit-learn does it only inside ``fit``). Raises ``InvalidParameterError`` (a
    ``ValueError``) naming the parameter; an estimator without constraints passes.
    """
    constraints = getattr(estimator, "_parameter_constraints", None)
    if constraints is None:
        return
    validate_parameter_constraints(constraints, estimator.get_params(deep=False),
                                   caller_name=type(estimator).__name__)
