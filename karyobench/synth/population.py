"""Patients, cells and chromosomes: a synthetic cohort shaped like the reference study.

Variation is nested the way it is in a cytogenetics lab: a patient's slides share staining and
condensation, a cell has its own condensation and banding resolution, and each chromosome its
own bending, orientation, noise and small homologue differences. That nesting is what makes
grouped cross-validation matter, so every image carries ``patient_id`` and ``cell_id``.

Randomness is keyed, not sequential: each patient, cell and chromosome gets its own
``numpy.random.SeedSequence(seed, spawn_key=...)``, so an image depends only on the seed and
its own position in the cohort, never on what else is generated.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from karyobench.synth.bands import CHROMOSOMES
from karyobench.synth.iscn import DerivedChromosome, normal_chromosome, parse_iscn
from karyobench.synth.render import RenderParams, look_tones, render

MANIFEST_COLUMNS = ("path", "label", "patient_id", "cell_id", "chromosome", "abnormality", "copy")
"""Columns of ``manifest.csv``; ``abnormality`` is the patient's rearrangement (``"none"`` if normal)."""

NO_ABNORMALITY = "none"


class AbnormalityCount(BaseModel):
    """How many patients carry one rearrangement and how many abnormal images they give."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patients: int = Field(1, ge=1, description="Patients carrying the rearrangement.")
    images: int = Field(10, ge=1, description="Abnormal images in total, one per cell, spread evenly over the patients.")

    @model_validator(mode="after")
    def _one_image_per_patient_at_least(self) -> AbnormalityCount:
        if self.images < self.patients:
            raise ValueError(f"images ({self.images}) must be at least patients ({self.patients})")
        return self


SEED_ABNORMALITIES: dict[str, AbnormalityCount] = {
    "del(5)(p14)": AbnormalityCount(patients=3, images=76),
    "inv(9)(p12q13)": AbnormalityCount(patients=8, images=173),
    "del(18)(p11)": AbnormalityCount(patients=3, images=75),
    "i(18)(q10)": AbnormalityCount(patients=2, images=31),
    "i(X)(q10)": AbnormalityCount(patients=3, images=62),
    "del(X)(p22)": AbnormalityCount(patients=2, images=34),
    "del(X)(q21)": AbnormalityCount(patients=2, images=50),
    "del(X)(q22)": AbnormalityCount(patients=2, images=41),
}
"""The eight abnormalities of the reference study with its patient and image counts."""


class SynthConfig(BaseModel):
    """A synthetic G-banded cohort; the defaults reproduce the reference study's class sizes."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, description="Root seed; same config and seed give byte-identical images.")
    normal_patients: int = Field(7, ge=0, description="Patients with a normal karyotype (46,XX or 46,XY).")
    cells_per_patient: int = Field(5, ge=1, description="Metaphases per normal patient; each gives all 46 chromosomes.")
    female_fraction: float = Field(0.5, ge=0, le=1, description="Share of normal patients that are 46,XX.")
    abnormalities: dict[str, AbnormalityCount] = Field(
        default_factory=lambda: dict(SEED_ABNORMALITIES),
        description="ISCN rearrangement -> patients and abnormal images (one abnormal chromosome per cell).",
    )
    keep_whole_abnormal_cells: bool = Field(
        False, description="Keep all 46 chromosomes of abnormal cells, not just the abnormal one and its homologue."
    )
    look: Literal["gband", "qband"] = Field("gband", description="Dark bands on white (gband) or bright fluorescence on black (qband).")
    px_per_mb: float = Field(0.46, gt=0, description="Image length per megabase at band level 550 (chromosome 1 ~115 px).")
    chromatid_width_px: float = Field(6.0, gt=0, description="Diameter of one sister chromatid at band level 550.")
    band_level_range: tuple[int, int] = Field((400, 650), description="Range of the per-cell banding resolution (bands per haploid set).")
    condensation_sd: float = Field(0.12, ge=0, description="Log-sd of length between patients and again between cells.")
    staining_sd: float = Field(14.0, ge=0, description="Sd of the per-patient grey levels of pale and stained chromatin.")
    homologue_sd: float = Field(0.07, ge=0, description="Sd of per-band stain differences between chromosome copies.")
    max_bend_rad: float = Field(1.0, ge=0, le=2.5, description="Largest total bending angle of a chromosome's axis.")
    max_rotation_deg: float = Field(60.0, ge=0, le=180, description="Largest rotation from upright; 180 = any orientation.")
    blur_px: float = Field(1.1, ge=0, description="Optical blur (Gaussian sigma in px) before noise.")
    noise: float = Field(7.0, ge=0, description="Shot-noise sd in grey levels at mid grey; 0 = noise-free.")

    @field_validator("abnormalities")
    @classmethod
    def _parseable(cls, value: dict[str, AbnormalityCount]) -> dict[str, AbnormalityCount]:
        for text in value:
            parse_iscn(text)  # raises ISCNError naming the string
        return value

    @field_validator("band_level_range")
    @classmethod
    def _ordered_levels(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 300 <= value[0] <= value[1] <= 1000:
            raise ValueError(f"band_level_range must satisfy 300 <= low <= high <= 1000, got {value}")
        return value


@dataclass(frozen=True)
class Patient:
    """One patient of the cohort plan, before anything is rendered."""

    patient_id: str
    key: tuple[int, ...]
    female: bool
    abnormality: str | None
    n_cells: int


def plan_patients(config: SynthConfig) -> list[Patient]:
    """Normal patients first, then each abnormality's carriers; cells spread evenly.

    A patient's sex and random stream depend only on its own index (and ISCN string), so
    adding patients never changes the images of the others.
    """
    fraction = config.female_fraction
    patients = [
        Patient(f"N{i + 1:03d}", (0, i), math.ceil((i + 1) * fraction) > math.ceil(i * fraction), None, config.cells_per_patient)
        for i in range(config.normal_patients)
    ]
    carriers = 0
    for text, count in config.abnormalities.items():
        chromosome = parse_iscn(text).chromosome
        base, extra = divmod(count.images, count.patients)
        for j in range(count.patients):
            carriers += 1
            female = chromosome == "X" or (chromosome != "Y" and j % 2 == 0)
            key = (1, zlib.crc32(text.encode()), j)
            patients.append(Patient(f"A{carriers:03d}", key, female, text, base + (j < extra)))
    return patients


def generate(config: SynthConfig) -> tuple[list[np.ndarray], pd.DataFrame]:
    """Render the whole cohort: images and their manifest rows (without ``path``)."""
    images: list[np.ndarray] = []
    rows: list[dict[str, str]] = []
    for patient in plan_patients(config):
        for cell in range(patient.n_cells):
            for image, row in render_cell(config, patient, cell, whole=config.keep_whole_abnormal_cells):
                images.append(image)
                rows.append(row)
    return images, pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS[1:]))


