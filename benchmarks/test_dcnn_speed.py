"""Seed-DCNN training speed: matmul peak, throughput per canvas size, harness overhead,
and the TensorFlow settings tried in docs/performance.md (oneDNN, XLA)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _dcnn_probe import bare_fit, harness_fit, seed_data
from conftest import FIGURES, best_peak_flops, note, training_flops_per_image

HERE = Path(__file__).resolve().parent


def test_matmul_peak_numpy(benchmark, peak_flops):
    n = 1024
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    benchmark.pedantic(lambda: a @ b, rounds=5, iterations=1, warmup_rounds=1)
    flops = 2 * n**3 / benchmark.stats.stats.min
    FIGURES["peak_flops"] = max(best_peak_flops(), flops)
    note(benchmark, gflops=flops / 1e9, peak_gflops=FIGURES["peak_flops"] / 1e9)


def test_matmul_peak_tensorflow(benchmark, peak_flops):
    from karyobench._tf import keras_module

    keras_module()
    import tensorflow as tf

    n = 1024
    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((n, n), dtype=np.float32))
    b = tf.constant(rng.random((n, n), dtype=np.float32))
    run = lambda: tf.linalg.matmul(a, b).numpy()  # noqa: E731
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    flops = 2 * n**3 / benchmark.stats.stats.min
    FIGURES["peak_flops"] = max(best_peak_flops(), flops)
    note(benchmark, gflops=flops / 1e9, peak_gflops=FIGURES["peak_flops"] / 1e9)


def test_matmul_peak_bfloat16(benchmark, peak_flops):
    """bf16 matmul rate (oneDNN uses AMX / AVX-512 BF16 where the CPU has them): the peak
    that ``precision: mixed_bfloat16`` training should be compared with."""
    from karyobench._tf import keras_module

    keras_module()
    import tensorflow as tf

    n = 1024
    rng = np.random.default_rng(0)
    a = tf.cast(tf.constant(rng.random((n, n), dtype=np.float32)), tf.bfloat16)
    b = tf.cast(tf.constant(rng.random((n, n), dtype=np.float32)), tf.bfloat16)
    run = lambda: tf.linalg.matmul(a, b).numpy()  # noqa: E731
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    flops = 2 * n**3 / benchmark.stats.stats.min
    FIGURES["peak_bf16_flops"] = flops
    note(benchmark, gflops=flops / 1e9, fp32_peak_gflops=best_peak_flops() / 1e9,
         bf16_over_fp32=flops / best_peak_flops())


@pytest.mark.parametrize("precision,batch_size", [("float32", 64), ("float32", 256),
                                                  ("mixed_bfloat16", 64),
                                                  ("mixed_bfloat16", 256)])
def test_dcnn_training_precision_and_batch(benchmark, peak_flops, precision, batch_size):
    """Seed DCNN at 64 px: fp32 vs bf16 compute, seed batch (64) vs 256."""
    n, epochs = 1024, 3
    X, y = seed_data(64, n)
    timers = []

    def fit():
        clf, timer, _ = harness_fit(X, y, epochs, precision=precision,
                                    batch_size=batch_size)
        timers.append((clf, timer))

    benchmark.pedantic(fit, rounds=1, iterations=1)
    clf, timer = timers[-1]
    ips = n * (epochs - 1) / timer.steady_seconds()
    achieved = ips * training_flops_per_image(clf.model_)
    bf16_peak = FIGURES.get("peak_bf16_flops")
    note(benchmark, precision=precision, batch_size=batch_size, images_per_second=ips,
         achieved_gflops=achieved / 1e9, fraction_of_fp32_peak=achieved / best_peak_flops(),
         fraction_of_bf16_peak=achieved / bf16_peak if bf16_peak else "not measured")


NETWORKS = {
    "resnet_16_32_64": ("resnet", {}),
    "resnet_24_48_96": ("resnet", {"widths": [24, 48, 96]}),
    "vgg_16_32_64": ("vgg", {"widths": [16, 32, 64]}),
    "dcnn_gap_bn": ("dcnn", {"head": "gap", "batch_norm": True}),
}


@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_network_training_throughput(benchmark, peak_flops, network, precision):
    """Images/s of the bioimlab_best networks at 64 px, with augmentation and the shape
    input on (as trained there): the cost model's throughput term."""
    from _dcnn_probe import epoch_timer

    from karyobench.estimators import build

    kind, params = NETWORKS[network]
    n, epochs = 1024, 3
    X, y = seed_data(64, n)
    timers = []

    def fit():
        timer = epoch_timer()
        clf = build(kind, {**params, "epochs": epochs, "precision": precision,
                           "rotation": 0.03, "flip": "horizontal", "zoom": 0.1,
                           "shift": 0.05, "contrast": 0.2, "shape_input": True},
                    random_state=0)
        clf.set_params(callbacks=[timer])
        clf.fit(X, y)
        timers.append((clf, timer))

    benchmark.pedantic(fit, rounds=1, iterations=1)
    clf, timer = timers[-1]
    ips = n * (epochs - 1) / timer.steady_seconds()
    flops = training_flops_per_image(clf.model_)
    note(benchmark, network=network, precision=precision, images_per_second=ips,
         gflop_per_image=flops / 1e9, fraction_of_fp32_peak=ips * flops / best_peak_flops())


