"""From a dataset configuration to canvas images, decoding each file at most once."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from karyobench.data.canvas import (canvas_scales, place_on_canvas, to_bright_on_dark,
                                    trim_background)
from karyobench.data.dataset import Dataset
from karyobench.data.imageio import DEFAULT_MAX_PIXELS, BadImage, read_crop
from karyobench.data.sources import GROUP_COLUMNS, read_source
from karyobench.errors import DataError

# 3: polarity detection compares the border with the mean; 4: dataset.max_pixels, crops
# over 2048 px reduced on decode, skip reasons without the remedy
CACHE_VERSION = 4


def default_cache_dir() -> Path:
    """The active run's cache folder, else ``KARYOBENCH_CACHE``, else the home cache."""
    from karyobench.context import current

    active = current().cache_dir
    if active is not None:
        return Path(active)
    return Path(os.environ.get("KARYOBENCH_CACHE", Path.home() / ".cache" / "karyobench"))


def writable_cache_dir(cache_dir: Path | None) -> Path | None:
    """``cache_dir`` (or the default cache folder) if files can be written in it.

    An explicit folder that cannot be written is an error naming it; for the default one
    (a home without a writable cache folder is common in containers) None is returned and
    the caller caches elsewhere for the run and says so.
    """
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    if folder.exists() and not folder.is_dir():
        if cache_dir is None:
            return None
        raise DataError(f"cache folder '{folder}' is a file; pass a folder as --cache-dir.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test"):
            pass
    except OSError as err:
        if cache_dir is None:
            return None
        raise DataError(f"cache folder '{folder}' is not writable ({err.strerror}); pass a "
                        "writable folder as --cache-dir.") from None
    return folder


