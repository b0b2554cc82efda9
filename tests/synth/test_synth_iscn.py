"""ISCN parsing and band-by-band edits: valid strings, impossible ones, and invariants."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from karyobench.errors import ISCNError
from karyobench.synth.bands import CHROMOSOMES, load_ideograms
from karyobench.synth.iscn import derive, normal_chromosome, parse_iscn

MB = 1e6


def _mid(chromosome: str, band: str) -> float:
    start, end = load_ideograms()[chromosome].span(band)
    return (start + end) / 2


def _stains(derived) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.stain) for s in derived.segments]


@pytest.mark.parametrize(
    "text, kind, chromosome, breakpoints",
    [
        ("del(5)(p14)", "del", "5", ("p14",)),
        ("del(18)(p11)", "del", "18", ("p11",)),
        ("del(X)(p22)", "del", "X", ("p22",)),
        ("del(X)(q21)", "del", "X", ("q21",)),
        ("del(X)(q22)", "del", "X", ("q22",)),
        ("del(1)(q21q31)", "del", "1", ("q21", "q31")),
        ("i(18)(q10)", "i", "18", ("q10",)),
        ("i(X)(q10)", "i", "X", ("q10",)),
        ("i(X)(p10)", "i", "X", ("p10",)),
        ("inv(9)(p12q13)", "inv", "9", ("p12", "q13")),
        ("inv(1)(q21q31)", "inv", "1", ("q21", "q31")),
        ("dup(1)(q21q31)", "dup", "1", ("q21", "q31")),
        ("del(1)(p11.2p21)", "del", "1", ("p11.2", "p21")),
        (" inv(3)(p13p25) ", "inv", "3", ("p13", "p25")),
    ],
)
def test_parses_valid_strings(text, kind, chromosome, breakpoints):
    parsed = parse_iscn(text)
    assert (parsed.kind, parsed.chromosome, parsed.breakpoints) == (kind, chromosome, breakpoints)
    assert parsed.text == text.strip()


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("del(23)(p14)", "unknown chromosome"),
        ("del(chr5)(p14)", "unknown chromosome"),
        ("del(5)(p99)", "no band 'p99'"),
        ("del(21)(p15)", "no band"),
        ("del(5)(p1)", "not a band name"),
        ("del(5)(x14)", "not bands"),
        ("inv(9)(q13p12)", "out of order"),
        ("inv(1)(q31q21)", "out of order"),
        ("del(1)(p21p11.2)", "out of order"),
        ("inv(9)(p12)", "needs 2"),
        ("del(1)(q21q22q31)", "needs 1 or 2"),
        ("i(X)(q21)", "centromere"),
        ("del(5)(q10)", "only valid in i()"),
        ("dup(1)(p21q31)", "one arm"),
        ("del(1)(p21q31)", "one arm"),
        ("del(5)(p14p14.1)", "overlap"),
        ("t(9;22)(q34;q11)", "not understood"),
        ("del(5)", "not understood"),
        ("", "not understood"),
    ],
)
def test_rejects_impossible_strings_naming_them(text, complaint):
    with pytest.raises(ISCNError) as info:
        parse_iscn(text)
    assert repr(text.strip()) in str(info.value) or "not understood" in str(info.value)
    assert complaint in str(info.value)


def test_terminal_deletion_removes_pter_to_band_midpoint():
    normal, derived = normal_chromosome("5"), derive("del(5)(p14)")
    cut = _mid("5", "p14")
    assert derived.length == pytest.approx(normal.length - cut)
    assert derived.centromere == pytest.approx(normal.centromere - cut)
    assert derived.segments[0].band == "p14.2" and derived.label == "del(5)(p14)"


def test_q_arm_terminal_deletion_keeps_pter():
    normal, derived = normal_chromosome("X"), derive("del(X)(q21)")
    assert derived.length == pytest.approx(_mid("X", "q21"))
    assert derived.centromere == normal.centromere
    assert derived.segments[0] == normal.segments[0]


def test_interstitial_deletion_and_duplication_lengths():
    normal = normal_chromosome("1")
    q21, q31 = _mid("1", "q21"), _mid("1", "q31")
    assert derive("del(1)(q21q31)").length == pytest.approx(normal.length - (q31 - q21))
    assert derive("dup(1)(q21q31)").length == pytest.approx(normal.length + (q31 - q21))


def test_isochromosome_mirrors_one_arm_about_the_centromere():
    normal = normal_chromosome("18")
    iso = derive("i(18)(q10)")
    q_arm = normal.length - normal.centromere
    assert iso.length == pytest.approx(2 * q_arm)
    assert iso.centromere == pytest.approx(q_arm)
    mirrored = [(iso.length - e, iso.length - s, stain) for s, e, stain in reversed(_stains(iso))]
    assert [m[2] for m in mirrored] == [s[2] for s in _stains(iso)]
    assert [x for m in mirrored for x in m[:2]] == pytest.approx(
        [x for s in _stains(iso) for x in s[:2]])
    q_arm_stains = [b.stain for b in load_ideograms()["18"].bands if b.arm == "q"]
    assert [s[2] for s in _stains(iso)] == q_arm_stains[::-1] + q_arm_stains


def test_pericentric_inversion_moves_centromere_and_keeps_length():
    normal, inv = normal_chromosome("9"), derive("inv(9)(p12q13)")
    p12, q13 = _mid("9", "p12"), _mid("9", "q13")
    assert inv.length == normal.length
    assert inv.centromere == pytest.approx(p12 + q13 - normal.centromere)
    inside = [seg for seg in inv.segments if p12 <= seg.start and seg.end <= q13]
    assert [seg.band for seg in inside][0] == "q13"


def test_paracentric_inversion_keeps_centromere():
    normal, inv = normal_chromosome("1"), derive("inv(1)(q21q31)")
    assert inv.centromere == normal.centromere and inv.length == normal.length
    assert _stains(inv) != _stains(normal)


band_cases = st.sampled_from(
    [(c, band) for c in CHROMOSOMES for band in load_ideograms()[c].band_names()]
)


@settings(max_examples=150, deadline=None)
@given(band_cases)
def test_any_terminal_deletion_shortens_and_keeps_the_centromere(case):
    chromosome, band = case
    normal = normal_chromosome(chromosome)
    derived = derive(f"del({chromosome})({band})")
    assert 0 < derived.length < normal.length
    acen = [s for s in derived.segments if s.stain == "acen"]
    assert acen, "the centromere must survive a terminal deletion"
    assert acen[0].start <= derived.centromere <= acen[-1].end
    kept_arm_length = normal.length - normal.centromere if band[0] == "p" else normal.centromere
    arm_in_derived = derived.length - derived.centromere if band[0] == "p" else derived.centromere
    assert arm_in_derived == pytest.approx(kept_arm_length)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(CHROMOSOMES),
    st.from_regex(r"\A[pq]\d{2}(\.\d{1,3})?\Z").filter(lambda b: b not in ("p10", "q10")),
)
def test_bands_not_on_the_chromosome_always_raise(chromosome, band):
    if band in load_ideograms()[chromosome].band_names():
        derive(f"del({chromosome})({band})")
        return
    with pytest.raises(ISCNError, match="has no band"):
        parse_iscn(f"del({chromosome})({band})")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_arbitrary_text_parses_or_raises_iscn_error(text):
    try:
        parse_iscn(text)
    except ISCNError as err:
        assert str(err)
