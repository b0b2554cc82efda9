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
    margin_px: int = 3


def render(chromosome: DerivedChromosome, params: RenderParams, rng: np.random.Generator | None = None) -> np.ndarray:
    """Render ``chromosome`` as a 2-D uint8 crop; ``rng`` is needed only when ``params.noise > 0``."""
    s_axis, level, radius, offset = _axial_profiles(chromosome, params)
    length = s_axis[-1]
    s, t = _pixel_frame(length, radius.max() * 2 + params.chromatid_gap_px, params)
    coverage = np.zeros_like(s)
    r = np.interp(s, s_axis, radius, left=0.0, right=0.0)
    c = np.interp(s, s_axis, offset)
    for side in (-1.0, 1.0):
        d = np.abs(t - side * c)
        inside = np.clip(1.0 - (d / np.maximum(r, 1e-6)) ** 2, 0.0, None)
        coverage = np.maximum(coverage, np.minimum(1.6 * np.sqrt(inside), 1.0))
    tone = params.pale_tone + (params.stained_tone - params.pale_tone) * np.interp(s, s_axis, level)
    image = params.background + coverage * (tone - params.background)
    if params.optical_blur_px > 0:
        image = gaussian_filter(image, params.optical_blur_px, mode="nearest")
    if params.noise > 0:
        if rng is None:
            raise ValueError("render needs an rng when params.noise > 0")
        image = image + rng.normal(0.0, 1.0, image.shape) * params.noise * np.sqrt(np.maximum(image, 1.0) / 128.0)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def look_tones(look: str) -> dict[str, float]:
    """Default ``background``, ``pale_tone`` and ``stained_tone`` of a look.

    Q-banding fluoresces where G-banding stains dark, so the same stain level maps to bright.
    """
    if look == "gband":
        return {"background": 242.0, "pale_tone": 190.0, "stained_tone": 45.0}
    if look == "qband":
        return {"background": 6.0, "pale_tone": 45.0, "stained_tone": 150.0}
    raise ValueError(f"look must be one of {LOOKS}, got {look!r}")


def _axial_profiles(chromosome: DerivedChromosome, params: RenderParams) -> tuple[np.ndarray, ...]:
    """Stain level, chromatid radius and chromatid centre offset sampled along the axis."""
    px_per_bp = params.px_per_mb / 1e6
    length = chromosome.length * px_per_bp
    s_axis = np.arange(0.0, length + _STEP_PX, _STEP_PX)
    s_axis[-1] = length
    ends = np.array([seg.end for seg in chromosome.segments]) * px_per_bp
    index = np.minimum(np.searchsorted(ends, s_axis, side="right"), len(ends) - 1)
    levels = np.array([STAIN_LEVEL[seg.stain] for seg in chromosome.segments])
    if params.level_jitter:
        levels = levels + np.asarray(params.level_jitter)
    widths = np.array([STAIN_WIDTH.get(seg.stain, 1.0) for seg in chromosome.segments])
    sigma = params.resolution_mb * params.px_per_mb / _STEP_PX
    level = np.clip(gaussian_filter1d(levels[index], sigma, mode="nearest"), 0.0, 1.0)
    width = gaussian_filter1d(widths[index], max(sigma, 1.0 / _STEP_PX), mode="nearest")

    r0 = params.chromatid_width_px / 2
    cen = chromosome.centromere * px_per_bp
    near_cen = np.exp(-0.5 * ((s_axis - cen) / (1.2 * r0)) ** 2)
    tip = np.minimum(s_axis, length - s_axis)
    cap = np.sqrt(np.clip(1.0 - np.clip((r0 - tip) / r0, 0.0, None) ** 2, 0.0, 1.0))
    radius = r0 * width * (1.0 - params.constriction * near_cen) * cap
    offset = 0.85 * r0 * (1.0 - params.constriction * near_cen) + params.chromatid_gap_px / 2 * (1.0 - near_cen)
    return s_axis, level, radius, offset


def _pixel_frame(length: float, width: float, params: RenderParams) -> tuple[np.ndarray, np.ndarray]:
    """Axis coordinate ``s`` and signed distance ``t`` of every pixel of the tight crop."""
    theta = np.deg2rad(params.rotation_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    u = np.linspace(-length / 2, length / 2, 64)
    k = params.curvature
    arc = np.stack([np.sin(u * k) / k, (1 - np.cos(u * k)) / k]) if abs(k) > 1e-9 else np.stack([u, 0 * u])
    rows, cols = rot @ arc
    pad = width / 2 + params.margin_px + 2 * params.optical_blur_px
    row0, col0 = np.floor(rows.min() - pad), np.floor(cols.min() - pad)
    shape = (int(np.ceil(rows.max() + pad - row0)) + 1, int(np.ceil(cols.max() + pad - col0)) + 1)
    grid_r, grid_c = np.indices(shape, dtype=float)
    grid_r += row0
    grid_c += col0
    x = np.cos(theta) * grid_r + np.sin(theta) * grid_c
    y = -np.sin(theta) * grid_r + np.cos(theta) * grid_c
    if abs(k) <= 1e-9:
        return x + length / 2, y
    radius = 1.0 / k
    dx, dy = x, y - radius
    s = np.arctan2(dx / radius, -dy / radius) * radius + length / 2
    t = radius - np.sign(radius) * np.hypot(dx, dy)
    return s, t
