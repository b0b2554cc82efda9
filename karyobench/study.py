"""The study file schema: the only module that knows about YAML.

A study is data, never code: which images, which tasks, which estimators, which
cross-validation protocol, which seed. Paths are relative to the study file's folder.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, Field, ValidationError, field_validator,
                      model_serializer, model_validator)

from karyobench.data.imageio import DEFAULT_MAX_PIXELS, MIN_SIDE
from karyobench.errors import ConfigError
from karyobench.search_space import StrictModel, TuningConfig

def shuffle_seed(seed: int, repeat: int) -> int:
    """The fold shuffle of ``cv.repeats``' repeat ``repeat`` (0-based): each repeat is a
    fresh partition. A fact of the study format, so the splitter and the report (which
    names each repeat's seed) read it from here."""
    return seed + repeat


NORMAL24 = [str(i) for i in range(1, 23)] + ["X", "Y"]
SEED_ABNORMALITIES = ["del(5)(p14)", "inv(9)(p12q13)", "del(18)(p11)", "i(18)(q10)",
                      "i(X)(q10)", "del(X)(p22)", "del(X)(q21)", "del(X)(q22)"]
CLASS_PRESETS = {"normal24": NORMAL24, "all32": NORMAL24 + SEED_ABNORMALITIES}


class CanvasConfig(StrictModel):
    mode: Literal["native", "fit", "power"] = Field(
        "native", description="native: one scale for all crops (keeps relative length); "
        "fit: each crop scaled to fill the canvas; power: long side = size x "
        "(length / 99th-percentile length) ** exponent (small crops enlarged, order kept)")
    size: int = Field(64, ge=8, le=512, description="canvas side in pixels")
    exponent: float = Field(0.5, gt=0.0, lt=1.0, description="power mode only: 1 would be "
                            "native, 0 fit")
    native_channel: bool = Field(
        False, description="add the native rendering as a second image channel, so a fit "
        "or power canvas keeps the chromosome's relative size (shape_input measures it)")

    @property
    def label(self) -> str:
        """Short name of this rendering, e.g. 'native64', 'power0.5_64' or 'fit64+native'."""
        if self.mode == "power":
            label = f"power{self.exponent:g}_{self.size}"
        else:
            label = f"{self.mode}{self.size}"
        return label + "+native" if self.native_channel else label

    @property
    def channels(self) -> int:
        """Image channels this canvas renders: the rendering, plus the native one if asked."""
        return 2 if self.native_channel else 1

    @model_serializer(mode="wrap")
    def _record_only_what_acts(self, handler):
        """Resolved configs and protocols list the exponent only where it acts, and the
        native channel only when it is on (older records stay as they were)."""
        record = handler(self)
        if self.mode != "power":
            record.pop("exponent", None)
        if not self.native_channel:
            record.pop("native_channel", None)
        return record


class LockboxConfig(StrictModel):
    fraction: float = Field(..., gt=0.0, le=0.5, strict=True, description="share of the "
                            "groups set aside (stratified by label; whole groups)")
    seed: int = Field(..., strict=True, description="which groups: the same data and seed "
                      "always give the same lockbox, whatever the study's name")


class DatasetConfig(StrictModel):
    source: Literal["folders", "manifest", "synthetic"] = Field(
        "synthetic", description="class folders, a manifest CSV, or the embedded generator")
    path: Path | None = Field(None, description="folder root or manifest CSV")
    synthetic: dict[str, Any] = Field(default_factory=dict,
                                      description="generator settings (SynthConfig)")
    group_column: str | None = Field(
        "auto", description="column whose groups never straddle train/test; auto: "
        "patient_id, karyotype_id or cell_id if present; null: no groups")
    missing_groups: Literal["error", "own_group"] = Field(
        "error", description="rows with an empty id in the group column: error (naming "
        "the rows), or own_group (each such image its own group; never one pooled group)")
    polarity: Literal["auto", "bright_on_dark", "dark_on_light"] = Field(
        "auto", description="crop polarity; auto: read from the crop border")
    canvas: CanvasConfig = Field(default_factory=CanvasConfig)
    limit_groups: int | None = Field(None, ge=2, description="keep a seeded sample of groups")
    on_bad_image: Literal["error", "skip"] = Field(
        "error", description="an unreadable image stops the run, or is skipped and listed in "
        "skipped_files.csv")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=MIN_SIDE * MIN_SIDE, description="larger "
                            "images are refused from their header (on_bad_image decides: "
                            "error or skip) before any decoding; crops over 2048 px a side "
                            "are reduced while decoding")
    lockbox: LockboxConfig | None = Field(
        None, description="groups no run or tune ever trains or scores on, opened once by "
        "`karyobench lockbox` for the declared primary (karyobench.evaluation.lockbox)")

    @model_serializer(mode="wrap")
    def _record_only_what_acts(self, handler):
        """A dataset without a lockbox records none, and keys added after results were
        committed are recorded only when set away from their default (older config.yaml
        files and digests stay valid)."""
        record = handler(self)
        if self.lockbox is None:
            record.pop("lockbox", None)
        for key, default in _LATER_DATASET_DEFAULTS.items():
            if record.get(key) == default:
                record.pop(key)
        return record

    @field_validator("path", mode="before")
    @classmethod
    def _path_not_empty(cls, value):
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty path; set dataset.path to the class-folder root or "
                             "the manifest CSV")
        if isinstance(value, str) and "\0" in value:
            raise ValueError("path contains a NUL character")
        return value

    @field_validator("synthetic")
    @classmethod
    def _synthetic_valid(cls, value):
        if value:
            from karyobench.synth import SynthConfig

            SynthConfig(**value)
        return value


