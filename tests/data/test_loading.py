"""``load_dataset``: real crops to canvases, formats, bad files, the on-disk cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from karyobench.data import load_dataset
from karyobench.errors import DataError


def load(path, tmp_path, source="manifest", **kwargs):
    kwargs.setdefault("canvas_size", 24)
    return load_dataset(source, path=path, cache_dir=tmp_path / "cache", **kwargs)


def test_real_manifest_subset(subset_manifest, tmp_path):
    manifest = subset_manifest(karyotypes=[1, 2], classes=["01", "21", "X", "Y"])
    data = load(manifest, tmp_path)
    assert data.images.shape == (len(data), 24, 24) and data.images.dtype == np.float32
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert set(data.labels) <= {"1", "21", "X", "Y"} and "1" in data.labels
    assert set(data.groups) == {"karyotype_id"}
    assert set(data.groups["karyotype_id"]) == {"1", "2"}
    assert data.crop_sizes.shape == (len(data), 2)
    # background (corners) dark, chromosome bright: BioImLab is already bright on dark
    assert np.all(data.images[:, 0, 0] < 0.05)
    assert np.all(data.images.reshape(len(data), -1).max(axis=1) > 0.2)


def test_native_canvas_keeps_chromosome_1_longer_than_21(subset_manifest, tmp_path):
    manifest = subset_manifest(karyotypes=range(1, 6), classes=["01", "21"])
    data = load(manifest, tmp_path, canvas_size=32, canvas_mode="native")
    extent = (data.images > 0.1).any(axis=2).sum(axis=1) + (data.images > 0.1).any(axis=1).sum(axis=1)
    one, small = extent[data.labels == "1"].mean(), extent[data.labels == "21"].mean()
    assert one > 1.5 * small
    fitted = load(manifest, tmp_path, canvas_size=32, canvas_mode="fit")
    longest = np.maximum((fitted.images > 0.05).any(axis=2).sum(axis=1),
                         (fitted.images > 0.05).any(axis=1).sum(axis=1))
    assert np.median(longest) >= 29  # every crop fills the canvas along its long side
    # crop sizes carry the length in both modes
    np.testing.assert_array_equal(data.crop_sizes, fitted.crop_sizes)


def test_power_canvas_enlarges_small_chromosomes_but_keeps_length_order(subset_manifest,
                                                                       tmp_path):
    manifest = subset_manifest(karyotypes=range(1, 6), classes=["01", "21"])

    def long_side(data):
        mask = data.images > 0.1
        return np.maximum(mask.any(axis=2).sum(axis=1), mask.any(axis=1).sum(axis=1))

    native = load(manifest, tmp_path, canvas_size=48, canvas_mode="native")
    power = load(manifest, tmp_path, canvas_size=48, canvas_mode="power", canvas_exponent=0.5)
    is_one = native.labels == "1"
    # chromosome 21 gets more pixels than on the native canvas ...
    assert long_side(power)[~is_one].mean() > 1.3 * long_side(native)[~is_one].mean()
    # ... yet stays clearly shorter than chromosome 1, unlike on the fit canvas
    assert long_side(power)[is_one].mean() > 1.3 * long_side(power)[~is_one].mean()
    # the exponent is part of the cache key: another exponent is another canvas
    flatter = load(manifest, tmp_path, canvas_size=48, canvas_mode="power", canvas_exponent=0.2)
    assert long_side(flatter)[~is_one].mean() > long_side(power)[~is_one].mean()


def test_folders_layout_loads_without_groups(bioimlab_table, bioimlab_dir, tmp_path):
    root = tmp_path / "imgs"
    for label in ("01", "02"):
        (root / label).mkdir(parents=True)
        for rel in bioimlab_table[bioimlab_table.label == label].path.head(4):
            os.symlink(bioimlab_dir / rel, root / label / Path(rel).name)
    data = load(root, tmp_path, source="folders")
    assert sorted(data.labels.tolist()) == ["1"] * 4 + ["2"] * 4
    assert data.groups == {}


def test_limit_groups_is_seeded(subset_manifest, tmp_path):
    manifest = subset_manifest(karyotypes=range(1, 11), classes=["01", "02"])
    a = load(manifest, tmp_path, limit_groups=3, seed=5)
    b = load(manifest, tmp_path, limit_groups=3, seed=5)
    c = load(manifest, tmp_path, limit_groups=3, seed=6)
    assert len(set(a.groups["karyotype_id"])) == 3
    np.testing.assert_array_equal(a.paths, b.paths)
    assert set(a.groups["karyotype_id"]) != set(c.groups["karyotype_id"])


def test_limit_groups_without_groups_is_an_error(bioimlab_table, bioimlab_dir, tmp_path):
    root = tmp_path / "imgs" / "01"
    root.mkdir(parents=True)
    for rel in bioimlab_table.path.head(2):
        os.symlink(bioimlab_dir / rel, root / Path(rel).name)
    with pytest.raises(DataError, match="limit_groups needs a group column"):
        load(root.parent, tmp_path, source="folders", limit_groups=2)


def test_cache_reused_and_keyed_by_preprocessing(subset_manifest, tmp_path, monkeypatch):
    manifest = subset_manifest(karyotypes=[3], classes=["01", "02", "03"])
    first = load(manifest, tmp_path)
    cache_files = sorted((tmp_path / "cache" / "images").glob("*.npz"))
    assert len(cache_files) == 1

    # the second call must read the cache, not decode: make decoding impossible
    import karyobench.data.loading as loading

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded again despite a valid cache")

    monkeypatch.setattr(loading, "read_crop", no_decode)
    second = load(manifest, tmp_path)
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.paths, second.paths)
    assert first.fingerprint() == second.fingerprint()
    monkeypatch.undo()

    # a different preprocessing parameter is a different cache entry
    load(manifest, tmp_path, canvas_size=16)
    load(manifest, tmp_path, canvas_mode="fit")
    load(manifest, tmp_path, polarity="bright_on_dark")
    assert len(list((tmp_path / "cache" / "images").glob("*.npz"))) == 4


def test_cache_invalidated_when_an_image_changes(tmp_path):
    root = tmp_path / "imgs"
    for label in ("1", "2"):
        (root / label).mkdir(parents=True)
        for k in range(2):
            image = np.zeros((30, 12), np.uint8)
            image[3:27, 3:9] = 100 + 40 * k
            Image.fromarray(image).save(root / label / f"{k}.png")
    before = load(root, tmp_path, source="folders")
    image = np.zeros((30, 12), np.uint8)
    image[3:27, 3:9] = 250
    Image.fromarray(image).save(root / "1" / "0.png")
    os.utime(root / "1" / "0.png", ns=(1, 1))  # a different mtime even on coarse clocks
    after = load(root, tmp_path, source="folders")
    assert len(list((tmp_path / "cache" / "images").glob("*.npz"))) == 2
    assert not np.array_equal(before.images, after.images)


def make_formats(root: Path) -> dict[str, Path]:
    """One crop per format, each a bright-on-dark bar once decoded and normalised."""
    bar = np.zeros((40, 16), np.uint8)
    bar[4:36, 4:12] = 180
    files = {}
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    files["grey8"] = root / "a" / "grey8.bmp"
    Image.fromarray(bar).save(files["grey8"])
    files["grey16"] = root / "a" / "grey16.png"
    Image.fromarray(bar.astype(np.uint16) * 257).save(files["grey16"])
    files["rgb"] = root / "a" / "rgb.png"
    Image.fromarray(np.stack([bar] * 3, -1)).save(files["rgb"])
    rgba = np.zeros((40, 16, 4), np.uint8)
    rgba[4:36, 4:12] = (75, 75, 75, 255)  # dark crop on a transparent background
    files["rgba"] = root / "b" / "rgba.png"
    Image.fromarray(rgba).save(files["rgba"])
    files["palette"] = root / "b" / "palette.png"
    Image.fromarray(bar).convert("P").save(files["palette"])
    files["inverted"] = root / "b" / "inverted.bmp"
    Image.fromarray(255 - bar).save(files["inverted"])
    return files


def test_every_format_ends_bright_on_dark(tmp_path):
    files = make_formats(tmp_path / "imgs")
    data = load(tmp_path / "imgs", tmp_path, source="folders", canvas_size=24,
                canvas_mode="fit")
    assert len(data) == len(files)
    for image, path in zip(data.images, data.paths):
        assert image[0, 0] < 0.05, path  # background dark
        assert image[12, 12] > 0.6, path  # chromosome centre bright


def test_on_bad_image_error_and_skip(tmp_path):
    root = tmp_path / "imgs"
    make_formats(root)
    bad = {
        "zero.png": b"",
        "text.bmp": b"not an image",
    }
    for name, content in bad.items():
        (root / "a" / name).write_bytes(content)
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(root / "b" / "pixel.png")
    good = (root / "a" / "grey8.bmp").read_bytes()
    (root / "b" / "truncated.bmp").write_bytes(good[: len(good) // 2])

    with pytest.raises(DataError, match="on_bad_image: skip"):
        load(root, tmp_path, source="folders")
    data = load(root, tmp_path, source="folders", on_bad_image="skip")
    assert len(data) == 6
    skipped = {Path(p).name: reason for p, reason in data.skipped}
    assert set(skipped) == {"zero.png", "text.bmp", "pixel.png", "truncated.bmp"}
    assert "empty file" in skipped["zero.png"]
    assert "too small" in skipped["pixel.png"]
    # already skipping: the reason does not tell to set on_bad_image: skip
    assert not any("on_bad_image" in reason for reason in skipped.values())
    # the skip list survives the cache
    again = load(root, tmp_path, source="folders", on_bad_image="skip")
    assert again.skipped == data.skipped


def test_large_crop_reduced_on_decode_keeps_its_size_and_place(tmp_path):
    """A crop of 4000 px reduced while decoding: crop_sizes in the file's pixels, and the
    canvas the same as a crop 1/4 the size drawn at the same native scale."""
    root = tmp_path / "imgs"
    for label, length in (("a", 4000), ("b", 1000)):
        (root / label).mkdir(parents=True)
        bar = np.zeros((length, length // 4), np.uint8)
        bar[length // 10:-length // 10, length // 20:-length // 20] = 200
        Image.fromarray(bar).save(root / label / "bar.png")
        Image.fromarray(bar).save(root / label / "bar2.png")
    data = load(root, tmp_path, source="folders", canvas_size=32, canvas_mode="native")
    sizes = dict(zip(data.labels, data.crop_sizes.tolist()))
    assert sizes["b"][0] == 802  # bar 800 px plus the 1 px trim margin each side
    assert abs(sizes["a"][0] - 3202) <= 4  # the same, reduced by 2 and scaled back
    long_a = (data.images[data.labels == "a"][0] > 0.5).any(axis=1).sum()
    long_b = (data.images[data.labels == "b"][0] > 0.5).any(axis=1).sum()
    assert long_a == 32 and abs(long_b - 8) <= 1  # relative length kept on the canvas


def test_all_images_bad_is_an_error(tmp_path):
    (tmp_path / "imgs" / "1").mkdir(parents=True)
    (tmp_path / "imgs" / "1" / "a.png").write_bytes(b"")
    with pytest.raises(DataError, match="no readable images"):
        load(tmp_path / "imgs", tmp_path, source="folders", on_bad_image="skip")


def test_subset_and_fingerprint(subset_manifest, tmp_path):
    data = load(subset_manifest(karyotypes=[4], classes=["01", "02"]), tmp_path)
    part = data.subset(np.array([0, 2]))
    assert len(part) == 2 and part.groups["karyotype_id"].tolist() == ["4", "4"]
    assert part.fingerprint() != data.fingerprint()
    pd.testing.assert_series_equal(pd.Series(part.paths), pd.Series(data.paths[[0, 2]]))
