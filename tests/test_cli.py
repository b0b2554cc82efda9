"""``karyobench run`` end to end in subprocesses, on a small real BioImLab subset.

Only the cases that need the real images skip without them (``needs_real_data``); the
bad-input cases that need none run on generated images on any clone.

* a full run: files, every test image once per estimator, no group on both sides;
* reproducibility (same study and seed in a fresh folder and cache: identical folds and
  scores), reuse of every fold on an unchanged re-run, kill -9 and resume;
* bad input (issue 7): one clear ``error:`` line, exit code 2, no traceback. Every case in
  ``BAD_INPUTS`` runs in-process (fast) and its message must appear verbatim in
  ``docs/bad_inputs.md``; a subset also runs through the real CLI.

Regenerate the documentation table from the real CLI with ``python tests/test_cli.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kb_support import (BIOIMLAB, BIOIMLAB_MANIFEST, REPO, TINY_DCNN, bioimlab_dataset,  # noqa: E402
                      cli_command, error_line, run_cli, tiny_study)

DOCS = REPO / "docs" / "bad_inputs.md"
EXPECTED_FILES = ["folds.parquet", "predictions.parquet", "protocol.json", "tasks.json",
                  "config.yaml", "environment.json", "summary.md"]
TIMING = ["fit_seconds", "predict_seconds"]
MAIN_CLASSES = ["1", "2", "3", "4", "5", "X"]

REAL_DATA_MISSING = f"real data not found at {BIOIMLAB} (see shared/data/README.md)"
needs_real_data = pytest.mark.skipif(not BIOIMLAB_MANIFEST.is_file(),
                                     reason=REAL_DATA_MISSING)


def require_real_data() -> None:
    """Skip a bad-input case whose data are built from the real images."""
    if not BIOIMLAB_MANIFEST.is_file():
        pytest.skip(REAL_DATA_MISSING)


def main_study() -> dict:
    """limit_groups 6, canvas 24, 3 grouped folds, tiny 1-epoch DCNN + linear pixel SVM."""
    return tiny_study(bioimlab_dataset(),
                      name="cli_small",
                      tasks=[{"name": "six", "classes": MAIN_CLASSES}],
                      estimators=[{"kind": "dcnn", "params": dict(TINY_DCNN)},
                                  {"kind": "svm_linear_pixels"}],
                      cv={"split": "group", "folds": 3})


def write_yaml(path: Path, study) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(study if isinstance(study, str) else yaml.safe_dump(study, sort_keys=False))
    return path


def run_ok(study: Path, out: Path, cache: Path) -> subprocess.CompletedProcess:
    result = run_cli("run", study, "--out", out, "--cache-dir", cache)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def fold_metrics(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "folds.parquet").drop(columns=TIMING)


@pytest.fixture(scope="module")
def main_run(tmp_path_factory):
    require_real_data()
    root = tmp_path_factory.mktemp("cli_main")
    study = write_yaml(root / "study.yaml", main_study())
    out, cache = root / "out_a", root / "cache_a"
    result = run_ok(study, out, cache)
    return dict(root=root, study=study, out=out, cache=cache, result=result)


def test_run_writes_every_result_file(main_run):
    out = main_run["out"]
    for name in EXPECTED_FILES:
        assert (out / name).is_file(), name
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["group_column"] == "karyotype_id" and protocol["n_groups"] == 6
    assert protocol["n_folds"] == 3 and protocol["splits"] == ["group"]
    tasks = json.loads((out / "tasks.json").read_text())
    assert tasks["six"]["classes"] == MAIN_CLASSES
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["dataset"]["limit_groups"] == 6
    environment = json.loads((out / "environment.json").read_text())
    assert environment["folds_computed"] == 6 and environment["folds_reused"] == 0
    assert "no group in both train and test" in main_run["result"].stderr
    assert not list((out / "jobs").glob("*.tmp"))


def test_every_test_image_once_per_estimator(main_run):
    out = main_run["out"]
    predictions = pd.read_parquet(out / "predictions.parquet")
    n_images = json.loads((out / "tasks.json").read_text())["six"]["n_images"]
    assert set(predictions["estimator"]) == {"dcnn", "svm_linear_pixels"}
    for _, part in predictions.groupby(["split", "task", "estimator", "repeat"]):
        assert len(part) == n_images
        assert part["sample"].is_unique and part["path"].is_unique
    folds = pd.read_parquet(out / "folds.parquet")
    assert len(folds) == 6
    assert ((folds["n_train"] + folds["n_test"]) == n_images).all()
    assert set(predictions["y_true"]) == set(MAIN_CLASSES)


def test_no_group_in_train_and_test(main_run):
    predictions = pd.read_parquet(main_run["out"] / "predictions.parquet")
    for _, run in predictions.groupby(["split", "task", "estimator", "repeat"]):
        task_groups = run.set_index("sample")["group"]
        for _, fold in run.groupby("fold"):
            train_samples = task_groups.index.difference(fold["sample"])
            train_groups = set(task_groups.loc[train_samples])
            assert not train_groups & set(fold["group"])
            assert len(train_groups) + fold["group"].nunique() == 6


def test_same_study_and_seed_reproduce_exactly(main_run):
    """A second run in a fresh folder and fresh cache: same folds, same scores."""
    out_b = main_run["root"] / "out_b"
    run_ok(main_run["study"], out_b, main_run["root"] / "cache_b")
    pd.testing.assert_frame_equal(fold_metrics(main_run["out"]), fold_metrics(out_b))
    a = pd.read_parquet(main_run["out"] / "predictions.parquet")
    b = pd.read_parquet(out_b / "predictions.parquet")
    pd.testing.assert_frame_equal(a, b)  # fold assignment, predictions and probabilities


def test_unchanged_rerun_reuses_every_fold(main_run):
    before = fold_metrics(main_run["out"])
    result = run_ok(main_run["study"], main_run["out"], main_run["cache"])
    assert "reusing 6 finished fold(s)" in result.stderr
    assert "6 folds (6 reused)" in result.stderr
    pd.testing.assert_frame_equal(before, fold_metrics(main_run["out"]))
    environment = json.loads((main_run["out"] / "environment.json").read_text())
    assert environment["folds_computed"] == 0


def test_changed_study_recomputes_only_what_changed(main_run, tmp_path):
    study = main_study()
    study["estimators"][1]["params"] = {"svc__C": 0.5}  # the SVM changes, the DCNN does not
    path = write_yaml(tmp_path / "changed.yaml", study)
    out = tmp_path / "out"
    shutil.copytree(main_run["out"], out)  # leave the reference run untouched
    result = run_ok(path, out, main_run["cache"])
    assert "6 folds (3 reused)" in result.stderr
    folds = pd.read_parquet(out / "folds.parquet")
    assert len(folds) == 6  # stale folds of the old SVM are not mixed in
    old = fold_metrics(main_run["out"])
    dcnn = folds["estimator"] == "dcnn"
    pd.testing.assert_frame_equal(folds[dcnn].drop(columns=TIMING), old[dcnn])


def test_kill_and_resume_matches_uninterrupted_run(main_run, tmp_path):
    study = main_run["study"]
    out, cache = tmp_path / "out", tmp_path / "cache"
    env_cmd = cli_command("run", study, "--out", out, "--cache-dir", cache)
    import os

    env = dict(os.environ, KARYOBENCH_TF_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(env_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    try:
        deadline = time.monotonic() + 240
        while not list((out / "jobs").glob("*.json")):
            assert proc.poll() is None, "run ended before any fold was saved"
            assert time.monotonic() < deadline, "no fold saved in time"
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no cleanup, the lock and temp files are left as they are
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    saved = len(list((out / "jobs").glob("*.json")))
    assert 1 <= saved < 6, "the kill came too late to test resuming"
    assert not (out / "folds.parquet").exists()

    result = run_ok(study, out, cache)
    reused = re.search(r"reusing (\d+) finished fold", result.stderr)
    assert reused and int(reused.group(1)) >= saved
    assert "6 folds (" in result.stderr
    pd.testing.assert_frame_equal(fold_metrics(out), fold_metrics(main_run["out"]))


def shared_groups_per_fold(predictions: pd.DataFrame) -> list[int]:
    counts = []
    for _, run in predictions.groupby(["task", "estimator", "repeat"]):
        for _, fold in run.groupby("fold"):
            train = run[~run["sample"].isin(fold["sample"])]
            counts.append(len(set(train["group"]) & set(fold["group"])))
    return counts


@needs_real_data
def test_grouped_and_leaky_image_protocols_side_by_side(tmp_path):
    study = tiny_study(bioimlab_dataset(canvas={"mode": "native", "size": 16}),
                       tasks=[{"name": "five", "classes": ["1", "2", "3", "4", "5"]}],
                       cv={"split": ["group", "image"], "folds": 3})
    out = tmp_path / "out"
    result = run_ok(write_yaml(tmp_path / "s.yaml", study), out, tmp_path / "cache")
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["splits"] == ["group", "image"]
    assert "leaky" in protocol["descriptions"]["image"]
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert not any(shared_groups_per_fold(predictions[predictions["split"] == "group"]))
    # the seed's image-level split puts karyotypes on both sides (why it is optimistic)
    assert all(shared_groups_per_fold(predictions[predictions["split"] == "image"]))
    assert "protocol (image)" in result.stderr and "protocol (group)" in result.stderr


# -- bad input --------------------------------------------------------------------------


@dataclass
class BadInput:
    id: str
    description: str
    build: Callable[[Path], tuple[Path, Path, list[str]]]  # -> study, out, extra CLI args
    expect: str  # substring of the message
    cli: bool = False  # also run through the real CLI in the test suite


BAD_INPUTS: list[BadInput] = []


def bad_input(id: str, description: str, expect: str, cli: bool = False):
    def register(build):
        BAD_INPUTS.append(BadInput(id, description, build, expect, cli))
        return build
    return register


def bar_image(length: int, width: int = 8, value: int = 180) -> np.ndarray:
    image = np.zeros((length + 6, width + 6), np.uint8)
    image[3:-3, 3:-3] = value
    return image


def image_folders(root: Path, classes=("1", "2"), n: int = 4) -> Path:
    for c, label in enumerate(classes):
        (root / label).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.fromarray(bar_image(12 + 8 * c + k)).save(root / label / f"{k}.png")
    return root


def folders_study(tmp: Path, root: Path, **overrides) -> dict:
    dataset = {"source": "folders", "path": str(root), "canvas": {"size": 16}}
    dataset.update(overrides.pop("dataset", {}))
    base = dict(tasks=[{"name": "t", "classes": ["1", "2"]}], cv={"folds": 3})
    base.update(overrides)
    return tiny_study(dataset, **base)


def generated_crops(folder: Path, karyotypes, classes) -> pd.DataFrame:
    """Two bar crops (a, b) per karyotype and class, named like BioImLab's files."""
    rows = []
    for k in karyotypes:
        for c, label in enumerate(classes):
            for copy in "ab":
                path = folder / label / f"k{k:03d}_{label}{copy}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(bar_image(12 + 6 * c + k + (copy == "b"))).save(path)
                rows.append({"path": str(path), "label": label, "karyotype_id": str(k)})
    return pd.DataFrame(rows)


