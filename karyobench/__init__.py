"""karyobench: honest, cross-validated benchmarking of human chromosome classifiers."""

__version__ = "0.1.0"
