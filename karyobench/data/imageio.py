"""Decode any common chromosome crop into one grey float image, or say clearly why not."""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from karyobench.errors import DataError

IMAGE_SUFFIXES = {".bmp", ".png", ".tif", ".tiff", ".jpg", ".jpeg"}
MIN_SIDE = 3
#: the default of ``dataset.max_pixels``: far above any chromosome crop, far below what a
#: float decode of one image can take from a machine (a 144 MP PNG took 8 GB)
DEFAULT_MAX_PIXELS = 50_000_000
#: crops with a longer side are reduced while decoding (the canvas is at most 512 px)
DECODE_SIDE = 2048
_FIX = "fix or remove the file, or set dataset.on_bad_image: skip"


class BadImage(DataError):
    """A file that cannot be used as a crop; ``reason`` says why without the remedy, which
    differs when bad images are already being skipped."""

    def __init__(self, path: Path, reason: str, fix: str = _FIX):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}; {fix}.")


def read_grey(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Pixels of ``path`` as float32 in [0, 1] (see :func:`read_crop`), reduced on decode
    to at most :data:`DECODE_SIDE` px a side."""
    return read_crop(path, max_pixels)[0]


def read_crop(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS,
              max_side: int = DECODE_SIDE) -> tuple[np.ndarray, float]:
    """Pixels of ``path`` as float32 in [0, 1]: 8/16/32-bit, RGB(A) and palette -> grey;
    plus the factor by which the crop was reduced while decoding (1.0: full size).

    Values are scaled by the bit depth (not per image) so intensities stay comparable
    across a dataset. Transparent pixels become white (background of exported crops).
    Images above ``max_pixels`` are refused from their header, before any decoding;
    larger-than-needed ones are decoded reduced (JPEG ``draft``, then ``reduce``), so the
    memory a crop takes is bounded whatever the file holds.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise BadImage(path, f"broken symbolic link (to '{os.readlink(path)}')")
    if path.stat().st_size == 0:
        raise BadImage(path, "empty file (0 bytes)")
    try:
        with _size_checked_here():
            img = Image.open(path)
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise BadImage(path, f"image is {width}x{height} px ({width * height / 1e6:.0f} "
                               f"MP), above dataset.max_pixels = {max_pixels:,}",
                               "downscale it, raise dataset.max_pixels or set "
                               "dataset.on_bad_image: skip")
            img = _reduced(img, max_side)
            factor = max(width, height) / max(img.size)
            pixels = _to_grey(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = "not an image PIL can read" if isinstance(err, UnidentifiedImageError) \
            else f"corrupt or truncated image ({err})"
        raise BadImage(path, reason) from None
    if min(pixels.shape) < MIN_SIDE:
        raise BadImage(path, f"image is {pixels.shape[1]}x{pixels.shape[0]} px, too small "
                       f"to be a chromosome crop (minimum {MIN_SIDE} px a side)")
    return pixels, factor


@contextmanager
def _size_checked_here():
    """Pillow's own decompression-bomb check raises (above 179 MP) without naming the file
    and only warns below; ``dataset.max_pixels`` replaces it for the files read here."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _reduced(img: Image.Image, max_side: int) -> Image.Image:
    """``img`` loaded with its long side at most ``max_side`` px (integer reduction)."""
    if max(img.size) <= max_side:
        img.load()
        return img
    target = tuple(math.ceil(side * max_side / max(img.size)) for side in img.size)
    img.draft(img.mode, target)  # JPEG: decode at 1/2, 1/4 or 1/8 scale; others: no-op
    img.load()
    factor = math.ceil(max(img.size) / max_side)
    if factor == 1:
        return img
    if img.mode.startswith("I;16"):  # reduce cannot average 16-bit; "I" keeps the depth
        img = img.convert("I")
    elif img.mode not in {"L", "LA", "RGB", "RGBA", "I", "F"}:  # palette, 1-bit, ...
        transparent = img.mode.endswith("A") or "transparency" in img.info
        img = img.convert("RGBA" if transparent else "L")
    return img.reduce(factor)


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
