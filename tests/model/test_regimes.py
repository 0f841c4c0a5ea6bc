"""Regime bins of a test set (cdinn.model.regimes)."""

import numpy as np

from cdinn.model.regimes import (
    GRADIENT_EDGES,
    SIZE_EDGES,
    bin_labels,
    mean_phase_gradient,
    object_size,
    regimes,
)
from cdinn.model.simulate import broad, simulate


def test_a_linear_phase_ramp_has_its_slope_as_mean_gradient():
    amplitude = np.zeros((2, 32, 32), np.float32)
    amplitude[:, 8:24, 8:24] = 1
    cols = np.arange(32)[None, None, :]
    phase = np.stack([0.3 * cols[0] + 0 * amplitude[0], 2.5 * cols[0] + 0 * amplitude[0]]).astype(np.float32)
    gradient = mean_phase_gradient(amplitude, phase)
    # steps of 0.3 rad between column neighbours and 0 between row neighbours: the mean over both is 0.15
    assert np.isclose(gradient[0], 0.15, atol=1e-5)
    assert np.isclose(gradient[1], 1.25, atol=1e-5)  # 2.5 rad steps (below pi, so not wrapped)
    assert (object_size(amplitude) == 256).all()


def test_every_pattern_falls_in_exactly_one_bin_of_each_kind():
    batch = simulate(400, 3, broad(position="random"))
    masks = regimes(batch.amplitude, batch.phase)
    gradient_bins = [m for name, m in masks.items() if name.endswith("rad/px") and "strong" not in name]
    size_bins = [m for name, m in masks.items() if name.endswith(" px") and "small" not in name]
    assert len(gradient_bins) == len(GRADIENT_EDGES) and len(size_bins) == len(SIZE_EDGES)
    assert (np.sum(gradient_bins, axis=0) == 1).all() and (np.sum(size_bins, axis=0) == 1).all()
    labels = bin_labels(np.array([0.0, 0.39, 0.4, 1.99, 2.0, 7.0]), GRADIENT_EDGES, "rad/px")
    assert labels == ["0-0.4 rad/px", "0-0.4 rad/px", "0.4-0.8 rad/px", "1.2-2 rad/px", ">= 2 rad/px", ">= 2 rad/px"]
    from cdinn.model.scoring import summarise_masked

    metrics = {"chi2": np.arange(400.0), "support_iou": np.linspace(0, 1, 400)}
    summaries = {name: summarise_masked(metrics, mask) for name, mask in masks.items()}
    assert all((summaries[name] is None) == (not masks[name].any()) for name in masks)
    assert sum(int(masks[name].sum()) for name in masks if name.endswith(" px") and "small" not in name) == 400
