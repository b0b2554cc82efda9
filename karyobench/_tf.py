"""Import TensorFlow quietly, with a sensible CPU thread budget.

TensorFlow prints oneDNN/absl banners at import time and Keras logs retracing warnings;
both drown the progress bar. Every module that needs Keras imports it through
:func:`keras_module`, so the environment is set before the first import.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager

_CONFIGURED = False


def quiet_environment() -> None:
    """Set the variables TensorFlow reads at import time (no effect after import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # oneDNN stays on: 2.2-3.7x faster DCNN training here (docs/performance.md); its
    # start-up banner is silenced by TF_CPP_MIN_LOG_LEVEL.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@contextmanager
def _stderr_fd_silenced():
    """Mute file descriptor 2: TF 2.21 prints its oneDNN banner through absl before any
    log level applies, so environment variables alone cannot hide it."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow and Keras once, quietly, and start the runtime (banner time)."""
    quiet_environment()
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        import tensorflow as tf

        return tf
    with _stderr_fd_silenced():
        import keras  # noqa: F401
        import tensorflow as tf

        from karyobench.context import current

        threads = current().threads or os.environ.get("KARYOBENCH_TF_THREADS")
        if threads:  # thread pools are fixed once the runtime starts, so set them first
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(min(2, int(threads)))
        tf.constant(0.0).numpy()
    return tf


def numerics_flags() -> dict[str, str]:
    """Settings that change TensorFlow's floating-point results (part of fold keys).

    Read only: computing a fold key must not change the environment. The default is the
    one :func:`quiet_environment` sets before TensorFlow is imported."""
    return {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1")}


def keras_module():
    """Return ``keras`` after silencing TensorFlow; idempotent."""
    global _CONFIGURED
    tf = import_tensorflow()
    import keras

    if not _CONFIGURED:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"keras(\..*)?$")
        _CONFIGURED = True
    return keras
