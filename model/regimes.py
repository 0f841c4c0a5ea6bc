"""Regimes of a test set: how hard each example is, so results can be reported bin by bin.

Two properties of the true object decide how hard a pattern is to invert:

* the **mean phase gradient** inside the object (rad/px): the mean magnitude of the wrapped phase difference
  between neighbouring pixels that both lie in the support; strong phase structure (short gratings, strain
  around defects) spreads the pattern far from the centre and is what the networks find hardest;
* the **object size**: the number of support pixels (amplitude above the support threshold); small objects
  give broad, faint patterns.

Every pattern falls in exactly one bin of each kind (bins are half-open, the last one unbounded).
"""

from __future__ import annotations

import numpy as np

from cdinn.model.conventions import wrap_phase
from cdinn.model.metrics import support

GRADIENT_EDGES = (0.0, 0.4, 0.8, 1.2, 2.0)  # rad/px; the last bin is >= 2.0
SIZE_EDGES = (0, 50, 150, 300)  # pixels; the last bin is >= 300
STRONG_PHASE = 1.0  # rad/px: the 'strong-phase' regime of the targets is a mean gradient above this
SMALL_OBJECT = 50  # pixels: the 'small-object' regime is a support smaller than this


def mean_phase_gradient(amplitude: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """(B,) mean |wrapped phase step| (rad/px) over the horizontal and vertical neighbour pairs inside the
    support of each (B, N, N) object; 0 for an object with no such pair."""
    inside = support(amplitude)
    total = np.zeros(len(amplitude))
    count = np.zeros(len(amplitude))
    for axis in (-1, -2):
        step = np.abs(wrap_phase(np.diff(phase, axis=axis)))
        pair = np.logical_and(np.delete(inside, -1, axis=axis), np.delete(inside, 0, axis=axis))
        total += (step * pair).sum(axis=(-2, -1))
        count += pair.sum(axis=(-2, -1))
    return total / np.maximum(count, 1)


def object_size(amplitude: np.ndarray) -> np.ndarray:
    """(B,) support pixel count of each (B, N, N) amplitude."""
    return support(amplitude).sum(axis=(-2, -1))


def bin_labels(values: np.ndarray, edges: tuple[float, ...], unit: str) -> list[str]:
    """The label of each value's bin, e.g. '0.4-0.8 rad/px' or '>= 2 rad/px'."""
    names = [f"{lo:g}-{hi:g} {unit}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    names.append(f">= {edges[-1]:g} {unit}")
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 1)
    return [names[i] for i in index]


def regimes(amplitude: np.ndarray, phase: np.ndarray) -> dict[str, np.ndarray]:
    """Named boolean masks (B,) over a test set: one per phase-gradient bin, one per size bin, and the two
    target regimes 'strong phase (> 1 rad/px)' and 'small objects (< 50 px)'."""
    gradient = mean_phase_gradient(amplitude, phase)
    size = object_size(amplitude)
    masks: dict[str, np.ndarray] = {}
    for values, edges, unit in ((gradient, GRADIENT_EDGES, "rad/px"), (size, SIZE_EDGES, "px")):
        labels = np.array(bin_labels(values, edges, unit))
        for label in dict.fromkeys(bin_labels(np.asarray(edges, float), edges, unit)):
            masks[label] = labels == label
    masks[f"strong phase (> {STRONG_PHASE:g} rad/px)"] = gradient > STRONG_PHASE
    masks[f"small objects (< {SMALL_OBJECT} px)"] = size < SMALL_OBJECT
    return masks