_LATER_DATASET_DEFAULTS = {"missing_groups": "error", "max_pixels": DEFAULT_MAX_PIXELS}


class TaskConfig(StrictModel):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.\-]+$", description="label in tables")
    classes: list[str] | Literal["normal24", "all32", "all"] = Field(
        "normal24", description="class labels to keep (in order) or a preset")
    relabel: dict[str, str] = Field(default_factory=dict,
                                    description="map dataset labels to task labels first")

    @field_validator("classes", mode="before")
    @classmethod
    def _numbers_are_labels(cls, value):
        """YAML reads ``classes: [1, 2, X]`` as ints; chromosome numbers are labels."""
        if isinstance(value, list):
            return [_label_text(v) for v in value]
        return value

    @field_validator("relabel", mode="before")
    @classmethod
    def _relabel_numbers(cls, value):
        if isinstance(value, dict):
            return {_label_text(k): _label_text(v) for k, v in value.items()}
        return value

    @field_validator("classes")
    @classmethod
    def _two_classes(cls, value):
        if isinstance(value, list):
            if len(value) < 2:
                raise ValueError("a task needs at least two classes")
            canonical = [v.strip().lstrip("0") or "0" if v.strip().isdigit() else v.strip()
                         for v in value]
            if len(set(canonical)) != len(canonical):
                raise ValueError("classes must be unique ('01' and '1' are the same class)")
        return value


def _label_text(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class EstimatorConfig(StrictModel):
    kind: str = Field(..., description="registry name, see `karyobench estimators`")
    name: str | None = Field(None, description="label in tables (default: kind)")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="passed to set_params, e.g. svc__C")
    tuning: TuningConfig | None = Field(None, description="nested-CV Optuna search over "
                                        "these params (karyobench.search_space)")
    canvas: CanvasConfig | None = Field(None, description="this estimator's own canvas "
                                        "(same images and folds, rendered at another size "
                                        "or mode); default: dataset.canvas")

    @property
    def label(self) -> str:
        return self.name or self.kind


class EnsembleConfig(StrictModel):
    name: str = Field(..., pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="label in tables, distinct from every estimator's")
    members: list[str] = Field(..., min_length=2, description="estimator names whose "
                               "per-fold probabilities are averaged (soft voting)")
    weights: list[float] | None = Field(None, description="one positive weight per member "
                                        "(default: equal)")

    @field_validator("weights")
    @classmethod
    def _positive(cls, value):
        if value is not None and any(w <= 0 for w in value):
            raise ValueError("weights must be positive")
        return value


