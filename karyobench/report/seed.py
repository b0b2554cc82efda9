"""The seed study's reported numbers, matched to a task by its set of classes.

Task names are free text in a study file; the class set is what makes two tasks the same
question, so that is what decides whether the seed's number belongs beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import yaml

from karyobench.stats.decoding import normalise_label


@dataclass(frozen=True)
class SeedTask:
    """One row of the seed's results: metrics keyed by seed model (``svm``, ``dcnn``)."""

    key: str
    description: str
    classes: frozenset[str]
    accuracy: dict[str, float] = field(default_factory=dict)
    roc_auc: dict[str, float] = field(default_factory=dict)
    recall: dict[str, dict[str, float]] = field(default_factory=dict)
    fold_accuracy: dict[str, list[float]] = field(default_factory=dict)
    macro_recall: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SeedReported:
    citation: str
    doi: str
    protocol: str
    models: dict[str, dict]
    tasks: dict[str, SeedTask]

    def match_task(self, classes) -> SeedTask | None:
        """Seed row whose class set equals ``classes`` (labels normalised, order ignored)."""
        wanted = frozenset(normalise_label(c) for c in classes)
        for task in self.tasks.values():
            if task.classes == wanted:
                return task
        return None

    def match_model(self, estimator: str) -> str | None:
        """Seed model (``svm``/``dcnn``) an estimator name refers to, or None."""
        lowered = estimator.lower()
        for key, spec in self.models.items():
            if any(token in lowered for token in spec.get("match", [])):
                return key
        return None

    def model_label(self, key: str) -> str:
        return str(self.models.get(key, {}).get("label", key))


@lru_cache(maxsize=1)
def load_seed_reported() -> SeedReported:
    """Parse ``karyobench/resources/seed_reported.yaml`` (shipped with the package)."""
    text = resources.files("karyobench").joinpath("resources/seed_reported.yaml").read_text()
    raw = yaml.safe_load(text)
    tasks = {}
    for key, spec in raw["tasks"].items():
        tasks[key] = SeedTask(
            key=key,
            description=spec.get("description", key),
            classes=frozenset(normalise_label(c) for c in spec["classes"]),
            accuracy=dict(spec.get("accuracy", {})),
            roc_auc=dict(spec.get("roc_auc", {})),
            recall={m: {normalise_label(c): v for c, v in r.items()} for m, r in spec.get("recall", {}).items()},
            fold_accuracy=dict(spec.get("fold_accuracy", {})),
            macro_recall=dict(spec.get("macro_recall", {})),
        )
    return SeedReported(
        citation=" ".join(str(raw["citation"]).split()),
        doi=str(raw.get("doi", "")),
        protocol=" ".join(str(raw.get("protocol", "")).split()),
        models=dict(raw.get("models", {})),
        tasks=tasks,
    )
