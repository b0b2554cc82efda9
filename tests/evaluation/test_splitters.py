"""Cross-validation splits: grouped splits never leak a group; infeasible ones say why."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from karyobench.errors import ConfigError
from karyobench.evaluation.splitters import (Split, assert_no_group_leak, describe,
                                             make_splits, resolve_kind)


def partition_ok(splits, n, folds, repeats):
    assert len(splits) == folds * repeats
    for repeat in range(repeats):
        tests = np.concatenate([s.test for s in splits if s.repeat == repeat])
        assert np.array_equal(np.sort(tests), np.arange(n))  # every row tested exactly once
    for s in splits:
        assert not set(s.train) & set(s.test)
        assert len(s.train) + len(s.test) == n


@st.composite
def grouped_layout(draw):
    """Random groups (patients) each holding a random mix of classes."""
    n_classes = draw(st.integers(2, 4))
    folds = draw(st.integers(2, 4))
    n_groups = draw(st.integers(folds + 1, 12))
    y, groups = [], []
    for g in range(n_groups):
        for label in range(n_classes):
            copies = draw(st.integers(0, 3))
            y += [f"c{label}"] * copies
            groups += [f"g{g}"] * copies
    return np.array(y), np.array(groups), folds, draw(st.integers(0, 1000))


@settings(max_examples=150, deadline=None)
@given(grouped_layout(), st.integers(1, 2))
def test_grouped_splits_never_share_a_group(layout, repeats):
    y, groups, folds, seed = layout
    try:
        splits = make_splits("group", y, groups, folds, repeats, seed, "t")
    except ConfigError as err:  # infeasible layouts are refused with a reason
        assert "task 't'" in str(err)
        return
    partition_ok(splits, len(y), folds, repeats)
    for s in splits:
        assert not set(groups[s.train]) & set(groups[s.test])


def test_image_split_ignores_groups():
    # 4 groups, each holding 6 images of both classes: an image split must cut groups
    y = np.tile(["a", "b"], 12)
    groups = np.repeat(["g0", "g1", "g2", "g3"], 6)
    splits = make_splits("image", y, groups, 3, 1, 0, "t")
    partition_ok(splits, len(y), 3, 1)
    assert any(set(groups[s.train]) & set(groups[s.test]) for s in splits)
    for s in splits:  # stratified: each test fold has both classes
        assert set(y[s.test]) == {"a", "b"}
    assert make_splits("stratified", y, None, 3, 1, 0)[0].test.tolist() == \
        splits[0].test.tolist()


def test_splits_are_seeded():
    y = np.tile(["a", "b", "c"], 10)
    groups = np.repeat([f"g{i}" for i in range(10)], 3)
    a = make_splits("group", y, groups, 5, 2, 3)
    b = make_splits("group", y, groups, 5, 2, 3)
    c = make_splits("group", y, groups, 5, 2, 4)
    assert all(np.array_equal(x.test, z.test) for x, z in zip(a, b))
    assert not all(np.array_equal(x.test, z.test) for x, z in zip(a, c))
    # repeats differ from each other
    assert not all(np.array_equal(a[i].test, a[i + 5].test) for i in range(5))


def test_class_smaller_than_folds():
    y = np.array(["a"] * 10 + ["b"] * 2)
    with pytest.raises(ConfigError, match=r"task 'pair': class\(es\) 'b' \(2\) have fewer "
                                          r"images than cv.folds = 3"):
        make_splits("image", y, None, 3, 1, 0, "pair")


def test_class_held_by_one_group_is_named():
    y = np.array(["a", "b"] * 6 + ["rare"] * 4)
    groups = np.array([f"g{i % 4}" for i in range(12)] + ["p7"] * 4)
    with pytest.raises(ConfigError, match=r"every image of class 'rare' belongs to one group "
                                          r"\('p7'\)") as info:
        make_splits("group", y, groups, 3, 1, 0, "t")
    assert "cv.split: image" in str(info.value)
    # the leaky image split still accepts it
    make_splits("image", y, groups, 3, 1, 0, "t")


def test_fewer_groups_than_folds():
    y = np.tile(["a", "b"], 6)
    groups = np.repeat(["g0", "g1"], 6)
    with pytest.raises(ConfigError, match="only 2 groups for cv.folds = 3"):
        make_splits("group", y, groups, 3, 1, 0, "t")


def test_resolve_kind_and_describe():
    assert resolve_kind("auto", True) == "group"
    assert resolve_kind("auto", False) == "stratified"
    assert resolve_kind("image", True) == "image"
    with pytest.raises(ConfigError, match="needs a group column"):
        resolve_kind("group", False)
    sentence = describe("group", "karyotype_id", 5, 1, 1)
    assert "no karyotype_id in both train and test" in sentence and "seed 1" in sentence
    assert "leaky" in describe("image", None, 5, 1, 1)


def test_leak_guard_catches_a_leak():
    groups = np.array(["a", "a", "b", "c"])
    with pytest.raises(AssertionError, match=r"repeat 0 fold 0: group\(s\) \['a'\] in both"):
        assert_no_group_leak([Split(0, 0, np.array([0, 2]), np.array([1, 3]))], groups)
    assert_no_group_leak([Split(0, 0, np.array([0, 1]), np.array([2, 3]))], groups)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(3, 12), min_size=2, max_size=5), st.integers(2, 3),
       st.integers(0, 10_000))
def test_stratified_split_is_a_partition_with_every_class_in_every_test_fold(sizes, folds,
                                                                               seed):
    y = np.concatenate([[f"c{i}"] * n for i, n in enumerate(sizes)])
    splits = make_splits("stratified", y, None, folds, 1, seed)
    partition_ok(splits, len(y), folds, 1)
    for s in splits:
        assert set(y[s.test]) == set(y)  # every class has >= folds images
