"""The human ideogram (UCSC cytoBand, hg19) as the generator's ground truth.

Every synthetic chromosome, normal or rearranged, is cut from this table, so band positions,
relative lengths and centromere positions are real rather than invented.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

CHROMOSOMES: tuple[str, ...] = tuple(str(i) for i in range(1, 23)) + ("X", "Y")
"""Chromosome names in karyogram order (labels of the 24 normal classes)."""

STAINS: tuple[str, ...] = ("gneg", "gpos25", "gpos50", "gpos75", "gpos100", "gvar", "stalk", "acen")
"""Giemsa stain classes of the UCSC table."""

BAND_PATTERN = re.compile(r"^[pq]\d{2}(\.\d+)?$")
"""Shape of an ISCN band name: arm, two-digit region+band, optional sub-band (``p11.21``)."""

_TABLE = "cytobands_hg19.tsv"


@dataclass(frozen=True)
class Band:
    """One row of the band table: a stained interval of a chromosome, in base pairs."""

    name: str
    start: int
    end: int
    stain: str

    @property
    def arm(self) -> str:
        return self.name[0]


@dataclass(frozen=True)
class Ideogram:
    """One chromosome of the reference ideogram."""

    chromosome: str
    bands: tuple[Band, ...]
    centromere: int
    """End of the p arm in bp (the boundary between the p- and q-side ``acen`` bands)."""

    @property
    def length(self) -> int:
        return self.bands[-1].end

    @property
    def relative_length(self) -> float:
        """Length as a fraction of chromosome 1, the longest."""
        return self.length / load_ideograms()["1"].length

    def span(self, band: str) -> tuple[int, int]:
        """bp interval covered by an ISCN band name; ``p14`` covers ``p14.1``..``p14.3``.

        Raises ``KeyError`` when no band of this chromosome matches.
        """
        if not BAND_PATTERN.match(band):
            raise KeyError(band)
        prefix = band if "." in band else band + "."
        matches = [b for b in self.bands if b.name == band or b.name.startswith(prefix)]
        if not matches:
            raise KeyError(band)
        return matches[0].start, matches[-1].end

    def band_names(self) -> list[str]:
        """Every ISCN band name this chromosome accepts: table rows and their parent bands."""
        names: dict[str, None] = {}
        for b in self.bands:
            head, _, sub = b.name.partition(".")
            names[head] = None
            for k in range(1, len(sub) + 1):
                names[f"{head}.{sub[:k]}"] = None
        return list(names)


@cache
def load_ideograms() -> dict[str, Ideogram]:
    """Read the packaged band table once; keys are ``"1"``..``"22"``, ``"X"``, ``"Y"``."""
    text = (resources.files("karyobench") / "resources" / _TABLE).read_text(encoding="utf-8")
    rows: dict[str, list[Band]] = {c: [] for c in CHROMOSOMES}
    for row in csv.DictReader(text.splitlines(), delimiter="\t"):
        rows[row["chrom"]].append(Band(row["band"], int(row["start"]), int(row["end"]), row["stain"]))
    ideograms = {}
    for chrom, bands in rows.items():
        bands.sort(key=lambda b: b.start)
        p_acen = [b for b in bands if b.stain == "acen" and b.arm == "p"]
        ideograms[chrom] = Ideogram(chrom, tuple(bands), p_acen[-1].end)
    return ideograms
