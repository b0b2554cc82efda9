"""What produced a results folder: versions, machine, revision, seed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata

from karyobench._tf import numerics_flags

PACKAGES = ("karyobench", "numpy", "pandas", "scikit-learn", "scikit-image", "scipy",
            "tensorflow-cpu", "tensorflow", "keras", "scikeras", "optuna", "pillow")


def describe_environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "git_revision": _git_revision(),
        "tensorflow_flags": numerics_flags(),
        "command": " ".join(sys.argv),
    }


def _git_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
