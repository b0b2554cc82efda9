"""Keras optimizer state that Keras keeps private.

:mod:`karyobench.estimators.fused_adam` updates Adam's moment slots in place with one
TensorFlow kernel; Keras 3 stores them in ``Adam._momentums`` / ``_velocities``, indexed
by ``_get_variable_index``.
"""

from __future__ import annotations


def adam_slots(optimizer, variable):
    """The first and second moment variables (``m``, ``v``) of ``variable`` in a Keras 3
    ``Adam`` (or subclass) that has been built for it."""
    index = optimizer._get_variable_index(variable)
    return optimizer._momentums[index], optimizer._velocities[index]
