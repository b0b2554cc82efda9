"""One process fitting the main command's DCNN fold after fold, as a loky worker does:
per fit, its seconds, the *tail* (seconds from the last Keras callback to the estimator's
``fit`` returning: releasing the training pipeline) and the resident memory grown since
the first fit (loky replaces a worker that grew by 300 MB). Run it in a fresh process:

    python benchmarks/_fold_tail_probe.py [--fits 8] [--clear-session] [--malloc-trim]

prints one JSON line per fit. docs/performance.md gives the figures, before (revision
7679f07^, tf.data autotuning on) and after.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import time

import psutil

from _dcnn_probe import seed_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=8)
    parser.add_argument("--images", type=int, default=180,
                        help="training images per fit (a pair task's fold: about 180)")
    parser.add_argument("--clear-session", action="store_true",
                        help="keras.backend.clear_session() after each fit")
    parser.add_argument("--malloc-trim", action="store_true",
                        help="glibc malloc_trim(0) after each fit")
    args = parser.parse_args()

    from karyobench._tf import keras_module
    from karyobench.context import RunContext, using
    from karyobench.estimators import build

    keras = keras_module()

    class TrainEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            self.at = time.perf_counter()

    X, y = seed_data(64, args.images, n_classes=2)
    process, first_rss = psutil.Process(), None
    with using(RunContext(cache_dir=None, threads=1)):
        for fit in range(args.fits):
            end = TrainEnd()
            clf = build("dcnn", {"dense_units": [1024, 1024], "epochs": 20}, random_state=fit)
            clf.set_params(callbacks=[end])
            started = time.perf_counter()
            clf.fit(X, y)
            returned = time.perf_counter()
            del clf
            if args.clear_session:
                keras.backend.clear_session()
            gc.collect()
            if args.malloc_trim:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            rss = process.memory_info().rss
            first_rss = first_rss or rss
            print(json.dumps({"fit": fit, "fit_seconds": round(returned - started, 2),
                              "tail_seconds": round(returned - end.at, 2),
                              "rss_growth_mb": round((rss - first_rss) / 1e6)}), flush=True)


if __name__ == "__main__":
    main()
