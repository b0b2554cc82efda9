"""Import TensorFlow quietly, with a sensible CPU thread budget.

TensorFlow prints oneDNN/absl banners at import time and Keras logs retracing warnings;
both drown the progress bar. Every module that needs Keras imports it through
:func:`keras_module`, so the environment is set before the first import.
"""

from __future__ import annotations

import logging
import os
import warnings

_CONFIGURED = False


def quiet_environment() -> None:
    """Set the variables TensorFlow reads at import time (no effect after import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN stays on: 2.2-3.7x faster DCNN training here (docs/performance.md); its
    # start-up banner is silenced by TF_CPP_MIN_LOG_LEVEL.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def numerics_flags() -> dict[str, str]:
    """Settings that change TensorFlow's floating-point results (part of fold keys)."""
    quiet_environment()
    return {"TF_ENABLE_ONEDNN_OPTS": os.environ["TF_ENABLE_ONEDNN_OPTS"]}


def configure_threads(n_threads: int | None) -> None:
    """Limit TensorFlow's intra/inter-op pools (must run before TF does any work)."""
    import tensorflow as tf

    if not n_threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(n_threads))
        tf.config.threading.set_inter_op_parallelism_threads(min(2, int(n_threads)))
    except RuntimeError:
        # Already initialised in this process: the first setting wins.
        pass


def keras_module():
    """Return ``keras`` after silencing TensorFlow; idempotent."""
    global _CONFIGURED
    quiet_environment()
    import keras
    import tensorflow as tf

    if not _CONFIGURED:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"keras(\..*)?$")
        threads = os.environ.get("KARYOBENCH_TF_THREADS")
        configure_threads(int(threads) if threads else None)
        _CONFIGURED = True
    return keras
