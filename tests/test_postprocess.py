import numpy as np
import pytest

from src.errors import LabError
from src.postprocess import (DropLargeClusters, EnclosedByField, FieldClusters, MaskState, PostprocessChain,
                             RemoveSmall, RemoveThin, connected_components)

GREEN, RED, WHITE, GREY = (40, 130, 40), (200, 30, 30), (240, 240, 240), (120, 110, 130)


def scene():
    """20x30 pitch: stands on the top rows, a 1-px line, a 4x3 player inside and one cut by the bottom."""
    image = np.zeros((20, 30, 3), np.uint8)
    labels = np.zeros((20, 30), int)
    image[:] = GREEN
    image[:4], labels[:4] = GREY, 1                 # stands along the top border
    image[10, 2:28], labels[10, 2:28] = WHITE, 2    # a pitch line
    image[5:9, 5:8], labels[5:9, 5:8] = RED, 3      # a player inside the field
    image[17:, 20:23], labels[17:, 20:23] = RED, 3  # a player cut by the bottom border
    truth = np.zeros((20, 30), bool)
    truth[5:9, 5:8] = True
    truth[17:, 20:23] = True
    return image, labels, truth


def chain(**steps):
    default = {"field": FieldClusters(25.0), "enclosed": EnclosedByField(0.5), "thin": RemoveThin(2),
               "small": RemoveSmall(3)}
    default.update(steps)
    return PostprocessChain(default)


def test_players_kept_stands_and_line_dropped():
    image, labels, truth = scene()
    result = chain()(labels, image)
    assert np.array_equal(result.mask, truth)
    assert result.n_components == 2
    assert np.allclose(sorted(map(tuple, result.centroids)), [(6.5, 6.0), (18.0, 21.0)])


def test_line_stays_without_thin_step():
    image, labels, truth = scene()
    result = chain(thin=None)(labels, image)
    assert result.mask[10, 2:28].all()


def test_player_at_a_border_the_field_does_not_dominate_is_dropped():
    image, labels, truth = scene()
    result = chain(enclosed=EnclosedByField(border_fraction=1.0))(labels, image)
    assert not result.mask[17:, 20:23].any() and result.mask[5:9, 5:8].all()


def test_inputs_are_not_mutated():
    image, labels, _ = scene()
    before = labels.copy(), image.copy()
    chain()(labels, image)
    assert np.array_equal(labels, before[0]) and np.array_equal(image, before[1])


@pytest.mark.parametrize("labels", [np.zeros((20, 30), int), -np.ones((20, 30), int)],
                         ids=["one cluster", "all noise"])
def test_degenerate_labellings_give_an_empty_mask(labels):
    image, _, _ = scene()
    result = chain()(labels, image)
    assert not result.mask.any() and result.n_components == 0 and result.centroids.shape == (0, 2)


def test_drop_large_clusters_keeps_small_ones():
    image, labels, _ = scene()
    state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool))
    out = DropLargeClusters(max_fraction=0.1)(state)
    assert not out.mask[labels == 0].any() and not out.mask[labels == 1].any()
    assert out.mask[labels == 2].all() and out.mask[labels == 3].all()


def test_remove_small_counts_diagonal_neighbours():
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True    # 3 pixels, 8-connected
    mask[4, 4] = True
    out = RemoveSmall(3)(MaskState(labels=np.zeros((5, 5), int), image=np.zeros((5, 5, 3), np.uint8), mask=mask))
    assert out.mask.sum() == 3 and not out.mask[4, 4]


def test_enclosed_needs_field_first():
    image, labels, _ = scene()
    with pytest.raises(LabError, match="put the 'field' step before it"):
        PostprocessChain({"enclosed": EnclosedByField()})(labels, image)


@pytest.mark.parametrize("make, match", [
    (lambda: FieldClusters(0), r"postprocess.field.max_distance=0 is out of range"),
    (lambda: EnclosedByField(1.5), r"postprocess.enclosed.border_fraction=1.5 is out of range"),
    (lambda: RemoveThin(0), r"postprocess.thin.width=0 is out of range"),
    (lambda: RemoveSmall(0), r"postprocess.small.min_size=0 is out of range"),
    (lambda: PostprocessChain({}, connectivity=3), r"postprocess.connectivity=3 is not allowed"),
])
def test_bad_parameters(make, match):
    with pytest.raises(LabError, match=match):
        make()


def test_connected_components_connectivity():
    mask = np.eye(3, dtype=bool)
    assert connected_components(mask, 2)[1].shape == (1, 2)
    assert connected_components(mask, 1)[1].shape == (3, 2)
