"""Search spaces as study data: what ``estimators[].tuning`` in a study YAML holds.

Each entry of ``space`` names a parameter of the estimator (anything ``set_params`` takes,
e.g. ``learning_rate`` or ``svc__C``) and how Optuna samples it:

    conv_filters:  {type: widths, depth: [2, 3], low: 8, high: 128, log: true}
    dense_units:   {type: widths, depth: [1, 4], low: 32, high: 1024, log: true}
    learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    dropout:       {type: float, low: 0.0, high: 0.5}
    epochs:        {type: int, low: 5, high: 40, step: 5}
    batch_size:    {type: categorical, choices: [32, 64, 128]}
    hog__pixels_per_cell: {type: categorical, choices: [[4, 4], [8, 8]]}

``widths`` samples a depth, then one width per layer (Optuna names ``<param>.depth``,
``<param>.0``, ``<param>.1`` ...), and sets the parameter to the list of widths.

``inner_params`` (beside ``space``) fixes parameters for the inner fits only, e.g.
``{epochs: 15}`` to choose between values with cheaper fits; the outer refit that is
scored on the test fold keeps the estimator's own parameters.

``default_trial`` (on by default with TPE) makes the estimator's own values of the
searched parameters the first trial of every search, so the winner's inner score is never
below the default's; ``inner_holdout: 0.2`` replaces the k inner folds by one grouped,
stratified hold-out (one inner fit per trial on ~80 % of the outer training set), and
``inner_repeats: 2`` averages two disjoint such hold-outs (two fits, half the variance);
``pruner: hyperband`` spends epochs as Hyperband's budget.
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from karyobench.errors import ConfigError


class StrictModel(BaseModel):
    """Base of every model of the study file (here and in ``karyobench.study``): an unknown
    key is an error, never ignored, and defaults are validated like given values."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class IntSpace(StrictModel):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _check(self):
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("log scale needs step 1")
        return self

    def suggest(self, trial, name: str):
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list:
        return list(range(self.low, self.high + 1, self.step))

    def to_optuna(self, name: str, value) -> dict:
        if not (_is_int(value) and self.low <= value <= self.high
                and (value - self.low) % self.step == 0):
            raise ValueError(f"{value!r} is not an integer in [{self.low}, {self.high}]"
                             + (f" on step {self.step}" if self.step != 1 else ""))
        return {name: int(value)}

    @property
    def upper(self):
        return self.high


class FloatSpace(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _check(self):
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError("log scale cannot have a step")
        return self

    def suggest(self, trial, name: str):
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def to_optuna(self, name: str, value) -> dict:
        ok = isinstance(value, Real) and not isinstance(value, bool) \
            and self.low <= value <= self.high
        if ok and self.step is not None:
            ok = math.isclose((value - self.low) / self.step,
                              round((value - self.low) / self.step), abs_tol=1e-9)
        if not ok:
            raise ValueError(f"{value!r} is not a number in [{self.low}, {self.high}]"
                             + (f" on step {self.step}" if self.step else ""))
        return {name: float(value)}

    @property
    def upper(self):
        return self.high


class CategoricalSpace(StrictModel):
    type: Literal["categorical"]
    choices: list[Any] = Field(..., min_length=1)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, value):
        keys = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(keys)) != len(keys):
            raise ValueError("choices must be distinct")
        return value

    def suggest(self, trial, name: str):
        # Optuna stores only None/bool/int/float/str; lists (e.g. [8, 8]) go through JSON.
        if self._plain():
            return trial.suggest_categorical(name, self.choices)
        return json.loads(trial.suggest_categorical(name, self.grid_values()))

    def grid_values(self) -> list:
        """The choices as Optuna stores them (lists JSON-encoded, as ``suggest`` does)."""
        return list(self.choices) if self._plain() else [json.dumps(c) for c in self.choices]

    def to_optuna(self, name: str, value) -> dict:
        for choice, stored in zip(self.choices, self.grid_values()):
            if _same(value, choice):
                return {name: stored}
        raise ValueError(f"{value!r} is not one of the choices {self.choices}")

    def _plain(self) -> bool:
        return all(c is None or isinstance(c, (bool, int, float, str)) for c in self.choices)

    @property
    def upper(self):
        numbers = [c for c in self.choices if isinstance(c, (int, float))
                   and not isinstance(c, bool)]
        return max(numbers) if numbers else None


