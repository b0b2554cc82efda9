"""DCNN training probes shared by the benchmarks; also a CLI for settings that TensorFlow
reads only at import time (oneDNN), so they must be measured in a fresh process:

    python benchmarks/_dcnn_probe.py --px 64 --n 256 --epochs 3 [--jit] [--keras-adam]
        [--relu-after-pool] [--inter-op N] [--barrier DIR --parties K]

prints one JSON line ``{"images_per_second": ..., "flops_per_image": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def seed_data(px: int, n: int, n_classes: int = 24, seed: int = 0):
    """``n`` random ``px`` x ``px`` grey images with balanced string labels."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, px, px), dtype=np.float32)
    y = np.array([f"{i % n_classes + 1:02d}" for i in range(n)])
    return X, y


def epoch_timer(barrier: str | None = None, parties: int = 1):
    """A Keras callback recording the wall clock at each epoch end.

    With ``barrier`` (a folder shared by ``parties`` processes), each process waits after
    its warm-up epoch until all have finished theirs, so their timed epochs overlap.
    """
    from karyobench._tf import keras_module

    keras = keras_module()

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0 and barrier:
                _wait_for_parties(barrier, parties)
            self.ends.append(time.perf_counter())
            if epoch == 0:
                self.steady_start_epoch_time = time.time()

        def steady_seconds(self) -> float:
            """Seconds for the epochs after the first (tracing/warm-up excluded)."""
            return self.ends[-1] - self.ends[1]

    return EpochTimer()


def _wait_for_parties(folder: str, parties: int, timeout: float = 300.0) -> None:
    open(os.path.join(folder, f"ready.{os.getpid()}"), "w").close()
    deadline = time.monotonic() + timeout
    while sum(n.startswith("ready.") for n in os.listdir(folder)) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only some of {parties} probes reached the barrier")
        time.sleep(0.005)


def compile_with_xla() -> None:
    """Make every Keras model built from now on in this process train through XLA.

    ``compile(jit_compile=True)`` is not enough: Keras resolves it to ``False`` while op
    determinism is on, which scikeras turns on for every seeded fit, so the flag is set
    after compiling, and determinism is turned off (XLA has no deterministic max-pool
    gradient). For a fresh probe process only: it patches ``keras.Model.compile``."""
    from tensorflow.python.framework import config as tf_config

    from karyobench._tf import keras_module

    keras = keras_module()
    tf_config.disable_op_determinism()
    compile_model = keras.Model.compile

    def compile_then_force_xla(model, *positional, **keywords):
        compile_model(model, *positional, **keywords)
        model._jit_compile = True

    keras.Model.compile = compile_then_force_xla


def keras_adam_classifier():
    """``DCNNClassifier`` with Keras' own (unfused) Adam at a constant rate (the seed's
    setting), for comparison with FusedAdam."""
    from karyobench.estimators.dcnn import DCNNClassifier

    class KerasAdamDCNN(DCNNClassifier):
        def _optimizer(self, keras, meta):
            return keras.optimizers.Adam(learning_rate=float(self.learning_rate))

    return KerasAdamDCNN


def relu_after_pool_classifier():
    """The seed DCNN with each ReLU moved after its max-pool: the same function (max
    commutes with ReLU) with a quarter of the ReLU work, tried for speed and not adopted."""
    from karyobench.estimators.dcnn import DCNNClassifier

    class ReluAfterPoolDCNN(DCNNClassifier):
        def _build_body(self, x, keras):
            layers = keras.layers
            for filters in self.conv_filters:
                x = layers.Conv2D(int(filters), self.kernel_size, padding=self.padding)(x)
                x = layers.Activation("relu")(layers.MaxPooling2D(2, padding=self.padding)(x))
            x = layers.Flatten()(x)
            for units in self.dense_units:
                x = layers.Dense(int(units), activation="relu")(x)
            return x

    return ReluAfterPoolDCNN


def harness_fit(X, y, epochs: int, *, jit: bool = False, keras_adam: bool = False,
                relu_after_pool: bool = False, random_state: int = 0, timer=None,
                **params):
    """Train the seed DCNN through karyobench; returns (classifier, timer, wall s).

    ``params`` override DCNNClassifier parameters (e.g. ``precision``, ``batch_size``).
    """
    from karyobench.estimators.dcnn import DCNNClassifier

    if jit:
        compile_with_xla()
    cls = (keras_adam_classifier() if keras_adam
           else relu_after_pool_classifier() if relu_after_pool else DCNNClassifier)
    timer = timer or epoch_timer()
    clf = cls(epochs=epochs, random_state=random_state, callbacks=[timer], **params)
    start = time.perf_counter()
    clf.fit(X, y)
    return clf, timer, time.perf_counter() - start


def bare_fit(template, X, y, epochs: int, batch_size: int = 64):
    """The same architecture as plain Keras ``fit`` on the same arrays (numpy in).

    Seeded with op determinism on, exactly as scikeras does for ``random_state``.
    """
    from scikeras.utils.random_state import tensorflow_random_state

    from karyobench._tf import keras_module

    keras = keras_module()
    timer = epoch_timer()
    with tensorflow_random_state(0):
        return _bare_fit(keras, timer, template, X, y, epochs, batch_size)


def _bare_fit(keras, timer, template, X, y, epochs, batch_size):
    start = time.perf_counter()
    model = keras.models.clone_model(template)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy")
    codes = np.unique(y, return_inverse=True)[1]
    model.fit(X[..., np.newaxis], codes, batch_size=batch_size, epochs=epochs,
              shuffle=True, verbose=0, callbacks=[timer])
    return model, timer, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--px", type=int, default=64)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--keras-adam", action="store_true")
    parser.add_argument("--relu-after-pool", action="store_true")
    parser.add_argument("--inter-op", type=int, default=0, help="inter-op threads (0: TF's)")
    parser.add_argument("--barrier", default=None, help="folder shared by --parties probes")
    parser.add_argument("--parties", type=int, default=1)
    args = parser.parse_args(argv)
    if args.inter_op:  # thread pools are fixed once the runtime starts: set them first
        from karyobench._tf import quiet_environment

        quiet_environment()
        import tensorflow as tf

        # KARYOBENCH_TF_THREADS would reset inter-op to min(2, threads): take over both
        intra = int(os.environ.pop("KARYOBENCH_TF_THREADS", "0") or 0)
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
        tf.constant(0.0).numpy()  # start the runtime with these pools
    sys.path.insert(0, os.path.dirname(__file__))
    from conftest import training_flops_per_image

    X, y = seed_data(args.px, args.n)
    clf, timer, wall = harness_fit(X, y, args.epochs, jit=args.jit,
                                   keras_adam=args.keras_adam,
                                   relu_after_pool=args.relu_after_pool,
                                   timer=epoch_timer(args.barrier, args.parties))
    import tensorflow as tf

    threads = [tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads()]
    ips = args.n * (args.epochs - 1) / timer.steady_seconds()
    start = timer.steady_start_epoch_time
    print(json.dumps(dict(images_per_second=ips, wall_seconds=wall,
                          steady_start=start, steady_end=start + timer.steady_seconds(),
                          steady_images=args.n * (args.epochs - 1),
                          flops_per_image=training_flops_per_image(clf.model_),
                          onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS"), jit=clf.model_.jit_compile,
                          keras_adam=args.keras_adam, inter_op=args.inter_op,
                          intra_inter_threads=threads,
                          relu_after_pool=args.relu_after_pool)))


if __name__ == "__main__":
    main()
