"""Synthetic G-banded chromosome crops drawn from the human ideogram (the embedded default data).

No public image set of structurally abnormal chromosomes exists, so karyobench generates one:
real band positions (UCSC cytoBand hg19), ISCN rearrangements applied band by band, and a
cohort of patients and cells whose nested variation makes grouped cross-validation matter.
"""

from karyobench.synth.iscn import DerivedChromosome, derive, normal_chromosome, parse_iscn
from karyobench.synth.karyogram import draw_karyogram
from karyobench.synth.population import SEED_ABNORMALITIES, AbnormalityCount, SynthConfig, generate, write_dataset

__all__ = [
    "SEED_ABNORMALITIES",
    "AbnormalityCount",
    "DerivedChromosome",
    "SynthConfig",
    "derive",
    "draw_karyogram",
    "generate",
    "normal_chromosome",
    "parse_iscn",
    "write_dataset",
]
