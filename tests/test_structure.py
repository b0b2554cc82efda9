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


def test_no_module_imports_itself_through_others():
    cycles = _cycles(_imports())
    assert not cycles, f"import cycles: {cycles}"


def test_no_import_cycle_between_packages():
    """Subpackages (and top-level modules) form layers: study/search_space below
    evaluation, evaluation below tuning, the report below the run loop."""
    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, targets in _imports().items():
        packages.setdefault(unit(module), set()).update(
            unit(t) for t in targets if unit(t) != unit(module))
    cycles = _cycles(packages)
    assert not cycles, f"import cycles between packages: {cycles}"


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


@pytest.mark.slow
def test_fold_keys_of_a_committed_real_data_study(tmp_path):
    """The same on the real images (manifest source); skipped without them."""
    from karyobench.evaluation.ensembles import plan_ensembles
    from karyobench.evaluation.plan import load_study_dataset, plan_jobs
    from karyobench.study import parse_study

    folder, committed = _committed_keys("bioimlab_best")
    config = folder / "config.yaml"
    study = parse_study(yaml.safe_load(config.read_text(encoding="utf-8")), source=config)
    if not Path(study.dataset.path).is_file():
        pytest.skip(f"real data not found at {study.dataset.path}")
    assert not any(e.tuning for e in study.estimators)
    dataset = load_study_dataset(study, tmp_path / "cache")
    jobs, _, _ = plan_jobs(study, dataset)
    jobs += plan_ensembles(study, jobs)
    assert sorted(j.key for j in jobs) == sorted(committed["key"])


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


def test_results_file_and_column_names_are_spelled_only_in_the_schema():
    """Every reader and writer takes the results format from ``results_schema``."""
    from karyobench import results_schema as schema

    names = {schema.FOLDS, schema.PREDICTIONS, schema.FOLD_KEYS, schema.PROTOCOL,
             schema.TASKS, schema.CONFIG, schema.ENVIRONMENT, schema.SKIPPED, schema.REPORT,
             schema.EXTERNAL_FOLDS, schema.EXTERNAL_PREDICTIONS, schema.SEED_COLUMN}
    spelled = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "results_schema.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                spelled.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not spelled


@pytest.mark.parametrize("folder", sorted(p.name for p in (REPO / "results").iterdir()
                                          if (p / "folds.parquet").is_file()))
def test_committed_results_follow_the_schema(folder):
    """What ``report`` and ``--reuse`` read of a committed folder is what the schema says."""
    from karyobench import results_schema as schema

    root = REPO / "results" / folder
    assert all((root / name).is_file() for name in schema.REQUIRED)
    folds = pd.read_parquet(root / schema.FOLDS)
    predictions = pd.read_parquet(root / schema.PREDICTIONS)
    assert set(schema.FOLD_COLUMNS) <= set(folds.columns)
    cell = [*schema.CELL] + ([schema.SEED_COLUMN] if schema.SEED_COLUMN in folds else [])
    assert list(predictions.columns[:len(cell) + len(schema.PREDICTION)]) == \
        cell + list(schema.PREDICTION)
    assert all(c.startswith(schema.PROBABILITY_PREFIX)
               for c in predictions.columns[len(cell) + len(schema.PREDICTION):])
    if (root / schema.FOLD_KEYS).is_file():
        keys = pd.read_csv(root / schema.FOLD_KEYS, dtype={schema.KEY: str})
        assert list(keys.columns) == cell + [schema.KEY]
        assert len(keys) == len(folds) and keys[schema.KEY].is_unique


def test_a_run_hands_its_cache_to_worker_processes_without_editing_the_environment(tmp_path):
    """The run context, not ``os.environ``, carries the cache folder into loky workers
    (the HOG feature cache is written there) and nothing is left set after the run."""
    import os

    from karyobench.evaluation.runner import run_study
    from karyobench.study import parse_study
    from kb_support import synthetic_dataset, tiny_study

    before = dict(os.environ)
    raw = tiny_study(synthetic_dataset(canvas={"mode": "native", "size": 32}),
                     estimators=[{"kind": "rf_hog", "params": {"rf__n_estimators": 5}}],
                     cv={"split": "group", "folds": 2})
    summary = run_study(parse_study(raw), tmp_path / "out", backend="loky", workers=2,
                        cache_dir=tmp_path / "cache")
    assert summary.n_jobs == 2
    assert any((tmp_path / "cache" / "features").rglob("*")), "workers cached elsewhere"
    assert dict(os.environ) == before


def test_no_module_writes_the_environment_at_import_or_during_a_run():
    """Only the TensorFlow import quietening may set variables (TF reads them once)."""
    writes = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target = None
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) \
                    else [node.target]
                target = next((t for t in targets if isinstance(t, ast.Subscript)
                               and ast.unparse(t.value) == "os.environ"), None)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and ast.unparse(node.func.value) == "os.environ" \
                    and node.func.attr in ("setdefault", "update", "pop", "clear"):
                target = node
            if target is not None:
                writes.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert all(w.startswith("_tf.py:") for w in writes), writes
