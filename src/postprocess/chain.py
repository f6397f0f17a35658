"""Label map in, binary player mask and its components out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from skimage import measure

from src.errors import LabError, check_choice
from src.labels import coordinate_means
from src.postprocess.steps import MaskState


@dataclass(frozen=True)
class PlayerMask:
    """Result of post-processing.

    mask : (H, W) bool, player pixels.
    components : (H, W) int, 0 = background, 1..n = one connected player blob.
    centroids : (n, 2) float, (row, col) of each component.
    reasons : why a step emptied the mask, e.g. ``{"no_field"}`` for a frame without pitch.
    """

    mask: np.ndarray
    components: np.ndarray
    centroids: np.ndarray
    reasons: frozenset = frozenset()

    @property
    def n_components(self) -> int:
        return len(self.centroids)


def connected_components(mask: np.ndarray, connectivity: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Label the connected parts of ``mask`` and return ``(components, centroids)``.

    Parameters
    ----------
    mask : (H, W) bool ndarray
    connectivity : {1, 2}, default 2
        1 joins pixels sharing an edge, 2 also those sharing a corner.
    """
    components, n = measure.label(mask, connectivity=connectivity, return_num=True)
    # all components' coordinate means in one pass of counts (scipy's center_of_mass walks them one by one)
    return components, coordinate_means(components, n)


class PostprocessChain:
    """Run steps in order on the candidate mask, then find connected components.

    The starting candidates are all pixels. Kept clusters that touch one
    another (a player's shirt, shorts and skin) end up in one component, which
    is how adjacent small clusters are merged into one player.

    Parameters
    ----------
    steps : mapping of name -> step
        Callables ``MaskState -> MaskState``, run in the mapping's order;
        a None entry is skipped, so a step can be switched off from the
        command line with ``postprocess.steps.<name>=null``.
    connectivity : {1, 2}, default 2
    """

    def __init__(self, steps: Mapping, connectivity: int = 2):
        check_choice("connectivity", connectivity, {1, 2})
        self.steps = {name: step for name, step in steps.items() if step is not None}
        self.connectivity = connectivity
        field = False
        for name, step in self.steps.items():
            if getattr(step, "needs_field", False) and not field:
                raise LabError(f"steps.{name} needs a field mask; put the 'field' step before it", key=f"steps.{name}")
            field = field or getattr(step, "gives_field", False)

    def __call__(self, labels: np.ndarray, image: np.ndarray) -> PlayerMask:
        """Turn a label map (H, W) and its image (H, W, 3) into a PlayerMask."""
        state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, dtype=bool))
        for step in self.steps.values():
            state = step(state)
        components, centroids = connected_components(state.mask, self.connectivity)
        return PlayerMask(mask=state.mask, components=components, centroids=centroids, reasons=state.reasons)
