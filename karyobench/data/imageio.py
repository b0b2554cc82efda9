"""Decode any common chromosome crop into one grey float image, or say clearly why not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from karyobench.errors import DataError

IMAGE_SUFFIXES = {".bmp", ".png", ".tif", ".tiff", ".jpg", ".jpeg"}
MIN_SIDE = 3
_FIX = "fix or remove the file, or set dataset.on_bad_image: skip"


def read_grey(path: Path) -> np.ndarray:
    """Pixels of ``path`` as float32 in [0, 1]: 8/16/32-bit, RGB(A) and palette -> grey.

    Values are scaled by the bit depth (not per image) so intensities stay comparable
    across a dataset. Transparent pixels become white (background of exported crops).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes); {_FIX}.")
    try:
        with Image.open(path) as img:
            img.load()
            pixels = _to_grey(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = "not an image PIL can read" if isinstance(err, UnidentifiedImageError) \
            else f"corrupt or truncated image ({err})"
        raise DataError(f"{path}: {reason}; {_FIX}.") from None
    if min(pixels.shape) < MIN_SIDE:
        raise DataError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]} px, too small "
                        f"to be a chromosome crop (minimum {MIN_SIDE} px a side); {_FIX}.")
    return pixels


def _to_grey(img: Image.Image) -> np.ndarray:
    if img.mode in {"I;16", "I;16B", "I;16L", "I;16N"}:
        return np.asarray(img, dtype=np.float32) / 65535.0
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() <= 65535 else float(2**32 - 1)
        return (arr / top).astype(np.float32)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return arr / max(float(arr.max()), 1.0) if arr.max() > 1 else arr
    if img.mode in {"RGBA", "LA", "PA"} or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
