"""The eight views: each a symmetry under which a far-field pattern and its object transform together, each
undone by its inverse, all eight distinct."""

import numpy as np
import pytest

from cdinn.model.conventions import diffraction_amplitude, pad_centred
from cdinn.model.views import VIEW_COUNTS, stack_views, unstack_views, unview, view


@pytest.mark.parametrize("size", [32, 64])
def test_a_view_of_the_object_has_that_view_of_its_pattern(size):
    rng = np.random.default_rng(0)
    obj = pad_centred(rng.random((3, 32, 32)) * np.exp(2j * np.pi * rng.random((3, 32, 32))), size)
    pattern = diffraction_amplitude(obj)
    seen = [view(pattern, k) for k in range(8)]
    for k in range(8):
        assert np.allclose(diffraction_amplitude(view(obj, k)), seen[k], rtol=1e-4, atol=1e-3), k
        assert np.array_equal(unview(seen[k], k), pattern)
        assert view(pattern, k)[:, size // 2, size // 2].tolist() == pattern[:, size // 2, size // 2].tolist()
    assert len({s.tobytes() for s in seen}) == 8  # a generic complex object: eight different patterns


def test_stacked_views_come_back_in_the_measured_frame():
    x = np.random.default_rng(1).random((5, 32, 32)).astype(np.float32)
    assert stack_views(x, 1) is x and unstack_views(x, 1) is x
    for views in VIEW_COUNTS:
        stacked = stack_views(x, views)
        assert stacked.shape == (5 * views, 32, 32) and stacked.flags.c_contiguous
        assert np.array_equal(unstack_views(stacked, views), np.tile(x, (views, 1, 1)))