def subset_manifest(tmp: Path, extra_rows=None, karyotypes=range(1, 4),
                    classes=("01", "02")) -> Path:
    """A manifest (absolute paths, karyotype groups) of generated crops: no real data."""
    rows = generated_crops(tmp / "data" / "crops", karyotypes, classes)
    if extra_rows:
        rows = pd.concat([rows, pd.DataFrame(extra_rows)], ignore_index=True)
    out = tmp / "data" / "labels.csv"
    rows.to_csv(out, index=False)
    return out


def generated_manifest(tmp: Path, n_groups: int = 6, classes=("1", "2"),
                       empty_groups=()) -> Path:
    """A manifest of generated crops, one per class and karyotype; ``empty_groups``: the
    0-based rows whose karyotype_id is left empty."""
    rows = []
    for g in range(n_groups):
        for c, label in enumerate(classes):
            path = tmp / "data" / "img" / f"k{g}_{label}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(bar_image(12 + 8 * c + g % 3)).save(path)
            rows.append({"path": f"img/{path.name}", "label": label, "karyotype_id": f"k{g}"})
    table = pd.DataFrame(rows)
    table.loc[list(empty_groups), "karyotype_id"] = ""
    manifest = tmp / "data" / "labels.csv"
    table.to_csv(manifest, index=False)
    return manifest