SPLIT_PATTERN = r"^(auto|group|stratified|image|group:[A-Za-z0-9_.\-]+)$"


def _known_split(kind: str) -> str:
    if not re.match(SPLIT_PATTERN, kind):
        raise ValueError(f"unknown split '{kind}'; use auto, group, group:<column>, "
                         "stratified or image")
    return kind


SplitName = Annotated[str, AfterValidator(_known_split)]


class CVConfig(StrictModel):
    split: list[SplitName] = Field(
        default_factory=lambda: ["auto"],
        description="auto: group if the dataset has groups else stratified; group: "
        "StratifiedGroupKFold by dataset.group_column; group:<column>: grouped by another "
        "column of the data (e.g. group:cell_id, to measure what a finer grouping leaks); "
        "image: the seed's leaky image-level split; a list runs each protocol")
    folds: int = Field(5, ge=2, le=50, description="outer folds per repeat")
    repeats: int = Field(1, ge=1, le=100, description="partitions, each shuffled with its "
                         "own seed (seed, seed + 1, ...)")
    train_seeds: int = Field(
        1, ge=1, le=20, description="train every estimator x fold under this many "
        "initialisation seeds on the same split (random_state = its own seed, +1, +2, ...): "
        "the spread over them is the retraining-noise floor every comparison is judged "
        "against")

    @field_validator("split", mode="before")
    @classmethod
    def _listify(cls, value):
        return [value] if isinstance(value, str) else value

    @model_serializer(mode="wrap")
    def _record_only_what_acts(self, handler):
        """One training seed is what every study did before ``train_seeds`` existed: it is
        left out of resolved configs, so their digests stay as they were."""
        record = handler(self)
        if self.train_seeds == 1:
            record.pop("train_seeds", None)
        return record

    @field_validator("split")
    @classmethod
    def _distinct_splits(cls, value):
        if len(set(value)) != len(value):
            raise ValueError("a split is listed twice")
        return value