@pytest.mark.parametrize("px", [64, 96, 128])
def test_dcnn_training_throughput(benchmark, peak_flops, px):
    """Images/s of the seed DCNN through the harness (epochs after the first)."""
    n, epochs = 256, 3
    X, y = seed_data(px, n)
    timers = []

    def fit():
        clf, timer, _ = harness_fit(X, y, epochs)
        timers.append((clf, timer))

    benchmark.pedantic(fit, rounds=1, iterations=1)
    clf, timer = timers[-1]
    ips = n * (epochs - 1) / timer.steady_seconds()
    flops = training_flops_per_image(clf.model_)
    note(benchmark, px=px, images=n, epochs=epochs, images_per_second=ips,
         gflop_per_image=flops / 1e9, achieved_gflops=ips * flops / 1e9,
         peak_gflops=best_peak_flops() / 1e9,
         fraction_of_peak=ips * flops / best_peak_flops())


def test_harness_overhead_vs_bare_keras(benchmark):
    """Wall time of DCNNClassifier.fit vs the same model as plain Keras fit (target 1.05x)."""
    n, epochs, px = 384, 3, 64
    X, y = seed_data(px, n)
    template, _, _ = harness_fit(X[:64], y[:64], 1)
    harness, bare = [], []
    for _ in range(2):  # interleaved, best of 2: the load drifts between runs
        _, h_timer, h_wall = harness_fit(X, y, epochs)
        harness.append((h_wall, h_timer.steady_seconds()))
        _, b_timer, b_wall = bare_fit(template.model_, X, y, epochs)
        bare.append((b_wall, b_timer.steady_seconds()))
    benchmark.pedantic(lambda: harness_fit(X, y, epochs), rounds=1, iterations=1)
    h_wall = min(min(w for w, _ in harness), benchmark.stats.stats.min)
    b_wall = min(w for w, _ in bare)
    h_epoch, b_epoch = min(s for _, s in harness), min(s for _, s in bare)
    note(benchmark, harness_wall_s=h_wall, bare_keras_wall_s=b_wall,
         overhead_ratio_wall=h_wall / b_wall, overhead_ratio_steady=h_epoch / b_epoch,
         harness_images_per_second=n * (epochs - 1) / h_epoch,
         bare_images_per_second=n * (epochs - 1) / b_epoch)
    assert h_wall / b_wall < 1.5, "the harness is far slower than bare Keras"


