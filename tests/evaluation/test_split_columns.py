"""cv.split group:<column>: a grouping by another column, to measure what it leaks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from karyobench.errors import ConfigError
from karyobench.evaluation.runner import run_study
from karyobench.study import parse_study
from kb_support import tiny_study

SYNTH = {"source": "synthetic", "canvas": {"mode": "native", "size": 24},
         "group_column": "patient_id",
         "synthetic": {"normal_patients": 6, "cells_per_patient": 2, "seed": 5,
                       "abnormalities": {}}}
TASK = [{"name": "t", "classes": ["1", "2", "3", "4"]}]


def _study(split):
    return parse_study(tiny_study(SYNTH, tasks=TASK, name="cells",
                                  estimators=[{"kind": "logreg_pixels"}],
                                  cv={"split": split, "folds": 3}))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cells") / "out"
    run_study(_study(["group", "group:cell_id", "image"]), out,
              cache_dir=tmp_path_factory.mktemp("cache"))
    return out


def test_cell_grouping_keeps_cells_whole_but_lets_patients_straddle(run):
    predictions = pd.read_parquet(run / "predictions.parquet")
    manifest_cells = predictions.assign(cell=predictions["path"].str.extract(r"(N\d+_c\d+)")[0])
    by_cell = manifest_cells[manifest_cells["split"] == "group:cell_id"]
    # each cell is tested in exactly one fold; its patient is often tested in two
    assert (by_cell.groupby("cell")["fold"].nunique() == 1).all()
    assert (by_cell.groupby("group")["fold"].nunique() > 1).any()
    by_patient = manifest_cells[manifest_cells["split"] == "group"]
    assert (by_patient.groupby("group")["fold"].nunique() == 1).all()
    protocol = json.loads((run / "protocol.json").read_text())
    assert "StratifiedGroupKFold by cell_id" in protocol["descriptions"]["group:cell_id"]


def test_protocol_gap_sets_each_leakier_split_against_the_grouped_one(run):
    gap = pd.read_csv(run / "protocol_gap.csv").iloc[0]
    assert gap["gap_group_cell_id"] == pytest.approx(
        gap["group_cell_id_pooled_accuracy"] - gap["group_pooled_accuracy"])
    assert gap["gap"] == pytest.approx(gap["image_pooled_accuracy"] - gap["group_pooled_accuracy"])
    assert "cell_id-grouped" in (run / "protocol_gap.md").read_text()


def test_unknown_group_column_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cv.split 'group:slide'.*not in the data"):
        run_study(_study(["group:slide"]), tmp_path / "out", cache_dir=tmp_path / "cache")
