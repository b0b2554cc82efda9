"""Image tables from class folders and manifests (real BioImLab files), and their errors."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from karyobench.data.sources import read_folders, read_manifest, read_source
from karyobench.errors import DataError


def test_real_manifest_reads_labels_groups_and_absolute_paths(bioimlab_manifest):
    table = read_manifest(bioimlab_manifest)
    assert len(table) == 5474
    assert list(table.columns) == ["path", "label", "karyotype_id"]
    assert set(table["label"]) == {str(i) for i in range(1, 23)} | {"X", "Y"}  # '01' -> '1'
    assert table["karyotype_id"].nunique() == 119
    assert table["path"].map(lambda p: Path(p).is_absolute() and Path(p).is_file()).all()


def link_folders(table, bioimlab_dir, root: Path, per_class=3, classes=("01", "02", "X")):
    """A ``<root>/<class>/<file>`` layout made of symlinks to real images."""
    for label in classes:
        (root / label).mkdir(parents=True)
        for rel in table[table["label"] == label]["path"].head(per_class):
            os.symlink(bioimlab_dir / rel, root / label / Path(rel).name)
    return root


def test_real_folders_layout(bioimlab_table, bioimlab_dir, tmp_path):
    root = link_folders(bioimlab_table, bioimlab_dir, tmp_path / "imgs")
    (root / ".hidden").mkdir()  # ignored
    (root / "01" / "notes.txt").write_text("ignored: not an image suffix")
    table = read_folders(root)
    assert sorted(table["label"].unique()) == ["1", "2", "X"]
    assert len(table) == 9
    assert "karyotype_id" not in table  # folders carry no groups
    assert table["path"].map(lambda p: Path(p).is_file()).all()


def test_folders_missing_root(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        read_folders(tmp_path / "nope")


def test_folders_without_class_subfolders(tmp_path):
    with pytest.raises(DataError, match="has no class sub-folders"):
        read_folders(tmp_path)


def test_class_folder_with_no_images(bioimlab_table, bioimlab_dir, tmp_path):
    root = link_folders(bioimlab_table, bioimlab_dir, tmp_path / "imgs", classes=("01",))
    (root / "02").mkdir()
    (root / "02" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"class folder '.*02' holds no images"):
        read_folders(root)


def test_unknown_source():
    with pytest.raises(DataError, match="dataset.source 'zip' is unknown"):
        read_source("zip", path=None)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def two_images(tmp_path):
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((8, 8), 99, np.uint8)).save(tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("text, pattern", [
    ("file,class\na.png,1\n", "lacks column(s) path, label; found file, class"),
    ("path\na.png\n", "lacks column(s) label"),
    ("path,label\n", "has no rows"),
    ("", "not a readable CSV"),
    ("path,label\na.png,1\na.png,2\n", "lists 1 path(s) more than once, e.g. 'a.png'"),
    ("path,label\na.png,1\nb.png, \n", "row 3: empty label"),
    ("path,label\na.png,1\nmissing.png,2\n", "1 listed file(s) do not exist, e.g. '"),
    ('path,label\n"a.png,1\n', "not a readable CSV"),
    ("path,label\na.png,1,extra\nb.png,2\n", "a row has more fields than the header line"),
    ("path,label\na.png,1\nb.png,2,extra\n", "Expected 2 fields in line 3, saw 3"),
])
def test_manifest_errors(two_images, text, pattern):
    manifest = write_csv(two_images / "m.csv", text)
    with pytest.raises(DataError, match=re.escape(pattern)) as info:
        read_manifest(manifest)
    assert str(manifest) in str(info.value)


def test_manifest_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "labels.csv")


def test_manifest_paths_relative_to_manifest_and_groups_kept(two_images):
    (two_images / "sub").mkdir()
    manifest = write_csv(two_images / "sub" / "m.csv",
                         "path,label,patient_id,extra\n../a.png,01,p1,x\n../b.png,Y,p2,y\n")
    table = read_manifest(manifest)
    assert list(table.columns) == ["path", "label", "patient_id"]
    assert table["label"].tolist() == ["1", "Y"]
    assert table["path"].tolist() == [str(two_images / "a.png"), str(two_images / "b.png")]


# -- property: any CSV text gives a table or a DataError ----------------------------------

_cells = st.one_of(st.sampled_from(["a.png", "b.png", "missing.png", "", "1", "01", "X",
                                    "path", "label", "karyotype_id", " ", "../a.png"]),
                   st.text(max_size=6))


@st.composite
def _csv_text(draw):
    if draw(st.booleans()):
        return draw(st.text(max_size=80))
    header = draw(st.lists(st.sampled_from(["path", "label", "karyotype_id", "patient_id",
                                            "x", ""]), min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(_cells, min_size=0, max_size=5), max_size=5))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_csv_text())
def test_manifest_reader_gives_table_or_data_error(two_images, text):
    manifest = two_images / "random.csv"
    manifest.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        table = read_manifest(manifest)
    except DataError as err:
        assert str(err).strip()
    else:
        assert isinstance(table, pd.DataFrame) and len(table) > 0
        assert table["path"].map(lambda p: Path(p).is_file()).all()
        assert (table["label"].str.strip() != "").all()
        assert not table["path"].duplicated().any()
