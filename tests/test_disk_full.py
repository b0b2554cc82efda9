"""A full disk mid-study: one clear message, nothing half-written, resumable (real tmpfs)."""

from __future__ import annotations

import os
import subprocess
import uuid

import pandas as pd
import pytest
import yaml
from kb_support import BIOIMLAB_MANIFEST, bioimlab_dataset, run_cli, tiny_study


@pytest.fixture
def small_disk(tmp_path):
    """A 40 KiB tmpfs: room for a few fold files, not for a whole study and its report."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs",
                              str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_disk_full_is_one_message_and_the_rerun_finishes(tmp_path, small_disk):
    if not BIOIMLAB_MANIFEST.is_file():
        pytest.skip("BioImLab data not found beside the checkout")
    study = tiny_study(bioimlab_dataset(limit_groups=6, canvas={"size": 16}),
                       estimators=[{"kind": "svm_linear_pixels"}, {"kind": "logreg_pixels"}],
                       cv={"folds": 3})
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study))
    out = small_disk / "out"
    args = ("run", study_file, "--out", out, "--cache-dir", tmp_path / "cache")

    full = run_cli(*args)
    output = full.stdout + full.stderr
    assert full.returncode == 2 and "Traceback" not in output, output
    errors = [x for x in output.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1, output  # (the progress bar may precede it)
    line = errors[0]
    assert "disk full while writing" in line and "re-run the same command" in line
    assert not list(out.rglob("*.tmp"))  # no half-written files left behind
    finished = {p.stem for p in (out / "jobs").glob("*.json")}
    for key in finished:  # every fold marked done is complete on disk
        assert (out / "jobs" / f"{key}.parquet").is_file()

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert finished  # 40 KiB holds some folds before the report overflows it
    assert f"reusing {len(finished)} finished fold(s)" in again.stdout + again.stderr
    folds = pd.read_parquet(out / "folds.parquet")
    assert len(folds) == 6
