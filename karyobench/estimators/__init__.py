"""Estimators a study can name: the seed DCNN and classical baselines."""

from karyobench.estimators.registry import available, build, register

__all__ = ["available", "build", "register"]
