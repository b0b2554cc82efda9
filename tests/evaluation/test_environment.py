"""environment.json says which CPU kernels a result came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from karyobench.evaluation.environment import NUMERIC_ISA, describe_cpu, describe_environment


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs /proc/cpuinfo (Linux)")
def test_cpu_model_and_numeric_instruction_sets_are_read_from_the_machine():
    cpu = describe_cpu()
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            break
    assert cpu["isa"] == [name for name in NUMERIC_ISA if name in flags]
    assert cpu["model"] and cpu["model"] != ""


def test_environment_records_cpu_and_tensorflow_build_when_loaded():
    from karyobench._tf import import_tensorflow

    import_tensorflow()
    environment = describe_environment()
    assert environment["cpu"] == describe_cpu()
    assert environment["tensorflow_build"]["git_version"]