def manifest_study(manifest: Path, **overrides) -> dict:
    dataset = {"source": "manifest", "path": str(manifest), "canvas": {"size": 16}}
    dataset.update(overrides.pop("dataset", {}))
    base = dict(tasks=[{"name": "t", "classes": ["1", "2"]}], cv={"folds": 3})
    base.update(overrides)
    return tiny_study(dataset, **base)


def study_case(tmp: Path, study) -> tuple[Path, Path, list[str]]:
    return write_yaml(tmp / "study.yaml", study), tmp / "out", []


def one_extra_file(tmp: Path, name: str, content: bytes | None = None,
                   image: np.ndarray | None = None) -> Path:
    path = tmp / "data" / "bad" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if image is not None:
        Image.fromarray(image).save(path)
    else:
        path.write_bytes(content)
    return path


@bad_input("yaml_syntax", "YAML syntax error (unclosed bracket)",
           "flow sequence started at line 4, column 14", cli=True)
def _(tmp):
    text = "name: s\ntasks:\n  - name: t\n    classes: [1, 2\nestimators: []\n"
    return write_yaml(tmp / "study.yaml", text), tmp / "out", []


@bad_input("unknown_key", "unknown key (typo)", "Did you mean 'folds'?", cli=True)
def _(tmp):
    study = folders_study(tmp, image_folders(tmp / "imgs"), cv={"fodls": 3})
    return study_case(tmp, study)


@bad_input("wrong_type", "wrong type", "'cv.folds' = 'five': Input should be a valid integer")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"),
                                         cv={"folds": "five"}))


@bad_input("study_missing", "study file does not exist", "does not exist")
def _(tmp):
    return tmp / "missing.yaml", tmp / "out", []


@bad_input("study_not_utf8", "study file not UTF-8", "not UTF-8 text (byte 6)")
def _(tmp):
    path = tmp / "study.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    return path, tmp / "out", []


@bad_input("study_is_folder", "study path is a folder", "is a folder; give the study's YAML")
def _(tmp):
    return tmp, tmp / "out", []


@bad_input("study_name_dotdot", "study name '..' (would write outside results/)",
           "'name' = '..': a study name starts with a letter or digit", cli=True)
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"), name=".."))


@pytest.mark.parametrize("name", [".", "..", ".hidden"])
def test_study_name_cannot_leave_results(name, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path, image_folders(
        tmp_path / "imgs"), name=name))
    line = error_line(run_cli("run", study, "--cache-dir", tmp_path / "cache", cwd=work))
    assert f"'name' = '{name}'" in line
    assert not list(work.iterdir())


@bad_input("classes_not_a_list", "task classes neither a list nor a preset",
           "'tasks.0.classes' = 5: Input should be a valid list.")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"),
                                         tasks=[{"name": "t", "classes": 5}]))


@bad_input("path_missing", "dataset.path not given", "dataset.path is required")
def _(tmp):
    study = folders_study(tmp, tmp)
    del study["dataset"]["path"]
    return study_case(tmp, study)


@bad_input("path_empty", "dataset.path empty", "empty path")
def _(tmp):
    return study_case(tmp, folders_study(tmp, tmp, dataset={"path": ""}))


@bad_input("manifest_absent", "manifest CSV does not exist", "does not exist; set dataset.path",
           cli=True)
def _(tmp):
    return study_case(tmp, manifest_study(tmp / "nope.csv"))


@bad_input("folder_absent", "class-folder root does not exist", "is not a folder")
def _(tmp):
    return study_case(tmp, folders_study(tmp, tmp / "nope"))


@bad_input("folder_no_classes", "folder without class sub-folders", "has no class sub-folders")
def _(tmp):
    (tmp / "flat").mkdir()
    Image.fromarray(bar_image(10)).save(tmp / "flat" / "a.png")
    return study_case(tmp, folders_study(tmp, tmp / "flat"))


@bad_input("class_folder_empty", "class folder with no images", "holds no images", cli=True)
def _(tmp):
    root = image_folders(tmp / "imgs")
    (root / "3").mkdir()
    (root / "3" / "notes.txt").write_text("no images")
    return study_case(tmp, folders_study(tmp, root))


@bad_input("manifest_columns", "manifest missing the label column", "lacks column(s) label")
def _(tmp):
    manifest = subset_manifest(tmp)
    table = pd.read_csv(manifest).rename(columns={"label": "class"})
    table.to_csv(manifest, index=False)
    return study_case(tmp, manifest_study(manifest))


@bad_input("manifest_unknown_paths", "manifest lists files that do not exist",
           "listed file(s) do not exist")
def _(tmp):
    manifest = subset_manifest(tmp, extra_rows=[{"path": "missing/k999.bmp", "label": "01",
                                                 "karyotype_id": "999"}])
    return study_case(tmp, manifest_study(manifest))


@bad_input("manifest_duplicates", "manifest lists a path twice", "more than once")
def _(tmp):
    manifest = subset_manifest(tmp)
    table = pd.read_csv(manifest, dtype=str)
    pd.concat([table, table.head(1)]).to_csv(manifest, index=False)
    return study_case(tmp, manifest_study(manifest))


@bad_input("manifest_ragged", "manifest row with more fields than the header",
           "more fields than the header")
def _(tmp):
    manifest = subset_manifest(tmp)
    lines = manifest.read_text().splitlines()
    lines[1] += ",extra"
    manifest.write_text("\n".join(lines) + "\n")
    return study_case(tmp, manifest_study(manifest))


