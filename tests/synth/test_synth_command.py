"""The ``synth`` command through a throw-away typer app, as the main CLI will mount it."""

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from karyobench.errors import ConfigError, ISCNError
from karyobench.synth.command import synth_command

app = typer.Typer()
app.command("synth")(synth_command)


@app.callback()
def _root() -> None:
    """Keep ``synth`` a sub-command."""


def test_synth_writes_dataset_and_preview(tmp_path):
    out, preview = tmp_path / "data", tmp_path / "karyogram.png"
    args = ["synth", "--out", str(out), "--patients", "1", "--cells-per-patient", "1", "--seed", "3"]
    result = CliRunner().invoke(app, args + ["--abnormal", "del(X)(q21)", "--abnormal", "dup(1)(q21q31)", "--preview", str(preview)])
    assert result.exit_code == 0, result.output
    manifest = pd.read_csv(out / "manifest.csv", dtype=str)
    counts = manifest.label.value_counts()
    assert counts["del(X)(q21)"] == 50  # a study abnormality keeps the study's counts
    assert counts["dup(1)(q21q31)"] == 2  # others: 2 patients x cells-per-patient
    assert preview.stat().st_size > 10_000
    assert "manifest.csv" in result.output


def test_synth_without_abnormalities(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), "--patients", "1", "--cells-per-patient", "1", "--abnormal", "none"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "manifest.csv")) == 46


@pytest.mark.parametrize(
    "args, error, words",
    [
        (["--abnormal", "del(5)(p99)"], ISCNError, "p99"),
        (["--look", "cband"], ConfigError, "look"),
        (["--patients", "-1"], ConfigError, "normal_patients"),
    ],
)
def test_synth_bad_options_raise_karyobench_errors(tmp_path, args, error, words):
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x")] + args)
    assert result.exit_code != 0
    assert isinstance(result.exception, error) and words in str(result.exception)
    assert not (tmp_path / "x" / "manifest.csv").exists()
