"""User-facing errors: one clear message naming the file, key or value and what to do.

The CLI turns any :class:`KaryobenchError` into that message and exit code 2; everything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class KaryobenchError(Exception):
    """Bad input or environment the user can fix; ``str(err)`` is the whole message."""


class ConfigError(KaryobenchError):
    """The study file (or a CLI option) is invalid."""


class DataError(KaryobenchError):
    """A dataset, manifest or image file cannot be used as given."""


class ISCNError(KaryobenchError):
    """An ISCN karyotype string cannot be parsed or is impossible on the ideogram."""


class ParameterError(ConfigError, ValueError):
    """An estimator parameter that cannot be honoured as set (or on this data).

    A ``ConfigError`` for the CLI (one line, exit 2) and a ``ValueError`` for
    scikit-learn, whose contract is that ``fit`` raises ValueError on bad parameters.
    """