@bad_input("task_label_missing", "task class not in the data", "have no images in the dataset",
           cli=True)
def _(tmp):
    manifest = subset_manifest(tmp)
    return study_case(tmp, manifest_study(
        manifest, tasks=[{"name": "t", "classes": ["1", "2", "i(18)(q10)"]}]))


@bad_input("truncated_image", "truncated image", "corrupt or truncated image", cli=True)
def _(tmp):
    good = tmp / "good.bmp"
    Image.fromarray(bar_image(40)).save(good)
    path = one_extra_file(tmp, "trunc.bmp", good.read_bytes()[:300])
    manifest = subset_manifest(tmp, extra_rows=[{"path": str(path), "label": "01",
                                                 "karyotype_id": "4"}])
    return study_case(tmp, manifest_study(manifest))


@bad_input("zero_byte", "zero-byte file", "empty file (0 bytes)")
def _(tmp):
    root = image_folders(tmp / "imgs")
    (root / "1" / "zero.png").write_bytes(b"")
    return study_case(tmp, folders_study(tmp, root))


@bad_input("not_an_image", "text file with an image extension", "not an image PIL can read")
def _(tmp):
    root = image_folders(tmp / "imgs")
    (root / "2" / "readme.bmp").write_text("this is not a bitmap")
    return study_case(tmp, folders_study(tmp, root))


@bad_input("one_pixel", "1x1 px image", "is 1x1 px, too small")
def _(tmp):
    root = image_folders(tmp / "imgs")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(root / "1" / "dot.png")
    return study_case(tmp, folders_study(tmp, root))


