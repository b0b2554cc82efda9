"""ISCN structural rearrangements, parsed from their strings and applied band by band.

A rearranged chromosome is described as the ordered list of reference intervals it is made of
(each forward or reversed); cutting the band table along those intervals gives its bands.

Conventions (documented choices where ISCN leaves the exact position open):

* A breakpoint named by a band lies at the **midpoint** of that band (``p14`` spans
  ``p14.3``..``p14.1``), so ``del(5)(p14)`` removes pter up to the middle of 5p14 and keeps
  the proximal half of the band.
* Two breakpoints on one arm are written proximal (centromere side) first, as in
  ``inv(3)(p13p25)`` or ``del(1)(q21q31)``; breakpoints on both arms are written p first, as in
  ``inv(9)(p12q13)``. ``inv`` with breakpoints on one arm is paracentric, on both pericentric.
* ``p10``/``q10`` name the centromere and are accepted only by the isochromosome ``i()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from karyobench.errors import ISCNError
from karyobench.synth.bands import BAND_PATTERN, CHROMOSOMES, Ideogram, load_ideograms

_SYNTAX = re.compile(r"^(?P<kind>del|inv|dup|i)\((?P<chrom>[^()]*)\)\((?P<bands>[^()]*)\)$")
_CENTROMERE_BANDS = ("p10", "q10")
_KIND_NAMES = {"del": "deletion", "inv": "inversion", "dup": "duplication", "i": "isochromosome"}


@dataclass(frozen=True)
class Segment:
    """A stained interval of a (possibly rearranged) chromosome, in bp of that chromosome."""

    start: float
    end: float
    stain: str
    band: str
    """Name of the reference band the interval was cut from."""


@dataclass(frozen=True)
class DerivedChromosome:
    """A chromosome as the renderer needs it: bands in order and the centromere position."""

    chromosome: str
    """Reference chromosome it derives from (``"5"`` for ``del(5)(p14)``)."""
    label: str
    """Class label: the chromosome name when normal, else the ISCN string."""
    segments: tuple[Segment, ...]
    centromere: float

    @property
    def length(self) -> float:
        return self.segments[-1].end


@dataclass(frozen=True)
class Rearrangement:
    """A parsed single-chromosome ISCN rearrangement such as ``inv(9)(p12q13)``."""

    text: str
    kind: str
    chromosome: str
    breakpoints: tuple[str, ...]

    def derive(self) -> DerivedChromosome:
        """Apply the rearrangement to the reference chromosome."""
        ideogram = load_ideograms()[self.chromosome]
        return _assemble(ideogram, self.text, self._pieces(ideogram))

    def _pieces(self, ideogram: Ideogram) -> list[tuple[float, float, bool]]:
        """Reference intervals ``(start, end, reversed)`` of the derived chromosome, pter first."""
        length, cen = ideogram.length, ideogram.centromere
        if self.kind == "i":
            if self.breakpoints[0] == "q10":
                return [(cen, length, True), (cen, length, False)]
            return [(0, cen, False), (0, cen, True)]
        cuts = [_breakpoint(ideogram, band) for band in self.breakpoints]
        if self.kind == "del" and len(cuts) == 1:
            return [(cuts[0], length, False)] if cuts[0] < cen else [(0, cuts[0], False)]
        low, high = sorted(cuts)
        if self.kind == "del":
            return [(0, low, False), (high, length, False)]
        if self.kind == "inv":
            return [(0, low, False), (low, high, True), (high, length, False)]
        return [(0, high, False), (low, high, False), (high, length, False)]


def parse_iscn(text: str) -> Rearrangement:
    """Parse and validate an ISCN string against the ideogram; raise ``ISCNError`` if impossible."""
    match = _SYNTAX.match(text.strip())
    if match is None:
        raise ISCNError(
            f"ISCN {text!r}: not understood; expected e.g. del(5)(p14), del(1)(q21q31), "
            "inv(9)(p12q13), dup(1)(q21q31) or i(18)(q10)"
        )
    kind, chrom, band_text = match["kind"], match["chrom"], match["bands"]
    if chrom not in CHROMOSOMES:
        raise ISCNError(f"ISCN {text!r}: unknown chromosome {chrom!r} (expected 1-22, X or Y)")
    bands = tuple(re.findall(r"[pq][^pq]*", band_text))
    if not bands or "".join(bands) != band_text:
        raise ISCNError(f"ISCN {text!r}: breakpoints {band_text!r} are not bands like p14 or q21q31")
    rearrangement = Rearrangement(text.strip(), kind, chrom, bands)
    _validate(rearrangement, load_ideograms()[chrom])
    return rearrangement


def derive(text: str) -> DerivedChromosome:
    """The rearranged chromosome an ISCN string describes."""
    return parse_iscn(text).derive()


def normal_chromosome(chromosome: str) -> DerivedChromosome:
    """The reference chromosome, unchanged, labelled by its name."""
    ideograms = load_ideograms()
    if chromosome not in ideograms:
        raise ISCNError(f"unknown chromosome {chromosome!r} (expected 1-22, X or Y)")
    ideogram = ideograms[chromosome]
    return _assemble(ideogram, chromosome, [(0, ideogram.length, False)])


def _validate(rearrangement: Rearrangement, ideogram: Ideogram) -> None:
    text, kind, bands = rearrangement.text, rearrangement.kind, rearrangement.breakpoints
    name = _KIND_NAMES[kind]
    for band in bands:
        if not BAND_PATTERN.match(band):
            raise ISCNError(f"ISCN {text!r}: {band!r} is not a band name like p14, q21 or p11.2")
        if band in _CENTROMERE_BANDS:
            if kind != "i":
                raise ISCNError(f"ISCN {text!r}: {band} (the centromere) is only valid in i(), e.g. i({ideogram.chromosome})(q10)")
            continue
        try:
            ideogram.span(band)
        except KeyError:
            raise ISCNError(f"ISCN {text!r}: chromosome {ideogram.chromosome} has no band {band!r}") from None
    expected = {"i": (1,), "del": (1, 2), "inv": (2,), "dup": (2,)}[kind]
    if len(bands) not in expected:
        counts = " or ".join(map(str, expected))
        raise ISCNError(f"ISCN {text!r}: an {name} needs {counts} breakpoint(s), got {len(bands)}")
    if kind == "i":
        if bands[0] not in _CENTROMERE_BANDS:
            raise ISCNError(f"ISCN {text!r}: an isochromosome breaks at the centromere; write p10 or q10, not {bands[0]!r}")
        return
    if len(bands) == 1:
        return
    first, second = bands
    first_span, second_span = ideogram.span(first), ideogram.span(second)
    if first_span[0] < second_span[1] and second_span[0] < first_span[1]:
        raise ISCNError(f"ISCN {text!r}: breakpoints {first} and {second} overlap; they must be different bands")
    if first[0] != second[0]:
        if kind != "inv":
            raise ISCNError(f"ISCN {text!r}: a {name} needs both breakpoints on one arm (it would span the centromere)")
        if first[0] != "p":
            raise ISCNError(f"ISCN {text!r}: breakpoints out of order; a pericentric inversion lists the p-arm band first")
        return
    proximal_first = first_span[0] > second_span[0] if first[0] == "p" else first_span[0] < second_span[0]
    if not proximal_first:
        raise ISCNError(f"ISCN {text!r}: breakpoints out of order; list the band nearer the centromere first ({second}{first})")


def _breakpoint(ideogram: Ideogram, band: str) -> float:
    start, end = ideogram.span(band)
    return (start + end) / 2


def _assemble(ideogram: Ideogram, label: str, pieces: list[tuple[float, float, bool]]) -> DerivedChromosome:
    """Cut the band table along ``pieces`` and lay the cuts end to end."""
    segments: list[Segment] = []
    centromere: float | None = None
    offset = 0.0
    for start, end, reverse in pieces:
        if centromere is None and start <= ideogram.centromere <= end:
            local = ideogram.centromere - start
            centromere = offset + ((end - start) - local if reverse else local)
        cut = [
            (max(b.start, start), min(b.end, end), b.stain, b.name)
            for b in ideogram.bands
            if b.end > start and b.start < end
        ]
        if reverse:
            cut = [(start + end - e, start + end - s, stain, name) for s, e, stain, name in reversed(cut)]
        segments += [Segment(offset + s - start, offset + e - start, stain, name) for s, e, stain, name in cut]
        offset += end - start
    assert centromere is not None, "every rearrangement keeps the centromere"
    return DerivedChromosome(ideogram.chromosome, label, tuple(segments), centromere)