class WidthsSpace(StrictModel):
    """A list of layer widths: depth first, then one width per layer."""

    type: Literal["widths"]
    depth: tuple[int, int] | int = Field(..., description="fixed depth or [min, max]")
    low: int = Field(..., ge=1)
    high: int = Field(..., ge=1)
    log: bool = False
    step: int = Field(1, ge=1)

    @field_validator("depth", mode="before")
    @classmethod
    def _depth(cls, value):
        if isinstance(value, list):
            if len(value) != 2:
                raise ValueError("depth is an integer or [min, max]")
            return tuple(value)
        return value

    @model_validator(mode="after")
    def _check(self):
        low, high = self.depth_range
        if low < 1 or high < low:
            raise ValueError("depth must satisfy 1 <= min <= max")
        _check_range(self.low, self.high, self.log)
        if self.log and self.step != 1:
            raise ValueError("log scale needs step 1")
        return self

    @property
    def depth_range(self) -> tuple[int, int]:
        return (self.depth, self.depth) if isinstance(self.depth, int) else self.depth

    def suggest(self, trial, name: str):
        low, high = self.depth_range
        depth = low if low == high else trial.suggest_int(f"{name}.depth", low, high)
        return [trial.suggest_int(f"{name}.{i}", self.low, self.high, step=self.step,
                                  log=self.log) for i in range(depth)]

    def to_optuna(self, name: str, value) -> dict:
        low, high = self.depth_range
        widths = list(value) if isinstance(value, (list, tuple)) else None
        if widths is None or not low <= len(widths) <= high or not all(
                _is_int(w) and self.low <= w <= self.high and (w - self.low) % self.step == 0
                for w in widths):
            raise ValueError(f"{value!r} is not {low}" + (f" to {high}" if high > low else "")
                             + f" widths in [{self.low}, {self.high}]"
                             + (f" on step {self.step}" if self.step != 1 else ""))
        out = {} if low == high else {f"{name}.depth": len(widths)}
        out.update({f"{name}.{i}": int(w) for i, w in enumerate(widths)})
        return out

    @property
    def upper(self):
        return None


ParamSpace = Annotated[Union[IntSpace, FloatSpace, CategoricalSpace, WidthsSpace],
                       Field(discriminator="type")]