def write_dataset(out_dir: Path | str, config: SynthConfig) -> Path:
    """Write ``<label>/<cell_id>_<label>_<copy>.png`` files, then ``manifest.csv`` last and atomically.

    The manifest appears only once every image it lists is on disk, so an interrupted run never
    leaves a manifest pointing at missing files.
    """
    out = Path(out_dir)
    images, manifest = generate(config)
    paths = []
    for image, row in zip(images, manifest.itertuples(index=False)):
        folder = safe_name(row.label)
        relative = f"{folder}/{row.cell_id}_{folder}_{row.copy}.png"
        (out / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out / relative, format="PNG")
        paths.append(relative)
    manifest.insert(0, "path", paths)
    target = out / "manifest.csv"
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".csv", dir=out)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            manifest.to_csv(handle, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def safe_name(label: str) -> str:
    """File-system-safe form of a label: ``del(5)(p14)`` -> ``del_5_p14``."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", label).strip("_")


def render_cell(config: SynthConfig, patient: Patient, cell: int, whole: bool, upright: bool = False) -> list[tuple[np.ndarray, dict[str, str]]]:
    """Images and manifest rows of one metaphase of ``patient``.

    Normal cells give all 46 chromosomes; abnormal cells give the abnormal chromosome and its
    normal homologue, or all 46 when ``whole``. ``upright`` drops the rotation (karyograms).
    """
    patient_style = _patient_style(config, patient)
    cell_key = patient.key + (cell,)
    cell_style = _cell_style(config, patient_style, cell_key)
    cell_id = f"{patient.patient_id}_c{cell + 1:02d}"
    out = []
    for slot, chromosome, copy, label in _karyotype(patient, whole):
        derived = _derived(label)
        rng = _rng(config.seed, cell_key + (slot,))
        params = _chromosome_params(config, cell_style, derived, rng, upright)
        row = {
            "label": label,
            "patient_id": patient.patient_id,
            "cell_id": cell_id,
            "chromosome": chromosome,
            "abnormality": patient.abnormality or NO_ABNORMALITY,
            "copy": copy,
        }
        out.append((render(derived, params, rng), row))
    return out


def _karyotype(patient: Patient, whole: bool) -> list[tuple[int, str, str, str]]:
    """``(slot, chromosome, copy, label)`` of the chromosomes kept from one cell, karyogram order.

    ``slot`` is the position in the full 46-chromosome cell and keys the chromosome's random
    stream, so a chromosome looks the same whether or not the rest of its cell is kept.
    """
    sex = ["X", "X"] if patient.female else ["X", "Y"]
    slots = [(c, copy) for c in CHROMOSOMES[:22] for copy in "ab"] + [(sex[0], "a"), (sex[1], "b" if sex[1] == "X" else "a")]
    if patient.abnormality is None:
        return [(slot, c, copy, c) for slot, (c, copy) in enumerate(slots)]
    target = parse_iscn(patient.abnormality).chromosome
    kept = []
    for slot, (c, copy) in enumerate(slots):
        abnormal = c == target and copy == ("a" if target == "Y" else "b")
        if whole or c == target:
            kept.append((slot, c, copy, patient.abnormality if abnormal else c))
    return kept


@cache
def _derived(label: str) -> DerivedChromosome:
    return normal_chromosome(label) if label in CHROMOSOMES else parse_iscn(label).derive()


def _rng(seed: int, key: tuple[int, ...]) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _patient_style(config: SynthConfig, patient: Patient) -> dict[str, float]:
    """Staining, condensation and imaging shared by all cells of a patient."""
    rng = _rng(config.seed, patient.key)
    tones = look_tones(config.look)
    sd = config.staining_sd
    return {
        "background": tones["background"] + rng.normal(0, 0.3 * sd),
        "pale_tone": tones["pale_tone"] + rng.normal(0, sd),
        "stained_tone": tones["stained_tone"] + rng.normal(0, sd),
        "condensation": float(np.exp(rng.normal(0, config.condensation_sd))),
        "width": config.chromatid_width_px * float(np.exp(rng.normal(0, 0.06))),
        "blur": config.blur_px * float(np.exp(rng.normal(0, 0.15))),
        "noise": config.noise * float(np.exp(rng.normal(0, 0.25))),
    }


def _cell_style(config: SynthConfig, patient_style: dict[str, float], cell_key: tuple[int, ...]) -> dict[str, float]:
    """A metaphase's condensation and banding resolution: longer chromosomes show more bands."""
    rng = _rng(config.seed, cell_key)
    band_level = rng.uniform(*config.band_level_range)
    stretch = patient_style["condensation"] * float(np.exp(rng.normal(0, config.condensation_sd)))
    return patient_style | {
        "px_per_mb": config.px_per_mb * stretch * (band_level / 550) ** 0.5,
        "width": patient_style["width"] * (550 / band_level) ** 0.25,
        "resolution_mb": 1000 / band_level,
    }


def _chromosome_params(config: SynthConfig, style: dict[str, float], derived: DerivedChromosome, rng: np.random.Generator, upright: bool) -> RenderParams:
    """One copy's own length, width, stain differences, bend and orientation."""
    px_per_mb = style["px_per_mb"] * float(np.exp(rng.normal(0, 0.03)))
    length_px = derived.length / 1e6 * px_per_mb
    bend = float(np.clip(rng.normal(0, config.max_bend_rad / 2), -config.max_bend_rad, config.max_bend_rad))
    rotation = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    return RenderParams(
        px_per_mb=px_per_mb,
        chromatid_width_px=style["width"] * float(np.exp(rng.normal(0, 0.04))),
        resolution_mb=style["resolution_mb"],
        level_jitter=tuple(rng.normal(0, config.homologue_sd, len(derived.segments))),
        background=style["background"],
        pale_tone=style["pale_tone"],
        stained_tone=style["stained_tone"],
        curvature=bend / max(length_px, 1.0),
        rotation_deg=0.0 if upright else rotation,
        optical_blur_px=style["blur"],
        noise=style["noise"],
    )