def huge_png(path: Path, side: int = 20_000) -> Path:
    """A PNG whose header says ``side`` x ``side`` px (400 MP): Pillow refuses it as a
    decompression bomb; it holds only a few bytes of data."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
    from test_imageio import png_claiming_size

    return png_claiming_size(path, side, side)


@bad_input("huge_image", "20000x20000 px PNG (above dataset.max_pixels)",
           "huge.png: image is 20000x20000 px (400 MP), above dataset.max_pixels", cli=True)
def _(tmp):
    root = image_folders(tmp / "imgs")
    huge_png(root / "2" / "huge.png")
    return study_case(tmp, folders_study(tmp, root))


@bad_input("broken_link", "broken symbolic link in a class folder",
           "gone.png: broken symbolic link (to '", cli=True)
def _(tmp):
    root = image_folders(tmp / "imgs")
    (root / "1" / "gone.png").symlink_to(tmp / "nowhere.png")
    return study_case(tmp, folders_study(tmp, root))


@bad_input("all_skipped", "every image unreadable with on_bad_image: skip",
           "no readable images in the dataset: all 2 file(s) were unreadable, e.g. ")
def _(tmp):
    for label in ("1", "2"):
        (tmp / "imgs" / label).mkdir(parents=True)
        (tmp / "imgs" / label / "a.png").write_bytes(b"")
    return study_case(tmp, folders_study(tmp, tmp / "imgs",
                                         dataset={"on_bad_image": "skip"}))


@bad_input("class_smaller_than_folds", "class with fewer images than folds",
           "have fewer images than cv.folds = 5")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs", n=4),
                                         cv={"folds": 5}))


@bad_input("class_in_one_group", "one group holds every image of a class",
           "every image of class 'rare' belongs to one group ('9')")
def _(tmp):
    rare = generated_crops(tmp / "rare", [9], ["03", "04"])
    manifest = subset_manifest(tmp, karyotypes=range(1, 7), extra_rows=[
        {"path": p, "label": "rare", "karyotype_id": "9"} for p in rare.path])
    return study_case(tmp, manifest_study(
        manifest, tasks=[{"name": "t", "classes": ["1", "2", "rare"]}],
        dataset={"group_column": "karyotype_id"}))


@bad_input("group_column_absent", "group_column not in the data",
           "dataset.group_column 'patient_id' is not in the data")
def _(tmp):
    return study_case(tmp, manifest_study(subset_manifest(tmp),
                                          dataset={"group_column": "patient_id"}))


@bad_input("group_split_without_groups", "cv.split: group on class folders (no groups)",
           "cv.split 'group' needs a group column")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"),
                                         cv={"split": "group", "folds": 3}))


@bad_input("missing_group_ids", "manifest rows with an empty group id",
           "8 row(s) have no karyotype_id (CSV line(s) 2, 3, 4, 6, 8 and 3 more)", cli=True)
def _(tmp):
    manifest = generated_manifest(tmp, empty_groups=[0, 1, 2, 4, 6, 7, 9, 11])
    return study_case(tmp, manifest_study(manifest))


@bad_input("split_column_ids_missing", "cv.split group:<column> with empty ids",
           "cv.split 'group:cell_id': 2 image(s) have no cell_id, e.g. ")
def _(tmp):
    manifest = generated_manifest(tmp)
    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    table["cell_id"] = [f"c{i // 2}" for i in range(len(table))]
    table.loc[[3, 8], "cell_id"] = ""
    table.to_csv(manifest, index=False)
    return study_case(tmp, manifest_study(manifest, cv={"split": "group:cell_id",
                                                         "folds": 3}))


@bad_input("limit_groups_group_column_absent", "group_column not in the data, with "
           "limit_groups", "dataset.group_column 'patient_id' is not in the data")
def _(tmp):
    return study_case(tmp, manifest_study(generated_manifest(tmp), dataset={
        "group_column": "patient_id", "limit_groups": 3}))


@bad_input("limit_groups_without_groups", "limit_groups on class folders",
           "limit_groups needs a group column")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"),
                                         dataset={"limit_groups": 2}))


@bad_input("unknown_estimator", "unknown estimator kind",
           "Did you mean 'svm_linear_pixels'?", cli=True)
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"),
                                         estimators=[{"kind": "svm_linaer_pixels"}]))


@bad_input("unknown_parameter", "unknown estimator parameter",
           "has no parameter 'svc__c'. Did you mean 'svc__C'?")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"), estimators=[
        {"kind": "svm_linear_pixels", "params": {"svc__c": 2}}]))


@bad_input("invalid_parameter_value", "invalid estimator parameter value",
           "The 'n_estimators' parameter of RandomForestClassifier must be an int")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"), estimators=[
        {"kind": "rf_pixels", "params": {"rf__n_estimators": 0}}]))


@bad_input("unsupported_keras_parameter", "estimator parameter the network cannot honour",
           "The 'optimizer' parameter of DCNNClassifier must be a Keras optimizer name")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"), estimators=[
        {"kind": "dcnn", "params": {"optimizer": "adamm"}}]))


@bad_input("pipeline_step_as_parameter", "a baseline's pipeline step set as a parameter",
           "'svc' is a component of 'svm_linear_pixels', not a parameter")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"), estimators=[
        {"kind": "svm_linear_pixels", "params": {"svc": "passthrough"}}]))


@bad_input("ensemble_unknown_member", "ensemble member that is not an estimator",
           "members ['svm_lienar_pixels'] are not estimators of this study")
def _(tmp):
    return study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs"), ensembles=[
        {"name": "vote", "members": ["svm_linear_pixels", "svm_lienar_pixels"]}]))


@bad_input("unwritable_out", "--out under a regular file (not writable)", "is not writable",
           cli=True)
def _(tmp):
    (tmp / "afile").write_text("a file, not a folder")
    study, _, extra = study_case(tmp, folders_study(tmp, image_folders(tmp / "imgs")))
    return study, tmp / "afile" / "sub", extra


def run_in_process(study: Path, out: Path, cache: Path) -> str | None:
    """What the CLI would print, without a new interpreter (same code path after parsing)."""
    from karyobench.errors import KaryobenchError
    from karyobench.evaluation.runner import run_study
    from karyobench.study import load_study

    try:
        run_study(load_study(study), out, cache_dir=cache)
    except KaryobenchError as err:
        return f"error: {err}"
    return None


def normalise(message: str, tmp: Path) -> str:
    return message.replace(str(tmp), "<tmp>").replace(str(BIOIMLAB), "<bioimlab>")


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_bad_input_in_process(case, tmp_path):
    study, out, _ = case.build(tmp_path)
    message = run_in_process(study, out, tmp_path / "cache")
    assert message is not None, "no error raised"
    assert case.expect in message
    assert "\n" not in message
    documented = DOCS.read_text()
    assert f"`{normalise(message, tmp_path)}`" in documented, (
        f"docs/bad_inputs.md is out of date for '{case.id}'; run python tests/test_cli.py")


CLI_CASES = [c for c in BAD_INPUTS if c.cli]


def test_at_least_five_cases_run_through_the_cli():
    assert len(CLI_CASES) >= 5


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_input_through_the_cli(case, tmp_path):
    study, out, extra = case.build(tmp_path)
    result = run_cli("run", study, "--out", out, "--cache-dir", tmp_path / "cache", *extra)
    line = error_line(result)
    assert case.expect in line
    # identical to the in-process message (so the in-process cases stand for the CLI)
    assert line == run_in_process(study, out, tmp_path / "cache2").replace(
        str(tmp_path / "cache2"), str(tmp_path / "cache"))


def test_debug_flag_shows_the_traceback(tmp_path):
    study = write_yaml(tmp_path / "s.yaml", "name: [unclosed\n")
    result = run_cli("--debug", "run", study, "--out", tmp_path / "out")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_second_run_on_a_busy_results_folder_is_refused(tmp_path):
    from karyobench.evaluation.store import ResultsStore

    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path,
                                                          image_folders(tmp_path / "imgs")))
    out = tmp_path / "out"
    with ResultsStore(out).lock():  # this test process plays the running first run
        line = error_line(run_cli("run", study, "--out", out, "--cache-dir", tmp_path / "c"))
    assert f"results folder '{out}' is in use by karyobench run (pid " in line
    assert "wait for it to finish or pass a different --out" in line


def test_error_message_is_printed_verbatim(tmp_path):
    study = tmp_path / "data[v2]" / "[bold]" / "missing.yaml"
    line = error_line(run_cli("run", study))
    assert line == f"error: study file '{study}' does not exist."


def test_bad_backend_option(tmp_path):
    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path,
                                                          image_folders(tmp_path / "imgs")))
    line = error_line(run_cli("run", study, "--backend", "threads", "--out", tmp_path / "o"))
    assert "--backend 'threads' is unknown; use auto, sequential, loky or dask" in line


def test_missing_group_ids_as_own_groups_never_pool(tmp_path):
    empty = [0, 3, 4, 9]
    manifest = generated_manifest(tmp_path, empty_groups=empty)
    study = write_yaml(tmp_path / "s.yaml", manifest_study(
        manifest, dataset={"missing_groups": "own_group"}, cv={"split": "group", "folds": 3}))
    out = tmp_path / "out"
    run_ok(study, out, tmp_path / "cache")
    predictions = pd.read_parquet(out / "predictions.parquet")
    groups = predictions.drop_duplicates("sample").set_index("sample")["group"]
    assert groups.loc[empty].is_unique and "" not in set(groups)
    assert groups.nunique() == 6 + len(empty)  # each of k0-k5 keeps a row
    assert not any(shared_groups_per_fold(predictions))
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["dataset"]["missing_groups"] == "own_group"


# -- command-line usage errors and interrupts ----------------------------------------------


#: (id, command line after ``karyobench``, substring of the message); the exact messages
#: are in docs/bad_inputs.md, generated like the bad-input table
USAGE_ERRORS = [
    ("unknown_command", ["rnu"],
     "No such command 'rnu'. Did you mean 'run'? See 'karyobench --help'."),
    ("missing_study", ["run"], "Missing argument 'study'; see 'karyobench run --help'."),
    ("unknown_option", ["run", "s.yaml", "--outt", "x"], "No such option: --outt"),
    ("bad_int", ["run", "s.yaml", "--workers", "two"], "Invalid value for '--workers'"),
    ("missing_folder", ["report"],
     "Missing argument 'results_dir'; see 'karyobench report --help'."),
]


@pytest.mark.parametrize("args, expect", [case[1:] for case in USAGE_ERRORS],
                         ids=[case[0] for case in USAGE_ERRORS])
def test_usage_error_is_one_line_and_exit_2(args, expect, tmp_path):
    line = error_line(run_cli(*args, cwd=tmp_path))
    assert expect in line
    assert not list(tmp_path.iterdir()), "a usage error wrote files"
    assert f"| `karyobench {' '.join(args)}` | `{line}` |" in DOCS.read_text(), (
        "docs/bad_inputs.md is out of date; run python tests/test_cli.py")


def test_no_arguments_prints_help_and_exits_2():
    result = run_cli()
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "run" in result.stdout + result.stderr and "Usage" in result.stdout + result.stderr


def test_failed_run_leaves_no_lock_nor_empty_folders(tmp_path):
    root = image_folders(tmp_path / "imgs")
    (root / "1" / "zero.png").write_bytes(b"")
    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path, root))
    out = tmp_path / "new" / "out"
    assert "empty file (0 bytes)" in error_line(run_cli("run", study, "--out", out))
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("kept")
    error_line(run_cli("run", study, "--out", existing))
    assert sorted(p.name for p in existing.iterdir()) == ["notes.txt"]


def slow_folders_study(tmp: Path) -> Path:
    """A DCNN study whose folds take seconds each, to interrupt mid-run."""
    dcnn = dict(TINY_DCNN, epochs=400, batch_size=4)
    return write_yaml(tmp / "s.yaml", folders_study(
        tmp, image_folders(tmp / "imgs", n=6), estimators=[{"kind": "dcnn", "params": dcnn}]))


def with_default_sigint() -> None:
    """``preexec_fn`` for children that are interrupted: a shell starts background jobs
    with SIGINT ignored and children inherit that, so a suite run in the background would
    otherwise test an ignored Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after_new_folds(study: Path, out: Path, cache: Path, signum: int,
                              already: int = 0) -> subprocess.CompletedProcess:
    """Run the CLI and send ``signum`` once a fold more than ``already`` is saved."""
    env = dict(os.environ, KARYOBENCH_TF_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3",
               NO_COLOR="1", TERM="dumb", COLUMNS="200")
    command = cli_command("run", study, "--out", out, "--cache-dir", cache)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=with_default_sigint)
    try:
        deadline = time.monotonic() + 240
        while len(list((out / "jobs").glob("*.json"))) <= already:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no fold saved in time"
            time.sleep(0.05)
        # A signal's exception raised while Python runs a destructor is swallowed, so,
        # like a supervisor, signal again if the command has not stopped within 5 s
        # (stopping took about 1 s on a busy 2-core machine; a fold here takes several)
        for _ in range(12):
            proc.send_signal(signum)
            try:
                stdout, stderr = proc.communicate(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            raise AssertionError("the command did not stop within 60 s of the signal")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)], ids=["sigint", "sigterm"])
