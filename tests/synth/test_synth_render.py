"""The renderer draws the band pattern it is given, and each ISCN edit changes exactly its bands.

Chromosomes are rendered straight, unrotated and noise-free at 4 px/Mb; the grey level along
the axis is read off the crop (darkest pixel of each row, i.e. the chromatid centres) and
compared with the normal chromosome's.
"""

import numpy as np
import pytest

from karyobench.synth.bands import load_ideograms
from karyobench.synth.iscn import derive, normal_chromosome
from karyobench.synth.render import RenderParams, band_profile, look_tones, render

SCALE = 4.0  # px per Mb
CLEAN = RenderParams(px_per_mb=SCALE, resolution_mb=1.0, constriction=0.0, chromatid_gap_px=0.0, optical_blur_px=0.0, noise=0.0)
EDGE_PX = 10.0  # band-edge blur (2.5 sigma) plus telomere caps
MB = 1e6


def _px(bp: float) -> float:
    return bp / MB * SCALE


def _mid(chromosome: str, band: str) -> float:
    start, end = load_ideograms()[chromosome].span(band)
    return (start + end) / 2


def read_profile(derived):
    """Grey level along the axis as read off the rendered crop, as a function of px from pter."""
    image = render(derived, CLEAN)
    rows = image.min(axis=1).astype(float)
    s_model, grey_model = band_profile(derived, CLEAN)
    length = s_model[-1]

    def misfit(row0: int) -> float:
        s = np.arange(len(rows)) + row0
        interior = (s > EDGE_PX) & (s < length - EDGE_PX)
        return np.abs(rows[interior] - np.interp(s[interior], s_model, grey_model)).max()

    row0 = min(range(-40, 1), key=misfit)
    assert misfit(row0) <= 1.0, "the crop must show exactly the modelled band pattern"
    s_rows = np.arange(len(rows)) + row0
    return lambda s: np.interp(s, s_rows, rows, left=CLEAN.background, right=CLEAN.background), length


def _grid(start_px: float, end_px: float) -> np.ndarray:
    return np.arange(start_px + EDGE_PX, end_px - EDGE_PX, 0.5)


# (iscn, anchor, changed interval in reference bp): aligned at the anchor telomere, the derived
# profile must equal the normal one outside the interval and differ inside it.
def _cases():
    ideo = load_ideograms()
    L = {c: ideo[c].length for c in ideo}
    cen = {c: ideo[c].centromere for c in ideo}
    return [
        ("del(5)(p14)", "qter", (0, _mid("5", "p14"))),
        ("del(18)(p11)", "qter", (0, _mid("18", "p11"))),
        ("del(X)(p22)", "qter", (0, _mid("X", "p22"))),
        ("del(X)(q21)", "pter", (_mid("X", "q21"), L["X"])),
        ("del(X)(q22)", "pter", (_mid("X", "q22"), L["X"])),
        ("del(1)(q21q31)", "pter", (_mid("1", "q21"), L["1"])),
        ("del(1)(q21q31)", "qter", (0, _mid("1", "q31"))),
        ("i(18)(q10)", "qter", (0, cen["18"])),
        ("i(X)(q10)", "qter", (0, cen["X"])),
        ("i(X)(p10)", "pter", (cen["X"], L["X"])),
        ("inv(9)(p12q13)", "pter", (_mid("9", "p12"), _mid("9", "q13"))),
        ("inv(1)(q21q31)", "pter", (_mid("1", "q21"), _mid("1", "q31"))),
        ("dup(1)(q21q31)", "pter", (_mid("1", "q31"), L["1"])),
        ("dup(1)(q21q31)", "qter", (0, _mid("1", "q21"))),
    ]


