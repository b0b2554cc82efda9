"""Suspected label swaps: a karyotype whose two classes are predicted as each other, wholly.

When every crop labelled A in one cell is predicted B and every crop labelled B is
predicted A, the likelier story is an annotation swap, not two independent mistakes.
The report lists such cells so a reader can check them; labels are never changed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["group", "class_a", "class_b", "n_images", "min_probability"]


def pair_swaps(frame: pd.DataFrame, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Whole-class swaps per group in one repeat's out-of-fold predictions.

    ``frame`` has ``group``, ``y_true`` and ``y_pred``; ``proba`` its probabilities (for
    the confidence of the swapped predictions). One row per (group, A, B), A before B in
    ``classes``.
    """
    truth = frame["y_true"].astype(str).to_numpy()
    predicted = frame["y_pred"].astype(str).to_numpy()
    groups = frame["group"].astype(str).to_numpy()
    confidence = np.nan_to_num(proba, nan=-1.0).max(axis=1)
    rank = {c: i for i, c in enumerate(classes)}
    rows = []
    for group in pd.unique(groups[truth != predicted]):
        in_group = groups == group
        for a in sorted(set(truth[in_group & (truth != predicted)])):
            as_a = in_group & (truth == a)
            targets = set(predicted[as_a])
            if len(targets) != 1:
                continue
            b = targets.pop()
            as_b = in_group & (truth == b)
            if rank[a] < rank[b] and as_b.any() and set(predicted[as_b]) == {a}:
                swapped = as_a | as_b
                rows.append({"group": group, "class_a": a, "class_b": b,
                             "n_images": int(swapped.sum()),
                             "min_probability": float(confidence[swapped].min())})
    return pd.DataFrame(rows, columns=COLUMNS)
