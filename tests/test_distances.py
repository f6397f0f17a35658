import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from src.clustering import distances
from src.clustering.distances import nearest, squared_distance_blocks
from src.errors import LabError


def points_and_others(n_columns, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(300, n_columns)), rng.normal(size=(40, n_columns))


@pytest.mark.parametrize("block", [1, 7 * 40, 300 * 40])  # a row at a time, 7 rows (the last block short), all
def test_blocks_cover_every_row_with_squared_distances(block):
    points, others = points_and_others(3)
    expected = ((points[:, None, :] - others[None, :, :]) ** 2).sum(axis=-1)
    got = np.full_like(expected, np.nan)
    for start, stop, values in squared_distance_blocks(points, others, block):
        got[start:stop] = values
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["auto", "brute", "kd_tree", "ball_tree"])
@pytest.mark.parametrize("n_columns", [2, 5, 21])
@pytest.mark.parametrize("block", [1, 7 * 40, 1 << 18])
def test_nearest_finds_what_scikit_learn_finds(algorithm, n_columns, block, monkeypatch):
    monkeypatch.setattr(distances, "NEAREST_BLOCK", block)
    points, others = points_and_others(n_columns, seed=n_columns)
    expected_distance, expected_index = NearestNeighbors(n_neighbors=1).fit(others).kneighbors(points)
    index, distance = nearest(points, others, algorithm)
    assert np.array_equal(index, expected_index[:, 0])
    np.testing.assert_allclose(distance, expected_distance[:, 0], atol=1e-9)


def test_nearest_in_single_precision_and_a_point_of_others_is_at_distance_0():
    points, others = (a.astype(np.float32) for a in points_and_others(21))
    index, distance = nearest(others, others, "brute")
    # |p|^2 of about 21 in float32 leaves about 1e-5 of the squared distance to rounding
    assert np.array_equal(index, np.arange(len(others))) and distance.max() < 1e-2
    assert nearest(points, others, "brute")[1].dtype == np.float32


def test_brute_force_ties_go_to_the_lower_index():
    others = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    index, distance = nearest(np.zeros((1, 2)), others, "brute")
    assert index.tolist() == [0] and distance.tolist() == [1.0]


def test_nearest_refuses_an_unknown_algorithm_and_nothing_to_search():
    points, others = points_and_others(2)
    with pytest.raises(LabError, match=r"algorithm='cover_tree' is not allowed; choose one of \['auto', 'ball_tree'"):
        nearest(points, others, "cover_tree")
    with pytest.raises(ValueError, match="at least one point in others"):
        nearest(points, others[:0])
