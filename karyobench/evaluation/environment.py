"""What produced a results folder: versions, machine, revision, seed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

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
        "cpu": describe_cpu(),
        "tensorflow_build": _tensorflow_build(),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]),
    }


# Instruction sets that select different oneDNN kernels (and so different float rounding):
# fp32 FMA width, bf16 dot products (AVX512-BF16, AMX) and int8/fp16 paths.
NUMERIC_ISA = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
               "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def describe_cpu() -> dict:
    """CPU model and the instruction sets that decide which kernels TensorFlow runs.

    Keras results are bit-reproducible on one machine but not across CPUs whose kernels
    differ (e.g. bf16 training on AMX versus AVX-512 versus AVX2), so a results folder
    says which it was made on.
    """
    info = {"model": platform.processor() or platform.machine(), "isa": []}
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return info
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    info["model"] = fields.get("model name") or fields.get("Model") or info["model"]
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    info["isa"] = [name for name in NUMERIC_ISA if name in flags]
    return info


def _tensorflow_build() -> dict | None:
    """TensorFlow's build (compiler, CPU target), only where TensorFlow is loaded."""
    if "tensorflow" not in sys.modules:
        return None
    tf = sys.modules["tensorflow"]
    try:
        build = dict(tf.sysconfig.get_build_info())
    except (AttributeError, RuntimeError):
        return None
    build = {k: str(v) for k, v in build.items() if not k.startswith(("cuda", "cudnn"))}
    version = getattr(tf, "version", None)
    build["git_version"] = str(getattr(version, "GIT_VERSION", ""))
    build["compiler_version"] = str(getattr(version, "COMPILER_VERSION", ""))
    return build


CODE_CHECKOUT = Path(__file__).resolve().parents[2]


def _git_revision(checkout: Path = CODE_CHECKOUT) -> str | None:
    """The revision of the code that ran (the checkout karyobench is imported from, not
    the working directory), ``-dirty`` if tracked files outside ``results/`` changed:
    the results a run is writing are not a change of the code that made them. None if
    karyobench is not run from a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                              check=True, cwd=checkout).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != checkout:
            return None  # an installed package inside some other repository
        rev = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                    ":(exclude)results")
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def portable_record(run: dict) -> dict:
    """An earlier run's record (``previous_runs``) with its command's program by name,
    as ``describe_environment`` now records it (older records held its absolute path)."""
    command = run.get("command")
    if isinstance(command, str) and command:
        program, _, rest = command.partition(" ")
        run = {**run, "command": " ".join(filter(None, [os.path.basename(program), rest]))}
    return run