@pytest.mark.parametrize("iscn, anchor, changed", _cases(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_abnormality_changes_exactly_its_band_range(iscn, anchor, changed):
    derived = derive(iscn)
    normal_profile, normal_length = read_profile(normal_chromosome(derived.chromosome))
    derived_profile, derived_length = read_profile(derived)
    shift = 0.0 if anchor == "pter" else derived_length - normal_length
    lo, hi = _px(changed[0]), _px(changed[1])

    for start, end in [(0.0, lo), (hi, normal_length)]:
        s = _grid(start, end)
        if len(s):
            diff = np.abs(derived_profile(s + shift) - normal_profile(s))
            assert diff.max() <= 2.0, f"{iscn}: unchanged part {start:.0f}-{end:.0f} px differs by {diff.max()}"
    s = _grid(lo, hi)
    diff = np.abs(derived_profile(s + shift) - normal_profile(s))
    assert diff.mean() > 15.0, f"{iscn}: changed part {lo:.0f}-{hi:.0f} px looks unchanged ({diff.mean():.1f})"


@pytest.mark.parametrize(
    "iscn, derived_start_bp, reference_bp, reversed_",
    [
        ("inv(9)(p12q13)", "p12", ("9", "p12", "q13"), True),
        ("inv(1)(q21q31)", "q21", ("1", "q21", "q31"), True),
        ("dup(1)(q21q31)", "q31", ("1", "q21", "q31"), False),
        ("i(18)(q10)", None, ("18", "cen", "qter"), True),
        ("i(X)(p10)", "cen", ("X", "pter", "cen"), True),
    ],
)
def test_moved_segment_shows_the_reference_bands(iscn, derived_start_bp, reference_bp, reversed_):
    """Inverted, duplicated and mirrored segments carry the reference bands, in the right order."""
    chromosome, first, last = reference_bp
    ideo = load_ideograms()[chromosome]
    named = {"cen": ideo.centromere, "pter": 0, "qter": ideo.length}
    start = named.get(first, None) if first in named else _mid(chromosome, first)
    end = named.get(last, None) if last in named else _mid(chromosome, last)
    d_start = 0 if derived_start_bp is None else named.get(derived_start_bp) if derived_start_bp in named else _mid(chromosome, derived_start_bp)
    normal_profile, _ = read_profile(normal_chromosome(chromosome))
    derived_profile, _ = read_profile(derive(iscn))
    s = _grid(0, _px(end - start))
    reference = normal_profile(_px(end) - s) if reversed_ else normal_profile(_px(start) + s)
    assert np.abs(derived_profile(_px(d_start) + s) - reference).max() <= 2.0


def test_default_scale_and_width_match_real_crops():
    params = RenderParams(noise=0.0)
    chr1 = render(normal_chromosome("1"), params)
    chr21 = render(normal_chromosome("21"), params)
    dark = lambda im: im < params.background - 30  # noqa: E731
    rows1, cols1 = np.nonzero(dark(chr1))
    rows21 = np.nonzero(dark(chr21))[0]
    length1 = rows1.max() - rows1.min() + 1
    assert 100 <= length1 <= 130
    assert 4.0 <= length1 / (rows21.max() - rows21.min() + 1) <= 6.0
    assert 10 <= cols1.max() - cols1.min() + 1 <= 16
    assert chr1.shape[1] - (cols1.max() - cols1.min() + 1) <= 12, "tight crop, small margin"


def test_gband_is_dark_on_light_and_qband_bright_on_dark():
    chromosome = normal_chromosome("7")
    gband = render(chromosome, RenderParams(noise=0.0))
    qband = render(chromosome, RenderParams(noise=0.0, **look_tones("qband")))
    assert gband[0, 0] > 200 and gband.min() < 100
    assert qband[0, 0] < 30 and qband.max() > 100
    # Q-bright bands are G-dark bands: the two axial profiles are anti-correlated
    g = gband.min(axis=1).astype(float)
    q = qband.max(axis=1).astype(float)
    inside = g < gband[0, 0] - 30
    assert np.corrcoef(g[inside], q[inside])[0, 1] < -0.8


def test_rotation_and_bending_keep_the_chromosome_in_the_crop():
    chromosome = normal_chromosome("2")
    for rotation, curvature in [(0, 0.0), (37, 0.0), (90, 0.008), (-150, -0.01)]:
        image = render(chromosome, RenderParams(noise=0.0, rotation_deg=rotation, curvature=curvature))
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert border.min() > RenderParams().background - 10, (rotation, curvature)
        assert (image < 150).sum() > 200
    upright = render(chromosome, RenderParams(noise=0.0))
    lying = render(chromosome, RenderParams(noise=0.0, rotation_deg=90))
    assert upright.shape[0] > 3 * upright.shape[1] and lying.shape[1] > 3 * lying.shape[0]


def test_noise_needs_an_rng_and_is_reproducible():
    chromosome = normal_chromosome("21")
    with pytest.raises(ValueError, match="rng"):
        render(chromosome, RenderParams(noise=3.0))
    a = render(chromosome, RenderParams(), np.random.default_rng(1))
    b = render(chromosome, RenderParams(), np.random.default_rng(1))
    c = render(chromosome, RenderParams(), np.random.default_rng(2))
    assert a.dtype == np.uint8 and a.ndim == 2
    assert np.array_equal(a, b) and not np.array_equal(a, c)
