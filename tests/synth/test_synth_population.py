"""Cohort generation: class counts, groups, determinism, the written dataset and the karyogram."""

import hashlib
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pydantic import ValidationError

from karyobench.errors import ConfigError, ISCNError
from karyobench.synth import SynthConfig, draw_karyogram, generate, write_dataset
from karyobench.synth.bands import CHROMOSOMES
from karyobench.synth.population import MANIFEST_COLUMNS, SEED_ABNORMALITIES, plan_patients, safe_name

SMALL = dict(
    normal_patients=2,
    cells_per_patient=2,
    abnormalities={"del(5)(p14)": {"patients": 2, "images": 3}, "i(X)(q10)": {"patients": 1, "images": 2}},
)


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _digest(images) -> str:
    return hashlib.sha256(b"".join(_png_bytes(im) for im in images)).hexdigest()


@pytest.fixture(scope="module")
def small():
    return generate(SynthConfig(**SMALL))


def test_small_config_counts_and_groups(small):
    images, rows = small
    assert len(images) == len(rows)
    assert list(rows.columns) == list(MANIFEST_COLUMNS[1:])
    counts = rows.label.value_counts()
    # normal cells: 2 patients x 2 cells x 2 homologues; N001 is 46,XX, N002 46,XY
    for autosome in map(str, range(1, 23)):
        expected = 2 * 2 * 2 + (3 if autosome == "5" else 0)
        assert counts[autosome] == expected, autosome
    assert counts["del(5)(p14)"] == 3 and counts["i(X)(q10)"] == 2
    assert counts["X"] == 2 * 2 + 2 * 1 + 2 and counts["Y"] == 2
    sexes = rows[rows.label.isin(["X", "Y"]) & (rows.abnormality == "none")].groupby("patient_id").label.apply("".join)
    assert sexes.to_dict() == {"N001": "XXXX", "N002": "XYXY"}
    assert rows.groupby("abnormality").patient_id.nunique().to_dict() == {"del(5)(p14)": 2, "i(X)(q10)": 1, "none": 2}
    assert rows.cell_id.nunique() == 2 * 2 + 3 + 2
    assert (rows.groupby("cell_id").patient_id.nunique() == 1).all()
    abnormal_cells = rows[rows.abnormality != "none"].groupby("cell_id").label.apply(sorted)
    assert all(labels in (["5", "del(5)(p14)"], ["X", "i(X)(q10)"]) for labels in abnormal_cells)
    assert all(im.dtype == np.uint8 and im.ndim == 2 for im in images)


def test_default_config_has_the_reference_class_sizes():
    config = SynthConfig()
    patients = plan_patients(config)
    abnormal_images = {}
    for patient in patients:
        if patient.abnormality:
            abnormal_images[patient.abnormality] = abnormal_images.get(patient.abnormality, 0) + patient.n_cells
    assert abnormal_images == {k: v.images for k, v in SEED_ABNORMALITIES.items()}
    carriers = pd.Series([p.abnormality for p in patients if p.abnormality]).value_counts().to_dict()
    assert carriers == {k: v.patients for k, v in SEED_ABNORMALITIES.items()}
    assert carriers["inv(9)(p12q13)"] == 8 and abnormal_images["inv(9)(p12q13)"] == 173
    normal_cells = sum(p.n_cells for p in patients if not p.abnormality)
    assert 2 * normal_cells == 70, "about 70 images per autosome"


def test_same_seed_same_bytes_other_seed_other_images(small):
    images, rows = small
    again_images, again_rows = generate(SynthConfig(**SMALL))
    assert _digest(images) == _digest(again_images)
    pd.testing.assert_frame_equal(rows, again_rows)
    other_images, _ = generate(SynthConfig(**SMALL, seed=1))
    assert _digest(images) != _digest(other_images)


def test_an_image_depends_only_on_its_own_position(small):
    images, rows = small
    bigger = SynthConfig(**{**SMALL, "normal_patients": 3, "abnormalities": {"i(X)(q10)": {"patients": 1, "images": 2}}})
    more_images, more_rows = generate(bigger)
    key = ["patient_id", "cell_id", "label", "copy"]
    mine = {tuple(r): im for r, im in zip(rows[key].itertuples(index=False), images)}
    theirs = {tuple(r): im for r, im in zip(more_rows[key].itertuples(index=False), more_images)}
    shared = [k for k in mine if k in theirs and k[0].startswith("N")]
    assert len(shared) == 2 * 2 * 46
    assert all(np.array_equal(mine[k], theirs[k]) for k in shared)


