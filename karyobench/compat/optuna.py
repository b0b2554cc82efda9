"""The storage and id of an Optuna trial, which Optuna keeps private.

An ask/tell loop that records heartbeats and fails trials of dead workers itself (what
``study.optimize`` does internally) needs the study's storage and the trial's id.
"""

from __future__ import annotations


def study_storage(study):
    """The ``BaseStorage`` behind ``study`` (``study._storage``)."""
    return study._storage


def trial_id(trial) -> int:
    """The storage id of ``trial`` (a ``Trial`` or ``FrozenTrial``; not its number)."""
    return trial._trial_id
