"""The in-memory dataset every later stage consumes."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np


def portable_paths(paths) -> np.ndarray:
    """Paths relative to their common folder (the dataset's root): what results record,
    so a results folder holds no machine's absolute paths."""
    paths = np.asarray(paths, dtype=object)
    absolute = [str(p) for p in paths if str(p).startswith("/")]
    if not absolute:
        return paths
    root = os.path.commonpath([os.path.dirname(p) for p in absolute])
    return np.array([os.path.relpath(str(p), root) if str(p).startswith("/") else p
                     for p in paths], dtype=object)


def canonical_label(label) -> str:
    """'01' and 1 both mean chromosome 1; everything else is kept verbatim."""
    text = str(label).strip()
    if text.isdigit():
        return str(int(text))
    return text


@dataclass
class Dataset:
    """Canvas images (n, h, w) float32 in [0, 1], chromosome bright on dark background
    ((n, h, w, 2) for a canvas with ``native_channel``: the rendering, then the native one).

    ``groups`` maps each known group column (``karyotype_id``, ``patient_id``, ``cell_id``)
    to a string array; ``crop_sizes`` holds each crop's original (height, width) in pixels,
    which carries the chromosome's length even in ``fit`` canvas mode.
    """

    images: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    crop_sizes: np.ndarray | None = None
    description: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unreadable (skip mode)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # passed over by the source
    # Other renderings of the same rows for estimators with their own canvas:
    # canvas label (e.g. "native96") -> (images, fingerprint).
    canvases: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)

    def images_for(self, canvas: str = "") -> np.ndarray:
        """The images of canvas ``canvas`` ("" = the dataset's own canvas)."""
        return self.canvases[canvas][0] if canvas else self.images

    def fingerprint_for(self, canvas: str = "") -> str:
        return self.canvases[canvas][1] if canvas else self.fingerprint()

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> Dataset:
        """Rows ``index`` (an integer array) as a new dataset."""
        index = np.asarray(index)
        return Dataset(
            images=self.images[index],
            labels=self.labels[index],
            paths=self.paths[index],
            groups={name: values[index] for name, values in self.groups.items()},
            crop_sizes=None if self.crop_sizes is None else self.crop_sizes[index],
            description=self.description,
            skipped=list(self.skipped),
            ignored=list(self.ignored),
        )

    def fingerprint(self) -> str:
        """Hash of pixels, labels and groups: keys cached fold results to these data."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update("\0".join(self.labels.tolist()).encode())
        for name in sorted(self.groups):
            digest.update(name.encode())
            digest.update("\0".join(map(str, self.groups[name].tolist())).encode())
        return digest.hexdigest()[:16]