def test_homologues_and_cells_differ_but_share_the_patient_style(small):
    images, rows = small
    normal = rows[(rows.patient_id == "N001") & (rows.label == "1")]
    a, b, c = (images[i] for i in normal.index[:3])
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_write_dataset_layout_and_manifest(tmp_path):
    manifest_path = write_dataset(tmp_path / "synth", SynthConfig(**SMALL))
    assert manifest_path == tmp_path / "synth" / "manifest.csv"
    manifest = pd.read_csv(manifest_path, dtype=str)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert manifest.path.is_unique and len(manifest) == len(generate(SynthConfig(**SMALL))[1])
    for row in manifest.itertuples():
        file = manifest_path.parent / row.path
        assert file.is_file()
        assert row.path.split("/")[0] == safe_name(row.label)
        assert Image.open(file).mode == "L"
    assert set(manifest.label) == set(CHROMOSOMES) | {"del(5)(p14)", "i(X)(q10)"}
    assert (tmp_path / "synth" / "del_5_p14").is_dir() and (tmp_path / "synth" / "i_X_q10").is_dir()
    assert manifest.patient_id.notna().all() and manifest.cell_id.notna().all()
    assert not list((tmp_path / "synth").glob(".manifest-*")), "no temporary manifest left behind"


def test_written_pngs_are_byte_identical_across_runs(tmp_path):
    config = SynthConfig(normal_patients=1, cells_per_patient=1, abnormalities={})
    first = write_dataset(tmp_path / "a", config).parent
    second = write_dataset(tmp_path / "b", config).parent
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert len(files) == 46
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_keep_whole_abnormal_cells():
    config = SynthConfig(normal_patients=0, abnormalities={"inv(9)(p12q13)": {"patients": 1, "images": 2}}, keep_whole_abnormal_cells=True)
    _, rows = generate(config)
    assert len(rows) == 2 * 46
    assert rows.label.value_counts()["inv(9)(p12q13)"] == 2 and rows.label.value_counts()["9"] == 2


def test_qband_look_is_bright_on_dark():
    images, _ = generate(SynthConfig(normal_patients=1, cells_per_patient=1, abnormalities={}, look="qband"))
    assert np.median([im[0, 0] for im in images]) < 40
    assert np.median([im.max() for im in images]) > 100


def test_invalid_configs_are_rejected():
    with pytest.raises(ISCNError, match="del\\(5\\)\\(p99\\)"):
        SynthConfig(abnormalities={"del(5)(p99)": {"patients": 1, "images": 1}})
    with pytest.raises(ValidationError, match="at least patients"):
        SynthConfig(abnormalities={"del(5)(p14)": {"patients": 3, "images": 2}})
    with pytest.raises(ValidationError, match="extra"):
        SynthConfig(colour="blue")
    with pytest.raises(ValidationError):
        SynthConfig(look="cband")
    assert all(field.description for field in SynthConfig.model_fields.values())


def test_karyogram_png_is_written_and_non_trivial(tmp_path):
    out = draw_karyogram(SynthConfig(**SMALL), tmp_path / "k" / "karyogram.png")
    image = np.asarray(Image.open(out).convert("L"))
    assert image.shape[0] > 300 and image.shape[1] > 300
    assert image.std() > 10 and (image < 150).mean() > 0.01  # dark chromosomes drawn
    with pytest.raises(ConfigError, match="no patient"):
        draw_karyogram(SynthConfig(**SMALL), tmp_path / "x.png", patient="Z999")


def test_abnormal_pair_is_the_same_whether_or_not_the_whole_cell_is_kept():
    abnormalities = {"del(X)(q22)": {"patients": 1, "images": 2}}
    pair_images, pair_rows = generate(SynthConfig(normal_patients=0, abnormalities=abnormalities))
    whole_images, whole_rows = generate(SynthConfig(normal_patients=0, abnormalities=abnormalities, keep_whole_abnormal_cells=True))
    whole = {(r.cell_id, r.label, r.copy): im for r, im in zip(whole_rows.itertuples(), whole_images)}
    assert len(pair_images) == 4
    for row, image in zip(pair_rows.itertuples(), pair_images):
        assert np.array_equal(whole[(row.cell_id, row.label, row.copy)], image)


def test_pairs_gallery_shows_every_abnormality_beside_its_homologue(tmp_path):
    from karyobench.synth.karyogram import draw_pairs

    config = SynthConfig(normal_patients=0, abnormalities={
        "del(5)(p14)": {"patients": 1, "images": 1}, "i(18)(q10)": {"patients": 1, "images": 1}})
    out = draw_pairs(config, tmp_path / "pairs.png")
    image = np.asarray(Image.open(out).convert("L"))
    dark_columns = (image < 150).any(axis=0)
    runs = np.flatnonzero(np.diff(dark_columns.astype(int)) == 1)
    assert len(runs) >= 4  # two chromosomes per pair, two pairs
    with pytest.raises(ConfigError, match="no abnormalities"):
        draw_pairs(SynthConfig(normal_patients=1, abnormalities={}), tmp_path / "none.png")