class TuningConfig(StrictModel):
    """Nested-CV hyper-parameter search for one estimator (one Optuna study per outer fold)."""

    n_trials: int = Field(20, ge=1, description="finished trials per outer fold")
    timeout: float | None = Field(None, gt=0, description="seconds of search per outer fold")
    inner_folds: int = Field(3, ge=2, le=20,
                             description="inner CV folds on each outer training set "
                             "(grouped when the dataset has groups)")
    inner_holdout: float | None = Field(
        None, gt=0, le=0.5, description="instead of inner_folds: one hold-out of about this "
        "fraction of the outer training set (whole groups, stratified: the first fold of "
        "round(1/fraction) StratifiedGroupKFold folds); one inner fit per trial")
    inner_repeats: int = Field(
        1, ge=1, le=10, description="with inner_holdout: this many disjoint hold-outs (the "
        "first N of those folds), the trial's score their mean; each adds one inner fit "
        "per trial and divides the hold-out's sampling variance")
    metric: Literal["accuracy", "balanced_accuracy", "macro_f1", "roc_auc"] = "accuracy"
    pruner: Literal["median", "successive_halving", "hyperband", "none"] = "median"
    startup_trials: int = Field(10, ge=0, description="TPE's random start-up trials")
    pruner_startup_trials: int = Field(3, ge=0, description="median pruner: trials "
                                       "finished before any pruning")
    warmup_steps: int = Field(1, ge=0, description="median pruner: epochs before pruning")
    min_resource: int | None = Field(None, ge=1, description="successive halving / "
                                     "hyperband: epochs before the first rung (default: "
                                     "auto / 1)")
    max_resource: int | None = Field(None, ge=1, description="hyperband: epochs of a full "
                                     "trial (default: the trial's epochs x inner fits)")
    reduction_factor: int = Field(3, ge=2, description="successive halving / hyperband: "
                                  "keep 1/factor at each rung")
    default_trial: bool = Field(
        True, description="enqueue the estimator's own values of the searched parameters "
        "as the first trial (never pruned), so the search cannot pick a model whose inner "
        "score is below the default's; not with sampler grid (list the default among the "
        "choices instead)")
    seed: int | None = Field(None, description="sampler seed (default: the study seed)")
    sampler: Literal["tpe", "grid"] = Field(
        "tpe", description="tpe: Optuna's TPE; grid: every combination once (categorical "
        "and int spaces only; n_trials at most the number of combinations)")
    space: dict[str, ParamSpace] = Field(..., min_length=1)
    inner_params: dict[str, Any] = Field(
        default_factory=dict, description="estimator parameters for inner fits only (a "
        "cheaper proxy such as {epochs: 15}); the outer refit keeps the estimator's own")

    @model_validator(mode="after")
    def _inner_params(self):
        both = sorted(set(self.inner_params) & set(self.space))
        if both:
            raise ValueError(f"inner_params {', '.join(both)} also in space: a searched "
                             "parameter cannot be fixed for inner fits; drop it from one")
        return self

    @model_validator(mode="after")
    def _inner_protocol(self):
        if self.inner_holdout is not None and "inner_folds" in self.model_fields_set:
            raise ValueError("inner_folds and inner_holdout are alternative inner protocols;"
                             " set only one of them")
        if self.inner_repeats > 1:
            if self.inner_holdout is None:
                raise ValueError("inner_repeats repeats an inner_holdout; set inner_holdout "
                                 "(or use inner_folds for k-fold inner CV)")
            available = max(2, round(1 / self.inner_holdout))
            if self.inner_repeats > available:
                raise ValueError(f"inner_repeats ({self.inner_repeats}) exceeds the "
                                 f"{available} disjoint hold-outs of inner_holdout "
                                 f"{self.inner_holdout:g}; lower one of them")
        return self

    @model_validator(mode="after")
    def _pruner_fields(self):
        if self.max_resource is not None and self.pruner != "hyperband":
            raise ValueError(f"max_resource is a hyperband setting (pruner is "
                             f"'{self.pruner}'); drop it or set pruner: hyperband")
        low = self.min_resource or 1
        if self.max_resource is not None and self.max_resource < low:
            raise ValueError(f"max_resource ({self.max_resource}) must be >= min_resource "
                             f"({low})")
        return self

    @model_validator(mode="after")
    def _default_trial(self):
        if self.sampler == "grid" and self.default_trial:
            if "default_trial" in self.model_fields_set:
                raise ValueError("default_trial needs sampler tpe: a grid visits its own "
                                 "combinations (list the default among the choices)")
            self.default_trial = False  # a grid's default: no enqueued trial
        return self

    @property
    def inner_protocol(self) -> str:
        """How the inner score is measured, in words (for reports)."""
        if self.inner_holdout is not None and self.inner_repeats > 1:
            return f"{self.inner_repeats} hold-outs of {self.inner_holdout:g}"
        if self.inner_holdout is not None:
            return f"hold-out {self.inner_holdout:g}"
        return f"{self.inner_folds}-fold"

    def dump_compat(self) -> dict:
        """``model_dump`` without the fields added after the first tuned results while they
        hold the behaviour those results had (no default trial, k inner folds, no
        hyperband), so their job keys and Optuna study names stay valid."""
        spec = self.model_dump(mode="json")
        if not spec["default_trial"]:
            del spec["default_trial"]
        if spec["inner_holdout"] is None:
            del spec["inner_holdout"]
        else:  # one protocol: the folds' default would contradict the hold-out
            del spec["inner_folds"]
        if spec["max_resource"] is None:
            del spec["max_resource"]
        if spec["inner_repeats"] == 1:
            del spec["inner_repeats"]
        return spec

    @classmethod
    def from_compat(cls, spec: dict) -> "TuningConfig":
        """The inverse of :meth:`dump_compat`: a missing ``default_trial`` is the earlier
        behaviour (none), not the study file's default."""
        return cls.model_validate({"default_trial": False, **spec})

    @model_validator(mode="after")
    def _grid(self):
        if self.sampler != "grid":
            return self
        loose = [name for name, spec in self.space.items() if not hasattr(spec, "grid_values")]
        if loose:
            raise ValueError(f"sampler 'grid' needs categorical or int spaces; "
                             f"{', '.join(loose)} is not one (use sampler: tpe)")
        size = self.grid_size()
        if self.n_trials > size:
            raise ValueError(f"n_trials = {self.n_trials} exceeds the grid's {size} "
                             f"combinations; set n_trials to {size} or fewer")
        return self

    def grid(self) -> dict[str, list]:
        return {name: spec.grid_values() for name, spec in self.space.items()}

    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.grid().values())

    @field_validator("space")
    @classmethod
    def _names(cls, value):
        for name in value:
            if "." in name:
                raise ValueError(f"parameter name '{name}' must not contain '.'")
        return value


