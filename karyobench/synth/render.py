"""Draw one banded chromosome as a tight grey crop, the way a segmented metaphase looks.

The chromosome is modelled in its own straightened frame (``s`` along the axis from pter, ``t``
across it): a 1-D band profile from the stain classes, blurred to the cell's banding resolution,
and two sister chromatids whose width narrows at the centromere and rounds off at the
telomeres. Every output pixel is mapped back into that frame through the rotation and an arc
of constant curvature, so the whole image is a handful of vectorised numpy operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from karyobench.synth.iscn import DerivedChromosome

LOOKS = ("gband", "qband")
"""``gband``: dark bands on a light chromosome on a white background (bright-field Giemsa).
``qband``: bright chromosome on black, Q-bright where G is dark (quinacrine fluorescence)."""

STAIN_LEVEL: dict[str, float] = {
    "gneg": 0.0,
    "gpos25": 0.3,
    "gpos50": 0.55,
    "gpos75": 0.78,
    "gpos100": 1.0,
    "gvar": 0.65,
    "stalk": 0.1,
    "acen": 0.5,
}
"""How strongly each stain class takes up Giemsa (0 pale .. 1 darkest G-band)."""

STAIN_WIDTH: dict[str, float] = {"stalk": 0.55}
"""Relative chromatid width of stain classes that are visibly thinner (acrocentric stalks)."""

_DARK_SWELL = 0.08
"""Dark G-bands are more condensed chromatin and bulge slightly; relative width change."""

_STEP_PX = 0.25
"""Sampling step of the axial profiles, in pixels."""


@dataclass(frozen=True)
class RenderParams:
    """Everything that decides how one chromosome looks; the population draws these per image."""

    px_per_mb: float = 0.46
    """Condensation: image length per megabase (chromosome 1 is then about 115 px)."""
    chromatid_width_px: float = 6.0
    """Diameter of one sister chromatid; the chromosome is about twice as wide."""
    chromatid_gap_px: float = 0.5
    """Gap between the sister chromatids away from the centromere."""
    constriction: float = 0.35
    """Relative narrowing of the chromatids at the centromere (0 = none)."""
    resolution_mb: float = 1.5
    """Gaussian blur of the band profile in Mb: low band levels merge sub-bands."""
    level_jitter: tuple[float, ...] = ()
    """Additive change of the stain level, one per segment (homologue and staining differences)."""
    background: float = 242.0
    """Grey level outside the chromosome."""
    pale_tone: float = 190.0
    """Grey level of unstained (gneg) chromatin."""
    stained_tone: float = 45.0
    """Grey level of the most stained (gpos100) chromatin."""
    curvature: float = 0.0
    """Bending of the axis in 1/px (0 = straight); the sign picks the side."""
    rotation_deg: float = 0.0
    """Rotation of the axis from upright (pter at the top), degrees."""
    optical_blur_px: float = 0.8
    noise: float = 4.0
    """Shot-noise standard deviation in grey levels at mid grey (scales with sqrt of signal)."""
    margin_px: int = 2


def render(chromosome: DerivedChromosome, params: RenderParams, rng: np.random.Generator | None = None) -> np.ndarray:
    """Render ``chromosome`` as a 2-D uint8 crop; ``rng`` is needed only when ``params.noise > 0``.

    Straight and unrotated, row ``i`` of the crop lies exactly ``i + row0`` px below pter for
    an integer ``row0`` that depends on ``params`` only, so crops of one scale line up.
    """
    s_axis, level = _stain_level(chromosome, params)
    radius, offset = _chromatid_shape(chromosome, params, s_axis, level)
    s, t = _pixel_frame(s_axis[-1], params)
    r = np.interp(s, s_axis, radius, left=0.0, right=0.0)
    c = np.interp(s, s_axis, offset)
    coverage = np.zeros_like(s)
    for side in (-1.0, 1.0):
        inside = np.clip(1.0 - (np.abs(t - side * c) / np.maximum(r, 1e-6)) ** 2, 0.0, None)
        coverage = np.maximum(coverage, np.minimum(1.6 * np.sqrt(inside), 1.0))
    tone = _tone(params, np.interp(s, s_axis, level))
    image = params.background + coverage * (tone - params.background)
    if params.optical_blur_px > 0:
        image = gaussian_filter(image, params.optical_blur_px, mode="nearest")
    if params.noise > 0:
        if rng is None:
            raise ValueError("render needs an rng when params.noise > 0")
        image = image + rng.normal(0.0, 1.0, image.shape) * params.noise * np.sqrt(np.maximum(image, 1.0) / 128.0)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def band_profile(chromosome: DerivedChromosome, params: RenderParams) -> tuple[np.ndarray, np.ndarray]:
    """The band pattern a crop shows: grey level at the chromatid centres along the axis.

    Returns ``s`` (px from pter, every 0.25 px) and the grey level there, before geometry,
    optical blur and noise; ``render`` draws exactly this along the chromatids.
    """
    s_axis, level = _stain_level(chromosome, params)
    return s_axis, _tone(params, level)


def look_tones(look: str) -> dict[str, float]:
    """Default ``background``, ``pale_tone`` and ``stained_tone`` of a look.

    Q-banding fluoresces where G-banding stains dark, so the same stain level maps to bright.
    """
    if look == "gband":
        return {"background": 242.0, "pale_tone": 190.0, "stained_tone": 45.0}
    if look == "qband":
        return {"background": 6.0, "pale_tone": 45.0, "stained_tone": 150.0}
    raise ValueError(f"look must be one of {LOOKS}, got {look!r}")


def _tone(params: RenderParams, level: np.ndarray) -> np.ndarray:
    return params.pale_tone + (params.stained_tone - params.pale_tone) * level


def _stain_level(chromosome: DerivedChromosome, params: RenderParams) -> tuple[np.ndarray, np.ndarray]:
    """Axis samples in px from pter and the stain level there, blurred to the banding resolution."""
    px_per_bp = params.px_per_mb / 1e6
    length = chromosome.length * px_per_bp
    s_axis = np.arange(0.0, length + _STEP_PX, _STEP_PX)
    s_axis[-1] = length
    levels = np.array([STAIN_LEVEL[seg.stain] for seg in chromosome.segments])
    if params.level_jitter:
        levels = levels + np.asarray(params.level_jitter)
    # mean level over each sample's 0.25 px cell, so band edges keep their sub-pixel position
    bounds = np.concatenate([[0.0], [seg.end * px_per_bp for seg in chromosome.segments]])
    integral = np.concatenate([[0.0], np.cumsum(levels * np.diff(bounds))])
    lo = np.clip(s_axis - _STEP_PX / 2, 0.0, length)
    hi = np.clip(s_axis + _STEP_PX / 2, 0.0, length)
    cell_mean = (np.interp(hi, bounds, integral) - np.interp(lo, bounds, integral)) / (hi - lo)
    sigma = params.resolution_mb * params.px_per_mb / _STEP_PX
    return s_axis, np.clip(gaussian_filter1d(cell_mean, sigma, mode="nearest"), 0.0, 1.0)


def _segment_index(chromosome: DerivedChromosome, s_axis: np.ndarray, px_per_bp: float) -> np.ndarray:
    ends = np.array([seg.end for seg in chromosome.segments]) * px_per_bp
    return np.minimum(np.searchsorted(ends, s_axis, side="right"), len(ends) - 1)


def _chromatid_shape(
    chromosome: DerivedChromosome, params: RenderParams, s_axis: np.ndarray, level: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Radius of each chromatid and distance of its centre from the axis, along the axis.

    The chromatids narrow and meet at the centromere, round off at the telomeres, thin out
    at stalks and bulge slightly at dark bands.
    """
    px_per_bp = params.px_per_mb / 1e6
    widths = np.array([STAIN_WIDTH.get(seg.stain, 1.0) for seg in chromosome.segments])
    sigma = max(params.resolution_mb * params.px_per_mb, 1.0) / _STEP_PX
    width = gaussian_filter1d(widths[_segment_index(chromosome, s_axis, px_per_bp)], sigma, mode="nearest")
    r0 = params.chromatid_width_px / 2
    length = s_axis[-1]
    near_cen = np.exp(-0.5 * ((s_axis - chromosome.centromere * px_per_bp) / (1.2 * r0)) ** 2)
    tip = np.minimum(s_axis, length - s_axis)
    cap = np.sqrt(np.clip(1.0 - np.clip((r0 - tip) / r0, 0.0, None) ** 2, 0.0, 1.0))
    swell = 1.0 + _DARK_SWELL * (level - 0.5)
    radius = r0 * width * swell * (1.0 - params.constriction * near_cen) * cap
    offset = 0.85 * r0 * (1.0 - params.constriction * near_cen) + params.chromatid_gap_px / 2 * (1.0 - near_cen)
    return radius, offset


