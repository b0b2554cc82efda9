"""Where the recommended ResNet's training step spends its time: TensorFlow's profiler over
one epoch after the warm-up, summed by op type (self time, share of the busy time), and
the images/s of the next, unprofiled epoch.

    python benchmarks/_resnet_profile.py [--params '{"fused_batch_norm": true}']
        [--n 1024] [--top 15] [--jit]

prints one line per op type (``IDLE``, the thread pools' waiting, left out of the shares)
and writes nothing outside a temporary folder. ``--jit`` compiles the training step with
XLA (``_dcnn_probe.compile_with_xla``: Keras refuses it under op determinism);
the compiled step then runs as XLA clusters the op table cannot break down, so only the
images/s line means anything, and it needs the augmentation off (no XLA kernel).
The figures in docs/performance.md's "where the ResNet's step goes" came from it.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time


def op_type_seconds(xplane_files: list[str]) -> dict[str, float]:
    """Self seconds per op type from profiler traces (the profiler's own op statistics)."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    data, ok = plugin.xspace_to_tools_data(xplane_files, "framework_op_stats", {})
    if not ok:
        raise RuntimeError("the profiler could not summarise its trace")
    table = json.loads(data)
    table = table[0] if isinstance(table, list) else table
    columns = [c["id"] for c in table["cols"]]
    seconds = collections.Counter()
    for row in table["rows"]:
        cells = dict(zip(columns, [c.get("v") if c else None for c in row["c"]]))
        seconds[cells["type"]] += cells["total_self_time"] / 1e6
    return dict(seconds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--params", default="{}", help="JSON over the recommended ResNet")
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the training step")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(__file__))
    from _dcnn_probe import compile_with_xla, seed_data
    from test_dcnn_speed import RECOMMENDED_RESNET

    from karyobench._tf import keras_module
    from karyobench.estimators import build

    keras = keras_module()
    import tensorflow as tf

    if args.jit:
        compile_with_xla()
    with tempfile.TemporaryDirectory() as logdir:

        class ProfileThenTime(keras.callbacks.Callback):
            """Epoch 0 warms up, epoch 1 is profiled, epoch 2 is timed."""

            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    tf.profiler.experimental.start(logdir)
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    tf.profiler.experimental.stop()
                self.seconds = time.perf_counter() - self.started

        params = {**RECOMMENDED_RESNET, "precision": "mixed_bfloat16", "epochs": 3,
                  **json.loads(args.params)}
        clf = build("resnet", params, random_state=0)
        timer = ProfileThenTime()
        clf.set_params(callbacks=[timer])
        clf.fit(*seed_data(64, args.n))
        seconds = op_type_seconds(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))
    idle = seconds.pop("IDLE", 0.0)
    busy = sum(seconds.values())
    print(f"{args.n / timer.seconds:.0f} images/s unprofiled; profiled epoch: busy "
          f"{busy:.2f} s, idle {idle:.2f} s (thread-seconds); params {args.params}"
          f"{' with XLA' if clf.model_.jit_compile else ''}")
    for kind, value in sorted(seconds.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{value / busy:6.1%} {value:7.3f} s  {kind}")


if __name__ == "__main__":
    main()