def suggest_params(trial, space: dict[str, Any]) -> dict[str, Any]:
    """Sample every parameter of ``space`` (parsed models) for one trial."""
    return {name: spec.suggest(trial, name) for name, spec in space.items()}


def params_from_optuna(params: dict[str, Any], space: dict[str, Any]) -> dict[str, Any]:
    """Estimator parameters from a finished trial's flat Optuna params."""
    out = {}
    for name, spec in space.items():
        if isinstance(spec, WidthsSpace):
            low, high = spec.depth_range
            depth = int(params.get(f"{name}.depth", low))
            out[name] = [int(params[f"{name}.{i}"]) for i in range(depth)]
        elif isinstance(spec, CategoricalSpace):
            value = params[name]
            if isinstance(value, str) and not any(isinstance(c, str) for c in spec.choices):
                value = json.loads(value)
            out[name] = value
        else:
            out[name] = params[name]
    return out


def default_params(space: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Optuna's flat params of the estimator's own ``values`` (its ``get_params``) for the
    searched names: what ``enqueue_trial`` fixes for the default trial.

    Raises ValueError naming the parameter when a value lies outside its space.
    """
    out = {}
    for name, spec in space.items():
        try:
            out.update(spec.to_optuna(name, values[name]))
        except ValueError as err:
            raise ValueError(f"the estimator's own {name} = {values[name]!r} lies outside "
                             f"tuning.space.{name}: {err}") from None
    return out


def check_space(kind: str, base_params: dict, tuning: TuningConfig, where: str) -> None:
    """Every searched name must be a parameter of the estimator, inner-only values must
    build, and the default trial must lie in the space (clear errors before any fold
    trains)."""
    from karyobench.estimators import build

    estimator = build(kind, base_params, where=where)
    valid = estimator.get_params(deep=True)
    unknown = [name for name in tuning.space if name not in valid]
    if unknown:
        import difflib

        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(valid), n=1)
            hints.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        raise ConfigError(f"{where}: tuning.space names unknown parameter(s) "
                          f"{', '.join(hints)} of '{kind}'.")
    if tuning.inner_params:  # build names unknown keys (did you mean) and bad values
        build(kind, {**base_params, **tuning.inner_params},
              where=f"{where} (tuning.inner_params)")
    if tuning.default_trial:
        try:
            default_params(tuning.space, valid)
        except ValueError as err:
            raise ConfigError(f"{where}: {err}; widen the space to include it (the default "
                              "trial is enqueued first) or set tuning.default_trial: "
                              "false.") from None


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _same(value, choice) -> bool:
    """A parameter value equals a categorical choice (numbers by value, lists as JSON)."""
    numbers = [isinstance(v, Real) and not isinstance(v, bool) for v in (value, choice)]
    if all(numbers):
        return value == choice
    if any(numbers):
        return False
    try:
        return json.dumps(value, sort_keys=True) == json.dumps(choice, sort_keys=True)
    except TypeError:
        return False


def _check_range(low, high, log):
    if high < low:
        raise ValueError(f"high ({high}) must be >= low ({low})")
    if log and low <= 0:
        raise ValueError("log scale needs low > 0")