def _pixel_frame(length: float, params: RenderParams) -> tuple[np.ndarray, np.ndarray]:
    """Axis coordinate ``s`` and signed distance ``t`` of every pixel of the tight crop.

    The axis is an arc of constant curvature bent about its midpoint, with pter at the origin
    of the rotated frame; the crop is the arc's bounding box plus a content-independent pad.
    """
    theta = np.deg2rad(params.rotation_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    u = np.linspace(-length / 2, length / 2, 64)
    k = params.curvature
    bent = abs(k) > 1e-9
    arc_x = np.sin(u * k) / k if bent else u
    arc_y = (1 - np.cos(u * k)) / k if bent else 0 * u
    rows = cos * (arc_x + length / 2) - sin * arc_y
    cols = sin * (arc_x + length / 2) + cos * arc_y
    pad = 0.95 * params.chromatid_width_px + params.chromatid_gap_px / 2 + params.margin_px + 2 * params.optical_blur_px
    row0, col0 = np.floor(rows.min() - pad), np.floor(cols.min() - pad)
    shape = (int(np.ceil(rows.max() + pad - row0)) + 1, int(np.ceil(cols.max() + pad - col0)) + 1)
    grid_r, grid_c = np.indices(shape, dtype=float)
    grid_r += row0
    grid_c += col0
    x = cos * grid_r + sin * grid_c - length / 2
    y = -sin * grid_r + cos * grid_c
    if not bent:
        return x + length / 2, y
    radius = 1.0 / k
    s = np.arctan2(x / radius, (radius - y) / radius) * radius + length / 2
    t = radius - np.sign(radius) * np.hypot(x, y - radius)
    return s, t
