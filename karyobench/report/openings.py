"""Reading the lockbox's openings record (``lockbox/openings.json``), which
``karyobench lockbox`` appends to: the report and the CLI state how often and with which
score the lockbox was opened. Here, not in ``evaluation``, so the report reads results
without importing the code that computes them."""

from __future__ import annotations

import json
from pathlib import Path

from karyobench.results_schema import OPENINGS


def read_openings(folder: Path) -> list[dict]:
    """Every opening recorded in ``folder`` (a results folder's ``lockbox/``), oldest first."""
    path = Path(folder) / OPENINGS
    return json.loads(path.read_text()) if path.is_file() else []


def describe_opening(opening: dict) -> str:
    """The model and its lockbox scores, task by task (one sentence for the CLI and report)."""
    def task_text(task: str, m: dict) -> str:
        groups = f" of {m['n_groups']} groups" if m.get("n_groups") else ""
        return (f"{task}: accuracy {m['accuracy']:.3f} [95% CI {m['accuracy_ci'][0]:.3f}, "
                f"{m['accuracy_ci'][1]:.3f}], macro-F1 {m['macro_f1']:.3f} on "
                f"{m['n_images']} images{groups}")

    scores = "; ".join(task_text(task, m) for task, m in opening["tasks"].items())
    return f"{opening['model']} trained on all other images scored {scores}"
