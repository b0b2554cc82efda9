"""``karyobench synth``: write the synthetic cohort (and optionally a karyogram preview)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from karyobench.errors import ConfigError
from karyobench.synth.karyogram import draw_karyogram, draw_pairs
from karyobench.synth.population import SEED_ABNORMALITIES, AbnormalityCount, SynthConfig, write_dataset

_DEFAULTS = SynthConfig.model_fields


def synth_command(
    out: Path = typer.Option(..., "--out", help="Folder to write <label>/*.png and manifest.csv into."),
    patients: int = typer.Option(_DEFAULTS["normal_patients"].default, "--patients", help="Patients with a normal karyotype."),
    cells_per_patient: int = typer.Option(
        _DEFAULTS["cells_per_patient"].default, "--cells-per-patient", help="Metaphases per normal patient (46 images each)."
    ),
    abnormal: list[str] = typer.Option(
        None,
        "--abnormal",
        help="ISCN string, repeatable (default: the reference study's eight; 'none' for normal cells only).",
    ),
    seed: int = typer.Option(_DEFAULTS["seed"].default, "--seed", help="Same seed, same images, byte for byte."),
    look: str = typer.Option(_DEFAULTS["look"].default, "--look", help="gband (dark bands on white) or qband (fluorescence)."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="karyogram.png: one cell as a karyogram, plus <name>_pairs.png with every abnormal/normal pair."),
) -> None:
    """Generate synthetic G-banded chromosome crops with patient and cell groups."""
    config = build_config(patients, cells_per_patient, abnormal, seed, look)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; give a folder to write the images and "
                          "manifest.csv into.")
    try:
        manifest = write_dataset(out, config)
    except OSError as err:
        raise ConfigError(f"cannot write the synthetic dataset into '{out}' "
                          f"({err.strerror}); choose another --out.") from None
    typer.echo(f"wrote {manifest}")
    if preview is not None:
        typer.echo(f"wrote {draw_karyogram(config, preview)}")
        if config.abnormalities:
            pairs = preview.with_name(f"{preview.stem}_pairs{preview.suffix or '.png'}")
            typer.echo(f"wrote {draw_pairs(config, pairs)}")


def build_config(patients: int, cells_per_patient: int, abnormal: list[str] | None, seed: int, look: str) -> SynthConfig:
    """Turn CLI options into a ``SynthConfig``; an ISCN string not in the study gets 2 patients."""
    if not abnormal:
        abnormalities = dict(SEED_ABNORMALITIES)
    elif [a.lower() for a in abnormal] == ["none"]:
        abnormalities = {}
    else:
        fallback = AbnormalityCount(patients=2, images=2 * cells_per_patient)
        abnormalities = {text: SEED_ABNORMALITIES.get(text, fallback) for text in abnormal}
    try:
        return SynthConfig(
            normal_patients=patients,
            cells_per_patient=cells_per_patient,
            abnormalities=abnormalities,
            seed=seed,
            look=look,
        )
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"invalid synth options: {problems}") from None