class ExternalConfig(StrictModel):
    """A further dataset every fold model is also scored on (never trained on)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_\-]+$",
                      description="label in tables, e.g. gband_dev")
    source: Literal["folders", "manifest", "synthetic"] = Field(
        "manifest", description="class folders, a manifest CSV, or the embedded generator")
    path: Path | None = Field(None, description="folder root or manifest CSV (relative to "
                              "the study file)")
    synthetic: dict[str, Any] = Field(default_factory=dict,
                                      description="generator settings (SynthConfig)")
    group_column: str | None = Field(
        "auto", description="groups resampled by the external CIs; auto: patient_id, "
        "slide_id, karyotype_id or cell_id if present")
    polarity: Literal["auto", "bright_on_dark", "dark_on_light"] = Field(
        "auto", description="crop polarity; auto: read from the crop border")
    relabel: dict[str, str] = Field(default_factory=dict, description="map this set's "
                                    "labels to the study's labels before each task's own "
                                    "relabel; rows outside a task are not scored (counted)")
    canvas_mode: Literal["native", "fit", "power"] | None = Field(
        None, description="placement of this set's crops; default: each scored "
        "estimator's own canvas mode (the size always follows the estimator, so the "
        "images fit its input)")
    on_bad_image: Literal["error", "skip"] = Field(
        "error", description="an unreadable image stops the run, or is skipped and listed in "
        "skipped_files.csv")

    @field_validator("relabel", mode="before")
    @classmethod
    def _relabel_numbers(cls, value):
        if isinstance(value, dict):
            return {_label_text(k): _label_text(v) for k, v in value.items()}
        return value

    @field_validator("synthetic")
    @classmethod
    def _synthetic_valid(cls, value):
        if value:
            from karyobench.synth import SynthConfig

            SynthConfig(**value)
        return value


class ExecutionConfig(StrictModel):
    backend: Literal["auto", "sequential", "loky", "dask"] = Field(
        "auto", description="where fold jobs run: auto (every core: parallel local "
        "processes, workers x TensorFlow threads <= cores), this process, local processes, "
        "a dask cluster")
    workers: int | None = Field(None, ge=1, description="parallel fold jobs (loky: default "
                                "one per core; dask: default 1)")
    scheduler: str | None = Field(None, description="dask scheduler address tcp://host:port")


class Study(StrictModel):
    name: str = Field(..., description="results go to results/<name>/ (or --out DIR); "
                      "starts with a letter or digit, then letters, digits, _ . -")
    description: str = Field("", description="free text, shown in the report")
    seed: int = Field(1, description="CV shuffling, model initialisation, generator")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig,
                                   description="the images, their labels and groups")
    tasks: list[TaskConfig] = Field(..., min_length=1, description="classification "
                                    "tasks, each run with every estimator")
    estimators: list[EstimatorConfig] = Field(..., min_length=1,
                                              description="the models compared")
    ensembles: list[EnsembleConfig] = Field(
        default_factory=list, description="soft-voting ensembles of estimators above, "
        "built from their stored fold probabilities (no retraining)")
    primary: str | None = Field(
        None, description="the estimator or ensemble declared, before the run, as the "
        "study's result: reports name it and draw the error gallery and swap table from it "
        "(default: none declared; those use the most accurate model, picked afterwards)")
    cv: CVConfig = Field(default_factory=CVConfig, description="the cross-validation "
                         "protocol")
    external: list[ExternalConfig] = Field(
        default_factory=list, description="further datasets (another lab, stain or the "
        "synthetic cohort) on which every model trained on an outer training fold is also "
        "scored; reported beside the cross-validated scores")
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig,
                                       description="where the fold jobs run")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value):
        """The name is a folder under results/: '.', '..', '/' or a leading dot would put
        the results elsewhere or hide them."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", value):
            raise ValueError("a study name starts with a letter or digit and holds only "
                             "letters, digits, '_', '.' and '-' (it names the folder "
                             "results/<name>)")
        return value

    @field_validator("estimators")
    @classmethod
    def _unique_labels(cls, value):
        labels = [e.label for e in value]
        dup = {x for x in labels if labels.count(x) > 1}
        if dup:
            raise ValueError(f"estimator names must be unique; repeated: {sorted(dup)} "
                             "(give each a distinct 'name')")
        return value

    @model_validator(mode="after")
    def _ensembles_name_estimators(self):
        labels = [e.label for e in self.estimators]
        seen = set(labels)
        for index, ensemble in enumerate(self.ensembles):
            where = f"ensembles.{index} ('{ensemble.name}')"
            if ensemble.name in seen:
                raise ValueError(f"{where}: name already used by an estimator or ensemble; "
                                 "give the ensemble a distinct name")
            seen.add(ensemble.name)
            unknown = [m for m in ensemble.members if m not in labels]
            if unknown:
                raise ValueError(f"{where}: members {unknown} are not estimators of this "
                                 f"study; choose from {labels}")
            if len(set(ensemble.members)) != len(ensemble.members):
                raise ValueError(f"{where}: a member is listed twice")
            if ensemble.weights is not None and len(ensemble.weights) != len(ensemble.members):
                raise ValueError(f"{where}: {len(ensemble.weights)} weights for "
                                 f"{len(ensemble.members)} members; give one per member")
        names = [e.name for e in self.external]
        if len(set(names)) != len(names):
            raise ValueError("external: two datasets share a name; give each a distinct "
                             "'name'")
        if self.primary is not None and self.primary not in seen:
            raise ValueError(f"primary: '{self.primary}' is not an estimator or ensemble of "
                             f"this study; choose from {sorted(seen)}")
        return self

    @model_serializer(mode="wrap")
    def _record_only_what_acts(self, handler):
        """A study without external sets records none (older digests stay valid)."""
        record = handler(self)
        if not self.external:
            record.pop("external", None)
        return record

    def portable_dump(self, base: Path | None = None) -> dict:
        """The resolved configuration with data paths relative to ``base`` (default: the
        working directory, i.e. the checkout as the README runs it). A config.yaml written
        into a results folder passes that folder, so it parses like a study file there;
        nothing records a machine's absolute paths."""
        record = self.model_dump(mode="json")
        places = [record["dataset"], *record.get("external", [])]
        for place in places:
            if place.get("path"):
                place["path"] = _relative(place["path"], base)
        return record

    def digest(self) -> str:
        """Hash of the resolved configuration (what makes two runs comparable)."""
        return hashlib.sha256(json.dumps(self.portable_dump(), sort_keys=True)
                              .encode()).hexdigest()[:16]


