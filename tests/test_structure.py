"""The package's structure: no import cycles, and fold job keys that never move.

Keys name the cached folds (``jobs/``) and the committed ``fold_keys.csv``: a refactor
that changed an untuned key would silently retrain (or, with ``--reuse``, fail to
recover) every committed fold, so the keys are recomputed here from a committed study.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kb_support import REPO

PACKAGE = REPO / "karyobench"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module -> the karyobench modules it imports, at the top or inside a function."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                    + ([node.module] if node.module else []))
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            targets |= {n for n in names if n in modules and n != name}
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_evaluation_and_tuning_modules_import_no_cycle():
    graph = _imports()
    watched = [c for c in _cycles(graph)
               if any(m.startswith(("karyobench.evaluation", "karyobench.tuning"))
                      for m in c)]
    assert not watched, f"import cycles: {watched}"


def test_the_run_loop_and_the_fold_core_import_no_search():
    """The run loop is given a tuner; evaluation never imports the tuning package."""
    graph = _imports()
    offenders = {m: sorted(t for t in targets if t.startswith("karyobench.tuning"))
                 for m, targets in graph.items() if m.startswith("karyobench.evaluation")}
    assert not {m: t for m, t in offenders.items() if t}


def _committed_keys(name: str) -> tuple[Path, pd.DataFrame]:
    folder = REPO / "results" / name
    keys = pd.read_csv(folder / "fold_keys.csv", dtype={"key": str, "task": str,
                                                       "estimator": str, "split": str})
    return folder, keys


def test_untuned_fold_keys_match_the_committed_fold_keys(tmp_path):
    """Planning a committed synthetic study again gives exactly its committed keys."""
    from karyobench.evaluation.ensembles import plan_ensembles
    from karyobench.evaluation.plan import load_study_dataset, plan_jobs
    from karyobench.study import parse_study

    folder, committed = _committed_keys("normal24")
    config = folder / "config.yaml"
    study = parse_study(yaml.safe_load(config.read_text(encoding="utf-8")), source=config)
    assert {e.kind for e in study.estimators} >= {"dcnn", "svm_linear_pixels"}
    assert not any(e.tuning for e in study.estimators)
    dataset = load_study_dataset(study, tmp_path / "cache")
    jobs, _, _ = plan_jobs(study, dataset)
    jobs += plan_ensembles(study, jobs)
    planned = pd.DataFrame([{"split": j.split, "task": j.task, "estimator": j.estimator,
                             "repeat": j.repeat, "fold": j.fold, "key": j.key}
                            for j in jobs])
    columns = ["split", "task", "estimator", "repeat", "fold", "key"]
    pd.testing.assert_frame_equal(
        planned[columns].sort_values(columns).reset_index(drop=True),
        committed[columns].sort_values(columns).reset_index(drop=True),
        check_dtype=False)


def test_a_tuned_study_needs_a_tuner(tmp_path):
    from karyobench.errors import ConfigError
    from karyobench.evaluation.runner import run_study
    from karyobench.study import parse_study
    from kb_support import synthetic_dataset, tiny_study

    raw = tiny_study(synthetic_dataset(canvas={"mode": "native", "size": 16}), estimators=[
        {"kind": "svm_linear_pixels", "tuning": {
            "n_trials": 2, "space": {"svc__C": {"type": "float", "low": 0.1, "high": 1.0}}}}])
    with pytest.raises(ConfigError, match="pass a tuner"):
        run_study(parse_study(raw), tmp_path / "out")
