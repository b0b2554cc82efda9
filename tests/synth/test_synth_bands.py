"""The packaged band table is the generator's ground truth: check it is whole and sensible."""

from karyobench.synth.bands import CHROMOSOMES, STAINS, load_ideograms


def test_all_24_chromosomes_with_contiguous_bands():
    ideograms = load_ideograms()
    assert list(ideograms) == list(CHROMOSOMES)
    for ideogram in ideograms.values():
        assert ideogram.bands[0].start == 0
        for before, after in zip(ideogram.bands, ideogram.bands[1:]):
            assert before.end == after.start, (ideogram.chromosome, before, after)
        assert {b.stain for b in ideogram.bands} <= set(STAINS)


def test_one_centromere_per_chromosome_between_the_arms():
    for ideogram in load_ideograms().values():
        acen = [b for b in ideogram.bands if b.stain == "acen"]
        assert [b.arm for b in acen] == ["p", "q"], ideogram.chromosome
        assert acen[0].end == acen[1].start == ideogram.centromere
        assert all(b.arm == "p" for b in ideogram.bands if b.end <= ideogram.centromere)
        assert all(b.arm == "q" for b in ideogram.bands if b.start >= ideogram.centromere)


def test_lengths_ordered_as_in_the_human_karyotype():
    ideograms = load_ideograms()
    length = {c: i.length for c, i in ideograms.items()}
    assert max(length, key=length.get) == "1"
    assert ideograms["1"].relative_length == 1.0
    assert length["21"] < length["22"] < length["20"]
    assert length["19"] < length["20"]
    assert length["Y"] < length["X"] and 0.55 < ideograms["X"].relative_length < 0.7
    assert 0.15 < ideograms["21"].relative_length < 0.25
    for big, small in [("2", "3"), ("3", "4"), ("6", "7"), ("13", "14"), ("17", "18")]:
        assert length[big] > length[small]


def test_acrocentrics_have_short_p_arms():
    ideograms = load_ideograms()
    for c in ["13", "14", "15", "21", "22"]:
        assert ideograms[c].centromere / ideograms[c].length < 0.3
    assert 0.4 < ideograms["1"].centromere / ideograms["1"].length < 0.6


def test_band_span_covers_sub_bands():
    chr5 = load_ideograms()["5"]
    sub = [b for b in chr5.bands if b.name.startswith("p14.")]
    assert len(sub) == 3
    assert chr5.span("p14") == (sub[0].start, sub[-1].end)
    assert chr5.span("p14.1") == (sub[-1].start, sub[-1].end)
    assert "p14" in chr5.band_names() and "p14.3" in chr5.band_names()
