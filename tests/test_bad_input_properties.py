"""Property: whatever is wrong in a study file or its manifest, ``karyobench run`` answers
with one ``error:`` line naming a field or file, exit code 2, no traceback, and writes
nothing outside the results and cache folders.

Hypothesis draws one or two invalid edits of a valid study (bad values, unknown or missing
keys) or one defect of its manifest. The CLI's ``main`` runs in-process (a subprocess per
example would take minutes); ``tests/test_cli.py`` runs each class of error through a real
subprocess too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from karyobench import cli

DELETE = object()

#: (dotted key, values each of which is invalid there)
BAD_VALUES = [
    ("name", ["..", ".", "", "a/b", ".hidden", 5, None]),
    ("seed", ["one", 1.5, [1]]),
    ("cv.folds", [0, 1, "five", -3, 1.5, 51]),
    ("cv.split", ["groups", ["image", "bogus"], 3]),
    ("cv.repeats", [0, "x"]),
    ("cv.fodls", [3]),
    ("dataset.source", ["csv", 1]),
    ("dataset.path", ["", "nope.csv", "/definitely/not/here.csv", 7]),
    ("dataset.canvas.size", [0, 7, 513, "big"]),
    ("dataset.canvas.mode", ["stretch"]),
    ("dataset.canvas.colour", ["red"]),
    ("dataset.max_pixels", [0, -1, "lots"]),
    ("dataset.missing_groups", ["pool", 1]),
    ("dataset.on_bad_image", ["ignore"]),
    ("dataset.polarity", ["up"]),
    ("dataset.limit_groups", [1, 0, "two"]),
    ("dataset.group_column", ["patient_id", 3]),
    ("tasks", [[], "normal24", None, DELETE]),
    ("tasks.0.name", ["", "a b", DELETE]),
    ("tasks.0.classes", [["1"], 5, ["1", "01"], ["1", "nope"]]),
    ("estimators", [[], None, DELETE]),
    ("estimators.0.kind", ["svm", 3, DELETE]),
    ("estimators.0.params", [{"svc__c": 1}, "x", {"svc__C": -1}]),
    ("ensembles", [[{"name": "v", "members": ["svm_linear_pixels"]}],
                   [{"name": "v", "members": ["a", "b"]}]]),
    ("primary", ["nope"]),
    ("extra_key", [1]),
    ("name", [DELETE]),
]

#: manifest defects: name -> edit of the manifest table (strings) or raw bytes
MANIFEST_DEFECTS = [
    "drop_path_column", "drop_label_column", "empty_label", "missing_file", "duplicate_row",
    "ragged_row", "not_utf8", "empty_file", "header_only", "empty_group_id", "text_as_image",
    "zero_byte_image",
]


def make_images(root: Path) -> pd.DataFrame:
    rows = []
    for g in range(6):
        for c, label in enumerate(("1", "2")):
            image = np.zeros((20 + 8 * c + g % 3, 14), np.uint8)
            image[3:-3, 3:-3] = 180
            path = root / "img" / f"k{g}_{label}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
            rows.append({"path": f"img/{path.name}", "label": label, "karyotype_id": f"k{g}"})
    return pd.DataFrame(rows)


def valid_study() -> dict:
    return {"name": "prop", "seed": 1,
            "dataset": {"source": "manifest", "path": "data/labels.csv",
                        "canvas": {"size": 16}},
            "tasks": [{"name": "t", "classes": ["1", "2"]}],
            "estimators": [{"kind": "svm_linear_pixels"}],
            "cv": {"split": "group", "folds": 3}}


def set_key(study: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = study
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            return  # an earlier edit replaced the parent; this edit no longer applies
    if isinstance(node, list):
        if int(last) < len(node):
            node[int(last)] = value
        return
    if value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value


def write_manifest(folder: Path, table: pd.DataFrame, defect: str | None) -> None:
    path = folder / "data" / "labels.csv"
    table = table.copy()
    if defect == "not_utf8":
        path.write_bytes(b"path,label\n\xff\xfe,1\n")
        return
    if defect == "empty_file":
        path.write_bytes(b"")
        return
    if defect == "drop_path_column":
        table = table.drop(columns="path")
    elif defect == "drop_label_column":
        table = table.drop(columns="label")
    elif defect == "empty_label":
        table.loc[3, "label"] = ""
    elif defect == "missing_file":
        table.loc[2, "path"] = "img/missing.png"
    elif defect == "duplicate_row":
        table = pd.concat([table, table.head(1)])
    elif defect == "header_only":
        table = table.head(0)
    elif defect == "empty_group_id":
        table.loc[[1, 5], "karyotype_id"] = ""
    elif defect == "text_as_image":
        (folder / "data" / "img" / "text.png").write_text("not an image")
        table.loc[4, "path"] = "img/text.png"
    elif defect == "zero_byte_image":
        (folder / "data" / "img" / "zero.png").write_bytes(b"")
        table.loc[4, "path"] = "img/zero.png"
    text = table.to_csv(index=False)
    if defect == "ragged_row":
        lines = text.splitlines()
        lines[2] += ",surplus"
        text = "\n".join(lines) + "\n"
    path.write_text(text)


def snapshot(folder: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and not any(p.is_relative_to(s) for s in skip)}


def run_main(args: list[str], cwd: Path) -> tuple[int, str]:
    """``karyobench ARGS`` through ``cli.main`` in this process: (exit code, all output)."""
    out, err = io.StringIO(), io.StringIO()
    saved = (sys.argv, os.getcwd(), os.environ.get("KARYOBENCH_CACHE"),
             signal.getsignal(signal.SIGTERM))
    sys.argv = ["karyobench", *args]
    os.chdir(cwd)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # a traceback: what the property forbids
                import traceback

                traceback.print_exc(file=err)
                code = 1
    finally:
        sys.argv = saved[0]
        os.chdir(saved[1])
        if saved[2] is None:
            os.environ.pop("KARYOBENCH_CACHE", None)
        else:
            os.environ["KARYOBENCH_CACHE"] = saved[2]
        signal.signal(signal.SIGTERM, saved[3])
    return code, out.getvalue() + err.getvalue()


def check_one_clear_error(study: dict | str, defect: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table = make_images(tmp / "data")
        write_manifest(tmp, table, defect)
        study_file = tmp / "study.yaml"
        study_file.write_text(study if isinstance(study, str) else
                              yaml.safe_dump(study, sort_keys=False))
        work, out, cache = tmp / "work", tmp / "work" / "out", tmp / "cache"
        work.mkdir()
        before = snapshot(tmp, (out, cache))
        code, output = run_main(["run", str(study_file), "--out", str(out),
                                 "--cache-dir", str(cache)], work)
        assert code == 2, output
        assert "Traceback" not in output, output
        lines = [line for line in output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), output
        named = [str(study_file), str(tmp / "data"), "dataset.", "cv.", "task '",
                 "estimator '", "'name'", "tasks", "estimators", "primary", "ensembles"]
        assert any(token in lines[0] for token in named), lines[0]
        assert snapshot(tmp, (out, cache)) == before, "files written outside --out"
        assert not out.exists() or not any(out.rglob("*.parquet"))


SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(st.sampled_from(BAD_VALUES).flatmap(
    lambda case: st.tuples(st.just(case[0]), st.sampled_from(case[1]))),
    min_size=1, max_size=2))
def test_malformed_study_gets_one_clear_error(edits):
    study = valid_study()
    for key, value in edits:
        set_key(study, key, value if value is DELETE else copy.deepcopy(value))
    check_one_clear_error(study, None)


@SETTINGS
@given(st.sampled_from(MANIFEST_DEFECTS))
def test_malformed_manifest_gets_one_clear_error(defect):
    check_one_clear_error(valid_study(), defect)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.text(alphabet=st.sampled_from("ab:[]{}-,\n '\"&*!%@`|>"), max_size=40))
def test_malformed_yaml_gets_one_clear_error(text):
    check_one_clear_error(text, None)


def test_the_unedited_study_runs(tmp_path):
    """The property is about the edits: the study they start from is valid."""
    make_images(tmp_path / "data")
    write_manifest(tmp_path, make_images(tmp_path / "data"), None)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(valid_study()))
    code, output = run_main(["run", str(tmp_path / "study.yaml"), "--out",
                             str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c")],
                            tmp_path)
    assert code == 0, output
    assert (tmp_path / "out" / "folds.parquet").is_file()


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
