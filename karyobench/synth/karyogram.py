"""One synthetic cell laid out as a karyogram, to judge the generator's realism at a glance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from karyobench.errors import ConfigError
from karyobench.synth.bands import CHROMOSOMES
from karyobench.synth.population import Patient, SynthConfig, plan_patients, render_cell

KARYOGRAM_ROWS: tuple[tuple[str, ...], ...] = (
    ("1", "2", "3", "4", "5"),
    ("6", "7", "8", "9", "10", "11", "12"),
    ("13", "14", "15", "16", "17", "18"),
    ("19", "20", "21", "22", "X", "Y"),
)
"""Classic ISCN karyogram layout: groups A-B, C, D-E, F-G and the sex chromosomes."""

_GAP_PX = 4
_GROUP_GAP_PX = 18


def draw_karyogram(config: SynthConfig, out_png: Path | str, patient: str | None = None, cell: int = 0) -> Path:
    """Draw one whole cell of ``patient`` (default: the first abnormal one) upright, at true scale.

    An abnormal chromosome stands beside its normal homologue and is captioned with its ISCN.
    """
    chosen = _choose_patient(plan_patients(config), patient)
    if not 0 <= cell < chosen.n_cells:
        raise ConfigError(f"patient {chosen.patient_id} has cells 0..{chosen.n_cells - 1}, not {cell}")
    drawn = render_cell(config, chosen, cell, whole=True, upright=True)
    by_class: dict[str, list[np.ndarray]] = {c: [] for c in CHROMOSOMES}
    captions: dict[str, str] = {c: c for c in CHROMOSOMES}
    for image, row in drawn:
        by_class[row["chromosome"]].append(image)
        if row["label"] != row["chromosome"]:
            captions[row["chromosome"]] = f"{row['chromosome']} | {row['label']}"

    background = int(np.median(np.concatenate([im[0] for im, _ in drawn])))
    strips = [_row_strip(row, by_class, captions, background) for row in KARYOGRAM_ROWS]
    width = max(strip.shape[1] for strip, _ in strips)
    canvas = np.full((sum(strip.shape[0] + _GROUP_GAP_PX for strip, _ in strips), width), background, np.uint8)
    labels = []
    top = 0
    for strip, centres in strips:
        canvas[top : top + strip.shape[0], : strip.shape[1]] = strip
        labels += [(top + strip.shape[0] + 2, x, text) for x, text in centres]
        top += strip.shape[0] + _GROUP_GAP_PX

    dpi = 100
    scale = 3
    fig = Figure(figsize=(canvas.shape[1] * scale / dpi, canvas.shape[0] * scale / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    text_colour = "black" if background > 127 else "white"
    for y, x, text in labels:
        ax.text(x, y, text, ha="center", va="top", fontsize=8, color=text_colour)
    sex = "XX" if chosen.female else "XY"
    title = f"{chosen.patient_id} cell {cell + 1}: 46,{sex}" + (f",{chosen.abnormality}" if chosen.abnormality else "")
    ax.text(4, 4, title, ha="left", va="top", fontsize=9, color=text_colour)
    ax.set_axis_off()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def draw_pairs(config: SynthConfig, out_png: Path | str) -> Path:
    """Each abnormality beside its normal homologue, from one cell of its first carrier.

    The karyogram shows one cell (so one abnormality); this gallery shows every pair a
    study's binary tasks compare, side by side at true relative scale.
    """
    carriers = {}
    for patient in plan_patients(config):
        if patient.abnormality and patient.abnormality not in carriers:
            carriers[patient.abnormality] = patient
    if not carriers:
        raise ConfigError("the configuration has no abnormalities to draw as pairs")
    pieces = []
    for text, patient in carriers.items():
        drawn = render_cell(config, patient, 0, whole=False, upright=True)
        normal = [im for im, row in drawn if row["label"] == row["chromosome"]]
        abnormal = [im for im, row in drawn if row["label"] != row["chromosome"]]
        pieces.append((f"{drawn[0][1]['chromosome']} | {text}", normal[:1] + abnormal[:1]))
    background = int(np.median(np.concatenate([im[0] for _, ims in pieces for im in ims])))
    height = max(im.shape[0] for _, ims in pieces for im in ims) + 12
    x, placed, captions = _GROUP_GAP_PX, [], []
    for caption, images in pieces:
        start = x
        for image in images:
            placed.append((x, image))
            x += image.shape[1] + _GAP_PX
        x = max(x, start + 60)
        captions.append(((start + x - _GAP_PX) / 2, caption))
        x += _GROUP_GAP_PX
    canvas = np.full((height + 24, x), background, np.uint8)
    for left, image in placed:
        canvas[height - image.shape[0]:height, left:left + image.shape[1]] = image
    dpi, scale = 100, 3
    fig = Figure(figsize=(canvas.shape[1] * scale / dpi, canvas.shape[0] * scale / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    for centre, caption in captions:
        ax.text(centre, height + 2, caption, ha="center", va="top", fontsize=7,
                color="black" if background > 127 else "white")
    ax.set_axis_off()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def _choose_patient(patients: list[Patient], patient_id: str | None) -> Patient:
    if not patients:
        raise ConfigError("the configuration has no patients to draw")
    if patient_id is None:
        return next((p for p in patients if p.abnormality), patients[0])
    for p in patients:
        if p.patient_id == patient_id:
            return p
    known = ", ".join(p.patient_id for p in patients[:5])
    raise ConfigError(f"no patient {patient_id!r} in this configuration (ids look like {known}, ...)")


def _row_strip(
    classes: tuple[str, ...], by_class: dict[str, list[np.ndarray]], captions: dict[str, str], background: int
) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Chromosomes of one karyogram row bottom-aligned, and the x centre of each caption."""
    height = max((im.shape[0] for c in classes for im in by_class[c]), default=1) + 12
    pieces, centres, x = [], [], _GROUP_GAP_PX
    for c in classes:
        start = x
        for image in by_class[c]:
            pieces.append((x, image))
            x += image.shape[1] + _GAP_PX
        x = max(x, start + 20)
        centres.append(((start + x - _GAP_PX) / 2, captions[c]))
        x += _GROUP_GAP_PX
    strip = np.full((height, x), background, np.uint8)
    for left, image in pieces:
        strip[height - image.shape[0] :, left : left + image.shape[1]] = image
    return strip, centres
