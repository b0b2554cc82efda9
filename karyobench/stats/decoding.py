"""Karyotype-level decoding: assign the chromosomes of one cell to classes jointly.

A normal cell holds two of each autosome plus XX or XY. Per-image argmax ignores that and
can call three chromosomes "1" and none "2"; solving one assignment problem per cell on
-log p with two slots per class fixes such errors (Poletti et al. 2012 report the same
effect). An abnormal class shares the slots of its normal counterpart: ``del(5)(p14)``
takes one of the two "5" slots.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from .bootstrap import group_codes

_ISCN_CHROMOSOME = re.compile(r"^[a-z+\-?]+\(([0-9XYxy]+)[;)]")
_EPSILON = 1e-12
# Cost of a spare slot beyond two per class: above any -log p, so spares are used only
# when a group holds more chromosomes than a karyotype has places for.
_SPARE_PENALTY = 1e3


def normalise_label(label) -> str:
    """Canonical class label: ``"01"`` -> ``"1"``, ``"x"`` -> ``"X"``; ISCN kept as is."""
    text = str(label).strip()
    if text.isdigit():
        return str(int(text))
    if text.upper() in {"X", "Y"}:
        return text.upper()
    return text


def counterpart(label) -> str:
    """Normal chromosome a class belongs to: ``"del(5)(p14)"`` -> ``"5"``, ``"7"`` -> ``"7"``.

    Unparseable labels are their own family.
    """
    text = normalise_label(label)
    match = _ISCN_CHROMOSOME.match(text)
    return normalise_label(match.group(1)) if match else text


def _families(classes: Sequence) -> tuple[list[str], np.ndarray]:
    """Distinct families in first-seen order and the family index of every class."""
    names: list[str] = []
    index = np.empty(len(classes), dtype=int)
    for i, label in enumerate(classes):
        family = counterpart(label)
        if family not in names:
            names.append(family)
        index[i] = names.index(family)
    return names, index


def _solve(cost: np.ndarray, capacities: np.ndarray, spare: int) -> tuple[float, np.ndarray]:
    """Min-cost assignment of rows (chromosomes) to family slots; returns total and family per row."""
    slot_family = np.repeat(np.arange(capacities.size), capacities)
    slot_cost = cost[:, slot_family]
    if spare:
        spare_family = np.repeat(np.arange(cost.shape[1]), spare)
        slot_family = np.concatenate([slot_family, spare_family])
        slot_cost = np.hstack([slot_cost, cost[:, spare_family] + _SPARE_PENALTY])
    rows, cols = linear_sum_assignment(slot_cost)
    assigned = np.empty(cost.shape[0], dtype=int)
    assigned[rows] = slot_family[cols]
    return float(slot_cost[rows, cols].sum()), assigned


def assignment_decode(proba, classes: Sequence, groups, max_group_size: int | None = None) -> np.ndarray:
    """Decode labels jointly within each group; returns one label (from ``classes``) per row.

    ``proba`` is (n_samples, n_classes) with columns in ``classes`` order. A group of exactly
    one karyotype's size (2 per autosome family + 2 sex chromosomes, 46 for 24 classes) is
    solved twice, with 46,XX and 46,XY slots, and the cheaper total wins. Any other group
    size gets 2 slots per family (per started karyotype, if the group is larger than one)
    plus penalised spare slots, so decoding never fails.
    Groups larger than ``max_group_size`` (default: 3 karyotypes) and rows without a group
    keep their argmax, since joint decoding of a whole patient has no karyotype meaning.
    """
    proba = np.asarray(proba, dtype=float)
    classes = list(classes)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"proba must be (n_samples, {len(classes)}), got {proba.shape}")
    n_samples = proba.shape[0]
    labels = np.asarray(classes, dtype=object)
    safe = np.nan_to_num(proba, nan=0.0)
    decoded = labels[np.argmax(safe, axis=1)] if n_samples else labels[:0]
    if n_samples == 0:
        return decoded

    family_names, family_of_class = _families(classes)
    n_families = len(family_names)
    log_p = np.log(np.clip(safe, _EPSILON, None))
    # Best class within each family and its cost, per sample.
    family_cost = np.full((n_samples, n_families), np.inf)
    family_best = np.zeros((n_samples, n_families), dtype=int)
    for f in range(n_families):
        members = np.flatnonzero(family_of_class == f)
        best = members[np.argmax(log_p[:, members], axis=1)]
        family_best[:, f] = best
        family_cost[:, f] = -log_p[np.arange(n_samples), best]

    x_family = family_names.index("X") if "X" in family_names else None
    y_family = family_names.index("Y") if "Y" in family_names else None
    n_sex = (x_family is not None) + (y_family is not None)
    karyotype_size = 2 * (n_families - n_sex) + (2 if n_sex else 0)
    limit = 3 * karyotype_size if max_group_size is None else max_group_size

    missing_group = np.zeros(n_samples, dtype=bool)
    if groups is not None:
        missing_group = pd.isna(pd.Series(np.asarray(groups, dtype=object))).to_numpy()
    codes = group_codes(groups, n_samples)
    for code in np.unique(codes[~missing_group]):
        rows = np.flatnonzero(codes == code)
        size = rows.size
        if size > limit:
            continue
        cost = family_cost[rows]
        # Several cells pooled in one group: two places per family and cell.
        n_cells = max(1, int(np.ceil(size / karyotype_size))) if karyotype_size else 1
        default = np.full(n_families, 2 * n_cells)
        options: list[np.ndarray] = []
        if size == karyotype_size and x_family is not None:
            female = default.copy()
            if y_family is not None:
                female[y_family] = 0
                male = default.copy()
                male[x_family] = 1
                male[y_family] = 1
                options = [female, male]
            else:
                options = [female]
        if not options:
            options = [default]
        spare = max(0, size - int(default.sum()))  # lets any one family absorb the overflow
        best_total, best_assigned = np.inf, None
        for capacities in options:
            total, assigned = _solve(cost, capacities, spare)
            if total < best_total:
                best_total, best_assigned = total, assigned
        decoded[rows] = labels[family_best[rows, best_assigned]]
    return decoded
