"""Polarity normalisation and placement of crops on a fixed square canvas."""

from __future__ import annotations

import numpy as np
from skimage.filters import threshold_otsu
from skimage.transform import resize

POLARITIES = ("auto", "bright_on_dark", "dark_on_light")


def detect_polarity(image: np.ndarray) -> str:
    """'dark_on_light' if the crop's border (background) is brighter than its mean pixel.

    Not the median pixel: when the background covers over half the crop (most crops) the
    median *is* the background, so a dark-on-light crop tied and was left unflipped, and
    a few bright-on-dark crops with a faint border were wrongly inverted.
    """
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return "dark_on_light" if np.median(border) > float(image.mean()) else "bright_on_dark"


def to_bright_on_dark(image: np.ndarray, polarity: str = "auto") -> np.ndarray:
    """Chromosome bright, background near 0, so zero-padding the canvas is background."""
    if polarity == "auto":
        polarity = detect_polarity(image)
    if polarity == "dark_on_light":
        return 1.0 - image
    return image


def trim_background(image: np.ndarray, margin: int = 1) -> np.ndarray:
    """Crop a bright-on-dark image to its chromosome's bounding box.

    Some datasets pad every crop into a fixed frame (BioImLab karyotypes 38+ use 100x200);
    without trimming, the frame rather than the chromosome would set its size on the canvas.
    """
    if float(image.max() - image.min()) < 1e-6:
        return image
    foreground = image > threshold_otsu(image)
    rows, cols = np.flatnonzero(foreground.any(axis=1)), np.flatnonzero(foreground.any(axis=0))
    top, bottom = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, image.shape[0])
    left, right = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, image.shape[1])
    return image[top:bottom, left:right]


def native_scale(crop_sizes: np.ndarray, canvas_size: int, percentile: float = 99.0) -> float:
    """One factor for the whole dataset: the 99th-percentile crop side fits the canvas.

    It depends only on crop sizes (no labels), like the seed's fixed 300x300 canvas, and
    keeps chromosome 1 about five times longer than chromosome 21. The rare larger crop is
    shrunk to fit rather than letting one outlier shrink every chromosome.
    """
    return canvas_size / float(np.percentile(np.max(crop_sizes, axis=1), percentile))


def power_scales(crop_sizes: np.ndarray, canvas_size: int, exponent: float,
                 percentile: float = 99.0) -> np.ndarray:
    """Per-crop scales that put a crop of long side L at ``canvas * (L / L99) ** exponent``.

    A middle way between ``native`` (exponent 1: length proportional, small chromosomes get
    few pixels) and ``fit`` (exponent 0: every crop fills the canvas, length is lost). With
    0 < exponent < 1 length order survives on the canvas while small chromosomes are
    enlarged, so the banding of chromosome 21 is not a handful of pixels.
    """
    base = native_scale(crop_sizes, canvas_size, percentile)  # canvas / L99
    relative_length = np.max(crop_sizes, axis=1) * base / canvas_size  # L / L99
    return base * relative_length ** (exponent - 1.0)


def _native_scales(crop_sizes, canvas_size, exponent):
    return [native_scale(crop_sizes, canvas_size)] * len(crop_sizes)


def _fit_scales(crop_sizes, canvas_size, exponent):
    return [None] * len(crop_sizes)  # place_on_canvas fits the longer side


CANVAS_SCALES = {"native": _native_scales, "fit": _fit_scales, "power": power_scales}


def canvas_scales(mode: str, crop_sizes: np.ndarray, canvas_size: int,
                  exponent: float = 0.5) -> list:
    """Per-crop resize factors of canvas ``mode`` (one of :data:`CANVAS_SCALES`)."""
    return list(CANVAS_SCALES[mode](crop_sizes, canvas_size, exponent))


def place_on_canvas(image: np.ndarray, canvas_size: int, scale: float | None) -> np.ndarray:
    """Resize by ``scale`` (``None``: fit the longer side) and centre on the canvas."""
    h, w = image.shape
    if scale is None or max(h, w) * scale > canvas_size:
        scale = canvas_size / max(h, w)
    new_h = min(canvas_size, max(1, int(round(h * scale))))
    new_w = min(canvas_size, max(1, int(round(w * scale))))
    if (new_h, new_w) != (h, w):
        image = resize(image, (new_h, new_w), order=1, anti_aliasing=scale < 1,
                       preserve_range=True)
    canvas = np.zeros((canvas_size, canvas_size), dtype=np.float32)
    top, left = (canvas_size - new_h) // 2, (canvas_size - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = image
    return canvas