def load_dataset(source: str, *, path: Path | None = None, synthetic=None,
                 polarity: str = "auto", canvas_mode: str = "native", canvas_size: int = 64,
                 canvas_exponent: float = 0.5, limit_groups: int | None = None,
                 group_column: str | None = "auto", missing_groups: str = "error",
                 on_bad_image: str = "error", max_pixels: int = DEFAULT_MAX_PIXELS,
                 seed: int = 0, cache_dir: Path | None = None) -> Dataset:
    """Read the source, decode, normalise polarity, place on the canvas; cached on disk.

    ``group_column`` is the study's: "auto" (the first of :data:`GROUP_COLUMNS` present),
    a column name, or None (no groups). Rows without an id in it are an error, or with
    ``missing_groups="own_group"`` each such image is its own group: pooling them into
    one group "" would let their karyotypes straddle train and test unseen.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    table = read_source(source, path=path, synthetic=synthetic, cache_dir=cache_dir)
    ignored = list(table.attrs.get("ignored", []))
    column = _resolve_group_column(table, group_column)
    if column is not None:
        table = _fill_missing_groups(table, column, missing_groups,
                                     f"{source} '{path}'" if path else source)
    if limit_groups:
        table = _limit_groups(table, limit_groups, column, seed)
    params = dict(polarity=polarity, canvas_mode=canvas_mode, canvas_size=int(canvas_size),
                  on_bad_image=on_bad_image, max_pixels=int(max_pixels),
                  version=CACHE_VERSION)
    if canvas_mode == "power":  # only this mode reads the exponent; other keys unchanged
        params["canvas_exponent"] = float(canvas_exponent)
    cache_file = cache_dir / "images" / f"{_cache_key(table, params)}.npz"
    if cache_file.is_file():
        images, crop_sizes, kept, skipped = _read_cache(cache_file)
    else:
        images, crop_sizes, kept, skipped = _decode(table, polarity, canvas_mode,
                                                    int(canvas_size), float(canvas_exponent),
                                                    on_bad_image, int(max_pixels))
        _write_cache(cache_file, images, crop_sizes, kept, skipped)
    table = table.iloc[kept].reset_index(drop=True)
    groups = {c: table[c].astype(str).to_numpy() for c in GROUP_COLUMNS if c in table}
    return Dataset(images=images, labels=table["label"].to_numpy(dtype=str),
                   paths=table["path"].to_numpy(dtype=str), groups=groups,
                   crop_sizes=crop_sizes, skipped=skipped, ignored=ignored,
                   description=_describe_source(source, path, synthetic))


def _describe_source(source: str, path, synthetic) -> str:
    if source == "synthetic":
        seed = (synthetic or {}).get("seed", 0) if isinstance(synthetic, dict) else \
            getattr(synthetic, "seed", 0)
        return f"karyobench synthetic G-band cohort (generator seed {seed})"
    return f"{source} {os.path.relpath(path) if os.path.isabs(str(path)) else path}"


def _resolve_group_column(table: pd.DataFrame, wanted: str | None) -> str | None:
    if wanted is None:
        return None
    if wanted == "auto":
        return next((c for c in GROUP_COLUMNS if c in table), None)
    if wanted not in table:
        found = [c for c in GROUP_COLUMNS if c in table]
        raise DataError(f"dataset.group_column '{wanted}' is not in the data; columns "
                        f"found: {', '.join(found) or 'none'}.")
    return wanted


def _fill_missing_groups(table: pd.DataFrame, column: str, missing_groups: str,
                         where: str) -> pd.DataFrame:
    """Empty ids: an error naming the rows, or (own_group) a distinct id per row."""
    ids = table[column].fillna("").astype(str).str.strip()
    empty = np.flatnonzero(ids == "")
    if not len(empty):
        return table
    rows = [int(table.index[i]) + 2 for i in empty]  # CSV line: header is line 1
    if missing_groups != "own_group":
        shown = ", ".join(map(str, rows[:5])) + \
            (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        raise DataError(
            f"{where}: {len(rows)} row(s) have no {column} (CSV line(s) {shown}); fill them "
            f"in, or set dataset.missing_groups: own_group to make each such image its "
            "own group.")
    table = table.copy()
    ids.iloc[empty] = [f"own-group-line{row}" for row in rows]
    table[column] = ids
    return table


def _limit_groups(table: pd.DataFrame, n_groups: int, group_column: str | None,
                  seed: int) -> pd.DataFrame:
    column = group_column or next((c for c in GROUP_COLUMNS if c in table), None)
    if column is None:  # (a study with group_column: null still samples by a column)
        raise DataError("dataset.limit_groups needs a group column (patient_id, "
                        "karyotype_id or cell_id) in the data; none was found.")
    names = np.array(sorted(table[column].unique()))
    chosen = np.random.default_rng(seed).permutation(names)[:n_groups]
    return table[table[column].isin(chosen)].reset_index(drop=True)


def _cache_key(table: pd.DataFrame, params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for path, label in zip(table["path"], table["label"]):
        stat = os.stat(path) if os.path.exists(path) else os.lstat(path)  # a broken link
        digest.update(f"{path}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _decode(table, polarity, canvas_mode, canvas_size, canvas_exponent, on_bad_image,
            max_pixels):
    crops, factors, kept, skipped = [], [], [], []
    for row, path in enumerate(table["path"]):
        try:
            pixels, factor = read_crop(Path(path), max_pixels)
            crops.append(trim_background(to_bright_on_dark(pixels, polarity)))
            factors.append(factor)
            kept.append(row)
        except BadImage as err:
            if on_bad_image != "skip":
                raise
            skipped.append((path, err.reason))
    if not crops:
        first = f", e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise DataError(f"no readable images in the dataset: all {len(table)} file(s) were "
                        f"unreadable{first}.")
    # sizes in the file's own pixels, also for a crop reduced while decoding
    crop_sizes = np.array([np.round(np.array(c.shape) * f) for c, f in zip(crops, factors)],
                          dtype=np.int32)
    scales = canvas_scales(canvas_mode, crop_sizes, canvas_size, canvas_exponent)
    images = np.stack([place_on_canvas(c, canvas_size, None if s is None else s * f)
                       for c, s, f in zip(crops, scales, factors)])
    # Quantise as the cache stores it, so a fresh decode and a cache hit are identical.
    images = images.astype(np.float16).astype(np.float32)
    return images, crop_sizes, np.array(kept), skipped


def _write_cache(cache_file: Path, images, crop_sizes, kept, skipped) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, images=images.astype(np.float16), crop_sizes=crop_sizes, kept=kept,
             skipped=np.array(skipped, dtype=str).reshape(-1, 2))
    os.replace(tmp, cache_file)


def _read_cache(cache_file: Path):
    with np.load(cache_file) as data:
        skipped = [tuple(r) for r in data["skipped"].tolist()]
        return (data["images"].astype(np.float32), data["crop_sizes"], data["kept"], skipped)
