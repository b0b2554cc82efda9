"""Factories of the Keras CNNs (kept apart so baselines never import TensorFlow); the
registry names them in its table of built-in kinds."""

from __future__ import annotations


def dcnn():
    from karyobench.estimators.dcnn import DCNNClassifier

    return DCNNClassifier()


def resnet():
    from karyobench.estimators.resnet import ResNetClassifier

    return ResNetClassifier()


def vgg():
    from karyobench.estimators.vgg import VGGClassifier

    return VGGClassifier()
