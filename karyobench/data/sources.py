"""Where images come from: each source turns its configuration into an image table.

An image table is a DataFrame with absolute ``path``, canonical ``label`` and any group
columns. Sources are looked up by name (``dataset.source`` in the study), so a new source
is one function here, not a branch elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from karyobench import __version__
from karyobench.data.dataset import canonical_label
from karyobench.data.imageio import IMAGE_SUFFIXES
from karyobench.errors import DataError

GROUP_COLUMNS = ("patient_id", "slide_id", "karyotype_id", "cell_id")
SourceReader = Callable[..., pd.DataFrame]
SOURCES: dict[str, SourceReader] = {}


def source(name: str):
    def decorate(reader: SourceReader) -> SourceReader:
        SOURCES[name] = reader
        return reader
    return decorate


@source("folders")
def read_folders(path: Path, **_) -> pd.DataFrame:
    """``path/<class>/<image files>``: the folder name is the label; no groups.

    Nothing in a class folder is passed over without a word: files that are not images
    and images in its sub-folders are listed in ``table.attrs["ignored"]`` as (path,
    reason); a broken link with an image suffix is kept, so decoding names it.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"dataset.path '{root}' is not a folder; point it at a folder with "
                        "one sub-folder of images per class.")
    rows, ignored = [], []
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(f"dataset.path '{root}' has no class sub-folders; expected "
                        "'<path>/<class>/<image>' (e.g. '01/k001_01a.bmp').")
    for class_dir in class_dirs:
        files = []
        for entry in sorted(class_dir.iterdir()):
            if entry.name.startswith("."):  # .DS_Store and the like: never data
                continue
            if entry.is_dir():
                ignored += [(_absolute(f), f"image in sub-folder '{entry.name}' of class "
                             f"folder '{class_dir.name}'; only <class>/<image> is read")
                            for f in sorted(entry.rglob("*"))
                            if f.suffix.lower() in IMAGE_SUFFIXES]
            elif entry.suffix.lower() in IMAGE_SUFFIXES:
                files.append(entry)
            elif entry.is_symlink() and not entry.exists():
                ignored.append((_absolute(entry), "broken symbolic link"))
            else:
                ignored.append((_absolute(entry), f"not an image file (suffix "
                                f"'{entry.suffix}'); images end in "
                                f"{', '.join(sorted(IMAGE_SUFFIXES))}"))
        if not files:
            raise DataError(f"class folder '{class_dir}' holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))}); add images or remove it.")
        rows += [{"path": _absolute(f), "label": canonical_label(class_dir.name)}
                 for f in files]
    table = pd.DataFrame(rows)
    table.attrs["ignored"] = ignored
    return table


def _absolute(path: Path) -> str:
    """The resolved path; a broken link stays itself (resolving would name its target)."""
    if path.is_symlink() and not path.exists():
        return str(path.parent.resolve() / path.name)
    return str(path.resolve())


@source("manifest")
def read_manifest(path: Path, **_) -> pd.DataFrame:
    """CSV with ``path,label`` (paths relative to the CSV) plus optional group columns."""
    manifest = Path(path)
    if not manifest.is_file():
        raise DataError(f"manifest '{manifest}' does not exist; set dataset.path to a CSV "
                        "with columns path,label[,patient_id,karyotype_id,cell_id].")
    try:
        with warnings.catch_warnings():
            # index_col=False: a row with more fields than the header must not silently
            # turn the first column into the index (pandas' default), shifting every field.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(manifest, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.ParserWarning:
        raise DataError(f"manifest '{manifest}' is not a readable CSV (a row has more "
                        "fields than the header line).") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        reason = str(err).strip().replace("\n", " ")
        raise DataError(f"manifest '{manifest}' is not a readable CSV ({reason}).") from None
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise DataError(f"manifest '{manifest}' lacks column(s) {', '.join(missing)}; found "
                        f"{', '.join(table.columns) or 'none'}. Required: path,label.")
    if table.empty:
        raise DataError(f"manifest '{manifest}' has no rows.")
    duplicated = table["path"][table["path"].duplicated()].unique()
    if len(duplicated):
        raise DataError(f"manifest '{manifest}' lists {len(duplicated)} path(s) more than "
                        f"once, e.g. '{duplicated[0]}'; each image must appear once.")
    empty_labels = table.index[table["label"].str.strip() == ""]
    if len(empty_labels):
        raise DataError(f"manifest '{manifest}' row {empty_labels[0] + 2}: empty label.")
    base = manifest.resolve().parent
    table["path"] = [str((base / p).resolve()) for p in table["path"]]
    absent = [p for p in table["path"] if not Path(p).is_file()]
    if absent:
        raise DataError(f"manifest '{manifest}': {len(absent)} listed file(s) do not exist, "
                        f"e.g. '{absent[0]}'; paths are relative to the manifest's folder.")
    table["label"] = table["label"].map(canonical_label)
    keep = ["path", "label"] + [c for c in GROUP_COLUMNS if c in table.columns]
    return table[keep]


@source("synthetic")
def read_synthetic(synthetic=None, cache_dir: Path | None = None, **_) -> pd.DataFrame:
    """Generate (once, cached by configuration) the embedded synthetic G-band set."""
    from karyobench.synth import SynthConfig, write_dataset

    config = synthetic if isinstance(synthetic, SynthConfig) else SynthConfig(**(synthetic or {}))
    spec = {"config": config.model_dump(mode="json"), "karyobench": __version__}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    out_dir = Path(cache_dir) / "synthetic" / key
    manifest = out_dir / "manifest.csv"
    if not manifest.is_file():
        manifest = write_dataset(out_dir, config)
    return read_manifest(manifest)


def read_source(name: str, **options) -> pd.DataFrame:
    if name not in SOURCES:
        raise DataError(f"dataset.source '{name}' is unknown; use one of "
                        f"{', '.join(sorted(SOURCES))}.")
    return SOURCES[name](**options)
