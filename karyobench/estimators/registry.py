"""Estimators by name: what a study's ``estimators[].kind`` refers to.

Each entry builds a fresh, unfitted scikit-learn estimator; study ``params`` are applied
with ``set_params`` so every name in ``get_params()`` (e.g. ``svc__C``) is addressable.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from sklearn.base import BaseEstimator

from karyobench.errors import ConfigError

EstimatorFactory = Callable[[], BaseEstimator]
_REGISTRY: dict[str, tuple[EstimatorFactory, str]] = {}
_TENSORFLOW: set[str] = set()
_NUMERICS_VERSION: dict[str, int] = {}


def register(name: str, description: str, tensorflow: bool = False,
             numerics_version: int = 0):
    """Decorator: make ``factory`` available to studies as ``kind: name``.

    ``tensorflow=True`` marks estimators whose results depend on TensorFlow's numerics
    flags (oneDNN), which then become part of their folds' cache keys.

    ``numerics_version`` is part of the fold keys of ``name`` when it is not 0: bump it
    whenever a code change alters what training computes (an optimizer kernel, the order
    of batches, a fused loop), or a cached or committed fold of the old code would be
    reused as if today's code had made it. A DCNN fold trained before the fused Adam
    kernel and the one-call-per-epoch loop (2026-11-26) differs from today's retrain in
    12-15% of its predictions (docs/results.md, bioimlab_noise), so the mechanism exists;
    0 keeps every key of folds made before it.
    """

    def decorate(factory: EstimatorFactory) -> EstimatorFactory:
        _REGISTRY[name] = (factory, description)
        if tensorflow:
            _TENSORFLOW.add(name)
        if numerics_version:
            _NUMERICS_VERSION[name] = int(numerics_version)
        return factory

    return decorate


def numerics_version(kind: str) -> int:
    """The training-arithmetic version of ``kind`` (0: unchanged since keys began)."""
    _load_builtins()
    return _NUMERICS_VERSION.get(kind, 0)


def uses_tensorflow(kind: str) -> bool:
    """True if estimator ``kind`` trains with TensorFlow."""
    _load_builtins()
    return kind in _TENSORFLOW


def available() -> dict[str, str]:
    """Registered estimator names and their one-line descriptions."""
    _load_builtins()
    return {name: description for name, (_, description) in sorted(_REGISTRY.items())}


def build(kind: str, params: dict | None = None, random_state: int | None = None,
          where: str = "estimator") -> BaseEstimator:
    """A new estimator ``kind`` with ``params`` set; clear errors for unknown names."""
    _load_builtins()
    if kind not in _REGISTRY:
        close = difflib.get_close_matches(kind, list(_REGISTRY), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"{where}: unknown estimator kind '{kind}'.{hint} "
            f"Available: {', '.join(sorted(_REGISTRY))}.")
    estimator = _REGISTRY[kind][0]()
    valid = estimator.get_params(deep=True)
    components = _components(valid)
    for key in params or {}:
        if key not in valid:
            close = difflib.get_close_matches(key, list(valid), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            settable = ", ".join(k for k in sorted(valid)
                                 if not _is_internal(k) and k not in components)
            raise ConfigError(
                f"{where}: '{kind}' has no parameter '{key}'.{hint} Settable: {settable}.")
        if key in components:
            inner = sorted(k for k in valid if k.startswith(key + "__"))
            example = f" (e.g. '{inner[0]}')" if inner else ""
            raise ConfigError(
                f"{where}: '{key}' is a component of '{kind}', not a parameter: the "
                f"estimator kind fixes its steps. Set the component's parameters "
                f"instead{example}, or choose another kind.")
    try:
        estimator.set_params(**(params or {}))
        _validate_values(estimator)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: invalid parameters for '{kind}': {err}") from None
    if random_state is not None:
        seeded = {k: random_state for k in estimator.get_params(deep=True)
                  if k == "random_state" or k.endswith("__random_state")}
        seeded = {k: v for k, v in seeded.items() if k not in (params or {})}
        estimator.set_params(**seeded)
    return estimator


def seed_params(kind: str, params: dict, base_seed: int, offset: int) -> dict:
    """``params`` for training seed ``offset`` (0 = the study's own, unchanged).

    Every ``random_state`` of the estimator (and of its pipeline steps) is set to
    ``base_seed + offset``, where ``base_seed`` is the seed the params already fix, if any.
    Seeds are ordinary parameters, so a seed-``k`` job has the key of a study that set
    ``random_state: base + k`` by hand (its committed folds are recovered). An estimator
    without a random state gets its params back unchanged: it has no seed noise.
    """
    if offset == 0:
        return dict(params)
    _load_builtins()
    names = [k for k in _REGISTRY[kind][0]().get_params(deep=True)
             if k == "random_state" or k.endswith("__random_state")]
    fixed = [params[k] for k in names if params.get(k) is not None]
    base = int(fixed[0]) if fixed else int(base_seed)
    return {**params, **{name: base + offset for name in names}}


def _validate_values(estimator) -> None:
    """Check parameter values now (scikit-learn would only do it inside ``fit``, after
    other folds have already trained), for the estimator and each pipeline step."""
    from karyobench.compat.sklearn import validate_params

    steps = [step for _, step in getattr(estimator, "steps", [])]
    for step in [estimator, *steps]:  # the pipeline's own parameters, then each step's
        check = getattr(step, "check_params", None)  # constraints plus the step's own rules
        if callable(check):
            check()
        else:
            validate_params(step)


def _components(params: dict) -> set[str]:
    """Keys of ``get_params(deep=True)`` that hold a step or a sub-estimator (or the
    ``steps`` list): replacing them would make another estimator than ``kind``."""
    return {key for key, value in params.items()
            if isinstance(value, BaseEstimator) or key.split("__")[-1] == "steps"}


def _is_internal(key: str) -> bool:
    return key.split("__")[-1] in {"build_fn", "model", "warm_start", "callbacks", "metrics",
                                   "run_eagerly", "validation_batch_size"}


#: the built-in kinds: (name, "module:factory", description, trains with TensorFlow).
#: Declared here as data, so the factory modules never import the registry (no import
#: cycle) and a kind is listed without importing TensorFlow.
BUILTINS = (
    ("svm_linear_pixels", "karyobench.estimators.baselines:svm_linear_pixels",
     "the seed's baseline: linear SVC (C=1) on raw pixels", False),
    ("svm_rbf_hog", "karyobench.estimators.baselines:svm_rbf_hog",
     "RBF SVC on standardised HOG features", False),
    ("rf_hog", "karyobench.estimators.baselines:rf_hog",
     "random forest (500 trees) on HOG features", False),
    ("rf_pixels", "karyobench.estimators.baselines:rf_pixels",
     "random forest (500 trees) on raw pixels", False),
    ("logreg_pixels", "karyobench.estimators.baselines:logreg_pixels",
     "L2 logistic regression on standardised pixels", False),
    ("dcnn", "karyobench.estimators.dcnn_entry:dcnn",
     "the seed DCNN (conv 32/64/64, dense 1024/1024/512) via scikeras", True),
    ("resnet", "karyobench.estimators.dcnn_entry:resnet",
     "compact residual CNN (stages 16/32/64, 2 blocks each, GAP head)", True),
    ("vgg", "karyobench.estimators.dcnn_entry:vgg",
     "VGG-style CNN with batch norm (stages 32/64/128, 2 convs each, GAP head)", True),
)


def _load_builtins() -> None:
    for name, target, description, tensorflow in BUILTINS:
        if name not in _REGISTRY:
            register(name, description, tensorflow=tensorflow)(_Lazy(target))


class _Lazy:
    """A factory imported on first call (``"module:function"``)."""

    def __init__(self, target: str):
        self.target = target

    def __call__(self) -> BaseEstimator:
        import importlib

        module, function = self.target.split(":")
        return getattr(importlib.import_module(module), function)()
