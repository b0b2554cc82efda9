import json
import shutil

import pandas as pd
import pytest

from karyobench.errors import DataError
from karyobench.report import load_results


def test_loads_everything(results_dir):
    results = load_results(results_dir)
    assert results.name == "synthetic_study"
    assert results.splits == ["image", "group"]
    assert results.estimators == ["svm_linear", "dcnn", "rf_features"]
    assert results.task_names() == ["normal24", "pair5"]
    assert results.classes("pair5") == ["5", "del(5)(p14)"]
    assert results.is_binary("pair5") and not results.is_binary("normal24")
    assert len(results.folds) == 2 * 2 * 3 * 5
    assert results.environment["wall_seconds"] == 12.5
    assert results.config["name"] == "synthetic_study"
    assert results.skipped is None
    oof = results.oof("group", "pair5", "dcnn")
    assert len(oof) == 60 and oof["sample"].is_unique
    proba = results.proba(oof, "pair5")
    assert proba.shape == (60, 2)
    assert pd.Series(proba.sum(axis=1)).round(9).eq(1).all()
    assert "StratifiedGroupKFold" in results.protocol_text("group")


@pytest.mark.parametrize("missing", ["protocol.json", "tasks.json", "folds.parquet", "predictions.parquet"])
def test_missing_file_is_named(results_dir, tmp_path, missing):
    copy = tmp_path / "copy"
    shutil.copytree(results_dir, copy)
    (copy / missing).unlink()
    with pytest.raises(DataError, match=missing.replace(".", r"\.")):
        load_results(copy)


def test_missing_folder_and_bad_content(results_dir, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_results(tmp_path / "nowhere")
    copy = tmp_path / "copy"
    shutil.copytree(results_dir, copy)
    folds = pd.read_parquet(copy / "folds.parquet").drop(columns=["macro_f1"])
    folds.to_parquet(copy / "folds.parquet")
    with pytest.raises(DataError, match="folds.parquet: missing column.*macro_f1"):
        load_results(copy)
    shutil.copy(results_dir / "folds.parquet", copy / "folds.parquet")
    (copy / "tasks.json").write_text(json.dumps({"normal24": {"classes": ["1"]}}))
    with pytest.raises(DataError, match="pair5"):
        load_results(copy)
    (copy / "tasks.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_results(copy)


def test_runner_split_descriptions_win(results_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(results_dir, copy)
    protocol = json.loads((copy / "protocol.json").read_text())
    protocol["descriptions"] = {"group": "5-fold StratifiedGroupKFold by karyotype_id"}
    (copy / "protocol.json").write_text(json.dumps(protocol))
    results = load_results(copy)
    assert results.protocol_text("group").startswith("5-fold StratifiedGroupKFold by karyotype_id;")
    assert "leaky" in results.protocol_text("image")  # falls back to the built-in wording