def _relative(path: str, base: Path | None = None) -> str:
    try:
        return os.path.relpath(path, Path(base).resolve() if base else None)
    except ValueError:  # another drive (Windows)
        return path


def load_study(path: Path | str) -> Study:
    """Parse and validate a study file; every problem is a ConfigError naming the field."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"study file '{path}' is a folder; give the study's YAML file.")
    if not path.is_file():
        raise ConfigError(f"study file '{path}' does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); save the study "
                          "file as UTF-8.") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        context = ""
        if err.context and err.context_mark is not None and err.context_mark != mark:
            start = err.context_mark
            context = (f" ({err.context} started at line {start.line + 1}, column "
                       f"{start.column + 1})")
        raise ConfigError(f"{path}: YAML syntax error at {where}: {err.problem}"
                          f"{context}.") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with keys name, dataset, tasks, "
                          "estimators, cv; got " + type(raw).__name__ + ".")
    return parse_study(raw, source=path)


def parse_study(raw: dict, source: Path | str = "<study>") -> Study:
    try:
        study = Study.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_explain(err, source)) from None
    base = Path(source).resolve().parent if Path(str(source)).exists() else Path.cwd()
    if study.dataset.path is not None and not study.dataset.path.is_absolute():
        study.dataset.path = (base / study.dataset.path).resolve()
    if study.dataset.source != "synthetic" and study.dataset.path is None:
        raise ConfigError(f"{source}: dataset.path is required for source "
                          f"'{study.dataset.source}'.")
    for index, external in enumerate(study.external):
        if external.path is not None and not external.path.is_absolute():
            external.path = (base / external.path).resolve()
        if external.source != "synthetic" and external.path is None:
            raise ConfigError(f"{source}: external.{index} ('{external.name}'): path is "
                              f"required for source '{external.source}'.")
    return study


def _explain(err: ValidationError, source) -> str:
    lines = []
    for problem in err.errors():
        # drop pydantic's union-branch tags ('list[str]', "literal['all', ...]")
        loc = ".".join(str(p) for p in problem["loc"]
                       if not re.match(r"^[a-z_]+\[", str(p)))
        if problem["type"] == "extra_forbidden":
            parent = _model_at(Study, problem["loc"][:-1])
            key = str(problem["loc"][-1])
            close = difflib.get_close_matches(key, list(parent.model_fields), n=1) \
                if parent else []
            hint = f" Did you mean '{close[0]}'?" if close else ""
            allowed = f" Allowed here: {', '.join(parent.model_fields)}." if parent else ""
            lines.append(f"unknown key '{loc}'.{hint}{allowed}")
        elif problem["type"] == "missing":
            lines.append(f"missing required key '{loc}'.")
        elif not loc:  # a check across keys (e.g. ensembles naming estimators)
            lines.append(problem["msg"].removeprefix("Value error, ") + ".")
        else:
            value = problem.get("input")
            shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"'{loc}' = {shown}: {message}.")
    return f"{source}: " + " ".join(dict.fromkeys(lines))


def _model_at(model, loc):
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        if model is DatasetConfig and part == "synthetic":  # dict validated as SynthConfig
            from karyobench.synth import SynthConfig

            model = SynthConfig
            continue
        annotation = field.annotation
        args = getattr(annotation, "__args__", ()) or (annotation,)
        nxt = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)),
                   None)
        if nxt is None:
            return None
        model = nxt
    return model
