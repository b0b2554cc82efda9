"""Reports from a results folder: tables (Markdown/CSV/LaTeX), plots and one HTML page.

Entry points for the CLI: :func:`write_report` (``karyobench report DIR``) and
:func:`compare` (``karyobench compare A B``).
"""

from .compare import compare, comparison_table
from .results import Results, load_results
from .seed import SeedReported, SeedTask, load_seed_reported
from .write import build_tables, write_report

__all__ = [
    "Results",
    "SeedReported",
    "SeedTask",
    "build_tables",
    "compare",
    "comparison_table",
    "load_results",
    "load_seed_reported",
    "write_report",
]
