"""Registry entries for the Keras CNNs (kept apart so baselines never import TensorFlow)."""

from __future__ import annotations

from karyobench.estimators.registry import register


@register("dcnn", "the seed DCNN (conv 32/64/64, dense 1024/1024/512) via scikeras",
          tensorflow=True)
def dcnn():
    from karyobench.estimators.dcnn import DCNNClassifier

    return DCNNClassifier()


@register("resnet", "compact residual CNN (stages 16/32/64, 2 blocks each, GAP head)",
          tensorflow=True)
def resnet():
    from karyobench.estimators.resnet import ResNetClassifier

    return ResNetClassifier()


@register("vgg", "VGG-style CNN with batch norm (stages 32/64/128, 2 convs each, GAP head)",
          tensorflow=True)
def vgg():
    from karyobench.estimators.vgg import VGGClassifier

    return VGGClassifier()
