"""Loading chromosome crops: sources, decoding, canvas, on-disk cache."""

from karyobench.data.dataset import Dataset, canonical_label
from karyobench.data.loading import load_dataset

__all__ = ["Dataset", "canonical_label", "load_dataset"]