def _probe(env_overrides: dict, *args: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env_overrides)
    done = subprocess.run([sys.executable, str(HERE / "_dcnn_probe.py"), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tensorflow_settings(benchmark):
    """oneDNN on/off, XLA, Keras' unfused Adam, one inter-op thread and the ReLU moved
    after the pool, each in a fresh process (TF reads oneDNN and its thread pools once)."""
    args = ("--px", "64", "--n", "1024", "--epochs", "3")
    results = {}

    def run():
        results["default"] = _probe({}, *args)
        results["onednn_off"] = _probe({"TF_ENABLE_ONEDNN_OPTS": "0"}, *args)
        results["onednn_on"] = _probe({"TF_ENABLE_ONEDNN_OPTS": "1"}, *args)
        results["onednn_on_xla"] = _probe({"TF_ENABLE_ONEDNN_OPTS": "1"}, *args, "--jit")
        results["onednn_off_xla"] = _probe({"TF_ENABLE_ONEDNN_OPTS": "0"}, *args, "--jit")
        results["keras_adam"] = _probe({}, *args, "--keras-adam")
        results["inter_op_1"] = _probe({}, *args, "--inter-op", "1")
        results["relu_after_pool"] = _probe({}, *args, "--relu-after-pool")
        results["default_again"] = _probe({}, *args)  # brackets the ReLU comparison in time

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert results["onednn_on_xla"]["jit"] and results["onednn_off_xla"]["jit"], \
        "the --jit probes trained without XLA"
    ips = {k: v["images_per_second"] for k, v in results.items()}
    note(benchmark, **{f"{k}_images_per_second": v for k, v in ips.items()},
         onednn_speedup=ips["onednn_on"] / ips["onednn_off"],
         xla_speedup_onednn_on=ips["onednn_on_xla"] / ips["onednn_on"],
         xla_speedup_onednn_off=ips["onednn_off_xla"] / ips["onednn_off"],
         fused_adam_speedup=ips["default"] / ips["keras_adam"],
         inter_op_1_speedup=ips["inter_op_1"] / ips["default"],
         relu_after_pool_speedup=ips["relu_after_pool"]
         / ((ips["default"] + ips["default_again"]) / 2))


def _folds_together(folder, *args: str, pin: bool = False) -> list[dict]:
    """One seed-DCNN probe per core with one TensorFlow thread each, started together and
    barrier-aligned (as ``backend: loky`` trains folds); ``pin`` binds probe i to core i."""
    cores = os.cpu_count() or 1
    single = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KARYOBENCH_TF_THREADS="1",
                  OMP_NUM_THREADS="1")
    folder.mkdir()
    probes = [subprocess.Popen([*(["taskset", "-c", str(core)] if pin else []),
                                sys.executable, str(HERE / "_dcnn_probe.py"), *args,
                                "--barrier", str(folder), "--parties", str(cores)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=single) for core in range(cores)]
    outputs = [p.communicate(timeout=900) for p in probes]
    for probe, (_, err) in zip(probes, outputs):
        assert probe.returncode == 0, err[-2000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


def _aggregate_rate(per_core: list[dict]) -> tuple[float, float]:
    """(images/s over the union of the timed windows, overlap of the windows)."""
    window = (max(p["steady_end"] for p in per_core)
              - min(p["steady_start"] for p in per_core))
    overlap = sum(p["steady_end"] - p["steady_start"] for p in per_core) / (len(per_core) * window)
    return sum(p["steady_images"] for p in per_core) / window, overlap


def test_dcnn_folds_in_parallel(benchmark, peak_flops, tmp_path):
    """The seed DCNN at 64 px as a study trains it with ``backend: loky``: one fold per
    core, one TensorFlow thread each, all training at once (barrier-aligned timed epochs),
    against one process using every core. Aggregate FLOP/s over the union of the timed
    windows, so late starters count against the parallel figure."""
    args = ("--px", "64", "--n", "1024", "--epochs", "4")
    results = {}

    def run():
        results["one_process"] = _probe({}, *args)
        results["per_core"] = _folds_together(tmp_path / "barrier", *args)

    benchmark.pedantic(run, rounds=1, iterations=1)
    one = results["one_process"]
    parallel_ips, overlap = _aggregate_rate(results["per_core"])
    flops = one["flops_per_image"]
    note(benchmark, cores=os.cpu_count() or 1,
         one_process_images_per_second=one["images_per_second"],
         parallel_images_per_second=parallel_ips, overlap=overlap,
         parallel_speedup=parallel_ips / one["images_per_second"],
         one_process_fraction_of_peak=one["images_per_second"] * flops / best_peak_flops(),
         parallel_fraction_of_peak=parallel_ips * flops / best_peak_flops())


def _alternating_pairs(tmp_path, variants: dict[str, dict], rounds: int = 3
                       ) -> dict[str, list[float]]:
    """Aggregate images/s of one fold per core under each variant (keyword arguments of
    ``_folds_together``), alternating variants so drift in the machine's speed hits all."""
    args = ("--px", "64", "--n", "1024", "--epochs", "4")
    rates = {name: [] for name in variants}
    for round_ in range(rounds):
        for name, options in variants.items():
            options = dict(options)
            extra = options.pop("extra", ())
            per_core = _folds_together(tmp_path / f"{name}{round_}", *args, *extra, **options)
            rates[name].append(_aggregate_rate(per_core)[0])
            threads = {tuple(p["intra_inter_threads"]) for p in per_core}
            rates.setdefault(f"{name}_threads", threads)
    return rates


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_dcnn_folds_pinned_to_cores(benchmark, tmp_path):
    """One fold per core, free to migrate vs pinned (``taskset``), in three alternating
    pairs."""
    rates = {}
    benchmark.pedantic(lambda: rates.update(_alternating_pairs(
        tmp_path, {"free": {}, "pinned": {"pin": True}})), rounds=1, iterations=1)
    note(benchmark, free_images_per_second=[round(r) for r in rates["free"]],
         pinned_images_per_second=[round(r) for r in rates["pinned"]],
         pinned_speedup=sum(rates["pinned"]) / sum(rates["free"]))


def test_dcnn_folds_inter_op_threads(benchmark, tmp_path):
    """One fold per core with one intra-op thread each: one inter-op thread (what
    ``KARYOBENCH_TF_THREADS=1`` sets) vs two, which would let one layer's optimizer
    update overlap the next layer's backward pass; three alternating pairs."""
    rates = {}
    benchmark.pedantic(lambda: rates.update(_alternating_pairs(
        tmp_path, {"one": {}, "two": {"extra": ("--inter-op", "2")}})),
        rounds=1, iterations=1)
    # the variant took effect: (intra, inter) threads as TensorFlow reports them
    assert rates["one_threads"] == {(1, 1)} and rates["two_threads"] == {(1, 2)}
    note(benchmark, one_inter_op_images_per_second=[round(r) for r in rates["one"]],
         two_inter_op_images_per_second=[round(r) for r in rates["two"]],
         two_over_one=sum(rates["two"]) / sum(rates["one"]))


def _optimizer_update_seconds(model, optimizer_class, rounds: int = 30) -> float:
    """Wall time of one update of ``model``'s weights (zero gradients), compiled."""
    import tensorflow as tf

    variables = [tf.Variable(v) for v in model.trainable_variables]
    grads = [tf.zeros_like(v) for v in variables]
    optimizer = optimizer_class(learning_rate=1e-3)
    optimizer.build(variables)
    update = tf.function(lambda: optimizer.apply(grads, variables))
    update()
    start = time.perf_counter()
    for _ in range(rounds):
        update()
    return (time.perf_counter() - start) / rounds


def test_dcnn_step_cost_decomposition(benchmark, peak_flops):
    """Where the seed DCNN's 64 px training time goes: seconds per step at four batch
    sizes, fitted as ``fixed + per_image * batch``. ``fixed`` (optimizer update, dispatch)
    is paid once per step; ``per_image`` bounds the fraction of peak any batch size can
    reach (the ceiling). The Adam update is timed alone, as Keras writes it and fused."""
    from karyobench._tf import keras_module
    from karyobench.estimators.fused_adam import fused_adam_class

    n, epochs, batches = 1024, 3, (32, 64, 128, 256)
    X, y = seed_data(64, n)
    per_step, fitted = {}, []

    def run():
        for batch in batches:
            clf, timer, _ = harness_fit(X, y, epochs, batch_size=batch)
            per_step[batch] = timer.steady_seconds() / ((epochs - 1) * n / batch)
            fitted.append(clf)

    benchmark.pedantic(run, rounds=1, iterations=1)
    model = fitted[-1].model_
    sizes = np.array(batches, dtype=float)
    per_image, fixed = np.polyfit(sizes, np.array([per_step[b] for b in batches]), 1)
    flops = training_flops_per_image(model)
    note(benchmark, **{f"ms_per_step_batch{b}": per_step[b] * 1e3 for b in batches},
         fixed_ms_per_step=fixed * 1e3, per_image_ms=per_image * 1e3,
         keras_adam_update_ms=_optimizer_update_seconds(
             model, keras_module().optimizers.Adam) * 1e3,
         fused_adam_update_ms=_optimizer_update_seconds(model, fused_adam_class()) * 1e3,
         fraction_of_peak_batch64=64 * flops / per_step[64] / best_peak_flops(),
         ceiling_fraction_of_peak=flops / per_image / best_peak_flops())
    assert per_step[256] > per_step[32], "a larger batch cannot take less time per step"


#: the recommended ResNet of bioimlab_noise / gband_normal24 (fit canvas 64 px, label
#: smoothing, augmentation, shape input, bf16 compute), as one fold trains it
RECOMMENDED_RESNET = {"widths": [24, 48, 96], "rotation": 0.03, "flip": "horizontal",
                      "zoom": 0.1, "shift": 0.05, "contrast": 0.2, "lr_schedule": "cosine",
                      "shape_input": True, "tta": True, "label_smoothing": 0.1}


def alternating_resnet_rates(variants: dict[str, dict], n: int = 1024, epochs: int = 3,
                             rounds: int = 3) -> tuple[dict[str, list], dict[str, float]]:
    """Train the recommended ResNet under each of ``variants`` (name -> parameters over
    :data:`RECOMMENDED_RESNET`) in ``rounds`` alternating rounds in this process, so every
    variant meets the same machine state: images/s of the steady epochs per round, and
    each variant's training FLOPs per image."""
    from _dcnn_probe import epoch_timer

    from karyobench.estimators import build

    X, y = seed_data(64, n)
    rates, flops = {name: [] for name in variants}, {}
    for _ in range(rounds):
        for name, params in variants.items():
            timer = epoch_timer()
            clf = build("resnet", {**RECOMMENDED_RESNET, "epochs": epochs, **params},
                        random_state=0)
            clf.set_params(callbacks=[timer])
            clf.fit(X, y)
            rates[name].append(n * (epochs - 1) / timer.steady_seconds())
            flops[name] = training_flops_per_image(clf.model_)
    return rates, flops


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "float32"])
def test_resnet_fused_batch_norm(benchmark, peak_flops, precision):
    """The recommended ResNet with Keras' batch norm against ``fused_batch_norm``: three
    alternating pairs in the benchmark process (its TensorFlow threads: every core), the
    median images/s of the steady epochs and the fraction of the same run's fp32 and bf16
    matmul peaks. The ratio fused / Keras is the figure."""
    variants = {"keras": {"precision": precision, "fused_batch_norm": False},
                "fused": {"precision": precision, "fused_batch_norm": True}}
    rates, flops = benchmark.pedantic(alternating_resnet_rates, args=(variants,), rounds=1,
                                      iterations=1)
    keras_rate, fused_rate = (float(np.median(rates[k])) for k in ("keras", "fused"))
    bf16_peak = FIGURES.get("peak_bf16_flops")
    note(benchmark, precision=precision, keras_images_per_second=keras_rate,
         fused_images_per_second=fused_rate, fused_over_keras=fused_rate / keras_rate,
         pairs=[(round(a, 1), round(b, 1)) for a, b in zip(rates["keras"], rates["fused"])],
         fused_fraction_of_fp32_peak=fused_rate * flops["fused"] / best_peak_flops(),
         fused_fraction_of_bf16_peak=(fused_rate * flops["fused"] / bf16_peak
                                      if bf16_peak else "not measured"))


def note_bf16_rates_against_today(benchmark, variants: dict[str, dict], today: str
                                  ) -> tuple[dict[str, float], dict[str, float]]:
    """Train ``variants`` of the recommended ResNet in bf16 (alternating rounds, one
    process) and note each one's median images/s and its ratio to variant ``today``;
    returns the medians and each variant's training FLOPs per image."""
    variants = {name: {**params, "precision": "mixed_bfloat16"}
                for name, params in variants.items()}
    rates, flops = benchmark.pedantic(alternating_resnet_rates, args=(variants,), rounds=1,
                                      iterations=1)
    median = {name: float(np.median(r)) for name, r in rates.items()}
    note(benchmark, **{f"{name}_images_per_second": v for name, v in median.items()},
         **{f"{name}_over_today": v / median[today] for name, v in median.items()},
         training_gflop_per_image={name: f / 1e9 for name, f in flops.items()},
         rounds={name: [round(v, 1) for v in r] for name, r in rates.items()})
    return median, flops


def test_resnet_batch_size(benchmark, peak_flops):
    """Larger batches for the recommended ResNet (bf16, fused batch norm) against today's
    training (batch 64, Keras batch norm): alternating rounds in one process, median
    images/s of the steady epochs. Only a throughput figure: a larger batch changes the
    training (fewer, larger steps), so a kept one needs its own time-to-accuracy study."""
    note_bf16_rates_against_today(benchmark, {
        "keras_bn_64": {"batch_size": 64, "fused_batch_norm": False},
        **{f"fused_{b}": {"batch_size": b, "fused_batch_norm": True} for b in (64, 128, 256)},
    }, today="keras_bn_64")


def test_resnet_strided_stem(benchmark, peak_flops):
    """The recommended ResNet with the strided stem (``stem: strided``: the stem conv at
    stride 2 instead of full resolution + max-pool) and fused batch norm, against today's
    training (pool stem, Keras batch norm) and fused batch norm alone, bf16, batch 64:
    alternating rounds in one process, median images/s of the steady epochs. The stem
    changes the network, so its accuracy is judged by studies (gband_resnet_stem,
    bioimlab_resnet_stem)."""
    _, flops = note_bf16_rates_against_today(benchmark, {
        "today": {"fused_batch_norm": False},
        "fused": {"fused_batch_norm": True},
        "fused_strided": {"fused_batch_norm": True, "stem": "strided"},
    }, today="today")
    assert flops["fused_strided"] < flops["fused"], "the strided stem must do less work"
