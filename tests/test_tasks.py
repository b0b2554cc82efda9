"""Task class selection, presets and relabelling."""

from __future__ import annotations

import numpy as np
import pytest

from karyobench.errors import ConfigError
from karyobench.study import NORMAL24, TaskConfig
from karyobench.tasks import select, task_classes

LABELS = np.array(NORMAL24 + ["del(5)(p14)", "5", "X", "inv(9)(p12q13)", "10"])


def test_normal24_preset_drops_abnormal_classes():
    task = TaskConfig(name="n", classes="normal24")
    rows, labels = select(task, LABELS)
    assert task_classes(task, LABELS) == NORMAL24
    assert set(labels) == set(NORMAL24)
    assert "del(5)(p14)" not in labels and len(rows) == len(LABELS) - 2
    np.testing.assert_array_equal(LABELS[rows], labels)


def test_explicit_classes_keep_order_and_canonicalise():
    task = TaskConfig(name="pair", classes=["05", "del(5)(p14)"])
    assert task_classes(task, LABELS) == ["5", "del(5)(p14)"]
    rows, labels = select(task, LABELS)
    assert sorted(labels.tolist()) == ["5", "5", "del(5)(p14)"]


def test_all_is_natural_order():
    task = TaskConfig(name="a", classes="all")
    classes = task_classes(task, LABELS)
    assert classes[:3] == ["1", "2", "3"] and classes[22:24] == ["X", "Y"]
    assert classes[24:] == ["del(5)(p14)", "inv(9)(p12q13)"]


def test_relabel_merges_before_selection():
    task = TaskConfig(name="abn", classes=["normal", "abnormal"],
                      relabel={"del(5)(p14)": "abnormal", "inv(9)(p12q13)": "abnormal",
                               "5": "normal", "9": "normal"})
    rows, labels = select(task, LABELS)
    assert sorted(labels.tolist()) == ["abnormal"] * 2 + ["normal"] * 3


def test_label_not_in_data_is_named():
    task = TaskConfig(name="t", classes=["1", "i(18)(q10)", "Z"])
    with pytest.raises(ConfigError, match=r"task 't': class\(es\) i\(18\)\(q10\), Z have no "
                                          r"images in the dataset; labels present: 1, 2, "):
        select(task, LABELS)


def test_all32_on_normal_data_reports_missing_abnormal_classes():
    with pytest.raises(ConfigError, match=r"del\(18\)\(p11\)"):
        select(TaskConfig(name="t", classes="all32"), np.array(NORMAL24))
