"""Decoding every common crop format to one grey float image, polarity and canvas."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from karyobench.data.canvas import (detect_polarity, native_scale, place_on_canvas,
                                    to_bright_on_dark, trim_background)
from karyobench.data.imageio import read_grey
from karyobench.errors import DataError


def chromosome(height=40, width=16, value=200, background=0, dtype=np.uint8):
    """A bright bar (the 'chromosome') with a darker band, on a uniform background."""
    image = np.full((height, width), background, dtype=dtype)
    image[4:height - 4, 4:width - 4] = value
    image[height // 2, 4:width - 4] = value // 2
    return image


def save(array_or_image, path):
    image = array_or_image if isinstance(array_or_image, Image.Image) else \
        Image.fromarray(array_or_image)
    image.save(path)
    return path


def test_8bit_grey_scaled_by_bit_depth(tmp_path):
    pixels = read_grey(save(chromosome(value=200), tmp_path / "a.bmp"))
    assert pixels.dtype == np.float32 and pixels.shape == (40, 16)
    assert pixels.max() == pytest.approx(200 / 255)
    assert pixels.min() == 0.0


def test_16bit_grey(tmp_path):
    array = chromosome(value=40000, dtype=np.uint16)
    image = Image.fromarray(array, mode="I;16") if Image.fromarray(array).mode != "I;16" \
        else Image.fromarray(array)
    assert image.mode == "I;16"
    pixels = read_grey(save(image, tmp_path / "a.png"))
    assert pixels.max() == pytest.approx(40000 / 65535, rel=1e-5)
    assert pixels.min() == 0.0


def test_16bit_tiff(tmp_path):
    array = chromosome(value=1000, dtype=np.uint16)
    pixels = read_grey(save(Image.fromarray(array), tmp_path / "a.tif"))
    assert pixels.max() == pytest.approx(1000 / 65535, rel=1e-4)


def test_rgb_becomes_grey(tmp_path):
    grey = chromosome(value=150)
    rgb = np.stack([grey] * 3, axis=-1)
    pixels = read_grey(save(rgb, tmp_path / "a.bmp"))
    assert pixels.shape == grey.shape
    np.testing.assert_allclose(pixels, grey / 255.0, atol=1 / 255)


def test_rgba_transparent_background_becomes_white(tmp_path):
    """Exported dark-on-transparent crops: transparency is white, so polarity flips."""
    rgba = np.zeros((40, 16, 4), dtype=np.uint8)
    rgba[4:36, 4:12] = (30, 30, 30, 255)  # opaque dark chromosome, transparent elsewhere
    pixels = read_grey(save(rgba, tmp_path / "a.png"))
    assert pixels[0, 0] == pytest.approx(1.0)
    assert pixels[20, 8] == pytest.approx(30 / 255, abs=1 / 255)
    assert detect_polarity(pixels) == "dark_on_light"
    bright = to_bright_on_dark(pixels)
    assert bright[0, 0] == pytest.approx(0.0) and bright[20, 8] > 0.8


def test_palette_image(tmp_path):
    grey = chromosome(value=180)
    image = Image.fromarray(grey).convert("P")
    assert image.mode == "P"
    pixels = read_grey(save(image, tmp_path / "a.png"))
    np.testing.assert_allclose(pixels, grey / 255.0, atol=2 / 255)


def test_palette_with_transparency(tmp_path):
    image = Image.fromarray(chromosome(value=60, background=0)).convert("P")
    image.info["transparency"] = 0  # palette entry 0 (the background) is transparent
    path = tmp_path / "a.png"
    image.save(path, transparency=0)
    pixels = read_grey(path)
    assert pixels[0, 0] == pytest.approx(1.0)  # transparent background -> white


def test_inverted_dark_on_light_is_detected_and_flipped(tmp_path):
    pixels = read_grey(save(chromosome(value=40, background=250), tmp_path / "a.bmp"))
    assert detect_polarity(pixels) == "dark_on_light"
    bright = to_bright_on_dark(pixels)
    assert bright[0, 0] == pytest.approx(1 - 250 / 255)
    assert bright[10, 8] == pytest.approx(1 - 40 / 255)
    assert detect_polarity(bright) == "bright_on_dark"


def test_explicit_polarity_overrides_detection():
    image = np.zeros((10, 10), np.float32)
    image[3:7, 3:7] = 0.8
    np.testing.assert_allclose(to_bright_on_dark(image, "bright_on_dark"), image)
    np.testing.assert_allclose(to_bright_on_dark(image, "dark_on_light"), 1 - image)


def test_trim_background_crops_padding_frame():
    frame = np.zeros((200, 100), np.float32)
    frame[50:90, 30:46] = 0.7
    trimmed = trim_background(frame, margin=1)
    assert trimmed.shape == (42, 18)
    assert trim_background(np.zeros((5, 5), np.float32)).shape == (5, 5)  # blank: unchanged


def test_native_canvas_keeps_relative_length():
    long = np.ones((60, 10), np.float32)
    short = np.ones((20, 10), np.float32)
    scale = native_scale(np.array([long.shape, short.shape]), 32)
    placed = [place_on_canvas(c, 32, scale) for c in (long, short)]
    lengths = [int((p > 0.5).any(axis=1).sum()) for p in placed]
    assert lengths[0] <= 32
    assert lengths[0] / lengths[1] == pytest.approx(3.0, rel=0.15)


def test_fit_canvas_fills_the_canvas():
    for crop in (np.ones((60, 10), np.float32), np.ones((20, 10), np.float32)):
        placed = place_on_canvas(crop, 32, None)
        assert placed.shape == (32, 32) and placed.dtype == np.float32
        assert int((placed > 0.5).any(axis=1).sum()) == 32  # long side fills the canvas


def test_place_on_canvas_centres():
    placed = place_on_canvas(np.ones((4, 4), np.float32), 8, 1.0)
    np.testing.assert_array_equal(np.argwhere(placed > 0).min(axis=0), [2, 2])


@pytest.mark.parametrize("name, content, reason", [
    ("zero.bmp", b"", "empty file (0 bytes)"),
    ("text.bmp", b"this is not an image\n", "not an image PIL can read"),
    ("text.png", b"<html></html>", "not an image PIL can read"),
    ("garbage.png", b"\x89PNG\r\n\x1a\n" + b"x" * 100, "corrupt or truncated image"),
])
def test_bad_files_raise_data_error_naming_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(reason)) as info:
        read_grey(path)
    assert str(path) in str(info.value)
    assert "on_bad_image: skip" in str(info.value)


@pytest.mark.parametrize("suffix", [".bmp", ".png", ".jpg"])
def test_truncated_image(tmp_path, suffix):
    good = save(chromosome(80, 40), tmp_path / f"good{suffix}")
    data = good.read_bytes()
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated image"):
        read_grey(bad)


@pytest.mark.parametrize("shape", [(1, 1), (2, 50), (50, 2)])
def test_tiny_image_is_refused(tmp_path, shape):
    path = save(np.zeros(shape, np.uint8), tmp_path / "tiny.png")
    with pytest.raises(DataError, match="too small to be a chromosome crop"):
        read_grey(path)


def png_claiming_size(path, width, height):
    """A small PNG whose header claims ``width`` x ``height`` (no pixel data for it)."""
    import struct
    import zlib

    data = bytearray((save(np.zeros((4, 4), np.uint8), path)).read_bytes())
    ihdr = 8 + 8  # signature, then IHDR's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("side", [8_000, 20_000])  # below and above Pillow's own bomb limit
def test_image_above_max_pixels_is_refused_from_its_header(tmp_path, side):
    path = png_claiming_size(tmp_path / "huge.png", side, side)
    with pytest.raises(DataError) as info:
        read_grey(path)
    message = str(info.value)
    assert message.startswith(f"{path}: image is {side}x{side} px")
    assert "above dataset.max_pixels = 50,000,000" in message
    with pytest.raises(DataError, match="above dataset.max_pixels = 1,000"):
        read_grey(save(chromosome(40, 30), tmp_path / "a.png"), max_pixels=1000)


@pytest.mark.parametrize("suffix, mode", [(".png", "L"), (".jpg", "L"), (".png", "RGB"),
                                          (".tif", "I;16"), (".png", "P")])
def test_large_image_is_reduced_while_decoding(tmp_path, suffix, mode):
    """A 6000x4500 crop (27 MP, allowed) decodes to at most 2048 px a side: the float
    arrays of a full-size decode (216 MB here) are never made."""
    import tracemalloc

    from karyobench.data.imageio import read_crop

    array = np.zeros((4500, 6000), np.uint8)
    array[1000:3500, 2000:4000] = 200
    image = Image.fromarray(array)
    if mode == "I;16":
        image = Image.fromarray(array.astype(np.uint16) * 257)
    elif mode != "L":
        image = image.convert(mode)
    path = save(image, tmp_path / f"big{suffix}")
    del array, image
    tracemalloc.start()
    try:
        pixels, factor = read_crop(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert max(pixels.shape) <= 2048 and factor == pytest.approx(6000 / pixels.shape[1])
    assert peak < 80e6, f"decoding took {peak / 1e6:.0f} MB of numpy memory"
    assert pixels.max() == pytest.approx(200 / 255, abs=0.02)  # scaled by bit depth
    assert pixels.shape[0] / pixels.shape[1] == pytest.approx(0.75, abs=0.01)
