"""cdinn adapt: self-supervised fine-tuning on unlabeled frames from an experiment the networks were not
trained for improves both the held-out fit and the true error against labels the adaptation never saw."""

import json

import numpy as np
import pytest

import cdinn
from cdinn.cli import main
from cdinn.errors import CdinnError
from cdinn.model import forward
from cdinn.model.adapt import AdaptConfig
from cdinn.model.scoring import score
from cdinn.model.test_set import test_set

SHIFTED = forward.fixed(coherence_sigma=1.3, background=3e-3, background_kind="smooth", flux=1e5)
"""A partially coherent beam with air scatter, both beyond the ranges the networks trained on (coherence up to
1 px, background up to 2e-3)."""


@pytest.mark.slow
def test_adapting_on_a_shifted_experiment_improves_fit_and_true_error(tmp_path):
    frames = test_set(600, seed=5, experiment=SHIFTED)
    np.save(tmp_path / "frames.npy", frames.diffraction)
    out = tmp_path / "adapted"
    assert main(["adapt", str(tmp_path / "frames.npy"), "--epochs", "5", "--lr", "1e-4", "--out", str(out)]) == 0
    card = json.loads((out / "shape.card.json").read_text())
    adapted = card["adapted"]
    assert adapted["frames"]["count"] == 600 and adapted["frames"]["held_out"] == 120
    assert len(adapted["frames"]["sha256"]) == 64 and adapted["adapted_from"]["networks"] == "default"
    assert adapted["held_out_fit_median"]["after"] < adapted["held_out_fit_median"]["before"]
    assert adapted["experiment"]["coherence_sigma"] > 1.0  # a strong blur found (the truth: 1.3 px)
    unseen = test_set(300, seed=77, experiment=SHIFTED)  # new objects, same experiment: true errors
    before = score(*cdinn.reconstruct(unseen.diffraction, mask=unseen.mask), unseen)
    after = score(*cdinn.reconstruct(unseen.diffraction, net=str(out), mask=unseen.mask), unseen)
    for metric in ("chi2", "shape_error"):
        assert np.median(after[metric]) < np.median(before[metric]), metric
    assert np.median(after["support_iou"]) > np.median(before["support_iou"])


def test_bad_adaptation_settings_are_refused():
    with pytest.raises(CdinnError, match="held-out fraction"):
        AdaptConfig(val_fraction=1.0)
    with pytest.raises(CdinnError, match="epochs"):
        AdaptConfig(epochs=0)
