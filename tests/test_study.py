"""The study YAML schema: valid files parse, every invalid one is one clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from karyobench.errors import ConfigError
from karyobench.study import CanvasConfig, Study, load_study, parse_study

REPO = Path(__file__).resolve().parents[1]
MINIMAL = {"name": "s", "tasks": [{"name": "t"}], "estimators": [{"kind": "dcnn"}]}


def with_(**parts) -> dict:
    return {**MINIMAL, **parts}


def test_example_study_parses_and_resolves_relative_path():
    study = load_study(REPO / "studies" / "bioimlab_normal24.yaml")
    assert study.dataset.path.is_absolute()
    assert study.dataset.path.name == "labels.csv"
    assert study.cv.split == ["group", "image"]
    assert study.dataset.canvas.mode == "native"


def test_defaults_are_honest():
    study = parse_study(MINIMAL)
    assert study.cv.split == ["auto"]  # grouped whenever groups are known
    assert study.dataset.group_column == "auto"
    assert study.dataset.on_bad_image == "error"


def test_relative_path_is_relative_to_the_study_file(tmp_path, write_study):
    path = write_study(with_(dataset={"source": "folders", "path": "imgs"}))
    assert load_study(path).dataset.path == (tmp_path / "imgs").resolve()


def test_digest_changes_with_config():
    assert parse_study(MINIMAL).digest() == parse_study(dict(MINIMAL)).digest()
    assert parse_study(MINIMAL).digest() != parse_study(with_(seed=2)).digest()


def test_yaml_syntax_error_names_line_and_column(write_study):
    path = write_study("name: s\ntasks:\n  - name: t\n    classes: [1, 2\nestimators: []\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line \d+, column \d+"):
        load_study(path)


def test_missing_study_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_study(tmp_path / "nope.yaml")


def test_not_a_mapping(write_study):
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_study(write_study("- just\n- a list\n"))


@pytest.mark.parametrize("raw, pattern", [
    (with_(cv={"fodls": 3}), r"unknown key 'cv.fodls'. Did you mean 'folds'\?"),
    ({**MINIMAL, "estimatorz": []}, r"unknown key 'estimatorz'. Did you mean 'estimators'\?"),
    (with_(dataset={"sorce": "folders"}), r"Did you mean 'source'\?"),
    (with_(dataset={"synthetic": {"seeed": 1}}),
     r"unknown key 'dataset.synthetic.seeed'. Did you mean 'seed'\?"),
    (with_(cv={"folds": "three"}), r"'cv.folds' = 'three': .*integer"),
    (with_(cv={"folds": 1}), r"'cv.folds' = 1: .*greater than or equal to 2"),
    (with_(cv={"split": "leaky"}), r"'cv.split.0' = 'leaky'"),
    (with_(dataset={"canvas": {"mode": "stretch"}}), r"'dataset.canvas.mode' = 'stretch'"),
    (with_(dataset={"canvas": {"mode": "power", "exponent": 1.5}}),
     r"'dataset.canvas.exponent' = 1.5: .*less than 1"),
    (with_(tasks=[{"name": "t", "classes": ["1"]}]), "at least two classes"),
    (with_(tasks=[{"name": "t", "classes": ["1", "1"]}]), "classes must be unique"),
    (with_(tasks=[]), "'tasks' = list"),
    ({"tasks": [{"name": "t"}], "estimators": [{"kind": "dcnn"}]}, "missing required key 'name'"),
    (with_(name="has space"), r"'name' = 'has space'"),
    (with_(estimators=[{"kind": "dcnn"}, {"kind": "dcnn"}]), "estimator names must be unique"),
    (with_(dataset={"source": "manifest"}), "dataset.path is required for source 'manifest'"),
    (with_(dataset={"source": "manifest", "path": ""}), "'dataset.path' = '': empty path"),
    (with_(dataset={"source": "folders", "path": "a\0b"}), "NUL"),
])
def test_bad_studies_raise_one_clear_config_error(raw, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        parse_study(raw)
    assert "\n" not in str(info.value)
    assert "Value error," not in str(info.value)


# -- property: any mapping gives a Study or a ConfigError, never another exception --------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 100), st.floats(),
                     st.text(max_size=8), st.sampled_from(
                         ["manifest", "folders", "synthetic", "native", "fit", "group",
                          "image", "auto", "normal24", "all", "dcnn", "skip", "", "a\0b"]))
_keys = st.one_of(st.sampled_from(
    ["name", "seed", "dataset", "tasks", "estimators", "cv", "execution", "source", "path",
     "canvas", "mode", "size", "classes", "relabel", "kind", "params", "split", "folds",
     "repeats", "synthetic", "limit_groups", "group_column", "on_bad_image", "polarity",
     "backend", "workers", "description"]), st.text(max_size=6), st.integers(0, 3))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=4)), max_leaves=12)


@st.composite
def _study_like(draw):
    raw = dict(MINIMAL) if draw(st.booleans()) else {}
    raw.update(draw(st.dictionaries(_keys, _values, max_size=6)))
    if draw(st.booleans()):
        raw["dataset"] = draw(st.dictionaries(_keys, _values, max_size=5))
    return raw


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_study_like())
def test_parse_study_never_raises_anything_but_config_error(raw):
    try:
        study = parse_study(raw)
    except ConfigError as err:
        assert str(err).strip()
    else:
        assert isinstance(study, Study)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_load_study_on_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("y") / "study.yaml"
    path.write_text(text)
    try:
        load_study(path)
    except ConfigError:
        pass


def test_example_yaml_roundtrip_equals(tmp_path):
    raw = yaml.safe_load((REPO / "studies" / "bioimlab_normal24.yaml").read_text())
    raw["dataset"]["path"] = str(tmp_path / "labels.csv")
    assert parse_study(raw).dataset.path == tmp_path / "labels.csv"


def test_numeric_class_labels_are_accepted_as_text():
    study = parse_study(with_(tasks=[{"name": "t", "classes": [1, 2, "X"],
                                      "relabel": {5: "five"}}]))
    assert study.tasks[0].classes == ["1", "2", "X"]
    assert study.tasks[0].relabel == {"5": "five"}


def test_same_class_twice_under_two_spellings():
    with pytest.raises(ConfigError, match=r"'01' and '1' are the same class"):
        parse_study(with_(tasks=[{"name": "t", "classes": [1, "01"]}]))


def test_union_branch_tags_are_not_shown():
    with pytest.raises(ConfigError) as info:
        parse_study(with_(tasks=[{"name": "t", "classes": 5}]))
    message = str(info.value)
    assert "'tasks.0.classes' = 5" in message
    assert "list[str]" not in message and "literal[" not in message


def test_study_file_not_utf8(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 6\)"):
        load_study(path)


def test_study_path_is_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; give the study's YAML file"):
        load_study(tmp_path)


def test_canvas_label_and_record_name_the_exponent_only_in_power_mode():
    power = CanvasConfig(mode="power", size=64, exponent=0.25)
    fit = CanvasConfig(mode="fit", size=96)
    assert (power.label, fit.label) == ("power0.25_64", "fit96")
    assert power.model_dump()["exponent"] == 0.25
    assert "exponent" not in fit.model_dump()
    assert "native_channel" not in fit.model_dump()  # records written before it stay equal
    both = CanvasConfig(mode="fit", size=64, native_channel=True)
    assert both.label == "fit64+native" and both.model_dump()["native_channel"] is True
    assert (fit.channels, both.channels) == (1, 2)


@pytest.mark.parametrize("path", sorted((REPO / "studies").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_study_is_valid(path):
    """A study edited by hand (estimators, ensembles, canvases) must still load and name
    only real estimator parameters, before anyone spends hours running it."""
    from karyobench.evaluation.runner import check_estimators

    study = load_study(path)
    check_estimators(study)
    assert study.name == path.stem
