"""The network input's fixed-point grid (numpy only, so board-side drivers need no TensorFlow).

The input quantizer is ``quantized_bits(bits, 0, alpha=1)``: values rounded half to even to multiples of
2^-(bits-1) and saturated to [-1, 1 - 2^-(bits-1)]. :func:`input_codes` gives the integer codes the
firmware receives, :func:`quantize_input` the same values as floats.
"""

from __future__ import annotations

import numpy as np


def input_codes(x: np.ndarray, bits: int) -> np.ndarray:
    """Integer codes (float64 array of whole numbers) in [-2^(bits-1), 2^(bits-1) - 1]."""
    scale = 2.0 ** (bits - 1)
    return np.clip(np.round(np.asarray(x, np.float64) * scale), -scale, scale - 1)


def quantize_input(x: np.ndarray, bits: int) -> np.ndarray:
    """What the input quantizer does to the network input, as float32."""
    return (input_codes(x, bits) / 2.0 ** (bits - 1)).astype(np.float32)
