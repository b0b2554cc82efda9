"""docs/study-file.md is the schema rendered, never a hand-kept copy that drifts."""

from __future__ import annotations

from karyobench.study import Study
from karyobench.study_doc import DOC_PATH, render


def test_committed_reference_is_the_generated_one():
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/study-file.md is stale: run `python -m karyobench.study_doc` and commit it")


def test_reference_lists_every_key_of_every_section():
    page = render()
    for name, field in Study.model_fields.items():
        assert f"| `{name}` |" in page
    for section in ("DatasetConfig", "CanvasConfig", "EstimatorConfig", "TuningConfig",
                    "CVConfig", "EnsembleConfig", "ExternalConfig", "ExecutionConfig"):
        assert f"## {section}" in page
    assert "| `folds` | int | `5` | outer folds per repeat |" in page
