"""Private APIs of dependencies are used only inside ``karyobench/compat/`` (issue 18)."""

from __future__ import annotations

import re
from pathlib import Path

import karyobench

PACKAGE = Path(karyobench.__file__).parent
PRIVATE = re.compile(
    r"sklearn\.utils\._"          # scikit-learn's private modules (_param_validation, ...)
    r"|\._validate_params\("      # BaseEstimator._validate_params
    r"|\._storage\b|\._trial_id\b"  # Optuna study storage / trial id
    r"|\._fit_callbacks\b|\._random_state\b"  # scikeras wrapper state
    r"|\._get_variable_index\b|\._momentums\b|\._velocities\b")  # Keras optimizer slots


def test_private_apis_only_in_compat_modules():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "compat" and path.parent.parent == PACKAGE:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if PRIVATE.search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not offenders, "private APIs outside karyobench/compat/:\n" + "\n".join(offenders)


def test_compat_package_imports_no_dependency_by_itself():
    import subprocess
    import sys

    code = ("import sys, karyobench.compat, karyobench.compat.sklearn, "
            "karyobench.compat.optuna, karyobench.compat.keras; "
            "print(sorted(m for m in ('tensorflow', 'scikeras', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_optuna_trial_storage_and_id(tmp_path):
    import optuna

    from karyobench.compat.optuna import study_storage, trial_id

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    trial = study.ask()
    storage = study_storage(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    storage.set_trial_user_attr(trial_id(trial), "seen", True)
    (frozen,) = study.get_trials()
    assert frozen.user_attrs == {"seen": True} and trial_id(frozen) == trial_id(trial)


def test_old_scikeras_compat_import_still_works():
    from karyobench.compat.scikeras import SklearnKerasClassifier
    from karyobench.estimators.compat import SklearnKerasClassifier as Old

    assert Old is SklearnKerasClassifier