def test_an_interrupt_swallowed_in_a_destructor_still_says_so(signum, code, tmp_path):
    """Python drops an exception raised while a destructor runs (and by default prints a
    traceback); a Ctrl-C or SIGTERM that lands there must still end in the interrupted
    line and its exit code, not in exit 0."""
    script = tmp_path / "swallow.py"
    script.write_text(
        "import os, time\n"
        "import karyobench.cli as cli\n"
        "class Dropped:\n"
        "    def __del__(self):\n"
        f"        os.kill(os.getpid(), {signum})\n"
        "        time.sleep(0.5)  # the handler runs here, inside the destructor\n"
        "def command(**kwargs):\n"
        "    Dropped()\n"
        "    print('the command went on')\n"
        "    return 0\n"
        "cli.app = command\n"
        "cli.main()\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, preexec_fn=with_default_sigint)
    assert "the command went on" in result.stdout  # Python did swallow the exception
    assert "Traceback" not in result.stderr
    assert result.returncode == code, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: interrupted; finished folds are kept, re-run to resume")


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)], ids=["sigint", "sigterm"])
def test_interrupt_says_so_and_keeps_finished_folds(signum, code, tmp_path):
    out = tmp_path / "out"
    result = interrupt_after_new_folds(slow_folders_study(tmp_path), out, tmp_path / "cache",
                                       signum)
    stderr = result.stderr
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        "error: interrupted; finished folds are kept, re-run to resume")
    saved = list((out / "jobs").glob("*.json"))
    assert 1 <= len(saved) < 3
    assert not (out / ".lock").exists()
    result = run_ok(tmp_path / "s.yaml", out, tmp_path / "cache")
    assert f"reusing {len(saved)} finished fold(s)" in result.stderr


