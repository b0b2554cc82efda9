"""Throughput of the synthetic generator (target: at least 200 images/s on one core)."""

from karyobench.synth import SynthConfig, generate

CONFIG = SynthConfig(
    normal_patients=2,
    cells_per_patient=2,
    abnormalities={"del(5)(p14)": {"patients": 1, "images": 4}, "inv(9)(p12q13)": {"patients": 1, "images": 4}},
)


def test_generate_images_per_second(benchmark):
    images, _ = benchmark(generate, CONFIG)
    per_second = len(images) / benchmark.stats.stats.mean
    benchmark.extra_info["images"] = len(images)
    benchmark.extra_info["images_per_second"] = round(per_second, 1)
    assert per_second >= 50  # sanity floor; the measured figure is in extra_info
