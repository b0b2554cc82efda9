"""Statistics for honest comparisons: corrected t-test, group bootstrap, ranks, decoding."""

from .bootstrap import BootstrapCI, group_bootstrap_ci
from .decoding import assignment_decode, counterpart, normalise_label
from .ranking import FriedmanResult, friedman_nemenyi, nemenyi_q
from .ttest import TTestResult, corrected_resampled_ttest, holm_adjust

__all__ = [
    "BootstrapCI",
    "FriedmanResult",
    "TTestResult",
    "assignment_decode",
    "corrected_resampled_ttest",
    "counterpart",
    "friedman_nemenyi",
    "group_bootstrap_ci",
    "holm_adjust",
    "nemenyi_q",
    "normalise_label",
]