def format_folders(root: Path) -> tuple[Path, set[str]]:
    """Two classes of 16-bit, RGBA, palette, RGB and inverted crops, plus bad files."""
    for c, label in enumerate(("1", "2")):
        folder = root / label
        folder.mkdir(parents=True)
        for k in range(2):
            bar = bar_image(14 + 10 * c + k)
            Image.fromarray(bar.astype(np.uint16) * 257).save(folder / f"grey16_{k}.png")
            rgba = np.zeros((*bar.shape, 4), np.uint8)
            rgba[..., :3] = 255 - bar[..., None]
            rgba[..., 3] = np.where(bar > 0, 255, 0)
            Image.fromarray(rgba).save(folder / f"rgba_{k}.png")
            Image.fromarray(bar).convert("P").save(folder / f"palette_{k}.png")
            Image.fromarray(np.stack([bar] * 3, -1)).save(folder / f"rgb_{k}.bmp")
            Image.fromarray(255 - bar).save(folder / f"inverted_{k}.tif")
    (root / "1" / "zero.png").write_bytes(b"")
    (root / "2" / "text.bmp").write_text("not an image")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(root / "2" / "dot.png")
    good = (root / "1" / "rgb_0.bmp").read_bytes()
    (root / "1" / "trunc.bmp").write_bytes(good[: len(good) // 2])
    bad = {str((root / name).resolve()) for name in
           ("1/zero.png", "2/text.bmp", "2/dot.png", "1/trunc.bmp")}
    return root, bad


def test_formats_work_and_skip_lists_every_bad_file(tmp_path):
    root, bad = format_folders(tmp_path / "imgs")
    study = write_yaml(tmp_path / "s.yaml", folders_study(
        tmp_path, root, dataset={"on_bad_image": "skip"}))
    out = tmp_path / "out"
    run_ok(study, out, tmp_path / "cache")
    skipped = pd.read_csv(out / "skipped_files.csv")
    assert set(skipped["path"]) == bad
    # each says what is wrong; none says to set the on_bad_image: skip that is set
    assert not skipped["reason"].str.contains("on_bad_image").any()
    assert skipped["reason"].str.contains("empty file|not an image|too small|truncated").all()
    predictions = pd.read_parquet(out / "predictions.parquet")
    names = {Path(p).name for p in predictions["path"]}
    for stem in ("grey16", "rgba", "palette", "rgb", "inverted"):
        assert {f"{stem}_0", f"{stem}_1"} <= {n.split(".")[0] for n in names}, stem
    assert len(predictions) == 20  # 2 classes x 10 good crops, each tested once


def test_huge_image_skipped_with_its_reason(tmp_path):
    root = image_folders(tmp_path / "imgs")
    huge = huge_png(root / "2" / "huge.png")
    study = write_yaml(tmp_path / "s.yaml", folders_study(
        tmp_path, root, dataset={"on_bad_image": "skip"}))
    result = run_ok(study, tmp_path / "out", tmp_path / "cache")
    assert "DecompressionBomb" not in result.stderr
    skipped = pd.read_csv(tmp_path / "out" / "skipped_files.csv")
    assert skipped.values.tolist() == [[str(huge.resolve()), "image is 20000x20000 px "
                                        "(400 MP), above dataset.max_pixels = 50,000,000",
                                        "decode"]]


def test_unusable_cache_dir_is_one_line(tmp_path):
    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path,
                                                          image_folders(tmp_path / "imgs")))
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    line = error_line(run_cli("run", study, "--out", tmp_path / "o", "--cache-dir", afile))
    assert line == f"error: cache folder '{afile}' is a file; pass a folder as --cache-dir."
    line = error_line(run_cli("run", study, "--out", tmp_path / "o", "--cache-dir",
                              afile / "sub"))
    assert line == (f"error: cache folder '{afile / 'sub'}' is not writable (Not a "
                    "directory); pass a writable folder as --cache-dir.")
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_dir_is_one_line(tmp_path):
    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path,
                                                          image_folders(tmp_path / "imgs")))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = error_line(run_cli("run", study, "--out", tmp_path / "o", "--cache-dir", locked))
    finally:
        locked.chmod(0o700)
    assert f"cache folder '{locked}' is not writable (Permission denied)" in line


def test_unwritable_default_cache_falls_back_with_a_warning(tmp_path):
    """A home whose cache folder cannot be made (common in containers): the run works,
    says so, and writes nothing there."""
    home = tmp_path / "home"
    home.write_text("HOME is a file here")
    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path,
                                                          image_folders(tmp_path / "imgs")))
    env = {k: v for k, v in os.environ.items() if k != "KARYOBENCH_CACHE"}
    result = subprocess.run(cli_command("run", study, "--out", tmp_path / "o"),
                            capture_output=True, text=True, timeout=300,
                            env=dict(env, HOME=str(home), COLUMNS="200", NO_COLOR="1"))
    assert result.returncode == 0, result.stderr
    assert (f"warning: cache folder '{home}/.cache/karyobench' is not writable; decoded "
            "images are cached for this run only") in result.stderr
    assert (tmp_path / "o" / "folds.parquet").is_file()


def test_synth_out_on_a_file_is_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = error_line(run_cli("synth", "--out", afile, "--patients", "1"))
    assert line == (f"error: --out '{afile}' is a file; give a folder to write the images "
                    "and manifest.csv into.")


def test_everything_not_used_is_said_on_the_console_and_in_the_report(tmp_path):
    root = image_folders(tmp_path / "imgs", classes=("1", "2", "3"))
    (root / "1" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (root / "2" / "old").mkdir()
    Image.fromarray(bar_image(20)).save(root / "2" / "old" / "a.png")
    (root / "2" / "notes.txt").write_text("not an image")
    (root / "1" / "zero.png").write_bytes(b"")
    study = write_yaml(tmp_path / "s.yaml", folders_study(
        tmp_path, root, dataset={"on_bad_image": "skip"}))
    out = tmp_path / "out"
    result = run_ok(study, out, tmp_path / "cache")
    sentence = ("not used: 2 unreadable file(s) skipped; 2 file(s) passed over in the class "
                "folders; task 't': 4 image(s) with labels outside it: 3 (4) (files listed in "
                "skipped_files.csv).")
    assert sentence in " ".join(result.stderr.split())
    import html

    assert sentence[1:] in html.unescape((out / "report.html").read_text())
    listed = pd.read_csv(out / "skipped_files.csv")
    by_name = {Path(p).name: (stage, reason) for p, reason, stage in listed.values}
    assert by_name["gone.png"][0] == "decode" and "broken symbolic link" in by_name["gone.png"][1]
    assert by_name["zero.png"][0] == "decode"
    assert by_name["a.png"] == ("folder walk", "image in sub-folder 'old' of class folder "
                                "'2'; only <class>/<image> is read")
    assert by_name["notes.txt"][0] == "folder walk"
    # once the files are fixed, the list goes too (it would describe other data)
    for name in ("1/gone.png", "1/zero.png", "2/notes.txt", "2/old/a.png"):
        (root / name).unlink()
    result = run_ok(study, out, tmp_path / "cache")
    assert not (out / "skipped_files.csv").exists()
    assert "not used: task 't': 4 image(s)" in result.stderr


def test_interrupted_changed_study_leaves_the_folder_describing_its_results(tmp_path):
    """Add a (slow) estimator and interrupt: config, protocol and tables are still the
    first study's, all written by the run that finished."""
    slow = yaml.safe_load(slow_folders_study(tmp_path).read_text())
    first = dict(slow, estimators=[{"kind": "svm_linear_pixels"}])
    out, cache = tmp_path / "out", tmp_path / "cache"
    run_ok(write_yaml(tmp_path / "first.yaml", first), out, cache)
    before = {name: (out / name).read_bytes() for name in
              ("config.yaml", "protocol.json", "tasks.json", "folds.parquet")}
    second = dict(slow, estimators=[{"kind": "svm_linear_pixels"}] + slow["estimators"])
    result = interrupt_after_new_folds(write_yaml(tmp_path / "second.yaml", second), out,
                                       cache, signal.SIGINT, already=3)
    assert result.returncode == 130, result.stderr
    assert {name: (out / name).read_bytes() for name in before} == before


def test_out_onto_another_studys_results_needs_force(tmp_path):
    root = image_folders(tmp_path / "imgs")
    study_a = write_yaml(tmp_path / "a.yaml", folders_study(tmp_path, root, name="study_a"))
    study_b = write_yaml(tmp_path / "b.yaml", folders_study(tmp_path, root, name="study_b"))
    out, cache = tmp_path / "out", tmp_path / "cache"
    run_ok(study_a, out, cache)
    line = error_line(run_cli("run", study_b, "--out", out, "--cache-dir", cache))
    assert line == (f"error: results folder '{out}' holds the results of study 'study_a', "
                    "not 'study_b'; choose another --out, or pass --force to replace them.")
    assert json.loads((out / "protocol.json").read_text())["study"] == "study_a"
    result = run_cli("run", study_b, "--out", out, "--cache-dir", cache, "--force")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "protocol.json").read_text())["study"] == "study_b"


