"""Nested CV as the run loop's tuner: the tuning package's side of ``run_study``.

The run loop (``karyobench.evaluation.runner``) knows no search. It hands the jobs of
estimators with a ``tuning`` block to a :class:`NestedSearch`, which marks them with their
search settings (``attach``), fits each with an Optuna search on its outer training rows
(``fit``: :func:`karyobench.tuning.nested.tune_fold`) and writes ``tuning/`` at the end.
``karyobench run`` uses it as is; ``karyobench tune`` adds search workers and logging
(``karyobench.tuning.command``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from karyobench.evaluation.fold import FoldJob, FoldResult


@dataclass
class NestedSearch:
    """Fit tuned folds by nested CV against one Optuna storage.

    ``storage``: an Optuna storage URL (None: ``sqlite:///<out>/tuning.sqlite3``);
    ``n_trials`` / ``timeout``: overrides of every tuning block (they are part of the
    tuned job keys, as the tuning blocks are); ``log``: where search progress goes (None:
    silent). Plain data, so it pickles into worker processes (loky, dask).
    """

    storage: str | None = None
    n_trials: int | None = None
    timeout: float | None = None
    log: Callable[[str], None] | None = None
    url: str | None = field(default=None, init=False)
    written: list[Path] = field(default_factory=list, init=False, repr=False)

    def storage_url(self, out_dir: Path) -> str:
        from karyobench.tuning.storage import default_storage_url

        return self.storage or default_storage_url(out_dir)

    def attach(self, jobs: list[FoldJob], study, groups: np.ndarray | None,
               out_dir: Path) -> list[FoldJob]:
        """Check the study's tuning blocks and give the tuned jobs their settings."""
        from karyobench.tuning.nested import attach_tuning, check_tuning

        check_tuning(study)
        self.url = self.storage_url(out_dir)
        return attach_tuning(jobs, study, groups, self.url, n_trials=self.n_trials,
                             timeout=self.timeout)

    def fit(self, job: FoldJob, images: np.ndarray, labels: np.ndarray,
            externals: tuple = ()) -> FoldResult:
        """Search on the inner folds of the job's training rows, refit the best, score
        its test rows. ``externals`` are not scored: the refit lives inside the search."""
        from karyobench.tuning.nested import tune_fold
        from karyobench.tuning.storage import optuna_warnings_only

        with optuna_warnings_only():
            return tune_fold(job, images, labels, log=self.log)

    def before_fits(self, pending: list[FoldJob], images_for: Callable,
                    labels_by_task: dict, out_dir: Path) -> None:
        """Nothing to prepare for a search in this process (``tune`` adds workers)."""

    def after_fit(self, root: Path, result: FoldResult) -> None:
        """``tuning/folds/<key>.json``: the fold's search summary."""
        from karyobench.tuning.outputs import save_fold_record

        if result.extra.get("tuning"):
            save_fold_record(root, result.job, result)

    def finish(self, root: Path, jobs: list[FoldJob]) -> dict:
        """Tables and Optuna plots under ``tuning/``; the storage for environment.json."""
        from karyobench.tuning.outputs import write_tuning_outputs
        from karyobench.tuning.storage import portable

        self.written = write_tuning_outputs(root, self.url,
                                            keys=[j.key for j in jobs if j.tuning])
        return {"tuning_storage": portable(self.url)}
