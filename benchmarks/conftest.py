"""Shared helpers for the performance suite (``pytest benchmarks --benchmark-only``).

The suite runs on a shared 2-core machine, so absolute timings move with the load. Every
target is therefore a *ratio of two timings taken in the same run* (harness vs bare
Keras, warm vs cold cache, parallel vs sequential, achieved vs matmul peak). Each
benchmark writes its derived figures and the load average into ``benchmark.extra_info``
(``--benchmark-json out.json`` keeps them); a summary table is printed at the end.

Real data: ``<repo>/../shared/data/bioimlab_qband/labels.csv`` (never copied); benchmarks
that need it skip when it is absent.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIOIMLAB_MANIFEST = REPO.parent / "shared" / "data" / "bioimlab_qband" / "labels.csv"

#: figures gathered across benchmarks (peak FLOP/s, cold timings, ...), printed at the end
FIGURES: dict[str, float | str] = {}


def note(benchmark, **figures) -> None:
    """Record derived figures (and the current load) in extra_info and the summary."""
    load1, load5, _ = os.getloadavg()
    benchmark.extra_info.update(load_1min=round(load1, 2), load_5min=round(load5, 2),
                                cpus=os.cpu_count())
    for name, value in figures.items():
        value = round(float(value), 4) if isinstance(value, (float, np.floating)) else value
        benchmark.extra_info[name] = value
        FIGURES[f"{benchmark.name}: {name}"] = value


def best_of(fn, rounds: int = 3) -> float:
    """Smallest wall time of ``rounds`` calls (the least disturbed by other processes)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def require_bioimlab() -> Path:
    if not BIOIMLAB_MANIFEST.is_file():
        pytest.skip(f"real data not found at {BIOIMLAB_MANIFEST.parent}")
    return BIOIMLAB_MANIFEST


def model_flops(model) -> int:
    """Multiply-adds of one forward pass, counted from the Conv2D/Dense layer shapes."""
    macs = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, out_h, out_w, out_c = layer.output.shape
            k_h, k_w, in_c, _ = layer.kernel.shape
            macs += out_h * out_w * out_c * k_h * k_w * in_c
        elif kind == "Dense":
            macs += int(np.prod(layer.kernel.shape))
    return int(macs)


def training_flops_per_image(model) -> int:
    """FLOPs to train on one image: 2 per multiply-add, x3 for forward + backward."""
    return 2 * 3 * model_flops(model)


def matmul_peak(n: int = 1024, rounds: int = 5) -> float:
    """Best fp32 matmul rate (FLOP/s) right now, numpy or TensorFlow, n x n product."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm the BLAS threads
    best = best_of(lambda: a @ b, rounds)
    from karyobench._tf import keras_module

    keras_module()
    import tensorflow as tf

    ta, tb = tf.constant(a), tf.constant(b)
    tf.linalg.matmul(ta, tb).numpy()
    best = min(best, best_of(lambda: tf.linalg.matmul(ta, tb).numpy(), rounds))
    return 2 * n**3 / best


@pytest.fixture(scope="session")
def peak_flops() -> float:
    """The fp32 matmul peak, measured once per run (cached in FIGURES); the peak tests
    may raise it later, so fractions divide by :func:`best_peak_flops` at use."""
    if "peak_flops" not in FIGURES:
        FIGURES["peak_flops"] = matmul_peak()
    return best_peak_flops()


def best_peak_flops() -> float:
    """The highest fp32 matmul rate measured so far in this run (the peak tests run first
    and may beat the fixture's quick measurement); every fraction of peak divides by it."""
    return float(FIGURES["peak_flops"])


@pytest.fixture(scope="session")
def bioimlab_manifest() -> Path:
    return require_bioimlab()


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("karyobench derived figures (ratios within this run)")
    load1, load5, _ = os.getloadavg()
    terminalreporter.write_line(f"load average now: {load1:.2f} (1 min), {load5:.2f} (5 min)"
                                f" on {os.cpu_count()} CPUs")
    for name, value in FIGURES.items():
        if isinstance(value, float) and abs(value) >= 1e6:
            value = f"{value / 1e9:.2f} G"
        terminalreporter.write_line(f"  {name} = {value}")