def test_out_inside_the_class_folders_is_refused(tmp_path):
    root = image_folders(tmp_path / "imgs")
    study = write_yaml(tmp_path / "s.yaml", folders_study(tmp_path, root))
    line = error_line(run_cli("run", study, "--out", root / "results"))
    assert line == (f"error: results folder '{root / 'results'}' is inside dataset.path "
                    f"'{root}', whose sub-folders are read as classes; choose an --out "
                    "outside it.")
    assert sorted(p.name for p in root.iterdir()) == ["1", "2"]


def run_in_terminal(*args, cwd: Path) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stderr (rich draws its live displays only on
    a terminal); (exit code, everything it drew, escape codes removed)."""
    import pty

    primary, secondary = pty.openpty()
    env = dict(os.environ, KARYOBENCH_TF_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3",
               COLUMNS="160", TERM="xterm")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(cli_command(*args), stdout=secondary, stderr=secondary,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    code = proc.wait(timeout=300)
    os.close(primary)
    text = b"".join(chunks).decode(errors="replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_progress_names_each_stage_with_an_eta(tmp_path):
    study = write_yaml(tmp_path / "s.yaml", folders_study(
        tmp_path, image_folders(tmp_path / "imgs", n=6), cv={"folds": 3, "repeats": 2}))
    code, drawn = run_in_terminal("run", study, "--out", tmp_path / "out", "--cache-dir",
                                  tmp_path / "cache", cwd=tmp_path)
    assert code == 0, drawn
    assert "reading and decoding images" in drawn
    assert "writing tables, plots and report.html" in drawn
    # folds run in parallel, so which one finishes last (and is named) varies
    assert re.search(r"finished t · svm_linear_pixels · fold [0-2]", drawn), drawn
    assert "6/6" in drawn
    assert re.search(r"ETA\s+\d+:\d\d:\d\d", drawn), drawn


# -- regenerate docs/bad_inputs.md from the real CLI --------------------------------------


def write_docs() -> None:
    import tempfile

    existing = DOCS.read_text() if DOCS.is_file() else ""
    rows = []
    for case in BAD_INPUTS:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            try:
                study, out, extra = case.build(tmp)
            except pytest.skip.Exception:  # needs the real images: keep its documented row
                kept = re.search(rf"^\| {re.escape(case.description)} \| `(.*)` \|$",
                                 existing, re.MULTILINE)
                assert kept, f"{case.id}: needs the real data and is not documented yet"
                rows.append((case.description, kept.group(1)))
                continue
            result = run_cli("run", study, "--out", out, "--cache-dir", tmp / "cache", *extra)
            line = error_line(result)
            assert case.expect in line, (case.id, line)
            rows.append((case.description, normalise(line, tmp)))
            print(f"{case.id}: {rows[-1][1]}", file=sys.stderr)
    header = (
        "# Bad inputs and what karyobench says\n\n"
        "Each row is a bad input tried with `karyobench run STUDY.yaml --out OUT "
        "--cache-dir CACHE` and the exact message it printed (exit code 2, one line, no "
        "traceback; `karyobench --debug run ...` shows the traceback). `<tmp>` stands for "
        "the temporary folder of the case, `<bioimlab>` for `../shared/data/bioimlab_qband`.\n"
        "Generated by `python tests/test_cli.py`; `tests/test_cli.py` checks that every "
        "message below is still produced word for word.\n\n"
        "| bad input | message |\n|---|---|\n")
    body = "".join(f"| {what} | `{message}` |\n" for what, message in rows)
    usage = []
    with tempfile.TemporaryDirectory() as tmp:
        for _, args, expect in USAGE_ERRORS:
            line = error_line(run_cli(*args, cwd=Path(tmp)))
            assert expect in line, (args, line)
            usage.append(f"| `karyobench {' '.join(args)}` | `{line}` |\n")
    body += ("\n## Command-line usage errors\n\nExit code 2, one line; `karyobench` alone "
             "prints the help and exits 2.\n\n| command | message |\n|---|---|\n"
             + "".join(usage))
    # the hand-written sections after the generated table are kept as they are
    marker = "\n## Inputs that must work"
    footer = existing[existing.index(marker):] if marker in existing else ""
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(header + body + footer)


if __name__ == "__main__":
    write_docs()
