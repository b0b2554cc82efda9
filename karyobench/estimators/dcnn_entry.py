"""Registry entry for the seed DCNN (kept apart so baselines never import TensorFlow)."""

from __future__ import annotations

from karyobench.estimators.registry import register


@register("dcnn", "the seed DCNN (conv 32/64/64, dense 1024/1024/512) via scikeras")
def dcnn():
    from karyobench.estimators.dcnn import DCNNClassifier

    return DCNNClassifier()
